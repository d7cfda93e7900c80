"""``beatspec status``: who leads, how many entries, what runs next, what is backed off."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from beatspec.keyspace.scheduling import ScheduleStore

__all__ = ["SchedulerStatus", "read_status", "render_text"]


@dataclass(frozen=True, slots=True)
class SchedulerStatus:
    """A snapshot of one keyspace as a scheduler sees it."""

    prefix: str
    lock_key: str
    lock_token: str | None
    lock_ttl_ms: int
    leader: dict[str, str]  # the beatspec leader's status hash; {} for none / another scheduler
    counts: dict[str, int]
    upcoming: list[dict[str, Any]]
    invalid: list[dict[str, Any]]
    now: str

    @property
    def leader_kind(self) -> str:
        if self.lock_token is None:
            return "none"
        if self.leader.get("token") == self.lock_token:
            return "beatspec"
        return "other"  # RedBeat (or a beatspec leader that has not reported yet)

    def to_json(self) -> str:
        data = asdict(self)
        data["leader_kind"] = self.leader_kind
        return json.dumps(data, indent=2)


def read_status(store: ScheduleStore, *, count: int = 10, now: datetime | None = None,
                invalid_limit: int = 100) -> SchedulerStatus:
    now = now or datetime.now(UTC)
    token, pttl = store.holder()
    upcoming = []
    for member in store.upcoming(count):
        due = datetime.fromtimestamp(member.score, UTC)
        upcoming.append({"key": member.key, "score": member.score, "due": due.isoformat(),
                         "in_seconds": round((due - now).total_seconds(), 3)})
    invalid = []
    for key, note in sorted(store.invalid(invalid_limit).items()):
        try:
            detail = json.loads(note)
        except ValueError:
            detail = {"message": note}
        invalid.append({"key": key, **(detail if isinstance(detail, dict) else {})})
    return SchedulerStatus(
        prefix=store.layout.prefix, lock_key=store.layout.lock_key, lock_token=token,
        lock_ttl_ms=pttl, leader=store.status(), counts=store.counts(), upcoming=upcoming,
        invalid=invalid, now=now.isoformat(timespec="seconds"))


def _age(since: str | None, now: datetime) -> str:
    if not since:
        return "?"
    seconds = int((now - datetime.fromisoformat(since)).total_seconds())
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def render_text(status: SchedulerStatus) -> str:
    now = datetime.fromisoformat(status.now)
    lines = [f"keyspace  {status.prefix!r}   lock {status.lock_key}"]
    kind = status.leader_kind
    if kind == "none":
        lines.append("leader    none: no scheduler holds the lock")
    elif kind == "beatspec":
        lead = status.leader
        lines.append(f"leader    beatspec {lead.get('version', '?')} on {lead.get('host', '?')} "
                     f"pid {lead.get('pid', '?')}, token {status.lock_token}")
        lines.append(f"          leading for {_age(lead.get('since'), now)}, last heartbeat "
                     f"{_age(lead.get('heartbeat'), now)} ago, lock TTL "
                     f"{status.lock_ttl_ms / 1000:.1f} s, {lead.get('fired', '0')} runs sent")
    else:
        lines.append(f"leader    another scheduler (RedBeat?), token {status.lock_token}, "
                     f"lock TTL {status.lock_ttl_ms / 1000:.1f} s")
    c = status.counts
    lines.append(f"entries   {c['scheduled']} scheduled, {c['exhausted']} exhausted, "
                 f"{c['statics']} static, {c['invalid']} invalid")
    if status.upcoming:
        lines.append("")
        lines.append("next due")
        for item in status.upcoming:
            when = item["in_seconds"]
            rel = f"in {when:.0f} s" if when >= 0 else f"{-when:.0f} s overdue"
            lines.append(f"  {item['due'][:19]}Z  {rel:>16}  {item['key']}")
    more = c["invalid"] - len(status.invalid)
    if status.invalid or more > 0:
        lines.append("")
        lines.append("invalid (backed off, never fired)")
        for item in status.invalid:
            where = f"{item.get('field') or ''}{item.get('pointer') or ''}"
            lines.append(f"  {item['key']}  [{item.get('rule', '?')}] {where}  "
                         f"{item.get('message', '')}")
            if item.get("hint"):
                lines.append(f"      hint: {item['hint']}")
            if item.get("retry_at"):
                lines.append(f"      retried at {item['retry_at'][:19]}Z")
        if more > 0:
            lines.append(f"  ... and {more} more (--invalid N lists up to N)")
    return "\n".join(lines)
