"""The rule catalogue of beatspec 1: every rule ID, its RFC 2119 level, and what it governs.

``spec/beatspec-1.md`` is normative; this table mirrors it so that code can name rules, and a test
(``tests/test_rules.py``) fails if the two ever disagree about an ID, a level or a kind.

Kinds say which suite tests a rule: ``document`` rules are judged on one JSON document (the
validator, the document vectors), ``schedule`` rules by the schedule engine, ``keyspace`` rules on a
Redis keyspace (the audit), ``scheduler`` and ``writer`` rules on programs that read or write one.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["RULES", "Level", "Rule", "rule"]


class Level(StrEnum):
    """The strength of a rule; a broken MUST is FAILED, a broken SHOULD is NON-STRICT."""

    MUST = "MUST"
    SHOULD = "SHOULD"
    MAY = "MAY"


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    level: Level
    kind: str
    summary: str


_M, _S, _Y = Level.MUST, Level.SHOULD, Level.MAY

_TABLE: tuple[tuple[str, Level, str, str], ...] = (
    # --- keys -------------------------------------------------------------------------------
    ("KEY-1", _M, "keyspace", "keys are the prefix (default 'redbeat:') plus a suffix, concatenated"),
    ("KEY-2", _M, "keyspace", "an entry lives at the key prefix + name"),
    ("KEY-3", _M, "keyspace", "prefix + ':schedule' is a sorted set indexing the entries"),
    ("KEY-4", _M, "keyspace", "prefix + ':statics' is a set of the names of static entries"),
    ("KEY-5", _M, "keyspace", "prefix + ':lock' is a string holding the leader's token, with a TTL"),
    ("KEY-6", _M, "document", "an entry name must not make its key collide with a reserved key"),
    ("KEY-7", _S, "document", "an entry name should be printable, without whitespace or a leading ':'"),
    ("KEY-8", _Y, "keyspace", "prefix + ':beatspec' is a hash declaring the version and profile"),
    ("KEY-9", _S, "keyspace", "no other keys should live under the prefix"),
    ("KEY-10", _S, "keyspace", "prefix + ':scheduler' and ':invalid' are status hashes written only by "
                               "the lock holder"),
    # --- entry hash -------------------------------------------------------------------------
    ("ENT-1", _M, "keyspace", "an entry key holds a hash"),
    ("ENT-2", _M, "document", "the entry hash has a non-empty 'definition' field"),
    ("ENT-3", _M, "document", "an entry has a 'meta' field, written together with 'definition'"),
    ("ENT-4", _S, "document", "the entry hash has no fields but definition, meta and extensions"),
    # --- JSON text --------------------------------------------------------------------------
    ("JSON-1", _M, "document", "field values are UTF-8 JSON text whose top level is an object"),
    ("JSON-2", _M, "document", "no NaN, Infinity or -Infinity literals"),
    ("JSON-3", _M, "document", "no duplicate member names in an object"),
    ("JSON-4", _M, "document", "integers fit in 64 bits and numbers in an IEEE 754 double"),
    ("JSON-5", _S, "document", "integers should lie within +-(2**53 - 1)"),
    ("JSON-6", _M, "document", "nesting depth is at most 64"),
    ("JSON-7", _M, "document", "a field value is at most 1 MiB"),
    ("JSON-8", _M, "document", "an integer member is written without fraction or exponent"),
    # --- typed values -----------------------------------------------------------------------
    ("TAG-1", _M, "document", "an object whose '__type__' is a known tag is a valid value of that type"),
    ("TAG-2", _M, "document", "args, kwargs and options hold no schedule, weekday or kombu-tagged values"),
    ("TAG-3", _S, "document", "args, kwargs and options hold no objects with an unknown '__type__'"),
    # --- definition -------------------------------------------------------------------------
    ("DEF-1", _M, "document", "definition has only the members name, task, args, kwargs, options, "
                              "schedule, enabled (and legacy relative)"),
    ("DEF-2", _M, "document", "definition.name is a string equal to the entry key's suffix"),
    ("DEF-3", _M, "document", "definition.name is not empty"),
    ("DEF-4", _M, "document", "definition.task is a non-empty string"),
    ("DEF-5", _M, "document", "definition.schedule is present and a valid schedule"),
    ("DEF-6", _S, "document", "definition.schedule is a typed object, not a bare number"),
    ("DEF-7", _M, "document", "definition.args is an array or null"),
    ("DEF-8", _M, "document", "definition.kwargs is an object or null"),
    ("DEF-9", _M, "document", "definition.options is an object or null"),
    ("DEF-10", _M, "document", "definition.enabled is a boolean"),
    ("DEF-11", _S, "document", "definition.relative is not written (legacy); if present, a boolean"),
    ("DEF-12", _S, "document", "writers write all seven definition members"),
    # --- meta -------------------------------------------------------------------------------
    ("META-1", _M, "document", "meta has only the members last_run_at and total_run_count"),
    ("META-2", _M, "document", "meta.last_run_at is present, a datetime or null"),
    ("META-3", _M, "document", "meta.total_run_count is a non-negative integer"),
    # --- datetime ---------------------------------------------------------------------------
    ("DT-1", _M, "document", "a datetime has year, month, day and only the optional members "
                             "hour, minute, second, microsecond, timezone, fold"),
    ("DT-2", _M, "document", "datetime fields are integers forming a real calendar date and time"),
    ("DT-3", _M, "document", "datetime.timezone is a known IANA zone name or seconds east of UTC "
                             "strictly within one day"),
    ("DT-4", _S, "document", "writers write datetime.timezone as an IANA zone name"),
    ("DT-5", _S, "document", "writers write every datetime member except fold"),
    # --- interval ---------------------------------------------------------------------------
    ("INT-1", _M, "document", "an interval has both 'every' and 'relative'"),
    ("INT-2", _M, "document", "interval.every is a number of seconds, 0 < every <= 3153600000"),
    ("INT-3", _M, "document", "interval.relative is a boolean"),
    ("INT-4", _S, "document", "an interval has no other members"),
    ("INT-5", _S, "document", "interval.every should be at least 1 second"),
    # --- crontab ----------------------------------------------------------------------------
    ("CRON-1", _M, "document", "a crontab has only the members minute, hour, day_of_week, "
                               "day_of_month, month_of_year"),
    ("CRON-2", _M, "document", "a crontab string field follows the beatspec crontab grammar"),
    ("CRON-3", _M, "document", "crontab values lie in their field's range and steps are >= 1"),
    ("CRON-4", _M, "document", "the day_of_month and month_of_year fields can occur together"),
    ("CRON-5", _S, "document", "writers write all five crontab fields, as strings"),
    ("CRON-6", _M, "document", "an integer or array crontab field holds in-range integers, "
                               "arrays non-empty"),
    # --- rrule ------------------------------------------------------------------------------
    ("RRULE-1", _M, "document", "an rrule has only the members beatspec lists"),
    ("RRULE-2", _M, "document", "rrule.freq is an integer 0..6 or a frequency name"),
    ("RRULE-3", _S, "document", "writers write rrule.freq as an integer"),
    ("RRULE-4", _M, "document", "rrule.dtstart is present, an integer of UTC epoch seconds"),
    ("RRULE-5", _M, "document", "rrule.dtstart_tz and until_tz are minutes east of UTC, "
                                "strictly within one day"),
    ("RRULE-6", _M, "document", "rrule.until is epoch seconds or null, count a positive integer or "
                                "null, not both set"),
    ("RRULE-7", _M, "document", "rrule.interval is a positive integer"),
    ("RRULE-8", _M, "document", "rrule by* members are null, an integer or a non-empty array of "
                                "integers in range"),
    ("RRULE-9", _M, "document", "rrule.byweekday and wkst are weekday numbers or weekday values"),
    ("RRULE-10", _S, "document", "rrule.dtstart_tz and until_tz should be 0 (UTC)"),
    ("WDAY-1", _M, "document", "a weekday has 'wkday' 0..6 and optionally 'n', a non-zero integer "
                               "in -53..53"),
    # --- solar (extended profile) -----------------------------------------------------------
    ("SOLAR-1", _M, "document", "solar schedules appear only in keyspaces of the extended profile"),
    ("SOLAR-2", _M, "document", "a solar schedule has event, lat and lon, each valid"),
    # --- options ----------------------------------------------------------------------------
    ("OPT-1", _M, "document", "known options have their documented types and ranges"),
    ("OPT-2", _M, "document", "options reserved to the scheduler are not set"),
    ("OPT-3", _S, "document", "options.priority lies in 0..9"),
    ("OPT-4", _S, "document", "options holds only the options beatspec lists"),
    # --- extensions -------------------------------------------------------------------------
    ("EXT-1", _M, "document", "the 'extensions' field is a JSON object with only known or 'x-' "
                              "members"),
    ("EXT-2", _M, "document", "extensions.timezone is a known IANA zone name"),
    ("EXT-3", _M, "document", "extensions.misfire is a valid misfire policy"),
    ("EXT-4", _M, "document", "extensions.jitter is a number of seconds in 0..3600"),
    ("EXT-5", _M, "document", "extensions.delete_after_last_run is a boolean"),
    ("EXT-6", _M, "scheduler", "a beatspec scheduler honours every extension it finds"),
    # --- schedule index ---------------------------------------------------------------------
    ("ZSET-1", _M, "keyspace", "a schedule member is the full key of an entry"),
    ("ZSET-2", _M, "keyspace", "a score is a UTC epoch time in seconds, no later than the next due "
                               "time"),
    ("ZSET-3", _M, "keyspace", "a score of -1 marks an exhausted schedule, and only that"),
    ("ZSET-4", _M, "keyspace", "every enabled entry has a schedule member"),
    ("ZSET-5", _S, "keyspace", "scores are integers"),
    ("ZSET-6", _M, "keyspace", "every schedule member has an entry"),
    # --- lock -------------------------------------------------------------------------------
    ("LOCK-1", _M, "scheduler", "the lock is acquired with SET NX PX and a unique token"),
    ("LOCK-2", _M, "scheduler", "the lock is extended only while it holds the holder's token"),
    ("LOCK-3", _M, "scheduler", "the lock is released only by its holder"),
    ("LOCK-4", _M, "scheduler", "only the lock holder fires entries and writes meta and scores"),
    ("LOCK-5", _S, "scheduler", "the lock TTL exceeds the longest pause between extensions"),
    ("LOCK-6", _M, "keyspace", "the lock key always has a TTL"),
    ("LOCK-7", _M, "scheduler", "every scheduler write is fenced by the lock token; no message once "
                                "the lease ran out"),
    # --- the beatspec scheduler (spec 11.5) ---------------------------------------------------
    ("RUN-1", _M, "scheduler", "an invalid entry is never fired, changed or deleted; it is backed off"),
    ("RUN-2", _M, "scheduler", "a failure confined to one entry never stops the scheduler or delays "
                               "others"),
    ("RUN-3", _M, "scheduler", "meta and score are committed before the message is published (at "
                               "most once)"),
    ("RUN-4", _M, "scheduler", "meta and scores are written only if the entry is unchanged since it "
                               "was read"),
    ("RUN-5", _S, "scheduler", "a scheduler that loses the lock returns to standby; short TTL, "
                               "frequent retries"),
    ("RUN-6", _M, "scheduler", "static entries are synced only by the lock holder, keeping meta, "
                               "deleting stale ones"),
    # --- writers ----------------------------------------------------------------------------
    ("WRITE-1", _M, "writer", "create: HSET definition, HSETNX meta, ZADD, in one MULTI"),
    ("WRITE-2", _M, "writer", "update keeps meta and recomputes the score from it"),
    ("WRITE-3", _M, "writer", "delete: ZREM and DEL in one MULTI"),
    ("WRITE-4", _M, "writer", "enable and disable rewrite the definition's 'enabled'"),
    ("WRITE-5", _M, "writer", "run-now sets meta.last_run_at to null and the score to now, keeping "
                               "total_run_count"),
    ("WRITE-6", _M, "writer", "writers do not touch the statics set or the lock"),
    ("WRITE-7", _M, "writer", "changes to an entry and its score are made in one transaction"),
    # --- cluster, versions, compatibility ---------------------------------------------------
    ("CLU-1", _M, "keyspace", "on Redis Cluster the prefix contains a hash tag"),
    ("SRV-1", _M, "keyspace", "the server does not evict schedule keys (no allkeys-* policy)"),
    ("VER-1", _M, "keyspace", "a keyspace without a declaration follows beatspec 1, core profile"),
    ("VER-2", _M, "keyspace", "a reader refuses a keyspace declaring a major version it lacks"),
    ("VER-3", _M, "keyspace", "a core keyspace holds only what RedBeat 2.4 reads correctly"),
    ("COMPAT-1", _M, "document", "readers accept what RedBeat 2.x writes (lenient forms)"),
    # --- schedule semantics (spec 5.8) ------------------------------------------------------
    ("SCHED-1", _M, "schedule", "an entry is due iff now >= next_run(last_run_at); never run is "
                                "evaluated from 0001-01-02; disabled is never due"),
    ("SCHED-2", _M, "schedule", "after a fire last_run_at is the send time, not the missed slot: one "
                                "catch-up run"),
    ("SCHED-3", _M, "schedule", "the score is floor(max(next_run, now)); floor(now) if never run; -1 "
                                "if exhausted"),
    ("SCHED-4", _S, "schedule", "next_check is advisory; a scheduler caps its sleep at its max "
                                "interval"),
    ("INT-6", _M, "schedule", "a plain interval's next run is last_run_at + every in elapsed (UTC) "
                              "time"),
    ("INT-7", _M, "schedule", "a relative interval rounds down to its unit on last_run_at's wall "
                              "clock, with Celery 5.7's DST handling"),
    ("CRON-7", _M, "schedule", "a crontab matches a wall-clock minute in its zone iff all five "
                               "fields match (AND)"),
    ("CRON-8", _M, "schedule", "a crontab's next run is the fold-0 instant of the first matching "
                               "minute after wall(last_run_at) that is after last_run_at"),
    ("CRON-9", _M, "schedule", "a matching time in a DST gap fires once, with the pre-transition "
                               "offset; the gap collapses into one run"),
    ("CRON-10", _M, "schedule", "a repeated wall time fires only in its first pass"),
    ("CRON-11", _Y, "schedule", "a crontab catch-up run older than the starting deadline may be "
                                "skipped"),
    ("RRULE-11", _M, "schedule", "an rrule's next run is dateutil's first occurrence strictly after "
                                 "last_run_at, in the fixed offset dtstart_tz"),
    ("RRULE-12", _M, "schedule", "an exhausted rrule is never due, has no next check and scores -1"),
    ("SOLAR-3", _M, "schedule", "a solar next run is Celery 5.7's ephem event after last_run_at in "
                                "UTC, within 60 s"),
)

RULES: dict[str, Rule] = {rid: Rule(rid, level, kind, text) for rid, level, kind, text in _TABLE}


def rule(rule_id: str) -> Rule:
    """Look a rule up by ID; raise ``KeyError`` for an unknown one (a bug, never user input)."""
    return RULES[rule_id]
