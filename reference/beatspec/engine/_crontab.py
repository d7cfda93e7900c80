"""Crontab next-run computation: Celery 5.7's semantics, closed form, with the fold fix.

Celery matches the fields against the wall clock of ``last_run_at`` in the schedule's zone and
picks the first matching wall-clock minute strictly after it; the wall time becomes an instant
with PEP 495 ``fold=0`` (the earlier of a repeated time; the pre-transition offset inside a gap).
Celery then takes that instant even when it lies *before* ``last_run_at`` (``last_run_at`` in
the second pass of a repeated hour), which makes beat re-send on every tick. beatspec keeps
walking until the instant is after ``last_run_at`` (spec deviation D1).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache

from beatspec.codec.types import Crontab
from beatspec.cron import expand_field

__all__ = ["CronSpec", "compile_crontab", "crontab_next"]

_SEARCH_YEARS = 400  # the Gregorian calendar repeats every 400 years


@dataclass(frozen=True, slots=True)
class CronSpec:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: frozenset[int]  # 0 = Sunday
    hour_set: frozenset[int]
    day_set: frozenset[int]
    month_set: frozenset[int]


@lru_cache(maxsize=4096)
def compile_crontab(value: Crontab) -> CronSpec:
    def field(name: str) -> frozenset[int]:
        return expand_field(getattr(value, name), name)

    minutes, hours = field("minute"), field("hour")
    days, months = field("day_of_month"), field("month_of_year")
    return CronSpec(
        minutes=tuple(sorted(minutes)),
        hours=tuple(sorted(hours)),
        days=tuple(sorted(days)),
        months=tuple(sorted(months)),
        weekdays=field("day_of_week"),
        hour_set=hours,
        day_set=days,
        month_set=months,
    )


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _date_matches(spec: CronSpec, day: date) -> bool:
    return (
        day.month in spec.month_set
        and day.day in spec.day_set
        and day.isoweekday() % 7 in spec.weekdays
    )


def _next_date(spec: CronSpec, after: date) -> date | None:
    """The first matching date strictly after ``after``."""
    year, month, first_day = after.year, after.month, after.day + 1
    every_weekday = len(spec.weekdays) == 7
    for y in range(year, min(year + _SEARCH_YEARS, 9999) + 1):
        start = bisect_left(spec.months, month) if y == year else 0
        for m in spec.months[start:]:
            lowest = first_day if (y == year and m == month) else 1
            last = _days_in_month(y, m)
            for d in spec.days[bisect_left(spec.days, lowest):]:
                if d > last:
                    break
                if every_weekday or date(y, m, d).isoweekday() % 7 in spec.weekdays:
                    return date(y, m, d)
    return None


def _next_wall(spec: CronSpec, wall: datetime) -> datetime | None:
    """The first matching wall-clock minute strictly after ``wall`` (seconds count: > not >=)."""
    day = wall.date()
    if _date_matches(spec, day):
        if wall.hour in spec.hour_set:
            i = bisect_right(spec.minutes, wall.minute)
            if i < len(spec.minutes):
                return datetime(day.year, day.month, day.day, wall.hour, spec.minutes[i])
        j = bisect_right(spec.hours, wall.hour)
        if j < len(spec.hours):
            return datetime(day.year, day.month, day.day, spec.hours[j], spec.minutes[0])
    nxt = _next_date(spec, day)
    if nxt is None:
        return None
    return datetime(nxt.year, nxt.month, nxt.day, spec.hours[0], spec.minutes[0])


def crontab_next(spec: CronSpec, last_run_at: datetime, zone: tzinfo) -> datetime | None:
    """The next run after ``last_run_at`` (aware), as an aware UTC datetime; None if never.

    Where the zone's offset is a whole number of minutes (every zone since local mean time),
    the answer depends on ``last_run_at`` only through its minute: candidates are whole
    minutes, and a whole minute is after ``L`` exactly when it is after ``L``'s minute (the
    minute itself is neither). Such results are memoised per (spec, minute, zone).
    """
    last_utc = last_run_at.astimezone(UTC)
    offset = last_utc.astimezone(zone).utcoffset()
    if offset is None or offset.seconds % 60 or offset.microseconds:
        return _crontab_next_minute.__wrapped__(spec, last_utc, zone)
    return _crontab_next_minute(spec, last_utc.replace(second=0, microsecond=0), zone)


@lru_cache(maxsize=65536)
def _crontab_next_minute(spec: CronSpec, last_utc: datetime, zone: tzinfo) -> datetime | None:
    wall = last_utc.astimezone(zone).replace(tzinfo=None, fold=0)
    while True:
        candidate = _next_wall(spec, wall)
        if candidate is None:
            return None
        instant = candidate.replace(tzinfo=zone).astimezone(UTC)
        if instant > last_utc:
            return instant
        wall = candidate  # D1: Celery would return this instant, which lies in the past
