"""Render an audit: a text summary for people, versioned JSON and JUnit XML for machines."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import defaultdict
from datetime import UTC, datetime
from typing import TextIO

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from beatspec.audit._result import AuditResult
from beatspec.findings import Finding, Outcome
from beatspec.rules import RULES

__all__ = ["REPORT_SCHEMA", "render_json", "render_junit", "render_text", "rule_outcome"]

REPORT_SCHEMA = "https://beatspec.dev/schemas/v1/audit-report.json"
_STYLE = {"FAILED": "bold red", "NON-STRICT": "yellow", "INFO": "cyan", "PASSED": "green"}


def rule_outcome(result: AuditResult, rule: str) -> str:
    for outcome in (Outcome.FAILED, Outcome.NON_STRICT, Outcome.INFO):
        if result.totals[(rule, outcome)]:
            return outcome.value
    return "PASSED"


def _by_rule(result: AuditResult) -> dict[str, list[Finding]]:
    """Findings grouped by rule, in the spec's rule order."""
    grouped: dict[str, list[Finding]] = defaultdict(list)
    for finding in result.findings:
        grouped[finding.rule].append(finding)
    order = {rule: index for index, rule in enumerate(result.rules_seen())}
    return dict(sorted(grouped.items(), key=lambda item: order.get(item[0], len(order))))


def render_text(stream: TextIO, result: AuditResult, *, target: str, strict: bool,
                color: bool | None, verbose: bool = False) -> None:
    console = Console(file=stream, force_terminal=color, no_color=color is False,
                      highlight=False, soft_wrap=True, width=120, emoji=False)
    verdict = "[green]conformant[/]" if result.conformant(strict=strict) else \
        "[bold red]not conformant[/]"
    counts = result.counts
    console.print(f"beatspec audit of {escape(target)} prefix {escape(result.prefix)!r} "
                  f"(profile {result.profile}{', strict' if strict else ''}): {verdict}")
    console.print(
        f"  {counts['keys']} keys, {counts['entries']} entries ({counts['enabled']} enabled, "
        f"{counts['disabled']} disabled, {counts['invalid entries']} invalid), "
        f"{counts['schedule members']} schedule members, {counts['statics']} statics; "
        f"{result.elapsed:.2f} s"
    )
    table = Table(show_edge=False, pad_edge=False, box=None)
    for column in ("rule", "level", "outcome", "FAILED", "NON-STRICT", "INFO", "summary"):
        table.add_column(column, no_wrap=column != "summary")
    for rule in result.rules_seen():
        outcome = rule_outcome(result, rule)
        if outcome == "PASSED" and not verbose:
            continue
        spec = RULES.get(rule)
        cells = [str(result.totals[(rule, o)] or "") for o in
                 (Outcome.FAILED, Outcome.NON_STRICT, Outcome.INFO)]
        table.add_row(rule, spec.level.value if spec else "", f"[{_STYLE[outcome]}]{outcome}[/]",
                      *cells, escape(spec.summary if spec else ""))
    passed = sum(1 for r in result.rules_seen() if rule_outcome(result, r) == "PASSED")
    console.print(table)
    console.print(f"  {passed} rules checked with nothing found"
                  + ("" if verbose else " (--verbose lists them)"))
    for rule, findings in _by_rule(result).items():
        spec = RULES.get(rule)
        total = sum(result.totals[(rule, o)] for o in Outcome)
        console.print(f"\n[bold]{rule}[/] ({spec.level.value if spec else '?'}): "
                      f"{escape(spec.summary if spec else '')} [{total} finding"
                      f"{'s' if total != 1 else ''}]")
        for finding in findings:
            style = _STYLE[finding.outcome.value]
            console.print(f"  [{style}]{finding.outcome.value:<10}[/] {escape(finding.location)}: "
                          f"{escape(finding.message)}")
            console.print(f"             found: {escape(finding.found)}")
            console.print(f"             hint:  {escape(finding.hint)}")
        if total > len(findings):
            console.print(f"  ... and {total - len(findings)} more (--max-details)")


def report_json(result: AuditResult, *, target: str, strict: bool, spec: str,
                version: str, app_timezone: str) -> dict[str, object]:
    return {
        "$schema": REPORT_SCHEMA,
        "beatspec": spec,
        "tool": {"name": "beatspec", "version": version},
        "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "target": {"redis": target, "prefix": result.prefix, "profile": result.profile,
                   "app_timezone": app_timezone},
        "server": result.server,
        "strict": strict,
        "conformant": result.conformant(strict=strict),
        "elapsed_seconds": round(result.elapsed, 6),
        "counts": dict(result.counts),
        "outcomes": {o.value: result.count(o) for o in Outcome},
        "rules": [
            {
                "id": rule,
                "level": RULES[rule].level.value if rule in RULES else None,
                "outcome": rule_outcome(result, rule),
                "counts": {o.value: result.totals[(rule, o)] for o in Outcome},
                "summary": RULES[rule].summary if rule in RULES else "",
            }
            for rule in result.rules_seen()
        ],
        "findings": [f.to_json() for f in result.findings],
        "truncated": len(result.findings) < sum(result.totals.values()),
    }


def render_json(stream: TextIO, result: AuditResult, **kwargs: object) -> None:
    json.dump(report_json(result, **kwargs), stream, indent=2)  # type: ignore[arg-type]
    stream.write("\n")


def render_junit(stream: TextIO, result: AuditResult, *, target: str, strict: bool) -> None:
    """One testsuite per rule family, one testcase per rule x key (or one per clean rule)."""
    root = ET.Element("testsuites", name="beatspec conformance", tests="0", failures="0")
    suites: dict[str, ET.Element] = {}
    grouped = _by_rule(result)
    total = failures = 0
    for rule in result.rules_seen():
        family = rule.split("-")[0]
        suite = suites.get(family)
        if suite is None:
            suite = suites[family] = ET.SubElement(root, "testsuite", name=f"beatspec.{family}",
                                                   tests="0", failures="0", hostname=target)
        cases: list[Finding | None] = list(grouped.get(rule, [])) or [None]
        for finding in cases:
            name = "(keyspace)" if finding is None else (finding.location or "(keyspace)")
            case = ET.SubElement(suite, "testcase", classname=f"beatspec.{rule}", name=name)
            total += 1
            suite.set("tests", str(int(suite.get("tests", "0")) + 1))
            if finding is None:
                continue
            fails = finding.outcome is Outcome.FAILED or (
                strict and finding.outcome is Outcome.NON_STRICT)
            text = f"found: {finding.found}\nhint: {finding.hint}"
            if fails:
                failures += 1
                suite.set("failures", str(int(suite.get("failures", "0")) + 1))
                node = ET.SubElement(case, "failure", message=finding.message,
                                     type=finding.outcome.value)
                node.text = text
            else:
                ET.SubElement(case, "system-out").text = (
                    f"{finding.outcome.value}: {finding.message}\n{text}")
    root.set("tests", str(total))
    root.set("failures", str(failures))
    ET.indent(root)
    stream.write('<?xml version="1.0" encoding="UTF-8"?>\n')
    stream.write(ET.tostring(root, encoding="unicode"))
    stream.write("\n")
