"""Benchmark: next-due computations per second, beatspec's engine against Celery's own code.

For each schedule type the same fixed, seeded list of (schedule, last_run_at) pairs is handed to

* beatspec:  ``beatspec.engine.next_run(schedule, last_run_at, zone=...)``
* Celery:    ``crontab.remaining_estimate`` / ``schedule.remaining_estimate`` (celery 5.7) and
             ``redbeat.schedules.rrule.remaining_estimate`` (celery-redbeat 2.4.2)
* croniter:  ``croniter(expr, day_or=False).get_next(datetime, start_time=...)`` (crontab only)

Schedule objects are built once, before timing, for every implementation (as a scheduler holds
them); only the next-run computation is timed. Each measurement is a full pass over the list,
repeated (timeit style) and the best pass is reported. Exits 1 if beatspec is slower than
Celery's own code for any type (ratio < 1.0). See bench/README.md.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

ZONES: Final = (
    "UTC", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
    "America/Santiago", "Australia/Lord_Howe",
)
START: Final = datetime(2020, 1, 1, tzinfo=UTC)
SPAN_SECONDS: Final = 10 * 365 * 86_400

_MINUTES: Final = ("*", "*/5", "*/15", "0", "30", "0,30", "5-55/10", "15,45", "59", "*/7")
_HOURS: Final = ("*", "*", "*/2", "9-17", "0", "3", "2", "22-23", "8,12,18", "1-5")
_DOWS: Final = ("*", "*", "*", "mon-fri", "1", "sat,sun", "0", "2-4")
_DOMS: Final = ("*", "*", "*", "1", "15", "1-7", "*/2", "28", "10-20")
_MONTHS: Final = ("*", "*", "*", "1", "jan-jun", "*/3", "12", "3,9")
_EVERY: Final = (1, 30, 60, 61, 300, 900, 3600, 5400, 86_399, 86_400, 90_000, 7 * 86_400)


@dataclass(frozen=True, slots=True)
class Case:
    """One input: the beatspec value, what Celery/RedBeat/croniter are built from, last run."""

    value: Any
    zone: str
    last: datetime
    cron_line: str | None = None


# --------------------------------------------------------------------------- inputs


def _random_last(rng: random.Random, zone: ZoneInfo) -> datetime:
    """A last run in 2020-2029, aware in the zone; never in the second pass of a repeated hour
    (documented deviation D1, where beatspec and Celery differ on purpose)."""
    while True:
        at = START + timedelta(seconds=rng.randrange(SPAN_SECONDS),
                               microseconds=rng.randrange(1_000_000))
        local = at.astimezone(zone)
        if local.fold == 0:
            return local


def crontab_cases(rng: random.Random, n: int) -> list[Case]:
    from beatspec.codec.types import Crontab

    out: list[Case] = []
    for _ in range(n):
        fields = (rng.choice(_MINUTES), rng.choice(_HOURS), rng.choice(_DOWS),
                  rng.choice(_DOMS), rng.choice(_MONTHS))
        minute, hour, dow, dom, month = fields
        zone = rng.choice(ZONES)
        out.append(Case(
            Crontab(minute=minute, hour=hour, day_of_week=dow, day_of_month=dom,
                    month_of_year=month),
            zone, _random_last(rng, ZoneInfo(zone)), f"{minute} {hour} {dom} {month} {dow}",
        ))
    return out


def interval_cases(rng: random.Random, n: int) -> list[Case]:
    from beatspec.codec.types import Interval

    out: list[Case] = []
    for _ in range(n):
        every = rng.choice(_EVERY) if rng.random() < 0.8 else round(rng.uniform(1, 86_400), 3)
        zone = rng.choice(ZONES)
        out.append(Case(Interval(every, rng.random() < 0.5), zone,
                        _random_last(rng, ZoneInfo(zone))))
    return out


def rrule_cases(rng: random.Random, n: int) -> list[Case]:
    """Realistic rules that started up to 90 days before the last run (dateutil walks from
    dtstart, so that distance sets the cost for both sides alike)."""
    from beatspec.codec.types import RRule, Weekday

    out: list[Case] = []
    for _ in range(n):
        zone = rng.choice(ZONES)
        last = _random_last(rng, ZoneInfo(zone))
        freq = rng.choice((0, 1, 2, 2, 3, 3, 3, 4))
        by: dict[str, Any] = {}
        if freq == 2:
            by["byweekday"] = tuple(sorted(rng.sample(range(7), rng.randint(1, 3))))
        if freq == 1 and rng.random() < 0.5:
            by["byweekday"] = Weekday(rng.randrange(7), rng.choice((1, 2, -1)))
        if freq <= 3 and rng.random() < 0.7:
            by["byhour"] = tuple(sorted(rng.sample(range(24), rng.randint(1, 2))))
            by["byminute"] = rng.choice((0, 15, 30))
            by["bysecond"] = 0
        dtstart = last - timedelta(days=rng.uniform(0, 90))
        out.append(Case(RRule(
            freq=freq, dtstart=int(dtstart.timestamp()), dtstart_tz=rng.choice((0, 60.0, -300.0)),
            interval=rng.choice((1, 1, 1, 2)),
            count=rng.choice((None, None, None, 500)), **by,
        ), zone, last))
    return out


# --------------------------------------------------------------------------- implementations


Runner = Callable[[], object]


def beatspec_runner(cases: Sequence[Case]) -> Runner:
    from beatspec.engine import next_run

    prepared = [(case.value, case.last, ZoneInfo(case.zone)) for case in cases]

    def run() -> object:
        result = None
        for value, last, zone in prepared:
            result = next_run(value, last, zone=zone)
        return result

    return run


def beatspec_results(cases: Sequence[Case]) -> list[datetime | None]:
    from beatspec.engine import next_run

    return [next_run(case.value, case.last, zone=ZoneInfo(case.zone)) for case in cases]


_APPS: dict[str, Any] = {}


def _app(zone: str) -> Any:
    """One app per zone, timezone set before first use (Celery caches ``app.timezone``)."""
    from celery import Celery

    if zone not in _APPS:
        app = Celery(set_as_current=False)
        app.conf.timezone = zone
        _ = app.timezone
        _APPS[zone] = app
    return _APPS[zone]


def _celery_schedule(case: Case, now: datetime) -> Any:
    from beatspec.codec.types import Crontab, Interval, RRule

    app, nowfun = _app(case.zone), (lambda: now)
    value = case.value
    if isinstance(value, Crontab):
        from celery.schedules import crontab

        return crontab(minute=value.minute, hour=value.hour, day_of_week=value.day_of_week,
                       day_of_month=value.day_of_month, month_of_year=value.month_of_year,
                       nowfun=nowfun, app=app)
    if isinstance(value, Interval):
        from celery.schedules import schedule

        return schedule(timedelta(seconds=value.every), value.relative, nowfun=nowfun, app=app)
    if isinstance(value, RRule):
        from dateutil.rrule import weekday
        from redbeat.decoder import from_timestamp
        from redbeat.schedules import rrule

        def by(item: Any) -> Any:
            if isinstance(item, tuple):
                return [by(x) for x in item]
            if hasattr(item, "wkday"):
                return weekday(item.wkday, item.n)
            return item

        return rrule(
            value.freq, dtstart=from_timestamp(value.dtstart, value.dtstart_tz),
            interval=value.interval, count=value.count, byweekday=by(value.byweekday),
            byhour=by(value.byhour), byminute=by(value.byminute), bysecond=by(value.bysecond),
            nowfun=nowfun, app=app,
        )
    raise TypeError(value)


def celery_runner(cases: Sequence[Case]) -> Runner:
    now = datetime(2020, 1, 1, tzinfo=UTC)
    prepared = [(_celery_schedule(case, now), case.last) for case in cases]

    def run() -> object:
        result = None
        for sched, last in prepared:
            result = sched.remaining_estimate(last)
        return result

    return run


def celery_results(cases: Sequence[Case]) -> list[datetime | None]:
    now = datetime(2020, 1, 1, tzinfo=UTC)
    out: list[datetime | None] = []
    for case in cases:
        remaining = _celery_schedule(case, now).remaining_estimate(case.last)
        out.append(None if remaining is None else now + remaining)
    return out


def have_croniter() -> bool:
    try:
        import croniter  # type: ignore[import-untyped, unused-ignore]  # noqa: F401
    except ImportError:
        return False
    return True


def croniter_runner(cases: Sequence[Case]) -> Runner:
    from croniter import croniter  # type: ignore[import-untyped, unused-ignore]

    prepared = []
    for case in cases:
        assert case.cron_line is not None
        prepared.append((croniter(case.cron_line, case.last, day_or=False), case.last))

    def run() -> object:
        result = None
        for it, last in prepared:
            result = it.get_next(datetime, start_time=last)
        return result

    return run


# --------------------------------------------------------------------------- measuring


def best_of(run: Runner, repeat: int) -> float:
    """The fastest of ``repeat`` full passes, in seconds (timeit's rule: the minimum is the
    measurement least disturbed by the rest of the machine)."""
    run()  # warm caches (beatspec's compiled crontabs and rrules, zoneinfo)
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best


@dataclass(frozen=True, slots=True)
class Row:
    kind: str
    n: int
    agree: int
    beatspec: float
    celery: float
    croniter: float | None

    @property
    def vs_celery(self) -> float:
        return self.beatspec / self.celery

    @property
    def vs_croniter(self) -> float | None:
        return None if self.croniter is None else self.beatspec / self.croniter


def measure(kind: str, cases: Sequence[Case], repeat: int) -> Row:
    agree = sum(
        a == b for a, b in zip(beatspec_results(cases), celery_results(cases), strict=True)
    )
    n = len(cases)
    beatspec = n / best_of(beatspec_runner(cases), repeat)
    celery = n / best_of(celery_runner(cases), repeat)
    cron = None
    if kind == "crontab" and have_croniter():
        cron = n / best_of(croniter_runner(cases), repeat)
    return Row(kind, n, agree, beatspec, celery, cron)


def render(rows: Sequence[Row], repeat: int) -> str:
    head = (f"{'type':<9} {'pairs':>6} {'agree':>6} {'beatspec/s':>11} {'Celery/s':>11} "
            f"{'croniter/s':>11} {'vs Celery':>10} {'vs croniter':>12}")
    lines = [head, "-" * len(head)]
    for row in rows:
        cron = "-" if row.croniter is None else f"{row.croniter:,.0f}"
        vs_cron = "-" if row.vs_croniter is None else f"{row.vs_croniter:.2f}x"
        lines.append(
            f"{row.kind:<9} {row.n:>6} {row.agree:>6} {row.beatspec:>11,.0f} "
            f"{row.celery:>11,.0f} {cron:>11} {row.vs_celery:>9.2f}x {vs_cron:>12}"
        )
    lines.append(
        f"(next-due computations per second, best of {repeat} passes; 'agree' = pairs where "
        "beatspec's next run equals Celery's; Celery = celery 5.7 crontab/schedule, "
        "celery-redbeat 2.4.2 rrule)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pairs", type=int, default=2000, help="inputs per type (2000)")
    parser.add_argument("--repeat", type=int, default=5, help="passes, best counts (5)")
    parser.add_argument("--seed", type=int, default=20261122, help="input seed (20261122)")
    parser.add_argument("--only", choices=("crontab", "interval", "rrule"), action="append",
                        help="measure only this type (repeatable)")
    args = parser.parse_args(argv)

    makers: dict[str, Callable[[random.Random, int], list[Case]]] = {
        "crontab": crontab_cases, "interval": interval_cases, "rrule": rrule_cases,
    }
    rows = []
    for kind, make in makers.items():
        if args.only and kind not in args.only:
            continue
        cases = make(random.Random(f"{args.seed}-{kind}"), args.pairs)
        rows.append(measure(kind, cases, args.repeat))
    print(render(rows, args.repeat))
    if not have_croniter():
        print("croniter is not installed: pip install croniter (the column is left empty)")
    slower = [row.kind for row in rows if row.vs_celery < 1.0]
    disagree = [row.kind for row in rows if row.agree != row.n]
    if disagree:
        print(f"WARNING: beatspec and Celery disagree on some {', '.join(disagree)} inputs")
    if slower:
        print(f"FAIL: beatspec is slower than Celery's own code for: {', '.join(slower)}")
        return 1
    print("OK: beatspec is at least as fast as Celery's own code for every type")
    return 0


if __name__ == "__main__":
    sys.exit(main())
