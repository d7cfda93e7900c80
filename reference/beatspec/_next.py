"""``beatspec next``: when does an entry run next, and what should its score be."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from beatspec.codec import Definition, Entry, schedule_to_json
from beatspec.engine import DueState, due, fire_times, score
from beatspec.scores import ScoreVerdict, judge_score

__all__ = ["NextReport", "compute_next", "parse_instant"]


def parse_instant(text: str) -> datetime:
    """ISO 8601 (``Z`` allowed); a time without an offset is UTC."""
    value = datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True, slots=True)
class NextReport:
    name: str
    schedule: dict[str, object]
    zone: str
    now: datetime
    last_run_at: datetime | None
    state: DueState
    score: int
    runs: tuple[datetime, ...]
    enabled: bool
    stored_score: float | None = None
    verdict: ScoreVerdict | None = None


def compute_next(
    definition: Definition,
    *,
    last_run_at: datetime | None,
    now: datetime,
    zone: tzinfo,
    count: int,
    stored_score: float | None = None,
    check_score: bool = False,
) -> NextReport:
    schedule = definition.schedule
    state = due(schedule, last_run_at, now, zone=zone)
    expected = score(schedule, last_run_at, now, zone=zone)
    runs: list[datetime] = []
    if state.next_run is not None and count > 0:
        first = max(state.next_run, now.astimezone(UTC))  # an overdue run happens now, once
        runs.append(first)
        runs.extend(fire_times(schedule, first, zone=zone, count=count - 1))
    verdict = None
    if check_score:
        verdict = judge_score(stored_score, expected, state.next_run, enabled=definition.enabled)
    return NextReport(
        name=definition.name,
        schedule=schedule_to_json(schedule),
        zone=str(zone.key) if isinstance(zone, ZoneInfo) else str(zone),
        now=now.astimezone(UTC),
        last_run_at=None if last_run_at is None else last_run_at.astimezone(UTC),
        state=state,
        score=expected,
        runs=tuple(runs),
        enabled=definition.enabled,
        stored_score=stored_score,
        verdict=verdict,
    )


def entry_inputs(entry: Entry) -> tuple[Definition, datetime | None, str | None]:
    """Definition, last_run_at and the extension time zone of a decoded entry."""
    last = None
    if entry.meta is not None and entry.meta.last_run_at is not None:
        last = entry.meta.last_run_at.to_datetime()
    zone = entry.extensions.timezone if entry.extensions is not None else None
    return entry.definition, last, zone
