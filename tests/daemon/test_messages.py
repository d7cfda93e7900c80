"""The Redis lane writes exactly what kombu's ``Producer.publish`` writes (daemon/messages.py).

Each case builds one message with :func:`build_message`, publishes it once through kombu 5.7
(``Publisher(direct=False)``) and once through the lane, and compares the two list entries on
the broker byte for byte. Only ``delivery_tag`` differs (kombu draws a fresh UUID per message);
the comparison puts kombu's tag into the lane's text, nothing else.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import redis

from beatspec.codec import decode_definition
from beatspec.daemon.messages import Publisher, TaskMessage, build_message, uuid4_text
from beatspec.testing import Namespace

NOW = datetime(2026, 11, 22, 9, 30, 15, 250_000, tzinfo=UTC)
TASK_ID = "6f1f3b4e-0d7a-4c55-9a43-2b1f6f0c9e11"
DT = {"__type__": "datetime", "year": 2026, "month": 3, "day": 29, "hour": 1, "minute": 30,
      "second": 0, "microsecond": 5, "timezone": "Europe/Berlin"}

#: option/args cases the lane takes (anonymous exchange, JSON, usual properties)
LANE_CASES: dict[str, dict[str, Any]] = {
    "no-options": {},
    "queue": {"options": {"queue": "reports"}},
    "priority-7": {"options": {"queue": "reports", "priority": 7}},
    "priority-2": {"options": {"priority": 2}},
    "priority-above-9": {"options": {"priority": 12}},
    "expires": {"options": {"expires": 120}},
    "expires-float": {"options": {"expires": 45.5}},
    "expires-datetime": {"options": {"expires": DT}},
    "headers": {"options": {"headers": {"x-trace": "abc", "x-n": 3, "x-list": [1, None],
                                        "x-when": DT}}},
    "countdown": {"options": {"countdown": 30}},
    "time-limits": {"options": {"time_limit": 60, "soft_time_limit": 30}},
    "routing-key-only": {"options": {"routing_key": "ignored-without-exchange"}},
    "everything": {"options": {"queue": "q", "priority": 3, "expires": 90, "countdown": 5,
                               "headers": {"x-trace": "t"}, "time_limit": 9,
                               "soft_time_limit": 8, "shadow": "alias"}},
    "args-kwargs": {"args": [1, "two", 3.5, None, True, [DT], {"k": DT}],
                    "kwargs": {"a": {"b": [1, 2]}, "when": DT, "text": "é\u2028\"'\\"}},
    "unicode-task": {"task": "tâches.envoyer_rapport"},
    "long-args": {"args": ["x" * 3000]},
}

#: cases the lane leaves to kombu (named exchange; a property it does not lay out)
KOMBU_CASES: dict[str, dict[str, Any]] = {
    "exchange-routing-key": {"options": {"exchange": "ex", "routing_key": "rk"}},
    "unknown-option": {"options": {"x-custom": "value"}},
    "compression": {"options": {"compression": "zlib"}},
}


def _message(case: dict[str, Any], task_id: str = TASK_ID) -> TaskMessage:
    raw = json.dumps({"name": "e", "task": case.get("task", "tests.tick"),
                      "args": case.get("args", []), "kwargs": case.get("kwargs", {}),
                      "options": case.get("options", {}),
                      "schedule": {"__type__": "interval", "every": 60.0, "relative": False},
                      "enabled": True})
    decoded = decode_definition(raw, name="e")
    assert decoded.value is not None, decoded.report
    return build_message(decoded.value, now=NOW, app_zone=ZoneInfo("Europe/Berlin"),
                         origin="gen42@host", reply_to="0b1c2d3e-reply", task_id=task_id)


@pytest.fixture
def broker_client(broker_ns: Namespace) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(broker_ns.url)
    yield client
    client.close()


def _pushed(client: redis.Redis, before: set[bytes]) -> dict[bytes, list[bytes]]:
    """The lists that appeared since ``before`` and what they hold."""
    return {key: client.lrange(key, 0, -1) for key in set(client.keys("*")) - before
            if client.type(key) == b"list"}


def _publish(url: str, message: TaskMessage, *, direct: bool) -> Publisher:
    publisher = Publisher(url, direct=direct)
    publisher.publish(message)
    publisher.close()
    return publisher


@pytest.mark.parametrize("warm", [False, True], ids=["encoded", "from-template"])
@pytest.mark.parametrize("case", list(LANE_CASES))
def test_lane_entry_equals_kombus_byte_for_byte(case: str, warm: bool, broker_ns: Namespace,
                                                broker_client: redis.Redis) -> None:
    """Encoded in full, or filled into the template of the message's shape, made from the
    message of another entry with other args and kwargs (only for plans without times counted
    from the send)."""
    message = _message(LANE_CASES[case])
    before = set(broker_client.keys("*"))
    _publish(broker_ns.url, message, direct=False)
    by_kombu = _pushed(broker_client, before)
    broker_client.flushdb()

    publisher = Publisher(broker_ns.url)
    publisher._get_producer()
    lane = publisher._lane
    assert message.plan is not None and lane is not None and lane.accepts(message)
    lane.templates = warm
    if warm:  # the template comes from another entry's message of the same shape
        other = _message({**LANE_CASES[case], "args": ["other", {"n": 2}],
                          "kwargs": {"x": "é"}}, task_id=uuid4_text())
        assert other.plan is not None and other.plan.shape.key == message.plan.shape.key
        lane.command(other)
    templated = any(t is not None for t in lane._templates.values())
    assert templated == (warm and message.plan.timeless)
    publisher.publish(message)
    publisher.close()
    by_lane = _pushed(broker_client, set())

    assert by_kombu.keys() - {b"_kombu.binding.reports", b"_kombu.binding.q"} == \
        by_lane.keys() - {b"_kombu.binding.reports", b"_kombu.binding.q"}
    (key, [kombu_raw]), = ((k, v) for k, v in by_kombu.items() if not k.startswith(b"_kombu"))
    [lane_raw] = by_lane[key]
    kombu_tag = json.loads(kombu_raw)["properties"]["delivery_tag"]
    lane_tag = json.loads(lane_raw)["properties"]["delivery_tag"]
    assert lane_tag != kombu_tag
    assert lane_raw.replace(lane_tag.encode(), kombu_tag.encode()) == kombu_raw


def test_priority_queues_are_named_as_kombu_names_them(broker_ns: Namespace,
                                                       broker_client: redis.Redis) -> None:
    """kombu's Redis priority steps 0/3/6/9: priority 7 goes to ``queue\\x06\\x166``."""
    publisher = Publisher(broker_ns.url)
    for priority in (0, 2, 3, 7, 9):
        publisher.publish(_message({"options": {"queue": "p", "priority": priority}}))
    publisher.close()
    assert broker_client.llen("p") == 2
    assert broker_client.llen("p\x06\x163") == 1
    assert broker_client.llen("p\x06\x166") == 1
    assert broker_client.llen("p\x06\x169") == 1


def test_the_lane_declares_the_queue_as_kombu_does(broker_ns: Namespace,
                                                   broker_client: redis.Redis) -> None:
    _publish(broker_ns.url, _message({"options": {"queue": "reports"}}), direct=False)
    kombu_binding = broker_client.smembers("_kombu.binding.reports")
    broker_client.flushdb()
    _publish(broker_ns.url, _message({"options": {"queue": "reports"}}), direct=True)
    assert broker_client.smembers("_kombu.binding.reports") == kombu_binding != set()


@pytest.mark.parametrize("case", list(KOMBU_CASES))
def test_other_messages_go_through_kombu(case: str, broker_ns: Namespace,
                                         broker_client: redis.Redis) -> None:
    message = _message(KOMBU_CASES[case])
    publisher = Publisher(broker_ns.url)
    publisher._get_producer()
    assert publisher._lane is not None and not publisher._lane.accepts(message)
    # in a batch beside messages the lane takes, every message still lands
    usual = _message({}, task_id="0c5ad7a4-3f2e-4a8e-8f0e-111111111111")
    assert publisher.publish_many([usual, message]) == [None, None]
    publisher.close()
    assert broker_client.llen("celery") >= 1


def test_a_global_key_prefix_leaves_publishing_to_kombu(broker_ns: Namespace,
                                                        broker_client: redis.Redis) -> None:
    publisher = Publisher(broker_ns.url, transport_options={"global_keyprefix": "pfx:"})
    publisher.publish(_message({}))
    assert publisher._lane is None
    publisher.close()
    assert broker_client.llen("pfx:celery") == 1


def test_a_batch_is_one_push_and_can_be_withheld(broker_ns: Namespace,
                                                 broker_client: redis.Redis) -> None:
    publisher = Publisher(broker_ns.url)
    messages = [_message({"args": [i]}, task_id=f"00000000-0000-4000-8000-{i:012d}")
                for i in range(50)]
    assert publisher.batching
    assert publisher.publish_many(messages, allowed=lambda: False) is None
    assert broker_client.llen("celery") == 0
    assert publisher.publish_many(messages) == [None] * 50
    publisher.close()
    bodies = [json.loads(raw) for raw in broker_client.lrange("celery", 0, -1)]
    assert sorted(b["headers"]["id"] for b in bodies) == sorted(m.task_id for m in messages)


def test_a_value_json_cannot_carry_fails_that_message_only(broker_ns: Namespace,
                                                           broker_client: redis.Redis) -> None:
    """A message kombu's encoder refuses is reported and left out; the rest of the batch
    lands (as in kombu's own batch)."""
    good = _message({})
    bad = TaskMessage(task_id="x", body=([object()], {}, {}), headers={}, queue="celery",
                      exchange="", routing_key="celery")
    publisher = Publisher(broker_ns.url)
    errors = publisher.publish_many([good, bad])
    publisher.close()
    assert errors is not None and errors[0] is None and "not JSON serializable" in str(errors[1])
    assert broker_client.llen("celery") == 1


def test_uuid4_text_is_a_random_uuid4() -> None:
    texts = [uuid4_text() for _ in range(2000)]
    assert len(set(texts)) == len(texts)
    for text in texts:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
