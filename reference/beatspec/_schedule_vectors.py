"""Load, lint and replay the schedule conformance vectors (``conformance/vectors/v1/schedules/``).

The format is described in ``conformance/README.md`` ("schedule vectors") and by
``conformance/vectors/v1/schedules.schema.json``. :func:`check_schedule_vectors` checks that every
file is valid against that schema, that the descriptions are unique (across the whole suite), at
most 150 characters and free of the word "should", that deviations are known, and that the
reference schedule engine reproduces every case.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from jsonschema import Draft202012Validator

from beatspec._collector import Collector
from beatspec._suite import case_files, open_schema, read_json, suite_root
from beatspec.codec.decode import decode_datetime, decode_schedule
from beatspec.codec.types import Crontab, Interval, RRule, Schedule, Solar
from beatspec.zones import is_known_zone

__all__ = [
    "DEVIATIONS",
    "NEXT_CHECK_TOLERANCE",
    "Replay",
    "ScheduleCase",
    "ScheduleOutcome",
    "check_schedule_vectors",
    "load_schedule_cases",
    "mismatches",
    "replay",
]

DEVIATIONS = frozenset({"D1", "D2", "D3"})
NEXT_CHECK_TOLERANCE = 0.001  # seconds
MAX_DESCRIPTION = 150
SCHEMA_NAME = "schedules.schema.json"
CASES_DIR = "schedules"
_SHOULD = re.compile(r"\bshould\b", re.IGNORECASE)
_MAX_SCHEMA_ERRORS = 10


class VectorError(ValueError):
    """A schedule vector that cannot be decoded."""


@dataclass(frozen=True, slots=True)
class ScheduleOutcome:
    """``expected`` (or ``celery``) of a case: due, next check, next run and score."""

    due: bool
    next_check: float | None
    next_run: datetime | None
    score: int | None


@dataclass(frozen=True, slots=True)
class ScheduleCase:
    """One decoded schedule vector."""

    file: str
    index: int
    description: str
    schedule: Schedule
    app_timezone: str
    last_run_at: datetime | None
    now: datetime
    expected: ScheduleOutcome
    deviation: str | None
    celery: ScheduleOutcome | None
    tags: tuple[str, ...]

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.app_timezone)

    @property
    def where(self) -> str:
        return f"{CASES_DIR}/{self.file} case {self.index} ({self.description})"


@dataclass(frozen=True, slots=True)
class Replay:
    """What the reference engine computes for a case."""

    due: bool
    next_check: float | None
    next_run: datetime | None
    score: int


def _instant(text: object, what: str) -> datetime:
    if not isinstance(text, str):
        raise VectorError(f"{what} is not a string")
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise VectorError(f"{what} {text!r} is not ISO 8601") from exc
    if value.utcoffset() is None:
        raise VectorError(f"{what} {text!r} has no UTC offset")
    return value


def _outcome(obj: object, what: str, *, score_required: bool) -> ScheduleOutcome:
    if not isinstance(obj, Mapping):
        raise VectorError(f"{what} is not an object")
    due = obj.get("due")
    if not isinstance(due, bool):
        raise VectorError(f"{what}.due is not a boolean")
    check = obj.get("next_check")
    if check is not None and (isinstance(check, bool) or not isinstance(check, int | float)):
        raise VectorError(f"{what}.next_check is not a number or null")
    raw_next = obj.get("next_run")
    next_run = None if raw_next is None else _instant(raw_next, f"{what}.next_run")
    score = obj.get("score")
    if score is None and score_required:
        raise VectorError(f"{what}.score is missing")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int)):
        raise VectorError(f"{what}.score is not an integer")
    return ScheduleOutcome(due, None if check is None else float(check), next_run, score)


def _decode_case(file: str, index: int, raw: object) -> ScheduleCase:
    if not isinstance(raw, Mapping):
        raise VectorError("the case is not an object")
    description = raw.get("description")
    if not isinstance(description, str):
        raise VectorError("the case has no description")
    out = Collector()
    schedule, _bare = decode_schedule(raw.get("schedule"), out, "extended")
    if schedule is None or out.has_failed():
        problems = "; ".join(f"{f.rule} {f.pointer or '/'}: {f.message}" for f in out.findings)
        raise VectorError(f"schedule is not a valid beatspec schedule: {problems}")
    zone = raw.get("app_timezone")
    if not isinstance(zone, str) or not is_known_zone(zone):
        raise VectorError(f"app_timezone {zone!r} is not a known IANA zone")
    raw_last = raw.get("last_run_at")
    last: datetime | None = None
    if raw_last is not None:
        if not isinstance(raw_last, Mapping):
            raise VectorError("last_run_at is not a datetime object or null")
        out = Collector()
        decoded = decode_datetime(raw_last, out)
        if decoded is None or out.has_failed():
            problems = "; ".join(f"{f.rule}: {f.message}" for f in out.findings)
            raise VectorError(f"last_run_at is not a valid beatspec datetime: {problems}")
        last = decoded.to_datetime()
    now = _instant(raw.get("now"), "now")
    expected = _outcome(raw.get("expected"), "expected", score_required=True)
    deviation = raw.get("deviation")
    if deviation is not None and deviation not in DEVIATIONS:
        raise VectorError(f"deviation {deviation!r} is not one of {sorted(DEVIATIONS)}")
    raw_celery = raw.get("celery")
    if (deviation is None) != (raw_celery is None):
        raise VectorError("deviation and celery must be present together")
    celery = None if raw_celery is None else _outcome(raw_celery, "celery", score_required=False)
    tags = raw.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise VectorError("tags is not an array of strings")
    return ScheduleCase(
        file=file, index=index, description=description, schedule=schedule,
        app_timezone=zone, last_run_at=last, now=now, expected=expected,
        deviation=None if deviation is None else str(deviation), celery=celery,
        tags=tuple(tags),
    )


def _raw_cases(root: Path) -> Iterator[tuple[str, int, object]]:
    for path in case_files(root, CASES_DIR):
        data = read_json(path)
        cases = data.get("cases", []) if isinstance(data, Mapping) else []
        for index, raw in enumerate(cases if isinstance(cases, list) else []):
            yield path.name, index, raw


def load_schedule_cases(root: Path | None = None) -> list[ScheduleCase]:
    """Every case of ``<root>/schedules/*.json``, decoded; ``root`` defaults to the shipped
    ``conformance/vectors/v1``. Raises :class:`VectorError` (a ``ValueError``) for a case that
    cannot be decoded."""
    cases: list[ScheduleCase] = []
    for file, index, raw in _raw_cases(suite_root(root)):
        try:
            cases.append(_decode_case(file, index, raw))
        except VectorError as exc:
            raise VectorError(f"{CASES_DIR}/{file} case {index}: {exc}") from exc
    return cases


def replay(case: ScheduleCase) -> Replay:
    """Run the reference engine on a case (raises UnsupportedSchedule for solar without ephem)."""
    from beatspec.engine import due, score

    state = due(case.schedule, case.last_run_at, case.now, zone=case.zone)
    value = score(case.schedule, case.last_run_at, case.now, zone=case.zone)
    return Replay(state.is_due, state.next_check, state.next_run, value)


def _iso(value: datetime | None) -> str:
    return "null" if value is None else value.astimezone(UTC).isoformat()


def mismatches(case: ScheduleCase, got: Replay) -> list[str]:
    """How the engine's answer differs from ``expected`` (empty when it reproduces the case)."""
    want = case.expected
    out: list[str] = []
    if got.due != want.due:
        out.append(f"due: expected {want.due}, engine {got.due}")
    if got.next_run != want.next_run:
        out.append(f"next_run: expected {_iso(want.next_run)}, engine {_iso(got.next_run)}")
    if (got.next_check is None) != (want.next_check is None) or (
        got.next_check is not None and want.next_check is not None
        and not math.isclose(got.next_check, want.next_check, rel_tol=0.0,
                             abs_tol=NEXT_CHECK_TOLERANCE)
    ):
        out.append(f"next_check: expected {want.next_check}, engine {got.next_check}")
    if got.score != want.score:
        out.append(f"score: expected {want.score}, engine {got.score}")
    return out


def _schema_problems(validator: Draft202012Validator, data: object, name: str) -> list[str]:
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    out = []
    for error in errors[:_MAX_SCHEMA_ERRORS]:
        pointer = "".join(f"/{p}" for p in error.absolute_path) or "/"
        out.append(f"{CASES_DIR}/{name} {pointer}: {error.message}")
    if len(errors) > _MAX_SCHEMA_ERRORS:
        out.append(f"{CASES_DIR}/{name}: {len(errors) - _MAX_SCHEMA_ERRORS} more schema errors")
    return out


def _document_descriptions(root: Path) -> dict[str, str]:
    """Descriptions of the document vectors, to keep descriptions unique across the suite."""
    out: dict[str, str] = {}
    for path in sorted((root / "documents").glob("*.json")):
        try:
            data = read_json(path)
        except (OSError, ValueError):
            continue  # the document vectors are linted elsewhere
        cases = data.get("cases") if isinstance(data, Mapping) else None
        for case in cases if isinstance(cases, list) else []:
            if isinstance(case, Mapping) and isinstance(case.get("description"), str):
                out.setdefault(case["description"], f"documents/{path.name}")
    return out


def _differs(case: ScheduleCase) -> bool:
    celery, want = case.celery, case.expected
    if celery is None:
        return False
    if case.deviation == "D2":
        return celery.score is not None and celery.score != want.score
    return (celery.due, celery.next_check, celery.next_run) != (
        want.due, want.next_check, want.next_run
    )


def check_schedule_vectors(root: Path | None = None) -> tuple[list[str], list[str]]:
    """Lint and replay the schedule vectors under ``root`` (default: the shipped
    ``conformance/vectors/v1``). Returns ``(problems, notes)``; no problems means the suite is
    sound and the reference engine reproduces every case."""
    base = suite_root(root)
    problems: list[str] = []
    notes: list[str] = []
    validator = open_schema(base, SCHEMA_NAME)
    if isinstance(validator, str):
        return [validator], notes
    files = case_files(base, CASES_DIR)
    if not files:
        return [f"{CASES_DIR}/: no case files"], notes

    seen = _document_descriptions(base)
    per_file: Counter[str] = Counter()
    per_tag: Counter[str] = Counter()
    per_deviation: Counter[str] = Counter()
    not_replayed: list[str] = []
    for path in files:
        try:
            data = read_json(path)
        except (OSError, ValueError) as exc:
            problems.append(f"{CASES_DIR}/{path.name}: not JSON: {exc}")
            continue
        problems += _schema_problems(validator, data, path.name)
        raw_cases = data.get("cases") if isinstance(data, Mapping) else None
        for index, raw in enumerate(raw_cases if isinstance(raw_cases, list) else []):
            where = f"{CASES_DIR}/{path.name} case {index}"
            try:
                case = _decode_case(path.name, index, raw)
            except VectorError as exc:
                problems.append(f"{where}: {exc}")
                continue
            where = case.where
            text = case.description
            if text in seen:
                problems.append(f"{where}: description also used in {seen[text]}")
            else:
                seen[text] = f"{CASES_DIR}/{path.name}"
            if len(text) > MAX_DESCRIPTION:
                problems.append(f"{where}: description longer than {MAX_DESCRIPTION} characters")
            if _SHOULD.search(text):
                problems.append(f"{where}: description says 'should'; state what the case is")
            if case.deviation is not None and not _differs(case):
                problems.append(f"{where}: deviation {case.deviation} but celery agrees with "
                                "expected")
            per_file[path.name] += 1
            per_tag.update(set(case.tags))
            per_deviation[case.deviation or "none"] += 1
            try:
                got = replay(case)
            except Exception as exc:  # any engine failure is a finding
                if isinstance(case.schedule, Solar) and type(exc).__name__ == "UnsupportedSchedule":
                    not_replayed.append(where)
                    continue
                problems.append(f"{where}: engine raised {type(exc).__name__}: {exc}")
                continue
            problems += [f"{where}: {m}" for m in mismatches(case, got)]

    total = sum(per_file.values())
    notes.append(f"{total} schedule cases in {len(per_file)} files")
    notes += [f"  {name}: {count}" for name, count in sorted(per_file.items())]
    notes.append("deviations: " + ", ".join(
        f"{name} {count}" for name, count in sorted(per_deviation.items())))
    notes.append("tags: " + ", ".join(f"{tag} {count}" for tag, count in sorted(per_tag.items())))
    if not_replayed:
        notes.append(f"{len(not_replayed)} solar cases not replayed: ephem is not installed "
                     "(pip install 'beatspec[solar]')")
    return problems, notes


def _is(kind: type) -> Callable[[ScheduleCase], bool]:
    return lambda case: isinstance(case.schedule, kind)


def _tagged(tag: str, kind: type | None = None) -> Callable[[ScheduleCase], bool]:
    return lambda case: tag in case.tags and (kind is None or isinstance(case.schedule, kind))


#: Which schedule vectors exercise each schedule rule (the coverage lint needs one per rule).
RULE_EVIDENCE: dict[str, Callable[[ScheduleCase], bool]] = {
    "SCHED-1": lambda case: case.last_run_at is None or case.expected.due,
    "SCHED-2": _tagged("downtime"),
    "SCHED-3": lambda case: case.expected.score is not None,
    "SCHED-4": lambda case: case.expected.next_check is not None,
    "INT-6": lambda case: isinstance(case.schedule, Interval) and not case.schedule.relative,
    "INT-7": lambda case: isinstance(case.schedule, Interval) and case.schedule.relative,
    "CRON-7": _tagged("and-rule", Crontab),
    "CRON-8": _is(Crontab),
    "CRON-9": _tagged("dst-gap", Crontab),
    "CRON-10": _tagged("dst-fold", Crontab),
    "RRULE-11": _is(RRule),
    "RRULE-12": _tagged("exhausted", RRule),
    "SOLAR-3": _is(Solar),
}
#: Schedule rules shown by tests instead of vectors (the vector format has no deadline member).
SCHEDULE_RULES_ELSEWHERE: dict[str, str] = {
    "CRON-11": "tests/test_engine.py (starting deadline compared with Celery's "
    "beat_cron_starting_deadline)",
}


def schedule_coverage(cases: list[ScheduleCase]) -> tuple[list[str], list[str]]:
    """(problems, notes): every schedule rule of the spec has a vector or a named test."""
    from beatspec.rules import RULES

    problems: list[str] = []
    counts: dict[str, int] = {}
    for rule in RULES.values():
        if rule.kind != "schedule" or rule.id in SCHEDULE_RULES_ELSEWHERE:
            continue
        test = RULE_EVIDENCE.get(rule.id)
        if test is None:
            problems.append(f"{rule.id} (schedule) has no evidence predicate in RULE_EVIDENCE")
            continue
        counts[rule.id] = sum(1 for case in cases if test(case))
        if not counts[rule.id]:
            problems.append(f"{rule.id} (schedule) has no schedule vector")
    notes = [
        "schedule rules: " + ", ".join(f"{k} {v}" for k, v in counts.items())
        + "; elsewhere: " + "; ".join(f"{k}: {v}" for k, v in SCHEDULE_RULES_ELSEWHERE.items())
    ]
    return problems, notes
