"""The static schedule file (``--schedule FILE``) and its sync into the keyspace.

The file maps entry names to definitions, in TOML or JSON, with the definition's JSON shape
(``task``, ``args``, ``kwargs``, ``options``, ``schedule``, ``enabled``; ``name`` may be left
out) plus an optional ``extensions`` object (§9). It is synced the way RedBeat syncs
``beat_schedule`` (wire-format §5.2): definitions are always rewritten, ``meta`` is kept (a new
entry gets ``last_run_at`` = now), and static entries no longer in the file are deleted; unlike
RedBeat, only the leader syncs, fenced by its lock token (user-needs R17).
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from beatspec.codec import (
    Definition,
    Extensions,
    decode_definition,
    decode_extensions,
    decode_meta,
    encode_definition,
    encode_extensions,
)
from beatspec.codec.encode import encode_meta
from beatspec.codec.types import DateTime, Entry, Meta
from beatspec.daemon.plan import entry_zone
from beatspec.engine import score
from beatspec.findings import Outcome
from beatspec.keyspace.scheduling import ScheduleStore, StaticEntry

__all__ = ["ScheduleFileError", "StaticSchedule", "load_schedule", "sync_statics"]


class ScheduleFileError(ValueError):
    """The schedule file cannot be read or holds an invalid entry (message names the rule)."""


@dataclass(frozen=True, slots=True)
class StaticSchedule:
    """The entries of a schedule file, decoded and re-encoded canonically."""

    path: Path
    entries: tuple[tuple[Definition, Extensions | None], ...]


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
        data = (json.loads(raw) if path.suffix.lower() == ".json"
                else tomllib.loads(raw.decode("utf-8")))
    except (OSError, ValueError) as exc:
        raise ScheduleFileError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ScheduleFileError(f"{path}: the file must map entry names to definitions")
    return data


def load_schedule(path: Path) -> StaticSchedule:
    """Read and check every entry; any broken MUST is an error naming rule and pointer."""
    entries = []
    for name, body in _read(path).items():
        if not isinstance(body, dict):
            raise ScheduleFileError(f"{path}: /{name}: an entry must be a table/object")
        document = dict(body)
        raw_ext = document.pop("extensions", None)
        document.setdefault("name", name)
        document.setdefault("args", [])
        document.setdefault("kwargs", {})
        document.setdefault("options", {})
        document.setdefault("enabled", True)
        schedule = document.get("schedule")
        if isinstance(schedule, dict) and schedule.get("__type__") == "interval":
            schedule.setdefault("relative", False)
        decoded = decode_definition(json.dumps(document), name=name)
        extensions = None
        problems = [f for f in decoded.report.findings if f.outcome is Outcome.FAILED]
        if raw_ext is not None:
            ext = decode_extensions(json.dumps(raw_ext))
            problems += [f for f in ext.report.findings if f.outcome is Outcome.FAILED]
            extensions = ext.value
        if problems or decoded.value is None:
            first = problems[0] if problems else None
            detail = (f"{first.rule} at {first.pointer or '/'}: {first.message}"
                      + (f" (hint: {first.hint})" if first.hint else "")) if first else "invalid"
            raise ScheduleFileError(f"{path}: entry {name!r}: {detail}")
        entries.append((decoded.value, extensions))
    return StaticSchedule(path, tuple(entries))


def sync_statics(store: ScheduleStore, token: str, schedule: StaticSchedule, *,
                 now: datetime, app_zone: tzinfo) -> tuple[int, int] | None:
    """Install the file's entries and delete stale statics, fenced by the lock (RUN-6);
    (installed, deleted), or None when the lock is no longer ours."""
    names = [d.name for d, _ in schedule.entries]
    metas = store.read_meta(names)
    installed = []
    for (definition, extensions), raw_meta in zip(schedule.entries, metas, strict=True):
        meta: Meta | None = None
        if raw_meta:
            meta = decode_meta(raw_meta).value
        zone = entry_zone(Entry(definition, meta, extensions), app_zone)
        last = meta.last_run_at.to_datetime() if meta and meta.last_run_at else now.astimezone(
            zone)
        new_meta = encode_meta(Meta(DateTime.from_datetime(now.astimezone(zone)), 0))
        installed.append(StaticEntry(
            name=definition.name, definition=encode_definition(definition), meta=new_meta,
            score=score(definition.schedule, last, now, zone=zone),
            extensions=encode_extensions(extensions) if extensions else "",
        ))
    stale = sorted(store.statics() - set(names))
    if not store.sync_statics(token, installed, stale):
        return None
    return len(installed), len(stale)
