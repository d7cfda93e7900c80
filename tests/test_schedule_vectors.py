"""The schedule conformance vectors (conformance/vectors/v1/schedules/).

* ``check_schedule_vectors`` finds no problem: schema-valid files, unique descriptions, known
  deviations, and the reference engine reproduces every case;
* each case, one test per description: the engine's due, next_check, next_run and score;
* the generator (which runs Celery 5.7 and celery-redbeat 2.4.2 themselves) reproduces the
  committed files byte for byte (``--check``).

A case the engine gets wrong although beatspec does not deviate there is an engine bug: the vector
stays as Celery computes it and its description goes into ``KNOWN_ENGINE_BUGS`` (strict xfail, so
the entry must be removed once the engine is fixed).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from beatspec._schedule_vectors import (
    ScheduleCase,
    check_schedule_vectors,
    load_schedule_cases,
    mismatches,
    replay,
)
from beatspec.codec.types import Solar

ROOT = Path(__file__).resolve().parents[1]
VECTORS = ROOT / "conformance" / "vectors" / "v1"
GENERATOR = ROOT / "conformance" / "generate" / "schedules.py"
GENERATOR_TIMEOUT = 300

# Crontab fields written as an integer or an array (CRON-5, non-canonical but valid): the decoder
# keeps an array as a tuple, which beatspec.cron.expand_field (called by the engine's
# compile_crontab) rejects with CronError("... must be a string, an integer or an array ...").
KNOWN_ENGINE_BUGS: frozenset[str] = frozenset()

CASES = load_schedule_cases(VECTORS)
HAS_EPHEM = importlib.util.find_spec("ephem") is not None


def _param(case: ScheduleCase) -> object:
    marks = []
    if case.description in KNOWN_ENGINE_BUGS:
        marks.append(pytest.mark.xfail(strict=True, reason="engine bug, see KNOWN_ENGINE_BUGS"))
    return pytest.param(case, id=case.description, marks=marks)


def test_vectors_are_present() -> None:
    assert len(CASES) >= 320
    assert {c.description for c in CASES} >= KNOWN_ENGINE_BUGS


def test_check_schedule_vectors_finds_no_problem() -> None:
    problems, notes = check_schedule_vectors(VECTORS)
    unexpected = [p for p in problems if not any(bug in p for bug in KNOWN_ENGINE_BUGS)]
    assert unexpected == []
    assert len(problems) == len(KNOWN_ENGINE_BUGS)  # each known bug shows up, once
    assert notes and notes[0].endswith("files")


def test_check_schedule_vectors_reports_wrong_cases(tmp_path: Path) -> None:
    (tmp_path / "schedules").mkdir()
    (tmp_path / "schedules.schema.json").write_text(
        (VECTORS / "schedules.schema.json").read_text(encoding="utf-8"), encoding="utf-8"
    )
    data = json.loads((VECTORS / "schedules" / "rrule.json").read_text(encoding="utf-8"))
    first, second, third = data["cases"][:3]
    first["expected"]["score"] += 1
    second["description"] = "this case should fail"
    third["deviation"] = "D9"
    (tmp_path / "schedules" / "rrule.json").write_text(json.dumps(data), encoding="utf-8")
    problems, _notes = check_schedule_vectors(tmp_path)
    assert any("case 0" in p and "score: expected" in p for p in problems)
    assert any("case 1" in p and "'should'" in p for p in problems)
    assert any("/cases/2/deviation" in p for p in problems)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_engine_reproduces_case(case: ScheduleCase) -> None:
    if isinstance(case.schedule, Solar) and not HAS_EPHEM:
        pytest.skip("solar needs ephem (beatspec[solar])")
    assert mismatches(case, replay(case)) == []


def test_generator_check_mode() -> None:
    for module in ("celery", "redbeat", "ephem"):
        pytest.importorskip(module)
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        capture_output=True, text=True, timeout=GENERATOR_TIMEOUT, cwd=ROOT, check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
