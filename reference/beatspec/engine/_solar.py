"""Solar next-run computation (extended profile), Celery 5.7's algorithm; needs ``ephem``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from beatspec.codec.types import Solar

__all__ = ["solar_next"]

# event -> (ephem method, horizon, use the sun's centre) as in celery.schedules.solar
_EVENTS: dict[str, tuple[str, str, bool]] = {
    "dawn_astronomical": ("next_rising", "-18", True),
    "dawn_nautical": ("next_rising", "-12", True),
    "dawn_civil": ("next_rising", "-6", True),
    "sunrise": ("next_rising", "-0:34", False),
    "solar_noon": ("next_transit", "0", False),
    "sunset": ("next_setting", "-0:34", False),
    "dusk_civil": ("next_setting", "-6", True),
    "dusk_nautical": ("next_setting", "-12", True),
    "dusk_astronomical": ("next_setting", "-18", True),
}
_MAX_SEARCH_DAYS = 366


def solar_next(schedule: Solar, last_run_at: datetime) -> datetime | None:
    """The first solar event strictly after ``last_run_at``, in UTC."""
    try:
        import ephem
    except ImportError as exc:  # pragma: no cover - depends on the extra
        from beatspec.engine import UnsupportedSchedule

        raise UnsupportedSchedule("solar schedules need ephem: pip install 'beatspec[solar]'") \
            from exc
    method, horizon, use_center = _EVENTS[schedule.event]
    observer: Any = ephem.Observer()
    observer.lat = str(schedule.lat)
    observer.lon = str(schedule.lon)
    observer.elev = 0
    observer.horizon = horizon
    observer.pressure = 0
    # ephem >= 4.1.1 converts an aware datetime to UTC itself; converting first keeps the
    # result right with older ephem too (which read the local wall clock as UTC).
    start: Any = ephem.Date(last_run_at.astimezone(UTC).replace(tzinfo=None))
    observer.date = start
    sun: Any = ephem.Sun()
    kwargs = {"use_center": True} if use_center else {}
    for _ in range(_MAX_SEARCH_DAYS):
        try:
            found: Any = getattr(observer, method)(sun, start=start, **kwargs)
        except ephem.CircumpolarError:
            start = observer.next_antitransit(sun, start=start)
        else:
            return cast("datetime", found.datetime()).replace(tzinfo=UTC)
    return cast("datetime", start.datetime()).replace(tzinfo=UTC)
