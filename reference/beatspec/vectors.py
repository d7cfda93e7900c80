"""Load and lint the document conformance vectors (``conformance/vectors/v1/documents/``).

``beatspec vectors check`` runs :func:`check_vectors`: every case file is valid against
``documents.schema.json``; descriptions are unique, short and free of "should"; every rule ID is a
``document`` rule of the spec, listed sorted and once; the verdicts agree with the levels of the
rules listed; every ``document`` rule of the spec has a case (or is covered by another suite, see
:data:`COVERED_ELSEWHERE`); and the reference implementation reproduces every case.

Use :func:`load_cases` and :func:`run_case` to drive the vectors from tests.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Final

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from beatspec._suite import case_files, read_json, suite_root
from beatspec.rules import RULES, Level
from beatspec.validate import Kind, validate_document

__all__ = [
    "COVERED_ELSEWHERE",
    "SCHEMA_FILE",
    "Case",
    "CheckResult",
    "Verdict",
    "check_vectors",
    "default_root",
    "load_cases",
    "mismatch",
    "run_case",
]

#: The case-file schema, relative to the vectors root.
SCHEMA_FILE: Final = "documents.schema.json"

#: ``document`` rules that no vector file can hold, and the suite that covers each instead.
COVERED_ELSEWHERE: Final[Mapping[str, str]] = {
    "JSON-7": "tests/test_validate.py (a 1 MiB document is too large for a vector file)",
    "COMPAT-1": "a reader rule no document can break: the redbeat-written.json cases (each with "
    "a source) are what RedBeat writes, and every one of them is valid",
}

_DOCUMENT_MEMBERS: Final = ("document", "document_text", "document_base64")
_SHOULD: Final = re.compile(r"\bshould\b", re.IGNORECASE)
_MAX_DESCRIPTION: Final = 150


def default_root() -> Path:
    """The vectors shipped with beatspec: ``conformance/vectors/v1``."""
    return suite_root(None)


@dataclass(frozen=True, slots=True, eq=False)
class Case:
    """One document vector, as read from its case file.

    Exactly one of ``document`` (a parsed JSON value; ``has_document`` tells a JSON ``null``
    apart from an absent member), ``document_text`` and ``document_base64`` is given.
    """

    file: str
    index: int
    description: str
    kind: str
    profile: str
    name: str | None
    valid: bool
    strict_valid: bool
    rules: tuple[str, ...]
    document: Any = None
    has_document: bool = False
    document_text: str | None = None
    document_base64: str | None = None
    comment: str | None = None
    source: str | None = None

    @property
    def where(self) -> str:
        return f"{self.file} case {self.index}"

    def data(self) -> bytes:
        """The bytes the implementation is given: the JSON text of the document.

        ``document`` is serialised with :func:`json.dumps` (the separators RedBeat uses),
        ``document_text`` encoded as UTF-8 and ``document_base64`` decoded.
        """
        if self.has_document:
            return json.dumps(self.document).encode("ascii")
        if self.document_text is not None:
            return self.document_text.encode("utf-8")
        if self.document_base64 is not None:
            return base64.b64decode(self.document_base64, validate=True)
        raise ValueError(f"{self.where}: the case has no document")


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an implementation says about one case."""

    valid: bool
    strict_valid: bool
    rules: frozenset[str]


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of :func:`check_vectors`: ``problems`` fail the check, ``notes`` inform."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: Descriptions of the cases the reference implementation does not reproduce.
    mismatched: list[str] = field(default_factory=list)


_read_json = read_json


@cache
def _schema_validator(path: Path) -> Draft202012Validator:
    schema = _read_json(path)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _case_files(root: Path) -> list[Path]:
    return case_files(root, "documents")


def _case(file: str, index: int, raw: Mapping[str, Any]) -> Case:
    return Case(
        file=file,
        index=index,
        description=str(raw["description"]),
        kind=str(raw["kind"]),
        profile=str(raw.get("profile", "core")),
        name=raw.get("name"),
        valid=bool(raw["valid"]),
        strict_valid=bool(raw["strict_valid"]),
        rules=tuple(raw["rules"]),
        document=raw.get("document"),
        has_document="document" in raw,
        document_text=raw.get("document_text"),
        document_base64=raw.get("document_base64"),
        comment=raw.get("comment"),
        source=raw.get("source"),
    )


def _cases_of(path: Path, content: Any) -> list[Case]:
    return [_case(path.name, i, raw) for i, raw in enumerate(content["cases"])]


def load_cases(root: Path | None = None) -> list[Case]:
    """Every case of every file under ``root/documents``, in file order.

    The files are not linted here (see :func:`check_vectors`); a file that is not a JSON object
    with a ``cases`` array of objects raises ``ValueError``.
    """
    root = default_root() if root is None else root
    cases: list[Case] = []
    for path in _case_files(root):
        content = _read_json(path)
        if not isinstance(content, dict) or not isinstance(content.get("cases"), list):
            raise ValueError(f"{path.name}: not a case file")
        cases.extend(_cases_of(path, content))
    return cases


def run_case(case: Case) -> Verdict:
    """Run the reference implementation on a case."""
    _, report = validate_document(
        case.data(), Kind(case.kind), name=case.name, profile=case.profile
    )
    return Verdict(
        valid=report.valid(),
        strict_valid=report.valid(strict=True),
        rules=report.broken(strict=True),
    )


def mismatch(case: Case, verdict: Verdict | None = None) -> str | None:
    """How the implementation's verdict differs from the case, or ``None`` when it agrees."""
    got = run_case(case) if verdict is None else verdict
    differences = []
    if got.valid != case.valid:
        differences.append(f"valid {got.valid} (expected {case.valid})")
    if got.strict_valid != case.strict_valid:
        differences.append(f"strict_valid {got.strict_valid} (expected {case.strict_valid})")
    if got.rules != frozenset(case.rules):
        missing = sorted(frozenset(case.rules) - got.rules)
        extra = sorted(got.rules - frozenset(case.rules))
        differences.append(
            "rules " + ", ".join(
                part for part in (
                    f"missing {missing}" if missing else "",
                    f"unexpected {extra}" if extra else "",
                ) if part
            )
        )
    return "; ".join(differences) or None


def _lint_case(case: Case, problems: list[str]) -> None:
    where = f"{case.where} {case.description!r}"
    for rule_id in case.rules:
        if rule_id not in RULES:
            problems.append(f"{where}: unknown rule {rule_id}")
        elif RULES[rule_id].kind != "document":
            problems.append(
                f"{where}: {rule_id} is a {RULES[rule_id].kind} rule, not a document rule"
            )
        elif RULES[rule_id].level is Level.MAY:
            problems.append(f"{where}: {rule_id} is a MAY rule; a document cannot break it")
    if list(case.rules) != sorted(set(case.rules)):
        problems.append(f"{where}: rules are not sorted and duplicate-free: {list(case.rules)}")
    known = [RULES[r] for r in case.rules if r in RULES]
    must = any(r.level is Level.MUST for r in known)
    should = any(r.level is Level.SHOULD for r in known)
    if case.valid != (not must):
        problems.append(f"{where}: valid is {case.valid} but the rules listed "
                        f"{'include a' if must else 'include no'} MUST rule")
    if case.strict_valid != (not must and not should):
        problems.append(f"{where}: strict_valid is {case.strict_valid}, inconsistent with the "
                        "levels of the rules listed")
    if case.name is not None and case.kind not in ("definition", "entry"):
        problems.append(f"{where}: 'name' is used only with kind definition or entry")
    if case.document_text is not None:
        try:
            case.document_text.encode("utf-8")
        except UnicodeEncodeError:
            problems.append(f"{where}: document_text has no UTF-8 encoding (a lone surrogate); "
                            "write the escape sequence in the JSON text, or use document_base64")
    if case.document_base64 is not None:
        try:
            base64.b64decode(case.document_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            problems.append(f"{where}: document_base64 does not decode: {exc}")


def _lint_descriptions(files: Iterable[tuple[str, str]], cases: list[Case],
                       problems: list[str]) -> None:
    for name, description in files:
        if _SHOULD.search(description):
            problems.append(f"{name}: the file description contains the word 'should'")
    for case in cases:
        where = f"{case.where} {case.description!r}"
        if len(case.description) > _MAX_DESCRIPTION:
            problems.append(f"{where}: description longer than {_MAX_DESCRIPTION} characters")
        if _SHOULD.search(case.description):
            problems.append(f"{where}: description contains the word 'should'")
    counts = Counter(case.description for case in cases)
    for description, count in sorted(counts.items()):
        if count > 1:
            places = ", ".join(c.where for c in cases if c.description == description)
            problems.append(f"description {description!r} is used {count} times ({places})")


def _coverage(cases: list[Case], problems: list[str], notes: list[str]) -> None:
    document_rules = [r for r in RULES.values() if r.kind == "document"]
    listed = Counter(rule_id for case in cases for rule_id in case.rules)
    lenient = {rule_id for case in cases if case.valid for rule_id in case.rules}
    for rule in document_rules:
        if rule.id in COVERED_ELSEWHERE:
            if listed[rule.id]:
                notes.append(f"{rule.id} has vectors; COVERED_ELSEWHERE need not list it")
            continue
        if not listed[rule.id]:
            problems.append(f"{rule.id} ({rule.level.value}, document) has no case")
        elif rule.level is Level.SHOULD and rule.id not in lenient:
            problems.append(f"{rule.id} (SHOULD) has no NON-STRICT case (valid true)")
    for rule_id in COVERED_ELSEWHERE:
        if rule_id not in RULES or RULES[rule_id].kind != "document":
            problems.append(f"COVERED_ELSEWHERE names {rule_id}, which is no document rule")
    covered = [r.id for r in document_rules if listed[r.id]]
    notes.append(
        f"document rules: {len(covered)} of {len(document_rules)} have cases; covered "
        "elsewhere: " + "; ".join(f"{k}: {v}" for k, v in COVERED_ELSEWHERE.items())
    )
    notes.append("cases per rule: " + ", ".join(
        f"{r.id} {listed[r.id]}" for r in document_rules if listed[r.id]
    ))
    by_kind: dict[str, list[str]] = {}
    for rule in RULES.values():
        if rule.kind != "document":
            by_kind.setdefault(rule.kind, []).append(rule.id)
    for kind, ids in sorted(by_kind.items()):
        notes.append(f"left to the {kind} suite ({len(ids)}): {', '.join(ids)}")


def check_vectors(root: Path | None = None, *, reproduce: bool = True) -> CheckResult:
    """Lint the vectors under ``root`` (default: the shipped ``conformance/vectors/v1``).

    With ``reproduce`` (the default) the reference implementation is run on every case and each
    disagreement is a problem.
    """
    root = default_root() if root is None else root
    result = CheckResult()
    problems, notes = result.problems, result.notes
    schema_path = root / SCHEMA_FILE
    try:
        validator = _schema_validator(schema_path)
    except (OSError, ValueError) as exc:
        problems.append(f"{SCHEMA_FILE}: cannot load the case-file schema: {exc}")
        return result
    except SchemaError as exc:
        problems.append(f"{SCHEMA_FILE}: not a valid JSON Schema: {exc}")
        return result
    paths = _case_files(root)
    if not paths:
        problems.append(f"no case files in {root / 'documents'}")
        return result
    cases: list[Case] = []
    file_descriptions: list[tuple[str, str]] = []
    for path in paths:
        try:
            content = _read_json(path)
        except (OSError, ValueError) as exc:
            problems.append(f"{path.name}: not a readable JSON file: {exc}")
            continue
        errors = sorted(validator.iter_errors(content), key=lambda e: list(e.absolute_path))
        for error in errors:
            pointer = "/" + "/".join(str(p) for p in error.absolute_path)
            message = error.message
            if error.validator == "oneOf" and error.absolute_path:
                message = "a case has exactly one of " + ", ".join(_DOCUMENT_MEMBERS)
            problems.append(f"{path.name} {pointer}: {message}")
        if errors:
            continue
        file_descriptions.append((path.name, content["description"]))
        cases.extend(_cases_of(path, content))
    for case in cases:
        _lint_case(case, problems)
    _lint_descriptions(file_descriptions, cases, problems)
    _coverage(cases, problems, notes)
    if reproduce:
        for case in cases:
            try:
                difference = mismatch(case)
            except ValueError as exc:
                problems.append(f"{case.where} {case.description!r}: cannot run: {exc}")
                continue
            if difference is not None:
                result.mismatched.append(case.description)
                problems.append(f"{case.where} {case.description!r}: the reference "
                                f"implementation says {difference}")
    notes.insert(0, f"{len(cases)} cases in {len(paths)} files under {root / 'documents'}")
    if reproduce:
        notes.insert(1, f"reference implementation reproduces "
                        f"{len(cases) - len(result.mismatched)} of {len(cases)} cases")
    if (root / "schedules").is_dir():
        _check_schedules(root, result, reproduce=reproduce)
    if (root / "keyspaces").is_dir():
        from beatspec._keyspace_vectors import check_keyspace_vectors

        problems, notes = check_keyspace_vectors(root)
        result.problems.extend(problems)
        result.notes.extend(notes)
        result.notes.append("keyspace scenarios are replayed against a real Redis by "
                            "tests/test_keyspace_scenarios.py")
    return result


def _check_schedules(root: Path, result: CheckResult, *, reproduce: bool) -> None:
    """The schedule vectors: lint, replay on the engine, and schedule-rule coverage."""
    from beatspec._schedule_vectors import (
        check_schedule_vectors,
        load_schedule_cases,
        schedule_coverage,
    )

    if reproduce:
        problems, notes = check_schedule_vectors(root)
        result.problems.extend(problems)
        result.notes.extend(notes)
    try:
        cases = load_schedule_cases(root)
    except (OSError, ValueError) as exc:
        result.problems.append(f"schedules: cannot load: {exc}")
        return
    problems, notes = schedule_coverage(cases)
    result.problems.extend(problems)
    result.notes.extend(notes)
