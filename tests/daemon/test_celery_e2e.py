"""beatspec run against real Celery: a 5.7 worker executes what the daemon sends, and the message
for an entry is the one ``celery beat -S redbeat.RedBeatScheduler`` sends for it.

Broker keys never touch the schedule's Redis (which may be a shared ``REDIS_URL`` server): the
Redis broker and the tasks' result list live on a throwaway server started for this module.
RabbitMQ is used only where it answers on loopback; its queues are unique per test and deleted.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import kombu
import pytest
import redis
from celery.schedules import schedule as celery_interval
from redbeat import RedBeatSchedulerEntry

from beatspec.testing import Namespace, RedisServer, start_redis_server

sys.path.insert(0, str(Path(__file__).parent))

import e2e_support as e2e  # noqa: E402
from celery_app import RECORD_TASK  # noqa: E402

EXPIRES = 60  # options.expires of the every-second entry: its runs' send times are expires - 60
NOT_REGISTERED = "e2e.not_registered"  # beat does not know the task: it uses send_task


@pytest.fixture(scope="module")
def aux() -> Iterator[RedisServer]:
    """A throwaway Redis for the broker (db 0, db 3) and the recorded runs (db 1)."""
    server = start_redis_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[e2e.Processes]:
    processes = e2e.Processes(tmp_path)
    try:
        yield processes
    finally:
        processes.close()


@dataclass
class Broker:
    kind: str
    url: str
    client: redis.Redis | None  # the Redis broker's keys; None for RabbitMQ
    queues: list[str] = field(default_factory=list)  # declared by the test, deleted afterwards

    def queue(self, name: str) -> str:
        self.queues.append(name)
        return name


@pytest.fixture(params=["redis", "amqp"])
def task_broker(request: pytest.FixtureRequest, aux: RedisServer) -> Iterator[Broker]:
    """A Redis broker on the throwaway server, or the local RabbitMQ (skipped if absent)."""
    if request.param == "redis":
        client = redis.Redis.from_url(aux.url + "/0")
        try:
            yield Broker("redis", aux.url + "/0", client)
        finally:
            client.flushdb()
            client.close()
        return
    reason = e2e.amqp_unavailable()
    if reason:
        pytest.skip(reason)
    found = Broker("amqp", e2e.AMQP_URL, None)
    try:
        yield found
    finally:
        e2e.delete_amqp(found.url, found.queues, exchanges=found.queues)


# ------------------------------------------------------------------------------ worker e2e


def _runs(results: redis.Redis, key: str) -> list[dict[str, Any]]:
    return [json.loads(item) for item in results.lrange(key, 0, -1)]


def test_worker_executes_every_entry_once_per_due_slot(
    task_broker: Broker, aux: RedisServer, redis_ns: Namespace, procs: e2e.Processes,
) -> None:
    """A Celery 5.7 worker executes what ``beatspec run`` publishes, with a Redis broker and with
    RabbitMQ: an every-second interval, a ``*`` crontab, an entry with queue/priority/expires/
    headers options and one with kwargs each run with their args and kwargs, their custom header
    and ``celery_beat_task: true`` in the request headers; on Redis the prioritized message sits
    in kombu's priority list ``queue\\x06\\x16<step>``; every run the daemon committed (meta's
    total_run_count) is executed exactly once, and no two runs of the every-second entry belong
    to one due slot."""
    token = redis_ns.token
    main_q = task_broker.queue(f"beatspec-e2e-{token}")
    opt_q = task_broker.queue(f"beatspec-e2e-{token}-opt")
    client = redis_ns.client()
    prefix = redis_ns.prefix
    keys = {
        "every": e2e.write_entry(client, prefix, "every", RECORD_TASK, e2e.interval(1),
                                 args=["every", 1],
                                 options={"queue": main_q, "expires": EXPIRES}),
        "cron": e2e.write_entry(client, prefix, "cron", RECORD_TASK, e2e.crontab(),
                                args=["cron"], options={"queue": main_q}),
        "opts": e2e.write_entry(client, prefix, "opts", RECORD_TASK, e2e.interval(3600),
                                args=["opts", [1, 2]],
                                options={"queue": opt_q, "priority": 5, "expires": 300,
                                         "headers": {"x-e2e": token}}),
        "kwargs": e2e.write_entry(client, prefix, "kwargs", RECORD_TASK, e2e.interval(3600),
                                  args=["kwargs"],
                                  kwargs={"a": 1, "b": [1, 2], "c": {"d": None}, "e": "é"},
                                  options={"queue": main_q}),
    }
    started = time.time()
    scheduler = e2e.make_scheduler(redis_ns.url, prefix, task_broker.url)
    try:
        # one pass before any worker runs: the messages wait in the broker, where we look
        assert scheduler.run_once()
        assert scheduler.fired == 4
        keys_of = task_broker.client
        if keys_of is not None:
            layout = {k.decode(): keys_of.llen(k) for k in keys_of.keys("beatspec-*")}
            assert layout == {main_q: 3, f"{opt_q}\x06\x163": 1}, layout
            [queued] = e2e.read_queue(keys_of, opt_q, pop=False)
            assert queued.properties["priority"] == 5
        results_key = f"runs-{token}"
        results = redis.Redis.from_url(aux.url + "/1")
        procs.worker(task_broker.url, [main_q, opt_q], results_url=aux.url + "/1",
                     results_key=results_key)
        with e2e.daemon_thread(scheduler):
            e2e.wait_for(lambda: e2e.run_count(client, keys["every"]) >= 5,
                         "five runs of the every-second entry", timeout=30)
        committed = {name: e2e.run_count(client, key) for name, key in keys.items()}
        total = sum(committed.values())
        e2e.wait_for(lambda: results.llen(results_key) >= total,
                     f"the worker to execute all {total} committed runs", timeout=30)
        time.sleep(0.5)  # anything executed twice would show up now
        runs = _runs(results, results_key)
    finally:
        e2e.close_scheduler(scheduler)
    ended = time.time()

    by_entry: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_entry[run["args"][0]].append(run)
    assert {name: len(found) for name, found in by_entry.items()} == committed
    assert len({run["id"] for run in runs}) == len(runs), "a task id was executed twice"
    for run in runs:
        request = run["request"]
        assert request["task"] == RECORD_TASK
        assert request["celery_beat_task"] is True
        assert request["headers"]["celery_beat_task"] is True
        assert request["id"] == request["root_id"] == request["correlation_id"]

    [opts] = by_entry["opts"]
    assert opts["args"] == ["opts", [1, 2]]
    assert opts["kwargs"] == {}
    assert opts["request"]["headers"]["x-e2e"] == token
    assert opts["delivery_info"]["routing_key"] == opt_q
    assert opts["delivery_info"]["priority"] == 5
    assert opts["request"]["expires"] is not None

    [kw] = by_entry["kwargs"]
    assert kw["args"] == ["kwargs"]
    assert kw["kwargs"] == {"a": 1, "b": [1, 2], "c": {"d": None}, "e": "é"}
    assert kw["delivery_info"]["routing_key"] == main_q

    assert all(run["args"] == ["every", 1] for run in by_entry["every"])
    sent = sorted(datetime.fromisoformat(run["request"]["expires"]).timestamp() - EXPIRES
                  for run in by_entry["every"])
    gaps = e2e.gaps(sent)
    assert min(gaps) > 0.75, f"two runs of one due slot: gaps {gaps}"

    minutes = int(ended // 60) - int(started // 60)  # minute boundaries crossed
    assert 1 <= len(by_entry["cron"]) <= 1 + minutes


# ------------------------------------------------------------------------------ message equality

OPTIONS: dict[str, dict[str, Any]] = {
    "no-options": {},
    "queue": {"queue": "{q}"},
    "priority": {"queue": "{q}", "priority": 7},
    "expires": {"queue": "{q}", "expires": 120},
    "expires-float": {"queue": "{q}", "expires": 45.5},
    "headers": {"queue": "{q}", "headers": {"x-trace": "abc", "x-n": 3, "x-list": [1, None]}},
    "countdown": {"queue": "{q}", "countdown": 30},
    "time-limits": {"queue": "{q}", "time_limit": 60, "soft_time_limit": 30},
    "exchange-routing-key": {"exchange": "{q}-ex", "routing_key": "{q}-rk"},
    "everything": {"queue": "{q}", "priority": 3, "expires": 90, "countdown": 5,
                   "headers": {"x-trace": "t"}, "time_limit": 9, "soft_time_limit": 8},
    # RedBeat decodes a tagged datetime anywhere in the definition; Celery sends it on
    "datetimes": {"queue": "{q}", "expires": datetime(2099, 1, 2, 3, 4, 5, tzinfo=UTC),
                  "headers": {"x-when": datetime(2030, 6, 1, 12, 0, tzinfo=UTC)}},
}
#: args of the entry per case (default: ``[1, "a", {"x": None}]``)
ARGS: dict[str, list[Any]] = {
    "datetimes": [datetime(2031, 3, 30, 1, 30, 0, 7, tzinfo=ZoneInfo("Europe/Berlin")),
                  {"nested": [datetime(2026, 1, 1, tzinfo=UTC)]}],
}

def _fill(value: Any, queue: str) -> Any:
    """``value`` with ``{q}`` replaced by the test's queue name."""
    if isinstance(value, str):
        return value.replace("{q}", queue)
    if isinstance(value, dict):
        return {k: _fill(v, queue) for k, v in value.items()}
    return value


@pytest.mark.parametrize("case", list(OPTIONS))
def test_message_equals_celery_beat_message(case: str, aux: RedisServer,
                                            redis_ns: Namespace) -> None:
    """For one RedBeat-saved entry, the raw envelope ``beatspec run`` publishes equals the one
    RedBeat's ``Scheduler.apply_async`` publishes (same list key, body bytes, headers and
    properties), except the task id (and root_id, correlation_id), reply_to, delivery_tag and
    origin, and eta/expires, which agree to within a second."""
    broker_url = aux.url + "/3"
    broker = redis.Redis.from_url(broker_url)
    queue = f"beatspec-eq-{redis_ns.token}"
    options = _fill(OPTIONS[case], queue)
    target = options.get("queue", "celery")
    if "exchange" in options:  # only a bound queue receives a message sent to an exchange
        target = f"{queue}-bound"
        with kombu.Connection(broker_url) as conn:
            kombu.Queue(target, kombu.Exchange(options["exchange"], "direct"),
                        routing_key=options["routing_key"])(conn.default_channel).declare()
    app = e2e.redbeat_app(redis_ns.url, redis_ns.prefix, broker_url)
    scheduler = e2e.make_scheduler(redis_ns.url, redis_ns.prefix, broker_url)
    try:
        entry = RedBeatSchedulerEntry(
            f"eq-{case}", NOT_REGISTERED, celery_interval(timedelta(hours=1)),
            args=ARGS.get(case, [1, "a", {"x": None}]), kwargs={"k": [1.5, "é"]},
            options=options, app=app)
        entry.last_run_at = datetime.now(UTC) - timedelta(hours=2)
        entry.save()
        client = redis_ns.client()
        meta = client.hget(entry.key, "meta")

        beat = e2e.redbeat_scheduler(app)
        with app.producer_or_acquire() as producer:
            beat.apply_async(RedBeatSchedulerEntry.from_key(entry.key, app=app),
                             producer=producer)
        [celery_message] = e2e.read_queue(broker, target)

        client.hset(entry.key, "meta", meta)  # the same entry, due again, for beatspec
        client.zadd(redis_ns.prefix + ":schedule", {entry.key: 0})
        assert scheduler.run_once()
        assert scheduler.fired == 1
        [beatspec_message] = e2e.read_queue(broker, target)
    finally:
        e2e.close_scheduler(scheduler)
        e2e.close_app(app)
        broker.flushdb()
        broker.close()
    e2e.assert_same_message(celery_message, beatspec_message)
