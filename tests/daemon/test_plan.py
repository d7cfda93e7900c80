"""Unit tests of :func:`beatspec.daemon.plan.decide`: what a leader does with one entry at one
instant (spec §9 extensions, §10 scores, SCHED-*, ZSET-2/3). Pure: no Redis, no clock."""

from __future__ import annotations

import json
import math
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beatspec.codec import Entry, decode_entry, decode_meta
from beatspec.daemon.plan import DISABLED_RECHECK, decide
from beatspec.engine import next_run
from beatspec.findings import Outcome

NOW = datetime(2026, 11, 22, 10, 0, 30, tzinfo=UTC)


def _dt(value: datetime) -> dict[str, Any]:
    value = value.astimezone(UTC)
    return {"__type__": "datetime", "year": value.year, "month": value.month, "day": value.day,
            "hour": value.hour, "minute": value.minute, "second": value.second,
            "microsecond": value.microsecond, "timezone": "UTC"}


def interval(every: float, relative: bool = False) -> dict[str, Any]:
    return {"__type__": "interval", "every": every, "relative": relative}


def crontab(minute: str = "*", hour: str = "*", day_of_week: str = "*",
            day_of_month: str = "*", month_of_year: str = "*") -> dict[str, Any]:
    return {"__type__": "crontab", "minute": minute, "hour": hour, "day_of_week": day_of_week,
            "day_of_month": day_of_month, "month_of_year": month_of_year}


def entry(schedule: dict[str, Any], *, last: datetime | None = None, count: int = 0,
          extensions: dict[str, Any] | None = None, enabled: bool = True) -> Entry:
    """Decode an entry the way the daemon does (through the codec), failing on any finding."""
    fields = {
        "definition": json.dumps({"name": "job", "task": "proj.tasks.job", "args": [],
                                  "kwargs": {}, "options": {}, "schedule": schedule,
                                  "enabled": enabled}),
        "meta": json.dumps({"last_run_at": None if last is None else _dt(last),
                            "total_run_count": count}),
    }
    if extensions is not None:
        fields["extensions"] = json.dumps(extensions)
    decoded = decode_entry(fields, name="job", key="redbeat:job")
    failed = [f for f in decoded.report.findings if f.outcome is Outcome.FAILED]
    assert decoded.value is not None and not failed, failed
    return decoded.value


def meta_of(text: str | None) -> tuple[datetime | None, int]:
    assert text is not None
    decoded = decode_meta(text)
    assert decoded.value is not None, decoded.report.findings
    last = decoded.value.last_run_at
    return (None if last is None else last.to_datetime()), decoded.value.total_run_count or 0


# ------------------------------------------------------------------------- basics


def test_never_run_fires_now() -> None:
    """A never-run entry (last_run_at null) fires at once, whatever its stored score (SCHED-1,
    ENT-3 run-now recipe); meta becomes now with count + 1 and the score the next due time."""
    decision = decide(entry(interval(60), count=7), now=NOW, app_zone=UTC, stored_score=0)
    assert decision.action == "fire"
    assert [f.slot for f in decision.fires] == [NOW]
    assert decision.fires[0].delay == 0.0
    assert meta_of(decision.meta) == (NOW, 8)
    assert decision.score == math.floor((NOW + timedelta(seconds=60)).timestamp())


def test_due_interval_fires_and_rescores() -> None:
    """An interval entry whose last run is older than its period is due: one message for the
    slot last + every, meta = now (SCHED-2), score = next run after now (SCHED-3)."""
    last = NOW - timedelta(seconds=70)
    decision = decide(entry(interval(60), last=last, count=3), now=NOW, app_zone=UTC,
                      stored_score=last.timestamp() + 60)
    assert decision.action == "fire"
    assert [f.slot for f in decision.fires] == [last + timedelta(seconds=60)]
    assert meta_of(decision.meta) == (NOW, 4)
    assert decision.score == math.floor(NOW.timestamp()) + 60


def test_not_due_keeps_an_exact_score() -> None:
    """An entry not yet due is left alone when its score already is its due time."""
    last = NOW - timedelta(seconds=10)
    exact = math.floor((last + timedelta(seconds=60)).timestamp())
    decision = decide(entry(interval(60), last=last, count=1), now=NOW, app_zone=UTC,
                      stored_score=exact)
    assert decision.action == "wait"
    assert decision.fires == () and decision.meta is None and decision.score is None


@pytest.mark.parametrize("stored", [0, 1_795_340_000, float(math.floor(NOW.timestamp()))])
def test_early_score_is_corrected_to_the_due_time(stored: float) -> None:
    """A score earlier than the due time (a writer's 0, RedBeat's #210 early estimate) is
    rewritten to the exact due time, never later (ZSET-2, §10.2); nothing is fired."""
    last = NOW - timedelta(seconds=10)
    decision = decide(entry(interval(60), last=last, count=1), now=NOW, app_zone=UTC,
                      stored_score=stored)
    assert decision.action == "wait"
    assert decision.meta is None and decision.fires == ()
    assert decision.score == math.floor((last + timedelta(seconds=60)).timestamp())


def test_disabled_entry_is_parked_not_fired() -> None:
    """A disabled entry never fires; with a past score it is re-looked at DISABLED_RECHECK
    seconds later (RedBeat's 5 s), with a future score nothing is written (§10.3)."""
    disabled = entry(interval(1), enabled=False)
    past = decide(disabled, now=NOW, app_zone=UTC, stored_score=0)
    assert past.action == "disabled" and past.fires == () and past.meta is None
    assert past.score == math.floor(NOW.timestamp()) + DISABLED_RECHECK
    future = decide(disabled, now=NOW, app_zone=UTC, stored_score=NOW.timestamp() + 100)
    assert future.action == "disabled" and future.score is None and future.meta is None


def _rrule_once(at: datetime) -> dict[str, Any]:
    return {"__type__": "rrule", "freq": 3, "count": 1, "dtstart": int(at.timestamp()),
            "dtstart_tz": 0}


def test_exhausted_rrule_is_scored_minus_one() -> None:
    """An rrule past its last occurrence is exhausted: score -1 and nothing else (ZSET-3,
    §10.3); once stored as -1 it is not rewritten."""
    start = NOW - timedelta(days=3)
    done = entry(_rrule_once(start), last=start + timedelta(seconds=1), count=1)
    first = decide(done, now=NOW, app_zone=UTC, stored_score=0)
    assert first.action == "exhausted" and first.score == -1 and first.fires == ()
    again = decide(done, now=NOW, app_zone=UTC, stored_score=-1)
    assert again.action == "exhausted" and again.score is None


def test_exhausted_rrule_with_delete_after_last_run_is_deleted() -> None:
    """extensions.delete_after_last_run deletes an exhausted entry instead of scoring it -1
    (§9.2, EXT-5/EXT-6)."""
    start = NOW - timedelta(days=3)
    done = entry(_rrule_once(start), last=start + timedelta(seconds=1), count=1,
                 extensions={"delete_after_last_run": True})
    assert decide(done, now=NOW, app_zone=UTC, stored_score=0).action == "delete"


def test_rrule_last_occurrence_fires_then_exhausts() -> None:
    """The last occurrence of an rrule still fires; the score written after it is -1."""
    start = NOW - timedelta(seconds=5)
    decision = decide(entry(_rrule_once(start), last=start - timedelta(days=1)), now=NOW,
                      app_zone=UTC, stored_score=0)
    assert decision.action == "fire" and decision.score == -1


# --------------------------------------------------------------------- extensions


def test_entry_timezone_moves_a_crontab() -> None:
    """extensions.timezone replaces the app zone for crontab matching (§9.2, EXT-6, CRON-7):
    `0 9 * * *` in Europe/Berlin is due at 08:00Z in winter, while the same entry without the
    extension (app zone UTC) waits until 09:00Z; meta is written in the entry's zone."""
    last = datetime(2026, 11, 21, 8, 0, tzinfo=UTC)
    at = datetime(2026, 11, 22, 8, 0, 1, tzinfo=UTC)
    berlin = decide(entry(crontab("0", "9"), last=last, count=1,
                          extensions={"timezone": "Europe/Berlin"}),
                    now=at, app_zone=UTC, stored_score=0)
    assert berlin.action == "fire"
    assert [f.slot for f in berlin.fires] == [datetime(2026, 11, 22, 8, 0, tzinfo=UTC)]
    assert berlin.meta is not None and '"timezone": "Europe/Berlin"' in berlin.meta
    assert berlin.score == math.floor(datetime(2026, 11, 23, 8, 0, tzinfo=UTC).timestamp())
    plain = decide(entry(crontab("0", "9"), last=last + timedelta(hours=1), count=1), now=at,
                   app_zone=UTC, stored_score=0)
    assert plain.action == "wait"
    assert plain.score == math.floor(datetime(2026, 11, 22, 9, 0, tzinfo=UTC).timestamp())


def test_entry_timezone_follows_dst() -> None:
    """In summer the Berlin 09:00 crontab is due at 07:00Z (the zone follows DST, EXT-2)."""
    last = datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    decision = decide(entry(crontab("0", "9"), last=last, count=1,
                            extensions={"timezone": "Europe/Berlin"}),
                      now=datetime(2026, 7, 1, 8, 0, tzinfo=UTC), app_zone=UTC, stored_score=0)
    assert decision.action == "wait"
    assert decision.score == math.floor(datetime(2026, 7, 2, 7, 0, tzinfo=UTC).timestamp())


DOWN_LAST = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # two daily slots missed by NOW


def test_misfire_run_once_fires_once_after_downtime() -> None:
    """run_once (the default, Celery's behaviour): one message however many slots were
    missed; last_run_at = now, count + 1 (§9.3)."""
    for ext in (None, {"misfire": {"policy": "run_once"}}):
        decision = decide(entry(crontab("0", "9"), last=DOWN_LAST, count=5, extensions=ext),
                          now=NOW, app_zone=UTC, stored_score=0)
        assert decision.action == "fire" and len(decision.fires) == 1
        assert meta_of(decision.meta) == (NOW, 6)


def test_misfire_skip_beyond_grace_fires_nothing() -> None:
    """skip: when the newest missed slot is older than grace, nothing is sent, last_run_at
    becomes that slot, the count is kept and the score is the first slot after now (§9.3)."""
    decision = decide(entry(crontab("0", "9"), last=DOWN_LAST, count=5,
                            extensions={"misfire": {"policy": "skip", "grace": 60}}),
                      now=NOW, app_zone=UTC, stored_score=0)
    assert decision.action == "skip" and decision.fires == ()
    assert meta_of(decision.meta) == (datetime(2026, 11, 22, 9, 0, tzinfo=UTC), 5)
    assert decision.score == math.floor(datetime(2026, 11, 23, 9, 0, tzinfo=UTC).timestamp())


def test_misfire_skip_within_grace_fires_once() -> None:
    """skip with the newest missed slot within grace behaves as run_once (§9.3)."""
    decision = decide(entry(crontab("0", "9"), last=DOWN_LAST, count=5,
                            extensions={"misfire": {"policy": "skip", "grace": 3600 * 2}}),
                      now=NOW, app_zone=UTC, stored_score=0)
    assert decision.action == "fire" and len(decision.fires) == 1
    assert decision.fires[0].slot == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
    assert meta_of(decision.meta) == (NOW, 6)


def test_misfire_run_all_catches_up_in_slot_order() -> None:
    """run_all: one message per missed slot, oldest first, count + n, last_run_at = now."""
    decision = decide(entry(crontab("0", "9"), last=DOWN_LAST, count=5,
                            extensions={"misfire": {"policy": "run_all"}}),
                      now=NOW, app_zone=UTC, stored_score=0)
    assert decision.action == "fire"
    assert [f.slot for f in decision.fires] == [datetime(2026, 11, 21, 9, 0, tzinfo=UTC),
                                                datetime(2026, 11, 22, 9, 0, tzinfo=UTC)]
    assert meta_of(decision.meta) == (NOW, 7)


def test_misfire_run_all_after_a_year_of_minutes_is_bounded() -> None:
    """A minutely crontab down for a year (525,600 missed slots) with run_all fires only the
    newest max_catchup slots, in order, and the decision does not enumerate the whole year
    (bounded work: done well within a generous second)."""
    last = NOW - timedelta(days=365)
    started = time.perf_counter()
    decision = decide(entry(crontab(), last=last, count=5,
                            extensions={"misfire": {"policy": "run_all", "max_catchup": 24}}),
                      now=NOW, app_zone=UTC, stored_score=0)
    elapsed = time.perf_counter() - started
    slots = [f.slot for f in decision.fires]
    newest = NOW.replace(second=0)
    assert slots == [newest - timedelta(minutes=23 - i) for i in range(24)]
    assert meta_of(decision.meta) == (NOW, 29)
    assert elapsed < 5.0  # a bound on work done, not a speed claim: the year has 525,600 slots
    for policy in ("run_once", "skip"):
        other = decide(entry(crontab(), last=last, count=5,
                             extensions={"misfire": {"policy": policy, "grace": 60}}),
                       now=NOW, app_zone=UTC, stored_score=0)
        assert other.action == "fire" and len(other.fires) == 1


def test_misfire_run_all_interval_slots_are_on_the_grid() -> None:
    """For an interval the missed slots are L + k*every (§9.3: s1 = next(L), s(k+1) =
    next(s(k))): run_all after an hour of a 7 s interval fires the three newest true slots,
    not slots counted from an arbitrary window start."""
    last = datetime(2026, 11, 22, 9, 0, 3, tzinfo=UTC)
    decision = decide(entry(interval(7), last=last, count=0,
                            extensions={"misfire": {"policy": "run_all", "max_catchup": 3}}),
                      now=NOW, app_zone=UTC, stored_score=0)
    grid = [last + timedelta(seconds=7 * k) for k in range(1, 1000)]
    expected = [s for s in grid if s <= NOW][-3:]
    assert [f.slot for f in decision.fires] == expected


def test_misfire_skip_interval_moves_last_run_to_the_newest_true_slot() -> None:
    """skip on an interval beyond grace sets last_run_at to s(n), the newest slot on the
    L + k*every grid, so the following runs stay on that grid (§9.3)."""
    last = datetime(2026, 11, 22, 6, 0, 3, tzinfo=UTC)
    decision = decide(entry(interval(7), last=last, count=2,
                            extensions={"misfire": {"policy": "skip", "grace": 0}}),
                      now=NOW + timedelta(seconds=0.5), app_zone=UTC, stored_score=0)
    grid = [last + timedelta(seconds=7 * k) for k in range(1, 3000)]
    newest = [s for s in grid if s <= NOW][-1]
    assert decision.action == "skip"
    assert meta_of(decision.meta) == (newest, 2)
    assert decision.score == math.floor((newest + timedelta(seconds=7)).timestamp())


@pytest.mark.parametrize("policy", ["skip", "run_all"])
def test_misfire_on_a_schedule_that_does_not_advance_terminates(policy: str) -> None:
    """A relative interval shorter than a second rounds its next run down to the second it
    started from (next_run(t) == t, Celery's delta_resolution): collecting the missed slots
    for skip/run_all must still terminate, or one such entry would hang every scheduler."""
    result: list[Any] = []
    loaded = entry(interval(0.5, relative=True), last=NOW - timedelta(seconds=10),
                   extensions={"misfire": {"policy": policy, "grace": 30}})
    worker = threading.Thread(target=lambda: result.append(
        decide(loaded, now=NOW, app_zone=UTC, stored_score=0)), daemon=True)
    worker.start()
    worker.join(timeout=20)
    assert result, "decide() did not return"
    assert result[0].action == "fire" and len(result[0].fires) >= 1


def test_jitter_delays_are_within_range_and_seeded() -> None:
    """jitter: each message is delayed by a uniform draw in [0, jitter]; meta and score are
    those of the un-jittered run (§9.2, EXT-4); a seeded Random makes the draws repeatable."""
    jittered = entry(interval(60), last=NOW - timedelta(seconds=3600), count=0,
                     extensions={"jitter": 30, "misfire": {"policy": "run_all",
                                                           "max_catchup": 50}})
    first = decide(jittered, now=NOW, app_zone=UTC, stored_score=0, rng=random.Random(7))
    again = decide(jittered, now=NOW, app_zone=UTC, stored_score=0, rng=random.Random(7))
    delays = [f.delay for f in first.fires]
    assert len(delays) == 50
    assert all(0.0 <= d <= 30.0 for d in delays)
    assert len(set(delays)) > 1
    assert delays == [f.delay for f in again.fires]
    plain = decide(entry(interval(60), last=NOW - timedelta(seconds=3600), count=0,
                         extensions={"misfire": {"policy": "run_all", "max_catchup": 50}}),
                   now=NOW, app_zone=UTC, stored_score=0, rng=random.Random(7))
    assert plain.meta == first.meta and plain.score == first.score
    assert all(f.delay == 0.0 for f in plain.fires)


def test_vendor_extension_members_are_ignored() -> None:
    """x- members change nothing (EXT-6)."""
    base = entry(interval(60), last=NOW - timedelta(seconds=70), count=1)
    vendor = entry(interval(60), last=NOW - timedelta(seconds=70), count=1,
                   extensions={"x-acme-owner": "billing"})
    a = decide(base, now=NOW, app_zone=UTC, stored_score=0)
    b = decide(vendor, now=NOW, app_zone=UTC, stored_score=0)
    assert (a.action, a.meta, a.score, a.fires) == (b.action, b.meta, b.score, b.fires)


# --------------------------------------------------------------------- properties

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


@st.composite
def schedules(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        every = draw(st.one_of(st.integers(1, 200_000),
                               st.floats(0.5, 100_000, allow_nan=False)))
        return interval(every, draw(st.booleans()))
    minute = draw(st.sampled_from(["*", "0", "*/15", "5,35", "59"]))
    hour = draw(st.sampled_from(["*", "0", "9", "2", "*/6"]))
    dow = draw(st.sampled_from(["*", "1", "0,6", "1-5"]))
    dom = draw(st.sampled_from(["*", "1", "15", "31"]))
    return crontab(minute, hour, dow, dom)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schedule=schedules(),
       last_offset=st.one_of(st.none(), st.integers(0, 400 * 86400)),
       now_offset=st.integers(0, 5 * 365 * 86400),
       now_micro=st.integers(0, 999_999),
       zone=st.sampled_from(ZONES),
       ext_zone=st.one_of(st.none(), st.sampled_from(ZONES)),
       policy=st.sampled_from([None, "run_once", "skip", "run_all"]),
       stored=st.one_of(st.none(), st.just(0), st.integers(-10 * 86400, 10 * 86400)))
def test_written_score_never_later_than_next_due(
        schedule: dict[str, Any], last_offset: int | None, now_offset: int, now_micro: int,
        zone: str, ext_zone: str | None, policy: str | None, stored: int | None) -> None:
    """For random interval/crontab entries, zones and misfire policies: any score decide()
    writes is no later than the entry's next due time as computed from the meta it leaves
    (ZSET-2; a past due time means "now"), and a fired entry's new meta decodes cleanly with
    last_run_at = now and total_run_count increased by the number of messages."""
    now = EPOCH + timedelta(seconds=now_offset, microseconds=now_micro)
    last = None if last_offset is None else now - timedelta(seconds=last_offset)
    ext: dict[str, Any] = {}
    if ext_zone:
        ext["timezone"] = ext_zone
    if policy:
        ext["misfire"] = {"policy": policy, "grace": 30, "max_catchup": 5}
    loaded = entry(schedule, last=last, count=3, extensions=ext or None)
    app_zone = ZoneInfo(zone)
    stored_score = None if stored is None else float(math.floor(now.timestamp()) + stored)
    decision = decide(loaded, now=now, app_zone=app_zone, stored_score=stored_score,
                      rng=random.Random(0))
    eval_zone = ZoneInfo(ext_zone) if ext_zone else app_zone
    if decision.meta is not None:
        new_last, new_count = meta_of(decision.meta)
        assert new_last is not None
        if decision.action == "fire":
            assert new_last == now
            assert new_count == 3 + len(decision.fires) and decision.fires
        else:
            assert decision.action == "skip" and new_count == 3 and new_last <= now
    else:
        new_last = last
        assert decision.action in ("wait", "exhausted")
    if decision.score is None:
        return
    assert decision.score == int(decision.score)
    # relative intervals round in last_run_at's own zone (INT-7): keep the decoded zone
    upcoming = next_run(loaded.definition.schedule,
                        new_last or datetime(1, 1, 2, tzinfo=eval_zone), zone=eval_zone)
    assert upcoming is not None
    assert decision.score <= math.floor(max(upcoming, now).timestamp())
