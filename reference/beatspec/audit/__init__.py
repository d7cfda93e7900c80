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
import multiprocessing
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from beatspec.audit._checks import (
    ENTRY_RULES,
    check_declaration,
    check_entry,
    check_index_type,
    check_lock,
    check_members,
    check_other_key,
    check_server,
    check_statics,
    check_status_key,
)
from beatspec.audit._result import AuditResult, RuleFilter
from beatspec.codec._fast import FastEntryDecoder
from beatspec.keyspace import Keyspace
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
    #: processes for the first pass (keys are split by a hash of their name); 1 = in-process
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

    with _no_cyclic_gc():
        children = _start_workers(keyspace, options, result.profile, (now, zone))
        _entry_pass(keyspace, options, result, (now, zone), progress=progress,
                    part=0, parts=len(children) + 1)
    for child in children:
        result.merge(_join(child))

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
                now_zone: tuple[datetime, ZoneInfo], progress: Progress = _nothing, *,
                part: int = 0, parts: int = 1) -> None:
    """Pass 1: every key under the prefix; entries are decoded and their scores judged."""
    now, zone = now_zone
    layout = keyspace.layout
    reserved = {layout.schedule_key: "zset", layout.statics_key: "set",
                layout.lock_key: "string", layout.declaration_key: "hash",
                layout.scheduler_key: "hash", layout.invalid_key: "hash"}
    decoder = FastEntryDecoder(profile=result.profile)
    foreign = layout.prefix + "schedule"  # the celery-rs port's single hash (KEY-9)
    for scanned in keyspace.scan_keys(options.batch):
        # workers are forks of one process, so they share the string hash seed: hash() splits
        # the keys the same way in all of them
        keys = scanned if parts == 1 else [k for k in scanned if hash(k) % parts == part]
        result.counts["keys"] += len(keys)
        candidates = [k for k in keys if k not in reserved and k != foreign]
        others = [k for k in keys if k in reserved or k == foreign]
        # Entries are read directly (HGETALL + ZSCORE); a key that is no hash answers
        # WRONGTYPE and is looked at with TYPE, like the reserved keys.
        hashes = keyspace.read_hashes(candidates) if candidates else []
        scheduled: set[str] = set()
        for key, (fields, stored, ok) in zip(candidates, hashes, strict=True):
            if ok:
                if fields:  # empty: deleted since SCAN saw it
                    check_entry(result, layout, key, fields, stored, now=now, zone=zone,
                                tolerance=options.score_tolerance, decoder=decoder)
            else:
                others.append(key)
                if stored is not None:  # a scheduled non-hash: ENT-1 in the schedule pass
                    scheduled.add(key)
        if others:
            for key, key_kind in zip(others, keyspace.types(others), strict=True):
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
        progress("keys", result.counts["keys"])


def _start_workers(keyspace: Keyspace, options: AuditOptions, profile: str,
                   now_zone: tuple[datetime, ZoneInfo]) -> list[tuple[Any, Any]]:
    """Fork ``workers - 1`` processes, each judging its own share of the keys in pass 1."""
    parts = max(1, options.workers)
    if parts == 1 or "fork" not in multiprocessing.get_all_start_methods():
        return []
    if not keyspace.forkable():
        return []
    context = multiprocessing.get_context("fork")
    children = []
    for index in range(1, parts):
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_worker, daemon=True,
                                  args=(keyspace, options, profile, now_zone, index, parts,
                                        sender))
        process.start()
        sender.close()
        children.append((process, receiver))
    return children


def _worker(keyspace: Keyspace, options: AuditOptions, profile: str,
            now_zone: tuple[datetime, ZoneInfo], part: int, parts: int, sender: Any) -> None:
    result = AuditResult(prefix=keyspace.layout.prefix, profile=profile,
                         max_details=options.max_details, rule_filter=options.rules)
    try:
        _entry_pass(keyspace, options, result, now_zone, part=part, parts=parts)
        sender.send(("ok", result))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which re-raises it
        sender.send(("error", exc))
    finally:
        sender.close()


def _join(child: tuple[Any, Any]) -> AuditResult:
    process, receiver = child
    try:
        status, payload = receiver.recv()
    except EOFError:
        process.join()
        raise RuntimeError(f"audit worker exited with status {process.exitcode}") from None
    process.join()
    if status != "ok":
        raise payload
    merged: AuditResult = payload
    return merged


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
