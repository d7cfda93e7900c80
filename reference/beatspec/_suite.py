"""What the three vector suites share: where they live, how their files are read and checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from beatspec._data import conformance_dir

__all__ = ["case_files", "open_schema", "read_json", "suite_root"]


def suite_root(root: Path | None) -> Path:
    """The vectors folder: ``root``, else the shipped ``conformance/vectors/v1``."""
    return conformance_dir() / "vectors" / "v1" if root is None else Path(root)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate member {key!r}")
        out[key] = value
    return out


def read_json(path: Path) -> Any:
    """A suite file's JSON; a duplicate member name is an error (it would hide a case member)."""
    return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicates)


def case_files(root: Path, folder: str) -> list[Path]:
    return sorted((root / folder).glob("*.json"))


def open_schema(root: Path, name: str) -> Draft202012Validator | str:
    """The validator of a suite's file schema, or a problem line saying why there is none."""
    path = root / name
    if not path.is_file():
        return f"{name}: missing"
    schema = read_json(path)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)
