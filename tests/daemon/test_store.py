"""The scheduler's view of the due index (keyspace/scheduling.py ``ScheduleStore``).

A tick lists thousands of members; the store reads the replies with hiredis itself. These tests
show it lists the same members and scores as redis-py does, over RESP2 and RESP3 alike.
"""

from __future__ import annotations

import pytest
import redis

from beatspec.keyspace import Layout
from beatspec.keyspace.scheduling import Change, DueMember, ScheduleStore
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


#: how a writer changes an entry between the scheduler's read and its commit (RUN-4)
WRITES = {
    "nothing": (lambda c, k: None, True),
    "another field": (lambda c, k: c.hset(k, "note", "x"), True),
    "meta": (lambda c, k: c.hset(k, "meta", '{"total_run_count": 9}'), False),
    "definition": (lambda c, k: c.hset(k, "definition", '{"name": "e"} '), False),
    "extensions added": (lambda c, k: c.hset(k, "extensions", ""), False),
    "meta removed": (lambda c, k: c.hdel(k, "meta"), False),
    "meta emptied": (lambda c, k: c.hset(k, "meta", ""), False),
    "deleted": (lambda c, k: c.delete(k), False),
    "not a hash": (lambda c, k: (c.delete(k), c.set(k, "x")), False),
}


@pytest.mark.parametrize("write", list(WRITES))
def test_a_commit_writes_only_an_entry_unchanged_since_it_was_read(write: str,
                                                                   redis_ns: Namespace) -> None:
    """RUN-4: the commit compares definition, meta and extensions (their presence and bytes)
    with what was read; any change to them refuses that entry's write, other fields do not."""
    client = redis_ns.client()
    layout = Layout(redis_ns.prefix)
    store = ScheduleStore(client, layout)
    key = layout.entry_key("e")
    client.hset(key, mapping={"definition": '{"name": "e"}', "meta": "{}"})
    client.zadd(layout.schedule_key, {key: 100})
    token = "t0ken"
    assert store.acquire(token, 10_000)
    [entry] = store.load([key])
    change, unchanged = WRITES[write]
    change(client, key)
    assert store.commit(token, [Change("M", entry, meta='{"total_run_count": 1}',
                                       score=200)]) == [unchanged]
    written = client.hget(key, "meta") == b'{"total_run_count": 1}' if client.type(key) == \
        b"hash" else False
    assert written == unchanged
    assert (client.zscore(layout.schedule_key, key) == 200) == unchanged
    assert store.commit("other", [Change("M", entry, meta="{}", score=300)]) is None
    client.close()
