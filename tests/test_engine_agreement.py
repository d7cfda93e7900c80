"""The engine against Celery 5.7 itself: random schedules, zones, last runs and clocks (spec §5.8).

Every case builds the same schedule twice, as a beatspec value and as the object Celery beat
(``celery.schedules.crontab`` / ``schedule``) or RedBeat (``redbeat.schedules.rrule``) would
evaluate, and compares ``next_run`` (exactly), ``is_due`` (exactly) and ``next_check`` (to 1 µs)
with Celery's ``remaining_estimate`` and ``is_due`` at the same ``now``.

The one documented difference is deviation D1 (spec §5.8.8, CRON-8): when Celery evaluates a
crontab at an instant in the second pass (fold = 1) of a repeated hour, its next run can lie at
or before that instant. Those evaluations are detected (the Celery value is in the past),
counted, and checked against Celery's own ``is_due`` with ``remaining_estimate`` replaced by the
D1 rule, computed by a day-by-day brute-force scan over Celery's own expanded fields: the first
matching wall-clock minute after ``wall(L)`` whose instant is after ``L``.

Random per run (hypothesis' default); a failure prints the falsifying example and a
``@reproduce_failure`` blob. The session summary line is written to the terminal reporter.
"""

from __future__ import annotations

import functools
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any, Final, Protocol, TypeVar
from zoneinfo import ZoneInfo

import pytest
from celery import Celery
from celery.schedules import crontab, schedule
from dateutil import rrule as du
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from redbeat.decoder import from_timestamp
from redbeat.schedules import rrule as redbeat_rrule

from beatspec.codec.types import CronField, Crontab, Interval, RRule, RRuleValue, Weekday
from beatspec.cron import DAYS_IN_MONTH
from beatspec.engine import NEVER_RUN, DueState, due, next_run
from beatspec.engine._crontab import compile_crontab

ZONES: Final = (
    "UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe",
    "Pacific/Chatham", "Asia/Kolkata", "America/Santiago", "Europe/Dublin",
)
#: BEATSPEC_AGREEMENT_SCALE multiplies the example counts (e.g. 10 for a long soak run).
_SCALE: Final = float(os.environ.get("BEATSPEC_AGREEMENT_SCALE", "1"))
CRONTAB_EXAMPLES: Final = max(1, round(1_500 * _SCALE))
INTERVAL_EXAMPLES: Final = max(1, round(900 * _SCALE))
RRULE_EXAMPLES: Final = max(1, round(650 * _SCALE))
#: (last_run_at, now) pairs evaluated per drawn schedule: drawing the schedule is the slow part.
CASES_PER_EXAMPLE: Final = 4
TOLERANCE: Final = 1e-6  # seconds, for next_check

_SETTINGS: Final = settings(
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
_US: Final = 1_000_000
_DAY_US: Final = 86_400 * _US
_EPOCH_2019: Final = datetime(2019, 1, 1, tzinfo=UTC)
_SPAN_US: Final = (datetime(2031, 1, 1, tzinfo=UTC) - _EPOCH_2019) // timedelta(microseconds=1)


# --------------------------------------------------------------------------- bookkeeping


@dataclass
class _Stats:
    cases: Counter[str] = field(default_factory=Counter)
    d1: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.perf_counter)


_STATS: Final = _Stats()


@pytest.fixture(scope="module", autouse=True)
def _agreement_summary(request: pytest.FixtureRequest) -> Iterator[None]:
    """Report the case count when the module is done, in the captured output and on the
    terminal (no conftest hook needed)."""
    _STATS.cases.clear()
    _STATS.d1.clear()
    _STATS.started = time.perf_counter()
    failed_before = request.session.testsfailed
    yield
    total, d1 = sum(_STATS.cases.values()), sum(_STATS.d1.values())
    failed = request.session.testsfailed - failed_before
    verdict = "0 disagreements" if not failed else f"{failed} FAILED test(s), see above"
    detail = ", ".join(f"{kind} {_STATS.cases[kind]}" for kind in sorted(_STATS.cases))
    line = (
        f"engine agreement: {total} cases vs Celery 5.7, {verdict}, "
        f"{d1} documented D1 deviations ({detail}; {time.perf_counter() - _STATS.started:.1f} s)"
    )
    print(line)
    plugins = request.config.pluginmanager
    reporter: Any = plugins.get_plugin("terminalreporter")
    capture: Any = plugins.get_plugin("capturemanager")
    if reporter is None or not total:
        return

    def write() -> None:
        if reporter.verbosity < 0:  # -q: the progress dots do not end their line
            reporter.write("\n")
        reporter.write_line(line)

    if capture is None:
        write()
    else:
        with capture.global_and_fixture_disabled():
            write()


# --------------------------------------------------------------------------- Celery side


@functools.cache
def _app(zone: str, starting_deadline: float | None = None) -> Celery:
    """One Celery app per (zone, deadline): Celery caches ``app.timezone`` on first use."""
    app = Celery(set_as_current=False)
    app.conf.timezone = zone
    app.conf.beat_cron_starting_deadline = starting_deadline
    assert app.timezone == ZoneInfo(zone)
    return app


@dataclass
class _Clock:
    """The ``nowfun`` of a Celery schedule; the test moves it."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def _celery_next(sched: Any, clock: _Clock, last: datetime) -> datetime | None:
    """Celery's next run after ``last`` as a UTC instant (never ``now + rem`` on a local now)."""
    remaining: timedelta | None = sched.remaining_estimate(last)
    if remaining is None:
        return None
    return clock.now.astimezone(UTC) + remaining


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value.astimezone(UTC)


class _ProbedCrontab(crontab):  # type: ignore[misc]
    """Celery's crontab, recording every evaluation whose next run is not after its start (D1)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_past: list[datetime] = []

    def remaining_estimate(self, last_run_at: datetime, ffwd: Any = None) -> timedelta:
        remaining: timedelta = (
            super().remaining_estimate(last_run_at)
            if ffwd is None else super().remaining_estimate(last_run_at, ffwd)
        )
        now = self.maybe_make_aware(self.now()).astimezone(UTC)
        if now + remaining <= _as_utc(last_run_at):
            self.in_past.append(last_run_at)
        return remaining


def _d1_next(sched: Any, last: datetime) -> datetime | None:
    """The D1 rule by brute force over Celery's expanded fields: the first wall-clock minute
    after wall(last) that matches and whose (fold = 0) instant is after ``last``."""
    zone: tzinfo = sched.tz
    last_utc = _as_utc(last)
    wall = last_utc.astimezone(zone).replace(tzinfo=None, fold=0)
    hours, minutes = sorted(sched.hour), sorted(sched.minute)
    day = wall.date()
    for _ in range(400 * 366 + 2):
        if (
            day.month in sched.month_of_year
            and day.day in sched.day_of_month
            and day.isoweekday() % 7 in sched.day_of_week
        ):
            for hour in hours:
                for minute in minutes:
                    candidate = datetime(day.year, day.month, day.day, hour, minute)
                    if candidate <= wall:
                        continue
                    instant = candidate.replace(tzinfo=zone).astimezone(UTC)
                    if instant > last_utc:
                        return instant
        if day == date.max:
            return None
        day += timedelta(days=1)
    return None  # pragma: no cover - every valid crontab matches within 400 years


class _D1Crontab(crontab):  # type: ignore[misc]
    """Celery's crontab with ``remaining_estimate`` replaced by the D1 rule (Celery's is_due)."""

    def remaining_estimate(self, last_run_at: datetime, ffwd: Any = None) -> timedelta:
        found = _d1_next(self, self.maybe_make_aware(last_run_at))
        assert found is not None
        now: datetime = self.maybe_make_aware(self.now())
        return found - now.astimezone(UTC)


# --------------------------------------------------------------------------- comparison


def _show(value: datetime | None) -> str:
    if value is None:
        return "None"
    return f"{value.isoformat()}[{value.tzinfo}, fold={value.fold}]"


def _assert_same(
    what: str,
    engine_next: datetime | None,
    engine_state: DueState,
    celery_next: datetime | None,
    celery_state: tuple[bool, float | None],
    case: str,
) -> None:
    celery_due, celery_check = celery_state
    message = (
        f"{what}: {case}\n  engine: next_run={_show(engine_next)} {engine_state}\n"
        f"  Celery: next_run={_show(celery_next)} is_due={celery_due} next={celery_check}"
    )
    assert engine_next == celery_next, message
    assert engine_state.next_run == celery_next, message
    assert engine_state.is_due is bool(celery_due), message
    if celery_check is None:
        assert engine_state.next_check is None, message
    else:
        assert engine_state.next_check is not None, message
        assert math.isclose(engine_state.next_check, celery_check, rel_tol=0, abs_tol=TOLERANCE), (
            message
        )


# --------------------------------------------------------------------------- strategies
# Strategy objects are built once and reused: hypothesis spends most of a draw on analysing a
# strategy it has not seen before.


@functools.cache
def _ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


@functools.cache
def _pick(options: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(options)


_BOOLS: Final = st.booleans()
_T = TypeVar("_T")


class _Draw(Protocol):
    """``st.DrawFn`` or ``DataObject.draw``."""

    def __call__(self, strategy: st.SearchStrategy[_T], label: Any = None) -> _T: ...


@functools.cache
def _lists(element: st.SearchStrategy[Any], most: int) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(element, min_size=1, max_size=most).map(tuple)


@functools.cache
def _transitions(zone_name: str) -> tuple[datetime, ...]:
    """The UTC instants 2020-2030 at which ``zone``'s UTC offset changes (to the second)."""
    zone = ZoneInfo(zone_name)

    def offset(at: datetime) -> timedelta | None:
        return at.astimezone(zone).utcoffset()

    found: list[datetime] = []
    step = timedelta(hours=6)
    at, end = datetime(2020, 1, 1, tzinfo=UTC), datetime(2031, 1, 1, tzinfo=UTC)
    before = offset(at)
    while at < end:
        after = offset(at + step)
        if after != before:
            low, high = 0, int(step.total_seconds())  # offset(at + low) == before != at + high
            while high - low > 1:
                middle = (low + high) // 2
                if offset(at + timedelta(seconds=middle)) == before:
                    low = middle
                else:
                    high = middle
            found.append(at + timedelta(seconds=high))
        before, at = after, at + step
    return tuple(found)


@functools.cache
@st.composite
def _instants(draw: st.DrawFn, zone_name: str) -> datetime:
    """A UTC instant: 60 % within ±3 h of one of the zone's DST transitions, often on a minute."""
    transitions = _transitions(zone_name)
    if transitions and draw(_ints(0, 9)) < 6:
        base = draw(_pick(transitions))
        at = base + timedelta(microseconds=draw(_ints(-3 * 3600 * _US, 3 * 3600 * _US)))
    else:
        at = _EPOCH_2019 + timedelta(microseconds=draw(_ints(0, _SPAN_US)))
    return _snap(draw, at)


def _snap(draw: _Draw, at: datetime) -> datetime:
    """Sometimes move an instant onto a whole minute (or 1 µs either side of one)."""
    how = draw(_pick(("keep", "keep", "minute", "minute", "before", "after", "second")))
    if how == "keep":
        return at
    if how == "second":
        return at.replace(microsecond=0)
    at = at.replace(second=0, microsecond=0)
    if how == "before":
        return at - timedelta(microseconds=1)
    if how == "after":
        return at + timedelta(microseconds=1)
    return at


def _later(draw: _Draw, last: datetime, upcoming: datetime | None, *, far: bool) -> datetime:
    """``now`` (UTC): 0..3 days after ``last``, sometimes years later, sometimes exactly when
    the schedule is next due (or 1 µs either side)."""
    last_utc = _as_utc(last)
    how = draw(_pick(("days", "days", "days", "seconds", "exact", "exact", "years")))
    if how == "exact" and upcoming is not None and upcoming > last_utc:
        jitter = draw(_pick((0, 0, 0, -1, 1, 60 * _US)))
        return max(last_utc, upcoming + timedelta(microseconds=jitter))
    if how == "seconds":
        span = 120 * _US
    elif how == "years" and far:
        span = 5 * 366 * _DAY_US
    else:
        span = 3 * _DAY_US
    return _snap(draw, last_utc + timedelta(microseconds=draw(_ints(0, span))))


_NAMES: Final = {
    "day_of_week": (0, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
    "month_of_year": (
        1, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    ),
}
_RANGES: Final = {
    "minute": (0, 59), "hour": (0, 23), "day_of_week": (0, 6),
    "day_of_month": (1, 31), "month_of_year": (1, 12),
}
_CASES: Final[tuple[Callable[[str], str], ...]] = (str.lower, str.upper, str.title)


@functools.cache
@st.composite
def _cron_value(draw: st.DrawFn, name: str, low: int, high: int) -> str:
    value = draw(_ints(low, high))
    if name in _NAMES and draw(_BOOLS):
        base, names = _NAMES[name]
        case: Callable[[str], str] = draw(_pick(_CASES))
        return case(names[value - base])
    return str(value)


@functools.cache
@st.composite
def _cron_part(draw: st.DrawFn, name: str) -> str:
    low, high = _RANGES[name]
    kind = draw(_pick(("*/n", "a", "a", "a-b", "a-b", "a-b/n")))
    step = draw(_ints(1, high - low + 2))
    if kind == "*/n":
        return f"*/{step}"
    first = draw(_cron_value(name, low, high))
    if kind == "a":
        return first
    last = draw(_cron_value(name, low, high))  # half of all ranges wrap around
    return f"{first}-{last}" + (f"/{step}" if kind == "a-b/n" else "")


@functools.cache
@st.composite
def _cron_field(draw: st.DrawFn, name: str) -> CronField:
    low, high = _RANGES[name]
    form = draw(_ints(0, 19))
    if form == 0:
        return draw(_ints(low, high))
    if form == 1:
        return draw(_lists(_ints(low, high), 6))
    if form < 9:
        return "*"
    return ",".join(draw(_lists(_cron_part(name), 3)))


def _celery_field(value: CronField) -> str | int | list[int]:
    return list(value) if isinstance(value, tuple) else value


@functools.cache
@st.composite
def _crontabs(draw: st.DrawFn) -> Crontab:
    fields = {name: draw(_cron_field(name)) for name in Crontab.FIELDS}
    value = Crontab(**fields)
    # CRON-4: Celery refuses day_of_month/month_of_year pairs that never occur.
    days = crontab._expand_cronspec(_celery_field(value.day_of_month), 31, 1)
    months = crontab._expand_cronspec(_celery_field(value.month_of_year), 12, 1)
    assume(any(d <= DAYS_IN_MONTH[m] for m in months for d in days))
    return value


# --------------------------------------------------------------------------- crontab


_DEADLINES: Final = (None, None, None, None, None, 0.0, 0.5, 59.0, 60.0, 61.0, 900.0, 3600.0,
                     86400.0)


@pytest.mark.slow
@settings(_SETTINGS, max_examples=CRONTAB_EXAMPLES)
@given(data=st.data())
def test_crontab_agrees_with_celery(data: st.DataObject) -> None:
    draw = data.draw
    value = draw(_crontabs(), label="crontab")
    zone_name = draw(_pick(ZONES), label="zone")
    zone = ZoneInfo(zone_name)
    deadline = draw(_pick(_DEADLINES), label="beat_cron_starting_deadline")
    app = _app(zone_name, deadline)
    clock = _Clock(_EPOCH_2019)
    fields = {name: _celery_field(getattr(value, name)) for name in Crontab.FIELDS}
    celery = _ProbedCrontab(**fields, nowfun=clock, app=app)

    # beatspec expands the fields exactly as Celery does.
    spec = compile_crontab(value)
    assert (set(spec.minutes), set(spec.hours), set(spec.weekdays), set(spec.days),
            set(spec.months)) == (celery.minute, celery.hour, celery.day_of_week,
                                  celery.day_of_month, celery.month_of_year), value

    for _ in range(CASES_PER_EXAMPLE):
        never_run = draw(_ints(0, 39)) == 0
        anchor = draw(_instants(zone_name), label="anchor")
        last = NEVER_RUN(zone) if never_run else anchor.astimezone(zone)
        if draw(_ints(0, 49)) == 0 and not never_run:
            last = last.astimezone(UTC).replace(tzinfo=None)  # naive: taken as UTC by both
        clock.now = _as_utc(last)
        upcoming = _celery_next(celery, clock, last)
        clock.now = now = _later(
            draw, anchor if never_run else last, upcoming, far=True,
        ).astimezone(zone)
        celery.in_past.clear()
        celery_next = _celery_next(celery, clock, last)
        celery_state = celery.is_due(last)
        engine_next = next_run(value, last, zone=zone)
        engine_state = due(value, None if never_run else last, now, zone=zone,
                           starting_deadline=deadline)
        case = (f"{value} zone={zone_name} deadline={deadline} last={_show(last)} "
                f"now={_show(now)}")
        _STATS.cases["crontab"] += 1
        if not celery.in_past:
            _assert_same("crontab", engine_next, engine_state, celery_next, celery_state, case)
            continue

        # D1: Celery evaluated an instant in the second pass of a repeated hour.
        for start in celery.in_past:
            assert _as_utc(start).astimezone(zone).fold == 1, (
                f"Celery's next run is in the past outside a repeated hour: {case} "
                f"at {_show(start)}"
            )
        fixed = _D1Crontab(**fields, nowfun=clock, app=app)
        d1_next = _d1_next(fixed, last)
        assert d1_next is not None and d1_next > _as_utc(last), case
        _assert_same("crontab (D1)", engine_next, engine_state, d1_next, fixed.is_due(last),
                     case)
        if (engine_next, engine_state.is_due, engine_state.next_check) != (
            celery_next, bool(celery_state[0]), celery_state[1],
        ):
            _STATS.d1["crontab"] += 1


def test_d1_example() -> None:
    """Deviation D1 on Celery's own example (celery-semantics §1.9, vector C28): ``*/15`` in
    Berlin, last run 02:10 CET in the second pass of 27 October 2024."""
    zone = ZoneInfo("Europe/Berlin")
    last = datetime(2024, 10, 27, 1, 10, tzinfo=UTC).astimezone(zone)
    assert (last.hour, last.minute, last.fold) == (2, 10, 1)
    clock = _Clock(last)
    celery = _ProbedCrontab(minute="*/15", nowfun=clock, app=_app("Europe/Berlin"))
    assert _celery_next(celery, clock, last) == datetime(2024, 10, 27, 0, 15, tzinfo=UTC)  # past
    # Wall times are still read with fold = 0, so 02:15-02:45 are all in the past: 03:00 CET.
    expected = datetime(2024, 10, 27, 2, 0, tzinfo=UTC)
    assert _d1_next(celery, last) == expected
    assert next_run(Crontab(minute="*/15"), last, zone=zone) == expected
    state = due(Crontab(minute="*/15"), last, last, zone=zone)
    assert (state.is_due, state.next_check) == (False, 3000.0)
    assert tuple(celery.is_due(last)) == (True, 0)  # what makes Celery beat re-send every tick


def test_crontab_array_fields_as_decoded() -> None:
    """The codec decodes JSON arrays into tuples (``CronField``); the engine must accept them."""
    value = Crontab(minute=(15, 45), hour=(2, 3), day_of_week=(0, 6), day_of_month=(1, 31),
                    month_of_year=(1, 3))
    last = datetime(2024, 3, 30, 12, 0, tzinfo=UTC)
    clock = _Clock(last)
    celery = crontab(minute=[15, 45], hour=[2, 3], day_of_week=[0, 6], day_of_month=[1, 31],
                     month_of_year=[1, 3], nowfun=clock, app=_app("Europe/Berlin"))
    expected = datetime(2024, 3, 31, 1, 15, tzinfo=UTC)  # 02:15 is in the gap: 03:15 CEST
    assert _celery_next(celery, clock, last) == expected
    assert next_run(value, last, zone=ZoneInfo("Europe/Berlin")) == expected


# --------------------------------------------------------------------------- interval


_EVERY: Final = (1, 30, 59.5, 60, 61, 900, 3600, 5400, 86399, 86400, 90000, 7 * 86400)


_RANDOM_EVERY: Final = st.one_of(
    _ints(1, 40 * 86400), st.floats(0.001, 40 * 86400, allow_nan=False, allow_infinity=False),
)
_OFFSET_MINUTES: Final = st.one_of(
    _pick((60, 120, -300, -240, 330, 345, 570, 630, 765, 825, -180)), _ints(-14 * 60, 14 * 60),
)


@functools.cache
@st.composite
def _every(draw: st.DrawFn) -> int | float:
    kind = draw(_ints(0, 3))
    every: int | float = draw(_pick(_EVERY)) if kind < 3 else draw(_RANDOM_EVERY)
    return every


@functools.cache
@st.composite
def _interval_last(draw: st.DrawFn, zone_name: str) -> datetime:
    """``last_run_at`` aware in the zone, sometimes in a fixed offset, UTC, or naive."""
    at = draw(_instants(zone_name))
    kind = draw(_pick(("zone",) * 7 + ("offset", "offset", "utc", "zoneinfo-utc")))
    if kind == "offset":
        minutes = draw(_OFFSET_MINUTES)
        return at.astimezone(timezone(timedelta(minutes=minutes)))
    if kind == "utc":
        return at if draw(_BOOLS) else at.replace(tzinfo=None)
    if kind == "zoneinfo-utc":
        return at.astimezone(ZoneInfo("UTC"))
    return at.astimezone(ZoneInfo(zone_name))


@pytest.mark.slow
@settings(_SETTINGS, max_examples=INTERVAL_EXAMPLES)
@given(data=st.data())
def test_interval_agrees_with_celery(data: st.DataObject) -> None:
    draw = data.draw
    every = draw(_every(), label="every")
    relative = draw(_BOOLS, label="relative")
    value = Interval(every, relative)
    zone_name = draw(_pick(ZONES), label="zone")
    zone = ZoneInfo(zone_name)
    clock = _Clock(_EPOCH_2019)
    celery = schedule(timedelta(seconds=every), relative, nowfun=clock, app=_app(zone_name))
    for _ in range(CASES_PER_EXAMPLE):
        never_run = draw(_ints(0, 39)) == 0
        anchor = draw(_interval_last(zone_name), label="last")
        last = NEVER_RUN(zone) if never_run else anchor
        clock.now = _as_utc(last)
        upcoming = _celery_next(celery, clock, last)
        clock.now = now = _later(
            draw, anchor if never_run else last, upcoming, far=True,
        ).astimezone(zone)
        celery_next = _celery_next(celery, clock, last)
        celery_state = celery.is_due(last)
        engine_next = next_run(value, last, zone=zone)
        engine_state = due(value, None if never_run else last, now, zone=zone)
        _STATS.cases["interval"] += 1
        case = f"{value} zone={zone_name} last={_show(last)} now={_show(now)}"
        _assert_same("interval", engine_next, engine_state, celery_next, celery_state, case)


def test_naive_last_run_at_is_utc_in_the_app_zone() -> None:
    """Celery reads a naive ``last_run_at`` as UTC and then moves it into the app zone
    (``maybe_make_aware``), so a relative interval rounds on the app zone's wall clock."""
    zone = ZoneInfo("Europe/Berlin")
    last = datetime(2020, 3, 29, 1, 0)  # 03:00 CEST, the morning of the spring-forward
    now = datetime(2020, 3, 29, 22, 0, tzinfo=UTC)  # 00:00 CEST on the 30th
    clock = _Clock(now.astimezone(zone))
    celery = schedule(timedelta(days=1), True, nowfun=clock, app=_app("Europe/Berlin"))
    expected = _celery_next(celery, clock, last)
    assert expected == now
    assert next_run(Interval(86400, True), last, zone=zone) == expected
    state = due(Interval(86400, True), last, now.astimezone(zone), zone=zone)
    assert (state.is_due, state.next_check) == tuple(celery.is_due(last))


# --------------------------------------------------------------------------- rrule


_FREQ_NAMES: Final = RRule.FREQ_NAMES
_TZ_MINUTES: Final = (0, 0, 60.0, 120.0, -300.0, -240.0, 330.0, 345.0, 525.0, 765.0, -210.0, 60,
                      -300)
#: freq -> (largest interval, how far dtstart may lie from last_run_at, in days)
_FREQ_LIMITS: Final = {
    0: (3, 730), 1: (12, 730), 2: (4, 730), 3: (10, 730), 4: (48, 30), 5: (600, 3), 6: (7200, 3),
}


@functools.cache
def _sets(low: int, high: int, *, signed: bool = False, most: int = 4) -> st.SearchStrategy[Any]:
    values = _ints(low, high)
    if signed:
        values = st.one_of(values, _ints(-high, -max(low, 1)))
    return st.one_of(values, _lists(values, most))


@functools.cache
def _weekdays(nth_limit: int) -> st.SearchStrategy[RRuleValue]:
    """Plain weekdays, or (``nth_limit`` > 0) nth weekdays of the month or year. Never both in
    one list: dateutil intersects the two kinds, which usually selects nothing ever."""
    if nth_limit:
        one: st.SearchStrategy[int | Weekday] = st.builds(
            Weekday, _ints(0, 6), st.one_of(_ints(1, nth_limit), _ints(-nth_limit, -1)),
        )
    else:
        one = st.one_of(_ints(0, 6), st.builds(Weekday, _ints(0, 6), st.none()))
    return st.one_of(one, _lists(one, 3))


_COUNTS: Final = st.one_of(st.none(), st.none(), _ints(1, 30))
_WKST: Final = st.one_of(st.none(), _ints(0, 6), st.builds(Weekday, _ints(0, 6), st.none()))


@st.composite
def _rrules(draw: st.DrawFn, last: datetime) -> RRule:
    freq = draw(_ints(0, 6))
    most_interval, spread_days = _FREQ_LIMITS[freq]
    interval = draw(_ints(1, most_interval))
    dtstart = _as_utc(last) + timedelta(
        seconds=draw(_ints(-spread_days * 86400, spread_days * 86400)),
    )
    by: dict[str, RRuleValue] = {}
    fine = freq >= 4 and interval == 1  # byhour/minute/second always reachable
    # Only combinations every period can reach: dateutil would otherwise search to year 9999
    # (a MONTHLY rule every 2 months from January never reaches June).
    if (freq != 1 or interval == 1) and draw(_ints(0, 3)) == 0:
        by["bymonth"] = draw(_sets(1, 12))
    weekdays_reachable = freq <= 2 or (freq == 3 and interval % 7) or interval == 1
    nth = False
    if weekdays_reachable and draw(_ints(0, 3)) == 0:
        nth = freq <= 1 and draw(_BOOLS)
        nth_limit = (4 if freq == 1 or "bymonth" in by else 52) if nth else 0
        by["byweekday"] = draw(_weekdays(nth_limit))
    if freq <= 1 and not nth and draw(_ints(0, 3)) == 0:
        by["bymonthday"] = draw(_sets(1, 28, signed=True))
    if freq == 0 and not by and draw(_ints(0, 4)) == 0:
        key = draw(_pick(("byyearday", "byweekno", "byeaster")))
        by[key] = draw({
            "byyearday": _sets(1, 365, signed=True),
            "byweekno": _sets(1, 52, signed=True),
            "byeaster": _sets(-3, 3),
        }[key])
    if (freq <= 3 or fine) and draw(_ints(0, 3)) == 0:
        by["byhour"] = draw(_sets(0, 23))
    if (freq <= 3 or (fine and freq >= 5)) and draw(_ints(0, 3)) == 0:
        by["byminute"] = draw(_sets(0, 59))
    if (freq <= 3 or (fine and freq == 6)) and draw(_ints(0, 5)) == 0:
        by["bysecond"] = draw(_sets(0, 59))
    if by and draw(_ints(0, 5)) == 0:
        by["bysetpos"] = draw(_pick((1, -1, (1, -1))))
    day_given = any(k in by for k in ("byweekday", "bymonthday", "byyearday", "byweekno",
                                       "byeaster"))
    dtstart_tz = draw(_pick(_TZ_MINUTES))
    if freq <= 1 and not day_given:
        # dateutil then repeats dtstart's day of the month: keep it in every month (<= 28).
        local_day = from_timestamp(int(dtstart.timestamp()), dtstart_tz).day
        dtstart -= timedelta(days=max(0, local_day - 28))
    count = draw(_COUNTS)
    until: int | None = None
    until_tz: int | float = 0
    if count is None and draw(_ints(0, 2)) == 0:
        until = int(dtstart.timestamp()) + draw(_ints(-86400, 3 * 366 * 86400))
        until_tz = draw(_pick(_TZ_MINUTES))
    wkst: int | Weekday | None = draw(_WKST)
    name_form = draw(_ints(0, 4)) == 0
    return RRule(
        freq=draw(_pick(_CASES))(_FREQ_NAMES[freq]) if name_form else freq,
        dtstart=int(dtstart.timestamp()),
        dtstart_tz=dtstart_tz,
        interval=interval,
        wkst=wkst,
        count=count,
        until=until,
        until_tz=until_tz,
        **by,
    )


def _dateutil_value(value: RRuleValue) -> Any:
    def one(item: int | Weekday) -> Any:
        return du.weekday(item.wkday, item.n) if isinstance(item, Weekday) else item

    if value is None:
        return None
    if isinstance(value, tuple):
        return [one(item) for item in value]
    return one(value)


def _redbeat(value: RRule, clock: _Clock, app: Celery) -> Any:
    """The rrule RedBeat's decoder builds from the same JSON members."""
    by = {name: _dateutil_value(getattr(value, name)) for name in (
        "bysetpos", "bymonth", "bymonthday", "byyearday", "byeaster", "byweekno", "byweekday",
        "byhour", "byminute", "bysecond",
    )}
    return redbeat_rrule(
        value.freq,
        dtstart=from_timestamp(value.dtstart, value.dtstart_tz),
        interval=value.interval,
        wkst=_dateutil_value(value.wkst),
        count=value.count,
        until=None if value.until is None else from_timestamp(value.until, value.until_tz),
        nowfun=clock,
        app=app,
        **by,
    )


@pytest.mark.slow
@settings(_SETTINGS, max_examples=RRULE_EXAMPLES)
@given(data=st.data())
def test_rrule_agrees_with_celery(data: st.DataObject) -> None:
    draw = data.draw
    zone_name = draw(_pick(ZONES), label="zone")
    zone = ZoneInfo(zone_name)
    base = draw(_instants(zone_name), label="base")
    value = draw(_rrules(base), label="rrule")
    clock = _Clock(base)
    try:
        celery = _redbeat(value, clock, _app(zone_name))
    except ValueError:  # dateutil: the by* values select nothing; RedBeat cannot load it
        with pytest.raises(ValueError, match="empty set"):
            next_run(value, base, zone=zone)
        assume(False)
        return
    far = value.frequency <= 3
    for _ in range(CASES_PER_EXAMPLE):
        never_run = draw(_ints(0, 39)) == 0
        # last_run_at within a few days of the rule's base (dateutil iterates from dtstart)
        shift = timedelta(microseconds=draw(_ints(-3 * _DAY_US, 3 * _DAY_US)))
        anchor = _snap(draw, base + shift)
        if never_run:
            last = NEVER_RUN(zone)
        else:
            last = anchor.astimezone(zone if draw(_ints(0, 3)) else UTC)
        clock.now = _as_utc(last)
        upcoming = _celery_next(celery, clock, last)
        clock.now = now = _later(
            draw, anchor if never_run else last, upcoming, far=far,
        ).astimezone(zone)
        celery_next = _celery_next(celery, clock, last)
        celery_state = celery.is_due(last)
        engine_next = next_run(value, last, zone=zone)
        engine_state = due(value, None if never_run else last, now, zone=zone)
        _STATS.cases["rrule"] += 1
        case = f"{value} zone={zone_name} last={_show(last)} now={_show(now)}"
        _assert_same("rrule", engine_next, engine_state, celery_next, celery_state, case)
