"""Render reports for people (text, coloured only on a terminal) and machines (JSON)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.markup import escape

from beatspec.findings import Finding, Outcome, Report

if TYPE_CHECKING:
    from beatspec._next import NextReport

__all__ = ["render_json", "render_next", "render_text"]

_STYLE = {Outcome.FAILED: "bold red", Outcome.NON_STRICT: "yellow", Outcome.INFO: "cyan"}


def _summary(report: Report) -> str:
    counts = [
        f"{len(report.failed)} FAILED",
        f"{len(report.non_strict)} NON-STRICT",
    ]
    info = sum(1 for f in report if f.outcome is Outcome.INFO)
    if info:
        counts.append(f"{info} INFO")
    return ", ".join(counts)


def render_text(
    stream: TextIO, source: str, kind: str, report: Report, *, strict: bool, color: bool | None,
) -> None:
    console = Console(file=stream, force_terminal=color, no_color=color is False,
                      highlight=False, soft_wrap=True, emoji=False)
    valid = report.valid(strict=strict)
    verdict = "[green]valid[/]" if valid else "[bold red]invalid[/]"
    mode = " (strict)" if strict else ""
    console.print(f"{escape(source)}: {verdict} {kind}{mode}: {_summary(report)}")
    for finding in report:
        _finding(console, finding)


def _finding(console: Console, f: Finding) -> None:
    style = _STYLE[f.outcome]
    console.print(
        f"  [{style}]{f.outcome.value:<10}[/] [bold]{f.rule:<8}[/] {escape(f.location)}: "
        f"{escape(f.message)}"
    )
    console.print(f"             found: {escape(f.found)}")
    console.print(f"             hint:  {escape(f.hint)}")


def render_json(
    stream: TextIO, source: str, kind: str, report: Report, *, strict: bool, spec: str,
) -> None:
    doc = {
        "beatspec": spec,
        "source": source,
        "kind": kind,
        "strict": strict,
        "valid": report.valid(strict=strict),
        "counts": {
            "FAILED": len(report.failed),
            "NON-STRICT": len(report.non_strict),
            "INFO": sum(1 for f in report if f.outcome is Outcome.INFO),
        },
        "findings": [f.to_json() for f in report],
    }
    json.dump(doc, stream, indent=2)
    stream.write("\n")


def _when(value: datetime, zone: tzinfo) -> str:
    utc = value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    local = value.astimezone(zone)
    return f"{utc}  ({local.strftime('%Y-%m-%d %H:%M:%S %Z')})"


def render_next(stream: TextIO, source: str, report: NextReport, zone: tzinfo, *,
                fmt: str) -> None:
    if fmt == "json":
        json.dump(_next_json(source, report), stream, indent=2)
        stream.write("\n")
        return
    kind = report.schedule.get("__type__", "?")
    fields = " ".join(f"{k}={v}" for k, v in report.schedule.items() if k != "__type__"
                      and v is not None)
    lines = [
        f"{source}: {report.name}: {kind} {fields}",
        f"  zone:       {report.zone}",
        f"  now:        {_when(report.now, zone)}",
        "  last run:   " + (_when(report.last_run_at, zone) if report.last_run_at else "never"),
    ]
    state = report.state
    if not report.enabled:
        lines.append("  due now:    no (disabled)")
    elif state.next_run is None:
        lines.append("  due now:    no (the schedule is exhausted)")
    elif state.is_due:
        lines.append(f"  due now:    yes (due since {_when(state.next_run, zone)})")
    else:
        lines.append(f"  due now:    no, next check in {state.next_check:.3f} s")
    lines.append(f"  score:      {report.score}")
    if report.verdict is not None:
        stored = "none" if report.stored_score is None else f"{report.stored_score:.0f}"
        rule = f" [{report.verdict.rule}]" if report.verdict.rule else ""
        lines.append(f"  stored:     {stored}: {report.verdict.message}{rule}")
    if report.runs:
        lines.append(f"  next {len(report.runs)} run{'s' if len(report.runs) != 1 else ''}:")
        lines.extend(f"    {_when(run, zone)}" for run in report.runs)
    stream.write("\n".join(lines) + "\n")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _next_json(source: str, report: NextReport) -> dict[str, object]:
    verdict = report.verdict
    return {
        "source": source,
        "name": report.name,
        "schedule": report.schedule,
        "zone": report.zone,
        "now": _iso(report.now),
        "last_run_at": _iso(report.last_run_at),
        "enabled": report.enabled,
        "due": report.state.is_due and report.enabled,
        "next_check": report.state.next_check,
        "next_run": _iso(report.state.next_run),
        "score": report.score,
        "stored_score": report.stored_score,
        "score_check": None if verdict is None else {
            "ok": verdict.ok, "rule": verdict.rule, "message": verdict.message,
        },
        "runs": [_iso(run) for run in report.runs],
    }
