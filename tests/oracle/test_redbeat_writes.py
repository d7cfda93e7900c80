"""What RedBeat 2.4.2 itself writes is valid beatspec, and the codec re-encodes it byte for byte.

Every schedule type RedBeat supports is created through RedBeat's own API
(``RedBeatSchedulerEntry(...).save()``), ticked by a real ``RedBeatScheduler`` (which fires it and
rewrites ``meta`` with ``total_run_count``), and read back with HGETALL. Both the ``save()``-written
and the tick-written hash must decode without a FAILED finding, and
``encode(decode(text)) == text`` must hold for every ``definition`` and ``meta`` text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

import pytest
from celery.schedules import crontab, schedule
from dateutil.rrule import FR, MO, MONTHLY, WE, WEEKLY
from redbeat import RedBeatSchedulerEntry
from redbeat.schedules import rrule

from beatspec.codec import (
    decode_definition,
    decode_entry,
    decode_meta,
    encode_definition,
    encode_meta,
)

if TYPE_CHECKING:
    from oracle_harness import Message, OracleHarness

UTC: Final = dt.UTC
LONG_AGO: Final = dt.datetime(2001, 1, 1)  # made aware in the app zone: every schedule is due

#: Every schedule form RedBeat can write (each is due when last run in 2001).
SCHEDULES: Final[dict[str, Callable[[], Any]]] = {
    "interval float": lambda: schedule(run_every=10.0),
    "interval int seconds": lambda: schedule(run_every=45),
    "interval relative": lambda: schedule(run_every=dt.timedelta(minutes=5), relative=True),
    "interval sub-second": lambda: schedule(run_every=0.5),
    "crontab strings": lambda: crontab(minute="*/15", hour="9-17", day_of_week="mon-fri"),
    "crontab int and list": lambda: crontab(minute=5, hour=[1, 2, 3]),
    "crontab names and steps": lambda: crontab(
        minute="0-30/10", hour="*/6", day_of_week="sat,sun", day_of_month="1-7",
        month_of_year="jan-jun"),
    "rrule MINUTELY count": lambda: rrule(
        "MINUTELY", dtstart=dt.datetime(2024, 1, 1, 12, 0, tzinfo=UTC), count=5),
    "rrule WEEKLY weekdays until": lambda: rrule(
        WEEKLY, dtstart=dt.datetime(2024, 1, 1, 9, 0, tzinfo=UTC), byweekday=(MO, WE, FR),
        byhour=9, byminute=0, until=dt.datetime(2035, 12, 31, tzinfo=UTC)),
    "rrule DAILY New York": lambda: rrule(
        "DAILY", dtstart=dt.datetime(2024, 1, 1, 9, 0, tzinfo=ZoneInfo("America/New_York"))),
    "rrule MONTHLY weekday": lambda: rrule(
        MONTHLY, dtstart=dt.datetime(2024, 1, 1, tzinfo=UTC), byweekday=MO(+1)),
    "rrule freq string DAILY": lambda: rrule(
        "DAILY", dtstart=dt.datetime(2024, 6, 1, 6, 30, tzinfo=UTC), count=1000),
}

ARGS: Final = [1, "two", 3.5, None, [True]]
KWARGS: Final = {"k": "v", "n": 2, "nested": {"a": [1, 2]}}
OPTIONS: Final = {"queue": "reports", "priority": 3, "expires": 3600}


def check_codec(fields: Mapping[str, str], name: str, what: str) -> list[str]:
    """No FAILED finding; definition and meta re-encode byte for byte. Returns NON-STRICT IDs."""
    report = decode_entry(fields, name=name).report
    assert report.valid(), f"{what}: {[(f.rule, f.pointer, f.message) for f in report.failed]}"
    definition = decode_definition(fields["definition"], name=name)
    assert definition.value is not None, f"{what}: {definition.report}"
    assert encode_definition(definition.value) == fields["definition"], what
    meta = decode_meta(fields["meta"])
    assert meta.value is not None, f"{what}: {meta.report}"
    assert encode_meta(meta.value) == fields["meta"], what
    return sorted(report.broken(strict=True) - report.broken())


def only_message(harness: OracleHarness, task: str) -> Message:
    messages = harness.read_messages()
    assert len(messages) == 1, messages
    message = messages[0]
    assert message.error is None, message.error
    assert message.task == task
    return message


def save_entry(harness: OracleHarness, name: str, sched: Any) -> RedBeatSchedulerEntry:
    entry = harness.entry(
        name, "tasks.report", sched, args=list(ARGS), kwargs=dict(KWARGS),
        options=dict(OPTIONS), last_run_at=LONG_AGO.replace(tzinfo=ZoneInfo(harness.timezone)),
    )
    return entry.save()


@pytest.mark.parametrize("case", sorted(SCHEDULES))
def test_redbeat_written_entries_are_valid_and_round_trip(
    harness: OracleHarness, case: str
) -> None:
    name = "w-" + case.replace(" ", "-").lower()
    save_entry(harness, name, SCHEDULES[case]())
    saved = harness.fields(name)
    assert set(saved) == {"definition", "meta"}
    notes = check_codec(saved, name, f"{case}: save()")
    assert '"total_run_count"' not in saved["meta"]

    assert harness.tick() is None
    message = only_message(harness, "tasks.report")
    assert message.queue == "reports"
    assert (message.args, message.kwargs) == (ARGS, KWARGS)
    ticked = harness.fields(name)
    assert ticked["definition"] == saved["definition"]
    assert '"total_run_count": 1' in ticked["meta"], ticked["meta"]
    notes += check_codec(ticked, name, f"{case}: tick")
    print(f"\n{case} [{harness.timezone}] NON-STRICT: {sorted(set(notes)) or 'none'}")
    print(f"  definition: {saved['definition']}")


def test_save_over_an_existing_entry_keeps_meta(harness: OracleHarness) -> None:
    name = "resaved"
    save_entry(harness, name, crontab(minute="0", hour="4"))
    assert harness.tick() is None
    only_message(harness, "tasks.report")
    ticked = harness.fields(name)

    harness.entry(name, "tasks.other", schedule(run_every=60.0), args=[9],
                  options={"queue": "q2"}).save()
    resaved = harness.fields(name)
    assert resaved["meta"] == ticked["meta"], "HSETNX must keep the stored meta"
    assert resaved["definition"] != ticked["definition"]
    check_codec(resaved, name, "save() over an existing entry")


def test_reschedule_writes_valid_meta(harness: OracleHarness) -> None:
    name = "rescheduled"
    save_entry(harness, name, schedule(run_every=3600.0))
    assert harness.tick() is None
    only_message(harness, "tasks.report")
    entry = RedBeatSchedulerEntry.from_key(harness.key(name), app=harness.app)
    assert entry.total_run_count == 1
    entry.reschedule()
    fields = harness.fields(name)
    assert '"total_run_count"' not in fields["meta"], "reschedule() drops total_run_count"
    check_codec(fields, name, "reschedule()")
    india = dt.timezone(dt.timedelta(hours=5, minutes=30))
    explicit = dt.datetime(2020, 2, 29, 12, 0, tzinfo=india)
    entry.reschedule(last_run_at=explicit)
    fields = harness.fields(name)
    assert '"timezone": 19800.0' in fields["meta"], fields["meta"]
    notes = check_codec(fields, name, "reschedule(fixed offset)")
    assert "DT-4" in notes  # offset seconds are legal, the canonical form is a zone name


def test_entry_never_run(harness: OracleHarness) -> None:
    name = "never-run"
    entry = harness.entry(name, "tasks.report", crontab(minute="*/5"), args=[1])
    entry.last_run_at = None  # the constructor would default it to now
    entry.save()
    fields = harness.fields(name)
    assert fields["meta"] == '{"last_run_at": null}'
    check_codec(fields, name, "save() with last_run_at=None")
    assert harness.tick() is None
    only_message(harness, "tasks.report")
    fields = harness.fields(name)
    assert '"total_run_count": 1' in fields["meta"]
    check_codec(fields, name, "tick after never run")
