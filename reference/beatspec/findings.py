"""Findings: what a check found, as data (never an exception)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from beatspec.rules import RULES, Level

__all__ = ["Finding", "Outcome", "Report", "outcome_for"]


class Outcome(StrEnum):
    """Autobahn-style outcome classes, tied to RFC 2119 levels."""

    FAILED = "FAILED"  # a MUST is broken: RedBeat would crash, drop or misfire
    NON_STRICT = "NON-STRICT"  # legal but not canonical, or a SHOULD is broken
    INFO = "INFO"  # worth knowing, not a violation


def outcome_for(rule_id: str) -> Outcome:
    level = RULES[rule_id].level
    if level is Level.MUST:
        return Outcome.FAILED
    if level is Level.SHOULD:
        return Outcome.NON_STRICT
    return Outcome.INFO


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule at one place.

    ``pointer`` is an RFC 6901 JSON pointer into the document named by ``field`` (a hash field
    such as ``definition``) of the Redis ``key`` when there is one.
    """

    rule: str
    outcome: Outcome
    pointer: str
    found: str
    message: str
    hint: str
    key: str | None = None
    field: str | None = None

    @property
    def location(self) -> str:
        where = " ".join(p for p in (self.key, self.field) if p)
        if not where:
            return self.pointer or "/"
        return f"{where} {self.pointer}" if self.pointer else where

    def to_json(self) -> dict[str, object]:
        return {
            "rule": self.rule,
            "outcome": self.outcome.value,
            "key": self.key,
            "field": self.field,
            "pointer": self.pointer,
            "found": self.found,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass(frozen=True, slots=True)
class Report:
    """The findings of one validation, in the order they were found."""

    findings: tuple[Finding, ...] = field(default_factory=tuple)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    @property
    def failed(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.outcome is Outcome.FAILED)

    @property
    def non_strict(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.outcome is Outcome.NON_STRICT)

    def valid(self, *, strict: bool = False) -> bool:
        """No FAILED finding (and with ``strict``, no NON-STRICT one either)."""
        return not self.failed and not (strict and self.non_strict)

    @property
    def rules(self) -> frozenset[str]:
        return frozenset(f.rule for f in self.findings)

    def broken(self, *, strict: bool = False) -> frozenset[str]:
        wanted = {Outcome.FAILED, Outcome.NON_STRICT} if strict else {Outcome.FAILED}
        return frozenset(f.rule for f in self.findings if f.outcome in wanted)

    @classmethod
    def of(cls, findings: Iterable[Finding]) -> Report:
        return cls(tuple(findings))
