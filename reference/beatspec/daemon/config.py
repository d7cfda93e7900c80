"""The daemon's settings: one frozen value, filled from options, ``BEATSPEC_*`` and TOML."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beatspec.connection import ConnectionOptions

__all__ = ["RunConfig", "load_toml"]


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything ``beatspec run`` needs; the defaults are the documented ones."""

    redis_url: str
    broker_url: str
    prefix: str = "redbeat:"
    lock_key: str | None = None  # default: prefix + ":lock"
    app_timezone: str = "UTC"
    schedule_file: Path | None = None
    lock_ttl: float = 10.0
    retry_interval: float = 1.0
    max_interval: float = 1.0
    batch: int = 250
    default_queue: str = "celery"
    backoff_min: float = 10.0
    backoff_max: float = 300.0
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    log_format: str = "text"
    log_level: str = "INFO"
    once: bool = False
    connection: ConnectionOptions = field(default_factory=ConnectionOptions)

    @property
    def renew_interval(self) -> float:
        """How often the leader extends the lock: a third of the TTL, so two can fail."""
        return self.lock_ttl / 3.0

    def problems(self) -> list[str]:
        """Settings that cannot work together, as messages for a usage error."""
        found = []
        if self.lock_ttl < 2:
            found.append("--lock-ttl must be at least 2 seconds")
        if self.max_interval > self.renew_interval:
            found.append(f"--max-interval ({self.max_interval:g} s) must not exceed a third of "
                         f"--lock-ttl ({self.lock_ttl:g} s), or the lock expires while the "
                         "leader sleeps (LOCK-5)")
        if self.backoff_min > self.backoff_max:
            found.append("--backoff-min must not exceed --backoff-max")
        return found


#: options whose parameter (and RunConfig field) is named differently from the option
_PARAMETERS = {"redis": "redis_url", "broker": "broker_url", "schedule": "schedule_file"}


def load_toml(path: Path) -> dict[str, Any]:
    """The ``[run]`` table of a TOML settings file (or the whole file if it has none), with
    option names as keys (``lock-ttl`` or ``lock_ttl``; ``redis`` or ``redis_url``)."""
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    table = data.get("run", data)
    if not isinstance(table, dict):
        raise ValueError(f"{path}: [run] must be a table")
    names = (str(k).replace("-", "_") for k in table)
    return {_PARAMETERS.get(name, name): v for name, v in zip(names, table.values(), strict=True)}
