"""Decode entry documents into typed values, recording every broken rule as a finding.

Each ``_decode_*`` function takes a JSON value and a :class:`~beatspec._collector.Collector`
positioned at that value, and returns the typed value, or ``None`` when a MUST was broken so
badly that no value can be built. NON-STRICT findings never prevent decoding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import UTC as _UTC
from types import MappingProxyType
from typing import Final, TypeVar

from beatspec._collector import Collector
from beatspec.codec.types import (
    Crontab,
    DateTime,
    Definition,
    Extensions,
    Interval,
    Json,
    Meta,
    Misfire,
    RRule,
    RRuleValue,
    Schedule,
    Solar,
    Weekday,
)
from beatspec.cron import DAYS_IN_MONTH, CronError, expand_field
from beatspec.zones import is_known_zone

__all__ = [
    "DEFINITION_MEMBERS",
    "META_MEMBERS",
    "RESERVED_NAMES",
    "decode_definition_value",
    "decode_extensions_value",
    "decode_meta_value",
]

T = TypeVar("T")

DEFINITION_MEMBERS: Final = ("name", "task", "args", "kwargs", "options", "schedule", "enabled")
_LEGACY_DEFINITION_MEMBERS: Final = ("relative",)
META_MEMBERS: Final = ("last_run_at", "total_run_count")
RESERVED_NAMES: Final = (":schedule", ":statics", ":lock", ":beatspec", ":scheduler", ":invalid")
MAX_EVERY: Final = 3_153_600_000
#: last_run_at must lie before this year, so that one period (at most 100 years) still fits.
LAST_RUN_YEAR_LIMIT: Final = 9000
_SCHEDULE_TAGS: Final = ("interval", "crontab", "rrule", "weekday", "solar")
_REDBEAT_TAGS: Final = ("datetime", "interval", "crontab", "rrule", "weekday")


# --------------------------------------------------------------------------- primitives


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _integer(
    value: object, out: Collector, rule: str, what: str, low: int | None, high: int | None,
) -> int | None:
    """Read an integer member: booleans and fractions break ``rule``; ``2.0`` breaks JSON-8."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        out.add(
            rule, value, f"{what} is {_kind(value)}, not an integer", f"write {what} as an integer"
        )
        return None
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            out.add(rule, value, f"{what} is not a whole number", f"write {what} as an integer")
            return None
        out.add(
            "JSON-8", value, f"{what} is written as a fraction ({value!r})",
            f"write {int(value)} without a decimal point or exponent",
        )
        value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"{low}..{high}" if high is not None else f">= {low}"
        out.add(rule, value, f"{what} {value} is outside {span}", f"use a value in {span}")
        return None
    return value


def _number(value: object) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _members(
    obj: Mapping[str, Json], allowed: tuple[str, ...], out: Collector, rule: str, what: str,
    hint: str,
) -> None:
    for name in obj:
        if name not in allowed:
            with out.at(name):
                out.add(rule, name, f"{what} has an unknown member {name!r}", hint)


# --------------------------------------------------------------------------- datetime

_DT_FIELDS: Final = (
    ("year", 1, 9999), ("month", 1, 12), ("day", 1, 31), ("hour", 0, 23), ("minute", 0, 59),
    ("second", 0, 59), ("microsecond", 0, 999_999),
)
_DT_MEMBERS: Final = ("__type__", *(f for f, _, _ in _DT_FIELDS), "timezone", "fold")


def _days_in(year: int, month: int) -> int:
    if month == 2:
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        return 29 if leap else 28
    return DAYS_IN_MONTH[month]


def decode_datetime(obj: Mapping[str, Json], out: Collector) -> DateTime | None:
    start = len(out.findings)
    _members(
        obj, _DT_MEMBERS, out, "DT-1", "a datetime",
        "a datetime has only year, month, day, hour, minute, second, microsecond, timezone, fold",
    )
    values: dict[str, int] = {}
    for name, low, high in _DT_FIELDS:
        if name not in obj:
            if name in ("year", "month", "day"):
                out.add("DT-1", obj, f"a datetime needs {name!r}", f"add the member {name!r}")
            else:
                out.add(
                    "DT-5", name, f"the datetime omits {name!r} (read as 0)",
                    f"write {name!r} explicitly", raw=True,
                )
            continue
        with out.at(name):
            got = _integer(obj[name], out, "DT-2", name, low, high)
        if got is not None:
            values[name] = got
    if {"year", "month", "day"} <= values.keys() and values["day"] > _days_in(
        values["year"], values["month"]
    ):
        with out.at("day"):
            out.add(
                "DT-2", values["day"],
                f"{values['year']:04d}-{values['month']:02d} has no day {values['day']}",
                "use a date that exists (RedBeat's datetime() raises ValueError and beat exits)",
            )
    zone: str | int | float | None = None
    if "timezone" not in obj:
        out.add(
            "DT-5", "timezone", "the datetime has no 'timezone' (read as UTC)",
            'write "timezone": "UTC" (or the IANA zone name) explicitly', raw=True,
        )
    else:
        with out.at("timezone"):
            zone = _decode_zone(obj["timezone"], out)
    fold: int | None = None
    if "fold" in obj:
        with out.at("fold"):
            fold = _integer(obj["fold"], out, "DT-2", "fold", 0, 1)
    if out.has_failed(start):
        return None
    value = DateTime(
        values["year"], values["month"], values["day"], values.get("hour", 0),
        values.get("minute", 0), values.get("second", 0), values.get("microsecond", 0),
        zone, fold,
    )
    if value.year in (1, 9999):
        try:
            value.to_datetime().astimezone(_UTC)
        except OverflowError:
            out.add(
                "DT-2", obj, "the instant lies outside the years 1..9999 in UTC (Python's "
                "datetime overflows converting it)", "use a date between 0001-01-02 and 9999-12-30",
            )
            return None
    return value


def _decode_zone(value: object, out: Collector) -> str | int | float | None:
    if isinstance(value, str):
        if not is_known_zone(value):
            out.add(
                "DT-3", value,
                f"{value!r} is not an IANA time zone name (RedBeat drops the entry: "
                "ZoneInfoNotFoundError is a KeyError)",
                'use a tz database name such as "UTC" or "Europe/Berlin", or offset seconds',
            )
            return None
        return value
    number = _number(value)
    if number is None:
        out.add(
            "DT-3", value, f"timezone is {_kind(value)}, not a zone name or offset seconds",
            'write an IANA zone name such as "UTC"',
        )
        return None
    if not -86400 < number < 86400:
        out.add(
            "DT-3", value, "an offset must be strictly within one day (86400 seconds)",
            "write the offset in seconds east of UTC, e.g. 3600 for +01:00",
        )
        return None
    out.add(
        "DT-4", value, "timezone is an offset in seconds; the canonical form is a zone name",
        'write the IANA zone name (e.g. "Europe/Berlin"), or "UTC" for offset 0',
    )
    return number


# --------------------------------------------------------------------------- schedules


def _decode_interval(obj: Mapping[str, Json], out: Collector) -> Interval | None:
    start = len(out.findings)
    for name in obj:
        if name not in ("__type__", "every", "relative"):
            with out.at(name):
                out.add(
                    "INT-4", name, f"interval has an extra member {name!r} (RedBeat ignores it)",
                    "remove it; an interval has only every and relative",
                )
    every: int | float | None = None
    if "every" not in obj:
        out.add("INT-1", obj, "interval has no 'every'", 'add "every": <seconds>')
    else:
        with out.at("every"):
            every = _number(obj["every"])
            if every is None or not 0 < every <= MAX_EVERY:
                out.add(
                    "INT-2", obj["every"],
                    "every must be a number of seconds above 0 and at most 3153600000",
                    'write "every": 60.0 for once a minute',
                )
                every = None
            elif every < 1:
                out.add(
                    "INT-5", every, "an interval below one second fires on every tick",
                    "use at least 1 second",
                )
    relative = False
    if "relative" not in obj:
        out.add(
            "INT-1", obj,
            "interval has no 'relative': RedBeat raises KeyError and silently drops the entry",
            'add "relative": false',
        )
    else:
        with out.at("relative"):
            if not isinstance(obj["relative"], bool):
                out.add(
                    "INT-3", obj["relative"], "relative must be true or false",
                    'write "relative": false',
                )
            else:
                relative = obj["relative"]
    if out.has_failed(start) or every is None:
        return None
    return Interval(every, relative)


def _decode_crontab(obj: Mapping[str, Json], out: Collector) -> Crontab | None:
    start = len(out.findings)
    _members(
        obj, ("__type__", *Crontab.FIELDS), out, "CRON-1", "crontab",
        "a crontab has only minute, hour, day_of_week, day_of_month, month_of_year",
    )
    fields: dict[str, str | int | tuple[int, ...]] = {}
    expanded: dict[str, frozenset[int]] = {}
    for name in Crontab.FIELDS:
        if name not in obj:
            out.add(
                "CRON-5", name, f"crontab omits {name!r} (read as '*')",
                f'write "{name}": "*" explicitly', raw=True,
            )
            continue
        value = _whole_numbers(obj[name], out, name)
        fractional = value is not obj[name]
        with out.at(name):
            try:
                expanded[name] = expand_field(value, name)
            except CronError as err:
                out.add(err.rule, value, err.message, err.hint)
                if err.rule == "CRON-3" and not isinstance(value, str):
                    out.add(
                        "CRON-6", value, f"{name} holds an integer outside its range",
                        "integer and array fields hold in-range integers",
                    )
                continue
            if isinstance(value, str):
                fields[name] = value
            elif fractional:  # JSON-8 already says how to write it
                fields[name] = value if isinstance(value, int) else tuple(value)
            else:
                out.add(
                    "CRON-5", value, f"{name} is {_kind(value)}; the canonical form is a string",
                    f"write {name} as a string such as {_as_cron_string(expanded[name])!r}",
                )
                fields[name] = value if isinstance(value, int) else tuple(value)
    dom = expanded.get("day_of_month", frozenset(range(1, 32)))
    moy = expanded.get("month_of_year", frozenset(range(1, 13)))
    if ("day_of_month" in expanded or "month_of_year" in expanded) and not any(
        day <= DAYS_IN_MONTH[month] for month in moy for day in dom
    ):
            with out.at("day_of_month"):
                out.add(
                    "CRON-4", obj.get("day_of_month"),
                    "no day of this day_of_month occurs in any month of month_of_year",
                    "February has at most 29 days; April, June, September, November 30",
                )
    if out.has_failed(start):
        return None
    return Crontab(**fields)


def _whole_numbers(value: Json, out: Collector, name: str) -> Json:
    """Integral floats in an integer or array crontab field: JSON-8, then read as integers."""
    if isinstance(value, float) and value.is_integer():
        with out.at(name):
            out.add("JSON-8", value, f"{name} is written as a fraction ({value!r})",
                    f"write {int(value)}")
        return int(value)
    if isinstance(value, list) and any(isinstance(v, float) and v.is_integer() for v in value):
        fixed: list[Json] = []
        for index, item in enumerate(value):
            if isinstance(item, float) and item.is_integer():
                with out.at(name, index):
                    out.add("JSON-8", item, f"{name}[{index}] is written as a fraction",
                            f"write {int(item)}")
                item = int(item)
            fixed.append(item)
        return fixed
    return value


def _as_cron_string(values: frozenset[int]) -> str:
    return ",".join(str(v) for v in sorted(values))


_BY_RANGES: Final = {
    "bysetpos": (-366, 366, True), "bymonth": (1, 12, False), "bymonthday": (-31, 31, True),
    "byyearday": (-366, 366, True), "byeaster": (-80, 250, False), "byweekno": (-53, 53, True),
    "byhour": (0, 23, False), "byminute": (0, 59, False), "bysecond": (0, 59, False),
}
_RRULE_MEMBERS: Final = (
    "__type__", "freq", "dtstart", "dtstart_tz", "interval", "wkst", "count", "until", "until_tz",
    *_BY_RANGES, "byweekday",
)
_EPOCH_MIN: Final = -62_135_596_800
_EPOCH_MAX: Final = 253_402_300_799


def _decode_rrule(obj: Mapping[str, Json], out: Collector) -> RRule | None:
    start = len(out.findings)
    _members(
        obj, _RRULE_MEMBERS, out, "RRULE-1", "rrule",
        "remove it: dateutil's rrule raises TypeError and beat exits",
    )
    args: dict[str, object] = {}
    if "freq" not in obj:
        out.add("RRULE-2", obj, "rrule has no 'freq'", 'add "freq": 3 (DAILY)')
    else:
        freq = obj["freq"]
        with out.at("freq"):
            if isinstance(freq, str):
                if freq.upper() in RRule.FREQ_NAMES:
                    out.add(
                        "RRULE-3", freq, "freq is a name; the canonical form is an integer",
                        f"write {RRule.FREQ_NAMES.index(freq.upper())}",
                    )
                    args["freq"] = freq
                else:
                    out.add(
                        "RRULE-2", freq, "freq is not a frequency name",
                        "use 0..6 (YEARLY..SECONDLY) or YEARLY, MONTHLY, WEEKLY, DAILY, HOURLY, "
                        "MINUTELY, SECONDLY",
                    )
            else:
                got = _integer(freq, out, "RRULE-2", "freq", 0, 6)
                if got is not None:
                    args["freq"] = got
    if "dtstart" not in obj:
        out.add(
            "RRULE-4", obj,
            "rrule has no 'dtstart': RedBeat re-bases it on the current time at every load",
            'add "dtstart": <UTC epoch seconds of the first occurrence>',
        )
    else:
        with out.at("dtstart"):
            if obj["dtstart"] is None:
                out.add("RRULE-4", None, "dtstart is null", "write UTC epoch seconds")
            else:
                got = _integer(obj["dtstart"], out, "RRULE-4", "dtstart", _EPOCH_MIN, _EPOCH_MAX)
                if got is not None:
                    args["dtstart"] = got
    for tz_name in ("dtstart_tz", "until_tz"):
        if tz_name in obj:
            with out.at(tz_name):
                tz = _number(obj[tz_name])
                if tz is None or not -1440 < tz < 1440:
                    out.add(
                        "RRULE-5", obj[tz_name],
                        f"{tz_name} must be minutes east of UTC, strictly within one day",
                        f'write "{tz_name}": 0 for UTC',
                    )
                else:
                    if tz != 0:
                        out.add(
                            "RRULE-10", tz,
                            f"{tz_name} is a fixed offset: the rule drifts by an hour across DST",
                            "store dtstart/until in UTC (offset 0)",
                        )
                    args[tz_name] = tz
    if "until" in obj and obj["until"] is not None:
        with out.at("until"):
            got = _integer(obj["until"], out, "RRULE-6", "until", _EPOCH_MIN, _EPOCH_MAX)
            if got is not None:
                args["until"] = got
    if "count" in obj and obj["count"] is not None:
        with out.at("count"):
            got = _integer(obj["count"], out, "RRULE-6", "count", 1, None)
            if got is not None:
                args["count"] = got
    if obj.get("until") is not None and obj.get("count") is not None:
        out.add(
            "RRULE-6", {"until": obj.get("until"), "count": obj.get("count")},
            "until and count are both set (RFC 5545 forbids it)", "keep one of them",
        )
    if "interval" in obj:
        with out.at("interval"):
            got = _integer(obj["interval"], out, "RRULE-7", "interval", 1, None)
            if got is not None:
                args["interval"] = got
    for name, (low, high, nonzero) in _BY_RANGES.items():
        if name in obj and obj[name] is not None:
            with out.at(name):
                args[name] = _decode_by(obj[name], name, low, high, nonzero, out)
    for name in ("byweekday", "wkst"):
        if name in obj and obj[name] is not None:
            with out.at(name):
                args[name] = _decode_weekdays(obj[name], name, out, many=name == "byweekday")
    if out.has_failed(start):
        return None
    rule = RRule(**args)  # type: ignore[arg-type]
    if rule.frequency == 1 and _monthly_n_out_of_range(rule.byweekday, out):
        return None
    from beatspec.engine._rrule import to_dateutil

    try:
        to_dateutil(rule)
    except OverflowError:
        out.add(
            "RRULE-4", obj.get("dtstart"), "dtstart (or until) at its offset lies outside the "
            "years 1..9999", "write an instant between 0001-01-02 and 9999-12-30",
        )
        return None
    except (ValueError, TypeError) as exc:
        out.add(
            "RRULE-8", str(exc), f"dateutil cannot build this rule ({exc}); RedBeat's decoder "
            "raises and beat exits", "make the by* values reachable from dtstart with this "
            "interval (e.g. interval 1)", raw=True,
        )
        return None
    return rule


def _decode_by(
    value: object, name: str, low: int, high: int, nonzero: bool, out: Collector,
) -> RRuleValue:
    items = value if isinstance(value, list) else [value]
    if isinstance(value, list) and not value:
        out.add("RRULE-8", value, f"{name} is an empty array", "write null or list values")
        return None
    got: list[int] = []
    for index, item in enumerate(items):
        with out.at(index) if isinstance(value, list) else _nullcontext():
            n = _integer(item, out, "RRULE-8", name, low, high)
            if n is None:
                continue
            if nonzero and n == 0:
                out.add("RRULE-8", n, f"{name} values are non-zero", f"use {low}..-1 or 1..{high}")
                continue
            got.append(n)
    return tuple(got) if isinstance(value, list) else (got[0] if got else None)


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _monthly_n_out_of_range(value: object, out: Collector) -> bool:
    """A MONTHLY rule's nth weekday lies in -5..5: a month has at most five of each weekday;
    dateutil never matches a larger n, or raises IndexError on it (RRULE-9)."""
    days = value if isinstance(value, tuple | list) else (value,)
    bad = [d.n for d in days if isinstance(d, Weekday) and d.n is not None and abs(d.n) > 5]
    if bad:
        with out.at("byweekday"):
            out.add("RRULE-9", bad[0], "a MONTHLY rule's weekday n lies in -5..5: a month has at "
                    "most five of each weekday, and dateutil raises IndexError (beat exits) or "
                    "never matches", "use n in -5..5, or freq 0 (YEARLY) for the nth weekday of "
                    "a year")
    return bool(bad)


def _decode_weekdays(value: object, name: str, out: Collector, *, many: bool) -> RRuleValue:
    def one(item: object) -> int | Weekday | None:
        if isinstance(item, dict):
            if item.get("__type__") != "weekday":
                out.add(
                    "RRULE-9", item, f"{name} holds an object that is not a weekday",
                    '{"__type__": "weekday", "wkday": 0} is Monday',
                )
                return None
            return _decode_weekday(item, out)
        return _integer(item, out, "RRULE-9", name, 0, 6)

    if isinstance(value, list):
        if not many:
            out.add("RRULE-9", value, f"{name} takes one weekday", "write one weekday number")
            return None
        if not value:
            out.add("RRULE-9", value, f"{name} is an empty array", "write null or list weekdays")
            return None
        items: list[int | Weekday] = []
        for index, item in enumerate(value):
            with out.at(index):
                got = one(item)
            if got is not None:
                items.append(got)
        return tuple(items)
    return one(value)


def _decode_weekday(obj: Mapping[str, Json], out: Collector) -> Weekday | None:
    start = len(out.findings)
    _members(obj, ("__type__", "wkday", "n"), out, "WDAY-1", "weekday", "a weekday has wkday and n")
    wkday = None
    if "wkday" not in obj:
        out.add("WDAY-1", obj, "weekday has no 'wkday'", 'add "wkday": 0 (Monday) .. 6 (Sunday)')
    else:
        with out.at("wkday"):
            wkday = _integer(obj["wkday"], out, "WDAY-1", "wkday", 0, 6)
    n = None
    if "n" in obj and obj["n"] is not None:
        with out.at("n"):
            n = _integer(obj["n"], out, "WDAY-1", "n", -53, 53)
            if n == 0:
                out.add("WDAY-1", 0, "n must not be 0 (dateutil raises ValueError)", "omit n")
    if out.has_failed(start) or wkday is None:
        return None
    return Weekday(wkday, n, "n" in obj)


def _decode_solar(obj: Mapping[str, Json], out: Collector, profile: str) -> Solar | None:
    start = len(out.findings)
    if profile != "extended":
        out.add(
            "SOLAR-1", "solar",
            "solar schedules are allowed only in the extended profile: RedBeat cannot decode "
            "them and its tick raises AttributeError",
            "declare the extended profile (prefix + ':beatspec' profile=extended) and run a "
            "beatspec scheduler, or use a crontab",
        )
    _members(obj, ("__type__", "event", "lat", "lon"), out, "SOLAR-2", "solar", "remove it")
    event = obj.get("event")
    if event not in Solar.EVENTS:
        with out.at("event"):
            out.add(
                "SOLAR-2", event, "unknown solar event", "use one of " + ", ".join(Solar.EVENTS)
            )
    coords: dict[str, int | float] = {}
    for name, limit in (("lat", 90), ("lon", 180)):
        number = _number(obj.get(name))
        with out.at(name):
            if number is None or not -limit <= number <= limit:
                out.add(
                    "SOLAR-2", obj.get(name), f"{name} must be a number in -{limit}..{limit}",
                    "write degrees as a number",
                )
            else:
                coords[name] = number
    if out.has_failed(start):
        return None
    return Solar(str(event), coords["lat"], coords["lon"])


def decode_schedule(value: object, out: Collector, profile: str) -> tuple[Schedule | None, bool]:
    """Decode ``definition.schedule``; the flag says it was a legacy bare number (DEF-6)."""
    if isinstance(value, dict):
        tag = value.get("__type__")
        if tag == "interval":
            return _decode_interval(value, out), False
        if tag == "crontab":
            return _decode_crontab(value, out), False
        if tag == "rrule":
            return _decode_rrule(value, out), False
        if tag == "solar":
            return _decode_solar(value, out, profile), False
        out.add(
            "DEF-5", tag, "schedule is not tagged interval, crontab or rrule (RedBeat's tick "
            "raises AttributeError and beat exits)",
            'tag the schedule, e.g. {"__type__": "interval", "every": 60.0, "relative": false}',
        )
        return None, False
    number = _number(value)
    if number is not None:
        if not 0 < number <= MAX_EVERY:
            out.add(
                "DEF-5", value, "a bare-number schedule must be seconds above 0",
                'write {"__type__": "interval", "every": 60.0, "relative": false}',
            )
            return None, True
        out.add(
            "DEF-6", value, "schedule is a bare number (legacy); the canonical form is an interval",
            f'write {{"__type__": "interval", "every": {float(number)!r}, "relative": false}}',
        )
        return Interval(number, False), True
    out.add(
        "DEF-5", value, f"schedule is {_kind(value)}, not a schedule object",
        'write e.g. {"__type__": "crontab", "minute": "0", "hour": "4", "day_of_week": "*", '
        '"day_of_month": "*", "month_of_year": "*"}',
    )
    return None, False


# --------------------------------------------------------------------------- payload values


def _walk_payload(value: object, out: Collector, where: str) -> None:
    """Check tagged objects nested in args, kwargs or options (TAG-1..TAG-3)."""
    stack: list[tuple[object, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            tag = item.get("__type__", _ABSENT)
            if tag is not _ABSENT:
                with out.at(*path):
                    _check_payload_tag(item, tag, out, where)
                if tag in _REDBEAT_TAGS:
                    continue
            stack.extend((v, (*path, k)) for k, v in reversed(list(item.items())))
        elif isinstance(item, list):
            stack.extend((v, (*path, i)) for i, v in reversed(list(enumerate(item))))


_ABSENT: Final = object()


def _check_payload_tag(obj: Mapping[str, Json], tag: object, out: Collector, where: str) -> None:
    if tag == "datetime":
        start = len(out.findings)
        decode_datetime(obj, out)
        if out.has_failed(start):
            out.add(
                "TAG-1", obj, f"an invalid datetime value in {where} makes RedBeat raise and "
                "beat exit", "fix the datetime, or pass the time as an ISO 8601 string",
            )
        return
    if tag == "solar":
        out.add(
            "TAG-2", tag, f"a solar value in {where} cannot be serialised into a task message",
            "pass plain JSON values; rename the '__type__' member",
        )
        out.add(
            "SOLAR-1", tag, "a solar value may appear only as definition.schedule",
            "remove it from the payload",
        )
        return
    if tag in _SCHEDULE_TAGS:
        out.add(
            "TAG-2", tag, f"{'an' if tag == 'interval' else 'a'} {tag} value in {where} cannot be "
            "serialised into a task message "
            "(RedBeat decodes it; the send fails and the run is lost)",
            "pass plain JSON values; rename the '__type__' member",
        )
        return
    if set(obj) == {"__type__", "__value__"}:
        out.add(
            "TAG-2", tag, f"an object in {where} with just '__type__' and '__value__' is a kombu "
            "tagged value: the worker's JSON decoder converts it (bytes, Decimal, UUID, ...) or "
            "rejects the message", "rename the '__type__' member, or pass a plain value",
        )
        return
    out.add(
        "TAG-3", tag, f"an object in {where} has a '__type__' member that beatspec does not know",
        "rename the '__type__' member; RedBeat reserves it for typed values",
    )


# --------------------------------------------------------------------------- options

#: Tasks Celery registers in every app (celery/app/builtins.py).
BUILTIN_TASKS: Final = (
    "celery.backend_cleanup", "celery.accumulate", "celery.chord_unlock", "celery.map",
    "celery.starmap", "celery.chunks", "celery.group", "celery.chain", "celery.chord",
)
#: kombu's compression methods that need no extra library (brotli and zstd do).
COMPRESSIONS: Final = ("zlib", "gzip", "bzip2", "bzip", "lzma", "xz")
#: Celery protocol-2 headers: custom headers of the same name would replace them.
PROTOCOL_HEADERS: Final = (
    "lang", "task", "id", "shadow", "eta", "expires", "group", "group_index", "retries",
    "timelimit", "root_id", "parent_id", "argsrepr", "kwargsrepr", "origin", "ignore_result",
    "replaced_task_nesting", "stamped_headers", "stamps",
)
_OPTION_TYPES: Final[dict[str, tuple[str, Callable[[object], bool]]]] = {
    "queue": ("a non-empty string without \\x06 (kombu's priority separator is \\x06\\x16)",
              lambda v: isinstance(v, str) and v != "" and "\x06" not in v),
    "exchange": ("a string", lambda v: isinstance(v, str)),
    "routing_key": ("a string", lambda v: isinstance(v, str)),
    "headers": ("an object", lambda v: isinstance(v, dict)),
    "countdown": ("a number of seconds in 0..3153600000",
                  lambda v: (n := _number(v)) is not None and 0 <= n <= MAX_EVERY),
    "time_limit": ("a number > 0", lambda v: (n := _number(v)) is not None and n > 0),
    "soft_time_limit": ("a number > 0", lambda v: (n := _number(v)) is not None and n > 0),
    "serializer": (
        "one of json, pickle, yaml, msgpack", lambda v: v in ("json", "pickle", "yaml", "msgpack"),
    ),
    "compression": ("one of kombu's built-in methods: " + ", ".join(COMPRESSIONS),
                    lambda v: v in COMPRESSIONS),
    "ignore_result": ("a boolean", lambda v: isinstance(v, bool)),
    "retry": ("a boolean", lambda v: isinstance(v, bool)),
    "retry_policy": ("an object", lambda v: isinstance(v, dict)),
    "shadow": ("a string", lambda v: isinstance(v, str)),
}
RESERVED_OPTIONS: Final = (
    "task_id", "producer", "connection", "link", "link_error", "chain", "chord", "group_id",
    "group_index", "root_id", "parent_id", "add_to_parent", "publisher", "router", "reply_to",
)
KNOWN_OPTIONS: Final = (*_OPTION_TYPES, "priority", "delivery_mode", "expires", "eta")


def _decode_options(obj: Mapping[str, Json], out: Collector) -> None:
    for name, value in obj.items():
        with out.at(name):
            if name in RESERVED_OPTIONS:
                out.add(
                    "OPT-2", name, f"option {name!r} is reserved to the scheduler",
                    "remove it: the scheduler sets it per message", raw=True,
                )
            elif name in _OPTION_TYPES:
                expected, ok = _OPTION_TYPES[name]
                if not ok(value):
                    out.add(
                        "OPT-1", value, f"option {name!r} must be {expected}",
                        f"write {name} as {expected}",
                    )
                elif name == "headers":
                    for header in value:
                        if header in PROTOCOL_HEADERS:
                            with out.at(header):
                                out.add(
                                    "OPT-2", header, f"header {header!r} would replace Celery's "
                                    "own protocol header (the message runs another task, or "
                                    "the worker rejects it)", "use another header name",
                                    raw=True,
                                )
                    _walk_payload(value, out, "options.headers")
            elif name == "delivery_mode":
                _integer(value, out, "OPT-1", "delivery_mode", 1, 2)
            elif name == "priority":
                got = _integer(value, out, "OPT-1", "priority", 0, 255)
                if got is not None and got > 9:
                    out.add(
                        "OPT-3", got, "priority above 9 is clamped to 9 by kombu's Redis transport",
                        "use 0..9",
                    )
            elif name in ("expires", "eta"):
                _decode_time_option(name, value, out)
            else:
                out.add(
                    "OPT-4", name, f"option {name!r} is not one beatspec lists; it is passed to "
                    "Celery unchanged", "check the spelling, or remove it", raw=True,
                )
                _walk_payload(value, out, "options")


def _decode_time_option(name: str, value: object, out: Collector) -> None:
    if isinstance(value, dict) and value.get("__type__") == "datetime":
        decode_datetime(value, out)
        return
    number = _number(value)
    if name == "expires" and number is not None and 0 < number <= MAX_EVERY:
        return
    expected = "seconds in (0, 3153600000] or a datetime" if name == "expires" else "a datetime"
    out.add("OPT-1", value, f"option {name!r} must be {expected}", f"write {name} as {expected}")


# --------------------------------------------------------------------------- definition


def decode_definition_value(
    obj: object, out: Collector, *, name: str | None = None, profile: str = "core",
) -> Definition | None:
    """Decode a parsed ``definition`` object; ``name`` is the key suffix, when known (DEF-2)."""
    if not isinstance(obj, dict):
        out.add("DEF-1", obj, f"definition is {_kind(obj)}, not an object", "write a JSON object")
        return None
    start = len(out.findings)
    _members(
        obj, (*DEFINITION_MEMBERS, *_LEGACY_DEFINITION_MEMBERS), out, "DEF-1", "definition",
        "remove it: RedBeat passes every member to ScheduleEntry(), which raises TypeError and "
        "beat exits; put extensions in the 'extensions' hash field",
    )
    entry_name = _decode_name(obj, out, name)
    task = obj.get("task")
    if not isinstance(task, str) or not task:
        with out.at("task"):
            out.add(
                "DEF-4", task if "task" in obj else "(missing)",
                "task must be a non-empty string: the Celery task name",
                'write e.g. "task": "proj.tasks.report"', raw="task" not in obj,
            )
    elif task in BUILTIN_TASKS and not (task == "celery.backend_cleanup"
                                        and not obj.get("args") and not obj.get("kwargs")):
        with out.at("task"):
            out.add(
                "DEF-4", task, f"{task} is a Celery built-in task: every beat process has it "
                "and checks its arguments, so the send fails (only celery.backend_cleanup "
                "without arguments can be scheduled)", "schedule your own task",
            )
    schedule: Schedule | None = None
    bare = False
    if "schedule" not in obj:
        out.add(
            "DEF-5", "(missing)", "definition has no schedule (RedBeat's tick raises and beat "
            "exits)", 'add e.g. "schedule": {"__type__": "interval", "every": 60.0, '
            '"relative": false}', raw=True,
        )
    else:
        with out.at("schedule"):
            schedule, bare = decode_schedule(obj["schedule"], out, profile)
    args = obj.get("args")
    if args is not None and not isinstance(args, list):
        with out.at("args"):
            out.add("DEF-7", args, f"args is {_kind(args)}, not an array or null", "write [..]")
    elif args is not None:
        with out.at("args"):
            _walk_payload(args, out, "args")
    kwargs = obj.get("kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        with out.at("kwargs"):
            out.add("DEF-8", kwargs, f"kwargs is {_kind(kwargs)}, not an object or null", "{..}")
    elif kwargs is not None:
        with out.at("kwargs"):
            _walk_payload(kwargs, out, "kwargs")
    options = obj.get("options")
    if options is not None and not isinstance(options, dict):
        with out.at("options"):
            out.add(
                "DEF-9", options, f"options is {_kind(options)}, not an object or null",
                'write e.g. {"queue": "default"}',
            )
    elif options is not None:
        with out.at("options"):
            _decode_options(options, out)
    enabled = obj.get("enabled", True)
    if not isinstance(enabled, bool):
        with out.at("enabled"):
            out.add("DEF-10", enabled, "enabled must be true or false", 'write "enabled": true')
    relative: bool | None = None
    if "relative" in obj:
        with out.at("relative"):
            out.add(
                "DEF-11", obj["relative"], "definition.relative is legacy (RedBeat never writes "
                "it)", "put relative in the interval schedule and remove it here",
            )
            relative = obj["relative"] if isinstance(obj["relative"], bool) else None
    missing = [m for m in DEFINITION_MEMBERS if m not in obj and m not in ("name", "task",
               "schedule")]
    if missing:
        out.add(
            "DEF-12", ", ".join(missing), "definition omits " + ", ".join(missing),
            'write all seven members, e.g. "args": [], "kwargs": {}, "options": {}, '
            '"enabled": true', raw=True,
        )
    if out.has_failed(start) or schedule is None or entry_name is None:
        return None
    if bare and relative:
        schedule = Interval(schedule.every, True)  # type: ignore[union-attr]
    return Definition(
        name=entry_name,
        task=str(task),
        schedule=schedule,
        args=tuple(args) if args is not None else None,
        kwargs=MappingProxyType(kwargs) if kwargs is not None else None,
        options=MappingProxyType(options) if options is not None else None,
        enabled=bool(enabled),
        relative=relative,
        bare_schedule=bare,
    )


def _decode_name(obj: Mapping[str, Json], out: Collector, key_name: str | None) -> str | None:
    with out.at("name"):
        if "name" not in obj:
            out.add(
                "DEF-2", "(missing)", "definition has no name (RedBeat uses the string 'None' and "
                "writes its state to the key prefix+'None')",
                "set name to the entry key without the prefix", raw=True,
            )
            return None
        value = obj["name"]
        if not isinstance(value, str):
            out.add(
                "DEF-2", value, f"name is {_kind(value)}, not a string",
                "set name to the entry key without the prefix",
            )
            return None
        if value == "":
            out.add("DEF-3", value, "name is empty", "give the entry a name")
            return None
        if value in RESERVED_NAMES:
            out.add(
                "KEY-6", value, f"the name {value!r} makes the entry key collide with the "
                "reserved key prefix+{value!r}", "choose another name", raw=False,
            )
        if key_name is not None and value != key_name:
            out.add(
                "DEF-2", value, f"name differs from the key suffix {key_name!r}: RedBeat writes "
                "run state to another key and fires on every tick",
                f"set name to {key_name!r}",
            )
        if any(c.isspace() or not c.isprintable() for c in value) or value.startswith(":"):
            out.add(
                "KEY-7", value, "name contains whitespace or control characters, or starts "
                "with ':'", "use printable characters such as letters, digits, '.', '-', '_'",
            )
        return value


# --------------------------------------------------------------------------- meta


def decode_meta_value(obj: object, out: Collector) -> Meta | None:
    if not isinstance(obj, dict):
        out.add("META-1", obj, f"meta is {_kind(obj)}, not an object", "write a JSON object")
        return None
    start = len(out.findings)
    _members(
        obj, META_MEMBERS, out, "META-1", "meta",
        "remove it: RedBeat merges meta into ScheduleEntry() arguments; beat exits on TypeError",
    )
    last: DateTime | None = None
    if "last_run_at" not in obj:
        out.add(
            "META-2", "(missing)", "meta has no last_run_at: RedBeat raises KeyError and "
            "silently drops the entry", 'write "last_run_at": null for never run', raw=True,
        )
    else:
        value = obj["last_run_at"]
        with out.at("last_run_at"):
            if value is not None:
                if isinstance(value, dict) and value.get("__type__") == "datetime":
                    last = decode_datetime(value, out)
                    if last is not None and last.year >= LAST_RUN_YEAR_LIMIT:
                        out.add(
                            "META-2", last.year, f"last_run_at lies in the year {last.year}: "
                            "the next run would fall past 9999 and RedBeat's tick raises",
                            "write the time the entry last ran (or null)",
                        )
                        last = None
                else:
                    out.add(
                        "META-2", value, "last_run_at must be a datetime value or null",
                        '{"__type__": "datetime", "year": 2026, ..., "timezone": "UTC"}',
                    )
    count: int | None = None
    if "total_run_count" in obj:
        with out.at("total_run_count"):
            count = _integer(obj["total_run_count"], out, "META-3", "total_run_count", 0, None)
    if out.has_failed(start):
        return None
    return Meta(last, count)


# --------------------------------------------------------------------------- extensions

_EXT_MEMBERS: Final = ("timezone", "misfire", "jitter", "delete_after_last_run")


def decode_extensions_value(obj: object, out: Collector) -> Extensions | None:
    if not isinstance(obj, dict):
        out.add("EXT-1", obj, f"extensions is {_kind(obj)}, not an object", "write an object")
        return None
    start = len(out.findings)
    vendor: dict[str, Json] = {}
    for name, value in obj.items():
        if name.startswith("x-"):
            vendor[name] = value
        elif name not in _EXT_MEMBERS:
            with out.at(name):
                out.add(
                    "EXT-1", name, f"unknown extension {name!r}",
                    "use timezone, misfire, jitter, delete_after_last_run, or an 'x-' name",
                    raw=True,
                )
    zone = obj.get("timezone")
    if "timezone" in obj and (not isinstance(zone, str) or not is_known_zone(zone)):
        with out.at("timezone"):
            out.add("EXT-2", zone, "not an IANA time zone name", 'e.g. "Europe/Berlin"')
    misfire = None
    if "misfire" in obj:
        with out.at("misfire"):
            misfire = _decode_misfire(obj["misfire"], out)
    jitter = obj.get("jitter")
    if "jitter" in obj and ((n := _number(jitter)) is None or not 0 <= n <= 3600):
        with out.at("jitter"):
            out.add("EXT-4", jitter, "jitter must be seconds in 0..3600", 'e.g. "jitter": 30')
    delete = obj.get("delete_after_last_run")
    if "delete_after_last_run" in obj and not isinstance(delete, bool):
        with out.at("delete_after_last_run"):
            out.add("EXT-5", delete, "must be true or false", "write true or false")
    if out.has_failed(start):
        return None
    return Extensions(
        timezone=zone if isinstance(zone, str) else None,
        misfire=misfire,
        jitter=float(jitter) if isinstance(jitter, int | float) else None,
        delete_after_last_run=delete if isinstance(delete, bool) else None,
        vendor=MappingProxyType(vendor),
    )


def _decode_misfire(value: object, out: Collector) -> Misfire | None:
    if not isinstance(value, dict) or value.get("policy") not in ("run_once", "skip", "run_all"):
        out.add(
            "EXT-3", value, "misfire needs a policy: run_once, skip or run_all",
            '{"policy": "skip", "grace": 60}',
        )
        return None
    ok = True
    for name in value:
        if name not in ("policy", "grace", "max_catchup"):
            with out.at(name):
                out.add("EXT-3", name, f"unknown misfire member {name!r}", "remove it", raw=True)
            ok = False
    grace = value.get("grace", 60.0)
    if (g := _number(grace)) is None or not 0 <= g <= 31_536_000:
        with out.at("grace"):
            out.add("EXT-3", grace, "grace must be seconds in 0..31536000", '"grace": 60')
        ok = False
    cap: int | None = 10
    if "max_catchup" in value:
        with out.at("max_catchup"):
            cap = _integer(value["max_catchup"], out, "EXT-3", "max_catchup", 1, 1000)
        ok = ok and cap is not None
    if not ok:
        return None
    return Misfire(value["policy"], float(grace), cap or 10)
