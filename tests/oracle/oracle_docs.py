"""Hypothesis strategies: entry documents near the boundary of validity.

:func:`documents` draws a valid, canonical entry (definition + meta, a random schedule type,
random payload) that is due at tick time, then applies 0-2 mutations from a catalogue that
targets every rule family of beatspec 1 (JSON text, tags, definition, meta, datetime, interval,
crontab, rrule, weekday, options, names). Each mutation records a label for the statistics.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from hypothesis import strategies as st

__all__ = ["ABSENT", "MUTATIONS", "Doc", "Raw", "documents", "valid_entries"]

Draw = Callable[[st.SearchStrategy[Any]], Any]


def _pick(draw: Draw, values: Any) -> Any:
    """Draw one of ``values`` as a fresh copy: mutations must never alter shared constants."""
    return copy.deepcopy(draw(st.sampled_from(values)))


class _Absent:
    __slots__ = ()

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()


@dataclass(frozen=True, slots=True)
class Raw:
    """A hash field given as literal text (for defects JSON cannot express as a value)."""

    text: str


_DEEP: Final = "__oracle_splice__"  # a placeholder string replaced by raw text at serialisation


@dataclass
class Doc:
    """An entry under test: its key suffix, the app timezone, and the two hash fields."""

    key: str
    timezone: str
    definition: Any
    meta: Any
    mutations: list[str] = field(default_factory=list)
    splice: str | None = None  # raw JSON text replacing the _DEEP placeholder

    def _text(self, value: Any) -> str | None:
        if value is ABSENT:
            return None
        if isinstance(value, Raw):
            return value.text
        text = json.dumps(value)
        if self.splice is not None:
            text = text.replace(json.dumps(_DEEP), self.splice)
        return text

    def fields(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name in ("definition", "meta"):
            text = self._text(getattr(self, name))
            if text is not None:
                out[name] = text
        return out

    def __repr__(self) -> str:
        fields = {k: (v if len(v) < 2000 else v[:2000] + "...") for k, v in self.fields().items()}
        return (
            f"Doc(key={self.key!r}, timezone={self.timezone!r}, mutations={self.mutations!r}, "
            f"fields={fields!r})"
        )


# --------------------------------------------------------------------------- valid entries

_NAME_CHARS: Final = string.ascii_lowercase + string.digits + "._-"
names = st.one_of(
    st.text(_NAME_CHARS, min_size=1, max_size=16).filter(lambda s: s[0] in string.ascii_lowercase),
    st.sampled_from(["daily report", "naïve-job", "job:1", "a/b"]),
)
tasks = st.builds(
    lambda parts: ".".join(parts),
    st.lists(st.text(string.ascii_lowercase + "_", min_size=1, max_size=8), min_size=2, max_size=3),
)
scalars = st.one_of(
    st.integers(-(10**6), 10**6),
    st.text(max_size=8),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)
payload_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=5), inner, max_size=3),
    max_leaves=6,
)
args_strategy = st.one_of(st.none(), st.lists(payload_values, max_size=4))
kwargs_strategy = st.one_of(
    st.dictionaries(st.text(string.ascii_lowercase, min_size=1, max_size=6), payload_values,
                    max_size=3),
    st.none(),
)

_ZONES: Final = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Sydney")


def datetime_json(value: dt.datetime, zone: str | float) -> dict[str, Any]:
    return {
        "__type__": "datetime", "year": value.year, "month": value.month, "day": value.day,
        "hour": value.hour, "minute": value.minute, "second": value.second,
        "microsecond": value.microsecond, "timezone": zone,
    }


@st.composite
def past_datetimes(draw: Draw) -> dict[str, Any]:
    """A datetime in the first months of 2001: before every generated rrule dtstart."""
    moment = draw(st.datetimes(dt.datetime(2001, 1, 1), dt.datetime(2001, 5, 31)))
    zone = draw(st.sampled_from(_ZONES))
    return datetime_json(moment, zone)


options_strategy = st.sampled_from([
    {}, {}, None, {"queue": "q1"}, {"priority": 3}, {"expires": 3600},
    {"queue": "q2", "priority": 9},
    {"headers": {"x-custom": "v"}}, {"time_limit": 30, "soft_time_limit": 20},
    {"serializer": "json"}, {"countdown": 5}, {"queue": "reports", "expires": 60.5},
    {"expires": datetime_json(dt.datetime(2040, 1, 1, 12), "UTC")},
])

_CRON_POOL: Final[dict[str, tuple[str, ...]]] = {
    "minute": ("*", "0", "5", "*/15", "0,30", "10-20", "50-10", "1-59/7", "0-10/2"),
    "hour": ("*", "4", "9-17", "*/2", "0,12", "22-2", "8-18/5"),
    "day_of_week": ("*", "*", "mon-fri", "sun", "0", "1,3,5", "sat-sun", "fri-mon", "*/2", "MON"),
    "day_of_month": ("*", "*", "1", "15", "1-7", "*/3", "29", "31", "28-31"),
    "month_of_year": ("*", "*", "1", "jan-mar", "*/3", "2", "nov-feb", "6-8", "Dec"),
}


def _as_int_or_list(text: str) -> object:
    if text.isdigit():
        return int(text)
    parts = text.split(",")
    if all(p.isdigit() for p in parts):
        return [int(p) for p in parts]
    return text


@st.composite
def crontabs(draw: Draw) -> dict[str, Any]:
    out: dict[str, Any] = {"__type__": "crontab"}
    for name, pool in _CRON_POOL.items():
        text = draw(st.sampled_from(pool))
        out[name] = _as_int_or_list(text) if draw(st.integers(0, 5)) == 0 else text
    if out["month_of_year"] in ("2", 2) and out["day_of_month"] in ("31", 31):
        out["day_of_month"] = "*"  # never occurs: Celery rejects it (CRON-4)
    return out


@st.composite
def intervals(draw: Draw) -> dict[str, Any]:
    every = draw(st.one_of(
        st.sampled_from([1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0]),
        st.floats(1.0, 86400.0),
        st.integers(1, 86400),
    ))
    return {"__type__": "interval", "every": every, "relative": draw(st.booleans())}


def _weekday(wkday: int, n: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"__type__": "weekday", "wkday": wkday}
    if n is not None:
        out["n"] = n
    return out


_RRULE_BY: Final = ("bysetpos", "bymonth", "bymonthday", "byyearday", "byeaster", "byweekno",
                    "byweekday", "byhour", "byminute", "bysecond")
#: Earliest dtstart year per frequency, so that dateutil walks few occurrences up to now.
_FIRST_YEAR: Final = {0: 2002, 1: 2002, 2: 2012, 3: 2023, 4: 2002, 5: 2002, 6: 2002}
_FREQ_NAMES: Final = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")


@st.composite
def rrules(draw: Draw) -> dict[str, Any]:
    freq = draw(st.integers(0, 6))
    start = draw(st.datetimes(dt.datetime(_FIRST_YEAR[freq], 1, 1), dt.datetime(2024, 12, 31)))
    offset = draw(st.sampled_from([0, 0, 0, -300.0, 60.0, 330.0]))
    stamp = int(start.replace(tzinfo=dt.UTC).timestamp())
    rule: dict[str, Any] = {
        "__type__": "rrule",
        "freq": draw(st.sampled_from([freq, freq, _FREQ_NAMES[freq], _FREQ_NAMES[freq].lower()])),
        "interval": draw(st.sampled_from([1, 1, 2, 3])),
        "wkst": draw(st.sampled_from([None, None, 0, _weekday(6)])),
        "count": None,
    }
    for name in _RRULE_BY:
        rule[name] = None
    shape = draw(st.sampled_from(["plain", "weekly-days", "monthly-nth", "hours", "months"]))
    if shape == "weekly-days":
        rule["byweekday"] = [_weekday(d) for d in draw(
            st.lists(st.integers(0, 6), min_size=1, max_size=3, unique=True))]
    elif shape == "monthly-nth":
        rule["byweekday"] = draw(st.sampled_from([_weekday(0, 1), _weekday(4, -1), 2, [0, 2]]))
    elif shape == "hours" and freq <= 3:
        rule["byhour"] = draw(st.sampled_from([9, [9, 17], 0]))
        rule["byminute"] = draw(st.sampled_from([None, 0, [0, 30]]))
    elif shape == "months" and freq <= 1:
        rule["bymonth"] = draw(st.sampled_from([[1, 7], 6, [3, 6, 9, 12]]))
        rule["bymonthday"] = draw(st.sampled_from([None, 1, [1, 15], -1]))
    rule["dtstart"] = stamp
    rule["dtstart_tz"] = offset
    if freq >= 4:
        rule["count"] = draw(st.integers(1, 50))  # high frequencies: bounded, or ticks get slow
    else:
        bound = draw(st.sampled_from(["none", "count", "until"]))
        if bound == "count":
            rule["count"] = draw(st.integers(1, 200))
        elif bound == "until":
            until = draw(st.datetimes(dt.datetime(2030, 1, 1), dt.datetime(2040, 1, 1)))
            rule["until"] = int(until.replace(tzinfo=dt.UTC).timestamp())
            rule["until_tz"] = offset
    return rule


@st.composite
def valid_entries(draw: Draw) -> Doc:
    """A canonical entry that beatspec accepts and that is due (or disabled) at tick time."""
    name = draw(names)
    schedule = draw(st.one_of(intervals(), crontabs(), rrules()))
    definition = {
        "name": name,
        "task": draw(tasks),
        "args": draw(args_strategy),
        "kwargs": draw(kwargs_strategy),
        "options": copy.deepcopy(draw(options_strategy)),
        "schedule": schedule,
        "enabled": draw(st.sampled_from([True] * 7 + [False])),
    }
    meta: dict[str, Any] = {"last_run_at": draw(st.one_of(st.none(), past_datetimes()))}
    if draw(st.booleans()):
        meta["total_run_count"] = draw(st.integers(0, 10_000))
    return Doc(name, draw(st.sampled_from(["UTC", "Europe/Berlin"])), definition, meta)


# --------------------------------------------------------------------------- navigation


def _members(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, Any, tuple[Any, ...]]]:
    """Every (container, key, path) below ``value``: dict members and list elements."""
    out: list[tuple[Any, Any, tuple[Any, ...]]] = []
    if isinstance(value, dict):
        for k in list(value):
            out.append((value, k, (*path, k)))
            out.extend(_members(value[k], (*path, k)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out.append((value, i, (*path, i)))
            out.extend(_members(item, (*path, i)))
    return out


def _tagged(value: Any, tag: str | None = None) -> list[dict[str, Any]]:
    """Every object below ``value`` (itself included) with a ``__type__`` (equal to ``tag``)."""
    found: list[dict[str, Any]] = []
    if isinstance(value, dict):
        if "__type__" in value and (tag is None or value["__type__"] == tag):
            found.append(value)
        for item in value.values():
            found.extend(_tagged(item, tag))
    elif isinstance(value, list):
        for item in value:
            found.extend(_tagged(item, tag))
    return found


def _structured(doc: Doc) -> list[tuple[str, Any]]:
    return [(n, v) for n, v in (("definition", doc.definition), ("meta", doc.meta))
            if isinstance(v, dict | list)]


# --------------------------------------------------------------------------- mutations

_OTHER_VALUES: Final[tuple[Any, ...]] = (
    "x", "5", "", 5, 2.5, 0, -1, None, True, False, [], [1, 2], {}, {"a": 1},
)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def m_delete_member(draw: Draw, doc: Doc) -> str:
    spots = [(c, k, f"{n}/{'/'.join(map(str, p))}") for n, root in _structured(doc)
             for c, k, p in _members(root) if isinstance(c, dict)]
    if not spots:
        return "delete:none"
    container, key, _ = draw(st.sampled_from(spots))
    del container[key]
    return f"delete:{key}"


_UNKNOWN_MEMBERS: Final[dict[str, tuple[str, ...]]] = {
    "definition": ("foo", "app", "last_run_at", "total_run_count", "relative", "extensions",
                   "description"),
    "meta": ("foo", "enabled", "args", "name", "schedule", "app"),
    "datetime": ("tzname", "fold", "foo", "nanosecond", "tzinfo"),
    "interval": ("foo", "period", "nowfun", "app"),
    "crontab": ("timezone", "nowfun", "app", "foo", "second"),
    "rrule": ("tzid", "cache", "app", "foo", "nowfun"),
    "weekday": ("foo", "n", "weekday"),
}


def m_add_member(draw: Draw, doc: Doc) -> str:
    targets: list[tuple[str, dict[str, Any]]] = []
    if isinstance(doc.definition, dict):
        targets.append(("definition", doc.definition))
    if isinstance(doc.meta, dict):
        targets.append(("meta", doc.meta))
    for _, root in _structured(doc):
        targets += [(obj["__type__"], obj) for obj in _tagged(root)
                    if isinstance(obj["__type__"], str) and obj["__type__"] in _UNKNOWN_MEMBERS]
    if not targets:
        return "add:none"
    kind, target = draw(st.sampled_from(targets))
    member = draw(st.sampled_from(_UNKNOWN_MEMBERS[kind]))
    value = draw(st.sampled_from([1, "x", None, True, 0, False]))
    if member == "relative":
        value = draw(st.sampled_from([True, False, "yes"]))
    target[member] = value
    return f"add:{kind}.{member}"


def m_change_type(draw: Draw, doc: Doc) -> str:
    spots = [(c, k) for _, root in _structured(doc) for c, k, _ in _members(root)]
    if not spots:
        return "retype:none"
    container, key = draw(st.sampled_from(spots))
    old = container[key]
    choices = [v for v in _OTHER_VALUES if _kind(v) != _kind(old)]
    container[key] = _pick(draw, choices)
    return f"retype:{key}"


_TIMEZONES: Final[tuple[Any, ...]] = (
    86400, -86400, 86399.5, -86399, 3600, 0, "+05:00", "Z", "3600", "Etc/GMT-5", "Mars/Olympus",
    None, "utc", "Europe/berlin", "", "posixrules", "localtime", "EST", "Factory", 1e300, True,
)


def _mutate_datetime(draw: Draw, obj: dict[str, Any]) -> str:
    choice = draw(st.sampled_from([
        "year", "month", "day", "hour", "minute", "second", "microsecond", "date", "float",
        "timezone", "timezone", "fold",
    ]))
    if choice == "year":
        obj["year"] = draw(st.sampled_from([0, 1, 9999, 10000, -1, 2**70]))
    elif choice == "month":
        obj["month"] = draw(st.sampled_from([0, 13]))
    elif choice == "day":
        obj["day"] = draw(st.sampled_from([0, 32]))
    elif choice == "hour":
        obj["hour"] = draw(st.sampled_from([24, -1]))
    elif choice == "minute":
        obj["minute"] = 60
    elif choice == "second":
        obj["second"] = draw(st.sampled_from([60, 61]))
    elif choice == "microsecond":
        obj["microsecond"] = draw(st.sampled_from([1_000_000, -1]))
    elif choice == "date":
        year, month, day = draw(st.sampled_from(
            [(2001, 4, 31), (2023, 2, 29), (2024, 2, 29), (2001, 2, 30), (2000, 2, 29),
             (1900, 2, 29), (1, 1, 1), (9999, 12, 31)]))
        obj.update(year=year, month=month, day=day)
    elif choice == "float":
        name = draw(st.sampled_from(["year", "hour", "second"]))
        obj[name] = float(obj.get(name, 0)) + draw(st.sampled_from([0.0, 0.5]))
        choice = f"float.{name}"
    elif choice == "timezone":
        obj["timezone"] = _pick(draw, _TIMEZONES)
        choice = f"timezone={obj['timezone']!r}"
    else:
        obj["fold"] = draw(st.sampled_from([1, 2, True, 1.0]))
    return f"datetime.{choice}"


_CRON_STRINGS: Final[tuple[Any, ...]] = (
    "*/0", "*/", "5/15", "1-5/", "60", "24", "7", "sun-7", "mon-fri", "fri-mon", "monday", "monkey",
    "MON", " 5", "5 ", "+5", "1_0", "٣", "-5", "1,,2", "", "L", "15W", "?", "*x", "1-5 junk",
    "50-10/7", "05", "0-59/61", "jan", "mar", "sat", None, [], [1, 2], [60], 5, True, "0", "32",
    "31", "30", "feb", "2", "*/7", "23-2/2", "1#2", "1-3,", "**", " *", "5-5", 0, -1, 1.0, ["1"],
    [True], [1, [2]], {"a": 1},
)


def _mutate_crontab(draw: Draw, obj: dict[str, Any]) -> str:
    name = draw(st.sampled_from(["minute", "hour", "day_of_week", "day_of_month",
                                 "month_of_year"]))
    value = _pick(draw, _CRON_STRINGS)
    obj[name] = value
    return f"crontab.{name}={value!r}"


_BY_VALUES: Final[dict[str, tuple[Any, ...]]] = {
    "bymonth": (13, 0, [], [0], [2], 12, 1.5, "1", [None], [True]),
    "bymonthday": (32, 0, -32, [], [31], [30], -1, [0]),
    "byyearday": (367, 0, -367, [], 366, [1]),
    "byweekno": (54, 0, -54, [], [53], 1),
    "byhour": (24, -1, [], [25], 23, [0]),
    "byminute": (60, -1, [], 59),
    "bysecond": (60, 61, -1, []),
    "bysetpos": (0, 367, -367, [], 1, [-1]),
    "byeaster": (0, 367, -367, [], 1),
    "byweekday": (7, -1, [], [7], "MO", {"__type__": "weekday", "wkday": 7},
                  {"__type__": "weekday", "wkday": 0, "n": 0}, [{"a": 1}], 6),
}


def _mutate_rrule(draw: Draw, obj: dict[str, Any]) -> str:
    choice = draw(st.sampled_from([
        "freq", "interval", "count", "by", "by", "dtstart", "dtstart_tz", "until", "wkst",
        "until_tz",
    ]))
    if choice == "freq":
        value: Any = draw(st.sampled_from([7, -1, "daily", "fortnightly", "DAILY", 3.0, "3",
                                           None, True]))
    elif choice == "interval":
        value = draw(st.sampled_from([0, -1, 2, 1.0, 1.5, None, "2"]))
    elif choice == "count":
        value = draw(st.sampled_from([0, -1, 1, 1.0, 3, None, "3"]))
    elif choice == "by":
        choice = draw(st.sampled_from(sorted(_BY_VALUES)))
        value = _pick(draw, _BY_VALUES[choice])
    elif choice == "dtstart":
        value = draw(st.sampled_from([None, 1.5e9, 1700000000.5, 10**12, -(10**12), 253402300800,
                                      -62135596801, "2024-01-01", 0, -1]))
    elif choice in ("dtstart_tz", "until_tz"):
        value = draw(st.sampled_from([1440, -1440, 1439.5, 60, "x", None, 0.5, 1e300]))
    elif choice == "until":
        value = draw(st.sampled_from([None, 946684800, 10**12, 1.5e9, "2030-01-01",
                                      2_000_000_000]))
    else:
        value = draw(st.sampled_from([7, -1, [0], {"__type__": "weekday", "wkday": 6, "n": 1},
                                      "SU", 6, 0.0]))
    obj[choice] = value
    return f"rrule.{choice}={value!r}"


def _mutate_interval(draw: Draw, obj: dict[str, Any]) -> str:
    if draw(st.integers(0, 3)) == 0:
        obj["relative"] = draw(st.sampled_from(["yes", 1, None, 0]))
        return f"interval.relative={obj['relative']!r}"
    obj["every"] = draw(st.sampled_from([0, -1, 1e20, 3153600000, 3153600001, 0.5, 1e-9, 2**63,
                                         5, "60", True, 0.0, 1e-300]))
    return f"interval.every={obj['every']!r}"


def _mutate_weekday(draw: Draw, obj: dict[str, Any]) -> str:
    if draw(st.booleans()):
        obj["n"] = draw(st.sampled_from([0, 54, -54, 53, -53, 1, None, 1.5, True]))
        return f"weekday.n={obj['n']!r}"
    obj["wkday"] = draw(st.sampled_from([7, -1, 6, 0, "MO", 1.0, None]))
    return f"weekday.wkday={obj['wkday']!r}"


_BOUNDARY: Final[dict[str, Callable[[Draw, dict[str, Any]], str]]] = {
    "datetime": _mutate_datetime,
    "crontab": _mutate_crontab,
    "rrule": _mutate_rrule,
    "interval": _mutate_interval,
    "weekday": _mutate_weekday,
}


def m_boundary(draw: Draw, doc: Doc) -> str:
    targets = [obj for _, root in _structured(doc) for obj in _tagged(root)
               if isinstance(obj["__type__"], str) and obj["__type__"] in _BOUNDARY]
    if not targets:
        return "boundary:none"
    target = draw(st.sampled_from(targets))
    return _BOUNDARY[target["__type__"]](draw, target)


def m_schedule_shape(draw: Draw, doc: Doc) -> str:
    if not isinstance(doc.definition, dict):
        return "schedule:none"
    value = draw(st.sampled_from([
        30, 30.0, 0, -5, True, "60", None, [], {}, {"__type__": "solar", "event": "sunset",
                                                     "lat": 52.5, "lon": 13.4},
        {"__type__": "timedelta", "seconds": 60}, {"__type__": "interval", "every": 60.0},
        {"every": 60.0, "relative": False}, 3153600000, 1e20,
    ]))
    doc.definition["schedule"] = value
    return f"schedule={value!r}"


_OPTION_VALUES: Final[tuple[dict[str, Any], ...]] = (
    {"queue": ""}, {"queue": 5}, {"priority": "high"}, {"priority": 12}, {"priority": -1},
    {"priority": 255}, {"priority": 256}, {"priority": 5.5}, {"expires": "soon"},
    {"expires": -5}, {"expires": 0}, {"expires": 1e300},
    {"expires": datetime_json(dt.datetime(2001, 1, 1), "UTC")},
    {"expires": datetime_json(dt.datetime(2040, 1, 1), "Europe/Berlin")},
    {"expires": {"__type__": "datetime", "year": 2040, "month": 2, "day": 30}},
    {"link": 1}, {"link_error": "x"}, {"countdown": "x"}, {"countdown": -5}, {"foo": "bar"},
    {"x-custom": 1}, {"headers": {"task": "evil.task"}}, {"headers": {"x-trace": "1"}},
    {"headers": "x"}, {"headers": {"id": 5}}, {"serializer": "xml"},
    {"compression": "bogus"}, {"compression": "zlib"}, {"eta": "tomorrow"},
    {"eta": datetime_json(dt.datetime(2001, 1, 1), "UTC")}, {"task_id": "abc"},
    {"time_limit": -1}, {"time_limit": "x"}, {"soft_time_limit": 0}, {"shadow": 5},
    {"shadow": "other.name"}, {"ignore_result": "no"}, {"delivery_mode": 3},
    {"retry": "x"}, {"retry_policy": 5}, {"routing_key": 5}, {"exchange": 5},
    {"queue": "q\x06\x163"}, {"countdown": 1e12}, {"expires": 1e12}, {"headers": {"id": 5}},
    {"headers": {"eta": "garbage"}}, {"compression": "bzip2"},
    {"foo": {"__type__": "interval", "every": 1.0, "relative": False}},
    {"foo": datetime_json(dt.datetime(2030, 1, 1), "UTC")},
)


def m_options(draw: Draw, doc: Doc) -> str:
    if not isinstance(doc.definition, dict):
        return "options:none"
    extra = _pick(draw, _OPTION_VALUES)
    current = doc.definition.get("options")
    if isinstance(current, dict) and draw(st.booleans()):
        current.update(extra)
    else:
        doc.definition["options"] = copy.deepcopy(extra)
    return f"options:{next(iter(extra))}={next(iter(extra.values()))!r}"[:80]


_TAGGED_PAYLOADS: Final[tuple[Any, ...]] = (
    datetime_json(dt.datetime(2024, 3, 10, 1, 59, 58, 123456), "UTC"),
    datetime_json(dt.datetime(2024, 3, 10, 1, 59, 58), "America/New_York"),
    datetime_json(dt.datetime(2024, 3, 10, 1, 59, 58), 19800.0),
    {"__type__": "datetime", "year": 2024, "month": 13, "day": 1},
    {"__type__": "datetime", "year": 2024, "month": 1, "day": 1, "timezone": "Mars/Olympus"},
    {"__type__": "datetime", "year": 1, "month": 1, "day": 1, "timezone": "Etc/GMT-5"},
    {"__type__": "interval", "every": 10.0, "relative": False},
    {"__type__": "crontab", "minute": "*"},
    {"__type__": "weekday", "wkday": 0},
    {"__type__": "rrule", "freq": 3, "dtstart": 1704067200},
    {"__type__": "money", "amount": 1},
    {"__type__": "money", "__value__": 1},
    {"__type__": "decimal", "__value__": "1.5"},
    {"__type__": "uuid", "__value__": {"hex": "x"}},
    {"__type__": "bytes", "__value__": "abc"},
    {"__type__": "datetime", "__value__": "2024-01-01T00:00:00"},
    {"__type__": None},
    {"nested": [{"__type__": "weekday", "wkday": 3}]},
)


def m_payload_tag(draw: Draw, doc: Doc) -> str:
    if not isinstance(doc.definition, dict):
        return "payload:none"
    value = _pick(draw, _TAGGED_PAYLOADS)
    where = draw(st.sampled_from(["args", "kwargs", "options"]))
    if where == "args":
        current = doc.definition.get("args")
        doc.definition["args"] = [*current, value] if isinstance(current, list) else [value]
    else:
        current = doc.definition.get(where)
        if not isinstance(current, dict):
            current = doc.definition[where] = {}
        current["expires" if where == "options" and draw(st.booleans()) else "t"] = value
    return f"payload:{where}:{value.get('__type__', 'nested')}"


def m_name(draw: Draw, doc: Doc) -> str:
    if not isinstance(doc.definition, dict):
        return "name:none"
    value = draw(st.sampled_from([
        "other", doc.key.upper(), doc.key + " ", " " + doc.key, ":schedule", ":statics", ":lock",
        ":beatspec", "", 5, None, ABSENT, doc.key + "\n",
    ]))
    if value is ABSENT:
        doc.definition.pop("name", None)
    else:
        doc.definition["name"] = value
    return f"name={value!r}"


def m_enabled(draw: Draw, doc: Doc) -> str:
    if not isinstance(doc.definition, dict):
        return "enabled:none"
    value = draw(st.sampled_from(["yes", 0, 1, False, "false", None, [], ABSENT]))
    if value is ABSENT:
        doc.definition.pop("enabled", None)
    else:
        doc.definition["enabled"] = value
    return f"enabled={value!r}"


def m_task(draw: Draw, doc: Doc) -> str:
    if not isinstance(doc.definition, dict):
        return "task:none"
    value = draw(st.sampled_from(["", None, 5, ["a.b"], "celery.backend_cleanup", " tasks.x",
                                  "tasks.x\n", ABSENT]))
    if value is ABSENT:
        doc.definition.pop("task", None)
    else:
        doc.definition["task"] = value
    return f"task={value!r}"


def m_meta(draw: Draw, doc: Doc) -> str:
    value = draw(st.sampled_from([
        {}, {"total_run_count": 3}, {"last_run_at": None}, {"last_run_at": None, "extra": 1},
        {"last_run_at": "2001-01-01T00:00:00Z"}, {"last_run_at": 0},
        {"last_run_at": {"__type__": "datetime"}},
        {"last_run_at": {"__type__": "datetime", "year": 2001, "month": 1, "day": 1}},
        {"last_run_at": {"year": 2001, "month": 1, "day": 1}},
        {"last_run_at": None, "total_run_count": -1},
        {"last_run_at": None, "total_run_count": "3"},
        {"last_run_at": None, "total_run_count": 2.0},
        {"last_run_at": None, "total_run_count": 2**70},
        {"last_run_at": None, "total_run_count": True},
        {"last_run_at": None, "total_run_count": None},
        {"last_run_at": datetime_json(dt.datetime(2999, 1, 1), "UTC")},
        {"last_run_at": datetime_json(dt.datetime(9999, 12, 31, 23, 59), "UTC")},
        datetime_json(dt.datetime(2001, 1, 1), "UTC"),
        ABSENT, Raw(""), [], Raw("null"),
    ]))
    doc.meta = value if isinstance(value, Raw | _Absent) else copy.deepcopy(value)
    return f"meta={value!r}"[:80]


def m_text(draw: Draw, doc: Doc) -> str:
    which = draw(st.sampled_from(["definition", "meta"]))
    current = getattr(doc, which)
    base = json.dumps(current) if not isinstance(current, Raw | _Absent) else "{}"
    choice = draw(st.sampled_from([
        "truncated", "empty", "null", "array", "string", "NaN", "two", "python", "bom",
        "duplicate", "array-of-object", "trailing-comma", "single-quotes",
    ]))
    first = '"enabled": false, ' if which == "definition" else '"last_run_at": 5, '
    duplicate = "{" + first + base[1:] if base != "{}" else '{"a": 1, "a": 2}'
    texts = {
        "truncated": base[:-1],
        "empty": "",
        "null": "null",
        "array": "[]",
        "string": '"x"',
        "NaN": "NaN",
        "two": base + " " + base,
        "python": base.replace("null", "None").replace("true", "True"),
        "bom": "\ufeff" + base,
        "duplicate": duplicate,
        "array-of-object": f"[{base}]",
        "trailing-comma": base[:-1] + ", }" if base != "{}" else "{,}",
        "single-quotes": base.replace('"', "'"),
    }
    setattr(doc, which, Raw(texts[choice]))
    return f"text:{which}:{choice}"


def m_numbers(draw: Draw, doc: Doc) -> str:
    """JSON number and nesting limits inside the payload (JSON-2, JSON-4..JSON-6)."""
    if not isinstance(doc.definition, dict):
        return "numbers:none"
    choice = draw(st.sampled_from(["nan", "inf", "big", "huge", "deep65", "deep3000",
                                   "surrogate", "float-int"]))
    args = doc.definition.get("args")
    args = args if isinstance(args, list) else []
    if choice == "nan":
        args.append(float("nan"))
    elif choice == "inf":
        args.append(float("-inf"))
    elif choice == "big":
        args.append(2**64)
    elif choice == "huge":
        args.append(10**400)
    elif choice.startswith("deep"):
        depth = int(choice[4:])
        args.append(_DEEP)
        doc.splice = "[" * depth + "]" * depth
    elif choice == "surrogate":
        args.append("\ud800")
    else:
        args.append(1e400 if draw(st.booleans()) else 12345678901234567890.0)
    doc.definition["args"] = args
    return f"numbers:{choice}"


MUTATIONS: Final[tuple[Callable[[Draw, Doc], str], ...]] = (
    m_delete_member, m_add_member, m_change_type, m_boundary, m_boundary, m_boundary,
    m_schedule_shape, m_options, m_payload_tag, m_name, m_enabled, m_task, m_meta, m_text,
    m_numbers,
)


@st.composite
def documents(draw: Draw) -> Doc:
    """A valid entry with 0-2 mutations applied (0 about a fifth of the time)."""
    doc: Doc = draw(valid_entries())
    for _ in range(draw(st.sampled_from([0, 1, 1, 2, 2]))):
        mutation = draw(st.sampled_from(MUTATIONS))
        doc.mutations.append(mutation(draw, doc))
    return doc
