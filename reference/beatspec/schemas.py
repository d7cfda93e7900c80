"""The JSON Schemas of ``schemas/v1``, loaded into a :mod:`referencing` registry.

>>> from beatspec.schemas import validator
>>> validator("definition.strict.json").is_valid({"name": "x"})
False
"""

from __future__ import annotations

import json
from functools import cache

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from beatspec._data import schemas_dir

__all__ = ["BASE_URI", "registry", "schema", "schema_names", "validator"]

BASE_URI = "https://beatspec.dev/schemas/v1/"


@cache
def schema_names() -> tuple[str, ...]:
    return tuple(sorted(p.name for p in schemas_dir().glob("*.json")))


@cache
def schema(name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((schemas_dir() / name).read_text(encoding="utf-8"))
    return loaded


@cache
def registry() -> Registry:
    resources = [
        (BASE_URI + name, Resource.from_contents(schema(name), default_specification=DRAFT202012))
        for name in schema_names()
    ]
    return Registry().with_resources(resources)


@cache
def validator(name: str) -> Draft202012Validator:
    """A validator for ``schemas/v1/<name>`` that resolves ``$ref`` within the set, offline."""
    return Draft202012Validator(schema(name), registry=registry())
