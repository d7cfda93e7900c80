"""A fast path for decoding entries as writers usually store them, with the same verdicts.

An audit decodes every entry of a keyspace, and most entries differ only in their name and
their ``last_run_at``. Two shortcuts, both falling back to the full decoder for anything else:

* **definitions** are memoised on their text with the leading ``"name"`` member cut out: every
  finding except those about the name (pointer ``/name``) depends only on that rest, and the
  name's own checks are re-run per entry;
* **meta** in the canonical form (RedBeat's ``json.dumps`` output with an IANA zone) is read by
  one regular expression; any value out of range, unknown zone or other form goes the full way.

``tests/test_codec_fast.py`` shows with hypothesis that both paths give the same value and the
same findings.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from functools import lru_cache
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

from beatspec._collector import Collector
from beatspec._jsontext import MAX_FIELD_BYTES, MISSING, parse_json_text
from beatspec.codec import decode_definition, decode_entry
from beatspec.codec.decode import LAST_RUN_YEAR_LIMIT, _decode_name, decode_definition_value
from beatspec.codec.types import DateTime, Definition, Entry, Meta, Schedule
from beatspec.findings import Finding, Outcome, Report
from beatspec.zones import is_known_zone

__all__ = ["FastEntryDecoder", "Lean"]

_NAME_HEAD: Final = b'{"name": "'
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
#: A definition's leading "name" member with a plain name.
_PLAIN_NAME_MEMBER: Final = re.compile(rb'\{"name": "(' + _PLAIN_NAME.pattern.encode("ascii")
                                       + rb')"')
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


class Lean(NamedTuple):
    """What the audit needs of an entry (``schedule`` None when a MUST is broken)."""

    schedule: Schedule | None
    enabled: bool
    last_run_at: datetime | None
    timezone: str | None
    report: Report


class FastEntryDecoder:
    """``decode_entry`` with memoised definitions; one instance per audit (or longer)."""

    def __init__(self, *, profile: str = "core", size: int = 4096) -> None:
        self.profile = profile
        self.size = size
        # rest of the text -> (definition decoded with a neutral name, its findings, parsed?)
        self._cache: OrderedDict[bytes, tuple[Definition | None, tuple[Finding, ...], bool]] = (
            OrderedDict())
        self.hits = self.misses = 0

    def decode(self, fields: Mapping[str, bytes], *, name: str, key: str
               ) -> tuple[Entry | None, Report]:
        """The decoded entry and the report, as ``decode_entry`` gives them."""
        lean, entry = self._decode(fields, name=name, key=key, full=True)
        return entry, lean.report

    def decode_lean(self, fields: Mapping[str, bytes], *, name: str, key: str) -> Lean:
        """Only what judging needs, without building the entry's objects."""
        if len(fields) == 2:
            usual = self._usual(fields.get("definition"), fields.get("meta"), name)
            if usual is not None:
                return usual
        return self._decode(fields, name=name, key=key, full=False)[0]

    def _usual(self, definition: object, meta: object, name: str) -> Lean | None:
        """The usual entry, in short: its own plain name, a definition seen before without a
        finding and a canonical meta. None for anything else (the general way judges it)."""
        if not isinstance(definition, bytes) or not isinstance(meta, bytes):
            return None
        match = _PLAIN_NAME_MEMBER.match(definition)
        if match is None or len(definition) > MAX_FIELD_BYTES:
            return None
        rest = definition[match.end() - 1:]
        cached = self._cache.get(rest)
        if cached is None or cached[1] or cached[0] is None:
            return None
        if match.group(1).decode("ascii") != name:
            return None
        parsed = _fast_meta(meta)
        if parsed is None:
            return None
        self.hits += 1
        self._cache.move_to_end(rest)
        return Lean(cached[0].schedule, cached[0].enabled, parsed[0], None, _EMPTY)

    def _decode(self, fields: Mapping[str, bytes], *, name: str, key: str, full: bool
                ) -> tuple[Lean, Entry | None]:
        definition_raw = fields.get("definition")
        meta_raw = fields.get("meta")
        split = None
        if len(fields) == 2 and isinstance(definition_raw, bytes) and isinstance(meta_raw, bytes):
            split = _split_name(definition_raw)
        meta = _fast_meta(meta_raw) if split is not None else None  # type: ignore[arg-type]
        if split is None or meta is None:
            return self._decode_fully(fields, name, key)
        own_name, rest = split
        template, findings, parsed = self._definition(rest, key)
        if parsed and own_name == name and _PLAIN_NAME.fullmatch(own_name):
            name_findings: list[Finding] = []  # what _decode_name finds for a plain name: nothing
        else:
            out = Collector(key=key, field="definition")
            if parsed:  # the full decoder checks the name only when the text parses
                _decode_name({"name": own_name}, out, name)
            name_findings = out.findings
        report = _EMPTY if not findings and not name_findings else Report.of(
            _merge(name_findings, findings, key))
        if template is None or (report is not _EMPTY and not report.valid()):
            return Lean(None, False, None, None, report), None
        last_run, zone_name, count_raw = meta
        lean = Lean(template.schedule, template.enabled, last_run, None, report)
        if not full:
            return lean, None
        stored = None if last_run is None else DateTime(
            last_run.year, last_run.month, last_run.day, last_run.hour, last_run.minute,
            last_run.second, last_run.microsecond, zone_name)
        count = None if count_raw is None else int(count_raw)
        return lean, Entry(replace(template, name=own_name), Meta(stored, count), None)

    def _definition(self, rest: bytes, key: str
                    ) -> tuple[Definition | None, tuple[Finding, ...], bool]:
        """The memoised decoding of a definition's text after its name."""
        cached = self._cache.get(rest)
        if cached is None:
            self.misses += 1
            cached = self._decode_rest(rest, key)
            self._cache[rest] = cached
            if len(self._cache) > self.size:
                self._cache.popitem(last=False)
        else:
            self.hits += 1
            self._cache.move_to_end(rest)
        return cached

    def _decode_fully(self, fields: Mapping[str, bytes], name: str, key: str
                      ) -> tuple[Lean, Entry | None]:
        """Anything else: the full decoder."""
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

    def _decode_rest(self, rest: bytes, key: str
                     ) -> tuple[Definition | None, tuple[Finding, ...], bool]:
        """Decode the definition with a neutral name ("x"): nothing it finds is about the name."""
        out = Collector(key=key, field="definition")
        value = parse_json_text(_NAME_HEAD + b"x" + rest, out)
        if value is MISSING:
            return None, tuple(out.findings), False
        definition = decode_definition_value(value, out, name=None, profile=self.profile)
        return definition, tuple(out.findings), True


_NAME_MEMBER: Final = re.compile(rb'\{"name": "([^"\\\x00-\x1f]+)"')


def _split_name(raw: bytes) -> tuple[str, bytes] | None:
    """The name and the rest of a definition that starts with a plain ``"name"`` member."""
    match = _NAME_MEMBER.match(raw)
    if match is None or len(raw) > MAX_FIELD_BYTES:
        return None
    try:
        name = match.group(1).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return name, raw[match.end() - 1:]


def _merge(name_findings: list[Finding], cached: tuple[Finding, ...], key: str
           ) -> list[Finding]:
    """The findings in the full decoder's order: name checks come after the member checks
    (DEF-1) and before the rest; cached findings are re-keyed to this entry."""
    rekeyed = [f if f.key == key else replace(f, key=key) for f in cached]
    head = [f for f in rekeyed if f.rule == "DEF-1" and f.outcome is Outcome.FAILED]
    tail = [f for f in rekeyed if not (f.rule == "DEF-1" and f.outcome is Outcome.FAILED)]
    return [*head, *name_findings, *tail]
