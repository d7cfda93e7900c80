"""The audit: what a keyspace's writers put into Redis, and can RedBeat or beatspec serve it?

Read-only by construction: it asks the keyspace layer only for the reads of
:data:`beatspec.keyspace.READ_COMMANDS`, in bounded, pipelined batches, and keeps in memory only
the current batch and the counters (findings beyond ``max_details`` per rule are counted, not
kept). It runs in passes: every key under the prefix (entries are decoded and their scores
judged by the engine), the schedule's members, the statics, the lock, the declaration and the
server's settings.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from zoneinfo import ZoneInfo

from beatspec.audit._checks import (
    ENTRY_RULES,
    EntryJudge,
    check_declaration,
    check_index_type,
    check_lock,
    check_members,
    check_other_key,
    check_server,
    check_statics,
    check_status_key,
)
from beatspec.audit._result import AuditResult, RuleFilter
from beatspec.audit._workers import Workers
from beatspec.codec._fast import FastEntryDecoder
from beatspec.keyspace import Keyspace, Layout
from beatspec.rules import RULES

__all__ = ["AuditOptions", "AuditResult", "RuleFilter", "run_audit"]

Progress = Callable[[str, int], None]


@dataclass(frozen=True, slots=True)
class AuditOptions:
    """How to audit. ``profile`` None means: as the keyspace declares (else core)."""

    profile: str | None = None
    app_timezone: str = "UTC"
    batch: int = 500
    score_tolerance: float = 1.0
    max_details: int = 1000
    rules: RuleFilter = field(default_factory=RuleFilter)
    now: datetime | None = None
    #: processes for the first pass (this one SCANs and shares the key batches with
    #: ``workers - 1`` forked ones); 1 = in-process
    workers: int = 1


def _nothing(_stage: str, _done: int) -> None:
    return None


def run_audit(keyspace: Keyspace, options: AuditOptions | None = None,
              progress: Progress = _nothing) -> AuditResult:
    """Audit ``keyspace``; never writes. Redis errors propagate (the CLI maps them to exit 3)."""
    options = options or AuditOptions()
    started = time.monotonic()
    layout = keyspace.layout
    zone = ZoneInfo(options.app_timezone)
    now = options.now or datetime.now(UTC)
    result = AuditResult(prefix=layout.prefix, profile=options.profile or "core",
                         max_details=options.max_details, rule_filter=options.rules)
    kind, declared = keyspace.declaration()
    result.profile = check_declaration(result, layout, kind, declared, options.profile)
    if result.refused:  # VER-2: a reader refuses a keyspace of a version it lacks
        result.counts["keys"] += 1
        result.elapsed = time.monotonic() - started
        return result
    document_rules = [r.id for r in RULES.values() if r.kind == "document"]
    result.check(*document_rules, *ENTRY_RULES, "KEY-9")

    judge = partial(_judged_part, keyspace, options, result.profile, (now, zone))
    workers = options.workers if keyspace.forkable() else 1
    with _no_cyclic_gc(), Workers(judge, workers) as shared:
        scanned = _reported(keyspace.scan_raw(options.batch), progress)
        _entry_pass(keyspace, options, result, (now, zone), shared.share(scanned))
        for part in shared.results():
            result.merge(part)

    index_kind, statics_kind = keyspace.types([layout.schedule_key, layout.statics_key])
    result.check("ZSET-1", "ZSET-6", "KEY-3")
    members = keyspace.schedule_size() if index_kind == "zset" else 0
    # Pass 1 saw every scheduled entry hash (ZSCORE); if they are all the members there are,
    # no member can be dangling, prefixless or of another type, and pass 2 has nothing to find.
    if members == result.counts["scheduled entries"]:
        result.counts["schedule members"] = members
    elif index_kind == "zset":  # another type was reported as KEY-3 in the first pass
        for batch in keyspace.scan_schedule(options.batch):
            # a member outside the prefix is ZSET-1 whatever it holds; a least-privilege ACL
            # user may not even TYPE it
            inside = [m for m, _ in batch if m.startswith(layout.prefix)]
            kinds = dict(zip(inside, keyspace.types(inside), strict=True)) if inside else {}
            check_members(result, layout, batch, [kinds.get(m, "none") for m, _ in batch])
            progress("schedule", result.counts["schedule members"])

    result.check("KEY-4")
    if statics_kind == "set":
        for names in keyspace.scan_statics(options.batch):
            check_statics(result, layout, names, keyspace.types([layout.entry_key(n)
                                                                 for n in names]))
    check_lock(result, layout, keyspace.lock_state())
    check_server(result, layout, keyspace.server_state())
    result.elapsed = time.monotonic() - started
    return result


def _entry_pass(keyspace: Keyspace, options: AuditOptions, result: AuditResult,
                now_zone: tuple[datetime, ZoneInfo], batches: Iterable[list[bytes]]) -> None:
    """Pass 1: every key of ``batches``; entries are decoded and their scores judged."""
    now, zone = now_zone
    judge = EntryJudge(result, keyspace.layout, now=now, zone=zone,
                       tolerance=options.score_tolerance,
                       decoder=FastEntryDecoder(profile=result.profile))
    candidates = _candidates(keyspace, result, batches)
    # Entries are read directly (HGETALL + ZSCORE); a key that is no hash answers WRONGTYPE
    # and is looked at with TYPE, like the layout's own keys.
    for keys, hashes in keyspace.stream_hashes(candidates):
        others: list[str] = []
        scheduled: set[str] = set()
        for raw, (fields, stored, ok) in zip(keys, hashes, strict=True):
            key = raw.decode("utf-8", "surrogateescape")
            if ok:
                if fields:  # empty: deleted since SCAN saw it
                    judge(key, fields, stored)
            else:
                others.append(key)
                if stored is not None:  # a scheduled non-hash: ENT-1 in the schedule pass
                    scheduled.add(key)
        if others:
            _check_others(keyspace, result, others, scheduled)


def _candidates(keyspace: Keyspace, result: AuditResult, batches: Iterable[list[bytes]]
                ) -> Iterator[list[bytes]]:
    """The keys of each batch that may be entries; the layout's own keys are judged here."""
    layout = keyspace.layout
    # the celery-rs port's single hash (KEY-9) is no entry either
    special = {key.encode("utf-8", "surrogateescape")
               for key in (*_reserved(layout), layout.prefix + "schedule")}
    for batch in batches:
        result.counts["keys"] += len(batch)
        found = [key for key in batch if key in special]
        if found:
            _check_others(keyspace, result, [key.decode("utf-8", "surrogateescape")
                                             for key in found], set())
            batch = [key for key in batch if key not in special]
        yield batch


def _reserved(layout: Layout) -> frozenset[str]:
    return frozenset((layout.schedule_key, layout.statics_key, layout.lock_key,
                      layout.declaration_key, layout.scheduler_key, layout.invalid_key))


def _check_others(keyspace: Keyspace, result: AuditResult, keys: list[str],
                  scheduled: set[str]) -> None:
    """Keys that hold no entry hash: the layout's own keys, and any other key (KEY-9)."""
    layout = keyspace.layout
    reserved = _reserved(layout)
    for key, key_kind in zip(keys, keyspace.types(keys), strict=True):
        if key == layout.schedule_key:
            check_index_type(result, key, key_kind, "KEY-3", "zset")
        elif key == layout.statics_key:
            check_index_type(result, key, key_kind, "KEY-4", "set")
        elif key in (layout.scheduler_key, layout.invalid_key):
            check_status_key(result, key, key_kind)
        elif key in reserved or key_kind == "none":
            continue
        elif key not in scheduled:
            check_other_key(result, layout, key, key_kind)


def _judged_part(keyspace: Keyspace, options: AuditOptions, profile: str,
                 now_zone: tuple[datetime, ZoneInfo], batches: Iterable[list[bytes]]
                 ) -> AuditResult:
    """A worker's share of pass 1, judged into a result of its own."""
    result = AuditResult(prefix=keyspace.layout.prefix, profile=profile,
                         max_details=options.max_details, rule_filter=options.rules)
    _entry_pass(keyspace, options, result, now_zone, batches)
    return result


def _reported(batches: Iterable[list[bytes]], progress: Progress) -> Iterator[list[bytes]]:
    """The batches, with the count of keys scanned so far reported after each."""
    done = 0
    for batch in batches:
        done += len(batch)
        yield batch
        progress("keys", done)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for the key pass, then restore the caller's setting.

    The pass allocates millions of short-lived, acyclic objects (reference counting frees them
    all); the collector's generational sweeps over them cost about a tenth of the audit's time.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
