"""The audit's checks: each turns what the keyspace layer read into findings (data, not errors)."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo

from beatspec.audit._result import AuditResult
from beatspec.codec._fast import FastEntryDecoder
from beatspec.engine import NEVER_RUN, UnsupportedSchedule, next_run, score_for
from beatspec.findings import Finding, Outcome, Report, outcome_for
from beatspec.keyspace import Layout, LockState, ServerState
from beatspec.scores import MILLISECONDS_THRESHOLD, judge_score

__all__ = [
    "EntryJudge",
    "check_declaration",
    "check_entry",
    "check_lock",
    "check_members",
    "check_other_key",
    "check_server",
    "check_statics",
    "check_status_key",
]

ENTRY_RULES = ("ENT-1", "ENT-2", "ENT-3", "ZSET-2", "ZSET-3", "ZSET-4", "ZSET-5")


def _finding(
    rule: str, key: str | None, found: object, message: str, hint: str, *,
    outcome: Outcome | None = None, field: str | None = None,
) -> Finding:
    return Finding(rule=rule, outcome=outcome or outcome_for(rule), pointer="", found=str(found),
                   message=message, hint=hint, key=key, field=field)


def check_entry(
    result: AuditResult, layout: Layout, key: str, fields: dict[str, bytes],
    stored: float | None, *, now: datetime, zone: tzinfo, tolerance: float,
    decoder: FastEntryDecoder,
) -> None:
    """One entry hash: its documents, then its score against the engine."""
    EntryJudge(result, layout, now=now, zone=zone, tolerance=tolerance,
               decoder=decoder)(key, fields, stored)


class EntryJudge:
    """:func:`check_entry` with the audit's settings bound once, for the entries of a pass."""

    __slots__ = ("_counts", "_decoder", "_layout", "_now", "_now_floor", "_prefix", "_result",
                 "_tolerance", "_zone")

    def __init__(self, result: AuditResult, layout: Layout, *, now: datetime, zone: tzinfo,
                 tolerance: float, decoder: FastEntryDecoder) -> None:
        self._result, self._layout, self._decoder = result, layout, decoder
        self._counts = result.counts
        self._prefix = layout.prefix
        self._now, self._zone, self._tolerance = now, zone, tolerance
        self._now_floor = math.floor(now.timestamp())

    def __call__(self, key: str, fields: dict[str, bytes], stored: float | None) -> None:
        if "definition" not in fields and stored is None:
            self._foreign(key)
            return
        counts = self._counts
        counts["entries"] += 1
        if stored is not None:
            counts["scheduled entries"] += 1
        name = key[len(self._prefix):] if key.startswith(self._prefix) else ""
        lean = self._decoder.decode_lean(fields, name=name or key, key=key)
        if lean.report.findings:
            self._report(lean.report)
        if lean.schedule is None:
            return
        if lean.enabled:
            counts["enabled"] += 1
        else:
            counts["disabled"] += 1
            self._result.add(_finding("DEF-10", key, "false", "the entry is disabled",
                                      "set enabled to true to resume it", outcome=Outcome.INFO))
        last = lean.last_run_at
        zone = ZoneInfo(lean.timezone) if lean.timezone else self._zone
        try:
            upcoming = next_run(lean.schedule, last or NEVER_RUN(zone), zone=zone)
        except UnsupportedSchedule as exc:
            self._result.add(_finding("SOLAR-3", key, lean.schedule, f"cannot evaluate: {exc}",
                                      "install beatspec[solar]", outcome=Outcome.INFO))
            return
        if (stored is not None and upcoming is not None and last is not None
                and 0 <= stored < MILLISECONDS_THRESHOLD and stored == math.floor(stored)
                and stored <= max(math.floor(upcoming.timestamp()), self._now_floor)
                + self._tolerance):
            return  # the common case: a whole-second score, not late (judge_score finds nothing)
        _check_score(self._result, self._layout, key, stored, upcoming, now=self._now,
                     never_run=last is None, enabled=lean.enabled, tolerance=self._tolerance)

    def _foreign(self, key: str) -> None:
        """Neither a definition nor a schedule member: some other application's hash."""
        self._counts["other keys"] += 1
        self._result.add(_finding(
            "KEY-9", key, "hash without definition", "a hash under the prefix that is neither "
            "an entry (no definition) nor scheduled", "keep other data under another prefix",
        ))

    def _report(self, report: Report) -> None:
        result = self._result
        for finding in report:
            if result.minor > 0 and finding.rule == "EXT-1" and finding.pointer:
                # a member a newer minor version may define (spec 14.3): not ours to judge
                finding = replace(finding, outcome=Outcome.INFO)
            result.add(finding)
        if not report.valid():
            self._counts["invalid entries"] += 1


def _check_score(
    result: AuditResult, layout: Layout, key: str, stored: float | None,
    upcoming: datetime | None, *, now: datetime, never_run: bool, enabled: bool,
    tolerance: float,
) -> None:
    """The entry's score against the engine's next run (ZSET-2..ZSET-5)."""
    expected = score_for(upcoming, never_run=never_run, now=now)
    due_at = None
    if upcoming is not None:
        # a score at or before now is never late: the entry is loaded at the next tick
        due_at = now if never_run else max(upcoming, now)
    verdict = judge_score(stored, expected, due_at, enabled=enabled, tolerance=tolerance)
    found = "no member" if stored is None else (
        f"{stored:.0f}" if math.isfinite(stored) and stored == int(stored) else str(stored))
    if not enabled and verdict.rule == "ZSET-2":
        pass  # ZSET-2 does not constrain a disabled entry's score (spec 10.3)
    elif verdict.rule is not None and verdict.rule != "ZSET-5":
        outcome = outcome_for(verdict.rule) if not verdict.ok else Outcome.INFO
        result.add(_finding(verdict.rule, key, found, verdict.message, _score_hint(
            verdict.rule, layout, key, expected), outcome=outcome))
    if stored is not None and math.isfinite(stored) and stored != math.floor(stored):
        result.add(_finding("ZSET-5", key, found, "the score is not a whole number of seconds",
                            f"ZADD {layout.schedule_key} {math.floor(stored)} {key}"))


def _score_hint(rule: str, layout: Layout, key: str, expected: int) -> str:
    if rule == "ZSET-4":
        return f"ZADD {layout.schedule_key} {expected} {key}"
    if rule == "ZSET-3":
        return f"store the next due time: ZADD {layout.schedule_key} {expected} {key}"
    return f"store whole epoch seconds no later than the due time: ZADD {layout.schedule_key} " \
           f"{expected} {key}"


def check_other_key(result: AuditResult, layout: Layout, key: str, kind: str) -> None:
    """A key under the prefix that is no entry hash and no index key."""
    result.counts["other keys"] += 1
    if key == layout.prefix + "schedule" and kind == "hash":
        result.add(_finding(
            "KEY-9", key, "hash", "a hash named prefix+'schedule' with one member per task "
            "looks like the celery-rs RedBeat port's layout, which RedBeat cannot read: its "
            "entries never fire under RedBeat or beatspec",
            f"write one hash per entry ({layout.prefix}<name> with definition and meta) and "
            f"index it in the sorted set {layout.schedule_key}",
        ))
        return
    result.add(_finding(
        "KEY-9", key, kind, f"a {kind} under the prefix is not part of the layout",
        "keep other data under another prefix; RedBeat fails on it if it is ever scheduled",
    ))


def check_members(
    result: AuditResult, layout: Layout, members: list[tuple[str, float]], kinds: list[str],
) -> None:
    """Schedule members: full keys (ZSET-1) of existing entry hashes (ZSET-6, ENT-1)."""
    for (member, member_score), kind in zip(members, kinds, strict=True):
        result.counts["schedule members"] += 1
        if not member.startswith(layout.prefix):
            result.add(_finding(
                "ZSET-1", layout.schedule_key, member, f"member {member!r} is not a full entry "
                "key: RedBeat looks the hash up at the member itself and removes it (the entry "
                "never fires)", f"ZREM {layout.schedule_key} {member}; ZADD "
                f"{layout.schedule_key} {member_score:.0f} {layout.prefix}{member}",
            ))
        elif kind == "none":
            result.add(_finding(
                "ZSET-6", layout.schedule_key, member, f"member {member!r} has no entry hash "
                "(deleted, expired or evicted): RedBeat removes it at the next tick",
                f"ZREM {layout.schedule_key} {member}, or restore the entry",
            ))
        elif kind != "hash":
            result.add(_finding(
                "ENT-1", member, kind, f"the scheduled key holds a {kind}, not a hash: RedBeat's "
                "HGET fails with WRONGTYPE and beat exits", f"ZREM {layout.schedule_key} "
                f"{member}, and keep non-entry data under another prefix",
            ))


def check_statics(result: AuditResult, layout: Layout, names: list[str],
                  kinds: list[str]) -> None:
    for name, kind in zip(names, kinds, strict=True):
        result.counts["statics"] += 1
        if kind != "hash":
            result.add(_finding(
                "KEY-4", layout.statics_key, name, f"static entry {name!r} has no entry hash",
                "harmless: RedBeat drops stale statics when beat starts", outcome=Outcome.INFO,
            ))


def check_index_type(result: AuditResult, key: str, kind: str, rule: str, want: str) -> None:
    if kind not in (want, "none"):
        result.add(_finding(rule, key, kind, f"{key} is a {kind}, not a {want}: RedBeat's "
                            "commands on it fail with WRONGTYPE and beat exits",
                            f"rename or delete {key}; it belongs to the layout"))


def check_status_key(result: AuditResult, key: str, kind: str) -> None:
    """A beatspec scheduler's status hash, ``:scheduler`` or ``:invalid`` (KEY-10)."""
    if kind == "hash":
        result.add(_finding("KEY-10", key, "hash", "status hash written by a beatspec "
                            "scheduler (beatspec status shows it)", "-", outcome=Outcome.INFO))
    elif kind != "none":
        result.add(_finding("KEY-10", key, kind, f"{key} is a {kind}, not a hash: the key is "
                            "reserved for a beatspec scheduler's status",
                            f"rename or delete {key}; it belongs to the layout"))


def check_lock(result: AuditResult, layout: Layout, lock: LockState) -> None:
    key = layout.lock_key
    result.check("KEY-5", "LOCK-6")
    if lock.type == "none":
        result.add(_finding("LOCK-6", key, "absent", "no scheduler holds the lock",
                            "start a scheduler (beat with RedBeat, or beatspec run)",
                            outcome=Outcome.INFO))
        return
    if lock.type != "string":
        result.add(_finding("KEY-5", key, lock.type, f"the lock key is a {lock.type}, not a "
                            "string: RedBeat cannot acquire or extend it",
                            f"delete {key} (no scheduler can hold it)"))
        if lock.pttl < 0:
            result.add(_finding("LOCK-6", key, "no TTL", "the lock key has no TTL: it never "
                                "goes away by itself", f"DEL {key}"))
        return
    if lock.pttl < 0:
        result.add(_finding("LOCK-6", key, "no TTL", "the lock has no TTL: if its holder dies, "
                            "no scheduler ever takes over", f"PEXPIRE {key} <ms> (or delete it "
                            "once no scheduler runs)"))
        return
    result.add(_finding("LOCK-6", key, f"token {lock.token!r}, TTL {lock.pttl} ms",
                        "a scheduler holds the lock", "-", outcome=Outcome.INFO))


def check_declaration(result: AuditResult, layout: Layout, kind: str,
                      fields: dict[str, str], cli_profile: str | None) -> str:
    """The keyspace's declared version and profile (KEY-8, VER-1, VER-2); returns the profile."""
    key = layout.declaration_key
    result.check("VER-1", "VER-2")
    if kind == "none":
        result.add(_finding("VER-1", key, "absent", "no declaration: beatspec 1.0, core "
                            "profile, is assumed", f"HSET {key} version 1.0 profile core",
                            outcome=Outcome.INFO))
        return cli_profile or "core"
    if kind != "hash":
        result.add(_finding("VER-2", key, kind, f"the declaration key is a {kind}, not a hash",
                            f"DEL {key}; HSET {key} version 1.0 profile core"))
        return cli_profile or "core"
    version = fields.get("version", "")
    profile = fields.get("profile", "core")
    match = _VERSION.fullmatch(version)
    result.add(_finding("KEY-8", key, f"version {version!r}, profile {profile!r}",
                        "the keyspace declares its beatspec version and profile", "-",
                        outcome=Outcome.INFO))
    if match is None:
        result.add(_finding("VER-2", key, version or "(missing)", "version must be "
                            "major.minor, e.g. 1.0", f"HSET {key} version 1.0"))
        result.refused = True
    elif match.group(1) != "1":
        result.add(_finding("VER-2", key, version, "the keyspace declares a beatspec major "
                            "version this implementation does not follow (1.x): it is not "
                            "judged", "use a scheduler and tools for that major version"))
        result.refused = True
    else:
        result.minor = int(match.group(2))
        if result.minor > 0:
            result.add(_finding("VER-2", key, version, f"the keyspace declares 1.{result.minor}"
                                "; this implementation follows 1.0: additions of the newer "
                                "minor version are not judged", "-", outcome=Outcome.INFO))
    if profile not in ("core", "extended"):
        result.add(_finding("VER-2", key, profile, f"unknown profile {profile!r}",
                            "declare profile core or extended"))
        profile = "core"
    if cli_profile == "core" and profile == "extended":
        result.add(_finding("VER-3", key, profile, "the keyspace declares the extended profile "
                            "but was audited as core", "audit with --profile extended, or "
                            "remove extended-profile entries", outcome=Outcome.INFO))
    return cli_profile or profile


def check_server(result: AuditResult, layout: Layout, server: ServerState) -> None:
    result.check("SRV-1", "CLU-1")
    result.server.update(version=server.version, cluster=server.cluster,
                         maxmemory_policy=server.maxmemory_policy, role=server.role)
    policy = server.maxmemory_policy
    if policy is None:
        result.add(_finding("SRV-1", None, "unknown", "INFO did not report maxmemory-policy",
                            "check that the policy is noeviction or volatile-*",
                            outcome=Outcome.INFO))
    elif policy.startswith("allkeys-"):
        result.add(_finding("SRV-1", None, policy, f"maxmemory-policy {policy} lets Redis evict "
                            "schedule entries under memory pressure: they vanish silently "
                            "(redbeat#291)", "CONFIG SET maxmemory-policy noeviction "
                            "(or a volatile-* policy)"))
    if server.cluster and not _has_hash_tag(layout.prefix):
        result.add(_finding("CLU-1", None, layout.prefix, "Redis Cluster with a prefix without "
                            "a hash tag: entry and schedule keys land in different slots and "
                            "every MULTI fails with CROSSSLOT (redbeat#296)",
                            "use a prefix with a hash tag, e.g. '{redbeat}:'"))


_VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


def _has_hash_tag(prefix: str) -> bool:
    start = prefix.find("{")
    return start != -1 and prefix.find("}", start + 2) != -1
