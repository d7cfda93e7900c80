"""The document vectors: the suite lints clean, the reference implementation reproduces every
case, and the JSON Schemas agree with the spec on every case that has a parsed document."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import pytest

from beatspec.rules import RULES, Level
from beatspec.schemas import validator
from beatspec.vectors import Case, check_vectors, load_cases, run_case

CASES = load_cases()

#: Cases the reference implementation gets wrong today (each reported to the codec's owner).
#: The test of such a case is an xfail(strict=True): fixing the codec turns it into a failure
#: until the description is removed from this set.
KNOWN_VALIDATOR_BUGS: frozenset[str] = frozenset()

#: Cases on which a schema of schemas/v1 disagrees with the spec (reported to their owner).
KNOWN_SCHEMA_BUGS: dict[str, str] = {}

#: MUST rules a JSON Schema in the portable subset cannot express (spec 16.3): a lenient schema
#: may accept a document that breaks only these.
PROCEDURAL_RULES: frozenset[str] = frozenset({
    "JSON-1", "JSON-2", "JSON-3", "JSON-4", "JSON-5", "JSON-6", "JSON-7", "JSON-8",
    "DT-2", "DT-3", "CRON-4", "DEF-2", "KEY-6", "KEY-7", "TAG-1", "TAG-2", "TAG-3",
    "RRULE-6", "RRULE-8", "WDAY-1", "EXT-1", "EXT-2", "OPT-4", "ENT-4", "SOLAR-1",
    # the year-9000 bound holds for meta.last_run_at only, while the schemas share one datetime
    # definition with options.eta and expires (a second datetime schema is not worth it)
    "META-2",
    # protocol header names inside options.headers: "any member but these" needs `not` or
    # patternProperties, outside the portable subset
    "OPT-2",
    # Celery's built-in task names (with arguments): "a string but these" needs `not`
    "DEF-4",
    # a MONTHLY rule's weekday n in -5..5 depends on freq: needs if/then
    "RRULE-9",
})

#: A typed value inside args, kwargs or an unknown option (reported together with TAG-1) is
#: invisible to the schemas, which leave those members untyped: typing "every object whose
#: __type__ is datetime" would need `not` or if/then, which the portable subset lacks. These
#: rules are therefore not expressible there, though they are where the value has its own member.
PAYLOAD_VALUE_RULES: frozenset[str] = frozenset({"DT-1"})


def _id(case: Case) -> str:
    return case.description


def _params(cases: list[Case], marks_for: dict[str, str]) -> list[Any]:
    return [
        pytest.param(
            case, id=_id(case),
            marks=[pytest.mark.xfail(reason=marks_for[case.description], strict=True)]
            if case.description in marks_for else [],
        )
        for case in cases
    ]


def test_vectors_lint_clean() -> None:
    result = check_vectors(reproduce=False)
    assert result.problems == []
    assert any("cases in" in note for note in result.notes)


def test_known_bug_lists_name_existing_cases() -> None:
    descriptions = {case.description for case in CASES}
    assert not KNOWN_VALIDATOR_BUGS - descriptions
    assert not set(KNOWN_SCHEMA_BUGS) - descriptions


def test_the_suite_is_big_enough() -> None:
    assert len(CASES) >= 170
    document_rules = {r.id for r in RULES.values() if r.kind == "document"}
    listed = {rule_id for case in CASES for rule_id in case.rules}
    assert document_rules - listed <= {"JSON-7", "COMPAT-1"}


@pytest.mark.parametrize(
    "case",
    _params(CASES, dict.fromkeys(KNOWN_VALIDATOR_BUGS, "known validator bug")),
)
def test_the_reference_implementation_reproduces(case: Case) -> None:
    got = run_case(case)
    assert (got.valid, got.strict_valid, sorted(got.rules)) == (
        case.valid, case.strict_valid, list(case.rules)
    )


def _schemas(case: Case) -> tuple[str, str]:
    if case.kind == "definition":
        if case.profile == "extended":
            return "definition.extended.json", "definition.extended.strict.json"
        return "definition.json", "definition.strict.json"
    if case.kind == "extensions":
        return "extensions.json", "extensions.json"
    return f"{case.kind}.json", f"{case.kind}.strict.json"


def _parsed(case: Case) -> Any:
    """The document as the schemas see it: an entry's fields given as JSON text are decoded."""
    document = case.document
    if case.kind == "entry" and isinstance(document, dict):
        document = dict(document)
        for field in ("definition", "meta", "extensions"):
            if isinstance(document.get(field), str):
                # Invalid text stays a string, which no schema accepts as a field.
                with contextlib.suppress(ValueError):
                    document[field] = json.loads(document[field])
    return document


@pytest.mark.parametrize(
    "case",
    _params([c for c in CASES if c.has_document], KNOWN_SCHEMA_BUGS),
)
def test_the_schemas_agree_with_the_spec(case: Case) -> None:
    lenient_name, strict_name = _schemas(case)
    lenient, strict = validator(lenient_name), validator(strict_name)
    document = _parsed(case)
    if case.valid:
        errors = [e.message for e in lenient.iter_errors(document)]
        assert not errors, f"{lenient_name} rejects a valid document: {errors}"
    if case.strict_valid:
        errors = [e.message for e in strict.iter_errors(document)]
        assert not errors, f"{strict_name} rejects a strictly valid document: {errors}"
    if not case.valid and lenient.is_valid(document):
        must = {r for r in case.rules if RULES[r].level is Level.MUST}
        if "TAG-1" in must:
            must -= PAYLOAD_VALUE_RULES
        assert must <= PROCEDURAL_RULES, (
            f"{lenient_name} accepts a document breaking {sorted(must - PROCEDURAL_RULES)}"
        )
