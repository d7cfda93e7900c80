"""The keyspace scenarios (conformance/vectors/v1/keyspaces/) against the audit, on a real Redis.

Each scenario is loaded into a fresh namespace of the test server (its ``{P}`` replaced by the
namespace's prefix), audited with the scenario's clock, app time zone and profile, and the
multiset of (rule, outcome, key) of the FAILED and NON-STRICT findings must equal the scenario's,
as must the verdict. The INFO findings a scenario lists must be among the audit's INFO findings
(it may report more). Runs with a server the tests start, and with ``REDIS_URL`` set (then in a
unique prefix; scenarios that change server settings are skipped there).

Scenarios whose expectation the audit does not meet yet are listed in KNOWN_AUDIT_BUGS (and
KNOWN_INFO_GAPS) with the reason; they are strict xfails, so a fixed audit turns them into
failures until the entry is removed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import CliRunner

from beatspec._data import conformance_dir, schemas_dir
from beatspec._keyspace_vectors import (
    KeyspaceScenario,
    check_keyspace_vectors,
    load_into,
    load_keyspace_scenarios,
    template_key,
)
from beatspec.audit import AuditOptions, AuditResult, run_audit
from beatspec.findings import Outcome
from beatspec.keyspace import Keyspace, Layout

if TYPE_CHECKING:
    from beatspec.testing import Namespace, RedisServer

SCENARIOS = load_keyspace_scenarios()

#: Scenarios the audit gets wrong (description -> what it does instead). The expectation follows
#: the spec; see each scenario's comment for the clause.
KNOWN_AUDIT_BUGS: dict[str, str] = {}

#: Scenarios whose listed INFO findings the audit does not report (description -> which).
KNOWN_INFO_GAPS: dict[str, str] = {}


def _params(known: dict[str, str]) -> list[Any]:
    out = []
    for scenario in SCENARIOS:
        marks = []
        if scenario.description in known:
            marks.append(pytest.mark.xfail(strict=True, reason=known[scenario.description]))
        out.append(pytest.param(scenario, id=scenario.description, marks=marks))
    return out


@pytest.fixture
def server_settings(redis_server: RedisServer, request: pytest.FixtureRequest) -> Iterator[None]:
    """Apply the scenario's server settings (CONFIG SET) on a server the tests started; restore
    them afterwards. A scenario that needs settings is skipped on a server given by REDIS_URL."""
    scenario: KeyspaceScenario = request.node.callspec.params["scenario"]
    if not scenario.server:
        yield
        return
    if not redis_server.owned:
        pytest.skip("changes server settings: only on a server the tests started (no REDIS_URL)")
    with redis_server.client() as client:
        names = {"maxmemory_policy": "maxmemory-policy"}
        saved = {name: client.config_get(names[name])[names[name]] for name in scenario.server}
        for name, value in scenario.server.items():
            client.config_set(names[name], value)
        try:
            yield
        finally:
            for name, value in saved.items():
                client.config_set(names[name], value)


def _audit(ns: Namespace, scenario: KeyspaceScenario) -> AuditResult:
    with ns.client() as client:
        load_into(client, ns.prefix, scenario)
        keyspace = Keyspace(client, Layout(scenario.audit_prefix(ns.prefix)))
        return run_audit(keyspace, AuditOptions(
            now=scenario.now, app_timezone=scenario.app_timezone, profile=scenario.profile))


def _describe(findings: Counter[tuple[str, str, str | None]], prefix: str) -> list[str]:
    return sorted(f"{rule} {outcome} {template_key(key, prefix)}"
                  for (rule, outcome, key), n in findings.items() for _ in range(n))


@pytest.mark.usefixtures("server_settings")
@pytest.mark.parametrize("scenario", _params(KNOWN_AUDIT_BUGS))
def test_audit_reports_the_expected_findings(redis_ns: Namespace,
                                             scenario: KeyspaceScenario) -> None:
    result = _audit(redis_ns, scenario)
    got = Counter(
        (f.rule, f.outcome.value, f.key) for f in result.findings
        if f.outcome in (Outcome.FAILED, Outcome.NON_STRICT)
    )
    want = scenario.expected(redis_ns.prefix)
    details = "\n".join(
        f"  {f.rule} {f.outcome.value} {template_key(f.key, redis_ns.prefix)} {f.field or ''}"
        f" {f.pointer}: {f.message}" for f in result.findings)
    assert _describe(got, redis_ns.prefix) == _describe(want, redis_ns.prefix), (
        f"{scenario.where}\naudit findings:\n{details}")
    assert result.conformant() is scenario.conformant


@pytest.mark.usefixtures("server_settings")
@pytest.mark.parametrize("scenario", [
    p for p in _params(KNOWN_INFO_GAPS) if p.values[0].info])
def test_audit_reports_the_expected_info(redis_ns: Namespace, scenario: KeyspaceScenario) -> None:
    result = _audit(redis_ns, scenario)
    got = {(f.rule, f.key) for f in result.findings if f.outcome is Outcome.INFO}
    missing = scenario.expected_info(redis_ns.prefix) - got
    assert not missing, (
        f"{scenario.where}: INFO not reported: "
        f"{sorted((r, template_key(k, redis_ns.prefix)) for r, k in missing)}; reported: "
        f"{sorted((r, template_key(k, redis_ns.prefix)) for r, k in got)}")


def test_scenario_files_lint_clean() -> None:
    problems, notes = check_keyspace_vectors()
    assert not problems, "\n".join(problems)
    assert any("keyspace scenarios" in n for n in notes)


def test_lint_reports_broken_files(tmp_path: Path) -> None:
    root = tmp_path / "v1"
    (root / "keyspaces").mkdir(parents=True)
    shipped = conformance_dir() / "vectors" / "v1" / "keyspaces.schema.json"
    (root / "keyspaces.schema.json").write_text(shipped.read_text(encoding="utf-8"))
    scenario = {
        "description": "a scenario", "now": "2026-11-21T23:44:46Z",
        "keys": {"{P}:lock": {"type": "string", "value": "t"}},
        "expected": {"findings": [{"rule": "LOCK-6", "outcome": "NON-STRICT",
                                   "key": "{P}:lock"}], "conformant": True},
    }
    outside = {**scenario, "description": "a key outside the prefix",
               "keys": {"other:x": {"type": "string", "value": "t"}},
               "expected": {"findings": [], "conformant": True}}
    (root / "keyspaces" / "bad.json").write_text(json.dumps(
        {"description": "broken", "scenarios": [scenario, scenario, outside]}))
    problems, _notes = check_keyspace_vectors(root)
    text = "\n".join(problems)
    assert "LOCK-6 is a MUST rule, so a broken one is FAILED, not NON-STRICT" in text
    assert "does not start with {P}" in text
    assert "ZSET-1 (keyspace) is expected by no scenario" in text
    assert "CLU-1" not in text


def test_known_lists_name_existing_scenarios() -> None:
    descriptions = {s.description for s in SCENARIOS}
    assert set(KNOWN_AUDIT_BUGS) <= descriptions, set(KNOWN_AUDIT_BUGS) - descriptions
    assert set(KNOWN_INFO_GAPS) <= descriptions, set(KNOWN_INFO_GAPS) - descriptions
    with_info = {s.description for s in SCENARIOS if s.info}
    assert set(KNOWN_INFO_GAPS) <= with_info, set(KNOWN_INFO_GAPS) - with_info


CLI_SCENARIO = ("the documented 'zadd redbeat::schedule 0 new-task-name' (docs/design.rst): a "
                "bare name as member")


def test_cli_json_report_for_a_failing_scenario(redis_ns: Namespace) -> None:
    from beatspec.cli import cli

    scenario = next(s for s in SCENARIOS if s.description == CLI_SCENARIO)
    assert not scenario.conformant
    with redis_ns.client() as client:
        load_into(client, redis_ns.prefix, scenario)
    result = CliRunner().invoke(cli, [
        "conformance", "run", "--redis", redis_ns.url, "--prefix", redis_ns.prefix,
        "--format", "json", "--no-color"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["conformant"] is False
    rules = {(f["rule"], f["outcome"], template_key(f["key"], redis_ns.prefix))
             for f in report["findings"]}
    assert ("ZSET-1", "FAILED", "{P}:schedule") in rules
    schema_path = schemas_dir() / "audit-report.json"
    if not schema_path.is_file():
        pytest.skip(f"{schema_path.name} does not exist (yet): the report is not validated")
    _validate(report, schema_path)


def _validate(report: object, schema_path: Path) -> None:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    resources = []
    for path in sorted(schema_path.parent.glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(document, dict) and "$id" in document:
            resources.append((document["$id"], Resource.from_contents(document)))
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema, registry=Registry().with_resources(resources))
    errors = sorted(validator.iter_errors(report), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '/'}: {e.message}" for e in errors[:10])
