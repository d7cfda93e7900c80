"""A fast path for decoding entries as writers usually store them, with the same verdicts.

An audit decodes every entry of a keyspace, and the scheduler daemon every due entry; most
entries differ only in their name, their ``args``/``kwargs`` and their ``last_run_at``. The
shortcuts, each leaving anything it cannot prove the same to the full decoder:

* **definitions** are decoded as *templates*, memoised on their text: the definition with its
  name replaced by ``"x"``. Every finding except those about the name (pointer ``/name``)
  depends only on the template, and the name's own checks are re-run per entry (their findings
  go after the parser's and the unknown members', where the full decoder puts them);
* **args and kwargs** of a definition in RedBeat's member order (``name``, ``task``, ``args``,
  ``kwargs``, ...) are read apart by the C scanner when they are *plain* (see
  :func:`_plain_items`) and written exactly as ``json.dumps`` writes them; the template then
  has ``[]`` or ``[0]`` for args and ``{}`` or ``{"": 0}`` for kwargs (null stays null), which
  keeps whether they were empty (DEF-4 looks at that). The full decoder has nothing to say
  about plain values, so entries differing only in them share one template;
* **meta** in the canonical form (RedBeat's ``json.dumps`` output with an IANA zone) is read by
  one regular expression; any value out of range, unknown zone or other form goes the full way.

A template whose text breaks JSON-1 is never used: that finding names offsets, which the name
and the args and kwargs move. ``tests/test_codec_fast.py`` and ``tests/test_codec_fast_args.py``
show with hypothesis that the paths give the same value and the same findings, in order.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from types import MappingProxyType
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

from beatspec._collector import Collector
from beatspec._jsontext import MAX_DEPTH, MAX_FIELD_BYTES, MISSING, make_dumps, parse_json_text
from beatspec.codec import decode_definition, decode_entry
from beatspec.codec.decode import LAST_RUN_YEAR_LIMIT, _decode_name, decode_definition_value
from beatspec.codec.types import DateTime, Definition, Entry, Json, Meta, Schedule
from beatspec.findings import Finding, Report
from beatspec.zones import is_known_zone

__all__ = ["FastEntryDecoder", "Lean"]

#: The start of every template: the name replaced by "x".
_X_HEAD: Final = b'{"name": "x'
_INT: Final = rb"(?:0|[1-9][0-9]*)"
_META: Final = re.compile(
    rb'\{"last_run_at": (?:null|\{"__type__": "datetime", ("year": ' + _INT
    + rb', "month": ' + _INT + rb', "day": ' + _INT + rb', "hour": ' + _INT
    + rb'), "minute": (' + _INT + rb'), "second": (' + _INT + rb'), "microsecond": (' + _INT
    + rb'), "timezone": "([A-Za-z][A-Za-z0-9_+/-]{0,63})"\})'
    # at most 15 digits: always within 2**53 - 1, so JSON-5 has nothing to say
    + rb'(?:, "total_run_count": (0|[1-9][0-9]{0,14}))?\}'
)
_DIGITS: Final = re.compile(rb"[0-9]+")
#: Names that pass every name check (KEY-6, KEY-7, DEF-3): printable ASCII, no space, no
#: leading ':' (so never a reserved suffix).
_PLAIN_NAME: Final = re.compile(r"[A-Za-z0-9._@/+=-][A-Za-z0-9._:@/+=-]*")
_EMPTY: Final = Report()


def _fast_meta(raw: bytes) -> tuple[datetime | None, str | None, bytes | None] | None:
    """The canonical meta forms as (last run, its zone, count's digits), or None for anything
    the full decoder must judge."""
    match = _META.fullmatch(raw)
    if match is None:
        return None
    hours, minute, second, micro, zone_raw, count_raw = match.groups()
    if hours is None:
        return None, None, count_raw
    date = _date_hour(hours)
    zone = _known_zone(zone_raw)
    if date is None or zone is None:
        return None
    try:  # datetime checks the ranges of month, day (leap years too), hour, minute and second
        last = datetime(*date, int(minute), int(second), int(micro), zone[1])
    except (ValueError, OverflowError):
        return None
    return last, zone[0], count_raw


@lru_cache(maxsize=4096)
def _date_hour(text: bytes) -> tuple[int, int, int, int] | None:
    """Year, month, day and hour of a canonical last_run_at (most entries of a keyspace last
    ran within a few hours, so this is nearly always a cache hit); None for a year the full
    decoder reports."""
    try:
        year, month, day, hour = map(int, _DIGITS.findall(text))
    except ValueError:  # more digits than int() takes
        return None
    if not 2 <= year < LAST_RUN_YEAR_LIMIT:
        return None
    return year, month, day, hour


@lru_cache(maxsize=256)
def _known_zone(raw: bytes) -> tuple[str, ZoneInfo] | None:
    name = raw.decode("ascii")
    return (name, ZoneInfo(name)) if is_known_zone(name) else None


# --------------------------------------------------------------------------- args and kwargs

#: The inside of a string token as the JSON scanner delimits it (no raw control character).
_STRING: Final = rb'[^"\\\x00-\x1f]*(?:\\.[^"\\\x00-\x1f]*)*'
#: A definition's leading ``"name"`` member (group 1: the inside of its string token).
_NAME_MEMBER: Final = re.compile(rb'\{"name": "(' + _STRING + rb')"')
#: ... with a plain name.
_PLAIN_NAME_MEMBER: Final = re.compile(rb'\{"name": "(' + _PLAIN_NAME.pattern.encode("ascii")
                                       + rb')"')
#: What follows the name in RedBeat's member order, up to the value of ``args``: the task
#: member (any string token, as the JSON scanner delimits it).
_TASK_MEMBER: Final = re.compile(rb', "task": "[^"\\]*(?:\\.[^"\\]*)*", "args": ')
_KWARGS_HEAD: Final = b', "kwargs": '
_SAFE_INTEGER: Final = 2**53 - 1
#: A \\u escape of a UTF-16 surrogate (alone it breaks JSON-1; in pairs it is fine, but rare).
_SURROGATE: Final = re.compile(r"\\u[dD][89a-fA-F]")
#: The C scanner json.loads uses, which reads one value at an index (and no whitespace first).
_SCAN: Final[Callable[[str, int], tuple[Json, int]]] = (
    json.JSONDecoder().scan_once)  # type: ignore[attr-defined]
#: The neutral stand-ins for args and kwargs in a template, for null, empty and non-empty
#: values: no longer than any value they stand for, so the template is never the larger text.
_NEUTRAL_ARGS: Final = (b"null", b"[]", b"[0]")
_NEUTRAL_KWARGS: Final = (b"null", b"{}", b'{"": 0}')


_canonical: Final = make_dumps()


def _plain_items(items: Iterable[Json], depth: int) -> bool:
    """Whether the values of a container nested ``depth`` deep in the definition are *plain*:
    strings, booleans, null, integers within +-(2**53-1) (JSON-4, JSON-5), finite numbers
    (JSON-2, JSON-4), and arrays and objects of them without a ``"__type__"`` member (TAG-1..3)
    nested at most ``MAX_DEPTH`` deep (JSON-6). The full decoder has nothing to say about a
    plain value in args or kwargs (lone surrogates, JSON-1, are ruled out on the text)."""
    for item in items:
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is int:
            if -_SAFE_INTEGER <= item <= _SAFE_INTEGER:
                continue
            return False
        if kind is float:
            if item - item == 0.0:  # neither infinite nor NaN
                continue
            return False
        if depth >= MAX_DEPTH:
            return False
        if kind is list:
            if _plain_items(item, depth + 1):
                continue
            return False
        if kind is dict and "__type__" not in item and _plain_items(item.values(), depth + 1):
            continue
        return False
    return True


def _payload(raw: bytes, at: int, neutral: tuple[bytes, bytes, bytes]
             ) -> tuple[Json, int, bytes] | None:
    """The plain array (args) or object (kwargs) or null at ``at``, written as ``json.dumps``
    writes it: (value, where it ends, its neutral stand-in), or None."""
    if raw.startswith(b"null", at):
        return None, at + 4, neutral[0]
    is_list = neutral is _NEUTRAL_ARGS
    if raw.startswith(neutral[1], at):
        return [] if is_list else {}, at + 2, neutral[1]
    try:
        text = raw[at:].decode("utf-8")
        value, end = _SCAN(text, 0)
    except (UnicodeDecodeError, StopIteration, ValueError, RecursionError):
        return None
    if is_list:
        if type(value) is not list or not _plain_items(value, 2):
            return None
    elif (type(value) is not dict or "__type__" in value
          or not _plain_items(value.values(), 2)):
        return None
    span = text[:end]
    # as json.dumps writes it (so no duplicate member, JSON-3, and ASCII: ``end`` counts
    # bytes too), without lone surrogates
    if _canonical(value) != span or (_SURROGATE.search(span) and not _unicode(value)):
        return None
    return value, at + end, neutral[1 + bool(value)]


def _split_args(raw: bytes, at: int) -> tuple[bytes, Json, Json] | None:
    """A definition in RedBeat's member order with plain args and kwargs, taken apart after its
    name (whose closing quote is at ``at``): the template's text and the args and kwargs; None
    for anything else, and when args and kwargs are both empty or null (the text is its own
    template)."""
    head = _TASK_MEMBER.match(raw, at + 1)
    if head is None:
        return None
    args = _payload(raw, head.end(), _NEUTRAL_ARGS)
    if args is None or not raw.startswith(_KWARGS_HEAD, args[1]):
        return None
    kwargs = _payload(raw, args[1] + len(_KWARGS_HEAD), _NEUTRAL_KWARGS)
    if kwargs is None or (args[2] is not _NEUTRAL_ARGS[2]
                          and kwargs[2] is not _NEUTRAL_KWARGS[2]):
        return None
    template = b"".join((_X_HEAD, raw[at:head.end()], args[2], _KWARGS_HEAD, kwargs[2],
                         raw[kwargs[1]:]))
    return template, args[0], kwargs[0]


def _own_name(token: bytes) -> str | None:
    """The string the inside of a name's token holds, or None when the template's ``"x"`` in its
    place could change a finding: an empty name (the template would be the longer text, JSON-7),
    one that is not UTF-8, has a bad escape (JSON-1) or a lone surrogate (JSON-1)."""
    try:
        text = token.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if "\\" not in text:
        return text or None
    try:
        name: str = json.loads('"' + text + '"')
    except ValueError:
        return None
    return name if _unicode(name) else None


def _unicode(value: Json) -> bool:
    """Whether a JSON value's strings (member names too) are Unicode: no lone surrogate."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


#: What stands in a template's place for the entry's args and kwargs: the template's own.
_TEMPLATES: Final = object()


class _Template(NamedTuple):
    """A definition decoded with a neutral name (and args and kwargs)."""

    definition: Definition | None
    findings: tuple[Finding, ...]
    #: the text parsed (the full decoder checks the name only then)
    parsed: bool
    #: where the name's findings go: after the parser's and the unknown members' (DEF-1)
    name_at: int
    #: no JSON-1 finding (whose message holds offsets that the cut-out parts move)
    usable: bool


class Lean(NamedTuple):
    """What the audit needs of an entry (``schedule`` None when a MUST is broken)."""

    schedule: Schedule | None
    enabled: bool
    last_run_at: datetime | None
    timezone: str | None
    report: Report


class FastEntryDecoder:
    """``decode_entry`` with memoised definitions; one instance per audit (or longer).

    ``hits`` and ``misses`` count the template look-ups; ``full`` counts the entries the full
    decoder judged.
    """

    def __init__(self, *, profile: str = "core", size: int = 4096) -> None:
        self.profile = profile
        self.size = size
        # a template's text, or a definition's with the name cut out -> (the template's
        # decoding, the args and kwargs of that definition or _TEMPLATES)
        self._cache: OrderedDict[bytes, tuple[_Template, Json, Json]] = OrderedDict()
        self.hits = self.misses = self.full = 0

    def decode(self, fields: Mapping[str, bytes], *, name: str, key: str
               ) -> tuple[Entry | None, Report]:
        """The decoded entry and the report, as ``decode_entry`` gives them."""
        lean, entry = self._decode(fields, name, key, True)
        return entry, lean.report

    def decode_lean(self, fields: Mapping[str, bytes], *, name: str, key: str) -> Lean:
        """Only what judging needs, without building the entry's objects."""
        if len(fields) == 2:
            usual = self._usual(fields.get("definition"), fields.get("meta"), name)
            if usual is not None:
                return usual
        return self._decode(fields, name, key, False)[0]

    def _usual(self, definition: object, meta: object, name: str) -> Lean | None:
        """The usual entry, in short: its own plain name, a definition seen before without a
        finding and a canonical meta. None for anything else (the general way judges it)."""
        if not isinstance(definition, bytes) or not isinstance(meta, bytes):
            return None
        match = _PLAIN_NAME_MEMBER.match(definition)
        if match is None or len(definition) > MAX_FIELD_BYTES:
            return None
        text = _X_HEAD + definition[match.end(1):]
        cached = self._cache.get(text)
        if cached is None or cached[0].findings or cached[0].definition is None:
            return None
        if match.group(1).decode("ascii") != name:
            return None
        parsed = _fast_meta(meta)
        if parsed is None:
            return None
        self.hits += 1
        self._cache.move_to_end(text)
        template = cached[0].definition
        return Lean(template.schedule, template.enabled, parsed[0], None, _EMPTY)

    def _decode(self, fields: Mapping[str, bytes], name: str, key: str, full: bool
                ) -> tuple[Lean, Entry | None]:
        if len(fields) == 2:
            raw = fields.get("definition")
            meta_raw = fields.get("meta")
            if isinstance(raw, bytes) and isinstance(meta_raw, bytes):
                meta = _fast_meta(meta_raw)
                found = None if meta is None else self._find(raw, key)
                if meta is not None and found is not None and found[1].usable:
                    own_name, template, args, kwargs = found
                    return self._from_template(own_name, template, args, kwargs, meta, name,
                                               key, full)
        return self._decode_fully(fields, name, key)

    def _find(self, raw: bytes, key: str) -> tuple[str, _Template, Json, Json] | None:
        """The definition's own name, its template and its args and kwargs (``_TEMPLATES``: the
        template's), or None when it does not start with a usable name.

        The cache holds templates under their text, and under the text of each definition
        (with the name cut out) that went the args' way, with that definition's args and
        kwargs: a definition seen again costs a look-up."""
        match = _NAME_MEMBER.match(raw)
        if match is None or len(raw) > MAX_FIELD_BYTES:
            return None
        own_name = _own_name(match.group(1))
        if own_name is None:
            return None
        cache = self._cache
        at = match.end(1)
        text = _X_HEAD + raw[at:]
        cached = cache.get(text)
        if cached is not None:
            self.hits += 1
            cache.move_to_end(text)
            return own_name, *cached
        split = _split_args(raw, at)
        if split is None:
            return own_name, self._template(text, key), _TEMPLATES, _TEMPLATES
        template = self._template(split[0], key)
        if template.usable:
            self._remember(text, (template, split[1], split[2]))
        return own_name, template, split[1], split[2]

    def _template(self, text: bytes, key: str) -> _Template:
        """The memoised decoding of a template."""
        cached = self._cache.get(text)
        if cached is None:
            self.misses += 1
            template = self._decode_template(text, key)
            self._remember(text, (template, _TEMPLATES, _TEMPLATES))
            return template
        self.hits += 1
        self._cache.move_to_end(text)
        return cached[0]

    def _remember(self, text: bytes, value: tuple[_Template, Json, Json]) -> None:
        self._cache[text] = value
        if len(self._cache) > self.size:
            self._cache.popitem(last=False)

    def _from_template(self, own_name: str, template: _Template, args: Json, kwargs: Json,
                       meta: tuple[datetime | None, str | None, bytes | None],
                       name: str, key: str, full: bool) -> tuple[Lean, Entry | None]:
        """The entry from its definition's template, with its own name, args and kwargs."""
        findings = template.findings
        if template.parsed and own_name == name and _PLAIN_NAME.fullmatch(own_name):
            # what _decode_name finds for a plain name: nothing
            report = _EMPTY if not findings else Report.of(_rekey(findings, key))
        else:
            out = Collector(key=key, field="definition")
            if template.parsed:  # the full decoder checks the name only when the text parses
                _decode_name({"name": own_name}, out, name)
            if not findings and not out.findings:
                report = _EMPTY
            else:
                rekeyed = _rekey(findings, key)
                at = template.name_at
                report = Report.of((*rekeyed[:at], *out.findings, *rekeyed[at:]))
        definition = template.definition
        if definition is None or (report is not _EMPTY and not report.valid()):
            return Lean(None, False, None, None, report), None
        last_run, zone_name, count_raw = meta
        lean = Lean(definition.schedule, definition.enabled, last_run, None, report)
        if not full:
            return lean, None
        stored = None if last_run is None else DateTime(
            last_run.year, last_run.month, last_run.day, last_run.hour, last_run.minute,
            last_run.second, last_run.microsecond, zone_name)
        count = None if count_raw is None else int(count_raw)
        if args is _TEMPLATES:
            own_args, own_kwargs = definition.args, definition.kwargs
        else:
            own_args = None if args is None else tuple(args)
            own_kwargs = None if kwargs is None else MappingProxyType(kwargs)
        definition = Definition(  # its fields in order (positional arguments are faster)
            own_name, definition.task, definition.schedule, own_args, own_kwargs,
            definition.options, definition.enabled, definition.relative, definition.bare_schedule)
        return lean, Entry(definition, Meta(stored, count), None)

    def _decode_template(self, text: bytes, key: str) -> _Template:
        """Decode a template with ``name=None``: nothing it finds is about the name "x"."""
        out = Collector(key=key, field="definition")
        value = parse_json_text(text, out)
        findings = out.findings
        at = len(findings)
        usable = not any(f.rule == "JSON-1" for f in findings)
        if value is MISSING:
            return _Template(None, tuple(findings), False, at, usable)
        definition = decode_definition_value(value, out, name=None, profile=self.profile)
        while at < len(findings) and findings[at].rule == "DEF-1":  # _members() comes first
            at += 1
        return _Template(definition, tuple(findings), True, at, usable)

    def _decode_fully(self, fields: Mapping[str, bytes], name: str, key: str
                      ) -> tuple[Lean, Entry | None]:
        """Anything else: the full decoder."""
        self.full += 1
        decoded = decode_entry(fields, name=name, key=key, profile=self.profile)
        entry = decoded.value
        if entry is None:
            return self._without_meta(fields, name, key, decoded.report), None
        last = None
        if entry.meta is not None and entry.meta.last_run_at is not None:
            last = entry.meta.last_run_at.to_datetime()
        zone = entry.extensions.timezone if entry.extensions is not None else None
        return Lean(entry.definition.schedule, entry.definition.enabled, last, zone,
                    decoded.report), entry

    def _without_meta(self, fields: Mapping[str, bytes], name: str, key: str,
                      report: Report) -> Lean:
        """An entry whose meta is missing is still scheduled as never run (RedBeat reads no meta
        as last_run_at null), so its score can be judged when its definition decodes."""
        raw = fields.get("definition")
        if fields.get("meta") not in (None, b"", "") or raw in (None, b"", ""):
            return Lean(None, False, None, None, report)
        definition = decode_definition(raw, name=name, key=key,
                                       profile=self.profile).value
        if definition is None:
            return Lean(None, False, None, None, report)
        return Lean(definition.schedule, definition.enabled, None, None, report)


def _rekey(findings: tuple[Finding, ...], key: str) -> tuple[Finding, ...]:
    """Cached findings for this entry's key."""
    if all(f.key == key for f in findings):
        return findings
    return tuple(f if f.key == key else replace(f, key=key) for f in findings)
