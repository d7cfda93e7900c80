"""Encode typed values as canonical JSON text: byte for byte what RedBeat 2.4.2 writes.

RedBeat serialises with ``json.dumps(obj, cls=RedBeatJSONEncoder)``: Python's default separators
(``", "`` and ``": "``), ASCII output with ``\\uXXXX`` escapes, and members in a fixed order.
Values decoded from RedBeat's own output keep their Python types (``10.0`` stays a float, a
crontab field written as an integer stays one), so ``encode(decode(text)) == text``. Values in a
lenient form are written in the canonical form (a missing datetime ``timezone`` becomes ``"UTC"``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Final

from beatspec.codec.types import (
    Crontab,
    DateTime,
    Definition,
    Extensions,
    Interval,
    Json,
    Meta,
    RRule,
    RRuleValue,
    Schedule,
    Solar,
    Weekday,
)

__all__ = [
    "datetime_to_json",
    "dumps",
    "encode_definition",
    "encode_extensions",
    "encode_meta",
    "schedule_to_json",
]


def dumps(value: Json) -> str:
    """Serialise a JSON value exactly as Python's ``json.dumps`` defaults (and RedBeat) do."""
    return json.dumps(value)


def datetime_to_json(value: DateTime) -> dict[str, Json]:
    out: dict[str, Json] = {
        "__type__": "datetime",
        "year": value.year,
        "month": value.month,
        "day": value.day,
        "hour": value.hour,
        "minute": value.minute,
        "second": value.second,
        "microsecond": value.microsecond,
        "timezone": "UTC" if value.timezone is None else value.timezone,
    }
    if value.fold:
        out["fold"] = value.fold
    return out


def _weekday(value: Weekday) -> dict[str, Json]:
    out: dict[str, Json] = {"__type__": "weekday", "wkday": value.wkday}
    if value.n is not None:
        out["n"] = value.n
    return out


def _rrule_value(value: RRuleValue) -> Json:
    if isinstance(value, Weekday):
        return _weekday(value)
    if isinstance(value, tuple):
        return [_weekday(v) if isinstance(v, Weekday) else v for v in value]
    return value


def schedule_to_json(schedule: Schedule) -> dict[str, Json]:
    if isinstance(schedule, Interval):
        return {"__type__": "interval", "every": schedule.every, "relative": schedule.relative}
    if isinstance(schedule, Crontab):
        out: dict[str, Json] = {"__type__": "crontab"}
        for name in Crontab.FIELDS:
            field = getattr(schedule, name)
            out[name] = list(field) if isinstance(field, tuple) else field
        return out
    if isinstance(schedule, RRule):
        rule: dict[str, Json] = {
            "__type__": "rrule",
            "freq": schedule.freq,
            "interval": schedule.interval,
            "wkst": _rrule_value(schedule.wkst),
            "count": schedule.count,
        }
        for name in (
            "bysetpos", "bymonth", "bymonthday", "byyearday", "byeaster", "byweekno",
            "byweekday", "byhour", "byminute", "bysecond",
        ):
            rule[name] = _rrule_value(getattr(schedule, name))
        rule["dtstart"] = schedule.dtstart
        rule["dtstart_tz"] = schedule.dtstart_tz
        if schedule.until is not None:
            rule["until"] = schedule.until
            rule["until_tz"] = schedule.until_tz
        return rule
    if isinstance(schedule, Solar):
        return {"__type__": "solar", "event": schedule.event, "lat": schedule.lat,
                "lon": schedule.lon}
    raise TypeError(f"not a schedule: {schedule!r}")  # pragma: no cover - exhaustive


def _plain(mapping: Mapping[str, Json] | None) -> dict[str, Json] | None:
    return None if mapping is None else dict(mapping)


def encode_definition(definition: Definition) -> str:
    """The canonical ``definition`` text (members in RedBeat's order)."""
    return dumps(
        {
            "name": definition.name,
            "task": definition.task,
            "args": None if definition.args is None else list(definition.args),
            "kwargs": _plain(definition.kwargs),
            "options": _plain(definition.options),
            "schedule": schedule_to_json(definition.schedule),
            "enabled": definition.enabled,
        }
    )


#: The usual meta, as json.dumps writes it (a scheduler writes one per fire).
_META_TEXT: Final = (
    '{"last_run_at": {"__type__": "datetime", "year": %d, "month": %d, "day": %d, "hour": %d, '
    '"minute": %d, "second": %d, "microsecond": %d, "timezone": "%s"}, "total_run_count": %d}')
#: Zone names json.dumps writes as they are (nothing to escape).
_PLAIN_ZONE: Final = re.compile(r"[A-Za-z0-9_+/-]+")


def encode_meta(meta: Meta) -> str:
    """The canonical ``meta`` text; ``total_run_count`` only when it is set, as RedBeat does."""
    last, count = meta.last_run_at, meta.total_run_count
    if (last is not None and type(count) is int and not last.fold
            and type(last.timezone) is str and _PLAIN_ZONE.fullmatch(last.timezone)):
        return _META_TEXT % (last.year, last.month, last.day, last.hour, last.minute,
                             last.second, last.microsecond, last.timezone, count)
    out: dict[str, Json] = {
        "last_run_at": None if meta.last_run_at is None else datetime_to_json(meta.last_run_at)
    }
    if meta.total_run_count is not None:
        out["total_run_count"] = meta.total_run_count
    return dumps(out)


def encode_extensions(extensions: Extensions) -> str:
    out: dict[str, Json] = {}
    if extensions.timezone is not None:
        out["timezone"] = extensions.timezone
    if extensions.misfire is not None:
        m = extensions.misfire
        out["misfire"] = {"policy": m.policy, "grace": m.grace, "max_catchup": m.max_catchup}
    if extensions.jitter is not None:
        out["jitter"] = extensions.jitter
    if extensions.delete_after_last_run is not None:
        out["delete_after_last_run"] = extensions.delete_after_last_run
    out.update(extensions.vendor)
    return dumps(out)
