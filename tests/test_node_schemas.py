"""The JSON Schemas import unchanged into another language: JavaScript (ajv) and TypeScript.

* ajv 8 (draft 2020-12, strict mode) compiles every ``schemas/v1/*.json`` as published, and its
  verdicts equal python-jsonschema's on every document of the conformance vectors, every schema
  example and a set of hand-written edge instances (regex ``$`` before a final newline, ``2024.0``
  as an integer, booleans where numbers are expected, unions).
* json-schema-to-typescript generates declarations from the same files, offline, and
  ``tests/node/usage.ts`` type-checks against them under ``tsc --strict``.

Needs Node.js and npm (``tests/node/package-lock.json`` pins the JavaScript side; ``npm ci`` is the
only network access). Without them the test is skipped, unless ``BEATSPEC_REQUIRE_NODE=1`` (CI):
then it fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from beatspec.schemas import schema, schema_names, validator

ROOT = Path(__file__).resolve().parents[1]
NODE_DIR = ROOT / "tests" / "node"
SCHEMAS_DIR = ROOT / "schemas" / "v1"
DOCUMENT_VECTORS = ROOT / "conformance" / "vectors" / "v1" / "documents"

pytestmark = pytest.mark.node

# Which schemas a document vector is an instance of, by its kind (and profile).
SCHEMAS_BY_KIND: dict[str, tuple[str, ...]] = {
    "definition": ("definition.json", "definition.strict.json"),
    "meta": ("meta.json", "meta.strict.json"),
    "entry": ("entry.json", "entry.strict.json"),
    "extensions": ("extensions.json",),
}
EXTENDED_DEFINITION_SCHEMAS = ("definition.extended.json", "definition.extended.strict.json")

# JavaScript numbers are IEEE doubles: an integer beyond 2**53 - 1 reaches ajv already rounded,
# so its verdict near a bound (e.g. meta's total_run_count <= 2**63 - 1) says nothing about the
# schema. Such instances are left out of the comparison (and listed).
JS_MAX_SAFE_INTEGER = 2**53 - 1

NPM_CI_TIMEOUT = 600
NODE_TIMEOUT = 180

Instance = dict[str, Any]  # {"id": str, "schema": str, "instance": JSON value}


# -- Node.js tooling --------------------------------------------------------------------------


def _run(args: list[str], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
        "NO_COLOR": "1",
    }
    try:
        return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                              encoding="utf-8", timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{' '.join(args)} timed out after {timeout}s")


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return (f"exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n"
            f"--- stderr\n{proc.stderr[-4000:]}")


def _needs_npm_ci() -> bool:
    """node_modules is absent, or older than package-lock.json."""
    modules = NODE_DIR / "node_modules"
    if not modules.is_dir():
        return True
    # npm writes node_modules/.package-lock.json on every install: the install's timestamp.
    stamp = modules / ".package-lock.json"
    installed = (stamp if stamp.exists() else modules).stat().st_mtime
    return installed < (NODE_DIR / "package-lock.json").stat().st_mtime


@pytest.fixture(scope="session")
def node_tools() -> dict[str, str]:
    """node, npm and npx, with tests/node/node_modules installed (npm ci, at most once)."""
    tools = {name: shutil.which(name) for name in ("node", "npm", "npx")}
    missing = sorted(name for name, path in tools.items() if path is None)
    if missing:
        message = "Node.js/npm not found: schema import test skipped"
        if os.environ.get("BEATSPEC_REQUIRE_NODE") == "1":
            pytest.fail(f"{message} (missing: {', '.join(missing)}), "
                        "but BEATSPEC_REQUIRE_NODE=1 requires it")
        pytest.skip(message)
    found = {name: path for name, path in tools.items() if path is not None}
    if _needs_npm_ci():
        proc = _run([found["npm"], "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                    timeout=NPM_CI_TIMEOUT)
        assert proc.returncode == 0, "npm ci failed in tests/node\n" + _output(proc)
    return found


# -- instances --------------------------------------------------------------------------------


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _load_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh, parse_constant=_no_constants)


def _decode_entry(document: Any) -> Any:
    """An entry vector's members are JSON values or their JSON text: decode the text ones."""
    if not isinstance(document, dict):
        return document
    decoded: dict[str, Any] = {}
    for key, value in document.items():
        decoded[key] = value
        if isinstance(value, str):
            # Not JSON text: stays a string, which the schemas reject.
            with contextlib.suppress(ValueError):
                decoded[key] = json.loads(value, parse_constant=_no_constants)
    return decoded


def vector_instances() -> list[Instance]:
    instances: list[Instance] = []
    for path in sorted(DOCUMENT_VECTORS.glob("*.json")):
        group = _load_json(path)
        for index, case in enumerate(group.get("cases", [])):
            if "document" not in case:
                continue  # document_text / document_base64: not a JSON value, not an instance
            kind = case.get("kind")
            assert kind in SCHEMAS_BY_KIND, f"{path.name} case {index}: unknown kind {kind!r}"
            document = case["document"]
            if kind == "entry":
                document = _decode_entry(document)
            names = SCHEMAS_BY_KIND[kind]
            if kind == "definition" and case.get("profile", "core") == "extended":
                names = EXTENDED_DEFINITION_SCHEMAS
            for name in names:
                instances.append({
                    "id": f"vector {path.name}[{index}] {case.get('description', '')} | {name}",
                    "schema": name,
                    "instance": document,
                })
    return instances


def example_instances() -> list[Instance]:
    instances: list[Instance] = []
    for name in schema_names():
        examples = schema(name).get("examples", [])
        assert isinstance(examples, list), f"{name}: 'examples' must be an array"
        for index, example in enumerate(examples):
            instances.append({"id": f"example {name}[{index}]", "schema": name,
                              "instance": example})
    return instances


DATETIME_STRICT = {"__type__": "datetime", "year": 2024, "month": 3, "day": 31, "hour": 2,
                   "minute": 30, "second": 0, "microsecond": 0, "timezone": "Europe/Paris"}
CRONTAB_STRICT = {"__type__": "crontab", "minute": "*/15", "hour": "9-17",
                  "day_of_week": "mon-fri", "day_of_month": "*", "month_of_year": "*"}
RRULE_STRICT = {"__type__": "rrule", "freq": 1, "dtstart": 1704067200, "dtstart_tz": 0,
                "byweekday": [{"__type__": "weekday", "wkday": 0, "n": 1},
                              {"__type__": "weekday", "wkday": 4, "n": -1}]}
INTERVAL = {"__type__": "interval", "every": 60, "relative": False}
DEFINITION_STRICT = {"name": "n", "task": "t", "args": [], "kwargs": {}, "options": {},
                     "schedule": INTERVAL, "enabled": True}
META_STRICT = {"last_run_at": DATETIME_STRICT, "total_run_count": 3}


def _with(base: dict[str, Any], **members: Any) -> dict[str, Any]:
    return {**base, **members}


def _crontab(**fields: Any) -> dict[str, Any]:
    return {"__type__": "crontab", **fields}


NOT_OBJECTS: tuple[Any, ...] = (None, [], "{}", 0)

# (schema, instance, expected verdict): python-jsonschema must give the expected verdict, and ajv
# must agree with python-jsonschema.
EDGE_CASES: list[tuple[str, Any, bool]] = [
    # Regex anchors: Python's `$` also matches before a final newline; the schemas use (?!\n)$.
    ("crontab.json", _crontab(minute="5"), True),
    ("crontab.json", _crontab(minute="5\n"), False),
    ("crontab.json", _crontab(minute="\n5"), False),
    ("crontab.json", _crontab(minute="5 "), False),
    ("crontab.json", _crontab(hour="1,2\n"), False),
    ("crontab.strict.json", _with(CRONTAB_STRICT, day_of_week="mon-fri\n"), False),
    ("crontab.strict.json", _with(CRONTAB_STRICT, month_of_year="JAN-dec/2"), True),
    ("crontab.strict.json", _with(CRONTAB_STRICT, minute="0-59/5,7"), True),
    ("crontab.strict.json", _with(CRONTAB_STRICT, minute="60"), False),
    ("crontab.strict.json", _with(CRONTAB_STRICT, minute=""), False),
    ("crontab.strict.json", _with(CRONTAB_STRICT, minute="\uff15"), False),  # fullwidth 5
    ("crontab.strict.json", CRONTAB_STRICT, True),
    ("datetime.json", _with(DATETIME_STRICT, timezone="Europe/Paris\n"), False),
    ("datetime.strict.json", _with(DATETIME_STRICT, timezone="UTC"), True),
    ("extensions.json", {"timezone": "UTC\n"}, False),
    ("rrule.json", _with(RRULE_STRICT, freq="daily"), True),
    ("rrule.json", _with(RRULE_STRICT, freq="DAILY\n"), False),
    # Crontab fields as Python values: integers and non-empty integer arrays (type unions).
    ("crontab.json", _crontab(minute=5), True),
    ("crontab.json", _crontab(minute=60), False),
    ("crontab.json", _crontab(minute=5.0), True),  # 5.0 is an integer in JSON Schema
    ("crontab.json", _crontab(minute=5.5), False),
    ("crontab.json", _crontab(minute=True), False),
    ("crontab.json", _crontab(minute=[0, 30]), True),
    ("crontab.json", _crontab(minute=[]), False),
    ("crontab.json", _crontab(minute=[True]), False),
    ("crontab.json", _crontab(minute=[60]), False),
    ("crontab.json", _crontab(minute=None), False),
    ("crontab.json", _crontab(second="0"), False),
    ("crontab.strict.json", _with(CRONTAB_STRICT, minute=5), False),
    # 2024.0 as a year; booleans where integers/numbers are expected.
    ("datetime.strict.json", _with(DATETIME_STRICT, year=2024.0), True),
    ("datetime.strict.json", _with(DATETIME_STRICT, year=2024.5), False),
    ("datetime.strict.json", _with(DATETIME_STRICT, year=True), False),
    ("datetime.strict.json", _with(DATETIME_STRICT, day=32), False),
    ("datetime.strict.json", _with(DATETIME_STRICT, fold=1), True),
    ("datetime.strict.json", _with(DATETIME_STRICT, fold=1.0), True),
    ("datetime.strict.json", _with(DATETIME_STRICT, fold=True), False),
    ("datetime.strict.json", _with(DATETIME_STRICT, fold=2), False),
    ("datetime.strict.json", _with(DATETIME_STRICT, timezone=3600), False),
    ("datetime.json", _with(DATETIME_STRICT, timezone=3600), True),
    ("datetime.json", _with(DATETIME_STRICT, timezone=-86399.5), True),
    ("datetime.json", _with(DATETIME_STRICT, timezone=86400), False),
    ("datetime.json", _with(DATETIME_STRICT, timezone=True), False),
    ("datetime.json", {"__type__": "datetime", "year": 1, "month": 1, "day": 1}, True),
    ("datetime.json", {"__type__": "datetime", "year": 10000, "month": 1, "day": 1}, False),
    ("rrule.strict.json", RRULE_STRICT, True),
    ("rrule.strict.json", _with(RRULE_STRICT, dtstart_tz=0.0), True),
    ("rrule.strict.json", _with(RRULE_STRICT, dtstart_tz=False), False),
    ("rrule.strict.json", _with(RRULE_STRICT, freq="MONTHLY"), False),
    ("rrule.strict.json", _with(RRULE_STRICT, freq=True), False),
    ("rrule.strict.json", _with(RRULE_STRICT, count=0), False),
    ("rrule.strict.json", _with(RRULE_STRICT, count=None, until=None, wkst=None), True),
    ("rrule.strict.json", _with(RRULE_STRICT, dtstart=-62135596801), False),
    ("rrule.strict.json", _with(RRULE_STRICT, dtstart=253402300799), True),
    ("meta.strict.json", _with(META_STRICT, total_run_count=3.0), True),
    ("meta.strict.json", _with(META_STRICT, total_run_count=False), False),
    ("meta.strict.json", _with(META_STRICT, total_run_count=JS_MAX_SAFE_INTEGER), True),
    ("meta.strict.json", _with(META_STRICT, total_run_count=-1), False),
    ("meta.json", {"last_run_at": None}, True),
    ("meta.json", {}, False),
    ("meta.strict.json", {"last_run_at": None}, True),
    # Unions: oneOf over schedules, weekday objects or integers, nulls.
    ("rrule.json", _with(RRULE_STRICT, byweekday=[0, {"__type__": "weekday", "wkday": 6}]), True),
    ("rrule.json", _with(RRULE_STRICT, byweekday={"__type__": "weekday", "wkday": 2, "n": None}),
     True),
    ("rrule.json", _with(RRULE_STRICT, byweekday=3), True),
    ("rrule.json", _with(RRULE_STRICT, byweekday=7), False),
    ("rrule.json", _with(RRULE_STRICT, byweekday=[]), False),
    ("rrule.json", _with(RRULE_STRICT, byweekday=[True]), False),
    ("rrule.json", _with(RRULE_STRICT, byweekday=None), True),
    ("rrule.json", _with(RRULE_STRICT, wkst={"__type__": "weekday", "wkday": 0}), True),
    ("rrule.json", _with(RRULE_STRICT, bymonth=[1, 13]), False),
    ("rrule.json", _with(RRULE_STRICT, bysetpos=-1, byhour=[9, 17]), True),
    ("rrule.json", _with(RRULE_STRICT, dtstart_tz=-1440), False),
    ("weekday.json", {"__type__": "weekday", "wkday": 7}, False),
    ("weekday.json", {"__type__": "weekday", "wkday": 0, "n": 0}, True),  # WDAY-1 is procedural
    ("definition.strict.json", DEFINITION_STRICT, True),
    ("definition.strict.json", _with(DEFINITION_STRICT, schedule=CRONTAB_STRICT), True),
    ("definition.strict.json", _with(DEFINITION_STRICT, schedule=RRULE_STRICT), True),
    ("definition.strict.json", _with(DEFINITION_STRICT, schedule=60), False),
    ("definition.strict.json", _with(DEFINITION_STRICT, schedule=_with(INTERVAL, every=0.5)),
     False),
    ("definition.strict.json", _with(DEFINITION_STRICT, name="\U0001f600"), True),
    ("definition.strict.json", _with(DEFINITION_STRICT, name=""), False),
    ("definition.strict.json", _with(DEFINITION_STRICT, relative=True), False),
    ("definition.json", {"name": "n", "task": "t", "schedule": 60}, True),
    ("definition.json", {"name": "n", "task": "t", "schedule": 60.5, "relative": True}, True),
    ("definition.json", {"name": "n", "task": "t", "schedule": 0}, False),
    ("definition.json", {"name": "n", "task": "t", "schedule": True}, False),
    ("definition.json", {"name": "n", "task": "t", "schedule": "60"}, False),
    ("definition.json", {"name": "n", "task": "t", "schedule": {"__type__": "interval",
                                                                "every": 60}}, False),
    ("definition.json", {"name": "n", "task": "t", "schedule": _with(INTERVAL, extra=1)}, True),
    ("definition.json", {"name": "n", "task": "t", "schedule": _crontab(minute=[0])}, True),
    ("definition.json", {"name": "n", "task": "t", "schedule": INTERVAL, "args": None,
                         "kwargs": None, "options": None}, True),
    ("definition.json", {"name": "n", "task": "t", "schedule": INTERVAL, "kwargs": []}, False),
    ("definition.json", {"name": "n", "task": "t", "schedule": INTERVAL,
                         "options": {"task_id": "x"}}, False),
    ("definition.json", {"name": "n", "task": "t", "schedule": INTERVAL,
                         "options": {"x-custom": 1, "priority": 255}}, True),
    ("definition.json", {"name": "n", "task": "t", "schedule": INTERVAL,
                         "options": {"priority": 256}}, False),
    ("definition.json", {"name": "n", "task": "t", "schedule": INTERVAL,
                         "options": {"expires": DATETIME_STRICT, "eta": DATETIME_STRICT}}, True),
    ("definition.json", {"name": "n", "task": "t", "schedule": INTERVAL,
                         "options": {"expires": 0}}, False),
    ("definition.json", {"name": "n", "task": "t",
                         "schedule": {"__type__": "solar", "event": "sunset", "lat": 0,
                                      "lon": 0}}, False),
    ("definition.extended.json", {"name": "n", "task": "t",
                                  "schedule": {"__type__": "solar", "event": "sunset",
                                               "lat": 90.0, "lon": -180}}, True),
    ("definition.extended.json", {"name": "n", "task": "t",
                                  "schedule": {"__type__": "solar", "event": "noon", "lat": 0,
                                               "lon": 0}}, False),
    ("options.strict.json", {"priority": 9, "serializer": "json", "delivery_mode": 2}, True),
    ("options.strict.json", {"priority": 10}, False),
    ("options.strict.json", {"x-custom": 1}, False),
    ("extensions.json", {"timezone": "America/New_York", "misfire": {"policy": "skip"},
                         "jitter": 3600, "delete_after_last_run": True, "x-acme": {}}, True),
    ("extensions.json", {"misfire": {"policy": "sometimes"}}, False),
    ("extensions.json", {"misfire": {"grace": 1}}, False),
    ("extensions.json", {"jitter": 3600.5}, False),
    ("entry.json", {"definition": {"name": "n", "task": "t", "schedule": 60},
                    "meta": {"last_run_at": None}, "other": 1}, True),
    ("entry.strict.json", {"definition": DEFINITION_STRICT, "meta": META_STRICT,
                           "extensions": {"jitter": 1}}, True),
    ("entry.strict.json", {"definition": DEFINITION_STRICT, "meta": META_STRICT, "other": 1},
     False),
    # Not objects at all.
    *((name, not_an_object, False)
      for name in ("definition.json", "meta.json", "extensions.json")
      for not_an_object in NOT_OBJECTS),
]


def edge_instances() -> list[Instance]:
    return [{"id": f"edge[{index}] {name}", "schema": name, "instance": instance}
            for index, (name, instance, _) in enumerate(EDGE_CASES)]


def _js_safe(value: Any) -> bool:
    """Every number in value reaches JavaScript unchanged (no integer beyond 2**53 - 1)."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return abs(value) <= JS_MAX_SAFE_INTEGER
    if isinstance(value, list):
        return all(_js_safe(item) for item in value)
    if isinstance(value, dict):
        return all(_js_safe(item) for item in value.values())
    return True


def _python_verdicts(instances: list[Instance]) -> list[dict[str, Any]]:
    return [{"id": item["id"], "schema": item["schema"],
             "valid": validator(item["schema"]).is_valid(item["instance"])}
            for item in instances]


def _ajv_verdicts(node: str, instances: list[Instance], tmp_path: Path) -> list[dict[str, Any]]:
    infile = tmp_path / "instances.json"
    infile.write_text(json.dumps(instances, allow_nan=False), encoding="utf-8")
    proc = _run([node, str(NODE_DIR / "check-schemas.mjs"), "--schemas", str(SCHEMAS_DIR),
                 str(infile)], cwd=NODE_DIR, timeout=NODE_TIMEOUT)
    assert proc.returncode == 0, "ajv could not import the schemas\n" + _output(proc)
    verdicts: list[dict[str, Any]] = json.loads(proc.stdout)
    return verdicts


# -- tests ------------------------------------------------------------------------------------


def test_edge_cases_are_well_formed() -> None:
    ids = [item["id"] for item in edge_instances()]
    assert len(ids) == len(set(ids))
    names = set(schema_names())
    assert {name for name, _, _ in EDGE_CASES} <= names
    wrong = [f"{name}: {json.dumps(instance)} expected {expected}"
             for name, instance, expected in EDGE_CASES
             if validator(name).is_valid(instance) is not expected]
    assert not wrong, "python-jsonschema verdicts differ from the expected ones:\n" + "\n".join(
        wrong)


def test_ajv_and_python_jsonschema_agree(node_tools: dict[str, str], tmp_path: Path) -> None:
    sources = {"document vectors": vector_instances(), "schema examples": example_instances(),
               "hand-written edge instances": edge_instances()}
    everything = [item for items in sources.values() for item in items]
    duplicates = [key for key, count in Counter(item["id"] for item in everything).items()
                  if count > 1]
    assert not duplicates, f"instance ids are not unique: {duplicates[:5]}"

    unsafe = [item for item in everything if not _js_safe(item["instance"])]
    instances = [item for item in everything if _js_safe(item["instance"])]
    assert instances

    python = _python_verdicts(instances)
    ajv = _ajv_verdicts(node_tools["node"], instances, tmp_path)

    assert [(v["id"], v["schema"]) for v in ajv] == [(v["id"], v["schema"]) for v in python]
    disagreements = [
        f"{p['id']}: python-jsonschema {'valid' if p['valid'] else 'invalid'}, "
        f"ajv {'valid' if a['valid'] else 'invalid'}\n    {json.dumps(item['instance'])[:500]}"
        for p, a, item in zip(python, ajv, instances, strict=True) if p["valid"] != a["valid"]
    ]
    assert not disagreements, (f"ajv and python-jsonschema disagree on {len(disagreements)} of "
                               f"{len(instances)} instances:\n" + "\n".join(disagreements))

    counts = ", ".join(f"{len(items)} {source}" for source, items in sources.items())
    print(f"\najv and python-jsonschema agree on {len(instances)} instances ({counts}"
          f"{f'; {len(unsafe)} left out: integers beyond 2**53 - 1' if unsafe else ''})")
    for item in unsafe:
        print(f"  left out (not representable as a JavaScript number): {item['id']}")


def test_typescript_types_compile(node_tools: dict[str, str]) -> None:
    gen = _run([node_tools["node"], str(NODE_DIR / "gen-types.mjs"), "--schemas",
                str(SCHEMAS_DIR)], cwd=NODE_DIR, timeout=NODE_TIMEOUT)
    assert gen.returncode == 0, "json-schema-to-typescript failed\n" + _output(gen)
    generated = sorted(p.name for p in (NODE_DIR / "types").glob("*.d.ts"))
    assert generated == sorted(name.removesuffix(".json") + ".d.ts" for name in schema_names())

    tsc = _run([node_tools["npx"], "--no", "--", "tsc", "--strict", "--noEmit", "-p", "."],
               cwd=NODE_DIR, timeout=NODE_TIMEOUT)
    assert tsc.returncode == 0, "tsc --strict rejected the generated types\n" + _output(tsc)
    print(f"\ntsc --strict accepts usage.ts against {len(generated)} generated declaration files")


@pytest.mark.parametrize("sloppy", [
    {"type": "string", "minimum": 1},  # a keyword that cannot apply to the type (strictTypes)
    {"properties": {"a": {"type": "string"}}},  # no "type": "object" (strictTypes)
    {"type": "object", "required": ["a"]},  # required but not in properties (strictRequired)
    {"type": "string", "format": "beatspec-zone"},  # unknown format
    {"type": "string", "x-note": 1},  # unknown keyword (strictSchema)
])
def test_ajv_strict_mode_is_fatal(node_tools: dict[str, str], tmp_path: Path,
                                  sloppy: dict[str, Any]) -> None:
    """check-schemas.mjs fails, rather than logs, whatever ajv's strict mode complains about."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    sloppy = {"$schema": "https://json-schema.org/draft/2020-12/schema",
              "$id": "https://beatspec.dev/schemas/v1/sloppy.json", **sloppy}
    (schemas / "sloppy.json").write_text(json.dumps(sloppy), encoding="utf-8")
    (tmp_path / "none.json").write_text("[]", encoding="utf-8")
    proc = _run([node_tools["node"], str(NODE_DIR / "check-schemas.mjs"), "--schemas",
                 str(schemas), str(tmp_path / "none.json")], cwd=NODE_DIR, timeout=NODE_TIMEOUT)
    assert proc.returncode == 1, _output(proc)
    assert "sloppy.json" in proc.stderr
