"""What an audit found: counters, findings (details capped per rule) and the verdict."""

from __future__ import annotations

import fnmatch
from collections import Counter
from dataclasses import dataclass, field

from beatspec.findings import Finding, Outcome

__all__ = ["AuditResult", "RuleFilter"]


@dataclass(frozen=True, slots=True)
class RuleFilter:
    """``--select`` / ``--ignore``: rule IDs, families (``ZSET``) or globs (``CRON-*``)."""

    select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()

    @staticmethod
    def _matches(rule: str, patterns: tuple[str, ...]) -> bool:
        return any(
            rule == p or rule.startswith(p + "-") or fnmatch.fnmatchcase(rule, p)
            for p in patterns
        )

    def wants(self, rule: str) -> bool:
        if self.select and not self._matches(rule, self.select):
            return False
        return not self._matches(rule, self.ignore)


@dataclass
class AuditResult:
    """Mutable while the audit runs; read by the reporters afterwards."""

    prefix: str
    profile: str
    max_details: int = 1000
    rule_filter: RuleFilter = field(default_factory=RuleFilter)
    counts: Counter[str] = field(default_factory=Counter)
    totals: Counter[tuple[str, Outcome]] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)
    server: dict[str, object] = field(default_factory=dict)
    elapsed: float = 0.0
    minor: int = 0  # the declared minor version (1.minor)
    refused: bool = False  # the declaration names a version this implementation does not judge

    def add(self, finding: Finding) -> None:
        if not self.rule_filter.wants(finding.rule):
            return
        key = (finding.rule, finding.outcome)
        self.totals[key] += 1
        if self.totals[key] <= self.max_details:
            self.findings.append(finding)

    def merge(self, other: AuditResult) -> None:
        """Fold in a worker's result for another partition of the keys."""
        self.counts.update(other.counts)
        for key, count in other.totals.items():
            room = max(0, self.max_details - self.totals[key])
            self.totals[key] += count
            self.findings.extend([f for f in other.findings if (f.rule, f.outcome) == key][:room])
        self.checked |= other.checked

    def check(self, *rules: str) -> None:
        """Record that these rules were evaluated (so a clean rule shows as passed)."""
        self.checked.update(r for r in rules if self.rule_filter.wants(r))

    def count(self, outcome: Outcome) -> int:
        return sum(n for (_, o), n in self.totals.items() if o is outcome)

    @property
    def empty(self) -> bool:
        return self.counts["keys"] == 0

    def conformant(self, *, strict: bool = False) -> bool:
        if self.count(Outcome.FAILED):
            return False
        return not (strict and self.count(Outcome.NON_STRICT))

    def rules_seen(self) -> list[str]:
        from beatspec.rules import RULES

        seen = self.checked | {rule for rule, _ in self.totals}
        order = {rid: i for i, rid in enumerate(RULES)}
        return sorted(seen, key=lambda r: order.get(r, len(order)))
