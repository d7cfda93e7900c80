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

On kombu's Redis transport, a message for the anonymous exchange (the usual case: ``queue`` or
no routing option) takes a shorter way than ``Producer.publish``, which costs more than all the
rest of firing an entry: :class:`_RedisLane` lays the message out with kombu's own serializer,
body encoding, priority-queue naming and JSON encoder, exactly as the transport's ``_put`` does,
and LPUSHes a whole batch in one pipelined round trip. ``tests/daemon/test_messages.py`` shows
the entries it writes equal kombu's byte for byte. Everything else (named exchanges, other
transports, compression, key prefixes, queue expiry, unusual properties) goes through kombu's
``Producer.publish``.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final

from beatspec._collector import Collector
from beatspec._jsontext import make_dumps
from beatspec.codec import DateTime, Definition
from beatspec.codec.decode import decode_datetime
from beatspec.keyspace import _bulk_begin, _can_pipeline, _pack

__all__ = [
    "DEFAULT_QUEUE",
    "Encoded",
    "MessagePlan",
    "MessageShape",
    "PublishFailed",
    "Publisher",
    "TaskMessage",
    "build_message",
    "plan_message",
]

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
    #: the body as kombu's serializer gives it (content type, encoding, payload), when it was
    #: serialized ahead (see :class:`MessagePlan`)
    encoded: tuple[str, str, Any] | None = None
    #: the plan it was made from (the Redis lane keeps a template per shape of plan)
    plan: MessagePlan | None = field(default=None, compare=False, repr=False)


_SCALARS: frozenset[type] = frozenset({str, int, float, bool, type(None)})


def _plain(value: Any) -> Any:
    """Values as RedBeat's JSON decoder gives them to Celery: a tagged datetime anywhere in
    args, kwargs or options becomes an aware ``datetime`` (which kombu's encoder then sends as
    ``{"__type__": "datetime", "__value__": ...}``); everything else is copied as it is.

    The decoder has already rejected invalid tagged datetimes and every other tag (TAG-1..3)."""
    if type(value) in _SCALARS:
        return value
    if isinstance(value, Mapping):
        if value.get("__type__") == "datetime":
            decoded = decode_datetime(value, Collector())
            if decoded is not None:
                return decoded.to_datetime()
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, DateTime):
        return value.to_datetime()
    return value


_VARIANT: Final = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def uuid4_text() -> str:
    """``str(uuid.uuid4())``, in a third of the time (Celery's task ids and kombu's delivery
    tags are random UUIDs in this form)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def _repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _REPR_MAX else text[: _REPR_MAX - 3] + "..."


def _when(value: Any, now: datetime) -> datetime:
    """A number of seconds after ``now``, or an absolute datetime."""
    if isinstance(value, datetime):
        return value
    return now + timedelta(seconds=float(value))


@dataclass(frozen=True, slots=True)
class MessageShape:
    """What the messages of every definition with one task and one set of options share:
    routing, headers and properties, all but the body, the task id and the times."""

    task: str
    custom: Mapping[str, Any]  # custom headers, celery_beat_task included
    queue: str
    exchange: str
    routing_key: str
    serializer: str
    compression: str | None
    delivery_mode: int
    properties: Mapping[str, Any]  # unknown options: message properties, as in Celery
    expires: Any
    countdown: Any
    eta: Any
    shadow: Any
    timelimit: tuple[Any, Any]
    ignore_result: Any
    #: all of the above as text: shapes with equal keys give equal messages (the Redis lane
    #: keeps one message template per key)
    key: str

    @property
    def timeless(self) -> bool:
        """Whether its messages differ only in the task id (no relative ``expires`` or
        ``countdown`` to count from the send time)."""
        return self.expires is None and not self.countdown


@dataclass(frozen=True, slots=True)
class MessagePlan:
    """What every message of one definition shares: all but the task id and the times.

    A scheduler plans an entry's message when it reads the entry (possibly ahead of its due
    time) and only stamps it with an id and the send time when it fires (:meth:`message`).
    """

    shape: MessageShape
    body: tuple[Any, Any, Any]
    argsrepr: str
    kwargsrepr: str
    encoded: tuple[str, str, Any] | None  # the body serialized (None: kombu cannot)

    def message(self, *, now: datetime, app_zone: tzinfo, origin: str, reply_to: str,
                task_id: str | None = None) -> TaskMessage:
        """The message ``celery beat`` would publish at ``now``."""
        task_id = task_id or uuid4_text()
        shape = self.shape
        expires, eta = shape.expires, shape.eta
        properties: dict[str, Any] = {}
        if expires is not None or shape.countdown:
            now_app = now.astimezone(app_zone)
            if expires is not None:
                at = _when(expires, now_app)
                properties["expiration"] = max((at - now_app).total_seconds(), 0.0)
                expires = at.isoformat()
            if shape.countdown:
                eta = _when(shape.countdown, now_app)
        headers: dict[str, Any] = {
            "lang": "py", "task": shape.task, "id": task_id, "shadow": shape.shadow,
            "eta": eta.isoformat() if isinstance(eta, datetime) else eta,
            "expires": expires, "group": None, "group_index": None, "retries": 0,
            "timelimit": list(shape.timelimit), "root_id": task_id, "parent_id": None,
            "argsrepr": self.argsrepr, "kwargsrepr": self.kwargsrepr,
            "origin": origin, "ignore_result": shape.ignore_result,
            "replaced_task_nesting": 0, "stamped_headers": None, "stamps": {},
        }
        headers.update(shape.custom)
        properties.update(shape.properties)
        properties["correlation_id"] = task_id
        properties["reply_to"] = reply_to
        return TaskMessage(
            task_id=task_id, body=self.body, headers=headers, queue=shape.queue,
            exchange=shape.exchange, routing_key=shape.routing_key,
            serializer=shape.serializer, compression=shape.compression,
            delivery_mode=shape.delivery_mode, properties=properties, encoded=self.encoded,
            plan=self)

    @property
    def timeless(self) -> bool:
        return self.shape.timeless


def plan_message(definition: Definition, *, default_queue: str = DEFAULT_QUEUE
                 ) -> MessagePlan:
    """Plan the messages of ``definition``: the options turned into routing, headers and
    properties as ``send_task`` turns them (once per task and options object), and the body
    serialized once."""
    shape = _shape_of(definition.task, definition.options, default_queue)
    args = _plain(definition.args) if definition.args else []
    kwargs = _plain(definition.kwargs) if definition.kwargs else {}
    body = (args, kwargs, {"callbacks": None, "errbacks": None, "chain": None, "chord": None})
    return MessagePlan(shape, body, _repr(args), _repr(kwargs),
                       _serialized(body, shape.serializer))


#: Shapes made lately, by (task, id of the options mapping, default queue): entries decoded
#: from one definition template share their options mapping (it is kept here, so its id is
#: not reused while the shape is).
_SHAPES: dict[tuple[str, int, str], tuple[Any, MessageShape]] = {}
_SHAPES_MAX: Final = 4096


def _shape_of(task: str, given: Mapping[str, Any] | None, default_queue: str) -> MessageShape:
    slot = (task, id(given), default_queue)
    cached = _SHAPES.get(slot)
    if cached is not None and cached[0] is given:
        return cached[1]
    shape = _make_shape(task, given, default_queue)
    if len(_SHAPES) >= _SHAPES_MAX:
        _SHAPES.clear()
    _SHAPES[slot] = (given, shape)
    return shape


def _make_shape(task: str, given: Mapping[str, Any] | None, default_queue: str) -> MessageShape:
    options: dict[str, Any] = _plain(given) if given else {}
    custom = dict(options.pop("headers", None) or {})
    custom["celery_beat_task"] = True
    expires = options.pop("expires", None)
    countdown = options.pop("countdown", None)
    eta = options.pop("eta", None)
    shadow = options.pop("shadow", None)
    timelimit = (options.pop("time_limit", None), options.pop("soft_time_limit", None))
    ignore_result = options.pop("ignore_result", None)
    queue = str(options.pop("queue", None) or default_queue)
    exchange = options.pop("exchange", None)
    routing_key = options.pop("routing_key", None)
    if not exchange or not routing_key:
        exchange, routing_key = "", queue
    publish: dict[str, Any] = {}
    if options:
        for name in _HEADER_ARGS:
            options.pop(name, None)
        publish = {k: options.pop(k) for k in list(options) if k in _PUBLISH_ARGS}
    serializer = str(publish.get("serializer") or "json")
    fields = (task, custom, queue, str(exchange), str(routing_key), serializer,
              publish.get("compression"), int(publish.get("delivery_mode") or 2), options,
              expires, countdown, eta, shadow, timelimit, ignore_result)
    return MessageShape(*fields, key=repr(fields))


def _serialized(body: Any, serializer: str) -> tuple[str, str, Any] | None:
    """kombu's serialization of ``body`` (None when kombu cannot serialize it: the error then
    comes from the publish, for this message only)."""
    try:
        if serializer == "json":
            return _json_body()(body)
        content_type, content_encoding, payload = _kombu_dumps()(body, serializer=serializer)
    except Exception:
        return None
    return str(content_type), str(content_encoding), payload


@functools.cache
def _kombu_dumps() -> Any:
    return importlib.import_module("kombu.serialization").dumps


@functools.cache
def _json_body() -> Callable[[Any], tuple[str, str, Any]]:
    """kombu's ``json`` serializer, with its encoder built once (checked against kombu's own
    registry on a probe; kombu's registry itself otherwise)."""
    dumps = _kombu_dumps()
    fast = make_dumps(importlib.import_module("kombu.utils.json").JSONEncoder())

    def encode(body: Any) -> tuple[str, str, Any]:
        return "application/json", "utf-8", fast(body)

    def registry(body: Any) -> tuple[str, str, Any]:
        content_type, content_encoding, payload = dumps(body, serializer="json")
        return str(content_type), str(content_encoding), payload

    probe = ([1, "é", 2.5, None, datetime(2026, 1, 2, 3, 4, 5)], {"k": [True]}, {"c": None})
    return encode if encode(probe) == registry(probe) else registry


def build_message(definition: Definition, *, now: datetime, app_zone: tzinfo,
                  origin: str, reply_to: str, task_id: str | None = None,
                  default_queue: str = DEFAULT_QUEUE) -> TaskMessage:
    """The message ``celery beat`` would publish for ``definition`` at ``now``."""
    return plan_message(definition, default_queue=default_queue).message(
        now=now, app_zone=app_zone, origin=origin, reply_to=reply_to, task_id=task_id)


def default_origin() -> str:
    """Celery's ``anon_nodename()``: ``gen<pid>@<host>``."""
    return f"gen{os.getpid()}@{socket.gethostname()}"


#: Message shapes the Redis lane keeps templates for (then it starts over).
_TEMPLATES: Final = 1024
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: Task ids a template takes: as long as its marker, and nothing for JSON to escape.
_UUID_TEXT: Final = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: Properties the Redis lane lays out itself; a message with any other goes through kombu.
_LANE_PROPERTIES = frozenset({"correlation_id", "reply_to", "priority", "expiration"})


@dataclass(frozen=True, slots=True)
class _Template:
    """The ``LPUSH`` of every message of one shape: the command head up to the list key, and
    the JSON text as a format string taking the task id, the delivery tag and the JSON
    strings of argsrepr, kwargsrepr and the encoded body."""

    head: bytes
    text: str


class _RedisLane:
    """kombu's Redis transport without ``Producer.publish``: one ``LPUSH`` per message, exactly
    as ``Channel._put`` writes it, a whole batch pipelined on the channel's own Redis client.

    Only messages for the anonymous exchange with JSON bodies, no compression and the usual
    properties take this way (:meth:`accepts`); the channel must have no global key prefix.
    """

    def __init__(self, channel: Any, declare: Callable[[str], None]) -> None:
        self.channel = channel
        self._declare = declare
        self._declared: set[str] = set()
        self._dumps: Any = importlib.import_module("kombu.serialization").dumps
        encoder = importlib.import_module("kombu.utils.json").JSONEncoder()
        self._json = make_dumps(encoder)
        # a JSON string alone, as the encoder writes string values (checked on a probe)
        self._string: Callable[[str], str] = (
            json.encoder.encode_basestring_ascii if encoder.ensure_ascii
            else json.encoder.encode_basestring)
        probe = "é\u2028\"'\\ <x>/\x00"
        if self._string(probe) != self._json(probe):
            self._string = self._json
        self._keys: dict[tuple[str, Any], str] = {}  # (queue, priority) -> list key
        # (shape key, origin, reply_to) -> its template (None: messages encoded in full)
        self._templates: dict[tuple[str, Any, Any], _Template | None] = {}
        self.templates = True  # False: every message encoded in full (tests compare both)

    @classmethod
    def for_producer(cls, producer: Any, declare: Callable[[str], None]) -> _RedisLane | None:
        """A lane for ``producer``'s channel, or None when its transport is not kombu's plain
        Redis transport (or it uses a global key prefix, or hiredis is missing)."""
        try:
            transport: Any = importlib.import_module("kombu.transport.redis")
            channel = producer.channel
        except Exception:
            return None
        if not isinstance(channel, transport.Channel) or channel.global_keyprefix:
            return None
        if not _can_pipeline(channel.client):
            return None
        return cls(channel, declare)

    def accepts(self, message: TaskMessage) -> bool:
        expires = getattr(self.channel, "_expires", None)
        return (not message.exchange and message.serializer == "json"
                and message.compression is None and message.properties.keys() <= _LANE_PROPERTIES
                and not (expires and message.routing_key in expires))

    def entry(self, message: TaskMessage, *, tag: str | None = None) -> tuple[str, str]:
        """The list key and the JSON that kombu 5.7's ``Producer.publish`` would LPUSH."""
        channel = self.channel
        content_type, content_encoding, body = (
            message.encoded or self._dumps(message.body, serializer="json"))
        body, body_encoding = channel.encode_body(body, channel.body_encoding)
        given = message.properties
        properties: dict[str, Any] = {k: v for k, v in given.items()
                                      if k != "priority" and k != "expiration"}
        properties["delivery_mode"] = message.delivery_mode
        if given.get("expiration") is not None:
            properties["expiration"] = str(int(given["expiration"] * 1000))
        properties["delivery_info"] = {"exchange": message.exchange,
                                       "routing_key": message.routing_key}
        properties["priority"] = given.get("priority") or channel.default_priority
        properties["body_encoding"] = body_encoding
        properties["delivery_tag"] = tag or uuid4_text()
        envelope = {"body": body, "content-encoding": content_encoding,
                    "content-type": content_type, "headers": dict(message.headers),
                    "properties": properties}
        slot = (message.routing_key, properties["priority"])
        key = self._keys.get(slot)
        if key is None:
            priority = channel._get_message_priority(envelope, reverse=False)
            key = self._keys[slot] = channel._q_for_pri(message.routing_key, priority)
        return key, self._json(envelope)

    def command(self, message: TaskMessage) -> bytes:
        """The packed ``LPUSH`` that sends ``message`` (it must be one the lane :meth:`accepts`):
        filled into the template of its plan's shape when it has one (:class:`_Template`),
        else encoded in full."""
        plan = message.plan
        if (self.templates and plan is not None and plan.timeless and plan.encoded is not None
                and _UUID_TEXT.fullmatch(message.task_id)):
            origin = message.headers.get("origin")
            reply_to = message.properties.get("reply_to")
            slot = (plan.shape.key, origin, reply_to)
            if slot in self._templates:
                template = self._templates[slot]
            else:
                template = self._template(plan, str(origin), str(reply_to))
                if len(self._templates) >= _TEMPLATES:
                    self._templates.clear()
                self._templates[slot] = template
            if template is not None:
                channel = self.channel
                string = self._string
                body = channel.encode_body(plan.encoded[2], channel.body_encoding)[0]
                text = template.text.format(message.task_id, uuid4_text(),
                                            string(plan.argsrepr), string(plan.kwargsrepr),
                                            string(body))
                data = text.encode("utf-8", "surrogateescape")
                return b"%s$%d\r\n%s\r\n" % (template.head, len(data), data)
        key, payload = self.entry(message)
        return _pack((b"LPUSH", key, payload))

    def _template(self, plan: MessagePlan, origin: str, reply_to: str) -> _Template | None:
        """The template of ``plan``'s shape: a message of that shape encoded in full with marker
        values (task id, delivery tag, argsrepr, kwargsrepr, body), turned into a format string
        with a field where each marker was. None when the lane does not take such messages."""
        assert plan.encoded is not None
        markers = [uuid4_text() for _ in range(5)]
        task_id, tag, argsrepr, kwargsrepr, payload = markers
        shaped = replace(plan, argsrepr=argsrepr, kwargsrepr=kwargsrepr,
                         encoded=(*plan.encoded[:2], payload))
        message = shaped.message(now=_EPOCH, app_zone=UTC, origin=origin, reply_to=reply_to,
                                 task_id=task_id)
        if not self.accepts(message):
            return None
        key, text = self.entry(message, tag=tag)
        channel = self.channel
        string = self._string
        holes = [task_id, tag, string(argsrepr), string(kwargsrepr),
                 string(channel.encode_body(payload, channel.body_encoding)[0])]
        parts = re.split("(" + "|".join(re.escape(h) for h in holes) + ")", text)
        found = [holes.index(part) for part in parts[1::2]]
        if sorted(found) != [0, 0, 0, 1, 2, 3, 4]:
            return None  # a marker met elsewhere in the text: encode such messages in full
        literals = [part.replace("{", "{{").replace("}", "}}") for part in parts[0::2]]
        fields = [f"{{{k}}}" for k in found] + [""]
        data = key.encode("utf-8", "surrogateescape")
        return _Template(b"*3\r\n$5\r\nLPUSH\r\n$%d\r\n%s\r\n" % (len(data), data),
                         "".join(a + b for a, b in zip(literals, fields, strict=True)))

    def push(self, encoded: Sequence[Encoded], allowed: Callable[[], bool]
             ) -> list[str | None] | None:
        """Send the commands of ``encoded`` in one round trip: one item per message as
        :meth:`Publisher.publish_many` returns them, or None if ``allowed()`` said no."""
        return self.push_begin(encoded, allowed)()

    def push_begin(self, encoded: Sequence[Encoded], allowed: Callable[[], bool]
                   ) -> Callable[[], list[str | None] | None]:
        """:meth:`push` in two steps: the commands are sent now; the function returned (to be
        called exactly once) reads the broker's replies and returns what :meth:`push` does."""
        for queue in {e.message.queue for e in encoded} - self._declared:
            self._declare(queue)
            self._declared.add(queue)
        commands = [e.command for e in encoded if e.command is not None and e.error is None]
        if not allowed():
            return lambda: None
        if not commands:
            return lambda: [e.error for e in encoded]
        receive = _bulk_begin(self.channel.client, b"".join(commands), len(commands))
        assert receive is not None  # the lane exists only where the client can pipeline

        def finish() -> list[str | None]:
            replies = receive()
            failed = iter([f"{type(r).__name__}: {r}" if isinstance(r, Exception) else None
                           for r in replies])
            return [e.error if e.error is not None else next(failed) for e in encoded]

        return finish


@dataclass(frozen=True, slots=True)
class Encoded:
    """A message made ready to send (:meth:`Publisher.encode`): the Redis lane's packed
    ``LPUSH``, or no ``command`` when kombu's ``Producer.publish`` sends it; ``error`` when the
    lane cannot encode it (then it is not sent)."""

    message: TaskMessage
    command: bytes | None = None
    error: str | None = None


class Publisher:
    """A kombu connection and producer; declares each queue once, like Celery's producer.

    ``direct=False`` sends everything through kombu's ``Producer.publish`` (see
    :class:`_RedisLane` for the shorter way taken on the Redis transport otherwise)."""

    def __init__(self, broker_url: str, *, transport_options: Mapping[str, Any] | None = None,
                 retry_policy: Mapping[str, Any] | None = None, direct: bool = True) -> None:
        kombu: Any = importlib.import_module("kombu")
        oid_from: Any = importlib.import_module("kombu.common").oid_from
        self._kombu = kombu
        self.connection: Any = kombu.Connection(
            broker_url, transport_options=dict(transport_options or {}))
        self.retry_policy = dict(retry_policy or {"max_retries": 3, "interval_start": 0,
                                                  "interval_step": 0.2, "interval_max": 1})
        self.reply_to = oid_from(self)
        self.origin = default_origin()
        self.direct = direct
        self._producer: Any = None
        self._lane: _RedisLane | None = None
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
        [encoded] = self.encode([message])
        if encoded.command is not None or encoded.error is not None:
            errors = self.send([encoded])
            if errors and errors[0] is not None:
                raise PublishFailed(errors[0])
            return
        try:
            self._send(self._get_producer(), message)
        except Exception as exc:  # kombu raises many types; the run is lost either way
            self._reset()
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc

    @property
    def batching(self) -> bool:
        """Whether :meth:`publish_many` can send a batch in one round trip (the Redis lane, or
        kombu >= 5.7's ``Producer.batch`` on the Redis transport)."""
        try:
            producer = self._get_producer()
            return self._lane is not None or (
                hasattr(producer, "batch") and bool(producer.supports_batch_publish))
        except Exception:
            return False

    def prepare(self, plan: MessagePlan) -> Encoded | None:
        """The next message of ``plan``, built and encoded now with a fresh task id, so that
        sending it later only writes; None unless the Redis lane takes it and its messages
        differ in nothing but the ids (:attr:`MessagePlan.timeless`). A scheduler prepares the
        entries it reads ahead of their due time, and uses each prepared message once."""
        if not plan.timeless:
            return None
        try:
            self._get_producer()
        except Exception:  # send() reports it
            return None
        lane = self._lane
        if lane is None:
            return None
        message = plan.message(now=_EPOCH, app_zone=UTC, origin=self.origin,
                               reply_to=self.reply_to)
        if not lane.accepts(message):
            return None
        try:
            return Encoded(message, lane.command(message))
        except Exception:  # encoded again (and its error reported) when it is sent
            return None

    def encode(self, messages: Sequence[TaskMessage]) -> list[Encoded]:
        """Make ``messages`` ready to send (the lane's serialization), so that :meth:`send`
        only writes; a scheduler does this while its commit runs on the server."""
        try:
            self._get_producer()
        except Exception:  # send() reports it
            return [Encoded(m) for m in messages]
        lane = self._lane
        out: list[Encoded] = []
        for message in messages:
            if lane is None or not lane.accepts(message):
                out.append(Encoded(message))
                continue
            try:
                out.append(Encoded(message, lane.command(message)))
            except Exception as exc:  # this message only (a value JSON cannot carry)
                out.append(Encoded(message, error=f"{type(exc).__name__}: {exc}"))
        return out

    def publish_many(self, messages: Sequence[TaskMessage], *,
                     allowed: Callable[[], bool] = lambda: True) -> list[str | None] | None:
        """:meth:`encode` and :meth:`send` ``messages``."""
        return self.send(self.encode(messages), allowed=allowed)

    def send(self, encoded: Sequence[Encoded], *,
             allowed: Callable[[], bool] = lambda: True) -> list[str | None] | None:
        """Publish encoded messages in one pipelined round trip (needs :attr:`batching`).

        Returns one item per message: None when it was sent, else why that message alone could
        not be built (it was left out). ``allowed()`` is asked right before the batch goes out;
        if it says no, nothing is sent and the result is None. Raises :class:`PublishFailed` if
        the broker did not take the batch: delivery of all of it is uncertain (at most once)."""
        return self.send_begin(encoded, allowed=allowed)()

    def send_begin(self, encoded: Sequence[Encoded], *, allowed: Callable[[], bool] = lambda: True
                   ) -> Callable[[], list[str | None] | None]:
        """:meth:`send` in two steps: the batch goes out now (on the Redis lane), and the
        function returned (to be called exactly once) waits for the broker's replies and returns
        what :meth:`send` returns. Either step raises :class:`PublishFailed`."""
        try:
            producer = self._get_producer()
            lane = self._lane
            if lane is not None and all(e.command is not None or e.error is not None
                                        for e in encoded):
                finish = lane.push_begin(encoded, allowed)
            else:
                result = self._kombu_batch(producer, [e.message for e in encoded], allowed)
                return lambda: result
        except PublishFailed:
            raise
        except Exception as exc:  # kombu raises many types; the runs are lost either way
            self._reset()
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc

        def replies() -> list[str | None] | None:
            try:
                return finish()
            except Exception as exc:  # the connection failed: delivery is uncertain
                self._reset()
                raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc

        return replies

    def _kombu_batch(self, producer: Any, messages: Sequence[TaskMessage],
                     allowed: Callable[[], bool]) -> list[str | None] | None:
        """``publish_many`` through kombu's ``Producer.batch``: kombu builds each message as
        :meth:`publish` does, buffers it, and sends the buffer at the end."""
        errors: list[str | None] = []
        try:
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
        except _NotAllowed:
            return None
        return errors

    def _get_producer(self) -> Any:
        if self._producer is None:
            producer = self.connection.Producer(serializer="json")
            self._lane = _RedisLane.for_producer(producer, self._declare) if self.direct \
                else None
            self._producer = producer
        return self._producer

    def _reset(self) -> None:
        self._producer = None
        self._lane = None

    def _declare(self, name: str) -> None:
        producer = self._get_producer()
        producer.maybe_declare(self._queue(name, producer.channel), retry=True,
                               **self.retry_policy)

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
