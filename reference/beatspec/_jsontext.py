"""Parse the JSON text of a hash field safely: every defect becomes a finding (JSON-1..JSON-7).

Python's ``json`` accepts ``NaN``, duplicate member names, integers of any length (up to a
``ValueError`` past 4300 digits) and recurses until ``RecursionError``; RedBeat inherits all of it.
This parser reports each of those as the rule it breaks instead of crashing or guessing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Final

from beatspec._collector import Collector, describe

__all__ = ["MAX_DEPTH", "MAX_FIELD_BYTES", "MISSING", "make_dumps", "parse_json_text"]

MAX_DEPTH: Final = 64
MAX_FIELD_BYTES: Final = 1024 * 1024
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_MAX_INT_DIGITS: Final = 19


def make_dumps(encoder: json.JSONEncoder | None = None) -> Callable[[Any], str]:
    """``json.dumps(value, cls=type(encoder))`` with default settings, without building the C
    encoder on every call (about three times faster for small values). It does not check for
    circular structures: give it trees. Plain ``json.dumps`` where the C encoder is missing or
    gives a different text for a probe value."""
    encoder = encoder or json.JSONEncoder()

    def slow(value: Any) -> str:
        return json.dumps(value, cls=type(encoder))

    make = getattr(json.encoder, "c_make_encoder", None)
    try:
        # what JSONEncoder.iterencode passes for the default settings, without markers
        encode = make(None, encoder.default,  # type: ignore[misc]
                      json.encoder.encode_basestring_ascii, None, ": ", ", ", False, False, True)

        def fast(value: Any) -> str:
            return "".join(encode(value, 0))

        probe = [1, -2.5, 1e300, 2**53, "\u00e9\ud800\x00\"\\", {"a": None, "b": [True, {}]}, []]
        if fast(probe) == slow(probe) and fast({}) == "{}":
            return fast
    except Exception:  # pragma: no cover - no _json, or another signature  # noqa: BLE001
        pass
    return slow  # pragma: no cover


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


class _Reject(Exception):
    def __init__(self, rule: str, found: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.rule, self.found, self.message, self.hint = rule, found, message, hint


def _nesting_depth(text: str) -> int:
    """Deepest ``[``/``{`` nesting outside strings (a linear scan, no recursion)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _pairs(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for name, value in pairs:
        if name in out:
            raise _Reject(
                "JSON-3",
                describe(name),
                f"duplicate member name {describe(name)}; readers disagree on which one wins",
                "write each member name once per object",
            )
        out[name] = value
    return out


def _constant(name: str) -> float:
    raise _Reject(
        "JSON-2",
        name,
        f"{name} is not JSON (RFC 8259); Go, Java and JavaScript parsers reject it",
        "write a finite number or null",
    )


def _int(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > _MAX_INT_DIGITS:
        raise _Reject(
            "JSON-4",
            text[:24] + ("..." if len(text) > 24 else ""),
            f"an integer of {len(digits)} digits does not fit in 64 bits",
            "keep integers within -2**63 .. 2**63-1 (and within +-(2**53-1) for JavaScript)",
        )
    value = int(text)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise _Reject(
            "JSON-4",
            text,
            "integer does not fit in 64 bits",
            "keep integers within -2**63 .. 2**63-1",
        )
    return value


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Reject(
            "JSON-4",
            text[:24],
            "number is too large for an IEEE 754 double",
            "write a number whose magnitude is below 1.7976931348623157e308",
        )
    return value


def parse_json_text(data: bytes | str, out: Collector) -> object:
    """Decode one field's JSON text: the value, or ``MISSING`` after a FAILED finding."""
    if isinstance(data, bytes):
        if len(data) > MAX_FIELD_BYTES:
            out.add(
                "JSON-7",
                f"{len(data)} bytes",
                "the field value is larger than 1 MiB",
                "keep definitions small: pass large payloads by reference (an ID the task loads)",
                raw=True,
            )
            return MISSING
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            out.add(
                "JSON-1",
                f"byte 0x{data[exc.start]:02x} at offset {exc.start}",
                "the field value is not valid UTF-8",
                "encode the JSON text as UTF-8 (or escape non-ASCII characters as \\uXXXX)",
                raw=True,
            )
            return MISSING
    else:
        text = data
        too_big = len(text) > MAX_FIELD_BYTES
        if too_big and len(text.encode("utf-8", "surrogatepass")) > MAX_FIELD_BYTES:
            out.add(
                "JSON-7",
                f"{len(text)} characters",
                "the field value is larger than 1 MiB",
                "keep definitions small: pass large payloads by reference",
                raw=True,
            )
            return MISSING
    if text.startswith("\ufeff"):
        out.add(
            "JSON-1",
            "U+FEFF",
            "the JSON text starts with a byte order mark",
            "write the JSON text without a BOM",
            raw=True,
        )
        return MISSING
    depth = _nesting_depth(text)
    if depth > MAX_DEPTH:
        out.add(
            "JSON-6",
            f"depth {depth}",
            f"arrays and objects are nested {depth} deep; at most {MAX_DEPTH} is allowed",
            "flatten the structure",
            raw=True,
        )
        return MISSING
    try:
        # The number hooks cost a Python call per number; only texts with long digit runs or
        # large exponents can hold a number that needs them (JSON-4).
        risky = _RISKY_NUMBER.search(text) is not None
        unsafe: list[str] = []

        def parse_int(digits: str) -> int:
            number = _int(digits)
            if abs(number) > _SAFE_INTEGER:
                unsafe.append(digits)
            return number

        value = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_constant=_constant,
            parse_int=parse_int if risky else None,
            parse_float=_float if risky else None,
        )
        for digits in unsafe:
            out.add(
                "JSON-5", digits, f"integer {digits} is beyond +-(2**53-1): JavaScript and other "
                "double-based parsers change its value",
                "keep integers within +-9007199254740991, or pass big numbers as strings",
                raw=True,
            )
    except _Reject as rej:
        out.add(rej.rule, rej.found, rej.message, rej.hint, raw=True)
        return MISSING
    except json.JSONDecodeError as exc:
        out.add(
            "JSON-1",
            f"line {exc.lineno} column {exc.colno}",
            f"not valid JSON: {exc.msg}",
            "check quoting and commas; the field must hold one JSON object",
            raw=True,
        )
        return MISSING
    except (RecursionError, ValueError) as exc:  # pragma: no cover - guarded above
        out.add("JSON-1", type(exc).__name__, f"not valid JSON: {exc}", "check the JSON text",
                raw=True)
        return MISSING
    if _SURROGATE_ESCAPE.search(text) or (not isinstance(data, bytes) and not _utf8_ok(text)):
        _check_surrogates(value, out)
    if not isinstance(value, dict):
        out.add(
            "JSON-1",
            value,
            f"the top level is {_json_type(value)}, not an object",
            "the field must hold one JSON object ({...})",
        )
        return MISSING
    return value


_RISKY_NUMBER: Final = re.compile(r"[0-9]{16}|[eE][+-]?[0-9]{3}")
_SAFE_INTEGER: Final = 2**53 - 1
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def _utf8_ok(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_surrogates(value: object, out: Collector) -> None:
    """Lone UTF-16 surrogates (``"\\ud800"``) parse in Python but cannot be encoded as UTF-8."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                out.add(
                    "JSON-1",
                    describe(item),
                    "a string holds a lone UTF-16 surrogate, which is not a Unicode character",
                    "escape characters outside the BMP as a surrogate pair, or write them as UTF-8",
                    raw=True,
                )
                return
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
