"""Validate one document offline: a definition, a meta, an extensions object or a whole entry."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from beatspec._collector import Collector
from beatspec._jsontext import MISSING, parse_json_text
from beatspec.codec import decode_definition, decode_entry, decode_extensions, decode_meta
from beatspec.findings import Report

__all__ = ["Kind", "detect_kind", "validate_document"]


class Kind(StrEnum):
    DEFINITION = "definition"
    META = "meta"
    ENTRY = "entry"
    EXTENSIONS = "extensions"


def detect_kind(value: object) -> Kind:
    """Guess the kind of a parsed document (used for ``--kind auto``)."""
    if isinstance(value, Mapping):
        if "definition" in value:
            return Kind.ENTRY
        if value and set(value) <= {"last_run_at", "total_run_count"}:
            return Kind.META
    return Kind.DEFINITION


def validate_document(
    data: bytes | str,
    kind: Kind | None = None,
    *,
    name: str | None = None,
    profile: str = "core",
) -> tuple[Kind, Report]:
    """Validate JSON text; ``kind=None`` detects it. Returns the kind used and the report.

    ``name`` is the entry's key suffix, when known, so that DEF-2 can compare it with
    ``definition.name``.
    """
    out = Collector()
    value = parse_json_text(data, out)
    if value is MISSING:
        return kind or Kind.DEFINITION, Report.of(out.findings)
    assert isinstance(value, dict)
    kind = kind or detect_kind(value)
    if kind is Kind.ENTRY:
        report = decode_entry(value, name=name, profile=profile).report
    elif kind is Kind.META:
        report = decode_meta(value).report
    elif kind is Kind.EXTENSIONS:
        report = decode_extensions(value).report
    else:
        report = decode_definition(value, name=name, profile=profile).report
    return kind, Report.of((*out.findings, *report.findings))
