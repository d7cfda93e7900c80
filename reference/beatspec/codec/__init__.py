"""The one codec: JSON text of an entry's hash fields <-> typed, immutable values.

Decoding never raises on bad input: it returns a :class:`Decoded` whose ``report`` lists every
broken rule (with its ID, JSON pointer, the value found and a hint) and whose ``value`` is the
typed value, or ``None`` when a MUST was broken.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from beatspec._collector import Collector
from beatspec._jsontext import MISSING, parse_json_text
from beatspec.codec.decode import (
    decode_definition_value,
    decode_extensions_value,
    decode_meta_value,
)
from beatspec.codec.encode import (
    datetime_to_json,
    dumps,
    encode_definition,
    encode_extensions,
    encode_meta,
    schedule_to_json,
)
from beatspec.codec.types import (
    CronField,
    Crontab,
    DateTime,
    Definition,
    Entry,
    Extensions,
    Interval,
    Meta,
    Misfire,
    RRule,
    Schedule,
    Solar,
    Weekday,
)
from beatspec.findings import Report

__all__ = [
    "CronField",
    "Crontab",
    "DateTime",
    "Decoded",
    "Definition",
    "Entry",
    "Extensions",
    "Interval",
    "Meta",
    "Misfire",
    "RRule",
    "Schedule",
    "Solar",
    "Weekday",
    "datetime_to_json",
    "decode_definition",
    "decode_entry",
    "decode_extensions",
    "decode_meta",
    "dumps",
    "encode_definition",
    "encode_extensions",
    "encode_meta",
    "schedule_to_json",
]

T = TypeVar("T")
Text = bytes | str


@dataclass(frozen=True, slots=True)
class Decoded(Generic[T]):
    """A decoded value (``None`` if a MUST was broken) and the report of what was found."""

    value: T | None
    report: Report

    @property
    def ok(self) -> bool:
        return self.value is not None and self.report.valid()


def _parsed(data: object, out: Collector) -> object:
    if isinstance(data, bytes | str):
        return parse_json_text(data, out)
    if not isinstance(data, Mapping):
        out.add(
            "JSON-1", data, "the field's value is not a JSON object",
            "the field must hold one JSON object ({...})",
        )
        return MISSING
    return data


def decode_definition(
    data: Text | Mapping[str, object],
    *,
    name: str | None = None,
    profile: str = "core",
    key: str | None = None,
) -> Decoded[Definition]:
    """Decode a ``definition`` field; ``name`` (the key suffix) enables the DEF-2 check."""
    out = Collector(key=key, field="definition" if key else None)
    value = _parsed(data, out)
    result = None if value is MISSING else decode_definition_value(value, out, name=name,
                                                                   profile=profile)
    return Decoded(result, Report.of(out.findings))


def decode_meta(data: Text | Mapping[str, object], *, key: str | None = None) -> Decoded[Meta]:
    out = Collector(key=key, field="meta" if key else None)
    value = _parsed(data, out)
    result = None if value is MISSING else decode_meta_value(value, out)
    return Decoded(result, Report.of(out.findings))


def decode_extensions(
    data: Text | Mapping[str, object], *, key: str | None = None
) -> Decoded[Extensions]:
    out = Collector(key=key, field="extensions" if key else None)
    value = _parsed(data, out)
    result = None if value is MISSING else decode_extensions_value(value, out)
    return Decoded(result, Report.of(out.findings))


def decode_entry(
    fields: Mapping[str, object],
    *,
    name: str | None = None,
    profile: str = "core",
    key: str | None = None,
) -> Decoded[Entry]:
    """Decode the fields of an entry hash (values are JSON text, or already-parsed objects).

    With ``key`` set (a Redis key), findings name the key and the hash field and pointers are
    relative to the field's document; without it, pointers start at the entry object
    (``/definition/schedule/...``).
    """
    out = Collector(key=key)
    definition = meta = extensions = None
    for field_name in fields:
        if field_name not in ("definition", "meta", "extensions"):
            with out.at(field_name) if key is None else _field(out, field_name):
                out.add(
                    "ENT-4", field_name, f"the entry hash has an unknown field {field_name!r}",
                    "keep only definition, meta and extensions in the entry hash", raw=True,
                )
    raw_definition = fields.get("definition")
    if raw_definition in (None, "", b""):
        out.add(
            "ENT-2", "(missing)" if raw_definition is None else "(empty)",
            "the entry has no definition: RedBeat removes it from the schedule at the next tick",
            "write the definition field (HSET key definition '{...}')", raw=True,
        )
    else:
        with _field(out, "definition", key):
            value = _parsed(raw_definition, out)
            if value is not MISSING:
                definition = decode_definition_value(value, out, name=name, profile=profile)
    raw_meta = fields.get("meta")
    if raw_meta in (None, "", b""):
        out.add(
            "ENT-3", "(missing)" if raw_meta is None else "(empty)",
            "the entry has no meta: it fires as soon as it is loaded (early, and again on time: "
            "redbeat#154)",
            'write meta with the definition: {"last_run_at": <now>, "total_run_count": 0}',
            raw=True,
        )
    else:
        with _field(out, "meta", key):
            value = _parsed(raw_meta, out)
            if value is not MISSING:
                meta = decode_meta_value(value, out)
    raw_ext = fields.get("extensions")
    if raw_ext not in (None, "", b""):
        with _field(out, "extensions", key):
            value = _parsed(raw_ext, out)
            if value is not MISSING:
                extensions = decode_extensions_value(value, out)
    report = Report.of(out.findings)
    entry = None
    if definition is not None and report.valid():
        entry = Entry(definition, meta, extensions)
    return Decoded(entry, report)


@contextmanager
def _field(out: Collector, name: str, key: str | None = None) -> Iterator[None]:
    """Position the collector in a hash field: as a Redis field (with a key) or a pointer token."""
    if key is not None or out.key is not None:
        saved = out.field
        out.field = name
        try:
            yield
        finally:
            out.field = saved
    else:
        with out.at(name):
            yield
