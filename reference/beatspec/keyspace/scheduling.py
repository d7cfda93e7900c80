"""What a scheduler does to a keyspace: the lock, the due index, and fenced writes (spec §10, §11).

Every write a scheduler makes goes through a Lua script that first compares the lock key with the
scheduler's token (LOCK-4) and then, per entry, compares the entry's fields as they were read with
the fields as they are now: a writer's change made between the read and the write wins, and the
scheduler looks at the entry again on its next tick. All keys a script touches are passed in KEYS,
so with a hash-tag prefix (``{redbeat}:``) every script runs in one Cluster slot.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis

from beatspec.keyspace import Layout, _bulk, _bulk_begin, _can_pipeline, _pack

__all__ = [
    "EXTEND_SCRIPT",
    "RELEASE_SCRIPT",
    "Change",
    "DueMember",
    "LoadedEntry",
    "ScheduleStore",
    "StaticEntry",
    "fingerprint",
]

#: RedBeat 2.4.2's ``LUA_EXTEND_TO_SCRIPT``: set the TTL while the token matches (LOCK-2).
EXTEND_SCRIPT = """
local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then return 0 end
local expiration = redis.call('pttl', KEYS[1])
if not expiration then expiration = 0 end
if expiration < 0 then return 0 end
redis.call('pexpire', KEYS[1], ARGV[2])
return 1
"""

#: redis-py's compare-and-delete (LOCK-3).
RELEASE_SCRIPT = """
local token = redis.call('get', KEYS[1])
if not token or token ~= ARGV[1] then return 0 end
redis.call('del', KEYS[1])
return 1
"""

# KEYS: lock, schedule, invalid, then the entry key of each change that is not a 'b'
# ARGV: token, then 8 per change: op, member, present, definition, meta, extensions, a, b
#       (the three fields as read, '' when absent; present: '1'/'0' for each of them)
# ops:  M = meta a + score b   Z = score b   B = back off: score b, invalid[member] = a
#       D = delete the entry (ZREM + DEL)
#       b = back off a member that names no key under the prefix (ZSET-1): its key may lie
#           in another Cluster slot, so it is not touched; only the index and the note are
# The fields are compared as strings (Lua interns them: equal strings are one object), which
# costs the server a fraction of hashing them. Scores are written with ZADD XX: a member a
# writer removed meanwhile is not re-added. The invalid-entries hash is written with pcall: a
# foreign value there must not stop a tick (RUN-2).
# Returns -1 when the token does not match (nothing written), else one 1/0 per change
# (0: the entry changed since it was read, nothing written for it).
_COMMIT_SCRIPT = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
local done = {}
local k = 4
for j = 2, #ARGV, 8 do
  local op, member, a, b = ARGV[j], ARGV[j + 1], ARGV[j + 6], ARGV[j + 7]
  if op == 'b' then
    if redis.call('zscore', KEYS[2], member) then
      redis.call('zadd', KEYS[2], b, member)
      redis.pcall('hset', KEYS[3], member, a)
    end
    done[#done + 1] = 1
  else
    local key = KEYS[k]
    k = k + 1
    local f = redis.pcall('hmget', key, 'definition', 'meta', 'extensions')
    if f['err'] then f = {false, false, false} end
    if (f[2] or '') ~= ARGV[j + 4] or (f[1] or '') ~= ARGV[j + 3]
        or (f[3] or '') ~= ARGV[j + 5]
        or (f[1] and '1' or '0') .. (f[2] and '1' or '0') .. (f[3] and '1' or '0')
           ~= ARGV[j + 2] then
      done[#done + 1] = 0
    else
      if op == 'M' then
        redis.call('hset', key, 'meta', a)
        redis.call('zadd', KEYS[2], 'XX', b, key)
        redis.pcall('hdel', KEYS[3], key)
      elseif op == 'Z' then
        redis.call('zadd', KEYS[2], 'XX', b, key)
        redis.pcall('hdel', KEYS[3], key)
      elseif op == 'B' then
        redis.call('zadd', KEYS[2], 'XX', b, key)
        redis.pcall('hset', KEYS[3], key, a)
      elseif op == 'D' then
        redis.call('zrem', KEYS[2], key)
        redis.call('del', key)
        redis.pcall('hdel', KEYS[3], key)
      end
      done[#done + 1] = 1
    end
  end
end
return done
"""

# KEYS: lock, schedule, statics, invalid, entry keys (configured, then stale)
# ARGV: token, n configured, then 5 per configured entry: name, definition, meta (HSETNX), score,
#       extensions ('' = none); then the names of the stale entries
_STATICS_SCRIPT = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
local configured = tonumber(ARGV[2])
local k = 5
local j = 3
for _ = 1, configured do
  local name, definition, meta, score = ARGV[j], ARGV[j + 1], ARGV[j + 2], ARGV[j + 3]
  redis.call('hset', KEYS[k], 'definition', definition)
  redis.call('hsetnx', KEYS[k], 'meta', meta)
  if ARGV[j + 4] == '' then
    redis.call('hdel', KEYS[k], 'extensions')
  else
    redis.call('hset', KEYS[k], 'extensions', ARGV[j + 4])
  end
  redis.call('zadd', KEYS[2], score, KEYS[k])
  redis.pcall('hdel', KEYS[4], KEYS[k])
  redis.call('sadd', KEYS[3], name)
  k = k + 1
  j = j + 5
end
while k <= #KEYS do
  redis.call('zrem', KEYS[2], KEYS[k])
  redis.call('del', KEYS[k])
  redis.pcall('hdel', KEYS[4], KEYS[k])
  redis.call('srem', KEYS[3], ARGV[j])
  k = k + 1
  j = j + 1
end
return 1
"""

# KEYS: lock, scheduler   ARGV: token, then field/value pairs
_STATUS_SCRIPT = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('del', KEYS[2])
for i = 2, #ARGV, 2 do redis.call('hset', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""

# KEYS: lock, schedule, invalid   ARGV: token, then fields of the invalid hash
# Drops the notes of members no longer in the schedule index (a writer deleted the entry, or
# removed a bare-name member), so that the hash lists what is invalid now.
_PRUNE_SCRIPT = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return -1 end
local dropped = 0
for i = 2, #ARGV do
  if not redis.call('zscore', KEYS[2], ARGV[i]) then
    dropped = dropped + redis.call('hdel', KEYS[3], ARGV[i])
  end
end
return dropped
"""

_FIELDS = ("definition", "meta", "extensions")
_HMGET_FIELDS = b"".join(b"$%d\r\n%s\r\n" % (len(f), f.encode()) for f in _FIELDS)


def fingerprint(definition: bytes | None, meta: bytes | None, extensions: bytes | None) -> str:
    """A SHA-1 of the three fields joined by NUL, absent = empty: tells apart two versions of an
    entry (a scheduler logs an invalid entry once per version)."""
    return hashlib.sha1(
        (definition or b"") + b"\0" + (meta or b"") + b"\0" + (extensions or b""),
        usedforsecurity=False,
    ).hexdigest()


@dataclass(frozen=True, slots=True)
class DueMember:
    """A member of the schedule index and its score."""

    key: str
    score: float


@dataclass(frozen=True, slots=True)
class LoadedEntry:
    """An entry's fields as read for a tick (``None``: absent); the commit script compares
    them with the fields as they are then (RUN-4)."""

    key: str
    exists: bool
    fields: Mapping[str, bytes]

    @property
    def fingerprint(self) -> str:
        return fingerprint(*(self.fields.get(name) for name in _FIELDS))

    def as_read(self) -> tuple[bytes, bytes, bytes, bytes]:
        """What the commit script compares: which fields were present ('1'/'0' each), and the
        three values ('' when absent)."""
        got = self.fields
        definition, meta, extensions = (got.get("definition"), got.get("meta"),
                                        got.get("extensions"))
        present = b"%d%d%d" % (definition is not None, meta is not None, extensions is not None)
        return present, definition or b"", meta or b"", extensions or b""


@dataclass(frozen=True, slots=True)
class Change:
    """One fenced write for one entry (see the commit script for the ops)."""

    op: Literal["M", "Z", "B", "D", "b"]
    entry: LoadedEntry
    meta: str = ""
    score: int | float = 0
    note: str = ""  # B: the JSON the invalid-entries hash keeps for the key


@dataclass(frozen=True, slots=True)
class StaticEntry:
    """A static entry to install: its definition, the meta for a new entry, and its score."""

    name: str
    definition: str
    meta: str
    score: int
    extensions: str = ""


def _pack_changes(token: str, changes: Sequence[Change]) -> bytes:
    """The commit script's arguments as RESP bulk strings: the token, then eight per change
    (one format per change: a batch has thousands of arguments)."""
    parts = [b"$%d\r\n%s\r\n" % (len(t), t) for t in (token.encode("utf-8"),)]
    for change in changes:
        key = change.entry.key.encode("utf-8", "surrogateescape")
        value = (change.meta or change.note).encode("utf-8", "surrogateescape")
        score = repr(change.score).encode("ascii")
        present, definition, meta, extensions = change.entry.as_read()
        parts.append(b"$1\r\n%s\r\n$%d\r\n%s\r\n$3\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                     b"$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                         change.op.encode("ascii"), len(key), key, present,
                         len(definition), definition, len(meta), meta,
                         len(extensions), extensions, len(value), value, len(score), score))
    return b"".join(parts)


def _loaded(keys: Sequence[str], replies: Sequence[Any]) -> list[LoadedEntry]:
    loaded = []
    for key, values in zip(keys, replies, strict=True):
        if isinstance(values, Exception):  # WRONGTYPE: not a hash (ENT-1)
            loaded.append(LoadedEntry(key, True, {}))
            continue
        fields = {name: value for name, value in zip(_FIELDS, values, strict=True)
                  if value is not None}
        loaded.append(LoadedEntry(key, bool(fields), fields))
    return loaded


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


class ScheduleStore:
    """The keyspace as a scheduler uses it: lock, due members, loads and fenced writes."""

    def __init__(self, client: Any, layout: Layout | None = None) -> None:
        self.client = client
        self.layout = layout or Layout()
        self._extend = client.register_script(EXTEND_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)
        self._commit = client.register_script(_COMMIT_SCRIPT)
        self._statics = client.register_script(_STATICS_SCRIPT)
        self._status = client.register_script(_STATUS_SCRIPT)
        self._prune = client.register_script(_PRUNE_SCRIPT)

    # ------------------------------------------------------------------------------ the lock

    def acquire(self, token: str, ttl_ms: int) -> bool:
        """``SET <lock> <token> NX PX <ttl>`` (LOCK-1)."""
        return bool(self.client.set(self.layout.lock_key, token, nx=True, px=ttl_ms))

    def extend(self, token: str, ttl_ms: int) -> bool:
        """Reset the TTL to ``ttl_ms`` if the lock still holds ``token`` (LOCK-2)."""
        keys = [self.layout.lock_key]
        return bool(self._extend(keys=keys, args=[token, ttl_ms, 0]))

    def release(self, token: str) -> bool:
        """Delete the lock if it still holds ``token`` (LOCK-3)."""
        return bool(self._release(keys=[self.layout.lock_key], args=[token]))

    def holder(self) -> tuple[str | None, int]:
        """The lock's token (None: free) and its PTTL in milliseconds."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.layout.lock_key)
        pipe.pttl(self.layout.lock_key)
        token, pttl = pipe.execute()
        return (None if token is None else _text(token)), int(pttl)

    # --------------------------------------------------------------------------- due members

    def due(self, max_score: int, *, offset: int, count: int) -> list[DueMember]:
        """Members with 0 <= score <= ``max_score``, lowest first, a bounded page of them."""
        return self._range(0, max_score, offset, count)

    def between(self, after: int, until: float, *, offset: int, count: int) -> list[DueMember]:
        """Members with ``after`` < score <= ``until``, lowest first, a bounded page of them."""
        return self._range(f"({after}", until, offset, count)

    def _range(self, low: int | str, high: int | float, offset: int, count: int
               ) -> list[DueMember]:
        """``ZRANGEBYSCORE … WITHSCORES LIMIT``, parsed by hiredis where possible (redis-py
        spends a few microseconds of Python per member; a tick lists thousands)."""
        key = self.layout.schedule_key
        replies = _bulk(self.client, [("ZRANGEBYSCORE", key, str(low), repr(high), "WITHSCORES",
                                       "LIMIT", str(offset), str(count))])
        if replies is None:  # Cluster and other clients
            rows = self.client.zrangebyscore(key, low, high, start=offset, num=count,
                                             withscores=True)
            return [DueMember(_text(m), float(s)) for m, s in rows]
        [reply] = replies
        if isinstance(reply, Exception):
            raise reply
        if reply and isinstance(reply[0], list):  # RESP3: [member, score] pairs
            return [DueMember(m.decode("utf-8", "surrogateescape"), float(s)) for m, s in reply]
        flat = iter(reply)  # RESP2: member, score, member, score, ...
        return [DueMember(m.decode("utf-8", "surrogateescape"), float(s))
                for m, s in zip(flat, flat, strict=True)]

    def next_score(self, after: int) -> float | None:
        """The lowest score above ``after`` (the peek that sizes the sleep), or None."""
        rows = self.client.zrangebyscore(self.layout.schedule_key, f"({after}", "+inf",
                                         start=0, num=1, withscores=True)
        return float(rows[0][1]) if rows else None

    def upcoming(self, count: int) -> list[DueMember]:
        """The first ``count`` members by score, exhausted (negative) ones excluded."""
        rows = self.client.zrangebyscore(self.layout.schedule_key, 0, "+inf",
                                         start=0, num=count, withscores=True)
        return [DueMember(_text(m), float(s)) for m, s in rows]

    def load(self, keys: Sequence[str]) -> list[LoadedEntry]:
        """HMGET definition, meta and extensions of each key, in one pipelined round trip
        (packed by hand and parsed by hiredis where possible: redis-py's pipeline costs ~15 µs
        of Python per command)."""
        return self.load_begin(keys)()

    def load_begin(self, keys: Sequence[str]) -> Callable[[], list[LoadedEntry]]:
        """Send the reads of :meth:`load` and return without waiting; the function returned
        reads the replies and returns what :meth:`load` returns. It must be called exactly once
        (it gives the connection back); a scheduler reads the next page meanwhile."""
        payload = b"".join(
            b"*5\r\n$5\r\nHMGET\r\n$%d\r\n%s\r\n" % (len(data), data) + _HMGET_FIELDS
            for data in (key.encode("utf-8", "surrogateescape") for key in keys))
        finish = _bulk_begin(self.client, payload, len(keys))
        if finish is not None:
            return lambda: _loaded(keys, finish())

        def pipelined() -> list[LoadedEntry]:  # Cluster and other clients: redis-py's pipeline
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, *_FIELDS)
            return _loaded(keys, pipe.execute(raise_on_error=False))

        return pipelined

    # ---------------------------------------------------------------------- fenced writes

    def commit(self, token: str, changes: Sequence[Change]) -> list[bool] | None:
        """Apply ``changes`` atomically if the lock holds ``token``: None if it does not, else
        one flag per change (False: the entry changed since it was read; nothing written)."""
        return self.commit_begin(token, changes)()

    def commit_begin(self, token: str, changes: Sequence[Change]
                     ) -> Callable[[], list[bool] | None]:
        """Send the commit of ``changes`` and return, without waiting for the server; the
        function returned waits for and returns what :meth:`commit` returns. It must be called
        exactly once (it gives the connection back); a scheduler prepares its messages while
        the server runs the script."""
        if not changes:
            return list
        layout = self.layout
        keys = [layout.lock_key, layout.schedule_key, layout.invalid_key]
        keys += [change.entry.key for change in changes if change.op != "b"]

        def args() -> list[str | bytes | int | float]:
            words: list[str | bytes | int | float] = [token]
            for change in changes:
                words += [change.op, change.entry.key, *change.entry.as_read(),
                          change.meta or change.note, change.score]
            return words

        finish = self._evalsha_begin(self._commit, keys, args,
                                     packed=(1 + 8 * len(changes), _pack_changes(token, changes)))

        def result() -> list[bool] | None:
            flags = finish()
            return None if flags == -1 else [bool(flag) for flag in flags]

        return result

    def _evalsha(self, script: Any, keys: Sequence[str], args: Sequence[str | bytes | int | float]
                 ) -> Any:
        return self._evalsha_begin(script, keys, lambda: args)()

    def _evalsha_begin(self, script: Any, keys: Sequence[str],
                       args: Callable[[], Sequence[str | bytes | int | float]], *,
                       packed: tuple[int, bytes] | None = None) -> Callable[[], Any]:
        """Send a registered script, packed by hand (a commit carries thousands of arguments:
        redis-py packs each in Python), with ``packed`` = (count, RESP bulk strings) standing
        for ``args()`` when given; the function returned reads its reply with hiredis. Other
        clients (Cluster), or no hiredis: redis-py, when the function is called. A server that
        lost the script (restart, SCRIPT FLUSH) gets it again through redis-py."""
        if not keys or not _can_pipeline(self.client):
            return lambda: script(keys=keys, args=args())
        if packed is None:
            values = [a if isinstance(a, str | bytes) else repr(a) for a in args()]
            packed = (len(values), _pack(tuple(values))[len(b"*%d\r\n" % len(values)):])
        head = _pack((b"EVALSHA", script.sha, str(len(keys)), *keys))
        count = 3 + len(keys) + packed[0]
        payload = b"*%d\r\n" % count + head[head.index(b"\r\n") + 2:] + packed[1]
        receive = _bulk_begin(self.client, payload, 1)
        assert receive is not None  # the client can pipeline (checked above)

        def finish() -> Any:
            [reply] = receive()
            if isinstance(reply, Exception):
                if str(reply).startswith("NOSCRIPT"):
                    return script(keys=keys, args=args())
                raise redis.ResponseError(str(reply))
            return reply

        return finish

    def sync_statics(self, token: str, entries: Sequence[StaticEntry],
                     stale: Iterable[str]) -> bool:
        """Install ``entries`` (definition always, meta only if absent, score) and delete the
        ``stale`` static names, fenced by the token; False if the lock is not ours."""
        layout = self.layout
        stale = list(stale)
        keys = [layout.lock_key, layout.schedule_key, layout.statics_key, layout.invalid_key]
        keys += [layout.entry_key(e.name) for e in entries]
        keys += [layout.entry_key(name) for name in stale]
        args: list[str | int] = [token, len(entries)]
        for e in entries:
            args += [e.name, e.definition, e.meta, e.score, e.extensions]
        args += stale
        return bool(self._statics(keys=keys, args=args) == 1)

    def statics(self) -> set[str]:
        return {_text(n) for n in self.client.smembers(self.layout.statics_key)}

    def read_meta(self, names: Sequence[str]) -> list[bytes | None]:
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            pipe.hget(self.layout.entry_key(name), "meta")
        return list(pipe.execute())

    # ------------------------------------------------------------------------ status

    def publish_status(self, token: str, fields: Mapping[str, str]) -> bool:
        """Replace the scheduler status hash, fenced by the token."""
        args: list[str] = [token]
        for name, value in fields.items():
            args += [name, value]
        keys = [self.layout.lock_key, self.layout.scheduler_key]
        return bool(self._status(keys=keys, args=args) == 1)

    def prune_invalid(self, token: str, cursor: int = 0, count: int = 200) -> int:
        """Drop the notes of members that left the schedule index, one HSCAN page of the
        invalid-entries hash per call, fenced by the token; the cursor for the next call."""
        cursor, page = self.client.hscan(self.layout.invalid_key, cursor, count=count)
        if page:
            keys = [self.layout.lock_key, self.layout.schedule_key, self.layout.invalid_key]
            self._prune(keys=keys, args=[token, *page])
        return int(cursor)

    def status(self) -> dict[str, str]:
        return {_text(k): _text(v)
                for k, v in self.client.hgetall(self.layout.scheduler_key).items()}

    def invalid(self, count: int = 1000) -> dict[str, str]:
        """The entries the scheduler backed off as invalid (key -> JSON note), at most ``count``."""
        found: dict[str, str] = {}
        if count <= 0:
            return found
        for key, value in self.client.hscan_iter(self.layout.invalid_key, count=100):
            found[_text(key)] = _text(value)
            if len(found) >= count:
                break
        return found

    def counts(self) -> dict[str, int]:
        """Sizes of the schedule index, the invalid-entries hash and the statics set."""
        pipe = self.client.pipeline(transaction=False)
        pipe.zcard(self.layout.schedule_key)
        pipe.zcount(self.layout.schedule_key, "-inf", "(0")
        pipe.hlen(self.layout.invalid_key)
        pipe.scard(self.layout.statics_key)
        scheduled, exhausted, invalid, statics = pipe.execute()
        return {"scheduled": int(scheduled), "exhausted": int(exhausted),
                "invalid": int(invalid), "statics": int(statics)}
