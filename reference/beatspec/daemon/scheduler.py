"""The scheduler loop: leadership, ticks, fenced commits, publishing (spec §10, §11, §11.5).

One process runs one :class:`Scheduler`. It is either a **standby**, trying ``SET NX PX`` every
``retry_interval`` seconds, or the **leader**, which extends the lock every third of its TTL and
ticks. Losing the lock, or a Redis error that outlasts the lease, makes it a standby again: the
loop never exits on its own except for ``--once`` and signals.

Delivery is **at most once**, as with RedBeat: a tick commits ``meta`` and the next score in one
fenced script per batch, then publishes. A message is published only while the leader's lease
(the time the last acquire/extend was sent, plus 90 % of the TTL) has not run out, so a leader
paused past its TTL never publishes after it wakes up; its runs are lost, not repeated.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import itertools
import json
import math
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

import redis

from beatspec import __version__
from beatspec.codec import Entry
from beatspec.codec._fast import FastEntryDecoder
from beatspec.daemon.config import RunConfig
from beatspec.daemon.logs import LOGGER
from beatspec.daemon.messages import (
    Encoded,
    MessagePlan,
    Publisher,
    PublishFailed,
    TaskMessage,
    plan_message,
)
from beatspec.daemon.metrics import Metrics
from beatspec.daemon.plan import Decision, Moment, decide
from beatspec.daemon.statics import ScheduleFileError, StaticSchedule, load_schedule, sync_statics
from beatspec.findings import Finding, Outcome
from beatspec.keyspace import Keyspace
from beatspec.keyspace.scheduling import Change, DueMember, LoadedEntry, ScheduleStore

__all__ = ["Scheduler"]

#: Batches per page of the due range (one ZRANGEBYSCORE): a page's batches are pipelined.
_PAGE_BATCHES = 4
_LEASE = 0.9  # share of the TTL a leader trusts its lock for, counted from sending the command


@dataclass(frozen=True, slots=True)
class _Read:
    """An entry as read and decoded: the entry, or the finding that keeps it from running."""

    member: DueMember  # its key, and its score when read
    loaded: LoadedEntry
    entry: Entry | None
    finding: Finding | None = None
    op: Literal["B", "b"] = "B"  # how to back off an invalid entry
    plan: MessagePlan | None = None  # its message, but for the task id and the times
    #: when it was last decided "wait": its exact due time (not decided again before then)
    due_at: float | None = None
    #: read ahead: its next message, built and encoded (used once, for a run sent at once)
    prepared: Encoded | None = None


@dataclass(frozen=True, slots=True)
class _Pending:
    """A committed run waiting for its jitter delay."""

    message: TaskMessage
    slot: float  # due time, epoch seconds
    key: str
    encoded: Encoded | None = None  # made ready to send while the commit ran


@dataclass(frozen=True, slots=True)
class _Round:
    """One batch whose commit script was sent: what was decided, and the runs to publish."""

    reads: Sequence[_Read]
    changes: Sequence[Change]
    fires: dict[str, tuple[Decision, _Read]]
    runs: list[tuple[float, _Pending]]
    finish: Callable[[], list[bool] | None]


class Scheduler:
    """A beatspec scheduler on one keyspace (see the module docstring)."""

    def __init__(self, config: RunConfig, store: ScheduleStore, publisher: Publisher, *,
                 metrics: Metrics | None = None, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        self.config = config
        self.store = store
        self.publisher = publisher
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.rng = rng or random.Random()
        self.app_zone: tzinfo = ZoneInfo(config.app_timezone)
        self.token: str | None = None
        self.leader_since: float | None = None
        self.lease_until = 0.0  # monotonic
        self.next_renew = 0.0  # monotonic
        self.stopping = threading.Event()
        self.reload = threading.Event()
        self.statics: StaticSchedule | None = None
        self.fired = 0
        self._decoder = FastEntryDecoder()
        self._profile = "core"
        self._invalid: dict[str, tuple[str, int]] = {}  # key -> (fingerprint, attempts)
        self._prune_cursor = 0  # HSCAN cursor of the invalid-entries hash (stale notes)
        self._pending: list[tuple[float, int, _Pending]] = []
        # a batch sent whose broker replies are not read yet (see _publish_all)
        self._replies: tuple[Sequence[_Pending], Callable[[], list[str | None] | None]] | None \
            = None
        self._sequence = itertools.count()
        self._due_soon = math.inf  # the earliest exact due time seen by the current tick
        # Entries read (and decoded) before they fall due, or due later in the current second:
        # a tick uses them instead of reading again. The commit's compare-and-set (RUN-4)
        # makes a stale one harmless: its write is refused and it is read again.
        self._ahead: dict[str, _Read] = {}
        # due members are listed a page at a time, and committed a batch at a time
        self._page = _PAGE_BATCHES * config.batch
        self._host = socket.gethostname()

    # ------------------------------------------------------------------------ leadership

    @property
    def is_leader(self) -> bool:
        return self.token is not None

    def _lease_valid(self) -> bool:
        return self.is_leader and time.monotonic() < self.lease_until

    def campaign(self) -> bool:
        """One acquisition attempt (LOCK-1); on success, become the leader and sync statics."""
        token = uuid.uuid1().hex
        sent = time.monotonic()
        ttl_ms = int(self.config.lock_ttl * 1000)
        if not self.store.acquire(token, ttl_ms):
            return False
        self.token = token
        self.leader_since = self.clock()
        self.lease_until = sent + self.config.lock_ttl * _LEASE
        self.next_renew = sent + self.config.renew_interval
        self.metrics.leader.set(1)
        self.metrics.elections.inc()
        self.metrics.lock_ttl.set(self.config.lock_ttl)
        self._profile = _declared_profile(self.store)
        self._decoder = FastEntryDecoder(profile=self._profile)
        LOGGER.info("became the leader", extra={"token": token, "lock": self.store.layout.lock_key})
        self._sync_statics()
        self._publish_status()
        return self.is_leader

    def renew(self) -> bool:
        """Extend the lock (LOCK-2); step down if it is no longer ours."""
        assert self.token is not None
        sent = time.monotonic()
        if not self.store.extend(self.token, int(self.config.lock_ttl * 1000)):
            self.step_down("the lock was lost (expired, taken over, or Redis restarted)")
            return False
        self.lease_until = sent + self.config.lock_ttl * _LEASE
        self.next_renew = sent + self.config.renew_interval
        self.metrics.lock_ttl.set(self.config.lock_ttl)
        self._publish_status()
        return True

    def step_down(self, reason: str) -> None:
        """Stop leading at once: drop pending jittered runs, keep running as a standby (RUN-5)."""
        if self.token is None:
            return
        LOGGER.warning("stepping down to standby: %s", reason, extra={"token": self.token})
        if self._pending:
            LOGGER.warning("%d jittered runs not sent", len(self._pending))
            self._pending.clear()
        self.token = None
        self.leader_since = None
        self.lease_until = 0.0
        self._ahead.clear()
        self.metrics.leader.set(0)
        self.metrics.step_downs.inc()

    def release(self) -> None:
        """Release the lock if it is still ours (LOCK-3)."""
        if self.token is None:
            return
        try:
            released = self.store.release(self.token)
        except redis.RedisError as exc:
            LOGGER.warning("could not release the lock: %s", exc)
            released = False
        LOGGER.info("released the lock" if released else "the lock was no longer ours")
        self.token = None
        self.metrics.leader.set(0)

    # ---------------------------------------------------------------------------- ticks

    def tick(self, *, budget: float | None = None, read_ahead: bool = False) -> float:
        """Handle every due entry (bounded batches); return how long to sleep.

        ``budget`` bounds the seconds spent before returning 0, so the loop can extend the
        lock during a long backlog; None means no bound (``--once``). With ``read_ahead``, the
        entries that fall due next are read and decoded before the loop sleeps, so that when
        they fall due only deciding, committing and publishing are left.
        """
        started = time.monotonic()
        now = self.clock()
        max_score = math.floor(now)
        self._due_soon = math.inf
        offset = 0
        seen: set[str] = set()
        previous, self._ahead = self._ahead, {}
        with self.metrics.tick.time():
            page = self.store.due(max_score, offset=offset, count=self._page) \
                if self.is_leader else []
            fresh = page
            reading = self._reads_begin(fresh, previous)
            try:
                while True:
                    current, reading = reading, list  # each read is finished once
                    reads = current()
                    more = len(page) >= self._page
                    if more:  # the next page, listed and loaded while this one is handled
                        # (listed before this page's commits move its members out of the range)
                        next_page = self.store.due(max_score, offset=offset + len(page),
                                                   count=self._page)
                        here = {m.key for m in page}
                        next_fresh = [m for m in next_page if m.key not in seen
                                      and m.key not in here]
                        reading = self._reads_begin(next_fresh, previous)
                    kept = len(page) - len(fresh)
                    if reads:
                        stayed = self._handle(reads, now, max_score)
                        if stayed is None:
                            return 0.0
                        kept += stayed
                    seen.update(m.key for m in fresh)
                    offset += kept
                    if not more or not self.is_leader:
                        break
                    if gc.get_count()[0] > _GC_OVERDUE:  # a long backlog: collect between pages
                        _collect_garbage()
                    if budget is not None and time.monotonic() - started > budget:
                        return 0.0
                    if time.monotonic() >= self.next_renew and not self.renew():
                        return 0.0  # a long backlog (--once) keeps the lock between pages
                    page, fresh = next_page, next_fresh
            finally:
                with contextlib.suppress(Exception):  # a next page read but not handled
                    reading()
            upcoming = self.store.next_score(max_score)
        # reads ahead of a later second are kept for it (a tick that finds nothing due, e.g.
        # when the loop wakes up early to extend the lock, must not throw them away)
        room = 2 * self._page - len(self._ahead) if self.is_leader else 0
        for key, read in previous.items():
            if room <= 0:
                break
            if read.member.score > max_score and key not in self._ahead:
                self._ahead[key] = read
                room -= 1
        if read_ahead and upcoming is not None and self.is_leader:
            self._read_ahead(max_score, upcoming)
        wait = self.config.max_interval
        if upcoming is not None:
            wait = min(wait, max(upcoming - self.clock(), 0.0))
        if self._due_soon < math.inf:  # due inside a second the score range already covers
            wait = min(wait, max(self._due_soon - self.clock(), 0.0))
        if self._pending:
            wait = min(wait, max(self._pending[0][0] - time.monotonic(), 0.0))
        return wait

    def _read_ahead(self, max_score: int, upcoming: float) -> None:
        """Read and decode the members scored ``upcoming`` (the next due time) while there is
        time before it, at most two pages of them."""
        limit = 2 * self._page
        if upcoming - self.clock() > self.config.max_interval + 0.5:
            return  # the loop wakes up before then anyway
        offset = 0
        while len(self._ahead) < limit and upcoming - self.clock() > 0.05:
            page = self.store.between(max_score, upcoming, offset=offset, count=self._page)
            offset += len(page)
            for read in self._reads([m for m in page if m.key not in self._ahead], {}):
                if read.plan is not None:
                    read = replace(read, prepared=self.publisher.prepare(read.plan))
                self._ahead[read.member.key] = read
            if len(page) < self._page:
                return

    def _reads(self, members: Sequence[DueMember], ahead: dict[str, _Read]) -> list[_Read]:
        """Each member read and decoded: taken from ``ahead`` when it was read there with the
        score it has now, else loaded (one pipelined round trip for the rest)."""
        return self._reads_begin(members, ahead)()

    def _reads_begin(self, members: Sequence[DueMember], ahead: dict[str, _Read]
                     ) -> Callable[[], list[_Read]]:
        """:meth:`_reads`, in two steps: the loads are sent now, and the function returned
        (to be called exactly once) reads and decodes them."""
        reads: list[_Read | None] = []
        missing: list[DueMember] = []
        for member in members:
            read = ahead.pop(member.key, None)
            if read is None or read.member.score != member.score:
                missing.append(member)
                read = None
            reads.append(read)
        if not missing:
            return lambda: [read for read in reads if read is not None]
        # a member outside the prefix (ZSET-1) is not read: its key may lie in another
        # Cluster slot, or outside what an ACL user may read
        name_of = self.store.layout.name_of
        loading = self.store.load_begin([m.key for m in missing if name_of(m.key) is not None])

        def finish() -> list[_Read]:
            loaded = {e.key: e for e in loading()}
            fresh = iter([self._read(m, loaded.get(m.key) or LoadedEntry(m.key, False, {}))
                          for m in missing])
            return [read or next(fresh) for read in reads]

        return finish

    def _read(self, member: DueMember, entry: LoadedEntry) -> _Read:
        """Decode one loaded entry, or say which rule keeps it from running."""
        layout = self.store.layout
        name = layout.name_of(entry.key)
        if name is None:
            return _Read(member, entry, None, _finding(
                "ZSET-1", entry.key, "the schedule member is not a key under the prefix",
                f"members are full keys: ZADD {layout.schedule_key} <score> "
                f"{layout.prefix}<name> (the scheduler never deletes it)"), op="b")
        if not entry.exists:
            return _Read(member, entry, None, _finding(
                "ZSET-6", entry.key, "no entry hash for this schedule member",
                "write the entry hash, or ZREM the member (the scheduler never deletes it)"))
        if not entry.fields:  # WRONGTYPE
            return _Read(member, entry, None, _finding(
                "ENT-1", entry.key, "the entry key does not hold a hash",
                "store the entry as a hash with definition and meta fields"))
        try:
            decoded, report = self._decoder.decode(entry.fields, name=name, key=entry.key)
        except Exception as exc:  # a decoder bug stays confined to its entry (RUN-2)
            LOGGER.exception("cannot decode the entry", extra={"key": entry.key})
            return _Read(member, entry, None, _finding(
                "RUN-2", entry.key, f"decoding failed: {type(exc).__name__}: {exc}",
                "please report this entry to beatspec; it is retried with back-off"))
        if decoded is None or not report.valid():
            failed = [f for f in report.findings if f.outcome is Outcome.FAILED]
            return _Read(member, entry, None, failed[0] if failed else _finding(
                "DEF-1", entry.key, "the entry could not be decoded", "run beatspec validate"))
        try:
            plan = plan_message(decoded.definition, default_queue=self.config.default_queue)
        except Exception:  # reported (RUN-2) when a run of it is sent
            plan = None
        return _Read(member, entry, decoded, plan=plan)

    def _handle(self, reads: Sequence[_Read], now_ts: float, max_score: int) -> int | None:
        """Decide, commit (fenced, compare-and-set: LOCK-7, RUN-4), then publish (RUN-3) one
        page, a batch at a time: each batch is decided while the server runs the previous
        batch's commit script. Returns the number of members left in the due range, or None
        when the lock turned out not to be ours."""
        moment = Moment(datetime.fromtimestamp(now_ts, UTC))
        size = self.config.batch
        stayed = 0
        running: _Round | None = None
        try:
            for start in range(0, len(reads) + size, size):
                batch = reads[start:start + size]
                changes: list[Change] = []
                fires: dict[str, tuple[Decision, _Read]] = {}
                for read in batch:
                    change = self._change_for(read, moment, fires)
                    if change is not None:
                        changes.append(change)
                if running is not None:  # the previous batch, decided and committed before
                    finished, running = running, None
                    kept = self._complete(finished, now_ts, max_score)
                    if kept is None:
                        return None
                    stayed += kept
                if batch:
                    running = self._begin(batch, changes, fires, now_ts)
            return stayed
        finally:
            if running is not None:  # left by an error: give its connection back
                with contextlib.suppress(Exception):
                    running.finish()
            self._published()  # the last batch's broker replies

    def _begin(self, reads: Sequence[_Read], changes: list[Change],
               fires: dict[str, tuple[Decision, _Read]], now_ts: float) -> _Round:
        """Send one batch's commit; build and encode its messages while the server runs it."""
        assert self.token is not None
        self.metrics.batch.observe(len(reads))
        finish = self.store.commit_begin(self.token, changes)
        try:
            runs = self._runs(fires, now_ts)
        except BaseException:
            finish()
            raise
        return _Round(reads, changes, fires, runs, finish)

    def _complete(self, batch: _Round, now_ts: float, max_score: int) -> int | None:
        """Wait for one batch's commit, then publish the runs it committed; the number of its
        members left in the due range, or None when the lock was not ours (nothing written)."""
        done = batch.finish()
        if done is None:
            self.step_down("the lock was not ours at commit time (fenced write refused)")
            return None
        fires = batch.fires
        written: dict[str, float] = {}
        for change, ok in zip(batch.changes, done, strict=True):
            key = change.entry.key
            if not ok:  # a writer changed the entry since it was read: read it again at once
                self.metrics.conflicts.inc()
                fires.pop(key, None)
                self._ahead.pop(key, None)
                self._due_soon = min(self._due_soon, now_ts)
                continue
            written[key] = -1.0 if change.op == "D" else float(change.score)
        self._send([(delay, run) for delay, run in batch.runs if run.key in fires], wait=False)
        return sum(1 for r in batch.reads
                   if r.member.key not in written or 0 <= written[r.member.key] <= max_score)

    def _change_for(self, read: _Read, moment: Moment,
                    fires: dict[str, tuple[Decision, _Read]]) -> Change | None:
        entry = read.loaded
        now = moment.now
        if read.due_at is not None and read.due_at > now.timestamp():  # still waiting
            self._due_soon = min(self._due_soon, read.due_at)
            self._ahead[entry.key] = read
            return None
        if read.entry is None:
            assert read.finding is not None
            return self._back_off(entry, now, read.finding, op=read.op)
        try:
            decision = decide(read.entry, now=moment, app_zone=self.app_zone,
                              stored_score=read.member.score, rng=self.rng)
        except Exception as exc:  # an engine failure stays confined to its entry (RUN-2)
            LOGGER.exception("cannot compute the next run", extra={"key": entry.key})
            return self._back_off(entry, now, _finding(
                "RUN-2", entry.key, f"computing the next run failed: {type(exc).__name__}: "
                f"{exc}", "please report this entry to beatspec; it is retried with back-off"))
        recovered = self._invalid.pop(entry.key, None) is not None
        if decision.due_at is not None:
            self._due_soon = min(self._due_soon, decision.due_at)
        if decision.action == "fire":
            fires[entry.key] = (decision, read)
        if decision.action == "delete":
            return Change("D", entry)
        if decision.meta is not None:
            return Change("M", entry, meta=decision.meta, score=decision.score or 0)
        if decision.score is not None:
            return Change("Z", entry, score=decision.score)
        if recovered:  # drop the note in the invalid-entries hash
            return Change("Z", entry, score=read.member.score)
        if decision.action == "wait" and len(self._ahead) < 2 * self._page:
            # due later in this second: keep it, and decide again at its due time
            self._ahead[entry.key] = replace(read, due_at=decision.due_at)
        return None

    def _back_off(self, entry: LoadedEntry, now: datetime, finding: Finding,
                  op: Literal["B", "b"] = "B") -> Change:
        """Move an invalid entry's score forward (bounded exponential back-off); log once per
        change of the entry. Its fields are never changed or deleted (RUN-1)."""
        fingerprint = entry.fingerprint
        previous = self._invalid.get(entry.key)
        attempts = previous[1] + 1 if previous and previous[0] == fingerprint else 0
        self._invalid[entry.key] = (fingerprint, attempts)
        delay = min(self.config.backoff_max, self.config.backoff_min * 2 ** min(attempts, 20))
        retry = math.floor(now.timestamp() + delay)
        if attempts == 0:
            self.metrics.invalid_seen.labels(finding.rule).inc()
            LOGGER.warning(
                "invalid entry not fired: %s", finding.message,
                extra={"rule": finding.rule, "key": entry.key, "field": finding.field,
                       "pointer": finding.pointer or "/", "hint": finding.hint,
                       "retry_in": delay})
        note = json.dumps({
            "rule": finding.rule, "field": finding.field, "pointer": finding.pointer,
            "found": finding.found, "message": finding.message, "hint": finding.hint,
            "attempts": attempts + 1, "seen_at": now.isoformat(),
            "retry_at": datetime.fromtimestamp(retry, UTC).isoformat()})
        return Change(op, entry, score=retry, note=note)

    # ------------------------------------------------------------------------ publishing

    def _runs(self, fires: dict[str, tuple[Decision, _Read]], now_ts: float
              ) -> list[tuple[float, _Pending]]:
        """The message of each run (with its jitter delay); those sent at once are encoded
        (or were, when the entry was read ahead)."""
        runs: list[tuple[float, _Pending]] = []
        fresh: list[tuple[TaskMessage, float, str]] = []  # sent at once, to encode
        publisher = self.publisher
        now = datetime.fromtimestamp(now_ts, UTC)
        for key, (decision, read) in fires.items():
            prepared = read.prepared
            for fire in decision.fires:
                if prepared is not None and fire.delay <= 0:  # built while reading ahead
                    runs.append((0.0, _Pending(prepared.message, fire.slot.timestamp(), key,
                                               prepared)))
                    prepared = None
                    continue
                try:
                    assert read.entry is not None
                    plan = read.plan or plan_message(read.entry.definition,
                                                     default_queue=self.config.default_queue)
                    message = plan.message(
                        now=now if fire.delay <= 0 else
                        datetime.fromtimestamp(now_ts + fire.delay, UTC),
                        app_zone=self.app_zone, origin=publisher.origin,
                        reply_to=publisher.reply_to)
                except Exception:  # confined to this run (RUN-2); it was committed: lost
                    LOGGER.exception("run lost: its message could not be built",
                                     extra={"key": key})
                    self.metrics.publish_errors.inc()
                    continue
                if fire.delay > 0:
                    runs.append((fire.delay, _Pending(message, fire.slot.timestamp(), key)))
                else:
                    fresh.append((message, fire.slot.timestamp(), key))
        if len(fresh) > 1 and publisher.batching:
            encoded = publisher.encode([message for message, _, _ in fresh])
            runs += [(0.0, _Pending(message, slot, key, ready))
                     for (message, slot, key), ready in zip(fresh, encoded, strict=True)]
        else:
            runs += [(0.0, _Pending(message, slot, key)) for message, slot, key in fresh]
        return runs

    def _send(self, runs: Sequence[tuple[float, _Pending]], *, wait: bool = True) -> None:
        """Publish the runs due now; queue the jittered ones."""
        at = time.monotonic()
        now: list[_Pending] = []
        for delay, pending in runs:
            if delay > 0:
                heapq.heappush(self._pending, (at + delay, next(self._sequence), pending))
            else:
                now.append(pending)
        self._publish_all(now, wait=wait)

    def flush_pending(self) -> None:
        """Publish jittered runs whose delay has passed."""
        due: list[_Pending] = []
        while self._pending and self._pending[0][0] <= time.monotonic():
            due.append(heapq.heappop(self._pending)[2])
        self._publish_all(due)

    def _publish_all(self, runs: Sequence[_Pending], *, wait: bool = True) -> None:
        """Publish runs in one round trip when the broker allows it (kombu's Redis transport),
        else one by one; either way only while the lease is valid, checked right before the
        messages go out. With ``wait=False`` the broker's replies to a batch are read later
        (:meth:`_published`), by the next call or at the end of the tick: a tick decides its
        next batch meanwhile."""
        self._published()
        if len(runs) < 2 or not self.publisher.batching:
            for pending in runs:
                self._publish(pending)
            return
        if not self._lease_valid():
            for pending in runs:
                self._not_sent(pending)
            return
        try:
            encoded = [p.encoded or self.publisher.encode([p.message])[0] for p in runs]
            replies = self.publisher.send_begin(encoded, allowed=self._lease_valid)
        except PublishFailed as exc:
            for pending in runs:
                self._lost(pending, exc)
            return
        self._replies = (runs, replies)
        if wait:
            self._published()

    def _published(self) -> None:
        """Read the broker's replies to the batch last sent, if not read yet, and count its
        runs sent or lost."""
        if self._replies is None:
            return
        runs, replies = self._replies
        self._replies = None
        try:
            errors = replies()
        except PublishFailed as exc:
            for pending in runs:
                self._lost(pending, exc)
            return
        if errors is None:  # the lease ran out while the batch was built: nothing was sent
            for pending in runs:
                self._not_sent(pending)
            return
        sent: list[_Pending] = []
        for pending, error in zip(runs, errors, strict=True):
            if error is None:
                sent.append(pending)
            else:
                self._lost(pending, error)
        self._count_sent(sent)

    def _publish(self, pending: _Pending) -> None:
        if not self._lease_valid():
            self._not_sent(pending)
            return
        try:
            self.publisher.publish(pending.message)
        except PublishFailed as exc:
            self._lost(pending, exc)
            return
        self._sent(pending)

    def _not_sent(self, pending: _Pending) -> None:
        LOGGER.warning("run not sent: the lease ran out before publishing",
                       extra={"key": pending.key, "task_id": pending.message.task_id})
        self.metrics.publish_errors.inc()

    def _lost(self, pending: _Pending, error: object) -> None:
        self.metrics.publish_errors.inc()
        LOGGER.error("run lost: the broker did not take the message: %s", error,
                     extra={"key": pending.key, "task_id": pending.message.task_id})

    def _sent(self, pending: _Pending) -> None:
        self._count_sent((pending,))

    def _count_sent(self, runs: Sequence[_Pending]) -> None:
        if not runs:
            return
        self.fired += len(runs)
        self.metrics.fires.inc(len(runs))
        now, observe = self.clock(), self.metrics.lateness.observe
        for pending in runs:
            observe(max(now - pending.slot, 0.0))

    # --------------------------------------------------------------------------- statics

    def load_statics(self) -> None:
        """(Re)read ``--schedule``; an unreadable file keeps the previous one on SIGHUP."""
        if self.config.schedule_file is None:
            return
        self.statics = load_schedule(self.config.schedule_file)
        LOGGER.info("read %d static entries from %s", len(self.statics.entries),
                    self.config.schedule_file)

    def _sync_statics(self) -> None:
        if self.statics is None or self.token is None:
            return
        result = sync_statics(self.store, self.token, self.statics, now=datetime.now(UTC),
                              app_zone=self.app_zone)
        if result is None:
            self.step_down("the lock was not ours when syncing static entries")
            return
        installed, deleted = result
        LOGGER.info("synced static entries", extra={"installed": installed, "deleted": deleted})

    def _publish_status(self) -> None:
        if self.token is None:
            return
        self.store.publish_status(self.token, {
            "token": self.token, "host": self._host, "pid": str(os.getpid()),
            "version": __version__,
            "since": _iso(self.leader_since or self.clock()),
            "heartbeat": _iso(self.clock()),
            "lock_ttl": f"{self.config.lock_ttl:g}",
            "fired": str(self.fired),
        })
        try:
            self._prune_cursor = self.store.prune_invalid(self.token, self._prune_cursor)
            self.metrics.invalid.set(self.store.counts()["invalid"])
        except redis.ResponseError:  # a foreign :invalid key (KEY-10) must not stop the loop
            self.metrics.invalid.set(len(self._invalid))

    # ------------------------------------------------------------------------- the loop

    def run(self) -> None:
        """Run until :attr:`stopping` is set; then finish and release the lock.

        Python's cyclic garbage collector is switched off while it runs and run by the loop
        itself when it is about to sleep anyway (:func:`_collect_garbage`): a full collection
        takes tens of milliseconds, and started by an allocation in the middle of a tick it
        would delay every run of that tick by as much. Switched back on when it returns."""
        with _collector_paused():
            while not self.stopping.is_set():
                delay = self.step()
                if delay >= _GC_SLACK:
                    started = time.monotonic()
                    _collect_garbage()
                    delay -= time.monotonic() - started
                self.stopping.wait(max(delay, 0.0))
        self.release()

    def step(self) -> float:
        """One turn of the loop; returns the seconds to wait before the next one."""
        try:
            if self.reload.is_set():
                self.reload.clear()
                self._reload()
            if not self.is_leader:
                return 0.0 if self.campaign() else self.config.retry_interval
            if time.monotonic() >= self.next_renew and not self.renew():
                return self.config.retry_interval
            self.flush_pending()
            wait = self.tick(budget=self.config.renew_interval / 2, read_ahead=True)
            return min(wait, max(self.next_renew - time.monotonic(), 0.0))
        except (redis.RedisError, OSError) as exc:
            self.metrics.redis_errors.inc()
            LOGGER.warning("Redis error: %s", exc)
            if self.is_leader and not self._lease_valid():
                self.step_down("Redis unreachable for longer than the lease")
            return self.config.retry_interval
        except Exception:  # never exit, never crash-loop (RUN-2): log, step down, go on
            LOGGER.exception("unexpected error in the scheduler loop; standing by")
            self._pending.clear()
            self.release()  # let a standby take over at once
            return self.config.retry_interval

    def _reload(self) -> None:
        try:
            self.load_statics()
        except ScheduleFileError as exc:
            LOGGER.error("schedule file not reloaded, keeping the previous one: %s", exc)
            return
        self._sync_statics()

    def run_once(self) -> bool:
        """``--once``: take the lock, sync statics, handle every due entry, send jittered runs
        when due, release. False if another scheduler holds the lock."""
        if not self.campaign():
            return False
        try:
            with _collector_paused():
                self.tick(budget=None)
            while self._pending and self.is_leader:
                time.sleep(max(self._pending[0][0] - time.monotonic(), 0.0))
                if time.monotonic() >= self.next_renew:
                    self.renew()
                self.flush_pending()
        finally:
            self.release()
        return True


#: Seconds of sleep ahead that leave room for a garbage collection; and the allocation count
#: past which one runs anyway (a loop that never sleeps: a long backlog).
_GC_SLACK = 0.05
_GC_OVERDUE = 500_000


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's automatic garbage collection off inside (the loop collects when it can), and
    back to what it was afterwards."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
            _collect_garbage()


def _collect_garbage() -> None:
    """What the automatic collector would do now, by its own thresholds and counts: the
    youngest generation, or an older one when its turn has come."""
    counts, thresholds = gc.get_count(), gc.get_threshold()
    generation = 2 if counts[2] >= thresholds[2] else 1 if counts[1] >= thresholds[1] else 0
    if generation or counts[0] >= thresholds[0]:
        gc.collect(generation)


def _finding(rule: str, key: str, message: str, hint: str) -> Finding:
    return Finding(rule, Outcome.FAILED, "", "", message, hint, key=key)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _declared_profile(store: ScheduleStore) -> str:
    kind, fields = Keyspace(store.client, store.layout).declaration()
    return "extended" if kind == "hash" and fields.get("profile") == "extended" else "core"
