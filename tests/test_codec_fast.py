"""The codec's fast path gives the same values and findings as the full decoder (property test).

The audit decodes through :class:`beatspec.codec._fast.FastEntryDecoder`; this is what makes
that allowed (issue C: "a faster path is fine only if a property test shows it gives the same
verdicts").
"""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beatspec.codec import decode_entry
from beatspec.codec._fast import FastEntryDecoder, Lean
from beatspec.codec.types import Interval
from beatspec.findings import Finding

SCHEDULES = [
    {"__type__": "interval", "every": 300.0, "relative": False},
    {"__type__": "crontab", "minute": "*/15", "hour": "*", "day_of_week": "*",
     "day_of_month": "*", "month_of_year": "*"},
    {"__type__": "rrule", "freq": 2, "interval": 1, "wkst": None, "count": None,
     "bysetpos": None, "bymonth": None, "bymonthday": None, "byyearday": None, "byeaster": None,
     "byweekno": None, "byweekday": [0, 2], "byhour": 9, "byminute": 0, "bysecond": None,
     "dtstart": 1704067200, "dtstart_tz": 0},
    {"__type__": "interval", "every": 60},
    {"__type__": "crontab", "minute": "99"},
    30,
]
NAMES = ["report", "entry-1", "r\u00e9sum\u00e9", ":lock", "has space", "", "x" * 300, ":x"]
JUNK = [None, 1, "x", [], {}, {"__type__": "interval"}, {"__type__": "datetime", "year": 2024},
        2**60, 1.5, True]


def _definition(name: str, schedule: object, extra: dict[str, object]) -> dict[str, object]:
    doc: dict[str, object] = {"name": name, "task": "proj.t", "args": [1], "kwargs": {},
                              "options": {}, "schedule": schedule, "enabled": True}
    doc.update(extra)
    return doc


definitions = st.builds(
    _definition,
    st.sampled_from(NAMES),
    st.sampled_from(SCHEDULES),
    st.dictionaries(st.sampled_from(["task", "args", "kwargs", "options", "enabled", "foo",
                                     "relative"]), st.sampled_from(JUNK), max_size=2),
).map(lambda d: json.dumps(d).encode())

raw_definitions = st.sampled_from([
    b'{"name": "a", "name": "b", "task": "t", "schedule": 5}',
    b'{"name": "a", "task": NaN}',
    b'{"name": "a", "task": "t", "args": [' + b"9" * 30 + b"]}",
    b'{"name": "a\\u0041", "task": "t", "schedule": 5}',
    b'{"name": "a", "task": "t", "schedule": {"__type__": "interval", "every": 1e999}}',
    b'{"name": "\xff", "task": "t"}',
    b'{"name": "a"',
    # offsets in JSON-1 findings do not move with the name's length (the template's is "x")
    b'{"name": "report", "task": "t",}',
    b'{"name": "report", "task": "t\xff"}',
    b'{"name": "report", "task": "t", "args": [1] x',
    # the parser's findings come before the unknown members' (DEF-1) and the name's
    b'{"name": "report", "task": "t", "foo": 1, "args": [9007199254740993], "schedule": 5}',
    b'{"name": "a b", "task": "t", "foo": 1, "args": [], "kwargs": {}, "options": {"x": '
    b'9007199254740993}, "schedule": 5, "enabled": true}',
    # escaped names
    b'{"name": "r\\u00e9sum\\u00e9", "task": "t", "args": [1], "kwargs": {}, "options": {}, '
    b'"schedule": 5, "enabled": true}',
    b'{"name": "\\ud800", "task": "t", "args": [1], "kwargs": {}, "options": {}, '
    b'"schedule": 5, "enabled": true}',
    b'{"name": "\\q", "task": "t", "args": [1], "kwargs": {}, "options": {}, "schedule": 5}',
    b'{"name": "", "task": "t", "args": [1], "kwargs": {}, "options": {}, "schedule": 5}',
])

DATETIME = ('{{"__type__": "datetime", "year": {y}, "month": {mo}, "day": {d}, "hour": {h}, '
            '"minute": {mi}, "second": 0, "microsecond": 0, "timezone": "{tz}"}}')
metas = st.one_of(
    st.builds(
        lambda y, mo, d, h, mi, tz, count: (
            '{"last_run_at": ' + DATETIME.format(y=y, mo=mo, d=d, h=h, mi=mi, tz=tz)
            + (f', "total_run_count": {count}' if count is not None else "") + "}"
        ).encode(),
        st.sampled_from([1, 2, 2024, 2023, 9998, 9999, 10000]),
        st.sampled_from([0, 1, 2, 12, 13]),
        st.sampled_from([0, 1, 28, 29, 30, 31, 32]),
        st.sampled_from([0, 23, 24]),
        st.sampled_from([0, 59, 60]),
        st.sampled_from(["UTC", "Europe/Berlin", "Mars/Olympus", "localtime", "+05:00"]),
        st.sampled_from([None, 0, 7, 2**53, 2**60]),
    ),
    st.sampled_from([
        b'{"last_run_at": null}', b'{"last_run_at": null, "total_run_count": 3}', b"{}",
        b'{"last_run_at": null, "total_run_count": 007}', b'{"total_run_count": 3}',
        b'{"last_run_at": 5}', b"", b"nonsense",
    ]),
)


def _key(finding: Finding) -> tuple[object, ...]:
    return (finding.rule, finding.outcome, finding.pointer, finding.field, finding.key,
            finding.found, finding.message, finding.hint)


DECODER = FastEntryDecoder()


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definition=st.one_of(definitions, raw_definitions), meta=metas,
       key_name=st.sampled_from(NAMES[:3]))
def test_fast_path_equals_full_decoder(definition: bytes, meta: bytes, key_name: str) -> None:
    fields = {"definition": definition, "meta": meta}
    key = "redbeat:" + key_name
    full = decode_entry(fields, name=key_name, key=key)
    value, report = DECODER.decode(fields, name=key_name, key=key)
    assert value == full.value
    assert repr(value) == repr(full.value)
    assert list(map(_key, report)) == list(map(_key, full.report))  # in the same order


def test_the_cache_is_used() -> None:
    decoder = FastEntryDecoder()
    meta = b'{"last_run_at": null}'
    for index in range(50):
        text = json.dumps(_definition(f"e{index}", SCHEDULES[1], {})).encode()
        value, report = decoder.decode({"definition": text, "meta": meta}, name=f"e{index}",
                                       key=f"redbeat:e{index}")
        assert value is not None and value.definition.name == f"e{index}"
        assert report.valid(strict=True)
    assert (decoder.misses, decoder.hits) == (1, 49)


LEAN_DECODER = FastEntryDecoder()


def _lean_key(lean: Lean) -> tuple[object, ...]:
    last = lean.last_run_at
    stamp = None if last is None else (last, repr(last), last.tzinfo)
    return (lean.schedule, lean.enabled, stamp, lean.timezone,
            list(map(_key, lean.report)))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(definition=st.one_of(definitions, raw_definitions), meta=metas,
       key_name=st.sampled_from(NAMES[:3]))
def test_lean_path_equals_the_general_path(definition: bytes, meta: bytes, key_name: str) -> None:
    """decode_lean's short way for the usual entry (a definition seen before without findings,
    a canonical meta) gives what the general way gives, which equals the full decoder above."""
    fields = {"definition": definition, "meta": meta}
    key = "redbeat:" + key_name
    general = FastEntryDecoder(size=0).decode_lean(fields, name=key_name, key=key)  # no cache
    LEAN_DECODER.decode_lean(fields, name=key_name, key=key)  # the definition is now cached
    assert _lean_key(LEAN_DECODER.decode_lean(fields, name=key_name, key=key)) == (
        _lean_key(general))


USUAL_META = ('{{"last_run_at": {{"__type__": "datetime", "year": {y}, "month": {mo}, '
              '"day": {d}, "hour": {h}, "minute": {mi}, "second": {s}, "microsecond": {us}, '
              '"timezone": "{tz}"}}{count}}}')

#: One value out of range per field (the year: one the fast path leaves to the full decoder).
OUT_OF_RANGE = {"y": [1, 9000], "mo": [0, 13], "d": [0, 32], "h": [24], "mi": [60], "s": [60],
                "us": [1000000]}


@st.composite
def usual_metas(draw: st.DrawFn) -> bytes:
    values: dict[str, object] = {
        "y": draw(st.sampled_from([2, 1900, 2000, 2023, 2024, 2100, 8999])),
        "mo": draw(st.integers(1, 12)), "d": draw(st.integers(1, 31)),
        "h": draw(st.integers(0, 23)), "mi": draw(st.integers(0, 59)),
        "s": draw(st.integers(0, 59)), "us": draw(st.sampled_from([0, 1, 909667, 999999])),
        "tz": draw(st.sampled_from(["UTC", "UTC", "Europe/Berlin", "Australia/Lord_Howe",
                                    "Mars/Olympus", "localtime"])),
    }
    broken = draw(st.sampled_from([*[None] * len(OUT_OF_RANGE), *OUT_OF_RANGE]))
    if broken is not None:
        values[broken] = draw(st.sampled_from(OUT_OF_RANGE[broken]))
    count = draw(st.sampled_from([None, 0, 7, 10**15 - 1]))
    return USUAL_META.format(**values, count="" if count is None
                             else f', "total_run_count": {count}').encode()


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=st.sampled_from(SCHEDULES[:3] * 3 + SCHEDULES[3:]), meta=usual_metas(),
       key_name=st.sampled_from(["report", "entry-1", "a:b", "r\u00e9sum\u00e9", ":x"]))
def test_lean_path_of_usual_entries_equals_the_full_decoder(
    schedule: object, meta: bytes, key_name: str,
) -> None:
    """The usual entry (its own name, a definition seen before, a canonical meta) through the
    short way: the same schedule, last run (and its zone) and findings as the full decoder."""
    definition = json.dumps(_definition(key_name, schedule, {})).encode()
    fields = {"definition": definition, "meta": meta}
    key = "redbeat:" + key_name
    full = decode_entry(fields, name=key_name, key=key)
    LEAN_DECODER.decode_lean(fields, name=key_name, key=key)  # the definition is now cached
    lean = LEAN_DECODER.decode_lean(fields, name=key_name, key=key)
    assert list(map(_key, lean.report)) == list(map(_key, full.report))
    if full.value is None:
        assert lean.schedule is None
        return
    stored = full.value.meta.last_run_at if full.value.meta is not None else None
    last = None if stored is None else stored.to_datetime()
    assert (lean.schedule, lean.enabled) == (full.value.definition.schedule,
                                             full.value.definition.enabled)
    assert (lean.last_run_at, repr(lean.last_run_at)) == (last, repr(last))


def test_the_lean_path_uses_the_cache() -> None:
    decoder = FastEntryDecoder()
    meta = (b'{"last_run_at": ' + DATETIME.format(y=2026, mo=11, d=22, h=9, mi=5, tz="UTC")
            .encode() + b', "total_run_count": 3}')
    for index in range(20):
        text = json.dumps(_definition(f"e{index}", SCHEDULES[0], {})).encode()
        lean = decoder.decode_lean({"definition": text, "meta": meta}, name=f"e{index}",
                                   key=f"redbeat:e{index}")
        assert lean.schedule == Interval(300.0, False) and lean.enabled
        assert lean.last_run_at == datetime(2026, 11, 22, 9, 5, tzinfo=ZoneInfo("UTC"))
        assert not lean.report.findings
    assert (decoder.misses, decoder.hits) == (1, 19)
