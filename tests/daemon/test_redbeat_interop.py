"""beatspec run and celery-redbeat 2.4.2 on one keyspace: each fires what the other wrote, they
never lead together, and handing leadership back and forth neither repeats nor skips runs.

RedBeat runs in-process (``RedBeatScheduler.tick()``, as tests/oracle does) where only its reading
and writing of entries matters, and as a real ``celery beat -S redbeat.RedBeatScheduler``
subprocess where the lock matters. The broker is a throwaway Redis started for this module.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.schedules import crontab
from celery.schedules import schedule as celery_interval
from redbeat import RedBeatSchedulerEntry

from beatspec.codec import DateTime, Meta, encode_meta
from beatspec.testing import Namespace, RedisServer, start_redis_server

sys.path.insert(0, str(Path(__file__).parent))

import e2e_support as e2e  # noqa: E402

TASK = "interop.task"  # not registered anywhere: beat sends it with send_task
EXPIRES = 60  # options.expires of the every-second entries: send time = expires header - 60
LOCK_TTL = 3  # seconds, for both schedulers (beatspec --lock-ttl, redbeat_lock_timeout)
RETRY = 1.0  # beatspec's --retry-interval; RedBeat's standby polls every beat_max_loop_interval
#: The longest time between two runs of an every-second entry when its leader is killed: the
#: lock outlives the last extension (at most one tick, 1 s, after the last run) by the TTL, a
#: standby notices within RETRY; one more second of slack for a loaded 2-core machine.
MAX_GAP = 1 + LOCK_TTL + RETRY + 1
#: Runs of one due slot are sent at the same time; consecutive slots are at least 1 s apart.
MIN_GAP = 0.75


@pytest.fixture(scope="module")
def aux() -> Iterator[RedisServer]:
    """A throwaway Redis for broker keys (never the schedule's, maybe shared, server)."""
    server = start_redis_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broker_urls(aux: RedisServer) -> Iterator[tuple[str, str]]:
    """Two broker URLs (databases 1 and 2 of the throwaway server), emptied after the test."""
    urls = (f"{aux.url}/1", f"{aux.url}/2")
    try:
        yield urls
    finally:
        for url in urls:
            with redis.Redis.from_url(url) as client:
                client.flushdb()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[e2e.Processes]:
    processes = e2e.Processes(tmp_path)
    try:
        yield processes
    finally:
        processes.close()


def _redbeat_meta(raw: bytes | None) -> dict[str, Any]:
    return dict(RedBeatSchedulerEntry.decode_meta(raw))


def _by_label(messages: list[e2e.Message]) -> dict[Any, e2e.Message]:
    """The messages by their first argument (each entry's label), each label once."""
    found: dict[Any, e2e.Message] = {}
    for message in messages:
        label = message.body[0][0]
        assert label not in found, f"{label} sent twice"
        found[label] = message
    return found


# ------------------------------------------------------------ a. RedBeat -> beatspec


def _save_redbeat_entries(app: Any, queue: str, now: datetime) -> dict[str, str]:
    """Entries as a RedBeat user saves them; three are due now, two are not."""
    entries = {
        "every": (celery_interval(timedelta(seconds=1)), {"args": ["every"]},
                  now - timedelta(seconds=10)),
        "cron": (crontab(minute="*"), {"args": ["cron"]}, now - timedelta(minutes=2)),
        "opts": (celery_interval(timedelta(minutes=1)),
                 {"args": ["opts", 2], "kwargs": {"k": "v", "n": [1, None]},
                  "options": {"queue": f"{queue}-opt", "priority": 3, "expires": 30,
                              "headers": {"x-interop": "yes"}}},
                 now - timedelta(minutes=2)),
        "later": (celery_interval(timedelta(hours=1)), {"args": ["later"]}, now),
        "off": (celery_interval(timedelta(seconds=1)), {"args": ["off"], "enabled": False},
                now - timedelta(minutes=2)),
    }
    keys = {}
    for name, (schedule, extra, last_run_at) in entries.items():
        extra.setdefault("options", {"queue": queue})
        entry = RedBeatSchedulerEntry(name, TASK, schedule, app=app, **extra)
        entry.last_run_at = last_run_at
        entry.save()
        keys[name] = entry.key
    return keys


def test_redbeat_written_entries_fire_under_beatspec_as_under_redbeat(
    redis_ns: Namespace, broker_urls: tuple[str, str],
) -> None:
    """Entries saved with ``RedBeatSchedulerEntry.save()`` are fired by beatspec's ``run_once``
    exactly as RedBeat's own tick fires an identical copy: the same entries fire (due interval,
    crontab, an entry with options; not the one not yet due nor the disabled one), with equal
    messages, equal ``total_run_count``, ``last_run_at`` within a second and scores within one
    second; RedBeat then reads beatspec's meta back and finds the fired entry not due."""
    ours_url, theirs_url = broker_urls
    twin = f"{redis_ns.token}:twin:"  # RedBeat's copy, under a prefix of its own
    queue = f"beatspec-a-{redis_ns.token}"
    now = datetime.now(UTC)
    app = e2e.redbeat_app(redis_ns.url, redis_ns.prefix, ours_url)
    twin_app = e2e.redbeat_app(redis_ns.url, twin, theirs_url)
    scheduler = e2e.make_scheduler(redis_ns.url, redis_ns.prefix, ours_url)
    client = redis_ns.client()
    try:
        keys = _save_redbeat_entries(app, queue, now)
        twin_keys = _save_redbeat_entries(twin_app, queue, now)
        before = {name: client.hget(key, "meta") for name, key in keys.items()}

        assert scheduler.run_once()
        e2e.redbeat_scheduler(twin_app).tick()

        with redis.Redis.from_url(ours_url) as ours, redis.Redis.from_url(theirs_url) as theirs:
            mine = _by_label(e2e.read_queue(ours, queue) + e2e.read_queue(ours, f"{queue}-opt"))
            celery = _by_label(e2e.read_queue(theirs, queue)
                               + e2e.read_queue(theirs, f"{queue}-opt"))
        assert set(celery) == {"every", "cron", "opts"}
        assert set(mine) == set(celery)
        for label, message in celery.items():
            e2e.assert_same_message(message, mine[label])

        for name, key in keys.items():
            ours_meta = _redbeat_meta(client.hget(key, "meta"))
            theirs_meta = _redbeat_meta(client.hget(twin_keys[name], "meta"))
            if name in celery:
                assert ours_meta.get("total_run_count") == theirs_meta.get("total_run_count") == 1
                delta = ours_meta["last_run_at"] - theirs_meta["last_run_at"]
                assert abs(delta.total_seconds()) < 1.0, name
            else:
                assert client.hget(key, "meta") == before[name], f"{name} meta changed"
            if name != "off":  # beatspec re-checks a disabled entry every 5 s by its score
                ours_score = client.zscore(redis_ns.prefix + ":schedule", key)
                theirs_score = client.zscore(twin + ":schedule", twin_keys[name])
                assert ours_score is not None and theirs_score is not None
                assert abs(ours_score - theirs_score) <= 1, (name, ours_score, theirs_score)

        fired = RedBeatSchedulerEntry.from_key(keys["opts"], app=app)
        assert fired.total_run_count == 1
        due, _ = fired.is_due()
        assert not due
        assert abs((fired.due_at - fired.last_run_at).total_seconds() - 60) < 1
    finally:
        e2e.close_scheduler(scheduler)
        e2e.close_app(app)
        e2e.close_app(twin_app)


# ------------------------------------------------------------ b. beatspec -> RedBeat

SCHEDULE_TOML = """
[static-every]
task = "interop.static"
args = [1, "every"]
options = {{ queue = "{queue}" }}
schedule = {{ __type__ = "interval", every = 1.0 }}

[static-opts]
task = "interop.static"
args = [2, "opts"]
kwargs = {{ k = "v" }}
options = {{ queue = "{queue}", priority = 6, expires = 30, headers = {{ x-static = "yes" }} }}
schedule = {{ __type__ = "interval", every = 2.0 }}

[static-cron]
task = "interop.static"
args = [3, "cron"]
options = {{ queue = "{queue}" }}
schedule = {{ __type__ = "crontab", minute = "*", hour = "*", day_of_week = "*", day_of_month = "*", month_of_year = "*" }}
"""  # noqa: E501


def test_beatspec_static_entries_fire_under_redbeat(
    redis_ns: Namespace, broker_urls: tuple[str, str], tmp_path: Path,
) -> None:
    """Static entries ``beatspec run --once --schedule FILE`` syncs into the keyspace are read and
    fired by RedBeat: the sync records them in ``:statics`` with ``last_run_at`` = now and the
    score RedBeat computes for them (nothing fires yet, as with RedBeat's own static sync), and
    once due, RedBeat's tick fires the interval entries with the file's args, kwargs and options
    (queue, priority, expires, headers), the crontab exactly when a minute boundary has passed,
    and counts the runs in meta."""
    broker_url = broker_urls[0]
    queue = f"beatspec-b-{redis_ns.token}"
    schedule_file = tmp_path / "schedule.toml"
    schedule_file.write_text(SCHEDULE_TOML.format(queue=queue))
    done = subprocess.run(
        [*e2e.beatspec_command(), "run", "--once", "--redis", redis_ns.url, "--broker",
         broker_url, "--prefix", redis_ns.prefix, "--schedule", str(schedule_file),
         "--lock-ttl", str(LOCK_TTL)],
        env=e2e.subprocess_env(), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    synced = time.time()

    client = redis_ns.client()
    names = ["static-every", "static-opts", "static-cron"]
    app = e2e.redbeat_app(redis_ns.url, redis_ns.prefix, broker_url)
    try:
        assert {m.decode() for m in client.smembers(redis_ns.prefix + ":statics")} == set(names)
        for name in names:
            entry = RedBeatSchedulerEntry.from_key(redis_ns.prefix + name, app=app)
            last = entry.last_run_at.timestamp()
            assert abs(last - synced) < 5
            exact = (last + entry.schedule.run_every.total_seconds() if name != "static-cron"
                     else (last // 60 + 1) * 60)
            score = client.zscore(redis_ns.prefix + ":schedule", entry.key)
            # the exact due time, rounded down; RedBeat's own estimate is never later (it is
            # early by the time since last_run_at for a crontab, redbeat#210)
            assert score == math.floor(exact), (name, score, exact)
            assert score >= entry.score, (name, score, entry.score)
        with redis.Redis.from_url(broker_url) as broker_client:
            assert e2e.read_queue(broker_client, queue) == [], "a new static entry fired at once"

            e2e.wait_for(lambda: time.time() > synced + 2.2, "the interval entries to be due")
            cron_last = RedBeatSchedulerEntry.from_key(redis_ns.prefix + "static-cron",
                                                       app=app).last_run_at
            e2e.redbeat_scheduler(app).tick()
            ticked = datetime.now(UTC)
            fired = _by_label(e2e.read_queue(broker_client, queue))
        cron_due = ticked.replace(second=0, microsecond=0) > cron_last
        assert set(fired) == {1, 2} | ({3} if cron_due else set())

        every, opts = fired[1], fired[2]
        assert every.headers["task"] == "interop.static"
        assert every.body[:2] == [[1, "every"], {}]
        assert opts.body[:2] == [[2, "opts"], {"k": "v"}]
        assert opts.key == f"{queue}\x06\x166"
        assert opts.properties["priority"] == 6
        assert opts.headers["x-static"] == "yes"
        assert opts.headers["celery_beat_task"] is True
        assert opts.headers["expires"] is not None
        for label, name in ((1, "static-every"), (2, "static-opts")):
            meta = _redbeat_meta(client.hget(redis_ns.prefix + name, "meta"))
            assert meta["total_run_count"] == 1, (label, meta)
    finally:
        e2e.close_app(app)


# ------------------------------------------------------------------------------ punctuality


def test_beatspec_wakes_up_for_a_due_time_inside_the_current_second(
    redis_ns: Namespace, broker_urls: tuple[str, str],
) -> None:
    """Scores are whole seconds (⌊due⌋), so an entry due later in the current second is in the
    due range but not yet due. Like RedBeat's tick, which sleeps for ``is_due``'s remaining time,
    beatspec must sleep until that due time, not for the whole max interval: otherwise every run
    of an interval entry is up to ``--max-interval`` late and its period grows by it (an every-1 s
    entry ran about every 2 s, a 60 s one about every 61 s). Deterministic: a fixed clock."""
    last = math.floor(time.time()) - 100 + 0.6  # last run at X.6: due at (X+1).6, score X+1
    key = e2e.write_entry(redis_ns.client(), redis_ns.prefix, "sub-second", TASK,
                          e2e.interval(1), args=["sub-second"])
    client = redis_ns.client()
    client.hset(key, "meta", encode_meta(Meta(DateTime.from_datetime(
        datetime.fromtimestamp(last, UTC)), 1)))
    client.zadd(redis_ns.prefix + ":schedule", {key: math.floor(last + 1)})
    clock = [last + 0.5]  # (X+1).1: in the due range, due 0.5 s from now
    scheduler = e2e.make_scheduler(redis_ns.url, redis_ns.prefix, broker_urls[0], lock_ttl=10,
                                   max_interval=3, clock=lambda: clock[0])
    try:
        assert scheduler.campaign()
        wait = scheduler.tick()
        assert scheduler.fired == 0
        assert wait == pytest.approx(0.5, abs=0.01), "sleeps past the due time"
        clock[0] = last + 1.001
        scheduler.tick()
        assert scheduler.fired == 1
    finally:
        scheduler.release()
        e2e.close_scheduler(scheduler)


# ------------------------------------------------------------------------------ c./d. the lock


def _status(ns: Namespace, leader: str | None = None) -> dict[str, Any] | None:
    """``beatspec status --format json`` for the namespace (None if ``leader`` is given and is
    not its ``leader_kind``)."""
    done = subprocess.run(
        [*e2e.beatspec_command(), "status", "--redis", ns.url, "--prefix", ns.prefix,
         "--format", "json"],
        env=e2e.subprocess_env(), capture_output=True, text=True, timeout=60, check=True)
    status: dict[str, Any] = json.loads(done.stdout)
    return status if leader is None or status["leader_kind"] == leader else None


class Sent:
    """Every message the beats publish to one queue, collected as they arrive."""

    def __init__(self, url: str, queue: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.queue = queue
        self.messages: list[e2e.Message] = []

    def collect(self) -> list[e2e.Message]:
        self.messages += e2e.read_queue(self.client, self.queue)
        return self.messages

    def by(self, proc: e2e.Proc, *, after: float = 0.0) -> list[e2e.Message]:
        return [m for m in self.collect()
                if m.origin == proc.origin and m.sent_at(EXPIRES) >= after]

    def wait_runs(self, proc: e2e.Proc, count: int, *, after: float = 0.0) -> None:
        e2e.wait_for(lambda: len(self.by(proc, after=after)) >= count,
                     f"{count} runs sent by {proc.name}", timeout=30)

    def times(self) -> list[float]:
        return sorted(m.sent_at(EXPIRES) for m in self.collect())


def _save_every_second(app: Any, queue: str) -> str:
    entry = RedBeatSchedulerEntry("every-second", TASK, celery_interval(timedelta(seconds=1)),
                                  args=["tick"], options={"queue": queue, "expires": EXPIRES},
                                  app=app)
    entry.last_run_at = datetime.now(UTC) - timedelta(seconds=5)
    entry.save()
    return str(entry.key)


def _assert_exclusive(sent: Sent, lock: e2e.LockWatcher, beatspecs: list[e2e.Proc],
                      redbeats: list[e2e.Proc]) -> None:
    """Every message was sent while its sender held the lock: a beatspec message near a sample
    of that process's token, a RedBeat message near a sample of a token no beatspec took."""
    tokens = {proc.origin: e2e.beatspec_tokens(proc) for proc in beatspecs}
    ours = set().union(*tokens.values())
    redbeat_origins = {proc.origin for proc in redbeats}
    for message in sent.collect():
        near = lock.holders_near(message.sent_at(EXPIRES), margin=0.5)
        if message.origin in tokens:
            held = bool(near & tokens[message.origin])
        else:
            assert message.origin in redbeat_origins, message.origin
            held = any(t is not None and t not in ours for t in near)
        assert held, f"{message.origin} sent at {message.sent_at(EXPIRES)} holding {near}"


def _leaders(sent: Sent) -> list[str]:
    """The senders in order of their runs, repeats collapsed."""
    order = [m.origin for m in sorted(sent.collect(), key=lambda m: m.sent_at(EXPIRES))]
    return [o for i, o in enumerate(order) if i == 0 or order[i - 1] != o]


def _started(proc: e2e.Proc, marker: str) -> None:
    e2e.wait_for(lambda: marker in proc.log() or not proc.alive(), f"{proc.name} to start")
    assert proc.alive(), proc.tail()


def test_redbeat_beat_and_beatspec_never_lead_together(
    redis_ns: Namespace, broker_urls: tuple[str, str], procs: e2e.Processes,
) -> None:
    """A real ``celery beat -S redbeat.RedBeatScheduler`` and ``beatspec run`` on one keyspace:
    while RedBeat holds the lock, beatspec stays a standby (it never took a token, the lock keeps
    RedBeat's token, ``beatspec status`` reports another leader, every run comes from RedBeat);
    after RedBeat stops gracefully beatspec takes over, and a restarted RedBeat waits (no
    'Acquired lock', no 'Sending due task' in its log, the lock keeps beatspec's token) until
    beatspec stops; every run was sent by a holder of the lock, and no slot ran twice."""
    broker_url = broker_urls[0]
    queue = f"beatspec-c-{redis_ns.token}"
    app = e2e.redbeat_app(redis_ns.url, redis_ns.prefix, broker_url)
    try:
        _save_every_second(app, queue)
    finally:
        e2e.close_app(app)
    sent = Sent(broker_url, queue)
    lock_key = redis_ns.prefix + ":lock"
    with e2e.LockWatcher(redis_ns.url, lock_key) as lock:
        first = procs.redbeat(redis_ns.url, redis_ns.prefix, broker_url, lock_timeout=LOCK_TTL)
        _started(first, "beat: Acquired lock")
        redbeat_token = e2e.wait_for(lock.current, "RedBeat's token in the lock")
        ours = procs.beatspec(redis_ns.url, redis_ns.prefix, broker_url,
                              "--lock-ttl", str(LOCK_TTL))
        _started(ours, "beatspec run starting")
        standby_from = time.time()
        sent.wait_runs(first, 4, after=standby_from)
        status = _status(redis_ns)
        assert status is not None
        assert (status["leader_kind"], status["lock_token"]) == ("other", redbeat_token)
        assert e2e.beatspec_tokens(ours) == set(), ours.tail()
        assert lock.tokens_between(standby_from, time.time()) == {redbeat_token}
        assert {m.origin for m in sent.collect()} == {first.origin}

        assert first.stop() == 0, first.tail()
        e2e.wait_for(lambda: e2e.beatspec_tokens(ours), "beatspec to take the lock")
        [our_token] = e2e.beatspec_tokens(ours)
        status = e2e.wait_for(lambda: _status(redis_ns, leader="beatspec"),
                              "beatspec status to report beatspec as the leader")
        assert status["lock_token"] == our_token
        assert status["leader"]["pid"] == str(ours.pid)
        second = procs.redbeat(redis_ns.url, redis_ns.prefix, broker_url, lock_timeout=LOCK_TTL)
        _started(second, "beat: Starting...")
        waiting_from = time.time()
        sent.wait_runs(ours, 4, after=waiting_from)
        assert "Acquired lock" not in second.log(), second.tail()
        assert "Sending due task" not in second.log(), second.tail()
        assert lock.tokens_between(waiting_from, time.time()) == {our_token}
        assert not sent.by(second)

        assert ours.stop() == 0, ours.tail()
        sent.wait_runs(second, 2)
        assert "beat: Acquired lock" in second.log()
        assert second.stop() == 0, second.tail()
    _assert_exclusive(sent, lock, [ours], [first, second])
    assert _leaders(sent) == [first.origin, ours.origin, second.origin]
    gaps = e2e.gaps(sent.times())
    assert min(gaps) > MIN_GAP, f"a slot ran twice: gaps {gaps}"


def test_alternating_leaders_neither_repeat_nor_skip_runs(
    redis_ns: Namespace, broker_urls: tuple[str, str], procs: e2e.Processes,
) -> None:
    """RedBeat and beatspec take turns leading one keyspace with an every-second entry: RedBeat
    is killed (SIGKILL) and beatspec takes over, beatspec is killed and a new RedBeat takes over,
    that one stops gracefully and a new beatspec takes over. Over the whole run no slot is sent
    twice (consecutive runs > 0.75 s apart), no gap exceeds the failover time (lock TTL + retry)
    plus the one-second interval (+1 s slack), every run was sent by the lock's holder, and the
    entry's run count equals the runs sent, up to one run lost per kill (at most once)."""
    broker_url = broker_urls[0]
    queue = f"beatspec-d-{redis_ns.token}"
    app = e2e.redbeat_app(redis_ns.url, redis_ns.prefix, broker_url)
    try:
        key = _save_every_second(app, queue)
    finally:
        e2e.close_app(app)
    sent = Sent(broker_url, queue)
    lock_key = redis_ns.prefix + ":lock"
    beatspec_args = ("--lock-ttl", str(LOCK_TTL), "--retry-interval", str(RETRY))
    with e2e.LockWatcher(redis_ns.url, lock_key) as lock:
        r1 = procs.redbeat(redis_ns.url, redis_ns.prefix, broker_url, lock_timeout=LOCK_TTL)
        sent.wait_runs(r1, 3)
        b1 = procs.beatspec(redis_ns.url, redis_ns.prefix, broker_url, *beatspec_args)
        _started(b1, "beatspec run starting")
        r1.kill()
        sent.wait_runs(b1, 3)
        r2 = procs.redbeat(redis_ns.url, redis_ns.prefix, broker_url, lock_timeout=LOCK_TTL)
        _started(r2, "beat: Starting...")
        b1.kill()
        sent.wait_runs(r2, 3)
        b2 = procs.beatspec(redis_ns.url, redis_ns.prefix, broker_url, *beatspec_args)
        _started(b2, "beatspec run starting")
        assert r2.stop() == 0, r2.tail()
        sent.wait_runs(b2, 3)
        assert b2.stop() == 0, b2.tail()
    _assert_exclusive(sent, lock, [b1, b2], [r1, r2])
    assert _leaders(sent) == [r1.origin, b1.origin, r2.origin, b2.origin]
    gaps = e2e.gaps(sent.times())
    assert min(gaps) > MIN_GAP, f"a slot ran twice: gaps {gaps}"
    assert max(gaps) <= MAX_GAP, f"runs missed: gaps {gaps}"
    committed = e2e.run_count(redis_ns.client(), key)
    assert len(sent.messages) <= committed <= len(sent.messages) + 2
