"""Which time zone names count as IANA zone names (DT-3, EXT-2)."""

from __future__ import annotations

import re
import zoneinfo
from functools import lru_cache
from typing import Final

__all__ = ["ZONE_NAME", "is_known_zone"]

#: The shape of a tz database name (also the schemas' pattern).
ZONE_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9][A-Za-z0-9_+-]*)*")


#: Files of a tz database directory that are not zone names (host-specific links, rules).
_NOT_ZONES: Final = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def _available() -> frozenset[str]:
    return (frozenset(zoneinfo.available_timezones()) | {"UTC"}) - _NOT_ZONES


@lru_cache(maxsize=4096)
def is_known_zone(name: str) -> bool:
    """True for a name in the tz database this host has, such as ``Europe/Berlin``."""
    if not ZONE_NAME.fullmatch(name):
        return False
    if name in _available():
        return True
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return False
    # Loadable but not listed (e.g. 'posixrules', 'localtime'): not an IANA zone name.
    return False
