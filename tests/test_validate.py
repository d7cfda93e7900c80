"""`beatspec validate`: verdicts, exit codes, and robustness against hostile input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beatspec import Kind, validate_document
from beatspec.codec import decode_definition, encode_definition

CANONICAL = {
    "name": "report",
    "task": "proj.tasks.report",
    "args": [1, 2],
    "kwargs": {},
    "options": {"queue": "reports"},
    "schedule": {"__type__": "crontab", "minute": "0", "hour": "4", "day_of_week": "*",
                 "day_of_month": "*", "month_of_year": "*"},
    "enabled": True,
}


def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", "from beatspec.cli import main; main()", *args],
        input=stdin, capture_output=True, timeout=60, check=False,
    )


def test_canonical_definition_is_strictly_valid() -> None:
    kind, report = validate_document(json.dumps(CANONICAL))
    assert kind is Kind.DEFINITION
    assert report.valid(strict=True), [f.message for f in report]


def test_canonical_definition_round_trips_byte_for_byte() -> None:
    text = json.dumps(CANONICAL)
    decoded = decode_definition(text)
    assert decoded.value is not None
    assert encode_definition(decoded.value) == text


def test_kind_is_detected() -> None:
    assert validate_document('{"last_run_at": null}')[0] is Kind.META
    entry = json.dumps({"definition": CANONICAL, "meta": {"last_run_at": None}})
    assert validate_document(entry)[0] is Kind.ENTRY


def test_a_field_over_one_mebibyte_is_rejected() -> None:
    big = dict(CANONICAL, args=["x" * (1024 * 1024)])
    _, report = validate_document(json.dumps(big).encode())
    assert report.broken() == {"JSON-7"}


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (b"\xff\xfe{}", "JSON-1"),
        (b"[" * 10_000 + b"]" * 10_000, "JSON-6"),
        (b'{"a": ' + b"9" * 5000 + b"}", "JSON-4"),
        (b'{"a": 1e999}', "JSON-4"),
        (b'{"a": NaN}', "JSON-2"),
        (b'{"a": 1, "a": 2}', "JSON-3"),
        (b"", "JSON-1"),
        (b"null", "JSON-1"),
    ],
)
def test_hostile_json_text_gets_a_rule_not_a_traceback(text: bytes, rule: str) -> None:
    _, report = validate_document(text)
    assert rule in report.broken()


def test_cli_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(CANONICAL))
    assert run_cli("validate", str(good)).returncode == 0
    assert run_cli("validate", "--strict", str(good)).returncode == 0
    bad = run_cli("validate", "-", stdin=b'{"name": "x"}')
    assert bad.returncode == 1
    assert b"DEF-4" in bad.stdout and b"DEF-5" in bad.stdout
    missing = run_cli("validate", str(tmp_path / "nope.json"))
    assert missing.returncode == 2
    assert b"does not exist" in missing.stderr
    assert run_cli("validate", "--kind", "bogus", str(good)).returncode == 2
    assert run_cli("validate", str(tmp_path)).returncode == 2


def test_cli_json_output_names_rule_pointer_found_and_hint() -> None:
    doc = dict(CANONICAL, schedule={"__type__": "interval", "every": 60.0})
    result = run_cli("validate", "--format", "json", "-", stdin=json.dumps(doc).encode())
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert out["valid"] is False
    (finding,) = out["findings"]
    assert finding["rule"] == "INT-1"
    assert finding["pointer"] == "/schedule"
    assert finding["outcome"] == "FAILED"
    assert finding["found"] and finding["hint"]


def test_strict_turns_non_strict_findings_into_failure() -> None:
    legacy = dict(CANONICAL, schedule=30)
    assert run_cli("validate", "-", stdin=json.dumps(legacy).encode()).returncode == 0
    strict = run_cli("validate", "--strict", "-", stdin=json.dumps(legacy).encode())
    assert strict.returncode == 1
    assert b"DEF-6" in strict.stdout


def test_binary_garbage_on_the_command_line_is_a_finding() -> None:
    result = run_cli("validate", "-", stdin=bytes(range(256)))
    assert result.returncode == 1
    assert b"Traceback" not in result.stderr + result.stdout
    assert b"JSON-1" in result.stdout


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_never_crash(data: bytes) -> None:
    validate_document(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20,
)
tagged = st.fixed_dictionaries(
    {"__type__": st.sampled_from(["datetime", "interval", "crontab", "rrule", "weekday",
                                  "solar", "x"])},
    optional=dict.fromkeys(
        ("every", "relative", "minute", "freq", "year", "month", "day", "timezone", "wkday",
         "dtstart", "byweekday"),
        json_values,
    ),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["name", "task", "args", "kwargs", "options", "schedule", "enabled",
                         "relative", "x"]),
        json_values | tagged,
        max_size=8,
    ),
    st.sampled_from(list(Kind)),
)
def test_any_document_never_crashes_and_every_finding_is_complete(
    doc: dict[str, object], kind: Kind
) -> None:
    _, report = validate_document(json.dumps(doc), kind)
    for finding in report:
        assert finding.rule and finding.message and finding.hint
        assert finding.pointer == "" or finding.pointer.startswith("/")
