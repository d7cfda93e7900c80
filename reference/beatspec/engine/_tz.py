"""Time-zone arithmetic the engine needs: wall clocks, PEP 495 folds, DST gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

__all__ = ["UTC", "exists", "has_transitions", "resolve_gap", "to_utc"]

_DAY = timedelta(days=1)


def to_utc(value: datetime) -> datetime:
    """An aware datetime as UTC; a naive one is taken to be UTC (Celery's rule)."""
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def has_transitions(zone: tzinfo) -> bool:
    """Zones that can have gaps or folds (IANA zones); fixed offsets cannot."""
    return isinstance(zone, ZoneInfo)


def exists(wall: datetime, zone: tzinfo) -> bool:
    """True unless the wall time falls in a DST gap of ``zone`` (it round-trips through UTC)."""
    naive = wall.replace(tzinfo=None)
    back = naive.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    return back == naive


def resolve_gap(wall: datetime) -> datetime:
    """Move a wall time inside a DST gap forward by the gap's length (as dateutil does)."""
    after = (wall + _DAY).utcoffset()
    before = (wall - _DAY).utcoffset()
    if after is None or before is None:  # pragma: no cover - aware input only
        return wall
    return wall + (after - before)
