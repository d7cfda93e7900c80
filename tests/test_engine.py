"""Engine behaviours that the schedule vectors cannot carry (CRON-11) and API contracts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from celery import Celery
from celery.schedules import crontab

from beatspec.codec.types import Crontab, Interval, RRule
from beatspec.engine import due, fire_times, next_run, score

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize("deadline", [None, 60, 3600, 86400])
@pytest.mark.parametrize("stale_hours", [0.5, 2, 30])
def test_starting_deadline_matches_celery(deadline: int | None, stale_hours: float) -> None:
    """CRON-11: Celery's beat_cron_starting_deadline, as a ``due(starting_deadline=...)``."""
    app = Celery("deadline", set_as_current=False)
    app.conf.timezone = "Europe/Berlin"
    app.conf.beat_cron_starting_deadline = deadline
    now = datetime(2024, 6, 3, 10, 30, tzinfo=UTC)
    last = (now - timedelta(hours=stale_hours)).astimezone(BERLIN)
    celery = crontab(minute="0", app=app, nowfun=lambda: now.astimezone(BERLIN)).is_due(last)
    ours = due(Crontab(minute="0"), last, now, zone=BERLIN, starting_deadline=deadline)
    assert ours.is_due == celery.is_due
    assert ours.next_check == pytest.approx(celery.next, abs=1e-6)


def test_fire_times_follow_each_other() -> None:
    start = datetime(2024, 3, 30, 12, tzinfo=UTC)
    runs = list(fire_times(Crontab(minute="30", hour="2"), start, zone=BERLIN, count=3))
    # 2024-03-31 02:30 does not exist in Berlin: it fires at 03:30 CEST (CRON-9)
    assert runs == [
        datetime(2024, 3, 31, 1, 30, tzinfo=UTC),
        datetime(2024, 4, 1, 0, 30, tzinfo=UTC),
        datetime(2024, 4, 2, 0, 30, tzinfo=UTC),
    ]


def test_score_rules() -> None:
    now = datetime(2024, 1, 1, 12, tzinfo=UTC)
    every_minute = Interval(60.0, False)
    assert score(every_minute, None, now, zone=UTC) == int(now.timestamp())
    last = now - timedelta(seconds=30)
    assert score(every_minute, last, now, zone=UTC) == int(now.timestamp()) + 30
    overdue = now - timedelta(hours=2)
    assert score(every_minute, overdue, now, zone=UTC) == int(now.timestamp())
    spent = RRule(freq=3, dtstart=int((now - timedelta(days=10)).timestamp()), count=2)
    assert score(spent, now, now, zone=UTC) == -1
    assert next_run(spent, now, zone=UTC) is None
    state = due(spent, now, now, zone=UTC)
    assert (state.is_due, state.next_check, state.next_run) == (False, None, None)


def test_never_run_entry_is_evaluated_from_year_one() -> None:
    now = datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert due(Crontab(minute="0", hour="4"), None, now, zone=BERLIN).is_due
    future = RRule(freq=3, dtstart=int((now + timedelta(days=1)).timestamp()))
    state = due(future, None, now, zone=UTC)
    assert not state.is_due
    assert state.next_run == now + timedelta(days=1)
