"""``beatspec run --schedule FILE``: static entries from TOML or JSON, synced like Celery's
``beat_schedule`` (wire-format §5.2) but only by the leader, fenced by its token (LOCK-4)."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from daemon_kit import (
    Collector,
    DaemonFactory,
    leader_pid,
    messages,
    run_count,
    wait_until,
    write_entry,
)

from beatspec.codec import Entry, decode_entry
from beatspec.findings import Outcome
from beatspec.testing import Namespace

TOML = """
[every1]
task = "tests.static.every1"
args = [1, "two"]
schedule = { __type__ = "interval", every = 1.0 }

[berlin]
task = "tests.static.berlin"
schedule = { __type__ = "crontab", minute = "0", hour = "9" }
extensions = { timezone = "Europe/Berlin", jitter = 5 }
"""

JSON = {
    "every1": {"task": "tests.static.every1", "args": [1, "two"],
               "schedule": {"__type__": "interval", "every": 1.0}},
    "berlin": {"task": "tests.static.berlin",
               "schedule": {"__type__": "crontab", "minute": "0", "hour": "9"},
               "extensions": {"timezone": "Europe/Berlin", "jitter": 5}},
}


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _statics(client: redis.Redis, prefix: str) -> set[str]:
    return {m.decode() for m in client.smembers(prefix + ":statics")}


def _decoded(client: redis.Redis, prefix: str, name: str) -> Entry:
    """The stored entry, decoded; it must have no FAILED finding."""
    key = prefix + name
    fields = {k.decode(): v for k, v in client.hgetall(key).items()}
    result = decode_entry(fields, name=name, key=key)
    failed = [f for f in result.report.findings if f.outcome is Outcome.FAILED]
    assert result.value is not None and not failed, failed
    return result.value


@pytest.mark.parametrize("fmt", ["toml", "json"])
def test_schedule_file_synced_and_fired(daemons: DaemonFactory, redis_ns: Namespace,
                                        broker_ns: Namespace, tmp_path: Path, fmt: str) -> None:
    """A TOML or JSON schedule file is installed by the leader at election: valid, decodable
    entries (definition with the defaults filled in, extensions kept, a new entry's meta =
    now), members in the index, names in ``prefix:statics``; its interval entry fires."""
    client = redis_ns.client()
    prefix = redis_ns.prefix
    path = (_write(tmp_path / "beat.toml", TOML) if fmt == "toml"
            else _write(tmp_path / "beat.json", json.dumps(JSON)))
    started = datetime.now(UTC)
    daemon = daemons.start("--schedule", str(path))
    wait_until(lambda: _statics(client, prefix) == {"every1", "berlin"}, 15, what="statics")
    for name in ("every1", "berlin"):
        assert client.zscore(prefix + ":schedule", prefix + name) is not None
        entry = _decoded(client, prefix, name)
        assert entry.definition.name == name and entry.definition.enabled
        assert entry.meta is not None and entry.meta.last_run_at is not None
        assert entry.meta.last_run_at.to_datetime() >= started - timedelta(seconds=2)
    berlin = _decoded(client, prefix, "berlin")
    assert berlin.extensions is not None and berlin.extensions.timezone == "Europe/Berlin"
    assert berlin.extensions.jitter == 5
    every1 = _decoded(client, prefix, "every1")
    assert list(every1.definition.args or ()) == [1, "two"]
    wait_until(lambda: run_count(client, prefix + "every1") >= 2, 10, what="two runs")
    assert daemon.stop() == 0
    sent = [m for m in messages(broker_ns.client()) if m.task == "tests.static.every1"]
    assert len(sent) == run_count(client, prefix + "every1")
    assert sent[0].body[0] == [1, "two"]


def test_standby_never_writes_statics(daemons: DaemonFactory, redis_ns: Namespace,
                                      tmp_path: Path) -> None:
    """Only the leader syncs the file (LOCK-4, user-needs R17): a standby with its own
    --schedule writes nothing while another daemon leads, and installs the file only after
    it takes over (here when the leader stops and releases the lock)."""
    client = redis_ns.client()
    prefix = redis_ns.prefix
    leader = daemons.start()
    wait_until(lambda: leader_pid(client, prefix) == leader.pid, 15, what="the leader")
    standby = daemons.start("--schedule", str(_write(tmp_path / "beat.toml", TOML)))
    standby.wait_log("read 2 static entries")
    time.sleep(1.5)  # several retries of the standby
    assert client.exists(prefix + "every1", prefix + "berlin", prefix + ":statics") == 0
    assert client.zcard(prefix + ":schedule") == 0
    assert leader.stop() == 0
    wait_until(lambda: leader_pid(client, prefix) == standby.pid, 15, what="the takeover")
    wait_until(lambda: _statics(client, prefix) == {"every1", "berlin"}, 10, what="statics")
    assert standby.stop() == 0


def test_resync_keeps_meta_removes_stale_and_sighup_rereads(
        daemons: DaemonFactory, redis_ns: Namespace, tmp_path: Path) -> None:
    """Re-sync on SIGHUP: definitions are rewritten, meta (last_run_at, total_run_count) is
    kept, a new static entry is added, and a static entry no longer in the file is deleted
    entirely (ZREM + DEL + SREM) while dynamic entries are left alone."""
    client = redis_ns.client()
    prefix = redis_ns.prefix
    last = datetime.now(UTC) - timedelta(minutes=10)
    write_entry(client, prefix, "hourly", task="old.task",
                schedule={"__type__": "interval", "every": 3600.0, "relative": False},
                last_run_at=last, total_run_count=5)
    write_entry(client, prefix, "dynamic", task="tests.dynamic",
                schedule={"__type__": "interval", "every": 3600.0, "relative": False},
                last_run_at=last, total_run_count=1)
    path = _write(tmp_path / "beat.toml", """
[hourly]
task = "new.task"
schedule = { __type__ = "interval", every = 3600.0 }
[gone]
task = "tests.gone"
schedule = { __type__ = "interval", every = 3600.0 }
""")
    meta_before = client.hget(prefix + "hourly", "meta")
    daemon = daemons.start("--schedule", str(path))
    wait_until(lambda: _statics(client, prefix) == {"hourly", "gone"}, 15, what="statics")
    hourly = _decoded(client, prefix, "hourly")
    assert hourly.definition.task == "new.task"
    assert client.hget(prefix + "hourly", "meta") == meta_before  # last_run_at kept
    assert client.zscore(prefix + ":schedule", prefix + "hourly") == int(
        (last + timedelta(hours=1)).timestamp())
    _write(path, """
[hourly]
task = "newer.task"
schedule = { __type__ = "interval", every = 3600.0 }
[added]
task = "tests.added"
schedule = { __type__ = "interval", every = 3600.0 }
""")
    daemon.send(signal.SIGHUP)
    wait_until(lambda: _statics(client, prefix) == {"hourly", "added"}, 10, what="re-sync")
    assert client.exists(prefix + "gone") == 0
    assert client.zscore(prefix + ":schedule", prefix + "gone") is None
    assert _decoded(client, prefix, "hourly").definition.task == "newer.task"
    assert client.hget(prefix + "hourly", "meta") == meta_before
    assert client.exists(prefix + "dynamic") == 1
    assert client.zscore(prefix + ":schedule", prefix + "dynamic") is not None
    assert daemon.alive()
    assert daemon.stop() == 0


BROKEN = """
[bad]
task = "tests.bad"
schedule = { __type__ = "crontab", minute = "99" }
"""


def test_broken_file_at_start_exits_2_with_the_rule(daemons: DaemonFactory,
                                                    redis_ns: Namespace,
                                                    tmp_path: Path) -> None:
    """A schedule file with an invalid entry is a usage error at start: exit code 2 and a
    message naming the entry and the broken rule (CRON-3); a file that is not TOML at all is
    exit 2 too. Nothing is written to the keyspace."""
    client = redis_ns.client()
    code, out = daemons.run("--schedule", str(_write(tmp_path / "bad.toml", BROKEN)))
    assert code == 2, out
    assert "CRON-3" in out and "'bad'" in out
    code, out = daemons.run("--schedule", str(_write(tmp_path / "syntax.toml", "[x\n")))
    assert code == 2, out
    assert "syntax.toml" in out
    code, out = daemons.run("--schedule", str(_write(tmp_path / "bad.json",
                                                    json.dumps({"x": {"task": "t"}}))))
    assert code == 2 and "DEF-5" in out, out
    assert client.dbsize() == 0 if redis_ns.owned else not client.keys(redis_ns.prefix + "*")


def test_broken_file_on_sighup_keeps_the_previous(daemons: DaemonFactory, redis_ns: Namespace,
                                                  tmp_path: Path) -> None:
    """SIGHUP with a broken file: logged with the rule ID, the previous schedule is kept (no
    entry deleted, nothing installed), the daemon keeps running; fixing the file and sending
    SIGHUP again installs it."""
    client = redis_ns.client()
    prefix = redis_ns.prefix
    path = _write(tmp_path / "beat.toml", TOML)
    daemon = daemons.start("--schedule", str(path))
    wait_until(lambda: _statics(client, prefix) == {"every1", "berlin"}, 15, what="statics")
    _write(path, BROKEN)
    daemon.send(signal.SIGHUP)
    errors = daemon.wait_log("schedule file not reloaded")
    assert "CRON-3" in errors[0]["event"]
    time.sleep(0.5)
    assert _statics(client, prefix) == {"every1", "berlin"}
    assert client.exists(prefix + "every1", prefix + "berlin") == 2
    assert client.exists(prefix + "bad") == 0
    collector = Collector(daemons.broker_ns.url)
    try:
        wait_until(lambda: collector.snapshot(), 10, what="the kept entry to fire")
    finally:
        collector.stop()
    _write(path, TOML.replace("[berlin]", "[berlin2]"))
    daemon.send(signal.SIGHUP)
    wait_until(lambda: _statics(client, prefix) == {"every1", "berlin2"}, 10, what="re-sync")
    assert daemon.alive()
    assert daemon.stop() == 0
