"""What an entry document *means*: when it should fire and what the task message should carry.

This model is deliberately independent of beatspec's codec and of RedBeat's decoder: it reads
the raw JSON with the standard library and asks only the libraries whose semantics RedBeat
delegates to (Celery's crontab field expansion, dateutil's rrule). The harness compares what
RedBeat actually did with this expectation to tell FIRED from MISFIRE.

Every answer is three-valued where the document is ambiguous: ``fire`` is ``None`` when the
document does not say clearly whether the entry is due (a broken member, a moment within a few
seconds of the tick); then both firing and not firing count as correct.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from zoneinfo import ZoneInfo

__all__ = [
    "INVALID",
    "Expectation",
    "celery_crontab_sets",
    "expect",
    "normalize",
    "parse_datetime",
]

#: Leeway around the tick time inside which "due" is not decided.
MARGIN: Final = dt.timedelta(seconds=5)
_DT_FIELDS: Final = ("year", "month", "day", "hour", "minute", "second", "microsecond")
_DT_MEMBERS: Final = frozenset({"__type__", *_DT_FIELDS, "timezone", "fold"})
_SCHEDULE_TAGS: Final = frozenset({"interval", "crontab", "rrule", "weekday"})
_FREQS: Final = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")


class _Invalid:
    """A payload value that cannot travel in a task message; equal to nothing."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "INVALID"

    def __eq__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return 0


INVALID: Final = _Invalid()


@dataclass(frozen=True, slots=True)
class Expectation:
    """What a correct scheduler does with the entry on a tick at ``now``.

    ``fire`` is True (must fire once), False (must not fire) or None (either is acceptable).
    ``task`` is None when the document has no usable task name (so no firing can be correct);
    ``args``/``kwargs`` are the normalised payload a worker must receive; ``queue`` is the list
    the message must land in, or None when the document does not decide it.
    """

    fire: bool | None
    task: str | None
    args: Any
    kwargs: Any
    queue: str | None
    why: str


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _offset_zone(seconds: float) -> dt.tzinfo | None:
    if not -86400 < seconds < 86400:
        return None
    if seconds == 0:
        return dt.UTC
    return dt.timezone(dt.timedelta(seconds=seconds))


def _zone(value: object) -> dt.tzinfo | None:
    if isinstance(value, str):
        try:
            return ZoneInfo(value)
        except (KeyError, ValueError, OSError):
            return None
    if _is_number(value) and math.isfinite(value):  # type: ignore[arg-type]
        return _offset_zone(float(value))  # type: ignore[arg-type]
    return None


def parse_datetime(obj: object) -> dt.datetime | None:
    """An aware datetime from a ``{"__type__": "datetime", ...}`` object, or None if invalid."""
    if not isinstance(obj, Mapping) or obj.get("__type__") != "datetime":
        return None
    if not set(obj) <= _DT_MEMBERS or not {"year", "month", "day"} <= set(obj):
        return None
    values: dict[str, int] = {}
    for name in _DT_FIELDS:
        if name in obj:
            value = obj[name]
            if not isinstance(value, int) or isinstance(value, bool):
                return None
            values[name] = value
    tz = _zone(obj.get("timezone", "UTC"))
    if tz is None:
        return None
    fold = obj.get("fold", 0)
    if fold not in (0, 1) or isinstance(fold, bool | float):
        return None
    try:
        return dt.datetime(tzinfo=tz, fold=int(fold), **values)
    except (ValueError, OverflowError, TypeError):
        return None


# --------------------------------------------------------------------------- payload


def _payload(value: object) -> object:
    """The value a worker receives for a JSON payload value (tags as RedBeat decodes them)."""
    if isinstance(value, Mapping):
        tag = value.get("__type__")
        if tag == "datetime":
            parsed = parse_datetime(value)
            return INVALID if parsed is None else parsed
        if isinstance(tag, str) and tag in _SCHEDULE_TAGS:
            return INVALID
        return {k: _payload(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_payload(v) for v in value]
    return value


def normalize(value: object) -> object:
    """A comparable form: datetimes as (wall clock, UTC offset), NaN equal to NaN."""
    if isinstance(value, dt.datetime):
        return ("datetime", value.replace(tzinfo=None).isoformat(), value.utcoffset())
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    if isinstance(value, Mapping):
        return {"__dict__": sorted((str(k), repr(normalize(v))) for k, v in value.items())}
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    if isinstance(value, _Invalid):
        return ("invalid", id(value))
    return (type(value).__name__, value)


# --------------------------------------------------------------------------- schedules


def celery_crontab_sets(obj: Mapping[str, object]) -> dict[str, frozenset[int]] | None:
    """Celery's own expansion of the five fields, or None if Celery rejects the crontab."""
    from celery.schedules import crontab

    fields = {k: v for k, v in obj.items() if k != "__type__"}
    if not set(fields) <= {"minute", "hour", "day_of_week", "day_of_month", "month_of_year"}:
        return None
    try:
        cron = crontab(**fields)
        sets = {
            name: frozenset(getattr(cron, name))
            for name in ("minute", "hour", "day_of_week", "day_of_month", "month_of_year")
        }
    except Exception:
        return None
    for values in sets.values():
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return None
    return sets


def _crontab_due(
    obj: Mapping[str, object], last: dt.datetime | None, now: dt.datetime, tz: dt.tzinfo,
) -> bool | None:
    sets = celery_crontab_sets(obj)
    if sets is None:
        return None
    now_local = now.astimezone(tz)
    if last is None:
        # RedBeat evaluates a never-run entry from year 1; 60 years cover every cycle.
        start = dt.datetime(now_local.year - 60, 1, 1, tzinfo=tz)
    else:
        try:
            start = last.astimezone(tz)
        except (OverflowError, ValueError):
            return None
    hours, minutes = sorted(sets["hour"]), sorted(sets["minute"])
    found_near = False
    for year in range(start.year, now_local.year + 1):
        for month in sorted(sets["month_of_year"]):
            for day in sorted(sets["day_of_month"]):
                try:
                    date = dt.date(year, month, day)
                except ValueError:
                    continue
                if date.isoweekday() % 7 not in sets["day_of_week"]:
                    continue
                if not start.date() <= date <= now_local.date():
                    continue
                if start.date() < date < now_local.date():
                    return True
                for hour in hours:
                    for minute in minutes:
                        moment = dt.datetime(year, month, day, hour, minute, tzinfo=tz)
                        if start < moment <= now - MARGIN:
                            return True
                        if abs(moment - now) <= MARGIN:
                            found_near = True
    return None if found_near else False


def _interval_due(
    every: object, relative: object, last: dt.datetime | None, now: dt.datetime,
) -> bool | None:
    if not _is_number(every) or not math.isfinite(every) or every <= 0:  # type: ignore[operator,arg-type]
        return None
    seconds = float(every)  # type: ignore[arg-type]
    if seconds > 3.2e9:  # beyond beatspec's 100-year cap: no opinion
        return None
    if last is None:
        return True
    # relative=True rounds the deadline down to the interval's unit (day, hour, minute, second)
    unit = 86400 if seconds >= 86400 else 3600 if seconds >= 3600 else 60 if seconds >= 60 else 1
    margin = MARGIN.total_seconds() + (unit if relative else 0)
    try:
        age = (now - last).total_seconds()
    except OverflowError:
        return None
    if age >= seconds + margin:
        return True
    if age <= seconds - margin:
        return False
    return None


def _weekday(value: object) -> object:
    from dateutil.rrule import weekday

    if isinstance(value, Mapping):
        if value.get("__type__") != "weekday" or not set(value) <= {"__type__", "wkday", "n"}:
            raise ValueError("not a weekday")
        return weekday(value["wkday"], value.get("n"))
    if isinstance(value, list):
        return [_weekday(v) for v in value]
    return value


def _rrule_due(
    obj: Mapping[str, object], last: dt.datetime | None, now: dt.datetime, tz: dt.tzinfo,
) -> bool | None:
    from dateutil.rrule import rrule

    allowed = {
        "__type__", "freq", "dtstart", "dtstart_tz", "interval", "wkst", "count", "until",
        "until_tz", "bysetpos", "bymonth", "bymonthday", "byyearday", "byeaster", "byweekno",
        "byweekday", "byhour", "byminute", "bysecond",
    }
    if not set(obj) <= allowed or obj.get("dtstart") is None:
        return None
    freq = obj.get("freq")
    if isinstance(freq, str) and freq.upper() in _FREQS:
        freq = _FREQS.index(freq.upper())
    if not isinstance(freq, int) or isinstance(freq, bool) or not 0 <= freq <= 6:
        return None
    try:
        moments: dict[str, dt.datetime | None] = {}
        for name in ("dtstart", "until"):
            stamp, offset = obj.get(name), obj.get(f"{name}_tz", 0)
            if stamp is None:
                moments[name] = None
                continue
            if not _is_number(stamp) or not _is_number(offset):
                return None
            zone = _offset_zone(float(offset) * 60)  # type: ignore[arg-type]
            if zone is None:
                return None
            moments[name] = dt.datetime.fromtimestamp(stamp, tz=zone)  # type: ignore[arg-type]
        kwargs = {
            k: (_weekday(v) if k in ("wkst", "byweekday") else v)
            for k, v in obj.items()
            if k not in ("__type__", "freq", "dtstart", "dtstart_tz", "until", "until_tz")
        }
        rule = rrule(freq, dtstart=moments["dtstart"], until=moments["until"], **kwargs)  # type: ignore[arg-type]
        base = last if last is not None else dt.datetime(1, 1, 2, tzinfo=tz)
        following = rule.after(base)
    except Exception:
        return None
    if following is None:
        return False
    if abs(following - now) <= MARGIN:
        return None
    return following < now


# --------------------------------------------------------------------------- entry


def _loads(text: str | None) -> tuple[bool, object]:
    if text is None or text == "":
        return True, None
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, None


def expect(
    definition: str | None,
    meta: str | None,
    *,
    now: dt.datetime,
    timezone: str,
    decide_due: bool = True,
) -> Expectation:
    """The expectation for an entry hash holding these two field texts, ticked at ``now``.

    ``decide_due=False`` skips the (possibly slow) schedule evaluation: ``fire`` is then None.
    """
    tz = ZoneInfo(timezone)
    ok, d = _loads(definition)
    if not ok or not isinstance(d, dict):
        return Expectation(None, None, INVALID, INVALID, None, "definition is not an object")
    task = d.get("task")
    task = task if isinstance(task, str) and task else None
    raw_args, raw_kwargs = d.get("args"), d.get("kwargs")
    args = [] if raw_args is None else _payload(raw_args)
    kwargs = {} if raw_kwargs is None else _payload(raw_kwargs)
    options = d.get("options")
    queue: str | None = None
    if options is None:
        queue = "celery"
    elif isinstance(options, dict):
        q = options.get("queue", "celery")
        queue = q if isinstance(q, str) and q else None
    enabled = d.get("enabled", True)
    if enabled is False:
        return Expectation(False, task, args, kwargs, queue, "disabled")
    if enabled is not True:
        return Expectation(None, task, args, kwargs, queue, f"enabled is {enabled!r}")
    ok, m = _loads(meta)
    last: dt.datetime | None = None
    if not ok or not (m is None or isinstance(m, dict)):
        return Expectation(None, task, args, kwargs, queue, "meta is not an object")
    if isinstance(m, dict):
        if "last_run_at" not in m:
            return Expectation(None, task, args, kwargs, queue, "meta has no last_run_at")
        raw_last = m["last_run_at"]
        if raw_last is not None:
            last = parse_datetime(raw_last)
            if last is None:
                return Expectation(None, task, args, kwargs, queue, "last_run_at is invalid")
    schedule = d.get("schedule")
    due: bool | None = None
    if not decide_due:
        pass
    elif _is_number(schedule):
        due = _interval_due(schedule, d.get("relative"), last, now)
    elif isinstance(schedule, dict):
        tag = schedule.get("__type__")
        if tag == "interval":
            # RedBeat ignores extra interval members; a missing 'relative' is a drop anyway
            due = _interval_due(schedule.get("every"), schedule.get("relative"), last, now)
        elif tag == "crontab":
            due = _crontab_due(schedule, last, now, tz)
        elif tag == "rrule":
            due = _rrule_due(schedule, last, now, tz)
    return Expectation(due, task, args, kwargs, queue, f"due={due}")
