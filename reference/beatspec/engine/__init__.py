"""The one schedule engine: when is an entry due, Celery 5.7-exact (spec §5 and §10).

Pure functions on immutable values; no Redis, no clock: ``now`` is always an argument.

``last_run_at`` is an aware :class:`~datetime.datetime` as decoded from ``meta`` (its own zone
matters for relative intervals), or ``None`` for an entry that never ran; ``zone`` is the zone
crontabs are matched in (the app time zone, or the entry's ``extensions.timezone``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from beatspec.codec.types import Crontab, Interval, RRule, Schedule, Solar
from beatspec.engine._crontab import compile_crontab, crontab_next
from beatspec.engine._interval import interval_next
from beatspec.engine._rrule import rrule_next
from beatspec.engine._tz import to_utc

__all__ = [
    "NEVER_RUN",
    "DueState",
    "UnsupportedSchedule",
    "due",
    "fire_times",
    "next_run",
    "score",
    "score_for",
]


class UnsupportedSchedule(ValueError):
    """The schedule type needs an optional extra (``solar`` needs ``beatspec[solar]``)."""


def NEVER_RUN(zone: tzinfo) -> datetime:
    """What RedBeat evaluates a never-run entry against: 0001-01-02 in the app zone."""
    return datetime(1, 1, 2, tzinfo=zone)


@dataclass(frozen=True, slots=True)
class DueState:
    """Celery's ``schedstate`` plus the absolute next run.

    ``next_check`` is how many seconds a scheduler may wait before asking again (``None`` when
    the schedule is exhausted); ``next_run`` is the next due instant after ``last_run_at`` in
    UTC (``None`` when exhausted).
    """

    is_due: bool
    next_check: float | None
    next_run: datetime | None


def next_run(schedule: Schedule, last_run_at: datetime, *, zone: tzinfo) -> datetime | None:
    """The first due instant strictly after ``last_run_at`` (UTC), or None if there is none."""
    last = _aware(last_run_at, zone)
    if isinstance(schedule, Interval):
        return interval_next(last, timedelta(seconds=schedule.every), schedule.relative)
    if isinstance(schedule, Crontab):
        return crontab_next(compile_crontab(schedule), last, zone)
    if isinstance(schedule, RRule):
        return rrule_next(schedule, last)
    if isinstance(schedule, Solar):
        from beatspec.engine._solar import solar_next

        return solar_next(schedule, last)
    raise TypeError(f"not a schedule: {schedule!r}")  # pragma: no cover


def _aware(value: datetime, zone: tzinfo) -> datetime:
    """A naive time is UTC, then seen in the schedule's zone (Celery's maybe_make_aware)."""
    if value.utcoffset() is not None:
        return value
    return to_utc(value).astimezone(zone)


def _seconds(delta: timedelta) -> float:
    return delta.total_seconds()


def due(
    schedule: Schedule,
    last_run_at: datetime | None,
    now: datetime,
    *,
    zone: tzinfo,
    starting_deadline: float | None = None,
) -> DueState:
    """Is the entry due at ``now``, and when to look again: Celery's ``is_due``.

    ``starting_deadline`` is Celery's ``beat_cron_starting_deadline`` (crontab only): a missed
    run older than that many seconds is skipped rather than caught up.
    """
    now_utc = to_utc(now)
    last = NEVER_RUN(zone) if last_run_at is None else _aware(last_run_at, zone)
    upcoming = next_run(schedule, last, zone=zone)
    if upcoming is None:
        return DueState(False, None, None)
    remaining = _seconds(upcoming - now_utc)
    if isinstance(schedule, Interval):
        if remaining > 0:
            return DueState(False, remaining, upcoming)
        check = float(schedule.every)
        if schedule.relative:
            local_now = now_utc.astimezone(last.tzinfo)
            realigned = _seconds(next_run(schedule, local_now, zone=zone) - now_utc)  # type: ignore[operator]
            check = realigned if realigned > 0 else float(schedule.every)
        return DueState(True, check, upcoming)
    is_due = remaining <= 0
    skipped = False
    if isinstance(schedule, Crontab) and starting_deadline is not None and remaining < 0:
        since = now_utc - timedelta(seconds=starting_deadline, microseconds=1)
        newest = next_run(schedule, since, zone=zone)
        if newest is not None and newest > now_utc:
            is_due, skipped = False, True
    if is_due or skipped:
        after_now = next_run(schedule, now_utc.astimezone(zone), zone=zone)
        if after_now is None:
            return DueState(is_due, None, upcoming)
        return DueState(is_due, max(_seconds(after_now - now_utc), 0.0), upcoming)
    return DueState(False, max(remaining, 0.0), upcoming)


def score(
    schedule: Schedule, last_run_at: datetime | None, now: datetime, *, zone: tzinfo,
) -> int:
    """The ``::schedule`` score a writer stores (spec ZSET-2, ZSET-3).

    Exhausted: -1. Never run: now. Otherwise the next run, or now when that is already past;
    as whole UTC epoch seconds, rounded down (so the score is never after the due time).
    """
    last = NEVER_RUN(zone) if last_run_at is None else _aware(last_run_at, zone)
    return score_for(next_run(schedule, last, zone=zone), never_run=last_run_at is None, now=now)


def score_for(upcoming: datetime | None, *, never_run: bool, now: datetime) -> int:
    """The score from an already computed next run (see :func:`score`)."""
    if upcoming is None:
        return -1  # exhausted, even if it never ran (ZSET-3)
    now_utc = to_utc(now)
    if never_run:
        return math.floor(now_utc.timestamp())
    return math.floor(max(upcoming, now_utc).timestamp())


def fire_times(
    schedule: Schedule, start: datetime, *, zone: tzinfo, count: int,
) -> Iterator[datetime]:
    """The next ``count`` due instants after ``start`` (UTC), as if each ran on time."""
    current = start if start.utcoffset() is not None else to_utc(start)
    for _ in range(count):
        upcoming = next_run(schedule, current, zone=zone)
        if upcoming is None:
            return
        yield upcoming
        current = upcoming.astimezone(current.tzinfo or UTC)
