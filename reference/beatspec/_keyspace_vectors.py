"""Load, lint and load into Redis the keyspace scenarios (``conformance/vectors/v1/keyspaces/``).

A scenario is a whole keyspace: every key (name, type, value, TTL) written relative to the
placeholder ``{P}`` for the prefix, the audit's clock, app time zone and profile, and the findings
an audit must report (format: ``conformance/README.md``, "keyspace scenarios";
``conformance/vectors/v1/keyspaces.schema.json``).

:func:`load_into` is the only code in beatspec besides the scheduler that writes to Redis, and it
is test support: it writes a scenario's keys into a test namespace so that the audit can be run on
them; no command of beatspec ever calls it on a user's keyspace.

:func:`check_keyspace_vectors` lints the files: valid against the schema, descriptions unique
across the suite (at most 150 characters, no "should"), key names starting with ``{P}``, rule IDs
defined by the spec with the outcome their level gives, ``conformant`` consistent with the
findings, and every rule of kind ``keyspace`` expected by at least one scenario (except the rules of
:data:`COVERED_ELSEWHERE`).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from jsonschema import Draft202012Validator

from beatspec._suite import case_files, open_schema, read_json, suite_root
from beatspec.findings import Outcome, outcome_for
from beatspec.rules import RULES
from beatspec.zones import is_known_zone

__all__ = [
    "COVERED_ELSEWHERE",
    "PLACEHOLDER",
    "ExpectedFinding",
    "KeyspaceScenario",
    "ScenarioError",
    "StoredKey",
    "check_keyspace_vectors",
    "load_into",
    "load_keyspace_scenarios",
    "substitute",
    "template_key",
]

PLACEHOLDER: Final = "{P}"
SCHEMA_NAME: Final = "keyspaces.schema.json"
SCENARIOS_DIR: Final = "keyspaces"
MAX_DESCRIPTION: Final = 150
KEY_TYPES: Final = ("hash", "zset", "set", "list", "string")
_SHOULD = re.compile(r"\bshould\b", re.IGNORECASE)
_MAX_SCHEMA_ERRORS = 10

#: Keyspace rules that no scenario expects, and where they are shown instead.
COVERED_ELSEWHERE: Final[dict[str, str]] = {
    "CLU-1": "needs a Redis Cluster server: tests/test_audit_connections.py",
    "KEY-1": "has no finding of its own: the audit sees only keys under the prefix, and a key "
    "built with a separator added holds an entry whose name differs from its key suffix (DEF-2, "
    "scenario 'entry key built with a separator added: prefix + ':' + name') or is a member that "
    "is no full key (ZSET-1, the docs/design.rst scenario)",
    "KEY-2": "has no finding of its own: an entry stored at a key other than prefix + its name "
    "is reported under DEF-2 (scenarios 'definition name differs from the key suffix' and 'two "
    "keys whose definitions carry the same name')",
}


class ScenarioError(ValueError):
    """A scenario that cannot be decoded."""


@dataclass(frozen=True, slots=True)
class StoredKey:
    """One key of a scenario, its name written with ``{P}``. Exactly the member of its type is
    set: ``fields`` (hash), ``scores`` (zset), ``members`` (set, list), ``data`` (string)."""

    name: str
    type: str
    fields: Mapping[str, bytes] = field(default_factory=dict)
    scores: Mapping[str, float] = field(default_factory=dict)
    members: tuple[str, ...] = ()
    data: bytes = b""
    ttl_ms: int | None = None


@dataclass(frozen=True, slots=True)
class ExpectedFinding:
    """(rule, outcome, key) of a finding; ``key`` written with ``{P}``, None for the server."""

    rule: str
    outcome: Outcome
    key: str | None


@dataclass(frozen=True, slots=True)
class KeyspaceScenario:
    """One decoded scenario."""

    file: str
    index: int
    description: str
    now: datetime
    app_timezone: str
    profile: str | None
    prefix: str
    server: Mapping[str, str]
    keys: tuple[StoredKey, ...]
    findings: tuple[ExpectedFinding, ...]
    info: tuple[ExpectedFinding, ...]
    conformant: bool
    source: str | None = None
    comment: str | None = None

    @property
    def where(self) -> str:
        return f"{SCENARIOS_DIR}/{self.file} scenario {self.index} ({self.description})"

    def audit_prefix(self, prefix: str) -> str:
        """The prefix to audit with when the namespace's prefix is ``prefix``."""
        return substitute(self.prefix, prefix)

    def expected(self, prefix: str) -> Counter[tuple[str, str, str | None]]:
        """The multiset of (rule, outcome, key) of FAILED and NON-STRICT findings, concrete."""
        return Counter(
            (f.rule, f.outcome.value, None if f.key is None else substitute(f.key, prefix))
            for f in self.findings
        )

    def expected_info(self, prefix: str) -> set[tuple[str, str | None]]:
        return {(f.rule, None if f.key is None else substitute(f.key, prefix)) for f in self.info}


def substitute(text: str, prefix: str) -> str:
    """Replace the placeholder ``{P}`` with the namespace's prefix."""
    return text.replace(PLACEHOLDER, prefix)


def template_key(key: str | None, prefix: str) -> str | None:
    """The inverse of :func:`substitute` for a key: a leading ``prefix`` written as ``{P}``."""
    if key is None or not key.startswith(prefix):
        return key
    return PLACEHOLDER + key[len(prefix):]


# ------------------------------------------------------------------------------ decoding


def _bytes(value: object, what: str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, Mapping) and set(value) == {"base64"} and isinstance(
            value["base64"], str):
        try:
            return base64.b64decode(value["base64"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ScenarioError(f"{what}: base64 does not decode: {exc}") from exc
    raise ScenarioError(f"{what} is neither a string nor {{\"base64\": ...}}")


def _strings(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise ScenarioError(f"{what} is not a non-empty array of strings")
    return tuple(value)


def _stored_key(name: str, raw: object) -> StoredKey:
    what = f"key {name!r}"
    if not name.startswith(PLACEHOLDER):
        raise ScenarioError(f"{what} does not start with {PLACEHOLDER}")
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{what} is not an object")
    kind = raw.get("type")
    value = raw.get("value")
    ttl = raw.get("ttl_ms")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 1):
        raise ScenarioError(f"{what}: ttl_ms is not a positive integer")
    if kind == "hash":
        if not isinstance(value, Mapping) or not value:
            raise ScenarioError(f"{what}: a hash value is a non-empty object")
        fields = {str(k): _bytes(v, f"{what} field {k!r}") for k, v in value.items()}
        return StoredKey(name, "hash", fields=fields, ttl_ms=ttl)
    if kind == "zset":
        if not isinstance(value, Mapping) or not value:
            raise ScenarioError(f"{what}: a zset value is a non-empty object")
        scores: dict[str, float] = {}
        for member, score in value.items():
            if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(
                    score):
                raise ScenarioError(f"{what}: the score of {member!r} is not a finite number")
            scores[str(member)] = float(score)
        return StoredKey(name, "zset", scores=scores, ttl_ms=ttl)
    if kind in ("set", "list"):
        return StoredKey(name, str(kind), members=_strings(value, f"{what} value"), ttl_ms=ttl)
    if kind == "string":
        return StoredKey(name, "string", data=_bytes(value, f"{what} value"), ttl_ms=ttl)
    raise ScenarioError(f"{what}: type {kind!r} is not one of {', '.join(KEY_TYPES)}")


def _finding(raw: object, what: str, *, info: bool) -> ExpectedFinding:
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{what} is not an object")
    rule = raw.get("rule")
    if not isinstance(rule, str) or rule not in RULES:
        raise ScenarioError(f"{what}: rule {rule!r} is not defined by the spec")
    key = raw.get("key")
    if key is not None and (not isinstance(key, str) or not key.startswith(PLACEHOLDER)):
        raise ScenarioError(f"{what}: key {key!r} is neither null nor a key starting with "
                            f"{PLACEHOLDER}")
    if info:
        return ExpectedFinding(rule, Outcome.INFO, key)
    try:
        outcome = Outcome(str(raw.get("outcome")))
    except ValueError as exc:
        raise ScenarioError(f"{what}: outcome {raw.get('outcome')!r} is unknown") from exc
    if outcome is Outcome.INFO:
        raise ScenarioError(f"{what}: INFO findings belong in expected.info")
    if outcome is not outcome_for(rule):
        raise ScenarioError(f"{what}: {rule} is a {RULES[rule].level.value} rule, so a broken "
                            f"one is {outcome_for(rule).value}, not {outcome.value}")
    return ExpectedFinding(rule, outcome, key)


def _instant(text: object) -> datetime:
    if not isinstance(text, str):
        raise ScenarioError("now is not a string")
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ScenarioError(f"now {text!r} is not ISO 8601") from exc
    if value.utcoffset() is None:
        raise ScenarioError(f"now {text!r} has no UTC offset")
    return value


def _decode_scenario(file: str, index: int, raw: object) -> KeyspaceScenario:
    if not isinstance(raw, Mapping):
        raise ScenarioError("the scenario is not an object")
    description = raw.get("description")
    if not isinstance(description, str) or not description:
        raise ScenarioError("the scenario has no description")
    zone = raw.get("app_timezone", "UTC")
    if not isinstance(zone, str) or not is_known_zone(zone):
        raise ScenarioError(f"app_timezone {zone!r} is not a known IANA zone")
    profile = raw.get("profile")
    if profile not in (None, "core", "extended"):
        raise ScenarioError(f"profile {profile!r} is not core or extended")
    prefix = raw.get("prefix", PLACEHOLDER)
    if not isinstance(prefix, str) or not prefix.startswith(PLACEHOLDER):
        raise ScenarioError(f"prefix {prefix!r} does not start with {PLACEHOLDER}")
    server = raw.get("server", {})
    if not isinstance(server, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in server.items()):
        raise ScenarioError("server is not an object of strings")
    raw_keys = raw.get("keys")
    if not isinstance(raw_keys, Mapping):
        raise ScenarioError("keys is not an object")
    keys = tuple(_stored_key(str(name), value) for name, value in raw_keys.items())
    expected = raw.get("expected")
    if not isinstance(expected, Mapping):
        raise ScenarioError("expected is not an object")
    raw_findings = expected.get("findings")
    raw_info = expected.get("info", [])
    if not isinstance(raw_findings, list) or not isinstance(raw_info, list):
        raise ScenarioError("expected.findings and expected.info are arrays")
    findings = tuple(_finding(f, f"expected.findings[{i}]", info=False)
                     for i, f in enumerate(raw_findings))
    info = tuple(_finding(f, f"expected.info[{i}]", info=True) for i, f in enumerate(raw_info))
    conformant = expected.get("conformant")
    if not isinstance(conformant, bool):
        raise ScenarioError("expected.conformant is not a boolean")
    if conformant != (not any(f.outcome is Outcome.FAILED for f in findings)):
        raise ScenarioError(f"expected.conformant is {str(conformant).lower()}, but the "
                            "findings say otherwise (conformant means: no FAILED finding)")
    source, comment = raw.get("source"), raw.get("comment")
    return KeyspaceScenario(
        file=file, index=index, description=description, now=_instant(raw.get("now")),
        app_timezone=zone, profile=None if profile is None else str(profile), prefix=prefix,
        server={str(k): str(v) for k, v in server.items()}, keys=keys, findings=findings,
        info=info, conformant=conformant,
        source=source if isinstance(source, str) else None,
        comment=comment if isinstance(comment, str) else None,
    )


def _raw_scenarios(root: Path) -> Iterator[tuple[str, int, object]]:
    for path in case_files(root, SCENARIOS_DIR):
        data = read_json(path)
        scenarios = data.get("scenarios", []) if isinstance(data, Mapping) else []
        for index, raw in enumerate(scenarios if isinstance(scenarios, list) else []):
            yield path.name, index, raw


def load_keyspace_scenarios(root: Path | None = None) -> list[KeyspaceScenario]:
    """Every scenario of ``<root>/keyspaces/*.json`` (``root`` defaults to the shipped
    ``conformance/vectors/v1``). Raises :class:`ScenarioError` for one that cannot be decoded."""
    out: list[KeyspaceScenario] = []
    for file, index, raw in _raw_scenarios(suite_root(root)):
        try:
            out.append(_decode_scenario(file, index, raw))
        except ScenarioError as exc:
            raise ScenarioError(f"{SCENARIOS_DIR}/{file} scenario {index}: {exc}") from exc
    return out


# ------------------------------------------------------------------------------ loading


def load_into(client: Any, prefix: str, scenario: KeyspaceScenario) -> None:
    """Write the keys of ``scenario`` into Redis through ``client`` (redis-py), ``{P}`` replaced
    by ``prefix``, in one MULTI/EXEC pipeline. Keys of the same names are replaced.

    Test support only: this is the one writer in beatspec besides the scheduler, and it exists
    to load scenarios into a test namespace for the audit to judge.
    """
    pipe = client.pipeline(transaction=True)
    for key in scenario.keys:
        name = substitute(key.name, prefix)
        pipe.delete(name)
        if key.type == "hash":
            pipe.hset(name, mapping=dict(key.fields))
        elif key.type == "zset":
            pipe.zadd(name, {substitute(m, prefix): s for m, s in key.scores.items()})
        elif key.type == "set":
            pipe.sadd(name, *(substitute(m, prefix) for m in key.members))
        elif key.type == "list":
            pipe.rpush(name, *(substitute(m, prefix) for m in key.members))
        else:
            pipe.set(name, key.data)
        if key.ttl_ms is not None:
            pipe.pexpire(name, key.ttl_ms)
    pipe.execute()


# ------------------------------------------------------------------------------ lint


def _schema_problems(validator: Draft202012Validator, data: object, name: str) -> list[str]:
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.absolute_path))
    out = []
    for error in errors[:_MAX_SCHEMA_ERRORS]:
        pointer = "".join(f"/{p}" for p in error.absolute_path) or "/"
        out.append(f"{SCENARIOS_DIR}/{name} {pointer}: {error.message}")
    if len(errors) > _MAX_SCHEMA_ERRORS:
        out.append(f"{SCENARIOS_DIR}/{name}: {len(errors) - _MAX_SCHEMA_ERRORS} more schema "
                   "errors")
    return out


def _other_descriptions(root: Path) -> dict[str, str]:
    """Descriptions of the document and schedule vectors: descriptions are unique suite-wide."""
    out: dict[str, str] = {}
    for folder in ("documents", "schedules"):
        for path in sorted((root / folder).glob("*.json")):
            try:
                data = read_json(path)
            except (OSError, ValueError):
                continue  # linted elsewhere
            cases = data.get("cases") if isinstance(data, Mapping) else None
            for case in cases if isinstance(cases, list) else []:
                if isinstance(case, Mapping) and isinstance(case.get("description"), str):
                    out.setdefault(case["description"], f"{folder}/{path.name}")
    return out


def coverage(scenarios: list[KeyspaceScenario]) -> dict[str, int]:
    """For every keyspace rule of the spec, how many scenarios expect it (finding or info)."""
    counts = {r.id: 0 for r in RULES.values() if r.kind == "keyspace"}
    for scenario in scenarios:
        for rule in {f.rule for f in (*scenario.findings, *scenario.info)}:
            if rule in counts:
                counts[rule] += 1
    return counts


def check_keyspace_vectors(root: Path | None = None) -> tuple[list[str], list[str]]:
    """Lint the keyspace scenarios under ``root`` (default: the shipped
    ``conformance/vectors/v1``). Returns ``(problems, notes)``; no problems means every file is
    sound and every keyspace rule is expected by a scenario or listed in COVERED_ELSEWHERE.
    Whether the audit reproduces the scenarios needs Redis: tests/test_keyspace_scenarios.py."""
    base = suite_root(root)
    problems: list[str] = []
    notes: list[str] = []
    validator = open_schema(base, SCHEMA_NAME)
    if isinstance(validator, str):
        return [validator], notes
    files = case_files(base, SCENARIOS_DIR)
    if not files:
        return [f"{SCENARIOS_DIR}/: no scenario files"], notes
    seen = _other_descriptions(base)
    per_file: Counter[str] = Counter()
    scenarios: list[KeyspaceScenario] = []
    for path in files:
        try:
            data = read_json(path)
        except (OSError, ValueError) as exc:
            problems.append(f"{SCENARIOS_DIR}/{path.name}: not JSON: {exc}")
            continue
        problems += _schema_problems(validator, data, path.name)
        raw_scenarios = data.get("scenarios") if isinstance(data, Mapping) else None
        for index, raw in enumerate(raw_scenarios if isinstance(raw_scenarios, list) else []):
            try:
                scenario = _decode_scenario(path.name, index, raw)
            except ScenarioError as exc:
                problems.append(f"{SCENARIOS_DIR}/{path.name} scenario {index}: {exc}")
                continue
            where, text = scenario.where, scenario.description
            if text in seen:
                problems.append(f"{where}: description also used in {seen[text]}")
            else:
                seen[text] = f"{SCENARIOS_DIR}/{path.name}"
            if len(text) > MAX_DESCRIPTION:
                problems.append(f"{where}: description longer than {MAX_DESCRIPTION} characters")
            if _SHOULD.search(text):
                problems.append(f"{where}: description says 'should'; state what it is")
            per_file[path.name] += 1
            scenarios.append(scenario)
    counts = coverage(scenarios)
    for rule, count in counts.items():
        if rule in COVERED_ELSEWHERE:
            if count:
                notes.append(f"{rule} is listed in COVERED_ELSEWHERE but {count} scenarios "
                             "expect it")
            continue
        if not count:
            problems.append(f"{rule} (keyspace) is expected by no scenario")
    for rule in COVERED_ELSEWHERE:
        if rule not in counts:
            problems.append(f"COVERED_ELSEWHERE names {rule}, which is no keyspace rule")
    total = sum(per_file.values())
    notes.append(f"{total} keyspace scenarios in {len(per_file)} files")
    notes += [f"  {name}: {count}" for name, count in sorted(per_file.items())]
    notes.append("keyspace rules: " + ", ".join(
        f"{rule} {'elsewhere' if rule in COVERED_ELSEWHERE else count}"
        for rule, count in counts.items()))
    other = Counter(f.rule for s in scenarios for f in s.findings if RULES[f.rule].kind !=
                    "keyspace")
    notes.append("other rules expected: " + ", ".join(
        f"{rule} {count}" for rule, count in sorted(other.items())))
    return problems, notes
