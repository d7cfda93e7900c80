"""Locate the data shipped with beatspec: schemas, conformance vectors and the spec.

In an installed wheel they live in ``beatspec/_data/``; in a source checkout (including an
editable install) they are the top-level ``schemas/``, ``conformance/`` and ``spec/`` folders.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

__all__ = ["conformance_dir", "data_root", "schemas_dir", "spec_dir"]


@cache
def data_root() -> Path:
    packaged = Path(__file__).resolve().parent / "_data"
    if (packaged / "schemas").is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "schemas").is_dir():
        return checkout
    raise FileNotFoundError(  # pragma: no cover - a broken install
        "beatspec data not found: expected beatspec/_data/ in the wheel or schemas/ in a checkout"
    )


def schemas_dir(version: int = 1) -> Path:
    return data_root() / "schemas" / f"v{version}"


def conformance_dir() -> Path:
    return data_root() / "conformance"


def spec_dir() -> Path:
    return data_root() / "spec"
