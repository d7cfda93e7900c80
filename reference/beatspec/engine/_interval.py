"""Interval next-run computation: Celery 5.7's ``remaining`` (elapsed time; relative rounding).

Plain intervals are elapsed time: ``last_run_at + every`` in UTC. Relative intervals round the
deadline down to the interval's unit (day, hour or minute) on the wall clock of
``last_run_at``'s own zone, handling DST gaps and repeated times as Celery 5.7 does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from beatspec.engine._tz import exists, has_transitions, resolve_gap

__all__ = ["interval_next"]

_DAY = timedelta(days=1)
_HOUR = timedelta(hours=1)
_MINUTE = timedelta(minutes=1)


def _truncate(value: datetime, every: timedelta) -> datetime:
    """Round a wall time down to the unit of ``every`` (Celery's ``delta_resolution``)."""
    if every >= _DAY:
        return value.replace(hour=0, minute=0, second=0, microsecond=0)
    if every >= _HOUR:
        return value.replace(minute=0, second=0, microsecond=0)
    if every >= _MINUTE:
        return value.replace(second=0, microsecond=0)
    return value.replace(microsecond=0)


def _occurrences(value: datetime, every: timedelta) -> list[datetime]:
    """Both PEP 495 occurrences of the rounded wall time, gaps resolved forwards, as UTC."""
    rounded = _truncate(value, every)
    zone = rounded.tzinfo
    out: list[datetime] = []
    for fold in (0, 1):
        candidate = rounded.replace(fold=fold)
        if zone is not None and has_transitions(zone) and not exists(candidate, zone):
            resolved = resolve_gap(candidate)
            if resolved.replace(tzinfo=None) > candidate.replace(tzinfo=None):
                candidate = resolved
        out.append(candidate.astimezone(UTC))
    return out


def interval_next(last_run_at: datetime, every: timedelta, relative: bool) -> datetime:
    """The next run after ``last_run_at`` (aware) as an aware UTC datetime."""
    start_utc = last_run_at.astimezone(UTC)
    if not relative:
        return start_utc + every  # elapsed time: the zone plays no part
    if every < _DAY:
        end = (start_utc + every).astimezone(last_run_at.tzinfo)
    else:
        end = last_run_at + every  # calendar days on the wall clock
    candidates = _occurrences(end, every)
    if every >= _DAY:
        future = [c for c in candidates if c > start_utc]
        return min(future, default=end.astimezone(UTC))
    end_utc = start_utc + every
    before = [c for c in candidates if c <= end_utc]
    rounded = max(before) if before else min(candidates)
    if every >= _MINUTE and rounded <= start_utc:
        unit = _HOUR if every >= _HOUR else _MINUTE
        candidates += _occurrences(end + unit, every)
        candidates += _occurrences(last_run_at + every, every)
        future = [c for c in candidates if c > start_utc]
        before = [c for c in future if c <= end_utc]
        rounded = max(before) if before else min(future, default=end_utc)
    return rounded
