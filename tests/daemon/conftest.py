"""Shared support for the daemon tests (``beatspec run`` / ``beatspec status``).

Fixtures:

``broker``
    a session-wide throwaway ``redis-server`` used as the Celery broker (never ``REDIS_URL``).
``broker_ns``
    a fresh database of that broker for one test (flushed afterwards); read what the daemon
    published with :func:`messages` / :class:`Collector`.
``daemons``
    a :class:`DaemonFactory`: starts ``beatspec run`` subprocesses on the test's keyspace and
    broker, with their JSON logs in files; every process still running at the end is killed.
``own_redis``
    a :class:`RestartableRedis` (per test): a ``redis-server`` of our own on a fixed port that
    can be stopped and started again on the same port.

Helpers: :func:`write_entry` writes an entry canonically (definition, meta, optional
extensions and its member in the schedule index), :func:`wait_until` polls a condition.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis

from beatspec.testing import Namespace, RedisServer, find_redis_server, start_redis_server

T = TypeVar("T")

# ------------------------------------------------------------------------------ polling


def wait_until(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05,
               what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


# ------------------------------------------------------------------------------ entries


def dt_json(value: datetime) -> dict[str, Any]:
    value = value.astimezone(UTC)
    return {"__type__": "datetime", "year": value.year, "month": value.month, "day": value.day,
            "hour": value.hour, "minute": value.minute, "second": value.second,
            "microsecond": value.microsecond, "timezone": "UTC"}


def interval(every: float) -> dict[str, Any]:
    return {"__type__": "interval", "every": float(every), "relative": False}


def definition_json(name: str, task: str, schedule: dict[str, Any], *, args: Sequence[Any] = (),
                    kwargs: dict[str, Any] | None = None, options: dict[str, Any] | None = None,
                    enabled: bool = True) -> str:
    """A definition as RedBeat writes it (json.dumps, members in RedBeat's order)."""
    return json.dumps({"name": name, "task": task, "args": list(args), "kwargs": kwargs or {},
                       "options": options or {}, "schedule": schedule, "enabled": enabled})


def meta_json(last_run_at: datetime | None = None, total_run_count: int = 0) -> str:
    return json.dumps({"last_run_at": None if last_run_at is None else dt_json(last_run_at),
                       "total_run_count": total_run_count})


def write_entry(client: redis.Redis, prefix: str, name: str, *, task: str | None = None,
                schedule: dict[str, Any] | None = None, last_run_at: datetime | None = None,
                total_run_count: int = 0, extensions: dict[str, Any] | None = None,
                score: float = 0, enabled: bool = True, options: dict[str, Any] | None = None,
                args: Sequence[Any] = ()) -> str:
    """Write an entry with the create recipe (§12.2): definition, meta, optional extensions and
    its member, in one MULTI/EXEC. Returns the entry key."""
    key = prefix + name
    fields = {"definition": definition_json(name, task or f"tests.{name}",
                                            schedule or interval(1), args=args,
                                            options=options, enabled=enabled),
              "meta": meta_json(last_run_at, total_run_count)}
    if extensions is not None:
        fields["extensions"] = json.dumps(extensions)
    pipe = client.pipeline(transaction=True)
    pipe.delete(key)
    pipe.hset(key, mapping=fields)
    pipe.zadd(prefix + ":schedule", {key: score})
    pipe.execute()
    return key


def run_count(client: redis.Redis, key: str) -> int:
    raw = client.hget(key, "meta")
    return int(json.loads(raw)["total_run_count"]) if raw else 0


# ------------------------------------------------------------------------------ broker


@dataclass(frozen=True)
class Message:
    """One task message as a worker would receive it (kombu's Redis envelope, decoded)."""

    task: str
    id: str
    headers: dict[str, Any]
    properties: dict[str, Any]
    body: Any
    received: float = 0.0  # time.time() when a Collector popped it (0: read with LRANGE)


def decode_message(raw: bytes, received: float = 0.0) -> Message:
    envelope = json.loads(raw)
    body = envelope["body"]
    if envelope["properties"].get("body_encoding") == "base64":
        body = base64.b64decode(body)
    headers = envelope["headers"]
    return Message(task=headers["task"], id=headers["id"], headers=headers,
                   properties=envelope["properties"], body=json.loads(body), received=received)


def messages(client: redis.Redis, queue: str = "celery") -> list[Message]:
    """Every message waiting in ``queue``, oldest first (kombu LPUSHes, workers BRPOP)."""
    return [decode_message(raw) for raw in reversed(client.lrange(queue, 0, -1))]


class Collector:
    """Pops messages off a queue as they arrive, noting the arrival time (a worker's view)."""

    def __init__(self, url: str, queue: str = "celery") -> None:
        self.client = redis.Redis.from_url(url)
        self.queue = queue
        self.received: list[Message] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                item = self.client.brpop([self.queue], timeout=0.1)
            except redis.RedisError:
                time.sleep(0.05)
                continue
            if item is not None:
                message = decode_message(item[1], time.time())
                with self._lock:
                    self.received.append(message)

    def snapshot(self) -> list[Message]:
        with self._lock:
            return list(self.received)

    def by_task(self) -> dict[str, list[Message]]:
        out: dict[str, list[Message]] = {}
        for m in self.snapshot():
            out.setdefault(m.task, []).append(m)
        return out

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.client.close()


@pytest.fixture(scope="session")
def broker() -> Iterator[RedisServer]:
    """A throwaway Redis server as the Celery broker (never the schedule's server)."""
    server = start_redis_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broker_ns(broker: RedisServer) -> Iterator[Namespace]:
    """A database of its own on the broker for one test, flushed afterwards."""
    ns = broker.namespace()
    try:
        yield ns
    finally:
        ns.cleanup()


# ------------------------------------------------------------------------------ daemons


def beatspec_command() -> list[str]:
    script = Path(sys.executable).parent / "beatspec"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from beatspec.cli import main; main()"]


@dataclass
class Daemon:
    """One ``beatspec run`` subprocess; its stderr (JSON log lines) goes to ``log_path``."""

    process: subprocess.Popen[bytes]
    log_path: Path
    args: list[str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def logs(self) -> list[dict[str, Any]]:
        """The JSON log lines written so far (other lines, e.g. click errors, are skipped)."""
        out = []
        for line in self.log_text().splitlines():
            with contextlib.suppress(ValueError):
                value = json.loads(line)
                if isinstance(value, dict):
                    out.append(value)
        return out

    def events(self, text: str) -> list[dict[str, Any]]:
        return [line for line in self.logs() if text in str(line.get("event", ""))]

    def wait_log(self, text: str, timeout: float = 15.0, count: int = 1) -> list[dict[str, Any]]:
        return wait_until(lambda: (len(self.events(text)) >= count and self.events(text)),
                          timeout, what=f"log {text!r} x{count} from pid {self.pid}:\n"
                          + self.log_text()[-3000:])

    def send(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send ``sig`` (after SIGCONT, in case it is stopped) and wait for the exit code."""
        if self.alive():
            os.kill(self.pid, signal.SIGCONT)
            os.kill(self.pid, sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"pid {self.pid} did not exit within {timeout} s after "
                                 f"signal {sig}:\n{self.log_text()[-3000:]}") from None

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"pid {self.pid} still running after {timeout} s:\n"
                                 + self.log_text()[-3000:]) from None


class DaemonFactory:
    """Starts ``beatspec run`` on a keyspace and a broker; cleans up every process."""

    def __init__(self, workdir: Path, ns: Namespace, broker_ns: Namespace) -> None:
        self.workdir = workdir
        self.ns = ns
        self.broker_ns = broker_ns
        self.started: list[Daemon] = []

    def base_args(self, *, redis_url: str | None = None, prefix: str | None = None,
                  broker_url: str | None = None) -> list[str]:
        return ["run", "--redis", redis_url or self.ns.url,
                "--broker", broker_url or self.broker_ns.url,
                "--prefix", prefix or self.ns.prefix]

    def start(self, *extra: str, lock_ttl: float | None = 3, max_interval: float | None = 0.2,
              retry_interval: float | None = 0.25, log_format: str = "json",
              redis_url: str | None = None, prefix: str | None = None,
              broker_url: str | None = None, env: dict[str, str] | None = None,
              bare: bool = False) -> Daemon:
        """Start a daemon (short TTL and intervals unless given); ``bare`` passes only
        ``extra`` after ``run`` (for option-parsing tests)."""
        if bare:
            args = ["run", *extra]
        else:
            args = self.base_args(redis_url=redis_url, prefix=prefix, broker_url=broker_url)
            if lock_ttl is not None:
                args += ["--lock-ttl", f"{lock_ttl:g}"]
            if max_interval is not None:
                args += ["--max-interval", f"{max_interval:g}"]
            if retry_interval is not None:
                args += ["--retry-interval", f"{retry_interval:g}"]
            args += ["--log-format", log_format, *extra]
        log_path = self.workdir / f"daemon-{len(self.started)}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("BEATSPEC_")}
        full_env.update(env or {})
        with log_path.open("wb") as log:
            process = subprocess.Popen([*beatspec_command(), *args], stdout=log, stderr=log,
                                       stdin=subprocess.DEVNULL, env=full_env)
        daemon = Daemon(process, log_path, args)
        self.started.append(daemon)
        return daemon

    def run(self, *extra: str, timeout: float = 60.0, env: dict[str, str] | None = None,
            bare: bool = False, **kwargs: Any) -> tuple[int, str]:
        """Run a daemon to completion (``--once``, usage errors); (exit code, output)."""
        daemon = self.start(*extra, env=env, bare=bare, **kwargs)
        code = daemon.wait(timeout)
        return code, daemon.log_text()

    def cleanup(self) -> None:
        for daemon in self.started:
            if daemon.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(daemon.pid, signal.SIGCONT)
                daemon.process.kill()
                daemon.process.wait()


@pytest.fixture
def daemons(redis_ns: Namespace, broker_ns: Namespace) -> Iterator[DaemonFactory]:
    workdir = Path(tempfile.mkdtemp(prefix="beatspec-daemon-"))
    factory = DaemonFactory(workdir, redis_ns, broker_ns)
    try:
        yield factory
    finally:
        factory.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def lock_token(client: redis.Redis, prefix: str) -> str | None:
    raw = client.get(prefix + ":lock")
    return None if raw is None else raw.decode()


def status_token(client: redis.Redis, prefix: str) -> str | None:
    raw = client.hget(prefix + ":scheduler", "token")
    return None if raw is None else raw.decode()


def leader_pid(client: redis.Redis, prefix: str) -> int | None:
    """The pid of the beatspec leader, when the lock token is the one its status names."""
    token = lock_token(client, prefix)
    status = client.hgetall(prefix + ":scheduler")
    if token is None or status.get(b"token", b"").decode() != token:
        return None
    return int(status[b"pid"])


# ------------------------------------------------------------------------------ servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RestartableRedis:
    """A ``redis-server`` of our own on a fixed port: stop() and start() keep the port (and,
    with ``save``, the data in ``workdir``)."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                "--daemonize", "no", "--logfile", str(self.workdir / "redis.log")]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        try:
            def ready() -> bool:
                assert self.process is not None and self.process.poll() is None, "exited"
                try:
                    return bool(client.ping())
                except redis.ConnectionError:
                    return False
            wait_until(ready, 10, what=f"redis-server on port {self.port}")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


@pytest.fixture
def own_redis() -> Iterator[RestartableRedis]:
    workdir = Path(tempfile.mkdtemp(prefix="beatspec-own-redis-"))
    server = RestartableRedis(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def closed_port() -> int:
    """A loopback port nobody listens on (bound and released)."""
    return free_port()


# The test modules import the helpers above as ``daemon_kit``: tests/ has no __init__.py, so
# this file is imported as "conftest", a name pytest reuses for every conftest.py it loads.
sys.modules.setdefault("daemon_kit", sys.modules[__name__])
