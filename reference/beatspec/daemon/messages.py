"""Celery task messages (protocol 2) for a fired entry, published through kombu.

This follows what ``celery beat`` does for an entry (celery 5.7, celery-semantics §4.4 and §5):
``Scheduler.apply_async`` copies ``options``, adds the header ``celery_beat_task: true`` and calls
``app.send_task``; ``send_task`` routes to the ``queue`` option (else the default queue ``celery``),
turns ``expires``, ``countdown``/``eta``, ``time_limit``/``soft_time_limit`` and ``shadow`` into
headers, and ``send_task_message`` merges custom headers at the top level, publishes through the
anonymous exchange with the queue name as routing key unless both ``exchange`` and
``routing_key`` are given, and passes every other option to kombu as a message property.

A beat process that does not import the task module sends ``ignore_result: null`` and no task
class defaults; so does beatspec, which never imports tasks.
"""

from __future__ import annotations

import importlib
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from beatspec.codec import DateTime, Definition

__all__ = ["DEFAULT_QUEUE", "PublishFailed", "Publisher", "TaskMessage", "build_message"]

DEFAULT_QUEUE = "celery"
_REPR_MAX = 1024

# send_task_message's own keyword arguments; every other leftover option is a message property
_PUBLISH_ARGS = frozenset({
    "exchange", "routing_key", "queue", "serializer", "compression", "delivery_mode",
    "headers", "retry", "retry_policy", "exchange_type", "declare", "timeout", "confirm_timeout",
    "event_dispatcher",
})
# send_task's own keyword arguments, turned into headers or dropped
_HEADER_ARGS = frozenset({
    "expires", "countdown", "eta", "time_limit", "soft_time_limit", "shadow", "ignore_result",
    "add_to_parent", "result_cls", "route_name", "task_type",
})


class PublishFailed(RuntimeError):
    """The broker refused or could not be reached; the run is lost (at-most-once, §11.5)."""


class _NotAllowed(Exception):
    """Raised inside a publish batch to discard it unsent."""


@dataclass(frozen=True, slots=True)
class TaskMessage:
    """Everything kombu's ``Producer.publish`` is called with for one run."""

    task_id: str
    body: tuple[Any, Any, Any]
    headers: Mapping[str, Any]
    queue: str
    exchange: str
    routing_key: str
    serializer: str = "json"
    compression: str | None = None
    delivery_mode: int = 2
    properties: Mapping[str, Any] = field(default_factory=dict)


def _plain(value: Any) -> Any:
    """Tagged datetimes in options/args become datetimes, as RedBeat's decoder gives them."""
    if isinstance(value, DateTime):
        return value.to_datetime()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_MAX else text[: _REPR_MAX - 3] + "..."


def _when(value: Any, now: datetime) -> datetime:
    """A number of seconds after ``now``, or an absolute datetime."""
    if isinstance(value, datetime):
        return value
    return now + timedelta(seconds=float(value))


def build_message(definition: Definition, *, now: datetime, app_zone: tzinfo,
                  origin: str, reply_to: str, task_id: str | None = None,
                  default_queue: str = DEFAULT_QUEUE) -> TaskMessage:
    """The message ``celery beat`` would publish for ``definition`` at ``now``."""
    task_id = task_id or str(uuid.uuid4())
    now_app = now.astimezone(app_zone)
    options: dict[str, Any] = dict(_plain(dict(definition.options or {})))
    custom = dict(options.pop("headers", None) or {})
    custom["celery_beat_task"] = True
    args = list(_plain(list(definition.args or ())))
    kwargs = dict(_plain(dict(definition.kwargs or {})))
    expires = options.pop("expires", None)
    countdown = options.pop("countdown", None)
    eta = options.pop("eta", None)
    properties: dict[str, Any] = {}
    if expires is not None:
        at = _when(expires, now_app)
        properties["expiration"] = max((at - now_app).total_seconds(), 0.0)
        expires = at.isoformat()
    if countdown:
        eta = _when(countdown, now_app)
    headers: dict[str, Any] = {
        "lang": "py", "task": definition.task, "id": task_id,
        "shadow": options.pop("shadow", None),
        "eta": eta.isoformat() if isinstance(eta, datetime) else eta,
        "expires": expires, "group": None, "group_index": None, "retries": 0,
        "timelimit": [options.pop("time_limit", None), options.pop("soft_time_limit", None)],
        "root_id": task_id, "parent_id": None,
        "argsrepr": _repr(args), "kwargsrepr": _repr(kwargs),
        "origin": origin, "ignore_result": options.pop("ignore_result", None),
        "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {},
    }
    headers.update(custom)
    queue = str(options.pop("queue", None) or default_queue)
    exchange = options.pop("exchange", None)
    routing_key = options.pop("routing_key", None)
    if not exchange or not routing_key:
        exchange, routing_key = "", queue
    for name in _HEADER_ARGS:
        options.pop(name, None)
    publish = {k: options.pop(k) for k in list(options) if k in _PUBLISH_ARGS}
    properties.update(options)  # unknown options become message properties, as in Celery
    properties["correlation_id"] = task_id
    properties["reply_to"] = reply_to
    return TaskMessage(
        task_id=task_id,
        body=(args, kwargs, {"callbacks": None, "errbacks": None, "chain": None,
                             "chord": None}),
        headers=headers, queue=queue, exchange=str(exchange), routing_key=str(routing_key),
        serializer=str(publish.get("serializer") or "json"),
        compression=publish.get("compression"),
        delivery_mode=int(publish.get("delivery_mode") or 2),
        properties=properties,
    )


def default_origin() -> str:
    """Celery's ``anon_nodename()``: ``gen<pid>@<host>``."""
    return f"gen{os.getpid()}@{socket.gethostname()}"


class Publisher:
    """A kombu connection and producer; declares each queue once, like Celery's producer."""

    def __init__(self, broker_url: str, *, transport_options: Mapping[str, Any] | None = None,
                 retry_policy: Mapping[str, Any] | None = None) -> None:
        kombu: Any = importlib.import_module("kombu")
        oid_from: Any = importlib.import_module("kombu.common").oid_from
        self._kombu = kombu
        self.connection: Any = kombu.Connection(
            broker_url, transport_options=dict(transport_options or {}))
        self.retry_policy = dict(retry_policy or {"max_retries": 3, "interval_start": 0,
                                                  "interval_step": 0.2, "interval_max": 1})
        self.reply_to = oid_from(self)
        self.origin = default_origin()
        self._producer: Any = None
        self._queues: dict[str, Any] = {}

    def _queue(self, name: str, channel: Any) -> Any:
        """The queue to declare, bound to the producer's channel once: kombu copies and binds an
        unbound queue on every publish, which costs more than building the message."""
        queue = self._queues.get(name)
        if queue is None or queue.channel is not channel:
            kombu = self._kombu
            queue = kombu.Queue(name, kombu.Exchange(name, "direct"), routing_key=name)(channel)
            self._queues[name] = queue
        return queue

    def publish(self, message: TaskMessage) -> None:
        """Publish one message; raise :class:`PublishFailed` if the broker cannot take it."""
        try:
            self._send(self._get_producer(), message)
        except Exception as exc:  # kombu raises many types; the run is lost either way
            self._producer = None
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc

    @property
    def batching(self) -> bool:
        """Whether :meth:`publish_many` can send a batch in one round trip (kombu >= 5.7's
        ``Producer.batch`` on the Redis transport)."""
        try:
            producer = self._get_producer()
            return hasattr(producer, "batch") and bool(producer.supports_batch_publish)
        except Exception:
            return False

    def publish_many(self, messages: Sequence[TaskMessage], *,
                     allowed: Callable[[], bool] = lambda: True) -> list[str | None] | None:
        """Publish ``messages`` in one pipelined round trip (needs :attr:`batching`): kombu
        builds each exactly as :meth:`publish` does, buffers it, and sends the buffer at the end.

        Returns one item per message: None when it was sent, else why that message alone could
        not be built (it was left out). ``allowed()`` is asked right before the batch goes out;
        if it says no, nothing is sent and the result is None. Raises :class:`PublishFailed` if
        the broker did not take the batch: delivery of all of it is uncertain (at most once)."""
        errors: list[str | None] = []
        try:
            producer = self._get_producer()
            with producer.batch(max_size=1 << 30) as pending:  # one flush, at the end
                for message in messages:
                    try:
                        self._send(producer, message)
                    except Exception as exc:  # this message only (e.g. a bad property)
                        errors.append(f"{type(exc).__name__}: {exc}")
                    else:
                        errors.append(None)
                if not allowed():
                    raise _NotAllowed  # leaving the block by an exception discards the batch
                pending.flush()
            return errors
        except _NotAllowed:
            return None
        except Exception as exc:  # kombu raises many types; the runs are lost either way
            self._producer = None
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc

    def _get_producer(self) -> Any:
        if self._producer is None:
            self._producer = self.connection.Producer(serializer="json")
        return self._producer

    def _send(self, producer: Any, message: TaskMessage) -> None:
        producer.publish(
            message.body, exchange=message.exchange, routing_key=message.routing_key,
            serializer=message.serializer, compression=message.compression,
            delivery_mode=message.delivery_mode,
            declare=[self._queue(message.queue, producer.channel)],
            headers=dict(message.headers), retry=True, retry_policy=self.retry_policy,
            **message.properties,
        )

    def check(self) -> None:
        """Connect now (so a wrong broker URL fails at start, not at the first fire)."""
        try:
            self.connection.ensure_connection(max_retries=1)
        except Exception as exc:
            raise PublishFailed(f"cannot reach the broker: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self.connection.release()
