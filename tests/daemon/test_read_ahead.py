"""Read-ahead: entries read and decoded before they fall due (scheduler ``_read_ahead``).

The leader reads the members scored at the next due time while it waits for it, so that at the
due time only deciding, committing and publishing are left. What it read may change before
then; the commit's compare-and-set (RUN-4) refuses a write based on a stale read, and the entry
is read again at once. These tests drive one in-process scheduler with a clock of their own.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from beatspec.daemon.scheduler import Scheduler
from beatspec.testing import Namespace

sys.path.insert(0, str(Path(__file__).parent))

import e2e_support as e2e  # noqa: E402
from daemon_kit import interval, messages, run_count, wait_until, write_entry  # noqa: E402

EVERY = 60.0


Clock = e2e.Clock


@pytest.fixture
def due_at() -> float:
    """A whole second a minute from now: the entries' due time."""
    return float(math.floor(time.time()) + 60)


@pytest.fixture
def setup(redis_ns: Namespace, broker_ns: Namespace, due_at: float
          ) -> Iterator[tuple[Scheduler, Clock, redis.Redis, redis.Redis, list[int]]]:
    clock = Clock(due_at - 0.5)
    scheduler = e2e.make_scheduler(redis_ns.url, redis_ns.prefix, broker_ns.url, clock=clock)
    loads: list[int] = []
    load_begin = scheduler.store.load_begin

    def counted(keys: Any) -> Any:
        loads.append(len(keys))
        return load_begin(keys)

    scheduler.store.load_begin = counted  # type: ignore[method-assign]
    client = redis_ns.client()
    broker = redis.Redis.from_url(broker_ns.url)
    try:
        yield scheduler, clock, client, broker, loads
    finally:
        scheduler.release()
        e2e.close_scheduler(scheduler)
        broker.close()


def _write(client: redis.Redis, prefix: str, name: str, due_at: float, **kw: Any) -> str:
    last = datetime.fromtimestamp(due_at - EVERY, UTC)
    return write_entry(client, prefix, name, schedule=interval(EVERY), last_run_at=last,
                       score=due_at, **kw)


def test_entries_read_ahead_fire_without_being_read_again(setup: Any, redis_ns: Namespace,
                                                          due_at: float) -> None:
    scheduler, clock, client, broker, loads = setup
    keys = [_write(client, redis_ns.prefix, f"e{i}", due_at, task=f"t.e{i}") for i in range(30)]
    assert scheduler.campaign()
    wait = scheduler.tick(read_ahead=True)
    assert 0 < wait <= 0.5
    assert set(scheduler._ahead) == set(keys) and loads == [30]
    clock.now = due_at + 0.01
    scheduler.tick(read_ahead=True)
    assert loads == [30], "nothing is loaded again at the due time"
    assert sorted(m.task for m in messages(broker)) == sorted(f"t.e{i}" for i in range(30))
    assert all(run_count(client, key) == 1 for key in keys)


def test_a_change_after_the_read_is_not_fired_from_the_stale_read(
        setup: Any, redis_ns: Namespace, due_at: float) -> None:
    scheduler, clock, client, broker, _loads = setup
    changed = _write(client, redis_ns.prefix, "changed", due_at, task="t.old")
    moved = _write(client, redis_ns.prefix, "moved", due_at, task="t.moved")
    kept = _write(client, redis_ns.prefix, "kept", due_at, task="t.kept")
    assert scheduler.campaign()
    scheduler.tick(read_ahead=True)
    assert set(scheduler._ahead) == {changed, moved, kept}
    # a writer updates one definition (keeping its score) and moves another entry an hour on
    _write(client, redis_ns.prefix, "changed", due_at, task="t.new")
    client.zadd(redis_ns.prefix + ":schedule", {moved: due_at + 3600})
    clock.now = due_at + 0.01
    wait = scheduler.tick(read_ahead=True)
    assert wait == 0.0, "a refused write is looked at again at once"
    assert [m.task for m in messages(broker)] == ["t.kept"]
    scheduler.tick(read_ahead=True)
    assert sorted(m.task for m in messages(broker)) == ["t.kept", "t.new"]
    assert run_count(client, changed) == 1 and run_count(client, moved) == 0
    assert scheduler.metrics.conflicts._value.get() == 1


def test_nothing_is_read_ahead_for_a_due_time_beyond_the_next_wake_up(
        setup: Any, redis_ns: Namespace, due_at: float) -> None:
    scheduler, clock, client, _broker, loads = setup
    _write(client, redis_ns.prefix, "later", due_at)
    clock.now = due_at - 30
    assert scheduler.campaign()
    assert scheduler.tick(read_ahead=True) == scheduler.config.max_interval
    assert scheduler._ahead == {} and loads == []


def test_entries_due_later_in_the_second_are_read_once(setup: Any, redis_ns: Namespace,
                                                       due_at: float) -> None:
    """Sub-second due times: the score is the second; each wake-up inside it decides again
    on the entries read at the first one."""
    scheduler, clock, client, broker, loads = setup
    for i in range(5):  # due at due_at + 0.1, + 0.2, ...
        last = datetime.fromtimestamp(due_at - EVERY, UTC) + timedelta(seconds=0.1 * (i + 1))
        write_entry(client, redis_ns.prefix, f"s{i}", schedule=interval(EVERY),
                    last_run_at=last, score=due_at, task=f"t.s{i}")
    clock.now = due_at + 0.05
    assert scheduler.campaign()
    for step in range(1, 6):
        wait = scheduler.tick(read_ahead=True)
        assert len(messages(broker)) == step - 1
        assert wait == pytest.approx(due_at + 0.1 * step - clock.now, abs=0.01)
        clock.now = due_at + 0.1 * step + 0.001
    scheduler.tick(read_ahead=True)
    assert sorted(m.task for m in messages(broker)) == [f"t.s{i}" for i in range(5)]
    assert loads == [5]


def test_garbage_is_collected_between_ticks_not_during_them(
        redis_ns: Namespace, broker_ns: Namespace, monkeypatch: pytest.MonkeyPatch) -> None:
    """``run()`` switches the automatic collector off (a full collection in the middle of a
    tick would delay its runs by tens of milliseconds), collects when it is about to sleep,
    and switches it back on when it returns."""
    import gc
    import threading

    from beatspec.daemon import scheduler as module

    calls: list[bool] = []
    collect = module._collect_garbage

    def noted() -> None:
        calls.append(gc.isenabled())
        collect()

    monkeypatch.setattr(module, "_collect_garbage", noted)
    scheduler = e2e.make_scheduler(redis_ns.url, redis_ns.prefix, broker_ns.url,
                                   max_interval=0.2)
    thread = threading.Thread(target=scheduler.run, daemon=True)
    gc.enable()  # whatever an earlier test left behind
    thread.start()
    try:
        wait_until(lambda: len(calls) >= 3, 10, what="collections between ticks")
        assert not gc.isenabled() and not any(calls)
    finally:
        scheduler.stopping.set()
        thread.join(10)
        e2e.close_scheduler(scheduler)
    assert gc.isenabled()


def test_a_collection_follows_the_collectors_own_thresholds() -> None:
    """What the loop runs is what the automatic collector would: cyclic garbage in the
    youngest generation is gone once its allocation count passes the threshold."""
    import gc
    import weakref

    from beatspec.daemon.scheduler import _collect_garbage

    class Node:
        def __init__(self) -> None:
            self.me = self

    gc.disable()
    try:
        gc.collect()
        node = Node()
        gone = weakref.ref(node)
        del node
        _collect_garbage()  # below the threshold: nothing to do yet
        assert gone() is not None or gc.get_count()[0] == 0
        keep = [[] for _ in range(gc.get_threshold()[0] + 1)]  # tracked, so counted
        _collect_garbage()
        assert gone() is None and keep
    finally:
        gc.enable()
