"""What to do with one loaded entry at one instant: pure decisions, no Redis, no clock.

A tick decodes each due entry and asks :func:`decide`. The answer says which messages to send
(one per fired slot, each with its jitter delay), what ``meta`` and score to write, or whether
the entry is only re-scored, parked (disabled), left alone, or deleted (spec §9, §10, SCHED-*).
"""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final, Literal
from zoneinfo import ZoneInfo

from beatspec.codec import DateTime, Entry, Interval, Meta, Misfire, Schedule, encode_meta
from beatspec.engine import due, next_run, score_for

__all__ = ["DISABLED_RECHECK", "Decision", "Fire", "Moment", "decide", "entry_zone"]

#: A disabled entry is looked at again this many seconds later (RedBeat re-checks every 5 s).
DISABLED_RECHECK = 5

Action = Literal["fire", "skip", "wait", "disabled", "exhausted", "delete"]


@dataclass(frozen=True, slots=True)
class Fire:
    """One message to send: the slot it stands for (UTC) and the jitter delay in seconds."""

    slot: datetime
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome for one entry; ``meta``/``score`` are what to write (None: nothing)."""

    action: Action
    fires: tuple[Fire, ...] = ()
    meta: str | None = None
    score: int | None = None
    #: fire/wait: the exact next due time (epoch seconds). The score is rounded down, so an entry
    #: due later in the current second is in the due range but not due: the loop wakes up for it.
    due_at: float | None = None


class Moment:
    """One instant as a tick sees it, and what every entry that fires at it shares: the
    instant in each zone, and each (schedule, zone)'s next run after it. A tick decides all
    its entries at one instant; many of them share a schedule ("every minute")."""

    __slots__ = ("_after", "_local", "now")

    def __init__(self, now: datetime) -> None:
        self.now = now if now.tzinfo is UTC else now.astimezone(UTC)
        self._local: dict[tzinfo, tuple[datetime, DateTime]] = {}
        self._after: dict[tuple[object, tzinfo], tuple[datetime | None, int]] = {}

    def local(self, zone: tzinfo) -> tuple[datetime, DateTime]:
        """The instant in ``zone``, as a datetime and as ``meta`` stores it."""
        found = self._local.get(zone)
        if found is None:
            local = self.now.astimezone(zone)
            found = self._local[zone] = (local, DateTime.from_datetime(local))
        return found

    def after(self, schedule: Schedule, zone: tzinfo) -> tuple[datetime | None, int]:
        """The next run of ``schedule`` after this instant, and the score to store for it."""
        try:
            found = self._after.get((schedule, zone))
        except TypeError:  # a schedule holding a list: not hashable
            found, schedule_key = None, None
        else:
            schedule_key = schedule
        if found is None:
            upcoming = next_run(schedule, self.local(zone)[0], zone=zone)
            found = (upcoming, score_for(upcoming, never_run=False, now=self.now))
            if schedule_key is not None:
                self._after[(schedule_key, zone)] = found
        return found


def entry_zone(entry: Entry, app_zone: tzinfo) -> tzinfo:
    """The evaluation zone: ``extensions.timezone``, else the app zone (§9.2)."""
    ext = entry.extensions
    if ext is not None and ext.timezone:
        return ZoneInfo(ext.timezone)
    return app_zone


def decide(entry: Entry, *, now: datetime | Moment, app_zone: tzinfo,
           stored_score: float | None, rng: random.Random | None = None) -> Decision:
    """Decide what a leader does with ``entry`` at ``now`` (aware; a :class:`Moment` when
    deciding many entries at one instant)."""
    definition = entry.definition
    schedule = definition.schedule
    moment = now if isinstance(now, Moment) else Moment(now)
    now = moment.now
    floor_now = math.floor(now.timestamp())
    if not definition.enabled:
        if stored_score is not None and stored_score > floor_now:
            return Decision("disabled")
        return Decision("disabled", score=floor_now + DISABLED_RECHECK)
    zone = entry_zone(entry, app_zone)
    meta = entry.meta
    last = meta.last_run_at.to_datetime() if meta and meta.last_run_at else None
    count = (meta.total_run_count or 0) if meta else 0
    state = due(schedule, last, now, zone=zone)
    if state.next_run is None:  # exhausted (ZSET-3, §9.2)
        ext = entry.extensions
        if ext is not None and ext.delete_after_last_run:
            return Decision("delete")
        return Decision("exhausted", score=None if stored_score == -1 else -1)
    if not state.is_due:
        exact = math.floor(state.next_run.timestamp())
        # correct an early score (RedBeat's #210 estimate, a writer's 0) to the due time
        return Decision("wait", score=exact if stored_score is None or stored_score < exact
                        else None, due_at=state.next_run.timestamp())
    policy = _misfire(entry)
    if last is None:
        return _fire(entry, (Fire(now),), moment, zone, count, rng)
    if policy.policy == "run_once":
        return _fire(entry, (Fire(state.next_run),), moment, zone, count, rng)
    slots = _recent_slots(entry, last, now, zone, policy.max_catchup
                          if policy.policy == "run_all" else 1)
    newest = slots[-1] if slots else state.next_run
    if (now - newest).total_seconds() <= policy.grace or policy.policy == "run_all":
        fires = (Fire(newest),) if policy.policy == "skip" else tuple(Fire(s) for s in slots)
        return _fire(entry, fires or (Fire(newest),), moment, zone, count, rng)
    # skip: nothing is sent; last_run_at moves to the newest missed slot
    new_last = newest.astimezone(zone)
    upcoming = next_run(schedule, new_last, zone=zone)
    return Decision("skip", meta=_meta(new_last, count),
                    score=score_for(upcoming, never_run=False, now=now))


_DEFAULT_MISFIRE: Final = Misfire()


def _misfire(entry: Entry) -> Misfire:
    ext = entry.extensions
    return ext.misfire if ext is not None and ext.misfire is not None else _DEFAULT_MISFIRE


def _fire(entry: Entry, fires: tuple[Fire, ...], moment: Moment, zone: tzinfo, count: int,
          rng: random.Random | None) -> Decision:
    ext = entry.extensions
    if ext is not None and ext.jitter:
        pick = rng or random.Random()
        fires = tuple(Fire(f.slot, pick.uniform(0.0, ext.jitter)) for f in fires)
    upcoming, score = moment.after(entry.definition.schedule, zone)
    meta = encode_meta(Meta(moment.local(zone)[1], count + len(fires)))
    return Decision("fire", fires, meta=meta, score=score,
                    due_at=upcoming.timestamp() if upcoming is not None else None)


def _meta(last_run_at: datetime, count: int) -> str:
    return encode_meta(Meta(DateTime.from_datetime(last_run_at), count))


def _recent_slots(entry: Entry, last: datetime, now: datetime, zone: tzinfo,
                  limit: int) -> list[datetime]:
    """The newest ``limit`` missed slots in (last, now], oldest first (§9.3).

    After a long downtime there may be millions of slots; the window looked at starts one
    minute before ``now`` and doubles until it holds ``limit`` slots or reaches ``last``.
    """
    schedule = entry.definition.schedule
    if isinstance(schedule, Interval) and not schedule.relative:
        # elapsed time: the slots are last + k * every, however far the window starts off them
        every = timedelta(seconds=schedule.every)
        newest = (now - last) // every
        first = max(newest - limit + 1, 1)
        return [last + k * every for k in range(first, newest + 1)]
    window = timedelta(minutes=1)
    while True:
        start = max(last, now - window)
        found: deque[datetime] = deque(maxlen=limit)
        total = 0
        current: datetime | None = start.astimezone(last.tzinfo)
        while current is not None:
            previous = current
            current = next_run(schedule, current, zone=zone)
            # a schedule that does not advance (a relative interval under a second rounds its
            # next run down to the start) has no further slots to count
            if current is None or current > now or current <= previous:
                break
            found.append(current)
            total += 1
            current = current.astimezone(last.tzinfo)
        if total >= limit or start == last:
            return list(found)
        window *= 2
