"""The fast path for definitions that differ in args and kwargs gives what the full decoder gives.

``FastEntryDecoder`` takes a definition in RedBeat's member order apart: args and kwargs that are
plain and written as ``json.dumps`` writes them are read on their own, and the rest is decoded
once as a template. These tests generate entries whose args and kwargs lie near every edge the
full decoder has a rule for (tagged values, duplicate members, NaN, integers past 2**53 and
2**63, nesting 64 deep, other spacing and number forms, escapes, lone surrogates, texts near
the 1 MiB limit, reordered, missing and extra members) and check that ``decode`` gives the same
value (down to its repr) and the same findings in the same order as ``decode_entry``, and that
``decode_lean`` agrees with it too: through a fresh decoder (the template is decoded) and through
one shared by all examples (templates of other entries are reused).
"""

from __future__ import annotations

import json
import math
import random
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from beatspec._jsontext import MAX_FIELD_BYTES
from beatspec.codec import decode_entry
from beatspec.codec._fast import _TEMPLATES, FastEntryDecoder, Lean
from beatspec.codec.types import Entry
from beatspec.findings import Report

# --------------------------------------------------------------------------- values

EDGE_INTS = [0, 17, -1, 2**53 - 1, -(2**53 - 1), 2**53, -(2**53), 2**63 - 1, -(2**63), 2**63,
             -(2**63) - 1, 10**19, 10**25]
EDGE_FLOATS = [0.0, -0.0, 1.5, 100.0, 1e16, 1e300, 5e-324, 1e-7, math.nan, math.inf, -math.inf]
EDGE_STRINGS = ["", "x", "\u00e9t\u00e9", "\U0001f600", "\ud800", "a\udfff", "\x00\x1f", '"',
                "\\", "__type__", "[{", "a b", "\u2028"]
TAGGED: list[dict[str, Any]] = [
    {"__type__": "datetime", "year": 2024, "month": 1, "day": 2, "hour": 3, "minute": 4,
     "second": 5, "microsecond": 6, "timezone": "UTC"},
    {"__type__": "datetime", "year": 2024},
    {"__type__": "datetime", "year": 2023, "month": 2, "day": 29, "timezone": "Mars/Olympus"},
    {"__type__": "interval", "every": 5.0, "relative": False},
    {"__type__": "crontab", "minute": "*"},
    {"__type__": "solar", "event": "dawn_astronomical", "lat": 1.0, "lon": 2.0},
    {"__type__": "weekday", "wkday": 1},
    {"__type__": "bytes", "__value__": "eA=="},
    {"__type__": "mystery", "a": 1},
    {"__type__": 5},
]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), st.sampled_from(EDGE_INTS),
    st.floats(), st.sampled_from(EDGE_FLOATS), st.text(max_size=6),
    st.sampled_from(EDGE_STRINGS),
)
#: Values the fast path reads on its own, near its edges.
plain_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1),
    st.sampled_from([0, 2**53 - 1, -(2**53 - 1), 10**15]),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e16, 1e300, 5e-324, 1e-7, 1.7976931348623157e308]),
    st.text(st.characters(codec="utf-8"), max_size=6), st.sampled_from(EDGE_STRINGS[:4]),
)
plain_values = st.recursive(
    plain_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=8,
)
values = st.recursive(
    st.one_of(scalars, st.sampled_from(TAGGED)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=3), st.sampled_from(["__type__", "a"])),
                        inner, max_size=4),
    ),
    max_leaves=10,
)


def _nested(depth: int, leaf: object) -> object:
    """``depth`` arrays (or objects) around ``leaf``."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 3 else {"k": value}
    return value


#: Nesting around the limit: the definition itself is one level, args or kwargs another.
deep = st.builds(_nested, st.integers(58, 66), scalars)

args_values = st.one_of(
    st.lists(plain_values, max_size=4),
    st.lists(plain_values, max_size=4),
    st.lists(plain_values, max_size=4),
    st.lists(values, max_size=4),
    st.builds(lambda v: [v], deep),
    st.lists(st.integers(-(2**53) + 1, 2**53 - 1), min_size=1, max_size=3),
    st.sampled_from([None, [], {}, "x", 5, [0]]),
)
kwargs_values = st.one_of(
    st.dictionaries(st.text(max_size=4), plain_values, max_size=3),
    st.dictionaries(st.text(max_size=4), plain_values, max_size=3),
    st.dictionaries(st.text(max_size=4), plain_values, max_size=3),
    st.dictionaries(st.text(max_size=4), values, max_size=4),
    st.dictionaries(st.sampled_from(["n", "__type__", "x", ""]), values, max_size=3),
    st.builds(lambda v: {"n": v}, deep),
    st.sampled_from([None, {}, [], [1], "x", {"": 0}]),
)

# --------------------------------------------------------------------------- text


class Writer:
    """JSON text as ``json.dumps`` writes it, or (with ``noise``) with other spacing, number
    forms, escapes, raw UTF-8, duplicate members and invalid bytes."""

    def __init__(self, rnd: random.Random, noise: float) -> None:
        self.rnd, self.noise = rnd, noise

    def odd(self) -> bool:
        return self.noise > 0 and self.rnd.random() < self.noise

    def write(self, value: object) -> bytes:
        rnd = self.rnd
        if isinstance(value, dict):
            items = [(k, self.write(v)) for k, v in value.items()]
            if items and self.odd():  # a duplicate member
                name, text = rnd.choice(items)
                items.insert(rnd.randrange(len(items) + 1),
                             (name, text if rnd.random() < 0.5 else b"1"))
            sep, colon = (b", ", b": ") if not self.odd() else rnd.choice(
                [(b",", b":"), (b" ,  ", b" : "), (b",\n", b":\t")])
            return b"{" + sep.join(self.string(k) + colon + v for k, v in items) + b"}"
        if isinstance(value, list):
            sep = b", " if not self.odd() else rnd.choice([b",", b" , ", b",\r\n"])
            inner = sep.join(self.write(v) for v in value)
            return b"[ " + inner + b" ]" if value and self.odd() else b"[" + inner + b"]"
        if isinstance(value, str):
            return self.string(value)
        if isinstance(value, bool) or value is None:
            return json.dumps(value).encode()
        if isinstance(value, int):
            if value == 0 and self.odd():
                return b"-0"
            if self.odd():
                return rnd.choice([f"{value}.0", f"{value}e0", f"{value}E+00"]).encode()
            return str(value).encode()
        if isinstance(value, float):
            if math.isfinite(value) and self.odd():
                return rnd.choice([f"{value:.17g}", f"{value:e}", f"{value!r}".upper()]).encode()
            return json.dumps(value).encode()  # NaN, Infinity, -Infinity as Python writes them
        raise TypeError(value)

    def string(self, text: str) -> bytes:
        if not self.odd():
            return json.dumps(text).encode()
        choice = self.rnd.randrange(4)
        if choice == 0:  # raw UTF-8 (a lone surrogate becomes bytes that are not UTF-8)
            return json.dumps(text, ensure_ascii=False).encode("utf-8", "surrogatepass")
        if choice == 1:  # every character escaped
            return ('"' + "".join(f"\\u{ord(c):04x}" if ord(c) < 0x10000 else c for c in text)
                    + '"').encode("utf-8", "surrogatepass")
        if choice == 2:  # "/" escaped, upper-case hex digits
            return re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(),
                          json.dumps(text).replace("/", "\\/")).encode()
        return json.dumps(text).encode() + (b"" if self.rnd.random() < 0.9 else b"\xff")


# --------------------------------------------------------------------------- definitions

SCHEDULES: list[object] = [
    {"__type__": "interval", "every": 3600.0, "relative": False},
    {"__type__": "crontab", "minute": "*/15", "hour": "*", "day_of_week": "*",
     "day_of_month": "*", "month_of_year": "*"},
    {"__type__": "interval", "every": 60},
    {"__type__": "interval", "every": math.nan, "relative": False},
    {"__type__": "crontab", "minute": "99"},
    30,
]
TASKS = ["bench.tasks.tick", "celery.backend_cleanup", "celery.map", 'a"b', "t\u00e9\\", "",
         'x\\", "args": [1], "kwargs": {"a": 1}, "t": "']  # escaped quotes
OPTIONS: list[object] = [{}, {}, {"queue": "q"}, {"priority": 2**60}, {"x": math.nan},
                         {"headers": {"__type__": "interval"}}, {"expires": 5}, None, "junk"]
NAMES = ["e17", "report", "a:b", ":lock", "has space", "r\u00e9sum\u00e9", "", "x" * 200, "x"]
KEY_NAMES = ["e17", "report", "r\u00e9sum\u00e9"]
USUAL_META = (b'{"last_run_at": {"__type__": "datetime", "year": 2026, "month": 11, "day": 22, '
              b'"hour": 9, "minute": 3, "second": 4, "microsecond": 0, "timezone": "UTC"}, '
              b'"total_run_count": 0}')
METAS = [USUAL_META] * 6 + [b'{"last_run_at": null}', b'{"last_run_at": null, '
         b'"total_run_count": 3}', USUAL_META.replace(b"UTC", b"Europe/Berlin"),
         USUAL_META.replace(b"2026", b"9000"), b'{"last_run_at": 5}', b"{}"]
PAD = "@@PAD@@"
_ABSENT = object()


@st.composite
def entries(draw: st.DrawFn, *, near_limit: bool = False) -> tuple[dict[str, bytes], str]:
    """An entry's fields and the key name: mostly as RedBeat writes them, with args and kwargs
    near every edge, and now and then any other oddity."""
    key_name = draw(st.sampled_from(KEY_NAMES))
    name = key_name if draw(st.integers(0, 4)) else draw(st.sampled_from(NAMES))
    args = draw(args_values)
    kwargs = draw(kwargs_values)
    if near_limit:
        if isinstance(args, list) and draw(st.booleans()):
            args = [*args, PAD]
        elif isinstance(kwargs, dict):
            kwargs = {**kwargs, "pad": PAD}
        else:
            args = [PAD]
    doc: dict[str, object] = {
        "name": name, "task": draw(st.sampled_from(TASKS[:1] * 6 + TASKS)),
        "args": args, "kwargs": kwargs, "options": draw(st.sampled_from(OPTIONS)),
        "schedule": draw(st.sampled_from(SCHEDULES[:1] * 4 + SCHEDULES)), "enabled": True,
    }
    if not draw(st.integers(0, 5)):  # missing members
        for member in draw(st.lists(st.sampled_from(["args", "kwargs", "options", "enabled"]),
                                    max_size=2)):
            doc.pop(member, None)
    if not draw(st.integers(0, 7)):
        doc[draw(st.sampled_from(["foo", "relative", "args"]))] = draw(
            st.sampled_from([1, True, None, [1]]))  # an extra member (or args moved last)
    members = list(doc.items())
    if not draw(st.integers(0, 7)):  # another member order
        members = draw(st.permutations(members))
    rnd = draw(st.randoms(use_true_random=False))
    plain = Writer(rnd, 0.0)
    odd = Writer(rnd, draw(st.sampled_from([0.0, 0.0, 0.0, 0.05, 0.3])))
    parts = [plain.string(k) + b": " + (odd if k in ("args", "kwargs") else plain).write(v)
             for k, v in members]
    if not draw(st.integers(0, 15)):  # a duplicate member of the definition
        parts.append(rnd.choice(parts))
    text = b"{" + b", ".join(parts) + b"}"
    ending = draw(st.integers(0, 30))
    if ending == 0:
        text = text[:-1] + b",}"  # a syntax error after the last member
    elif ending == 1:
        text += b" x"
    elif ending == 2:
        text = text[:-1] + b', "z": "\xff"}'
    if near_limit and PAD.encode() in text:
        target = MAX_FIELD_BYTES + draw(st.sampled_from([-2, -1, 0, 1, 2]))
        text = text.replace(PAD.encode(), b"a" * max(0, target - len(text) + len(PAD)), 1)
    fields = {"definition": text, "meta": draw(st.sampled_from(METAS))}
    return fields, key_name


# --------------------------------------------------------------------------- checks

SHARED = FastEntryDecoder()


def _lean_of(full: Entry | None, report: Report) -> tuple[object, ...]:
    """The Lean the full decoder's result implies (meta is always present here)."""
    if full is None:
        return None, False, None, None, report.findings
    stored = full.meta.last_run_at if full.meta is not None else None
    last = None if stored is None else stored.to_datetime()
    zone = full.extensions.timezone if full.extensions is not None else None
    return (full.definition.schedule, full.definition.enabled, (last, repr(last)), zone,
            report.findings)


def _lean_key(lean: Lean) -> tuple[object, ...]:
    if lean.schedule is None:
        return None, lean.enabled, lean.last_run_at, lean.timezone, lean.report.findings
    last = lean.last_run_at
    return lean.schedule, lean.enabled, (last, repr(last)), lean.timezone, lean.report.findings


def check_same(fields: dict[str, bytes], key_name: str, *, record: bool = False) -> None:
    """decode and decode_lean, through a fresh and the shared decoder, twice each, give what
    decode_entry gives: the same value (and repr) and the same findings in the same order."""
    key = "redbeat:" + key_name
    full = decode_entry(fields, name=key_name, key=key)
    expected_lean = _lean_of(full.value, full.report)
    fresh = FastEntryDecoder()
    for decoder in (fresh, SHARED):
        for _ in range(2):
            value, report = decoder.decode(fields, name=key_name, key=key)
            assert report.findings == full.report.findings
            assert value == full.value
            assert repr(value) == repr(full.value)  # tuples, mappings, number types, order
            if value is not None and full.value is not None:
                ours, theirs = value.definition, full.value.definition
                assert type(ours.args) is type(theirs.args)
                assert type(ours.kwargs) is type(theirs.kwargs)
        for _ in range(2):
            lean = decoder.decode_lean(fields, name=key_name, key=key)
            assert _lean_key(lean) == expected_lean
    if not record:
        return
    found = FastEntryDecoder()._find(fields["definition"], key)
    event("full decoder" if fresh.full else "a template, args read apart" if found is not None
          and found[2] is not _TEMPLATES else "a template, args in it")


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(entry=entries())
def test_fast_args_equal_the_full_decoder(entry: tuple[dict[str, bytes], str]) -> None:
    check_same(*entry, record=True)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(entry=entries(near_limit=True))
def test_fast_args_near_the_size_limit(entry: tuple[dict[str, bytes], str]) -> None:
    check_same(*entry, record=True)


# --------------------------------------------------------------------------- the fast path is taken

BENCH = ('{{"name": "e{i}", "task": "bench.tasks.tick", "args": {args}, "kwargs": {kwargs}, '
         '"options": {{}}, "schedule": {{"__type__": "interval", "every": 3600.0, "relative": '
         'false}}, "enabled": true}}')


def _bench(i: int, args: str = "[{i}]", kwargs: str = "{{}}") -> dict[str, bytes]:
    text = BENCH.format(i=i, args=args.format(i=i), kwargs=kwargs.format(i=i))
    return {"definition": text.encode(), "meta": USUAL_META}


def test_the_benchmark_entries_share_one_template() -> None:
    """The usual entry, with different args each (what RedBeat writes): one template decoded,
    every other entry a hit, none judged by the full decoder."""
    decoder = FastEntryDecoder()
    for i in range(500):
        fields = _bench(i)
        value, report = decoder.decode(fields, name=f"e{i}", key=f"redbeat:e{i}")
        assert value is not None and value.definition.args == (i,)
        assert value.definition.name == f"e{i}" and not report.findings
        lean = decoder.decode_lean(fields, name=f"e{i}", key=f"redbeat:e{i}")
        assert lean.schedule is not None and not lean.report.findings
    assert (decoder.misses, decoder.hits, decoder.full) == (1, 999, 0)


ACCEPTED = [
    ("[{i}]", "{{}}"),
    ("[{i}, \"s\\u00e9\", 1.5, null, true, [{i}], {{\"k\": {i}}}]", "{{\"n\": {i}}}"),
    ("null", "{{\"n\": [{i}, {{\"a\": \"b\"}}]}}"),
    ("[9007199254740991, -9007199254740991, {i}]", "null"),
    ("[\"\\\"\\\\/\", {i}, 1e+300, -0.0]", "{{\"\": {i}}}"),
    ("[" * 63 + "{i}" + "]" * 63, "{{}}"),  # 64 deep with the definition: the limit
]
REFUSED = [
    ("[NaN, {i}]", "{{}}"),
    ("[Infinity, {i}]", "{{}}"),
    ("[9007199254740992, {i}]", "{{}}"),
    ("[{{\"__type__\": \"datetime\", \"year\": {i}}}]", "{{}}"),
    ("[{{\"__type__\": \"foo\"}}, {i}]", "{{}}"),
    ("[{i}]", "{{\"__type__\": \"x\", \"n\": {i}}}"),
    ("[ {i}]", "{{}}"),
    ("[{i},1]", "{{}}"),
    ("[1.0E2, {i}]", "{{}}"),
    ("[\"\\u0041\", {i}]", "{{}}"),
    ("[\"\\ud800\", {i}]", "{{}}"),
    ("[{i}]", "{{\"a\": 1, \"a\": {i}}}"),
    ("[" * 64 + "{i}" + "]" * 64, "{{}}"),  # 65 deep: JSON-6
    ("\"{i}\"", "{{}}"),
    ("[{i}]", "[{i}]"),
]


@pytest.mark.parametrize(("args", "kwargs"), ACCEPTED)
def test_plain_args_take_the_fast_path(args: str, kwargs: str) -> None:
    decoder = FastEntryDecoder()
    for i in range(1, 21):
        fields = _bench(i, args, kwargs)
        check_same(fields, f"e{i}")
        decoder.decode(fields, name=f"e{i}", key=f"redbeat:e{i}")
    assert (decoder.misses, decoder.full) == (1, 0)


@pytest.mark.parametrize(("args", "kwargs"), REFUSED)
def test_other_args_are_judged_per_text(args: str, kwargs: str) -> None:
    """Anything not provably plain and canonical is not read on its own: its text is a template
    of its own (or goes to the full decoder), and the results still agree."""
    decoder = FastEntryDecoder()
    for i in range(1, 21):
        fields = _bench(i, args, kwargs)
        check_same(fields, f"e{i}")
        decoder.decode(fields, name=f"e{i}", key=f"redbeat:e{i}")
    assert decoder.misses == 20  # a template per text, never the shared one


@pytest.mark.parametrize("task", ["celery.backend_cleanup", "celery.map", "bench.tasks.tick"])
@pytest.mark.parametrize(("args", "kwargs"), [("[]", "{{}}"), ("null", "{{}}"), ("[]", "null"),
                                              ("[{i}]", "{{}}"), ("[]", "{{\"n\": {i}}}"),
                                              ("null", "{{\"n\": {i}}}"), ("[{i}]", "null")])
def test_builtin_tasks_see_whether_args_are_empty(task: str, args: str, kwargs: str) -> None:
    """DEF-4 allows celery.backend_cleanup only without args and kwargs: the template keeps
    whether they were empty."""
    decoder = FastEntryDecoder()
    for i in (1, 2):
        fields = _bench(i, args, kwargs)
        fields["definition"] = fields["definition"].replace(b"bench.tasks.tick", task.encode())
        check_same(fields, f"e{i}")
        decoder.decode(fields, name=f"e{i}", key=f"redbeat:e{i}")
    assert decoder.misses == 1


@pytest.mark.parametrize("name", ["", "e1", "x", "a b"])
@pytest.mark.parametrize("where", ["args", "kwargs", "options"])
@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_sizes_at_the_limit(name: str, where: str, delta: int) -> None:
    """A definition of 1 MiB passes JSON-7, one byte more does not; the template (never the
    longer text) agrees, whatever the name."""
    doc = {"name": name, "task": "t", "args": [], "kwargs": {"": 1}, "options": {},
           "schedule": SCHEDULES[0], "enabled": True}
    doc[where] = [PAD] if where == "args" else {"pad": PAD}
    text = json.dumps(doc).encode()
    text = text.replace(PAD.encode(), b"a" * (MAX_FIELD_BYTES + delta - len(text) + len(PAD)))
    assert len(text) == MAX_FIELD_BYTES + delta
    check_same({"definition": text, "meta": USUAL_META}, name or "e1")
