"""A tick works through a due range of many pages (scheduler ``tick``).

Due members are listed a page (four batches) at a time, and each page after the first is listed
and loaded while the one before it is handled, before that page's commits move its members out
of the range. These tests use tiny batches so that a few dozen entries span many pages, with
members that stay in the range (invalid ones backed off into it, entries due later in the same
second, members outside the prefix) among them: every valid entry fires exactly once.
"""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from beatspec.daemon.scheduler import Scheduler
from beatspec.testing import Namespace

sys.path.insert(0, str(Path(__file__).parent))

import e2e_support as e2e  # noqa: E402
from daemon_kit import interval, messages, run_count, write_entry  # noqa: E402

EVERY = 60.0


Clock = e2e.Clock


@pytest.fixture
def second() -> int:
    """The whole second the ticks run in."""
    return math.floor(time.time())


@pytest.fixture
def setup(redis_ns: Namespace, broker_ns: Namespace, second: int
          ) -> Iterator[tuple[Scheduler, Clock, redis.Redis, redis.Redis]]:
    clock = Clock(second + 0.1)
    scheduler = e2e.make_scheduler(redis_ns.url, redis_ns.prefix, broker_ns.url, clock=clock,
                                   batch=3)  # pages of 12
    client = redis_ns.client()
    broker = redis.Redis.from_url(broker_ns.url)
    try:
        yield scheduler, clock, client, broker
    finally:
        scheduler.release()
        e2e.close_scheduler(scheduler)
        broker.close()
        client.close()


def _due(client: redis.Redis, prefix: str, name: str, at: float, **kw: Any) -> str:
    """An entry due at ``at`` (epoch seconds), scored at that second."""
    last = datetime.fromtimestamp(at - EVERY, UTC)
    return write_entry(client, prefix, name, task=f"t.{name}", schedule=interval(EVERY),
                       last_run_at=last, score=math.floor(at), **kw)


def test_every_due_entry_of_many_pages_fires_once(setup: Any, redis_ns: Namespace,
                                                  second: int) -> None:
    scheduler, clock, client, broker = setup
    prefix = redis_ns.prefix
    schedule = prefix + ":schedule"
    valid = [_due(client, prefix, f"v{i:02d}", second - 1 - i % 7) for i in range(40)]
    later = [_due(client, prefix, f"later{i}", second + 0.5) for i in range(3)]
    invalid = []
    for i in range(5):
        key = f"{prefix}bad{i}"
        client.hset(key, mapping={"definition": "{", "meta": "{}"})
        client.zadd(schedule, {key: second - 3})
        invalid.append(key)
    client.zadd(schedule, {"elsewhere:a": second - 2, "elsewhere:b": second - 5})
    assert client.zcard(schedule) == 50  # more than four pages of 12

    assert scheduler.campaign()
    wait = scheduler.tick()
    sent = Counter(m.task for m in messages(broker))
    assert sent == Counter(f"t.v{i:02d}" for i in range(40)), "each valid entry fired once"
    assert all(run_count(client, key) == 1 for key in valid)
    # the entries due later in this second wait for it; the rest left the due range
    assert 0 < wait <= 0.4 + 1e-6
    assert {m.decode() for m in client.zrangebyscore(schedule, 0, second)} == set(later)
    assert all(client.hexists(prefix + ":invalid", key) for key in invalid)

    clock.now = second + 0.6
    scheduler.tick()
    sent = Counter(m.task for m in messages(broker))
    assert sent == Counter([*(f"t.v{i:02d}" for i in range(40)),
                            *(f"t.later{i}" for i in range(3))])
    assert all(run_count(client, key) == 1 for key in later)
