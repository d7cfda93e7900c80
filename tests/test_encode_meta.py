"""``encode_meta`` writes exactly what ``json.dumps`` writes for the meta's JSON form.

The usual meta (a zone name, a run count, no fold) is written from a template; this shows,
for any meta, that the text is byte for byte the generic ``json.dumps`` of
``{"last_run_at": <datetime>, "total_run_count": <n>}`` (tests/oracle/test_redbeat_writes.py
shows that form is what RedBeat 2.4.2 writes).
"""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from beatspec.codec import DateTime, Meta, encode_meta
from beatspec.codec.encode import datetime_to_json

ZONES = st.one_of(
    st.none(),
    st.sampled_from(["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5",
                     "Etc/GMT-14", "America/Port-au-Prince"]),
    st.floats(min_value=-86_399, max_value=86_399, allow_nan=False),
    st.text(max_size=12),  # anything else a reader may have kept: escaped by json.dumps
)
DATETIMES = st.builds(
    DateTime, year=st.integers(1, 9999), month=st.integers(1, 12), day=st.integers(1, 28),
    hour=st.integers(0, 23), minute=st.integers(0, 59), second=st.integers(0, 59),
    microsecond=st.integers(0, 999_999), timezone=ZONES,
    fold=st.one_of(st.none(), st.sampled_from([0, 1])))


def _generic(meta: Meta) -> str:
    out: dict[str, object] = {"last_run_at": None if meta.last_run_at is None
                              else datetime_to_json(meta.last_run_at)}
    if meta.total_run_count is not None:
        out["total_run_count"] = meta.total_run_count
    return json.dumps(out)


@given(st.builds(Meta, last_run_at=st.one_of(st.none(), DATETIMES),
                 total_run_count=st.one_of(st.none(), st.integers(0, 2**53))))
def test_encode_meta_is_json_dumps(meta: Meta) -> None:
    assert encode_meta(meta) == _generic(meta)


def test_the_usual_meta() -> None:
    meta = Meta(DateTime(2026, 11, 22, 9, 3, 4, 5, "Europe/Berlin"), 7)
    assert encode_meta(meta) == (
        '{"last_run_at": {"__type__": "datetime", "year": 2026, "month": 11, "day": 22, '
        '"hour": 9, "minute": 3, "second": 4, "microsecond": 5, "timezone": "Europe/Berlin"}, '
        '"total_run_count": 7}')
