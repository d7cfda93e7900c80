"""The scheduler's view of the due index (keyspace/scheduling.py ``ScheduleStore``).

A tick lists thousands of members; the store reads the replies with hiredis itself. These tests
show it lists the same members and scores as redis-py does, over RESP2 and RESP3 alike.
"""

from __future__ import annotations

import pytest
import redis

from beatspec.keyspace import Layout
from beatspec.keyspace.scheduling import DueMember, ScheduleStore
from beatspec.testing import Namespace

SCORES = {"a": 5, "b": 10, "c": 10, "d": 11, "é": 12, "f": 30, "x": -1}


@pytest.mark.parametrize("protocol", [2, 3])
def test_due_and_between_list_what_zrangebyscore_lists(protocol: int, redis_ns: Namespace
                                                       ) -> None:
    client = redis.Redis.from_url(redis_ns.url, protocol=protocol)
    layout = Layout(redis_ns.prefix)
    client.zadd(layout.schedule_key, {redis_ns.prefix + name: s for name, s in SCORES.items()})
    store = ScheduleStore(client, layout)

    def expected(low: float | str, high: float, offset: int, count: int) -> list[DueMember]:
        rows = client.zrangebyscore(layout.schedule_key, low, high, start=offset, num=count,
                                    withscores=True)
        return [DueMember(m.decode(), float(s)) for m, s in rows]

    assert store.due(11, offset=0, count=10) == expected(0, 11, 0, 10)
    assert [m.key for m in store.due(11, offset=1, count=2)] == [
        redis_ns.prefix + "b", redis_ns.prefix + "c"]
    assert store.between(10, 12.0, offset=0, count=10) == expected("(10", 12.0, 0, 10)
    assert store.between(10, 12.0, offset=0, count=10)[-1] == DueMember(
        redis_ns.prefix + "é", 12.0)
    assert store.due(4, offset=0, count=10) == []
    client.close()
