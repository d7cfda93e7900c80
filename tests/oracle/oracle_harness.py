"""Drive the real RedBeat 2.4.2 scheduler against one entry and classify what it did.

One :class:`OracleHarness` owns a Celery app (one per namespace: RedBeat caches its Redis client
and config on the app) and a ``RedBeatScheduler`` built once, without a lock, which is ticked
directly. A case writes one entry hash and its schedule member, ticks once, reads what the tick
published to the broker (kombu's Redis transport, under a key prefix of the namespace) and
classifies the result as FIRED, KEPT, CRASH, DROPPED or MISFIRE (or SLOW: the tick did not finish
within the time budget).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import logging
import signal
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

import redis
from celery import Celery
from oracle_expect import Expectation, expect, normalize
from redbeat import RedBeatScheduler, RedBeatSchedulerEntry

if TYPE_CHECKING:
    from types import FrameType

    from beatspec.testing import Namespace

__all__ = [
    "BAD",
    "TALLIES",
    "Message",
    "OracleHarness",
    "Outcome",
    "Result",
    "Tally",
    "TickTimeout",
    "make_app",
    "time_limit",
]

#: Seconds a single tick (or an expectation) may take before the case counts as SLOW.
TICK_BUDGET: Final = 2.0
_SEP: Final = "\x06\x16"  # kombu's Redis priority-queue separator
_LOGGERS: Final = ("celery.beat", "redbeat")


class Outcome(StrEnum):
    FIRED = "FIRED"  # fired once, correctly
    KEPT = "KEPT"  # not fired, not dropped, no crash (correct when not due or disabled)
    CRASH = "CRASH"  # tick() raised: beat exits
    DROPPED = "DROPPED"  # the member left the schedule
    MISFIRE = "MISFIRE"  # fired wrongly, or not fired when due
    SLOW = "SLOW"  # the tick did not finish within TICK_BUDGET seconds


BAD: Final = frozenset({Outcome.CRASH, Outcome.DROPPED, Outcome.MISFIRE})


class TickTimeout(BaseException):
    """Raised by the interval timer; a BaseException so that no ``except Exception`` eats it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Interrupt the block with :class:`TickTimeout` after ``seconds`` (main thread only)."""

    def _alarm(signum: int, frame: FrameType | None) -> None:
        raise TickTimeout(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True, slots=True)
class Message:
    """One task message the tick published, decoded the way a Celery worker decodes it."""

    queue: str
    task: object
    args: object
    kwargs: object
    headers: Mapping[str, Any]
    properties: Mapping[str, Any]
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    detail: str
    expectation: Expectation
    messages: tuple[Message, ...]
    log: tuple[str, ...]
    fields_after: Mapping[str, str]
    members_after: tuple[tuple[str, float], ...]

    def describe(self) -> str:
        lines = [f"RedBeat outcome: {self.outcome} {self.detail}".rstrip(),
                 f"expectation: {self.expectation}"]
        lines += [f"  message: {m}" for m in self.messages]
        lines += [f"  log: {line}" for line in self.log[-6:]]
        lines.append(f"  hash after: {dict(self.fields_after)}")
        lines.append(f"  schedule after: {list(self.members_after)}")
        return "\n".join(lines)


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


#: The loggers' original (level, propagate), kept while at least one harness listens.
_TAPPED: dict[str, tuple[int, bool]] = {}
_TAP_HANDLERS: list[logging.Handler] = []


def _tap_loggers(handler: logging.Handler) -> None:
    """Send RedBeat's log records (DEBUG included: 'beat: RuntimeError') to ``handler`` only."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not _TAP_HANDLERS:
            _TAPPED[name] = (logger.level, logger.propagate)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        logger.propagate = False
    _TAP_HANDLERS.append(handler)


def _untap_loggers(handler: logging.Handler) -> None:
    """Detach ``handler``; the last harness to close restores the loggers as they were."""
    _TAP_HANDLERS.remove(handler)
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        logger.removeHandler(handler)
        if not _TAP_HANDLERS:
            level, propagate = _TAPPED.pop(name)
            logger.setLevel(level)
            logger.propagate = propagate


def make_app(ns: Namespace, timezone: str = "UTC") -> Celery:
    """A Celery app whose broker and RedBeat keys all live under the namespace."""
    app = Celery("oracle", set_as_current=False)
    app.conf.update(
        broker_url=ns.url,
        # kombu's keys (queues, bindings) under the namespace token, so cleanup finds them
        broker_transport_options={"global_keyprefix": f"{ns.token}:"},
        redbeat_redis_url=ns.url,
        redbeat_redis_options={},  # explicit: no fallback to the broker transport options
        redbeat_key_prefix=ns.prefix,
        redbeat_lock_key=None,  # no lock: the tests tick directly
        result_expires=None,  # no celery.backend_cleanup entry
        beat_max_loop_interval=300,
        beat_schedule={},
        timezone=timezone,
    )
    return app


class OracleHarness:
    """A RedBeat scheduler in one namespace, ticked on demand."""

    def __init__(self, ns: Namespace, timezone: str = "UTC") -> None:
        self.ns = ns
        self.timezone = timezone
        self.client = redis.Redis.from_url(ns.url, decode_responses=True)
        self.schedule_key = ns.prefix + ":schedule"
        self.queue_prefix = f"{ns.token}:"
        self._handler = _ListHandler()
        _tap_loggers(self._handler)
        self.app, self.scheduler = self._build()

    def _build(self) -> tuple[Celery, RedBeatScheduler]:
        app = make_app(self.ns, self.timezone)
        return app, RedBeatScheduler(app=app)

    def _rebuild(self) -> None:
        """After an interrupted tick the connections may be mid-reply: start afresh."""
        self._close_app()
        self.app, self.scheduler = self._build()

    def _close_app(self) -> None:
        with contextlib.suppress(Exception):
            self.scheduler.close()
        with contextlib.suppress(Exception):
            self.scheduler.connection.release()
        client = getattr(self.app, "redbeat_redis", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        with contextlib.suppress(Exception):
            self.app.close()

    def close(self) -> None:
        self._close_app()
        _untap_loggers(self._handler)
        self.client.close()

    # ------------------------------------------------------------------ entry helpers

    def key(self, name: str) -> str:
        return self.ns.prefix + name

    def entry(self, name: str, task: str, schedule: object, **kwargs: Any) -> RedBeatSchedulerEntry:
        """A RedBeat entry object bound to this app (not saved)."""
        return RedBeatSchedulerEntry(name, task, schedule, app=self.app, **kwargs)

    def fields(self, name: str) -> dict[str, str]:
        return self.client.hgetall(self.key(name))  # type: ignore[return-value]

    def score(self, name: str) -> float | None:
        return self.client.zscore(self.schedule_key, self.key(name))

    def tick(self) -> BaseException | None:
        """Tick once; return the exception if the tick raised (beat would exit)."""
        try:
            with time_limit(TICK_BUDGET):
                self.scheduler.tick()
        except TickTimeout as exc:
            self._rebuild()
            return exc
        except Exception as exc:
            return exc
        return None

    def read_messages(self) -> list[Message]:
        """Pop every message the broker holds in this namespace (all queues, all priorities)."""
        messages: list[Message] = []
        for key in self.client.scan_iter(match=f"{self.queue_prefix}*", count=1000):
            if self.client.type(key) != "list":
                continue
            queue = key[len(self.queue_prefix):].split(_SEP)[0]
            with self.client.pipeline() as pipe:
                pipe.lrange(key, 0, -1)
                pipe.delete(key)
                raw, _ = pipe.execute()
            messages.extend(_decode_message(queue, item) for item in reversed(raw))
        return messages

    def clear(self, *keys: str) -> None:
        """Delete the keys a case wrote: the entries in the schedule, the schedule, ``keys``."""
        members = self.client.zrange(self.schedule_key, 0, -1)
        doomed = {*members, *keys, self.schedule_key}
        self.client.delete(*doomed)
        self.read_messages()

    # ------------------------------------------------------------------ one case

    def _detach_pytest_capture(self) -> None:
        """pytest attaches its log-capture handlers to non-propagating loggers for every test
        phase; thousands of ticks would then flood a failure report. The harness keeps its own
        records (the last lines go into the failure message), so detach pytest's here."""
        for logger in map(logging.getLogger, _LOGGERS):
            for handler in list(logger.handlers):
                if type(handler).__name__ == "LogCaptureHandler":
                    logger.removeHandler(handler)

    def _expect(self, fields: Mapping[str, str], now: dt.datetime) -> Expectation:
        """The document's expectation at ``now`` (the due time left open if it takes too long)."""
        definition, meta = fields.get("definition"), fields.get("meta")
        try:
            with time_limit(TICK_BUDGET):
                return expect(definition, meta, now=now, timezone=self.timezone)
        except TickTimeout:
            return expect(definition, meta, now=now, timezone=self.timezone, decide_due=False)

    def run(self, fields: Mapping[str, str], name: str) -> Result:
        """Write an entry hash with ``fields`` at prefix+``name``, index it, tick once, classify."""
        key = self.key(name)
        self.clear(key)
        self._detach_pytest_capture()
        self._handler.records.clear()
        with self.client.pipeline() as pipe:
            if fields:
                mapping: dict[Any, Any] = dict(fields)
                pipe.hset(key, mapping=mapping)
            pipe.zadd(self.schedule_key, {key: 0})
            pipe.execute()
        now = dt.datetime.now(dt.UTC)  # the tick's own clock reads a few milliseconds later
        error = self.tick()
        expectation = self._expect(fields, now)
        scored: list[tuple[str, float]] = self.client.zrange(  # type: ignore[assignment]
            self.schedule_key, 0, -1, withscores=True)
        members = tuple((str(m), float(s)) for m, s in scored)
        after: dict[str, str] = self.client.hgetall(key)  # type: ignore[assignment]
        messages = tuple(self.read_messages())
        log = tuple(f"{r.levelname} {r.getMessage()}" for r in self._handler.records)
        outcome, detail = _classify(
            key, fields, after, members, messages, log, expectation, error,
        )
        self.clear(key)
        return Result(outcome, detail, expectation, messages, log, after, members)


def _decode_message(queue: str, raw: str) -> Message:
    from kombu.compression import decompress
    from kombu.utils.json import loads

    envelope = json.loads(raw)
    headers = envelope.get("headers") or {}
    properties = envelope.get("properties") or {}
    error: str | None = None
    args: object = None
    kwargs: object = None
    try:
        body = base64.b64decode(envelope["body"])
        if headers.get("compression"):
            body = decompress(body, headers["compression"])  # type: ignore[no-untyped-call]
        if envelope.get("content-type") != "application/json":
            raise ValueError(f"content type {envelope.get('content-type')!r} is not JSON")
        decoded = loads(body)  # type: ignore[no-untyped-call]  # as a worker decodes it
        if not isinstance(decoded, list) or len(decoded) != 3:
            raise ValueError(f"body is not [args, kwargs, embed]: {decoded!r}")
        args, kwargs = decoded[0], decoded[1]
    except Exception as exc:
        error = f"a worker cannot decode the message: {type(exc).__name__}: {exc}"
    return Message(queue, headers.get("task"), args, kwargs, headers, properties, error)


def _is_iso_time(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _protocol_problems(msg: Message) -> list[str]:
    """Protocol-2 headers a worker parses: the task id, and the eta/expires times."""
    problems: list[str] = []
    task_id = msg.headers.get("id")
    if not isinstance(task_id, str) or task_id != msg.properties.get("correlation_id"):
        problems.append(f"header id {task_id!r} is not the task id")
    for name in ("eta", "expires"):
        value = msg.headers.get(name)
        if value is not None and not _is_iso_time(value):
            problems.append(f"header {name} {value!r} is not an ISO 8601 time")
    return problems


def _classify(
    key: str,
    before: Mapping[str, str],
    after: Mapping[str, str],
    members: tuple[tuple[str, float], ...],
    messages: tuple[Message, ...],
    log: tuple[str, ...],
    exp: Expectation,
    error: BaseException | None,
) -> tuple[Outcome, str]:
    if isinstance(error, TickTimeout):
        return Outcome.SLOW, str(error)
    if error is not None:
        return Outcome.CRASH, f"{type(error).__name__}: {str(error)[:200]}"
    if key not in {m for m, _ in members}:
        return Outcome.DROPPED, next((line for line in log if "Failed to load" in line), "")
    problems: list[str] = []
    problems += [line[:240] for line in log if "Message Error" in line]
    if any("beat: RuntimeError" in line for line in log):
        problems.append("the tick swallowed a RuntimeError (every entry skipped)")
    foreign = [m for m, _ in members if m != key]
    if foreign:
        problems.append(f"run state written to other keys: {foreign}")
    if len(messages) > 1:
        problems.append(f"{len(messages)} messages for one due entry")
    if messages:
        msg = messages[0]
        if exp.fire is False:
            problems.append(f"fired although it must not ({exp.why})")
        if msg.error:
            problems.append(msg.error)
        if exp.task is None or msg.task != exp.task:
            problems.append(f"task {msg.task!r}, expected {exp.task!r}")
        problems += _protocol_problems(msg)
        if not msg.error:
            if normalize(msg.args) != normalize(exp.args):
                problems.append(f"args {msg.args!r}, expected {exp.args!r}")
            if normalize(msg.kwargs) != normalize(exp.kwargs):
                problems.append(f"kwargs {msg.kwargs!r}, expected {exp.kwargs!r}")
        if exp.queue is not None and msg.queue != exp.queue:
            problems.append(f"queue {msg.queue!r}, expected {exp.queue!r}")
        if after.get("meta") == before.get("meta"):
            problems.append("fired without advancing the entry's meta")
        return (Outcome.MISFIRE, "; ".join(problems)) if problems else (Outcome.FIRED, "")
    if exp.fire is True:
        problems.append("due but not fired")
    return (Outcome.MISFIRE, "; ".join(problems)) if problems else (Outcome.KEPT, exp.why)


# ---------------------------------------------------------------------- agreement tally


@dataclass
class Tally:
    """The agreement cells of one run, printed by tests/oracle/conftest.py at session end."""

    documents: int = 0
    distinct: set[int] = field(default_factory=set)
    accepted_fired: int = 0
    accepted_kept: int = 0
    rejected_bad: int = 0
    rejected_ok: int = 0
    accepted_bad: int = 0  # only ever documents of a known validator gap (else the test fails)
    slow: int = 0
    slow_accepted: int = 0
    undecided: int = 0  # accepted documents whose expectation left "due" open
    stricter: Counter[str] = field(default_factory=Counter)
    bad_outcomes: Counter[str] = field(default_factory=Counter)
    gaps: Counter[str] = field(default_factory=Counter)
    gap_examples: dict[str, str] = field(default_factory=dict)
    mutations: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def summary(self, label: str) -> list[str]:
        stricter = ", ".join(f"{rule}: {n}" for rule, n in sorted(
            self.stricter.items(), key=lambda item: (-item[1], item[0])))
        lines = [
            f"RedBeat oracle agreement ({label}): {self.documents} documents "
            f"({len(self.distinct)} distinct) in {self.seconds:.1f} s: "
            f"{self.accepted_fired + self.accepted_kept} accepted and fired or correctly kept "
            f"({self.accepted_fired} fired, {self.accepted_kept} kept), "
            f"{self.rejected_bad} rejected where RedBeat crashed/dropped/misfired, "
            f"{self.rejected_ok} rejected by stricter rules ({stricter or 'none'}), "
            f"{self.accepted_bad} accepted but broken"
            + (" (all in KNOWN_VALIDATOR_GAPS, below)" if self.accepted_bad else ""),
        ]
        outcomes = ", ".join(f"{k}: {n}" for k, n in self.bad_outcomes.most_common(12))
        lines.append(f"  RedBeat failures seen: {outcomes or 'none'}")
        if self.slow:
            lines.append(f"  {self.slow} documents ({self.slow_accepted} accepted) made the tick "
                         f"exceed {TICK_BUDGET} s (SLOW: no verdict)")
        if self.undecided:
            lines.append(f"  {self.undecided} accepted documents had no decidable due time")
        if self.gaps:
            gaps = ", ".join(f"{k}: {n}" for k, n in self.gaps.most_common())
            lines.append(f"  excluded as KNOWN_VALIDATOR_GAPS: {gaps}")
            lines += [f"    e.g. {name}: {text[:600]}" for name, text in
                      sorted(self.gap_examples.items())]
        return lines


#: Filled by the agreement test, printed by ``pytest_terminal_summary``.
TALLIES: dict[str, Tally] = {}
