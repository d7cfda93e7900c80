"""rrule next-run computation with python-dateutil, exactly as RedBeat 2.4.2 builds the rule."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Literal, cast

from dateutil import rrule as du

from beatspec.codec.types import RRule, RRuleValue, Weekday

__all__ = ["rrule_next", "to_dateutil"]


def _instant(epoch: int, tz_minutes: float) -> datetime:
    zone = timezone(timedelta(minutes=tz_minutes)) if tz_minutes else UTC
    return datetime.fromtimestamp(epoch, tz=zone)


def _weekdays(value: RRuleValue) -> Any:
    def one(item: int | Weekday) -> int | du.weekday:
        if isinstance(item, Weekday):
            return du.weekday(item.wkday, item.n)
        return item

    if value is None:
        return None
    if isinstance(value, tuple):
        return [one(v) for v in value]
    return one(value)


def _plain(value: RRuleValue) -> Any:
    return list(value) if isinstance(value, tuple) else value


@lru_cache(maxsize=1024)
def to_dateutil(rule: RRule) -> du.rrule:
    """The dateutil rule RedBeat's decoder would build for this value."""
    return du.rrule(
        cast("Literal[0, 1, 2, 3, 4, 5, 6]", rule.frequency),
        dtstart=_instant(rule.dtstart, rule.dtstart_tz),
        interval=rule.interval,
        wkst=_weekdays(rule.wkst),
        count=rule.count,
        until=None if rule.until is None else _instant(rule.until, rule.until_tz),
        bysetpos=_plain(rule.bysetpos),
        bymonth=_plain(rule.bymonth),
        bymonthday=_plain(rule.bymonthday),
        byyearday=_plain(rule.byyearday),
        byeaster=_plain(rule.byeaster),
        byweekno=_plain(rule.byweekno),
        byweekday=_weekdays(rule.byweekday),
        byhour=_plain(rule.byhour),
        byminute=_plain(rule.byminute),
        bysecond=_plain(rule.bysecond),
        cache=True,  # the rule object is memoised: later after() calls reuse its occurrences
    )


_BLOCK = 64
#: Fixed period lengths of the frequencies dateutil iterates in a fixed-offset zone.
_PERIOD = {du.WEEKLY: 7 * 86400, du.DAILY: 86400, du.HOURLY: 3600, du.MINUTELY: 60,
           du.SECONDLY: 1}


def _rebased(rule: RRule, last_run_at: datetime) -> RRule:
    """The same rule with ``dtstart`` moved forward by whole periods, to just before ``L``.

    dateutil's ``after()`` walks every occurrence from ``dtstart``; a rule started years ago
    costs millions of steps. Without ``count`` (which counts from ``dtstart``), moving
    ``dtstart`` by a whole number of ``interval`` periods keeps every occurrence after the
    first period: periods have a fixed length in the fixed offset ``dtstart_tz`` for WEEKLY and
    finer, and the by* filters and the defaults taken from ``dtstart`` repeat per period. One
    spare period before ``L`` keeps the first period's clipping away from the answer.
    """
    if rule.count is not None:
        return rule
    period = _PERIOD.get(rule.frequency)
    if period is None:
        return rule
    step = period * rule.interval
    spare = (last_run_at.timestamp() - rule.dtstart) // step - 1
    # whole blocks of 64 periods: nearby last_run_at values share one (cached) rule
    spare -= spare % _BLOCK
    if spare <= 0:
        return rule
    return _shifted(rule, rule.dtstart + int(spare) * step)


@lru_cache(maxsize=1024)
def _shifted(rule: RRule, dtstart: int) -> RRule:
    return replace(rule, dtstart=dtstart)


def rrule_next(rule: RRule, last_run_at: datetime) -> datetime | None:
    """The first occurrence strictly after ``last_run_at``, in UTC; None when exhausted."""
    built = to_dateutil(_rebased(rule, last_run_at))
    # dateutil's after() walks its occurrence cache from the start; once the cache reaches
    # past last_run_at a binary search gives the same answer.
    cache = getattr(built, "_cache", None)
    if cache and cache[-1] > last_run_at:
        return cast("datetime", cache[bisect_right(cache, last_run_at)]).astimezone(UTC)
    found: datetime | None = built.after(last_run_at)
    return None if found is None else found.astimezone(UTC)
