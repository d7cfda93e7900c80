"""The beatspec crontab grammar (spec §5, CRON-2/CRON-3/CRON-6) and field expansion.

It accepts exactly the strings the schema pattern accepts and expands them the way Celery 5.7's
``crontab_parser`` does (wrapped ranges, steps taken from the expanded list), so the values are
what RedBeat would evaluate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

__all__ = [
    "DAYS_IN_MONTH",
    "FIELDS",
    "CronError",
    "FieldSpec",
    "expand_field",
    "parse_field",
]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()  # three-letter names, index = value - name_base
    name_base: int = 0


_DOW: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MON: Final = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")

FIELDS: Final[dict[str, FieldSpec]] = {
    "minute": FieldSpec("minute", 0, 59),
    "hour": FieldSpec("hour", 0, 23),
    "day_of_week": FieldSpec("day_of_week", 0, 6, _DOW, 0),
    "day_of_month": FieldSpec("day_of_month", 1, 31),
    "month_of_year": FieldSpec("month_of_year", 1, 12, _MON, 1),
}

#: Longest month lengths (February 29), as Celery's constructor check uses them (CRON-4).
DAYS_IN_MONTH: Final = {
    1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31,
}

_PART: Final = re.compile(r"(\*|[0-9A-Za-z]+)(?:-([0-9A-Za-z]+))?(?:/([0-9]+))?")


class CronError(ValueError):
    """A crontab field that breaks ``rule``; ``hint`` says how to write it instead."""

    def __init__(self, rule: str, message: str, hint: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.hint = hint


def _value(token: str, spec: FieldSpec, text: str) -> int:
    if token.isascii() and token.isdigit():
        value = int(token)
    elif spec.names and len(token) == 3 and token.lower() in spec.names:
        value = spec.names.index(token.lower()) + spec.name_base
    else:
        allowed = " or a three-letter name" if spec.names else ""
        raise CronError(
            "CRON-2",
            f"{token!r} in {spec.name} {text!r} is not a decimal number{allowed}",
            _grammar_hint(spec),
        )
    if not spec.low <= value <= spec.high:
        raise CronError(
            "CRON-3",
            f"{value} in {spec.name} {text!r} is outside {spec.low}-{spec.high}",
            f"{spec.name} takes {spec.low}-{spec.high}"
            + (" (0 = Sunday; 7 is not Sunday)" if spec.name == "day_of_week" else ""),
        )
    return value


def _grammar_hint(spec: FieldSpec) -> str:
    names = {
        "day_of_week": "; names sun..sat",
        "month_of_year": "; names jan..dec",
    }.get(spec.name, "")
    return (
        f"write {spec.name} as '*', '*/step', 'a', 'a-b' or 'a-b/step', comma-separated, "
        f"values {spec.low}-{spec.high}{names}, no spaces"
    )


@lru_cache(maxsize=8192)
def parse_field(text: str, field: str) -> frozenset[int]:
    """Expand one crontab string field; raise :class:`CronError` naming the broken rule."""
    spec = FIELDS[field]
    if text == "":
        raise CronError("CRON-2", f"{field} is an empty string", _grammar_hint(spec))
    values: list[int] = []
    for part in text.split(","):
        match = _PART.fullmatch(part)
        if match is None:
            raise CronError(
                "CRON-2", f"{part!r} in {field} {text!r} is not in the crontab grammar",
                _grammar_hint(spec),
            )
        start, end, step_text = match.groups()
        full = list(range(spec.low, spec.high + 1))
        if start == "*":
            if end is not None:
                raise CronError("CRON-2", f"{part!r}: '*' takes no range", _grammar_hint(spec))
            selected = full
        else:
            first = _value(start, spec, text)
            if end is None:
                if step_text is not None:
                    raise CronError(
                        "CRON-2",
                        f"{part!r} in {field}: 'a/step' is not supported (Celery rejects it)",
                        f"write '{start}-{spec.high}/{step_text}' instead",
                    )
                selected = [first]
            else:
                last = _value(end, spec, text)
                if first <= last:
                    selected = list(range(first, last + 1))
                else:  # a wrapped range, as Celery expands it
                    selected = list(range(first, spec.high + 1)) + list(range(spec.low, last + 1))
        if step_text is not None:
            step = int(step_text)
            if step < 1:
                raise CronError(
                    "CRON-3", f"step {step_text!r} in {field} {text!r} is below 1",
                    "a step is a whole number of at least 1",
                )
            selected = selected[::step]
        values.extend(selected)
    return frozenset(values)


def expand_field(value: object, field: str) -> frozenset[int]:
    """Expand a field in any form a reader accepts: a string, an integer or an array of them."""
    spec = FIELDS[field]
    if isinstance(value, str):
        return parse_field(value, field)
    if isinstance(value, bool) or value is None:
        raise CronError(
            "CRON-6", f"{field} is {value!r}: not a string, integer or array",
            f"write {field} as a string such as '*'",
        )
    if isinstance(value, int):
        items: list[object] = [value]
    elif isinstance(value, list | tuple):
        if not value:
            raise CronError(
                "CRON-6", f"{field} is an empty array", f"write {field} as '*' or list values"
            )
        items = list(value)
    else:
        raise CronError(
            "CRON-6", f"{field} must be a string, an integer or an array of integers",
            f"write {field} as a string such as '*'",
        )
    out: set[int] = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int):
            raise CronError(
                "CRON-6", f"{field} array holds {item!r}, not an integer",
                f"use integers {spec.low}-{spec.high}, or a string field",
            )
        if not spec.low <= item <= spec.high:
            raise CronError(
                "CRON-3", f"{item} in {field} is outside {spec.low}-{spec.high}",
                f"{field} takes {spec.low}-{spec.high}",
            )
        out.add(item)
    return frozenset(out)
