"""Open Redis connections for the CLI: ``redis://``, ``rediss://`` (TLS), ``unix://``, ACL users,
Sentinel and Cluster. Passwords never appear in messages: every URL shown goes through
:func:`redact`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

import redis
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException
from redis.sentinel import Sentinel

try:
    import redis.driver_info

    _HAS_DRIVER_INFO = True
except ImportError:  # pragma: no cover - redis-py before 8
    _HAS_DRIVER_INFO = False
try:
    from redis.maint_notifications import MaintNotificationsConfig
except ImportError:  # pragma: no cover - redis-py before 7
    MaintNotificationsConfig = None  # type: ignore[assignment, misc]

__all__ = ["ConnectionFailed", "ConnectionOptions", "connect", "redact"]


class ConnectionFailed(RuntimeError):
    """Redis could not be reached, or refused the credentials."""


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "<unparsable URL>"
    if password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


@dataclass(frozen=True, slots=True)
class ConnectionOptions:
    """Everything besides the URL. ``sentinels`` are ``host:port`` strings (the URL's host is
    then ignored and ``service`` names the master); ``cluster`` talks to Redis Cluster."""

    username: str | None = None
    password: str | None = None
    tls_ca_cert: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_insecure: bool = False
    sentinels: tuple[str, ...] = ()
    service: str = "mymaster"
    sentinel_password: str | None = None
    cluster: bool = False
    timeout: float = 5.0


def _common(options: ConnectionOptions) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "socket_timeout": options.timeout,
        "socket_connect_timeout": options.timeout,
    }
    # no CLIENT SETINFO on connect: a least-privilege ACL user need not allow it
    if _HAS_DRIVER_INFO:
        kwargs["driver_info"] = None
    else:  # pragma: no cover - redis-py before 8
        kwargs.update(lib_name=None, lib_version=None)
    if MaintNotificationsConfig is not None:
        # redis-py 8 would send CLIENT MAINT_NOTIFICATIONS on connect: not a read command
        kwargs["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    if options.username is not None:
        kwargs["username"] = options.username
    if options.password is not None:
        kwargs["password"] = options.password
    return kwargs


def _tls(options: ConnectionOptions) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if options.tls_ca_cert:
        kwargs["ssl_ca_certs"] = options.tls_ca_cert
    if options.tls_cert:
        kwargs["ssl_certfile"] = options.tls_cert
    if options.tls_key:
        kwargs["ssl_keyfile"] = options.tls_key
    if options.tls_insecure:
        kwargs["ssl_cert_reqs"] = "none"
        kwargs["ssl_check_hostname"] = False
    return kwargs


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"{text!r} is not host:port")
    return host.strip("[]"), int(port)


def _client(url: str, options: ConnectionOptions) -> Any:
    parts = urlsplit(url)
    scheme = parts.scheme
    common = _common(options)
    tls = _tls(options) if scheme == "rediss" else {}
    if options.sentinels:
        db = int(parts.path.strip("/") or parse_qs(parts.query).get("db", ["0"])[0])
        sentinel_kwargs: dict[str, Any] = {"socket_timeout": options.timeout}
        if options.sentinel_password:
            sentinel_kwargs["password"] = options.sentinel_password
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            [_host_port(s) for s in options.sentinels], sentinel_kwargs=sentinel_kwargs,
            **common, **({"ssl": True, **tls} if tls else {}),
        )
        if parts.password and "password" not in common:
            common["password"] = unquote(parts.password)
        return sentinel.master_for(options.service, db=db, **common)  # type: ignore[no-untyped-call]
    if options.cluster:
        return RedisCluster.from_url(url, **common, **tls)
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(f"unsupported scheme {scheme!r}: use redis://, rediss:// or unix://")
    return redis.Redis.from_url(url, **common, **tls)


def connect(url: str, options: ConnectionOptions | None = None) -> Any:
    """A client (``redis.Redis`` or ``RedisCluster``), checked with PING."""
    options = options or ConnectionOptions()
    try:
        client = _client(url, options)
        client.ping()
    except ValueError as exc:
        raise ConnectionFailed(f"bad Redis URL {redact(url)}: {exc}") from None
    except redis.AuthenticationError as exc:
        raise ConnectionFailed(f"authentication failed for {redact(url)}: {exc}") from None
    except redis.ResponseError as exc:
        raise ConnectionFailed(f"Redis at {redact(url)} refused: {exc}") from None
    except (redis.RedisError, RedisClusterException, OSError) as exc:
        text = _safe(str(exc), options)
        if options.cluster and "Cluster mode is not enabled" in text:
            # redis-py says so too when the server is a Cluster node but the user may not run
            # CLUSTER SLOTS, which it sends to learn the topology
            text += (" (--cluster: the server is not a Cluster node, or the user lacks "
                     "'+cluster|slots' in its ACL)")
        raise ConnectionFailed(f"cannot reach Redis at {redact(url)}: {text}") from None
    return client


def _safe(text: str, options: ConnectionOptions) -> str:
    for secret in (options.password, options.sentinel_password):
        if secret:
            text = text.replace(secret, "***")
    return text
