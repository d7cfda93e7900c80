"""Helpers for the daemon's end-to-end tests: entries, broker messages, subprocesses, the lock.

Not a conftest (another module owns ``tests/daemon/conftest.py``): the test modules put this
directory on ``sys.path`` and import it. Everything here drives real parts: ``redis-server``,
RabbitMQ, ``celery worker``, ``celery beat -S redbeat.RedBeatScheduler`` and ``beatspec run``.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import redis

from beatspec.daemon import Publisher, RunConfig, Scheduler
from beatspec.keyspace import Layout
from beatspec.keyspace.scheduling import ScheduleStore

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
HOST = socket.gethostname()
SEP = "\x06\x16"  # kombu's Redis priority-queue separator: queue + SEP + step
AMQP_URL = os.environ.get("BEATSPEC_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

T = TypeVar("T")


# ------------------------------------------------------------------------------ waiting


def wait_for(predicate: Callable[[], T], what: str, timeout: float = 20.0,
             interval: float = 0.05) -> T:
    """conftest's ``wait_until`` with a longer default ``timeout`` (generous: the end-to-end
    tests check correctness, never speed)."""
    from daemon_kit import wait_until  # conftest, registered under this name

    result: T = wait_until(predicate, timeout=timeout, interval=interval, what=what)
    return result


def amqp_unavailable(url: str = AMQP_URL) -> str | None:
    """Why RabbitMQ cannot be used (None: it answers on loopback)."""
    import kombu

    try:
        with kombu.Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"no RabbitMQ at {url}: {type(exc).__name__}: {exc}"
    return None


def delete_amqp(url: str, queues: Sequence[str], exchanges: Sequence[str] = ()) -> None:
    """Remove the queues and exchanges a test declared on a shared RabbitMQ."""
    import kombu

    with kombu.Connection(url, connect_timeout=2) as conn:
        channel = conn.channel()
        for name in queues:
            with contextlib.suppress(Exception):
                channel.queue_delete(name)
        for name in exchanges:
            with contextlib.suppress(Exception):
                channel.exchange_delete(name)


# ------------------------------------------------------------------------------ entries


def interval(seconds: float) -> dict[str, Any]:
    """RedBeat's JSON for ``celery.schedules.schedule(timedelta(seconds=...))``."""
    return {"__type__": "interval", "every": float(seconds), "relative": False}


def crontab(minute: str = "*", hour: str = "*", day_of_week: str = "*",
            day_of_month: str = "*", month_of_year: str = "*") -> dict[str, Any]:
    return {"__type__": "crontab", "minute": minute, "hour": hour, "day_of_week": day_of_week,
            "day_of_month": day_of_month, "month_of_year": month_of_year}


def write_entry(client: redis.Redis, prefix: str, name: str, task: str,
                schedule: Mapping[str, Any], *, args: Sequence[Any] = (),
                kwargs: Mapping[str, Any] | None = None,
                options: Mapping[str, Any] | None = None, enabled: bool = True) -> str:
    """Write a never-run entry the way a dynamic writer does (definition, ``last_run_at: null``,
    score 0: due now); returns its key."""
    key = prefix + name
    definition = {"name": name, "task": task, "args": list(args), "kwargs": dict(kwargs or {}),
                  "options": dict(options or {}), "schedule": dict(schedule),
                  "enabled": enabled}
    with client.pipeline() as pipe:
        pipe.hset(key, mapping={"definition": json.dumps(definition),
                                "meta": json.dumps({"last_run_at": None})})
        pipe.zadd(prefix + ":schedule", {key: 0})
        pipe.execute()
    return key


def read_meta(client: redis.Redis, key: str) -> dict[str, Any]:
    raw = client.hget(key, "meta")
    return json.loads(raw) if raw else {}


def run_count(client: redis.Redis, key: str) -> int:
    return int(read_meta(client, key).get("total_run_count") or 0)


# ------------------------------------------------------------------------------ messages


@dataclass(frozen=True)
class Message:
    """One task message as it sits in kombu's Redis transport (the raw envelope)."""

    key: str  # the Redis list it was in: queue, or queue + SEP + priority step
    envelope: Mapping[str, Any]

    @property
    def headers(self) -> Mapping[str, Any]:
        return self.envelope["headers"]

    @property
    def properties(self) -> Mapping[str, Any]:
        return self.envelope["properties"]

    @property
    def body(self) -> list[Any]:
        return json.loads(base64.b64decode(self.envelope["body"]))

    @property
    def task_id(self) -> str:
        return str(self.headers["id"])

    @property
    def origin(self) -> str:
        return str(self.headers["origin"])

    def sent_at(self, expires: float) -> float:
        """When the sender built the message, from the ``expires`` header of an entry whose
        ``options.expires`` is the number ``expires`` (both Celery and beatspec compute it
        as now + expires)."""
        return datetime.fromisoformat(self.headers["expires"]).timestamp() - expires


def read_queue(client: redis.Redis, queue: str, *, pop: bool = True) -> list[Message]:
    """Every message waiting in ``queue`` (all its priority lists), oldest first per list."""
    keys = [queue, *(k.decode() if isinstance(k, bytes) else k
                     for k in client.scan_iter(match=f"{queue}{SEP}*"))]
    found = []
    for key in keys:
        with client.pipeline() as pipe:
            pipe.lrange(key, 0, -1)
            if pop:
                pipe.delete(key)
            raw = pipe.execute()[0]
        found += [Message(key, json.loads(item)) for item in reversed(raw)]  # LPUSH/BRPOP
    return found


#: What differs between two sends of one entry (the times are compared to within a second).
VARYING_HEADERS = ("id", "root_id", "origin", "eta", "expires")
VARYING_PROPERTIES = ("correlation_id", "reply_to", "delivery_tag", "expiration")


def stable_envelope(message: Message) -> dict[str, Any]:
    """The envelope without the fields that differ between any two sends of one entry."""
    envelope = json.loads(json.dumps(message.envelope))
    for name in VARYING_HEADERS:
        envelope["headers"].pop(name)
    for name in VARYING_PROPERTIES:
        envelope["properties"].pop(name, None)
    return {"key": message.key, **envelope}


def _differences(mine: dict[str, Any], theirs: dict[str, Any]) -> str:
    """The members that differ, decoded bodies included (this module is not assert-rewritten)."""
    lines = []
    for part in ("key", "body", "content-encoding", "content-type", "headers", "properties"):
        a, b = mine.get(part), theirs.get(part)
        if part == "body":
            a, b = (base64.b64decode(x).decode() if isinstance(x, str) else x for x in (a, b))
        if isinstance(a, dict) and isinstance(b, dict):
            lines += [f"{part}.{k}: ours {a.get(k)!r} != celery {b.get(k)!r}"
                      for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
        elif a != b:
            lines.append(f"{part}: ours {a!r} != celery {b!r}")
    return "\n".join(lines)


def assert_same_message(beat: Message, ours: Message) -> None:
    """``ours`` is the message ``beat`` (Celery's) is, up to ids, origin and times."""
    for message in (beat, ours):
        assert message.headers["id"] == message.headers["root_id"]
        assert message.headers["id"] == message.properties["correlation_id"]
    mine, theirs = stable_envelope(ours), stable_envelope(beat)
    assert mine == theirs, _differences(mine, theirs)
    for name in ("eta", "expires"):
        theirs, mine = beat.headers[name], ours.headers[name]
        assert (theirs is None) == (mine is None), (name, theirs, mine)
        if theirs is not None:
            a, b = datetime.fromisoformat(theirs), datetime.fromisoformat(mine)
            assert a.utcoffset() == b.utcoffset(), (name, theirs, mine)
            assert abs((a - b).total_seconds()) < 1.0, (name, theirs, mine)
    # milliseconds until an absolute ``expires``: both count from their own send
    theirs_ms, mine_ms = (m.properties.get("expiration") for m in (beat, ours))
    assert (theirs_ms is None) == (mine_ms is None), (theirs_ms, mine_ms)
    if theirs_ms is not None:
        assert abs(int(theirs_ms) - int(mine_ms)) < 1000, (theirs_ms, mine_ms)


def gaps(times: Sequence[float]) -> list[float]:
    """Seconds between consecutive ``times`` (sorted first)."""
    ordered = sorted(times)
    return [round(b - a, 3) for a, b in itertools.pairwise(ordered)]


def origin_of(pid: int) -> str:
    """The ``origin`` header a process sends (Celery's anon_nodename: gen<pid>@<host>)."""
    return f"gen{pid}@{HOST}"


# ------------------------------------------------------------------------------ in-process daemon


class Clock:
    """A settable clock for a scheduler (``make_scheduler(..., clock=Clock(t))``)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_scheduler(redis_url: str, prefix: str, broker_url: str, **config: Any) -> Scheduler:
    """A beatspec Scheduler on ``prefix`` at ``redis_url``, publishing to ``broker_url``."""
    clock = config.pop("clock", time.time)
    config.setdefault("lock_ttl", 3.0)
    run = RunConfig(redis_url=redis_url, broker_url=broker_url, prefix=prefix, **config)
    client = redis.Redis.from_url(redis_url)
    return Scheduler(run, ScheduleStore(client, Layout(prefix)), Publisher(broker_url),
                     clock=clock)


def close_scheduler(scheduler: Scheduler) -> None:
    scheduler.publisher.close()
    scheduler.store.client.close()


@contextlib.contextmanager
def daemon_thread(scheduler: Scheduler) -> Iterator[Scheduler]:
    """Run ``scheduler.run()`` in a thread; stop it (releasing the lock) on exit."""
    thread = threading.Thread(target=scheduler.run, name="beatspec-run", daemon=True)
    thread.start()
    try:
        yield scheduler
    finally:
        scheduler.stopping.set()
        thread.join(timeout=15)
        assert not thread.is_alive(), "the daemon thread did not stop"


# ------------------------------------------------------------------------------ subprocesses


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for worker/beat/daemon subprocesses: this directory importable (for
    ``-A celery_app``), no inherited Celery/beatspec settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BEATSPEC_", "CELERY_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def beatspec_command() -> list[str]:
    """The ``beatspec`` console script of the running interpreter's environment."""
    script = Path(sys.executable).with_name("beatspec")
    if script.exists():
        return [str(script)]
    found = shutil.which("beatspec")
    assert found, "the beatspec console script is not installed"
    return [found]


@dataclass
class Proc:
    """A subprocess whose stdout and stderr go to a log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(self.argv, env=self.env, cwd=self.log_path.parent,
                                            stdout=log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def origin(self) -> str:
        return origin_of(self.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM (a graceful stop: both beats release the lock) and wait; the exit code."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not stop on SIGTERM:\n{self.tail()}") from None

    def kill(self) -> None:
        """SIGKILL: a crash; the lock it held stays until its TTL runs out."""
        if self.alive():
            self.process.kill()
        self.process.wait(timeout=10)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


class Processes:
    """Starts the tests' subprocesses and kills whatever is left at the end."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Proc] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Proc:
        proc = Proc(name, argv, env, self.log_dir / f"{name}.log")
        self.started.append(proc)
        return proc

    def worker(self, broker_url: str, queues: Sequence[str], *, results_url: str,
               results_key: str) -> Proc:
        """``celery worker`` (solo pool) on ``queues``; tasks record their runs at
        ``results_url``/``results_key``."""
        env = subprocess_env(BEATSPEC_E2E_BROKER=broker_url, BEATSPEC_E2E_RESULTS=results_url,
                             BEATSPEC_E2E_RESULTS_KEY=results_key)
        name = f"worker-{len(self.started)}"
        return self.start(name, [
            sys.executable, "-m", "celery", "-A", "celery_app", "worker", "--pool", "solo",
            "-c", "1", "-Q", ",".join(queues), "-n", f"{name}-{os.getpid()}@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO",
        ], env)

    def redbeat(self, redis_url: str, prefix: str, broker_url: str, *, lock_timeout: int,
                max_interval: float = 1.0) -> Proc:
        """``celery beat -S redbeat.RedBeatScheduler`` on ``prefix`` at ``redis_url``."""
        env = subprocess_env(
            BEATSPEC_E2E_BROKER=broker_url, BEATSPEC_E2E_REDBEAT_URL=redis_url,
            BEATSPEC_E2E_REDBEAT_PREFIX=prefix, BEATSPEC_E2E_LOCK_TIMEOUT=str(lock_timeout),
            BEATSPEC_E2E_MAX_INTERVAL=str(max_interval))
        return self.start(f"redbeat-{len(self.started)}", [
            sys.executable, "-m", "celery", "-A", "celery_app", "beat",
            "-S", "redbeat.RedBeatScheduler", "-l", "INFO", "--pidfile=",
        ], env)

    def beatspec(self, redis_url: str, prefix: str, broker_url: str, *args: str) -> Proc:
        """``beatspec run`` with JSON logs."""
        return self.start(f"beatspec-{len(self.started)}", [
            *beatspec_command(), "run", "--redis", redis_url, "--broker", broker_url,
            "--prefix", prefix, "--log-format", "json", *args,
        ], subprocess_env())

    def close(self) -> None:
        for proc in self.started:
            with contextlib.suppress(Exception):
                proc.kill()


def beatspec_tokens(proc: Proc) -> set[str]:
    """The lock tokens a ``beatspec run --log-format json`` process took, from its log."""
    tokens = set()
    for line in proc.log().splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict) and event.get("event") == "became the leader":
                tokens.add(str(event["token"]))
    return tokens


# ------------------------------------------------------------------------------ the lock


class LockWatcher:
    """Samples the lock key every ``period`` seconds: (time, token or None)."""

    def __init__(self, url: str, lock_key: str, period: float = 0.05) -> None:
        self.client = redis.Redis.from_url(url, decode_responses=True)
        self.lock_key = lock_key
        self.period = period
        self.samples: list[tuple[float, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lock-watcher", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            token = self.client.get(self.lock_key)
            self.samples.append((time.time(), token if isinstance(token, str) else None))
            self._stop.wait(self.period)

    def __enter__(self) -> LockWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.client.close()

    def current(self) -> str | None:
        return self.samples[-1][1] if self.samples else None

    def tokens_between(self, start: float, end: float) -> set[str | None]:
        return {token for at, token in self.samples if start <= at <= end}

    def holders_near(self, at: float, margin: float = 0.25) -> set[str | None]:
        """The tokens sampled within ``margin`` seconds of ``at``."""
        return self.tokens_between(at - margin, at + margin)


# ------------------------------------------------------------------------------ in-process RedBeat


def redbeat_app(redis_url: str, prefix: str, broker_url: str, **conf: Any) -> Any:
    """A Celery app for in-process RedBeat use on ``prefix`` (no lock: the tests tick directly).
    It registers no tasks, so beat sends with ``send_task`` as a beat without the task
    modules does."""
    from celery import Celery

    app = Celery("beatspec-e2e-beat", set_as_current=False)
    app.conf.update(
        broker_url=broker_url,
        redbeat_redis_url=redis_url,
        redbeat_redis_options={},
        redbeat_key_prefix=prefix,
        redbeat_lock_key=None,
        result_expires=None,
        beat_max_loop_interval=1,
        beat_schedule={},
        timezone="UTC",
        **conf,
    )
    return app


def close_app(app: Any) -> None:
    client = getattr(app, "redbeat_redis", None)
    if client is not None:
        with contextlib.suppress(Exception):
            client.close()
    with contextlib.suppress(Exception):
        app.close()


def redbeat_scheduler(app: Any) -> Any:
    """RedBeat's scheduler without ``setup_schedule`` (``lazy``): it neither installs nor
    removes static entries, so what it fires is exactly what is in the keyspace."""
    from redbeat import RedBeatScheduler

    return RedBeatScheduler(app=app, lazy=True)
