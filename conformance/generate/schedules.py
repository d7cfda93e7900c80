#!/usr/bin/env python3
"""Generate the schedule conformance vectors by running Celery 5.7's own code.

    python conformance/generate/schedules.py          # (re)write vectors/v1/schedules/*.json
    python conformance/generate/schedules.py --check  # regenerate in memory; exit 1 if different

Needs celery 5.7.0, celery-redbeat 2.4.2, python-dateutil and ephem (beatspec's ``test`` and
``solar`` extras). The expected values are what those libraries compute; this script never imports
beatspec, so the vectors are an independent check of its schedule engine:

* interval: ``celery.schedules.schedule``, rrule: ``redbeat.schedules.rrule`` and crontab:
  ``celery.schedules.crontab``, each built from the vector's JSON by celery-redbeat's own
  ``RedBeatJSONDecoder`` (as RedBeat does) and bound to a Celery app whose ``timezone`` is the
  vector's ``app_timezone`` and to a ``nowfun`` returning ``now`` in that zone (as ``app.now()``
  does); solar: ``celery.schedules.solar``.
* ``expected.next_run`` = ``now + remaining_estimate(last_run_at)`` computed in UTC;
  ``expected.due`` and ``expected.next_check`` = ``is_due(last_run_at)``. An entry that never
  ran (``last_run_at`` null) is evaluated against ``datetime(1, 1, 2)`` in the app zone, as RedBeat
  does.
* ``expected.score`` is beatspec's score (spec §10.2): floor(max(next_run, now)) as UTC epoch
  seconds, -1 when exhausted, floor(now) when never run.
* Deviations (spec §5.8). D1: for every crontab case an independent brute-force search (scan the
  wall-clock minutes after wall(last_run_at) in the app zone, testing Celery's own expanded field
  sets, and take the first whose fold=0 instant is after last_run_at) is run as well; it must agree
  with Celery except where Celery's answer lies in the past (a second pass of a repeated hour), and
  there the brute force is the expected value and Celery's answer goes to ``celery``. D2: in the
  cases tagged ``redbeat-score``, ``celery.score`` is the score celery-redbeat 2.4.2 writes
  (``RedBeatSchedulerEntry.score``). D3: solar is evaluated a second time with ``last_run_at`` (and
  ``now``) converted to UTC before Celery sees them; where that differs, it is the expected value.

The output is deterministic: fixed inputs, one fixed random seed, cases sorted by description.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.metadata
import json
import random
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from celery import Celery
from celery.schedules import solar
from redbeat.decoder import RedBeatJSONDecoder
from redbeat.schedulers import RedBeatSchedulerEntry

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "conformance" / "vectors" / "v1" / "schedules"
SEED = 20241027
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
REQUIRED = {"celery": "5.7.0", "celery-redbeat": "2.4.2"}

FILES: dict[str, str] = {
    "interval.json": "interval schedules (relative false): elapsed time, float and integer every, "
    "DST in the app zone, downtime",
    "interval-relative.json": "relative interval schedules: rounding to the minute, hour or day "
    "of last_run_at's zone, across DST gaps and repeated hours",
    "crontab-basics.json": "crontab field semantics away from DST: steps, lists, ranges, names, "
    "wrapped ranges, day_of_month AND day_of_week, month ends, leap days",
    "crontab-dst.json": "crontab across DST gaps and repeated hours, incl. southern, 30- and "
    "45-minute zones and the D1 fix for a last run in the second pass",
    "crontab-downtime.json": "crontab after long downtime: one catch-up run, then the next slot",
    "rrule.json": "rrule schedules (dateutil, as RedBeat builds them): dtstart, until, count, "
    "weekdays with n, dtstart_tz, freq names, exhausted rules",
    "never-run.json": "entries that never ran (last_run_at null): evaluated against 0001-01-02 in "
    "the app zone, as RedBeat does; the score is now",
    "solar.json": "solar schedules (extended profile): events, latitudes incl. polar, and the D3 "
    "UTC fix for a last run in another zone",
}


# --------------------------------------------------------------------------- small helpers


def zone_of(name: str) -> tzinfo:
    return ZoneInfo(name)


def wall(zone: str, y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0,
         fold: int = 0) -> datetime:
    """An aware wall-clock time in an IANA zone (``fold`` selects the pass of a repeated time)."""
    value = datetime(y, mo, d, h, mi, s, us, tzinfo=ZoneInfo(zone), fold=fold)
    back = value.astimezone(UTC).astimezone(ZoneInfo(zone))
    if back.replace(tzinfo=None) != value.replace(tzinfo=None):
        raise ValueError(f"{value} does not exist in {zone}")
    return value


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


def epoch(value: datetime) -> int:
    return (value - EPOCH) // timedelta(seconds=1)


def floor_score(value: datetime) -> int:
    return epoch(value.astimezone(UTC))


def iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def short(value: datetime) -> str:
    """A compact rendering for descriptions: 2024-10-27T02:30+01:00, seconds only if set."""
    if value.microsecond:
        text = value.isoformat(timespec="microseconds")
    elif value.second:
        text = value.isoformat(timespec="seconds")
    else:
        text = value.isoformat(timespec="minutes")
    return text.replace("+00:00", "Z") if value.utcoffset() == timedelta(0) else text


def ambiguous(value: datetime) -> bool:
    return value.replace(fold=0).utcoffset() != value.replace(fold=1).utcoffset()


def encode_datetime(value: datetime) -> dict[str, Any]:
    """beatspec's (RedBeat's) datetime JSON, plus ``fold`` for a repeated wall time."""
    tz = value.tzinfo
    zone: str | int | float
    if isinstance(tz, ZoneInfo):
        zone = tz.key
    elif tz is UTC:
        zone = "UTC"
    else:
        offset = value.utcoffset()
        assert offset is not None
        seconds = offset.total_seconds()
        zone = int(seconds) if seconds.is_integer() else seconds
    out: dict[str, Any] = {
        "__type__": "datetime", "year": value.year, "month": value.month, "day": value.day,
        "hour": value.hour, "minute": value.minute, "second": value.second,
        "microsecond": value.microsecond, "timezone": zone,
    }
    if isinstance(tz, ZoneInfo) and ambiguous(value):
        out["fold"] = value.fold
    return out


def cron(minute: Any = "*", hour: Any = "*", day_of_month: Any = "*", month_of_year: Any = "*",
         day_of_week: Any = "*") -> dict[str, Any]:
    """A crontab schedule, arguments in cron-line order (m h dom mon dow)."""
    return {"__type__": "crontab", "minute": minute, "hour": hour, "day_of_week": day_of_week,
            "day_of_month": day_of_month, "month_of_year": month_of_year}


def cron_text(schedule: dict[str, Any]) -> str:
    def one(value: Any) -> str:
        if isinstance(value, str):
            return value
        return json.dumps(value, separators=(",", ":"))

    names = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
    return "'" + " ".join(one(schedule.get(n, "*")) for n in names) + "'"


def interval(every: float, relative: bool = False) -> dict[str, Any]:
    return {"__type__": "interval", "every": every, "relative": relative}


def solar_json(event: str, lat: float, lon: float) -> dict[str, Any]:
    return {"__type__": "solar", "event": event, "lat": lat, "lon": lon}


# --------------------------------------------------------------------------- Celery side


_APPS: dict[str, Celery] = {}


def app_for(zone: str) -> Celery:
    """One app per time zone: Celery caches ``app.timezone`` on first use."""
    if zone not in _APPS:
        app = Celery("beatspec-vectors", set_as_current=False)
        app.conf.timezone = zone
        app.conf.enable_utc = True
        assert str(app.timezone) == zone, (app.timezone, zone)
        _APPS[zone] = app
    return _APPS[zone]


def celery_schedule(schedule: dict[str, Any], zone: str, nowfun: Callable[[], datetime]) -> Any:
    """The Celery/RedBeat schedule object for a vector's schedule JSON."""
    app = app_for(zone)
    if schedule["__type__"] == "solar":
        return solar(schedule["event"], schedule["lat"], schedule["lon"], app=app, nowfun=nowfun)
    built = json.loads(json.dumps(schedule), cls=RedBeatJSONDecoder)
    built.app = app
    built.nowfun = nowfun
    built.__dict__.pop("tz", None)  # a cached_property, possibly computed from current_app
    built.__dict__.pop("utc_enabled", None)
    assert built.tz == ZoneInfo(zone)
    return built


def _no_clock() -> datetime:
    raise AssertionError("only the expanded fields of this crontab are used")


def cron_fields(schedule: dict[str, Any], zone: str) -> Any:
    """Celery's crontab for a vector, for its expanded field sets (minute, hour, ...)."""
    return celery_schedule(schedule, zone, _no_clock)


@dataclass(frozen=True)
class Result:
    due: bool
    next_check: float | None
    next_run: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "due": self.due,
            "next_check": self.next_check,
            "next_run": None if self.next_run is None else iso_utc(self.next_run),
        }


def never_run(zone: str) -> datetime:
    """What RedBeat evaluates an entry without ``last_run_at`` against."""
    return datetime(1, 1, 2, tzinfo=ZoneInfo(zone))


def celery_eval(schedule: dict[str, Any], zone: str, last: datetime, now: datetime) -> Result:
    now_local = now.astimezone(ZoneInfo(zone))  # what app.now() returns
    built = celery_schedule(schedule, zone, lambda: now_local)
    remaining = built.remaining_estimate(last)
    next_run = None if remaining is None else now.astimezone(UTC) + remaining
    due, check = built.is_due(last)
    return Result(bool(due), None if check is None else float(check), next_run)


def redbeat_score(schedule: dict[str, Any], zone: str, last: datetime, now: datetime) -> int:
    """The score celery-redbeat 2.4.2 writes for this entry (its own code)."""
    now_local = now.astimezone(ZoneInfo(zone))
    built = celery_schedule(schedule, zone, lambda: now_local)
    entry = RedBeatSchedulerEntry("v", "t", built, app=app_for(zone))
    entry.last_run_at = last
    return int(entry.score)


# --------------------------------------------------------------------------- brute force (D1)


def _date_ok(c: Any, day: date) -> bool:
    return (day.month in c.month_of_year and day.day in c.day_of_month
            and day.isoweekday() % 7 in c.day_of_week)


def brute_next(c: Any, last: datetime, zone: tzinfo, years: int = 120) -> datetime | None:
    """First wall-clock minute after wall(last) matching Celery's expanded fields, in the app
    zone, whose fold=0 instant is strictly after ``last``: scanned minute by minute."""
    last_utc = last.astimezone(UTC)
    start = last_utc.astimezone(zone).replace(tzinfo=None, fold=0)
    first = start.replace(second=0, microsecond=0) + MINUTE  # the first minute > wall(last)
    day = first.date()
    stop = day + timedelta(days=366 * years)
    while day < stop:
        if _date_ok(c, day):
            minute = datetime(day.year, day.month, day.day)
            for _ in range(24 * 60):
                if minute >= first and minute.hour in c.hour and minute.minute in c.minute:
                    instant = minute.replace(tzinfo=zone, fold=0).astimezone(UTC)
                    if instant > last_utc:
                        return instant
                minute += MINUTE
        day += DAY
    return None


def brute_eval(c: Any, zone: str, last: datetime, now: datetime) -> Result:
    tz = ZoneInfo(zone)
    upcoming = brute_next(c, last, tz)
    assert upcoming is not None
    now_utc = now.astimezone(UTC)
    if now_utc >= upcoming:
        after_now = brute_next(c, now_utc, tz)
        assert after_now is not None
        return Result(True, max((after_now - now_utc).total_seconds(), 0.0), upcoming)
    return Result(False, (upcoming - now_utc).total_seconds(), upcoming)


# --------------------------------------------------------------------------- cases


@dataclass
class Spec:
    file: str
    label: str
    schedule: dict[str, Any]
    app_tz: str
    last: datetime | None
    now: datetime
    tags: tuple[str, ...] = ()
    redbeat: bool = False  # D2: record RedBeat's score

    def description(self) -> str:
        last = "never run" if self.last is None else f"last {short(self.last)}"
        return f"{self.label}; {last}; now {short(self.now.astimezone(UTC))}"


def evaluate(spec: Spec) -> dict[str, Any]:
    zone = spec.app_tz
    last = never_run(zone) if spec.last is None else spec.last
    now = spec.now.astimezone(UTC)
    kind = spec.schedule["__type__"]
    actual = celery_eval(spec.schedule, zone, last, now)
    expected = actual
    deviation: str | None = None
    if kind == "crontab":
        c = cron_fields(spec.schedule, zone)
        brute = brute_eval(c, zone, last, now)
        if brute != actual:
            in_past = actual.next_run is not None and actual.next_run <= last.astimezone(UTC)
            now_second_pass = actual.due and now.astimezone(ZoneInfo(zone)).fold == 1
            if not (in_past or now_second_pass):
                raise AssertionError(f"brute force disagrees with Celery: {spec}: "
                                     f"{brute} != {actual}")
            expected, deviation = brute, "D1"
    elif kind == "solar":
        # D3: Celery reads the wall clock of a non-UTC last_run_at (and of now) as UTC.
        fixed = celery_eval(spec.schedule, "UTC", last.astimezone(UTC_ZONE), now)
        if fixed != actual:
            expected, deviation = fixed, "D3"
    if expected.next_run is None:
        score = -1  # exhausted, even if it never ran (ZSET-3)
    elif spec.last is None:
        score = floor_score(now)
    else:
        score = floor_score(max(expected.next_run, now))
    celery_json: dict[str, Any] | None = None
    if deviation is not None:
        celery_json = actual.as_json()
    elif spec.redbeat:
        rb = redbeat_score(spec.schedule, zone, last, now)
        if rb == score:
            raise AssertionError(f"no score deviation in a redbeat-score case: {spec}")
        deviation = "D2"
        celery_json = {**actual.as_json(), "score": rb}
    tags = set(spec.tags)
    if spec.last is None:
        tags.add("never-run")
    if expected.next_run is None:
        tags.add("exhausted")
    if kind == "solar":
        tags.add("extended")
    if spec.redbeat:
        tags.add("redbeat-score")
    case: dict[str, Any] = {
        "description": spec.description(),
        "schedule": spec.schedule,
        "app_timezone": zone,
        "last_run_at": None if spec.last is None else encode_datetime(spec.last),
        "now": iso_utc(now),
        "expected": {**expected.as_json(), "score": score},
    }
    if deviation is not None:
        case["deviation"] = deviation
        case["celery"] = celery_json
    case["tags"] = sorted(tags)
    return case


# --------------------------------------------------------------------------- interval.json


def interval_cases() -> Iterator[Spec]:
    f = "interval.json"
    base = utc(2024, 5, 14, 10, 0)
    # Plain elapsed-time intervals in UTC, now before, at and after the due time.
    plain: list[tuple[float, str, tuple[str, ...]]] = [
        (60, "every 60 (integer)", ()),
        (60.0, "every 60.0 (float, as RedBeat writes it)", ()),
        (30.0, "every 30.0", ()),
        (0.5, "every 0.5 (sub-second)", ("sub-second",)),
        (90.5, "every 90.5", ("fractional",)),
        (1.25, "every 1.25", ("fractional", "sub-second")),
        (300.0, "every 300.0", ()),
        (3600.0, "every 3600.0", ()),
        (86400.0, "every 86400.0", ()),
        (604800.0, "every 604800.0 (a week)", ()),
    ]
    for every, label, tags in plain:
        step = timedelta(seconds=every)
        nows = [base, base + step / 2, base + step - timedelta(microseconds=1), base + step,
                base + step * 3 + timedelta(seconds=7)]
        for now in nows:
            yield Spec(f, f"interval {label}", interval(every), "UTC", base, now, tags)
    # A last run with microseconds.
    last = utc(2024, 5, 14, 10, 0, 0, 250000)
    for now in (utc(2024, 5, 14, 10, 0, 30), utc(2024, 5, 14, 10, 0, 30, 250000),
                utc(2024, 5, 14, 10, 0, 30, 500000)):
        yield Spec(f, "interval every 30.0, last run with microseconds", interval(30.0), "UTC",
                   last, now, ("microseconds",))
    # Elapsed time across DST in the app zone (Celery 5.7: UTC arithmetic).
    dst = [
        ("Europe/Berlin", wall("Europe/Berlin", 2024, 3, 30, 12), 86400.0, ("dst-gap",)),
        ("Europe/Berlin", wall("Europe/Berlin", 2024, 3, 31, 1, 30), 3600.0, ("dst-gap",)),
        ("Europe/Berlin", wall("Europe/Berlin", 2024, 10, 26, 12), 86400.0, ("dst-fold",)),
        ("Europe/Berlin", wall("Europe/Berlin", 2024, 10, 27, 2, 30, fold=0), 3600.0,
         ("dst-fold",)),
        ("Europe/Berlin", wall("Europe/Berlin", 2024, 10, 27, 2, 30, fold=1), 3600.0,
         ("dst-fold",)),
        ("America/New_York", wall("America/New_York", 2024, 11, 3, 1, 30, fold=0), 3600.0,
         ("dst-fold",)),
        ("America/New_York", wall("America/New_York", 2024, 3, 9, 9), 86400.0, ("dst-gap",)),
        ("Australia/Sydney", wall("Australia/Sydney", 2024, 4, 6, 9), 86400.0,
         ("dst-fold", "southern")),
        ("Australia/Lord_Howe", wall("Australia/Lord_Howe", 2024, 10, 6, 1, 45), 1800.0,
         ("dst-gap", "half-hour-dst", "southern")),
        ("Pacific/Chatham", wall("Pacific/Chatham", 2024, 4, 7, 3, 15, fold=0), 3600.0,
         ("dst-fold", "45min", "southern")),
        ("Asia/Kolkata", wall("Asia/Kolkata", 2024, 7, 1, 23, 45), 1800.0, ("half-hour-offset",)),
    ]
    for zone, last, every, tags in dst:
        due_at = last.astimezone(UTC) + timedelta(seconds=every)
        for now in (due_at - timedelta(seconds=1), due_at):
            yield Spec(f, f"interval every {every} in {zone}, elapsed time", interval(every), zone,
                       last, now, tags)
    # last_run_at in another zone than the app zone, or as offset seconds.
    yield Spec(f, "interval every 3600.0, last run in Asia/Kolkata, app in UTC",
               interval(3600.0), "UTC", wall("Asia/Kolkata", 2024, 5, 14, 15, 30),
               utc(2024, 5, 14, 10, 30), ())
    yield Spec(f, "interval every 3600.0, last run in UTC, app in Europe/Berlin",
               interval(3600.0), "Europe/Berlin", utc(2024, 10, 27, 0, 30),
               utc(2024, 10, 27, 1, 0), ("dst-fold",))
    for offset in (3600, -16200):
        last = datetime(2024, 5, 14, 12, 0, tzinfo=timezone(timedelta(seconds=offset)))
        yield Spec(f, f"interval every 600.0, last run with offset {offset} s", interval(600.0),
                   "UTC", last, last.astimezone(UTC) + timedelta(seconds=600), ("offset-zone",))
    # Clock skew: now before last_run_at.
    yield Spec(f, "interval every 60.0, now before the last run (clock skew)", interval(60.0),
               "UTC", base, base - timedelta(seconds=20), ("clock-skew",))
    # Long downtime: one catch-up run, next check one interval later.
    for every, last, now in (
        (300.0, utc(2024, 1, 15, 8), utc(2024, 6, 20, 9, 17, 3)),
        (86400.0, utc(2023, 11, 2), utc(2024, 6, 20, 12)),
        (604800.0, utc(2021, 3, 1), utc(2024, 6, 20, 12)),
        (3600.0, wall("Europe/Berlin", 2024, 2, 1, 9), utc(2024, 7, 1, 8, 0, 0, 500000)),
    ):
        zone = "Europe/Berlin" if isinstance(last.tzinfo, ZoneInfo) else "UTC"
        yield Spec(f, f"interval every {every} after months of downtime", interval(every), zone,
                   last, now, ("downtime",))
    # The largest interval: 100 years of 365 days.
    yield Spec(f, "interval every 3153600000 (the maximum)", interval(3153600000), "UTC",
               base, base + timedelta(days=1), ("max",))
    # RedBeat's early score (D2): L + (next - now).
    for every, last, now in (
        (86400.0, utc(2024, 5, 14, 10), utc(2024, 5, 14, 11)),
        (3600.0, utc(2024, 5, 14, 10), utc(2024, 5, 14, 10, 59, 30)),
    ):
        yield Spec(f, f"interval every {every}, RedBeat scores early", interval(every), "UTC",
                   last, now, (), redbeat=True)


# --------------------------------------------------------------------------- interval-relative


def relative_cases() -> Iterator[Spec]:
    f = "interval-relative.json"
    rel = ("relative",)
    # I07: the unit, not the interval: 15 minutes from 10:07:30 is due 10:22:00.
    last = utc(2024, 5, 14, 10, 7, 30)
    for now in (utc(2024, 5, 14, 10, 15), utc(2024, 5, 14, 10, 21, 59), utc(2024, 5, 14, 10, 22),
                utc(2024, 5, 14, 10, 22, 40)):
        yield Spec(f, "relative every 900 rounds to the minute (I07)", interval(900.0, True),
                   "UTC", last, now, rel)
    # I04: relative hourly due at 11:00:05 -> next check 3595 s.
    last = utc(2024, 5, 14, 10, 20)
    for now in (utc(2024, 5, 14, 10, 59, 59), utc(2024, 5, 14, 11, 0), utc(2024, 5, 14, 11, 0, 5),
                utc(2024, 5, 14, 13, 30)):
        yield Spec(f, "relative every 3600 rounds to the hour (I04)", interval(3600.0, True),
                   "UTC", last, now, rel)
    units: list[tuple[float, str]] = [
        (30.0, "30 s (below a minute: only microseconds drop)"),
        (45.5, "45.5 s"),
        (60.0, "60 s (minute unit)"),
        (90.0, "90 s (minute unit)"),
        (5400.0, "5400 s (hour unit)"),
        (7200.0, "7200 s (hour unit)"),
        (86400.0, "86400 s (day unit)"),
        (172800.0, "172800 s (day unit, calendar days)"),
    ]
    last = utc(2024, 5, 14, 10, 7, 30, 123456)
    for every, label in units:
        step = timedelta(seconds=every)
        for now in (last + step / 2, last + step):
            yield Spec(f, f"relative every {label}", interval(every, True), "UTC", last, now, rel)
    # I06: daily relative across the Berlin spring-forward: first local midnight after L.
    yield Spec(f, "relative every 86400 across the Berlin gap (I06)", interval(86400.0, True),
               "Europe/Berlin", wall("Europe/Berlin", 2024, 3, 30, 12), utc(2024, 3, 30, 22, 59),
               (*rel, "dst-gap"))
    yield Spec(f, "relative every 86400 across the Berlin gap (I06)", interval(86400.0, True),
               "Europe/Berlin", wall("Europe/Berlin", 2024, 3, 30, 12), utc(2024, 3, 30, 23, 0),
               (*rel, "dst-gap"))
    # Relative intervals around transitions; the wall clock of last_run_at's zone is what counts.
    transitions: list[tuple[str, str, datetime, tuple[str, ...]]] = [
        # (zone, kind, a UTC instant at the transition, tags)
        ("Europe/Berlin", "gap", utc(2024, 3, 31, 1), ()),
        ("Europe/Berlin", "fold", utc(2024, 10, 27, 1), ()),
        ("America/New_York", "gap", utc(2024, 3, 10, 7), ()),
        ("America/New_York", "fold", utc(2024, 11, 3, 6), ()),
        ("Australia/Sydney", "fold", utc(2024, 4, 6, 16), ("southern",)),
        ("Australia/Sydney", "gap", utc(2024, 10, 5, 16), ("southern",)),
        ("Australia/Lord_Howe", "fold", utc(2024, 4, 6, 15), ("southern", "half-hour-dst")),
        ("Australia/Lord_Howe", "gap", utc(2024, 10, 5, 15, 30), ("southern", "half-hour-dst")),
        ("Pacific/Chatham", "fold", utc(2024, 4, 6, 14), ("southern", "45min")),
        ("Pacific/Chatham", "gap", utc(2024, 9, 28, 14), ("southern", "45min")),
    ]
    for zone, kind, at, tags in transitions:
        tz = ZoneInfo(zone)
        tag = ("dst-gap",) if kind == "gap" else ("dst-fold",)
        for every, before in ((900.0, timedelta(minutes=7, seconds=30)),
                              (3600.0, timedelta(minutes=40)),
                              (3600.0, timedelta(minutes=-20)),
                              (86400.0, timedelta(hours=5))):
            last = (at - before).astimezone(tz)
            label = f"relative every {every} near the {zone} {kind}"
            first = celery_eval(interval(every, True), zone, last, last).next_run
            assert first is not None
            for now in (first - timedelta(seconds=1), first + timedelta(seconds=2)):
                yield Spec(f, label, interval(every, True), zone, last, now, rel + tag + tags)
    # A last run in the second pass of a repeated hour.
    for zone, last in (
        ("Europe/Berlin", wall("Europe/Berlin", 2024, 10, 27, 2, 10, fold=1)),
        ("America/New_York", wall("America/New_York", 2024, 11, 3, 1, 50, fold=1)),
        ("Australia/Lord_Howe", wall("Australia/Lord_Howe", 2024, 4, 7, 1, 40, fold=1)),
        ("Pacific/Chatham", wall("Pacific/Chatham", 2024, 4, 7, 3, 0, fold=1)),
    ):
        for every in (60.0, 900.0, 3600.0, 86400.0):
            now = last.astimezone(UTC) + timedelta(seconds=every)
            yield Spec(f, f"relative every {every}, last run in the second pass in {zone}",
                       interval(every, True), zone, last, now, (*rel, "dst-fold"))
    # The zone of last_run_at decides, not the app zone.
    yield Spec(f, "relative every 86400, last run in UTC while the app is in Europe/Berlin",
               interval(86400.0, True), "Europe/Berlin", utc(2024, 7, 1, 22, 30),
               utc(2024, 7, 1, 23, 30), rel)
    yield Spec(f, "relative every 86400, last run in Asia/Kolkata while the app is in UTC",
               interval(86400.0, True), "UTC", wall("Asia/Kolkata", 2024, 7, 1, 22, 30),
               utc(2024, 7, 1, 19, 0), (*rel, "half-hour-offset"))
    yield Spec(f, "relative every 3600, last run in Asia/Kolkata while the app is in UTC",
               interval(3600.0, True), "UTC", wall("Asia/Kolkata", 2024, 7, 1, 22, 10),
               utc(2024, 7, 1, 17, 31), (*rel, "half-hour-offset"))
    yield Spec(f, "relative every 3600, last run in Pacific/Chatham (+12:45)",
               interval(3600.0, True), "Pacific/Chatham", wall("Pacific/Chatham", 2024, 7, 1, 9, 5),
               utc(2024, 6, 30, 21, 15), (*rel, "45min"))
    # Downtime: due, and the next check realigns to the next rounded boundary.
    yield Spec(f, "relative every 3600 after a week of downtime", interval(3600.0, True),
               "UTC", utc(2024, 5, 7, 10, 20), utc(2024, 5, 14, 10, 41, 10), (*rel, "downtime"))
    yield Spec(f, "relative every 86400 after a month of downtime", interval(86400.0, True),
               "Europe/Berlin", wall("Europe/Berlin", 2024, 9, 20, 8), utc(2024, 10, 27, 1, 30),
               (*rel, "downtime", "dst-fold"))


# --------------------------------------------------------------------------- crontab-basics


def cron_triples(f: str, label: str, schedule: dict[str, Any], zone: str,
                 lasts: Iterable[datetime], tags: tuple[str, ...]) -> Iterator[Spec]:
    """For each last run: now shortly after it, exactly at the next run, and hours late."""
    for last in lasts:
        c = cron_fields(schedule, zone)
        upcoming = brute_next(c, last, ZoneInfo(zone))
        assert upcoming is not None
        nows = [last.astimezone(UTC) + timedelta(seconds=30), upcoming,
                upcoming + timedelta(hours=3, minutes=7)]
        for now in dict.fromkeys(nows):
            yield Spec(f, f"{label} {cron_text(schedule)}", schedule, zone, last, now, tags)


def crontab_basic_cases() -> Iterator[Spec]:
    f = "crontab-basics.json"
    u = "UTC"
    groups: list[tuple[str, dict[str, Any], str, list[datetime], tuple[str, ...]]] = [
        ("every minute", cron(), u, [utc(2024, 5, 14, 10, 7, 30)], ()),
        ("step", cron("*/15"), u, [utc(2024, 5, 14, 10, 0), utc(2024, 5, 14, 10, 50)],
         ("step",)),
        ("step with a short last gap (56 -> 0)", cron("*/7"), u, [utc(2024, 5, 14, 10, 56)],
         ("step",)),
        ("list, ranges and a stepped range", cron("1,13,30-45,50-59/2"), u,
         [utc(2024, 5, 14, 10, 13), utc(2024, 5, 14, 10, 45, 30), utc(2024, 5, 14, 10, 58)],
         ("list", "range", "step")),
        ("wrapped minute range", cron("50-10"), u, [utc(2024, 5, 14, 10, 10)], ("wrap",)),
        ("wrapped minute range with step {50,57,4}", cron("50-10/7", "*"), u,
         [utc(2024, 5, 14, 10, 57), utc(2024, 5, 14, 11, 4)], ("wrap", "step")),
        ("step larger than the range", cron("0-59/61"), u, [utc(2024, 5, 14, 10, 0)],
         ("step",)),
        ("single-value range", cron("5-5", "*/6"), u, [utc(2024, 5, 14, 6, 5)], ("range",)),
        ("wrapped hour range", cron("0", "22-2"), u, [utc(2024, 5, 14, 2, 0),
                                                      utc(2024, 5, 14, 23, 0)], ("wrap",)),
        ("wrapped hour range with step {23,1}", cron("0", "23-2/2"), u,
         [utc(2024, 5, 14, 23, 0), utc(2024, 5, 15, 1, 0)], ("wrap", "step")),
        ("hour list with stepped range", cron("0", "0,8-17/2"), u, [utc(2024, 5, 14, 16, 0)],
         ("list", "step")),
        ("weekdays by name", cron("0", "9", day_of_week="mon-fri"), u,
         [utc(2024, 5, 17, 9, 0)], ("names",)),
        ("wrapped weekday range by name", cron("30", "8", day_of_week="fri-mon"), u,
         [utc(2024, 5, 13, 8, 30), utc(2024, 5, 10, 8, 30)], ("names", "wrap")),
        ("weekend by name", cron("0", "10", day_of_week="sat-sun"), u, [utc(2024, 5, 12, 10, 0)],
         ("names", "wrap")),
        ("Sunday is 0", cron("0", "0", day_of_week="0"), u, [utc(2024, 5, 11, 23, 59)], ()),
        ("even weekday numbers", cron("0", "12", day_of_week="*/2"), u,
         [utc(2024, 5, 14, 12, 0)], ("step",)),
        ("months by name", cron("0", "0", "1", "jan-mar"), u, [utc(2024, 3, 1, 0, 0)],
         ("names",)),
        ("wrapped month range by name", cron("0", "0", "15", "nov-feb"), u,
         [utc(2024, 2, 15, 0, 0), utc(2024, 12, 15, 0, 0)], ("names", "wrap")),
        ("quarterly", cron("0", "6", "1", "*/3"), u, [utc(2024, 4, 1, 6, 0)], ("step",)),
        ("first Monday (day_of_month 1-7 AND Monday)", cron("0", "9", "1-7", "*", "mon"), u,
         [utc(2024, 7, 1, 9, 0), utc(2024, 7, 2, 0, 0)], ("and-rule",)),
        ("Friday the 13th", cron("0", "0", "13", "*", "fri"), u, [utc(2024, 9, 13, 0, 0)],
         ("and-rule",)),
        ("the 31st that is a Sunday", cron("0", "12", "31", "*", "sun"), u,
         [utc(2024, 3, 31, 12, 0)], ("and-rule", "month-end")),
        ("the 31st skips 30-day months", cron("0", "0", "31"), u, [utc(2024, 3, 31, 0, 0)],
         ("month-end",)),
        ("the 30th skips February", cron("30", "23", "30"), u, [utc(2024, 1, 30, 23, 30)],
         ("month-end",)),
        ("days 28-31", cron("0", "0", "28-31"), u, [utc(2024, 2, 29, 0, 0), utc(2023, 2, 28, 0)],
         ("month-end", "leap-day")),
        ("Feb 29 (leap years only)", cron("0", "0", "29", "2"), u,
         [utc(2024, 1, 10), utc(2024, 3, 1), utc(2097, 3, 1)], ("leap-day",)),
        ("Feb 29 that is a Thursday", cron("0", "0", "29", "2", "thu"), u,
         [utc(2024, 3, 1)], ("leap-day", "and-rule")),
        ("stepped day_of_month", cron("0", "0", "*/3"), u, [utc(2024, 1, 31, 0, 0)], ("step",)),
        ("even days 2-30", cron("0", "0", "2-30/2"), u, [utc(2024, 2, 28, 0, 0)], ("step",)),
        ("wrapped day_of_month range", cron("0", "0", "31-2"), u, [utc(2024, 4, 2, 0, 0)],
         ("wrap",)),
        ("daily at 09:30 in Asia/Kolkata", cron("30", "9"), "Asia/Kolkata",
         [wall("Asia/Kolkata", 2024, 5, 14, 9, 30), utc(2024, 5, 14, 5, 0)],
         ("half-hour-offset",)),
        ("daily at 04:00 in Europe/Berlin (summer)", cron("0", "4"), "Europe/Berlin",
         [wall("Europe/Berlin", 2024, 7, 1, 4, 0), utc(2024, 7, 1, 1, 59)], ()),
        ("weekly in America/New_York, last run in UTC", cron("0", "20", day_of_week="sun"),
         "America/New_York", [utc(2024, 6, 2, 23, 59), utc(2024, 6, 3, 0, 0)], ()),
        ("daily in Pacific/Chatham (+12:45)", cron("15", "0"), "Pacific/Chatham",
         [wall("Pacific/Chatham", 2024, 7, 1, 0, 15)], ("45min",)),
        ("integer and array fields (non-canonical)", cron(0, [9, 17], "*", "*", [1, 3, 5]), u,
         [utc(2024, 5, 13, 9, 0)], ("non-canonical",)),
        ("last run with seconds on a matching minute", cron("*/5"), u,
         [utc(2024, 5, 14, 10, 5, 59, 999999)], ()),
    ]
    for label, schedule, zone, lasts, tags in groups:
        yield from cron_triples(f, label, schedule, zone, lasts, tags)
    # A seeded random sample over the grammar, in non-DST dates of several zones.
    rng = random.Random(SEED)
    minutes = ["*", "*/5", "0", "15,45", "10-20", "50-10/5", "*/13", "7"]
    hours = ["*", "*/3", "9-17", "22-3", "0,12", "5"]
    doms = ["*", "*", "1-15", "*/2", "10,20,30", "28-31"]
    months = ["*", "*", "*", "feb-apr", "*/4", "6-8"]
    dows = ["*", "*", "mon-fri", "sat,sun", "tue", "thu-mon"]
    zones = ["UTC", "Asia/Kolkata", "Europe/Berlin", "America/New_York", "Australia/Sydney"]
    seen: set[str] = set()
    while len(seen) < 24:
        schedule = cron(rng.choice(minutes), rng.choice(hours), rng.choice(doms),
                        rng.choice(months), rng.choice(dows))
        zone = rng.choice(zones)
        last = utc(2024, rng.choice([1, 5, 7, 12]), rng.randint(5, 20), rng.randint(0, 23),
                   rng.randint(0, 59), rng.choice([0, 0, 17]))
        key = f"{cron_text(schedule)} {zone}"
        if key in seen:
            continue
        seen.add(key)
        c = cron_fields(schedule, zone)
        upcoming = brute_next(c, last, ZoneInfo(zone))
        assert upcoming is not None
        now = upcoming + timedelta(seconds=rng.choice([0, 1, 3600]))
        yield Spec(f, f"sample {len(seen):02d} {cron_text(schedule)} in {zone}", schedule, zone,
                   last, now, ("sample",))
    # RedBeat's early score (D2).
    yield Spec(f, f"hourly {cron_text(cron('0'))}, RedBeat scores early", cron("0"), u,
               utc(2024, 5, 14, 10, 0), utc(2024, 5, 14, 10, 40), (), redbeat=True)
    yield Spec(f, f"daily {cron_text(cron('0', '4'))}, RedBeat scores early", cron("0", "4"),
               "Europe/Berlin", wall("Europe/Berlin", 2024, 5, 14, 4, 0), utc(2024, 5, 14, 14),
               (), redbeat=True)


# --------------------------------------------------------------------------- crontab-dst


@dataclass(frozen=True)
class Transition:
    zone: str
    day: tuple[int, int, int]
    start: tuple[int, int]  # wall time where the gap or the repeated period starts
    minutes: int  # its length
    tags: tuple[str, ...] = ()

    def at(self, offset_minutes: int, fold: int = 0, second: int = 0) -> datetime:
        base = datetime(*self.day, *self.start) + timedelta(minutes=offset_minutes)
        return wall(self.zone, base.year, base.month, base.day, base.hour, base.minute, second,
                    fold=fold)

    def inside(self, offset_minutes: int) -> tuple[int, int]:
        t = datetime(*self.day, *self.start) + timedelta(minutes=offset_minutes)
        return t.hour, t.minute


FALLS = [
    Transition("Europe/Berlin", (2024, 10, 27), (2, 0), 60),
    Transition("America/New_York", (2024, 11, 3), (1, 0), 60),
    Transition("Australia/Sydney", (2024, 4, 7), (2, 0), 60, ("southern",)),
    Transition("Australia/Lord_Howe", (2024, 4, 7), (1, 30), 30, ("southern", "half-hour-dst")),
    Transition("Pacific/Chatham", (2024, 4, 7), (2, 45), 60, ("southern", "45min")),
]
SPRINGS = [
    Transition("Europe/Berlin", (2024, 3, 31), (2, 0), 60),
    Transition("America/New_York", (2024, 3, 10), (2, 0), 60),
    Transition("Australia/Sydney", (2024, 10, 6), (2, 0), 60, ("southern",)),
    Transition("Australia/Lord_Howe", (2024, 10, 6), (2, 0), 30, ("southern", "half-hour-dst")),
    Transition("Pacific/Chatham", (2024, 9, 29), (2, 45), 60, ("southern", "45min")),
]


def crontab_dst_cases() -> Iterator[Spec]:
    f = "crontab-dst.json"
    for t in FALLS:
        tags = ("dst-fold", *t.tags)
        n = t.minutes
        mid_h, mid_m = t.inside(n // 2)
        start_h, start_m = t.start
        specs = [
            ("hourly wildcard", cron("0,30") if n == 60 else cron("0,15,30,45")),
            ("every 15 minutes", cron("*/15")),
            ("fixed time inside the fold", cron(str(mid_m), str(mid_h))),
            ("fixed time at the fold start", cron(str(start_m), str(start_h))),
        ]
        lasts = [
            ("before", t.at(-10)),
            ("first pass", t.at(n // 3, fold=0)),
            ("second pass", t.at(5, fold=1, second=17)),
            ("second pass", t.at(n - 1, fold=1)),
            ("after", t.at(n + 10)),
        ]
        mid_second = t.at(n // 2 + 2, fold=1).astimezone(UTC)
        for spec_label, schedule in specs:
            label = f"{t.zone} fold {t.day[0]}-{t.day[1]:02d}-{t.day[2]:02d} {spec_label}"
            c = cron_fields(schedule, t.zone)
            for where, last in lasts:
                upcoming = brute_next(c, last, ZoneInfo(t.zone))
                assert upcoming is not None
                nows = [last.astimezone(UTC) + timedelta(seconds=30), upcoming]
                if where in ("before", "first pass"):
                    nows.append(mid_second)  # due, now in the second pass
                for now in dict.fromkeys(nows):
                    yield Spec(f, f"{label} {cron_text(schedule)}", schedule, t.zone, last, now,
                               tags)
    for t in SPRINGS:
        tags = ("dst-gap", *t.tags)
        n = t.minutes
        mid_h, mid_m = t.inside(n // 2)
        start_h, start_m = t.start
        specs = [
            ("hourly wildcard", cron("0,30") if n == 60 else cron("0,15,30,45")),
            ("fixed time inside the gap", cron(str(mid_m), str(mid_h))),
            ("fixed time at the gap start", cron(str(start_m), str(start_h))),
        ]
        lasts = [t.at(-10), t.at(-1, second=30), t.at(n)]
        for spec_label, schedule in specs:
            label = f"{t.zone} gap {t.day[0]}-{t.day[1]:02d}-{t.day[2]:02d} {spec_label}"
            c = cron_fields(schedule, t.zone)
            for last in lasts:
                upcoming = brute_next(c, last, ZoneInfo(t.zone))
                assert upcoming is not None
                for now in dict.fromkeys([last.astimezone(UTC) + timedelta(seconds=30), upcoming]):
                    yield Spec(f, f"{label} {cron_text(schedule)}", schedule, t.zone, last, now,
                               tags)
    # The celery-semantics example: a wide hour range collapses the gap into one run.
    schedule = cron("*/10", "22-2", "*", "3,10", "sat,sun")
    last = wall("Europe/Berlin", 2024, 3, 31, 3, 5, 30)
    for now in (utc(2024, 3, 31, 1, 6), utc(2024, 3, 31, 20, 0)):
        yield Spec(f, f"Berlin gap, wide hour range {cron_text(schedule)}", schedule,
                   "Europe/Berlin", last, now, ("dst-gap", "wrap"))
    # The example of conformance/README.md: */15, last run at the second 02:30 (CET).
    schedule = cron("*/15")
    last = wall("Europe/Berlin", 2024, 10, 27, 2, 30, fold=1)
    for now in (utc(2024, 10, 27, 1, 31), utc(2024, 10, 27, 2, 0)):
        yield Spec(f, f"Berlin fold, last run at the second 02:30 {cron_text(schedule)}",
                   schedule, "Europe/Berlin", last, now, ("dst-fold",))
    # Every minute through the Berlin repeated hour, last run in the second pass.
    schedule = cron()
    for minute in (0, 30, 59):
        last = wall("Europe/Berlin", 2024, 10, 27, 2, minute, fold=1)
        yield Spec(f, f"Berlin fold, every minute {cron_text(schedule)}", schedule,
                   "Europe/Berlin", last, last.astimezone(UTC) + timedelta(seconds=45),
                   ("dst-fold",))
    # Last run stored in UTC (no fold needed) that falls in the second pass.
    schedule = cron("*/15")
    for last in (utc(2024, 10, 27, 1, 10), utc(2024, 11, 3, 6, 20)):
        zone = "Europe/Berlin" if last.month == 10 else "America/New_York"
        yield Spec(f, f"{zone} fold, last run in UTC in the second pass {cron_text(schedule)}",
                   schedule, zone, last, last + timedelta(minutes=3), ("dst-fold", "utc-last-run"))


# --------------------------------------------------------------------------- crontab-downtime


def crontab_downtime_cases() -> Iterator[Spec]:
    f = "crontab-downtime.json"
    dt = ("downtime",)
    items: list[tuple[str, dict[str, Any], str, datetime, list[datetime], tuple[str, ...]]] = [
        ("hourly, six years down", cron("0"), "UTC", utc(2019, 6, 1, 10),
         [utc(2025, 6, 1, 10, 30), utc(2025, 6, 1, 11, 0)], ()),
        ("every 5 minutes, three years down", cron("*/5"), "America/New_York",
         wall("America/New_York", 2021, 11, 7, 1, 55, fold=0),
         [utc(2024, 11, 3, 6, 3), utc(2024, 11, 3, 5, 58)], ("dst-fold",)),
        ("daily 04:00 in Berlin, years down", cron("0", "4"), "Europe/Berlin",
         wall("Europe/Berlin", 2020, 1, 1, 4), [utc(2026, 7, 1, 1, 0), utc(2026, 7, 1, 2, 0),
                                                utc(2026, 7, 1, 3, 0)], ()),
        ("weekly Monday 09:00, two years down", cron("0", "9", day_of_week="mon"), "UTC",
         utc(2022, 5, 2, 9), [utc(2024, 5, 12, 9), utc(2024, 5, 13, 9)], ()),
        ("Feb 29, years later", cron("0", "0", "29", "2"), "UTC", utc(2024, 2, 29),
         [utc(2027, 1, 1), utc(2030, 1, 1), utc(2028, 2, 29)], ("leap-day",)),
        ("Friday the 13th, a decade down", cron("0", "12", "13", "*", "fri"), "UTC",
         utc(2015, 2, 13, 12), [utc(2025, 6, 13, 12, 5)], ("and-rule",)),
        ("yearly Jan 1, from 2000", cron("0", "0", "1", "1"), "UTC", utc(2000, 1, 1),
         [utc(2024, 12, 31, 23, 59, 59)], ()),
        ("every minute, from the epoch", cron(), "UTC", utc(1970, 1, 1),
         [utc(2025, 3, 3, 3, 3, 3)], ()),
        ("Feb 29 that is a Monday", cron("0", "0", "29", "2", "mon"), "UTC", utc(2024, 3, 1),
         [utc(2030, 1, 1), utc(2044, 2, 29, 0, 0, 1)], ("leap-day", "and-rule")),
        ("month end in Sydney, a year down", cron("0", "23", "31"), "Australia/Sydney",
         wall("Australia/Sydney", 2023, 5, 31, 23), [utc(2024, 5, 31, 12, 59),
                                                     utc(2024, 5, 31, 13, 0)],
         ("month-end", "southern")),
        ("last run in the future (clock skew)", cron("*/15"), "UTC", utc(2024, 5, 14, 12),
         [utc(2024, 5, 14, 11)], ("clock-skew",)),
        ("half-hourly in Lord Howe, months down", cron("0,30"), "Australia/Lord_Howe",
         wall("Australia/Lord_Howe", 2024, 1, 10, 9), [utc(2024, 4, 6, 15, 10)],
         ("half-hour-dst", "southern", "dst-fold")),
        ("quarter past in Chatham, months down", cron("15"), "Pacific/Chatham",
         wall("Pacific/Chatham", 2024, 6, 1, 9, 15), [utc(2024, 9, 28, 14, 10)],
         ("45min", "southern", "dst-gap")),
    ]
    for label, schedule, zone, last, nows, tags in items:
        for now in nows:
            yield Spec(f, f"{label} {cron_text(schedule)}", schedule, zone, last, now, dt + tags)
    # RedBeat's score right after a late catch-up (D2).
    yield Spec(f, f"daily 04:00, RedBeat scores early {cron_text(cron('0', '4'))}",
               cron("0", "4"), "UTC", utc(2024, 5, 14, 10, 30), utc(2024, 5, 14, 18), dt,
               redbeat=True)


# --------------------------------------------------------------------------- rrule.json


def rrule(freq: int | str, dtstart: datetime, **members: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"__type__": "rrule", "freq": freq}
    out["dtstart"] = epoch(dtstart)
    offset = dtstart.utcoffset()
    out["dtstart_tz"] = 0 if not offset else offset.total_seconds() / 60
    until = members.pop("until", None)
    if until is not None:
        out["until"] = epoch(until)
        uoff = until.utcoffset()
        out["until_tz"] = 0 if not uoff else uoff.total_seconds() / 60
    out.update(members)
    return out


def fixed(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


def weekday(wkday: int, n: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"__type__": "weekday", "wkday": wkday}
    if n is not None:
        out["n"] = n
    return out


def rrule_cases() -> Iterator[Spec]:
    f = "rrule.json"
    d0 = utc(2024, 1, 1, 9)
    full = {"interval": 1, "wkst": None, "count": None, "bysetpos": None, "bymonth": None,
            "bymonthday": None, "byyearday": None, "byeaster": None, "byweekno": None,
            "byweekday": None, "byhour": None, "byminute": None, "bysecond": None}
    groups: list[tuple[str, dict[str, Any], str, list[tuple[datetime, list[datetime]]],
                       tuple[str, ...]]] = [
        ("DAILY with dtstart only", rrule(3, d0), "UTC",
         [(utc(2024, 5, 14, 9), [utc(2024, 5, 14, 12), utc(2024, 5, 15, 9),
                                 utc(2024, 5, 16, 10)])], ()),
        ("DAILY in RedBeat's full form", {**rrule(3, d0), **full}, "UTC",
         [(utc(2024, 5, 14, 9, 0, 1), [utc(2024, 5, 15, 8, 59, 59)])], ("redbeat-form",)),
        ("HOURLY interval 2", rrule(4, d0, interval=2), "UTC",
         [(utc(2024, 5, 14, 10, 0), [utc(2024, 5, 14, 10, 30), utc(2024, 5, 14, 11, 0)])], ()),
        ("MINUTELY every 15 within 09-17", rrule(5, d0, interval=15, byhour=list(range(9, 18))),
         "Europe/Berlin", [(utc(2024, 5, 14, 17, 45), [utc(2024, 5, 15, 9, 0),
                                                       utc(2024, 5, 14, 17, 50)])], ()),
        ("SECONDLY every 30", rrule(6, utc(2024, 5, 14, 10), interval=30), "UTC",
         [(utc(2024, 5, 14, 10, 5, 10), [utc(2024, 5, 14, 10, 5, 30)])], ()),
        ("WEEKLY on Monday and Wednesday, wkst Sunday",
         rrule(2, d0, byweekday=[0, 2], wkst=weekday(6)), "UTC",
         [(utc(2024, 5, 13, 9), [utc(2024, 5, 14), utc(2024, 5, 15, 9)])], ("weekday",)),
        ("WEEKLY on weekday objects", rrule(2, d0, byweekday=[weekday(1), weekday(3)]), "UTC",
         [(utc(2024, 5, 14, 9), [utc(2024, 5, 16, 9)])], ("weekday",)),
        ("MONTHLY first Monday (MO(+1))", rrule(1, d0, byweekday=weekday(0, 1)), "UTC",
         [(utc(2024, 5, 6, 9), [utc(2024, 5, 20), utc(2024, 6, 3, 9)])], ("weekday",)),
        ("MONTHLY last Friday (FR(-1))", rrule(1, d0, byweekday=[weekday(4, -1)]), "UTC",
         [(utc(2024, 5, 1), [utc(2024, 5, 31, 9)])], ("weekday",)),
        ("MONTHLY last weekday via bysetpos -1",
         rrule(1, d0, byweekday=[0, 1, 2, 3, 4], bysetpos=-1), "UTC",
         [(utc(2024, 6, 1), [utc(2024, 6, 28, 9)])], ("weekday",)),
        ("MONTHLY on the last day (bymonthday -1)", rrule(1, d0, bymonthday=-1), "UTC",
         [(utc(2024, 2, 1), [utc(2024, 2, 29, 9)]), (utc(2025, 2, 1), [utc(2025, 2, 28, 9)])],
         ("month-end", "leap-day")),
        ("YEARLY on Feb 29", rrule(0, utc(2024, 2, 29, 12), bymonth=2, bymonthday=29), "UTC",
         [(utc(2024, 2, 29, 12), [utc(2025, 3, 1)])], ("leap-day",)),
        ("YEARLY on Easter Sunday (byeaster 0)", rrule(0, d0, byeaster=0), "UTC",
         [(utc(2024, 3, 31, 9), [utc(2025, 4, 20, 9)])], ()),
        ("YEARLY on day 100 (byyearday)", rrule(0, d0, byyearday=100), "UTC",
         [(utc(2024, 4, 9, 9), [utc(2025, 1, 1)])], ()),
        ("YEARLY in ISO week 1 on Monday (byweekno)", rrule(0, d0, byweekno=1, byweekday=0),
         "UTC", [(utc(2024, 1, 1, 9), [utc(2024, 12, 30, 9)])], ("weekday",)),
        ("DAILY at 08:15:30 (byhour, byminute, bysecond)",
         rrule(3, d0, byhour=8, byminute=15, bysecond=30), "UTC",
         [(utc(2024, 5, 14, 8, 15, 30), [utc(2024, 5, 15, 8, 15, 30)])], ()),
        ("DAILY with dtstart_tz +60", rrule(3, datetime(2024, 1, 1, 9, tzinfo=fixed(60))),
         "Europe/Berlin", [(wall("Europe/Berlin", 2024, 7, 1, 10), [utc(2024, 7, 2, 8)])],
         ("dtstart-tz",)),
        ("DAILY with dtstart_tz +330", rrule(3, datetime(2024, 1, 1, 9, tzinfo=fixed(330))),
         "Asia/Kolkata", [(wall("Asia/Kolkata", 2024, 7, 1, 9), [utc(2024, 7, 2, 3, 30)])],
         ("dtstart-tz", "half-hour-offset")),
        ("DAILY with dtstart_tz -300 across a DST change",
         rrule(3, datetime(2024, 3, 1, 9, tzinfo=fixed(-300))), "America/New_York",
         [(wall("America/New_York", 2024, 3, 9, 9), [utc(2024, 3, 10, 14, 0)])],
         ("dtstart-tz", "dst-gap")),
        ("HOURLY with dtstart_tz +765", rrule(4, datetime(2024, 7, 1, 0, 45, tzinfo=fixed(765))),
         "Pacific/Chatham", [(wall("Pacific/Chatham", 2024, 7, 1, 3, 45),
                              [utc(2024, 6, 30, 16, 0)])], ("dtstart-tz", "45min")),
        ("freq as a name (daily)", rrule("daily", d0), "UTC",
         [(utc(2024, 5, 14, 9), [utc(2024, 5, 15, 9)])], ("freq-name",)),
        ("freq as a name (WEEKLY)", rrule("WEEKLY", d0), "UTC",
         [(utc(2024, 5, 13, 9), [utc(2024, 5, 14, 9)])], ("freq-name",)),
        ("freq as a name (Monthly) with bymonthday 31", rrule("Monthly", d0, bymonthday=31),
         "UTC", [(utc(2024, 4, 1), [utc(2024, 5, 31, 9)])], ("freq-name", "month-end")),
        ("until in the past", rrule(3, d0, until=utc(2024, 1, 10, 9)), "UTC",
         [(utc(2024, 1, 10, 9), [utc(2024, 5, 14)])], ()),
        ("until in the past with until_tz +180",
         rrule(4, d0, until=datetime(2024, 1, 1, 14, tzinfo=fixed(180))), "Europe/Berlin",
         [(utc(2024, 1, 1, 11), [utc(2024, 1, 1, 11, 30), utc(2024, 3, 1)])], ()),
        ("MINUTELY count 5, last run at the last occurrence", rrule(5, d0, count=5), "UTC",
         [(utc(2024, 1, 1, 9, 4), [utc(2024, 1, 1, 9, 5), utc(2024, 1, 1, 9, 4)])], ("count",)),
        ("WEEKLY count 2, last run years later", rrule(2, d0, count=2), "America/New_York",
         [(wall("America/New_York", 2026, 3, 8, 3, 0), [utc(2026, 3, 8, 8)])], ("count",)),
        ("until before dtstart (no occurrence at all)",
         rrule(0, utc(2024, 6, 1), until=utc(2024, 5, 1)), "UTC",
         [(utc(2024, 5, 14), [utc(2024, 6, 2)])], ()),
        ("until with until_tz, last occurrence still ahead",
         rrule(3, d0, until=datetime(2024, 1, 10, 12, tzinfo=fixed(180))), "UTC",
         [(utc(2024, 1, 9, 9), [utc(2024, 1, 9, 12), utc(2024, 1, 10, 9, 30)])], ()),
        ("count 3 with dtstart long ago", rrule(3, utc(2020, 1, 1, 9), count=3), "UTC",
         [(utc(2024, 5, 14), [utc(2024, 5, 14, 1)])], ("count",)),
        ("count 3, the last occurrence due", rrule(3, d0, count=3), "UTC",
         [(utc(2024, 1, 2, 9), [utc(2024, 1, 3, 9), utc(2024, 1, 2, 12)])], ("count",)),
        ("count 10 HOURLY", rrule(4, d0, count=10), "Europe/Berlin",
         [(utc(2024, 1, 1, 12, 30), [utc(2024, 1, 1, 13, 0)])], ("count",)),
        ("last run before dtstart", rrule(3, utc(2025, 1, 1, 9)), "UTC",
         [(utc(2024, 5, 14, 9), [utc(2024, 12, 31), utc(2025, 1, 1, 9)])], ()),
        ("last run in a DST fold, DAILY UTC", rrule(3, d0), "Europe/Berlin",
         [(wall("Europe/Berlin", 2024, 10, 27, 2, 30, fold=1), [utc(2024, 10, 27, 9)])],
         ("dst-fold",)),
    ]
    for label, schedule, zone, pairs, tags in groups:
        for last, nows in pairs:
            for now in nows:
                yield Spec(f, f"rrule {label}", schedule, zone, last, now, tags)
    yield Spec(f, "rrule DAILY, RedBeat scores early", rrule(3, d0), "UTC",
               utc(2024, 5, 14, 9), utc(2024, 5, 14, 21), (), redbeat=True)


# --------------------------------------------------------------------------- never-run.json


def never_run_cases() -> Iterator[Spec]:
    f = "never-run.json"
    now = utc(2025, 2, 10, 13, 37, 21, 500000)
    zones = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney",
             "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kolkata"]
    for zone in zones:
        yield Spec(f, f"crontab {cron_text(cron('*/15'))} in {zone}", cron("*/15"), zone, None,
                   now, ())
    yield Spec(f, f"crontab {cron_text(cron('0', '4'))} in Europe/Berlin", cron("0", "4"),
               "Europe/Berlin", None, now, ())
    yield Spec(f, f"crontab {cron_text(cron('0', '0', '29', '2'))} (first Feb 29: year 4)",
               cron("0", "0", "29", "2"), "UTC", None, now, ("leap-day",))
    yield Spec(f, f"crontab {cron_text(cron('0', '9', '1-7', '*', 'mon'))}",
               cron("0", "9", "1-7", "*", "mon"), "America/New_York", None, now, ("and-rule",))
    for every, relative, zone in ((60.0, False, "UTC"), (3600.0, False, "Europe/Berlin"),
                                  (0.5, False, "UTC"), (900.0, True, "America/New_York"),
                                  (3600.0, True, "Pacific/Chatham"),
                                  (86400.0, True, "Europe/Berlin"),
                                  (86400.0, True, "Australia/Lord_Howe"),
                                  (30.0, True, "Asia/Kolkata")):
        kind = "relative interval" if relative else "interval"
        yield Spec(f, f"{kind} every {every} in {zone}", interval(every, relative), zone, None,
                   now, ("relative",) if relative else ())
    d0 = utc(2024, 1, 1, 9)
    yield Spec(f, "rrule DAILY, dtstart passed", rrule(3, d0), "UTC", None, now, ())
    yield Spec(f, "rrule DAILY, dtstart ahead", rrule(3, utc(2025, 3, 1, 9)), "Europe/Berlin",
               None, now, ())
    yield Spec(f, "rrule DAILY with dtstart_tz +330, dtstart ahead",
               rrule(3, datetime(2025, 2, 11, 9, tzinfo=fixed(330))), "Asia/Kolkata", None, now,
               ("dtstart-tz",))
    yield Spec(f, "rrule with until in the past", rrule(3, d0, until=utc(2024, 1, 5, 9)), "UTC",
               None, now, ())
    yield Spec(f, "rrule with until before dtstart (never any occurrence)",
               rrule(3, d0, until=utc(2023, 12, 1)), "Europe/Berlin", None, now, ())
    yield Spec(f, "rrule count 3, long ago (the first occurrence is still due)",
               rrule(3, utc(2020, 1, 1, 9), count=3), "UTC", None, now, ("count",))
    for zone in ("UTC", "Europe/Berlin", "Asia/Kolkata"):
        yield Spec(f, f"solar sunrise at London, app in {zone}", solar_json("sunrise", 51.5074,
                                                                            -0.1278), zone, None,
                   now, ())


# --------------------------------------------------------------------------- solar.json


def solar_cases() -> Iterator[Spec]:
    f = "solar.json"
    places: list[tuple[str, float, float, tuple[str, ...]]] = [
        ("London", 51.5074, -0.1278, ()),
        ("Melbourne", -37.81753, 144.96715, ("southern",)),
        ("Quito", -0.1807, -78.4678, ("equator",)),
        ("Tromso", 69.6492, 18.9553, ("polar",)),
        ("Longyearbyen", 78.2232, 15.6267, ("polar",)),
    ]
    events = ["sunrise", "sunset", "solar_noon", "dawn_civil", "dusk_nautical",
              "dawn_astronomical", "dusk_astronomical"]
    rng = random.Random(SEED + 3)
    for name, lat, lon, tags in places:
        for event in events:
            if name not in ("London", "Tromso") and event in ("dusk_nautical", "dawn_civil"):
                continue
            last = utc(2024, rng.choice([3, 6, 12]), rng.randint(1, 28), rng.randint(0, 23),
                       rng.randint(0, 59))
            schedule = solar_json(event, lat, lon)
            first = celery_eval(schedule, "UTC", last, last).next_run
            assert first is not None
            for now in (first - timedelta(minutes=5), first + timedelta(seconds=10)):
                yield Spec(f, f"solar {event} at {name}", schedule, "UTC", last, now, tags)
    # Polar night and midnight sun: the search skips days without the event.
    for event, last in (("sunrise", utc(2024, 12, 1, 12)), ("sunset", utc(2024, 6, 1, 12)),
                        ("dawn_astronomical", utc(2024, 6, 1, 12))):
        schedule = solar_json(event, 78.2232, 15.6267)
        for now in (utc(2024, 12, 20) if event == "sunrise" else utc(2024, 6, 20),):
            yield Spec(f, f"solar {event} at Longyearbyen, none for weeks", schedule, "UTC",
                       last, now, ("polar",))
    # D3: a last run in another zone; Celery reads its wall clock as UTC.
    for zone, last, schedule in (
        ("Europe/Berlin", wall("Europe/Berlin", 2024, 6, 20, 5, 30),
         solar_json("sunrise", 52.52, 13.405)),
        ("Europe/Berlin", wall("Europe/Berlin", 2024, 6, 20, 21, 0),
         solar_json("sunset", 52.52, 13.405)),
        ("America/New_York", wall("America/New_York", 2024, 6, 20, 20, 0),
         solar_json("sunset", 40.7128, -74.006)),
        ("Asia/Kolkata", wall("Asia/Kolkata", 2024, 6, 20, 12, 0),
         solar_json("solar_noon", 28.6139, 77.209)),
        ("Pacific/Chatham", wall("Pacific/Chatham", 2024, 6, 20, 8, 0),
         solar_json("sunrise", -43.95, -176.55)),
        ("UTC", wall("Australia/Sydney", 2024, 6, 20, 7, 30),
         solar_json("sunrise", -33.8688, 151.2093)),
    ):
        fixed_next = celery_eval(schedule, "UTC", last.astimezone(UTC_ZONE), last).next_run
        assert fixed_next is not None
        for now in (last.astimezone(UTC) + timedelta(minutes=10), fixed_next,
                    fixed_next + timedelta(hours=2)):
            yield Spec(f, f"solar {schedule['event']}, last run in {last.tzinfo}, app {zone}",
                       schedule, zone, last, now, ("non-utc-last-run",))


# --------------------------------------------------------------------------- output


GENERATORS: dict[str, Callable[[], Iterator[Spec]]] = {
    "interval.json": interval_cases,
    "interval-relative.json": relative_cases,
    "crontab-basics.json": crontab_basic_cases,
    "crontab-dst.json": crontab_dst_cases,
    "crontab-downtime.json": crontab_downtime_cases,
    "rrule.json": rrule_cases,
    "never-run.json": never_run_cases,
    "solar.json": solar_cases,
}


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))


def render(description: str, cases: list[dict[str, Any]]) -> str:
    """One member per line inside each case, values on one line: readable, stable diffs."""
    lines = ["{", f'  "description": {dumps(description)},', '  "cases": [']
    for i, case in enumerate(cases):
        lines.append("    {")
        items = list(case.items())
        for j, (key, value) in enumerate(items):
            comma = "," if j < len(items) - 1 else ""
            lines.append(f"      {dumps(key)}: {dumps(value)}{comma}")
        lines.append("    }" + ("," if i < len(cases) - 1 else ""))
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


@dataclass
class Generated:
    files: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def generate() -> Generated:
    out = Generated()
    seen: dict[str, str] = {}
    for name, make in GENERATORS.items():
        cases = [evaluate(spec) for spec in make()]
        for case in cases:
            text = case["description"]
            if len(text) > 150:
                raise AssertionError(f"description too long ({len(text)}): {text}")
            if "should" in text.lower():
                raise AssertionError(f"description says 'should': {text}")
            if text in seen:
                raise AssertionError(f"duplicate description in {name} and {seen[text]}: {text}")
            seen[text] = name
        cases.sort(key=lambda c: c["description"])
        out.files[name] = render(FILES[name], cases)
        out.counts[name] = len(cases)
    return out


def check_versions() -> None:
    for dist, version in REQUIRED.items():
        got = importlib.metadata.version(dist)
        if got != version:
            raise SystemExit(f"{dist} {version} is required, found {got}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate in memory and fail if the committed files differ")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory")
    args = parser.parse_args(argv)
    check_versions()
    started = time.perf_counter()
    generated = generate()
    elapsed = time.perf_counter() - started
    out_dir: Path = args.out
    total = sum(generated.counts.values())
    if args.check:
        problems: list[str] = []
        present = {p.name for p in out_dir.glob("*.json")} if out_dir.is_dir() else set()
        for extra in sorted(present - generated.files.keys()):
            problems.append(f"{extra}: not produced by the generator")
        for name, text in generated.files.items():
            path = out_dir / name
            if not path.is_file():
                problems.append(f"{name}: missing")
                continue
            current = path.read_text(encoding="utf-8")
            if current != text:
                diff = list(difflib.unified_diff(
                    current.splitlines(), text.splitlines(), f"committed/{name}",
                    f"generated/{name}", n=0, lineterm=""))
                problems.append(f"{name}: differs ({len(diff)} diff lines)\n"
                                + "\n".join(diff[:40]))
        if problems:
            print("schedule vectors are out of date:", file=sys.stderr)
            for problem in problems:
                print(problem, file=sys.stderr)
            return 1
        print(f"schedule vectors up to date: {total} cases in {len(generated.files)} files "
              f"({elapsed:.1f} s)")
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in generated.files.items():
        (out_dir / name).write_text(text, encoding="utf-8")
    for name, count in generated.counts.items():
        print(f"{name}: {count}")
    print(f"wrote {total} cases in {len(generated.files)} files ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
