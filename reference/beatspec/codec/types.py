"""Typed, immutable values for everything an entry hash holds (spec §5-§9)."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar, Literal, TypeAlias
from zoneinfo import ZoneInfo

__all__ = [
    "CronField",
    "Crontab",
    "DateTime",
    "Definition",
    "Entry",
    "Extensions",
    "Interval",
    "Json",
    "Meta",
    "Misfire",
    "RRule",
    "RRuleValue",
    "Schedule",
    "Solar",
    "Weekday",
]

Json: TypeAlias = Any  # a decoded JSON value (None, bool, int, float, str, list, dict)

_EMPTY: Mapping[str, Json] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class DateTime:
    """A wall-clock time in a zone, as RedBeat encodes ``datetime`` (spec §5, DT-1..DT-5).

    ``timezone`` is an IANA zone name, an offset in seconds east of UTC, or ``None`` when the
    member was absent (read as UTC, COMPAT-1). ``fold`` is ``None`` when absent.
    """

    TAG: ClassVar[str] = "datetime"

    year: int
    month: int
    day: int
    hour: int = 0
    minute: int = 0
    second: int = 0
    microsecond: int = 0
    timezone: str | int | float | None = "UTC"
    fold: int | None = None

    def tzinfo(self) -> _dt.tzinfo:
        zone = self.timezone
        if zone is None:
            return ZoneInfo("UTC")
        if isinstance(zone, str):
            return ZoneInfo(zone)
        if zone == 0:
            return _dt.UTC
        return _dt.timezone(_dt.timedelta(seconds=zone))

    def to_datetime(self) -> _dt.datetime:
        """The aware :class:`datetime.datetime` RedBeat would decode (plus ``fold``)."""
        return _dt.datetime(
            self.year, self.month, self.day, self.hour, self.minute, self.second,
            self.microsecond, tzinfo=self.tzinfo(), fold=self.fold or 0,
        )

    @classmethod
    def from_datetime(cls, value: _dt.datetime) -> DateTime:
        """Encode like RedBeat 2.4.2: naive -> 'UTC', ZoneInfo -> its key, else offset seconds."""
        tz = value.tzinfo
        zone: str | float
        if tz is None:
            zone = "UTC"
        elif isinstance(tz, ZoneInfo) or hasattr(tz, "key"):
            zone = str(tz.key)
        else:
            offset = value.utcoffset()
            zone = offset.total_seconds() if offset is not None else 0.0
        # RedBeat never writes fold; beatspec writers do for the second pass of a repeated wall
        # time (SCHED-2), since only the zone name is stored.
        fold = 1 if value.fold == 1 and isinstance(tz, ZoneInfo) and _ambiguous(value) else None
        return cls(
            value.year, value.month, value.day, value.hour, value.minute, value.second,
            value.microsecond, zone, fold,
        )


def _ambiguous(value: _dt.datetime) -> bool:
    return value.replace(fold=0).utcoffset() != value.replace(fold=1).utcoffset()


@dataclass(frozen=True, slots=True)
class Interval:
    """Run every ``every`` seconds; ``relative`` rounds to the interval's unit (spec §5, INT)."""

    TAG: ClassVar[str] = "interval"

    every: int | float
    relative: bool


CronField: TypeAlias = str | int | tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Crontab:
    """Celery crontab fields, kept in the form they were written (spec §5, CRON)."""

    TAG: ClassVar[str] = "crontab"
    FIELDS: ClassVar[tuple[str, ...]] = (
        "minute", "hour", "day_of_week", "day_of_month", "month_of_year",
    )

    minute: CronField = "*"
    hour: CronField = "*"
    day_of_week: CronField = "*"
    day_of_month: CronField = "*"
    month_of_year: CronField = "*"


@dataclass(frozen=True, slots=True)
class Weekday:
    """A dateutil weekday, 0 = Monday; ``n`` selects an occurrence (spec §5, WDAY-1)."""

    TAG: ClassVar[str] = "weekday"

    wkday: int
    n: int | None = None
    has_n: bool = field(default=False, compare=False)


RRuleValue: TypeAlias = int | Weekday | tuple[int | Weekday, ...] | None
RRULE_BY: tuple[str, ...] = (
    "bysetpos", "bymonth", "bymonthday", "byyearday", "byeaster", "byweekno", "byweekday",
    "byhour", "byminute", "bysecond",
)


@dataclass(frozen=True, slots=True)
class RRule:
    """An RFC 5545 recurrence as RedBeat encodes dateutil's rrule (spec §5, RRULE)."""

    TAG: ClassVar[str] = "rrule"

    freq: int | str
    dtstart: int
    dtstart_tz: int | float = 0
    interval: int = 1
    wkst: int | Weekday | None = None
    count: int | None = None
    until: int | None = None
    until_tz: int | float = 0
    bysetpos: RRuleValue = None
    bymonth: RRuleValue = None
    bymonthday: RRuleValue = None
    byyearday: RRuleValue = None
    byeaster: RRuleValue = None
    byweekno: RRuleValue = None
    byweekday: RRuleValue = None
    byhour: RRuleValue = None
    byminute: RRuleValue = None
    bysecond: RRuleValue = None

    FREQ_NAMES: ClassVar[tuple[str, ...]] = (
        "YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY",
    )

    @property
    def frequency(self) -> int:
        """``freq`` as dateutil's integer, whichever way it was written."""
        if isinstance(self.freq, str):
            return self.FREQ_NAMES.index(self.freq.upper())
        return self.freq


@dataclass(frozen=True, slots=True)
class Solar:
    """Celery's solar schedule; extended profile only (spec §5, SOLAR)."""

    TAG: ClassVar[str] = "solar"
    EVENTS: ClassVar[tuple[str, ...]] = (
        "dawn_astronomical", "dawn_nautical", "dawn_civil", "sunrise", "solar_noon", "sunset",
        "dusk_civil", "dusk_nautical", "dusk_astronomical",
    )

    event: str
    lat: int | float
    lon: int | float


Schedule: TypeAlias = Interval | Crontab | RRule | Solar


@dataclass(frozen=True, slots=True)
class Definition:
    """The ``definition`` field of an entry (spec §6).

    ``args``, ``kwargs`` and ``options`` are JSON values as written (objects inside them keep
    their member order); treat them as read-only. ``bare_schedule`` is true when the schedule
    was a legacy bare number (DEF-6); ``relative`` is the legacy member (DEF-11), ``None`` if
    absent.
    """

    name: str
    task: str
    schedule: Schedule
    args: tuple[Json, ...] | None = None
    kwargs: Mapping[str, Json] | None = field(default_factory=lambda: _EMPTY)
    options: Mapping[str, Json] | None = field(default_factory=lambda: _EMPTY)
    enabled: bool = True
    relative: bool | None = None
    bare_schedule: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class Meta:
    """The ``meta`` field: ``last_run_at`` ``None`` means never run (spec §7)."""

    last_run_at: DateTime | None
    total_run_count: int | None = None


@dataclass(frozen=True, slots=True)
class Misfire:
    """What to do when an entry is found late (spec §9, EXT-3)."""

    policy: Literal["run_once", "skip", "run_all"] = "run_once"
    grace: float = 60.0
    max_catchup: int = 10


@dataclass(frozen=True, slots=True)
class Extensions:
    """The beatspec ``extensions`` hash field, which RedBeat never reads (spec §9)."""

    timezone: str | None = None
    misfire: Misfire | None = None
    jitter: float | None = None
    delete_after_last_run: bool | None = None
    vendor: Mapping[str, Json] = field(default_factory=lambda: _EMPTY)


@dataclass(frozen=True, slots=True)
class Entry:
    """One schedule entry: the decoded fields of its hash."""

    definition: Definition
    meta: Meta | None
    extensions: Extensions | None = None
