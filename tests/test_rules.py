"""Rule IDs are the spine: spec, catalogue, schemas and code must name the same rules."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from beatspec.rules import RULES

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "spec" / "beatspec-1.md"
DEFINITION = re.compile(r"\*\*\[([A-Z]+-\d+)\]\*\* \*\((MUST|SHOULD|MAY), ([a-z]+)\)\*")
MENTION = re.compile(r"\b([A-Z]{2,6}-\d{1,3})\b")
PREFIXES = {rid.split("-")[0] for rid in RULES}


def _mentions(text: str) -> set[str]:
    return {m for m in MENTION.findall(text) if m.split("-")[0] in PREFIXES}


def test_spec_defines_exactly_the_catalogue() -> None:
    found = DEFINITION.findall(SPEC.read_text(encoding="utf-8"))
    ids = [rid for rid, _, _ in found]
    assert len(ids) == len(set(ids)), "a rule is defined twice in the spec"
    assert set(ids) == set(RULES), (
        f"missing from spec: {sorted(set(RULES) - set(ids))}; "
        f"not in catalogue: {sorted(set(ids) - set(RULES))}"
    )
    for rid, level, kind in found:
        assert (RULES[rid].level.value, RULES[rid].kind) == (level, kind), rid


def test_spec_mentions_only_defined_rules() -> None:
    unknown = _mentions(SPEC.read_text(encoding="utf-8")) - set(RULES)
    assert not unknown, f"the spec mentions undefined rules: {sorted(unknown)}"


@pytest.mark.parametrize(
    "folder", ["reference/beatspec", "schemas/v1", "tests"], ids=lambda f: f.replace("/", ".")
)
def test_code_and_schemas_name_only_defined_rules(folder: str) -> None:
    unknown: dict[str, set[str]] = {}
    for path in (ROOT / folder).rglob("*"):
        if path.suffix not in {".py", ".json", ".mjs", ".ts"} or "node_modules" in path.parts:
            continue
        bad = _mentions(path.read_text(encoding="utf-8")) - set(RULES)
        if bad:
            unknown[str(path.relative_to(ROOT))] = bad
    assert not unknown, f"undefined rule IDs: {unknown}"


def test_schemas_are_in_the_portable_subset() -> None:
    forbidden = {
        "$dynamicRef", "$dynamicAnchor", "unevaluatedProperties", "unevaluatedItems", "if",
        "then", "else", "dependentSchemas", "dependentRequired", "prefixItems",
        "patternProperties", "not", "format", "allOf", "anyOf",
    }

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                extra = set(node) - {"$ref", "description"}
                assert not extra, f"{where}: keywords beside $ref: {extra}"
            keywords = set(node) if not where.endswith("/properties") else set()
            assert not keywords & forbidden, f"{where}: {keywords & forbidden}"
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    for path in sorted((ROOT / "schemas" / "v1").glob("*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"] == f"https://beatspec.dev/schemas/v1/{path.name}"
        walk(schema, path.name)
