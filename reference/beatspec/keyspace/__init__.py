"""The keyspace layer: the only module that knows key names and Redis commands (spec §2).

Everything else (validator, audit, scheduler, CLI) asks this module for entries, scores and
locks, so the layout is written down once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import redis

try:
    import hiredis as _hiredis_module
except ImportError:  # pragma: no cover - hiredis comes with redis[hiredis]
    _hiredis_module = None  # type: ignore[assignment]
_hiredis: Any = _hiredis_module

__all__ = [
    "DEFAULT_PREFIX",
    "READ_COMMANDS",
    "RESERVED_SUFFIXES",
    "Keyspace",
    "Layout",
    "LockState",
    "ServerState",
    "StoredEntry",
    "glob_escape",
]

#: Every command the read-only audit sends (spec §2.6); an ACL user allowed only these (plus
#: the connection handshake) can run it.
READ_COMMANDS = (
    "PING", "SCAN", "TYPE", "HGETALL", "ZSCORE", "ZSCAN", "ZCARD", "SSCAN", "GET", "PTTL",
    "INFO",
)

DEFAULT_PREFIX = "redbeat:"
#: Suffixes of the keys that are not entries (KEY-3, KEY-4, KEY-5, KEY-8).
RESERVED_SUFFIXES = (":schedule", ":statics", ":lock", ":beatspec", ":scheduler", ":invalid")


@dataclass(frozen=True, slots=True)
class Layout:
    """Key names of one keyspace: entries at prefix + name, indexes at prefix + ':…'."""

    prefix: str = DEFAULT_PREFIX
    lock_suffix: str = ":lock"

    @property
    def schedule_key(self) -> str:
        return self.prefix + ":schedule"

    @property
    def statics_key(self) -> str:
        return self.prefix + ":statics"

    @property
    def lock_key(self) -> str:
        return self.prefix + self.lock_suffix

    @property
    def declaration_key(self) -> str:
        return self.prefix + ":beatspec"

    @property
    def scheduler_key(self) -> str:
        """The hash where a beatspec scheduler publishes its state (spec §11.4)."""
        return self.prefix + ":scheduler"

    @property
    def invalid_key(self) -> str:
        """The hash of entries a beatspec scheduler backs off as invalid (spec §11.4)."""
        return self.prefix + ":invalid"

    def entry_key(self, name: str) -> str:
        return self.prefix + name

    def name_of(self, key: str) -> str | None:
        """The entry name of a key under the prefix, or None for other keys."""
        if not key.startswith(self.prefix):
            return None
        return key[len(self.prefix) :]


def glob_escape(text: str) -> str:
    """Escape SCAN MATCH glob characters so that a prefix matches only itself."""
    return "".join("\\" + ch if ch in "\\*?[]" else ch for ch in text)


def _pack(command: tuple[bytes | str, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(command)]
    for arg in command:
        data = arg.encode("utf-8", "surrogateescape") if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _bulk(client: Any, commands: list[tuple[bytes | str, ...]]) -> list[Any] | None:
    """Send read commands in one write and parse the replies with hiredis (errors come back
    as exception objects, like ``pipeline.execute(raise_on_error=False)``).

    redis-py's pipeline spends ~15 µs of Python per command; an audit of a million entries
    sends two million. hiredis parses RESP2 and RESP3 alike. Returns None when the client is no
    plain ``redis.Redis`` (Cluster) or hiredis is missing: the caller then uses a pipeline.
    """
    if not commands:
        return []
    return _bulk_packed(client, b"".join(_pack(c) for c in commands), len(commands))


def _bulk_packed(client: Any, payload: bytes, count: int) -> list[Any] | None:
    """Send ``count`` packed commands at once and read their replies (see :func:`_bulk`)."""
    finish = _bulk_begin(client, payload, count)
    return None if finish is None else finish()


def _bulk_begin(client: Any, payload: bytes, count: int) -> Callable[[], list[Any]] | None:
    """:func:`_bulk_packed` in two steps: the commands are sent now, on a pooled connection of
    their own; the function returned (to be called exactly once: it gives the connection back)
    reads the replies. The caller works meanwhile. None when the client cannot pipeline."""
    if not _can_pipeline(client):
        return None
    if not count:
        return list
    connection = _Pipelined(client)
    try:
        connection.send(payload, count)
    except BaseException:
        connection.__exit__(None, None, None)
        raise

    def finish() -> list[Any]:
        with connection:
            return connection.receive(count)

    return finish


def _can_pipeline(client: Any) -> bool:
    """hiredis is there and the client is a plain ``redis.Redis`` (no Cluster)."""
    return _hiredis is not None and isinstance(client, redis.Redis)


#: Bytes handed to the hiredis reader at a time. Each reply it takes out of its buffer moves
#: the rest of the buffer to the front once a kilobyte is consumed: fed a large read at once,
#: it spends most of its time moving memory (quadratic in the size fed).
_FEED = 8192


class _Pipelined:
    """One pooled connection on which packed commands are sent, possibly several requests ahead,
    and their replies read in order with one hiredis reader. Bytes read but not yet fed to the
    reader (replies to come) stay in ``_buffer[_fed:_read]``."""

    def __init__(self, client: Any) -> None:
        self._pool = client.connection_pool
        self._connection: Any = self._pool.get_connection()
        self._reader = _hiredis.Reader()
        self._buffer = bytearray(1 << 18)
        self._fed = self._read = 0
        self._pending = 0

    def __enter__(self) -> _Pipelined:
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._pending:  # replies left unread (an error, or the caller stopped): not reusable
            self._connection.disconnect()
        self._pool.release(self._connection)

    def send(self, payload: bytes, count: int) -> None:
        """Send ``count`` packed commands; their replies are read by :meth:`receive`."""
        self._pending += count
        self._connection.send_packed_command([payload], check_health=False)

    def receive(self, count: int) -> list[Any]:
        """The next ``count`` replies (errors come back as exception objects)."""
        reader = self._reader
        replies: list[Any] = []
        while len(replies) < count:
            reply = reader.gets()
            if reply is False:
                self._feed()
                continue
            replies.append(reply)
        self._pending -= count
        return replies

    def _feed(self) -> None:
        """Hand the reader the next bytes, reading from the socket when all were handed."""
        if self._fed == self._read:
            self._fed, self._read = 0, self._connection._sock.recv_into(self._buffer)
            if not self._read:
                raise redis.ConnectionError("connection closed by the server")
        size = min(_FEED, self._read - self._fed)
        self._reader.feed(self._buffer, self._fed, size)
        self._fed += size


_FIELD_NAMES: dict[object, str] = {b"definition": "definition", b"meta": "meta",
                                   b"extensions": "extensions"}


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _raw_keys(keys: Sequence[str | bytes]) -> list[bytes]:
    """Keys as Redis takes them (the bytes SCAN gave, or text encoded as it was decoded)."""
    return [key if isinstance(key, bytes) else key.encode("utf-8", "surrogateescape")
            for key in keys]


#: What :meth:`Keyspace.read_hashes` gives for a key: the hash's fields, its schedule score,
#: and False when the key holds no hash (its fields are then empty).
HashRead = tuple[dict[str, bytes], float | None, bool]


def _hash_reads(replies: Sequence[Any]) -> list[HashRead]:
    """Pairs of HGETALL and ZSCORE replies as :data:`HashRead`."""
    out: list[HashRead] = []
    pairs = iter(replies)
    for raw, score in zip(pairs, pairs, strict=True):
        stored = None if score is None or isinstance(score, Exception) else float(score)
        if isinstance(raw, Exception):
            out.append(({}, stored, False))
        else:
            out.append((_hash_fields(raw), stored, True))
    return out


def _hash_fields(raw: Any) -> dict[str, bytes]:
    """An HGETALL reply (a map in RESP3, a flat list in RESP2) as field names to raw values."""
    if type(raw) is list:
        pairs = iter(raw)
        raw = dict(zip(pairs, pairs, strict=True))
    if len(raw) == 2:  # the usual entry: a definition and a meta (their order plays no part)
        definition, meta = raw.get(b"definition"), raw.get(b"meta")
        if type(definition) is bytes and type(meta) is bytes:
            return {"definition": definition, "meta": meta}
    return {_FIELD_NAMES.get(k) or _text(k): v if isinstance(v, bytes) else str(v).encode()
            for k, v in raw.items()}


@dataclass(frozen=True, slots=True)
class LockState:
    """The lock key as found: its type (``none`` if absent), token and TTL in milliseconds."""

    type: str
    token: str | None
    pttl: int


@dataclass(frozen=True, slots=True)
class ServerState:
    """What INFO says about the server (INFO is read-only and allowed by read-only ACLs)."""

    version: str
    cluster: bool
    maxmemory_policy: str | None
    role: str | None


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry as it is stored: the hash fields (raw bytes) and its schedule score."""

    key: str
    name: str
    exists: bool
    fields: Mapping[str, bytes] = field(default_factory=dict)
    score: float | None = None


class Keyspace:
    """Read (and, for writers, change) one RedBeat keyspace through a redis-py client."""

    def __init__(self, client: Any, layout: Layout | None = None) -> None:
        self.client = client
        self.layout = layout or Layout()

    def read_entry(self, name: str) -> StoredEntry:
        """HGETALL the entry and ZSCORE its member, in one round trip."""
        key = self.layout.entry_key(name)
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(key)
        pipe.zscore(self.layout.schedule_key, key)
        raw, score = pipe.execute()
        fields = {
            (k.decode("utf-8", "surrogateescape") if isinstance(k, bytes) else str(k)): (
                v if isinstance(v, bytes) else str(v).encode()
            )
            for k, v in (raw or {}).items()
        }
        return StoredEntry(
            key=key, name=name, exists=bool(fields), fields=fields,
            score=None if score is None else float(score),
        )

    # --------------------------------------------------------------- read-only, streaming reads

    def forkable(self) -> bool:
        """True when a forked process may use this keyspace: redis-py's plain client notices
        the fork (by pid) and opens new connections there. Sentinel and Cluster clients are not
        used across a fork."""
        return type(self.client) is redis.Redis and (
            type(self.client.connection_pool) is redis.ConnectionPool)

    def scan_keys(self, count: int = 1000) -> Iterator[list[str]]:
        """Batches of keys under the prefix (SCAN with MATCH and a bounded COUNT, never KEYS)."""
        for batch in self.scan_raw(count):
            yield [_text(key) for key in batch]

    def scan_raw(self, count: int = 1000) -> Iterator[list[bytes]]:
        """:meth:`scan_keys` with the keys as Redis sent them (bytes), ready to be sent back."""
        match = glob_escape(self.layout.prefix) + "*"
        replies = (
            self._scan_ahead(match, count) if _can_pipeline(self.client)
            else self._scan_replies(match, count) if type(self.client) is redis.Redis
            else ([key] for key in self.client.scan_iter(match=match, count=count)))
        batch: list[bytes] = []
        for keys in replies:
            batch.extend(_raw_keys(keys))
            if len(batch) >= count:
                yield batch
                batch = []
        if batch:
            yield batch

    def _scan_ahead(self, match: str, count: int) -> Iterator[list[bytes]]:
        """The keys of each SCAN reply; the next SCAN is sent before a reply's keys are handed
        out, so Redis looks for them while the caller works."""
        def scan(cursor: bytes) -> None:
            connection.send(_pack((b"SCAN", cursor, b"MATCH", match, b"COUNT", str(count))), 1)

        with _Pipelined(self.client) as connection:
            scan(b"0")
            while True:
                reply = connection.receive(1)[0]
                if isinstance(reply, Exception):
                    raise redis.ResponseError(str(reply))
                cursor, keys = reply
                if cursor == b"0":
                    yield keys
                    return
                scan(cursor)
                yield keys

    def _scan_replies(self, match: str, count: int) -> Iterator[list[bytes | str]]:
        """The keys of each SCAN reply (a plain client: one node, one cursor)."""
        cursor: int = 0
        while True:
            cursor, keys = self.client.scan(cursor=cursor, match=match, count=count)
            yield keys
            if cursor == 0:
                return

    def types(self, keys: Sequence[str | bytes]) -> list[str]:
        raw_keys = _raw_keys(keys)
        payload = [b"*2\r\n$4\r\nTYPE\r\n$%d\r\n%s\r\n" % (len(key), key) for key in raw_keys]
        replies = _bulk_packed(self.client, b"".join(payload), len(keys))
        if replies is None:
            pipe = self.client.pipeline(transaction=False)
            for key in raw_keys:
                pipe.type(key)
            replies = pipe.execute()
        return [_text(t) for t in replies]

    def read_hashes(self, keys: Sequence[str | bytes]) -> list[HashRead]:
        """HGETALL and ZSCORE of each key, in one pipelined round trip; the flag is False
        when the key holds no hash (WRONGTYPE)."""
        raw_keys = _raw_keys(keys)
        replies = _bulk_packed(self.client, self._hashes_payload(raw_keys), 2 * len(keys))
        if replies is None:  # Cluster and other clients: redis-py's own pipeline
            pipe = self.client.pipeline(transaction=False)
            for key in raw_keys:
                pipe.hgetall(key)
                pipe.zscore(self.layout.schedule_key, key)
            replies = pipe.execute(raise_on_error=False)
        return _hash_reads(replies)

    def stream_hashes(self, batches: Iterable[list[bytes]]
                      ) -> Iterator[tuple[list[bytes], list[HashRead]]]:
        """:meth:`read_hashes` of each batch of keys, one batch ahead: the next batch's reads
        are sent before this batch is handed out, so Redis answers them while the caller works.
        Empty batches are skipped."""
        if not _can_pipeline(self.client):
            for keys in batches:
                if keys:
                    yield keys, self.read_hashes(keys)
            return
        with _Pipelined(self.client) as connection:
            ahead: list[bytes] = []
            for keys in batches:
                if not keys:
                    continue
                connection.send(self._hashes_payload(keys), 2 * len(keys))
                if ahead:
                    yield ahead, _hash_reads(connection.receive(2 * len(ahead)))
                ahead = keys
            if ahead:
                yield ahead, _hash_reads(connection.receive(2 * len(ahead)))

    def _hashes_payload(self, keys: Sequence[bytes]) -> bytes:
        """HGETALL key and ZSCORE schedule key, for each key, packed."""
        schedule = self.layout.schedule_key.encode("utf-8", "surrogateescape")
        zscore = b"*3\r\n$6\r\nZSCORE\r\n$%d\r\n%s\r\n" % (len(schedule), schedule)
        return b"".join([b"*2\r\n$7\r\nHGETALL\r\n$%d\r\n%s\r\n%s$%d\r\n%s\r\n"
                         % (len(key), key, zscore, len(key), key) for key in keys])

    def scan_schedule(self, count: int = 1000) -> Iterator[list[tuple[str, float]]]:
        """Batches of (member, score) of the schedule sorted set (ZSCAN)."""
        cursor: int = 0
        while True:
            cursor, pairs = self.client.zscan(self.layout.schedule_key, cursor=cursor, count=count)
            if pairs:
                yield [(_text(cast("bytes", m)), float(sc)) for m, sc in pairs]
            if cursor == 0:
                return

    def schedule_size(self) -> int:
        """ZCARD of the schedule index."""
        return int(self.client.zcard(self.layout.schedule_key))

    def scan_statics(self, count: int = 1000) -> Iterator[list[str]]:
        cursor: int = 0
        while True:
            cursor, names = self.client.sscan(self.layout.statics_key, cursor=cursor, count=count)
            if names:
                yield [_text(n) for n in names]
            if cursor == 0:
                return

    def lock_state(self) -> LockState:
        key = self.layout.lock_key
        kind = _text(self.client.type(key))
        token = None
        if kind == "string":
            raw = self.client.get(key)
            token = None if raw is None else _text(raw)
        pttl = int(self.client.pttl(key)) if kind != "none" else -2
        return LockState(kind, token, pttl)

    def declaration(self) -> tuple[str, dict[str, str]]:
        """The type of the declaration key and, for a hash, its fields."""
        key = self.layout.declaration_key
        kind = _text(self.client.type(key))
        if kind != "hash":
            return kind, {}
        return kind, {_text(k): _text(v) for k, v in self.client.hgetall(key).items()}

    def server_state(self) -> ServerState:
        info: dict[str, Any] = self.client.info()
        if info and all(isinstance(v, dict) for v in info.values()):  # Cluster: one per node
            info = next(iter(info.values()))
        return ServerState(
            version=str(info.get("redis_version", "?")),
            cluster=bool(info.get("cluster_enabled", 0)),
            maxmemory_policy=(str(info["maxmemory_policy"]) if "maxmemory_policy" in info
                              else None),
            role=str(info["role"]) if "role" in info else None,
        )

    def probe(self, pattern: str, *, budget: int = 20, count: int = 1000) -> list[str]:
        """A few keys matching ``pattern`` (at most ``budget`` SCAN calls): for hints only."""
        found: list[str] = []
        cursor: int = 0
        for _ in range(budget):
            cursor, keys = self.client.scan(cursor=cursor, match=pattern, count=count)
            found.extend(_text(k) for k in keys)
            if cursor == 0 or len(found) >= 5:
                break
        return found[:5]
