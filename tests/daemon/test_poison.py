"""Poison entries: every malformed case of the conformance vectors, in one keyspace beside valid
entries, under a running ``beatspec run``.

Invalid entries (a decode finding with outcome FAILED, a member without hash, a bare-name
member, a key of the wrong type) are never fired, never deleted, backed off and listed in
``prefix + ":invalid"`` and by ``beatspec status``; valid entries beside them fire on time and
the daemon never crashes (spec §10, §11.5; user-needs: a bad entry must not stop the schedule).
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis
from daemon_kit import (
    Collector,
    DaemonFactory,
    beatspec_command,
    definition_json,
    interval,
    meta_json,
    run_count,
    wait_until,
    write_entry,
)

from beatspec._keyspace_vectors import load_keyspace_scenarios, substitute
from beatspec.findings import Outcome
from beatspec.testing import Namespace
from beatspec.validate import Kind, validate_document
from beatspec.vectors import Case, load_cases

NEVER_RUN_META = meta_json(None, 0)
# decode failures of a stored entry; the index rules below are about scores, not decoding
_SCORE_RULES = {"ZSET-2", "ZSET-3", "ZSET-4", "ZSET-5"}


@dataclass
class Poison:
    """One invalid schedule member as written, and the rules the daemon may report for it."""

    member: str  # the member of the schedule index (a key, or a bare name)
    source: str  # which vector it comes from
    rules: frozenset[str]
    key_type: str = "hash"
    value: Any = None  # hash: {field: bytes}; string: bytes; list: [bytes]; None: no key


def _name_replaced(data: bytes, old: str, new: str) -> bytes:
    """The text with its definition name ``old`` renamed ``new`` (only an exact, single
    ``"name": "old"``), so that the key suffix matches and only the case's own rule breaks."""
    needle = f'"name": {json.dumps(old)}'.encode()
    if data.count(needle) != 1:
        return data
    return data.replace(needle, f'"name": {json.dumps(new)}'.encode())


def _broken(fields: dict[str, bytes], name: str) -> set[str]:
    """The rules the reference validator finds broken in the entry as stored."""
    document = {k: v.decode("utf-8", "surrogateescape") for k, v in fields.items()}
    try:
        _, report = validate_document(json.dumps(document).encode(), Kind("entry"), name=name)
    except (ValueError, UnicodeEncodeError):
        return set()
    return {f.rule for f in report.findings if f.outcome is Outcome.FAILED}


def _document_poisons(prefix: str) -> Iterator[Poison]:
    """Every ``valid: false`` document vector as the field it describes, in an entry hash that
    is otherwise valid and due now (a never-run meta), under a key of its own."""
    for index, case in enumerate(c for c in load_cases() if not c.valid):
        name = f"doc-{index:03d}"
        fields = _document_fields(case, name, rename=True)
        broken = _broken(fields, name)
        if not broken:  # the case is about its name: keep it, and the key suffix differs
            fields = _document_fields(case, name, rename=False)
            broken = _broken(fields, name)
        rules = set(case.rules) | broken
        if b'"name": "' + name.encode() + b'"' not in fields.get("definition", b""):
            rules.add("DEF-2")  # the case's own name could not be kept as the key suffix
        if not any(k in fields for k in ("definition", "meta", "extensions")):
            rules.add("ZSET-6")  # an empty entry: no field the scheduler reads
            fields = {"x-empty": b"1"}
        yield Poison(prefix + name, f"{case.file}[{case.index}] {case.description}",
                     frozenset(rules), value=fields)


def _document_fields(case: Case, name: str, *, rename: bool) -> dict[str, bytes]:
    valid_definition = definition_json(name, f"poison.{name}", interval(1)).encode()
    if case.kind == "definition":
        data = case.data()
        if rename and case.has_document and isinstance(case.document, dict) \
                and isinstance(case.document.get("name"), str):
            data = _name_replaced(data, case.document["name"], name)
        return {"definition": data, "meta": NEVER_RUN_META.encode()}
    if case.kind == "meta":
        return {"definition": valid_definition, "meta": case.data()}
    if case.kind == "extensions":
        return {"definition": valid_definition, "meta": NEVER_RUN_META.encode(),
                "extensions": case.data()}
    assert case.kind == "entry" and isinstance(case.document, dict), case.where
    fields = {}
    for field, value in case.document.items():
        text = value if isinstance(value, str) else json.dumps(value)
        fields[field] = text.encode()
    if rename and "definition" in fields:
        fields["definition"] = _name_replaced(fields["definition"], "report", name)
    return fields


def _scenario_poisons(prefix: str) -> Iterator[Poison]:
    """The invalid schedule members of the keyspace scenarios: entries whose decoding fails,
    keys of another type (ENT-1), members without hash (ZSET-6) and bare names (ZSET-1), each
    renamed ``ks<n>-<name>`` (and its definition's name with it) so that all fit one keyspace.
    Scenarios whose only failures are about scores, the lock, the declaration, statics or the
    server are about keys the scheduler does not load as entries and are left out."""
    for n, scenario in enumerate(load_keyspace_scenarios()):
        p = "{P}"
        stored = {k.name: k for k in scenario.keys}
        index = stored.get(p + ":schedule")
        if index is None or index.type != "zset":
            continue
        failed = [f for f in scenario.findings if f.outcome is Outcome.FAILED]
        for member in index.scores:
            if not member.startswith(p):  # a bare name (ZSET-1)
                if any(f.rule == "ZSET-1" for f in failed):
                    yield Poison(f"ks{n}-{member}", f"{scenario.where}", frozenset({"ZSET-1"}),
                                 key_type="none")
                continue
            name = member[len(p):]
            new = f"ks{n}-{name}"
            rules = {f.rule for f in failed if f.key == member} - _SCORE_RULES
            key = stored.get(member)
            if key is None:
                if any(f.rule == "ZSET-6" for f in failed):
                    yield Poison(prefix + new, scenario.where, frozenset({"ZSET-6"}),
                                 key_type="none")
                continue
            if not rules:
                continue
            if key.type == "hash":
                fields = dict(key.fields)
                if "definition" in fields:
                    fields["definition"] = _name_replaced(fields["definition"], name, new)
                if fields.get("definition", b"").count(f'"name": "{new}"'.encode()) != 1:
                    rules.add("DEF-2")
                value: Any = fields
            elif key.type == "string":
                value = substitute(key.data.decode("utf-8", "surrogateescape"),
                                   prefix).encode("utf-8", "surrogateescape")
                rules.add("ENT-1")
            else:
                value = [substitute(m, prefix).encode() for m in key.members]
                rules.add("ENT-1")
            yield Poison(prefix + new, scenario.where, frozenset(rules), key.type, value)


def poisons(prefix: str) -> list[Poison]:
    out = [*_document_poisons(prefix), *_scenario_poisons(prefix)]
    members = [p.member for p in out]
    assert len(members) == len(set(members))
    return out


def write_poison(client: redis.Redis, prefix: str, poison: Poison) -> None:
    pipe = client.pipeline(transaction=True)
    if poison.key_type == "hash":
        pipe.hset(poison.member, mapping=poison.value)
    elif poison.key_type == "string":
        pipe.set(poison.member, poison.value)
    elif poison.key_type == "list":
        pipe.rpush(poison.member, *poison.value)
    pipe.zadd(prefix + ":schedule", {poison.member: 0})
    pipe.execute()


def snapshot(client: redis.Redis, key: str) -> tuple[str, Any]:
    kind = client.type(key).decode()
    if kind == "hash":
        return kind, client.hgetall(key)
    if kind == "string":
        return kind, client.get(key)
    if kind == "list":
        return kind, client.lrange(key, 0, -1)
    return kind, None


def status_json(ns: Namespace) -> dict[str, Any]:
    out = subprocess.run([*beatspec_command(), "status", "--redis", ns.url, "--prefix",
                          ns.prefix, "--format", "json", "--count", "5"],
                         capture_output=True, timeout=60, check=True)
    return json.loads(out.stdout)


# ------------------------------------------------------------------------------ tests


def test_vectors_give_enough_poison() -> None:
    """The poison set covers every invalid document vector and the scheduler-relevant invalid
    keyspace scenarios (a guard that the loaders above still find them)."""
    found = poisons("redbeat:")
    documents = sum(1 for c in load_cases() if not c.valid)
    assert sum(1 for p in found if p.member.startswith("redbeat:doc-")) == documents > 300
    kinds = Counter(p.key_type for p in found if "doc-" not in p.member)
    assert kinds["hash"] >= 30 and kinds["string"] >= 1 and kinds["list"] >= 1
    assert kinds["none"] >= 2  # a dangling member and a bare name


def test_poison_keyspace(daemons: DaemonFactory, redis_ns: Namespace,
                         broker_ns: Namespace) -> None:
    """Every malformed vector (documents and keyspace scenarios, ~480 members) beside 20 valid
    entries due now (every 1-2 s) in one keyspace, under the daemon for a few seconds:

    * every valid entry fires at once and then once per slot (messages = total_run_count, no
      two runs closer than half the period, none missing over the run);
    * no invalid entry ever fires, none is deleted: every key is byte-identical, every member
      still in the index (the daemon only moves its score forward, with back-off);
    * each invalid member is noted in ``prefix:invalid`` with a rule ID the vector breaks, and
      ``beatspec status --format json`` counts and lists them;
    * each is logged once, although it is retried several times (back-off 1 s doubling);
    * the daemon never crashes and exits 0 on SIGTERM.
    """
    client = redis_ns.client()
    prefix = redis_ns.prefix
    bad = poisons(prefix)
    for poison in bad:
        write_poison(client, prefix, poison)
    valid = {}
    for i in range(20):
        every = 1 + i % 2
        valid[write_entry(client, prefix, f"valid-{i:02d}", task=f"valid.{i:02d}",
                          schedule=interval(every))] = (f"valid.{i:02d}", every)
    before = {p.member: snapshot(client, p.member) for p in bad}
    definitions = {k: client.hget(k, "definition") for k in valid}
    members = set(client.zrange(prefix + ":schedule", 0, -1))
    collector = Collector(broker_ns.url)
    try:
        started = time.time()
        daemon = daemons.start("--backoff-min", "1", "--backoff-max", "2", lock_ttl=3)
        wait_until(lambda: client.hlen(prefix + ":invalid") >= len(bad), 30,
                   what="every invalid member noted")
        wait_until(lambda: time.time() - started >= 6, 10)
        assert daemon.alive(), daemon.log_text()[-3000:]
        status = status_json(redis_ns)
        assert daemon.stop() == 0
        stopped = time.time()
        time.sleep(0.3)
        runs = collector.by_task()
    finally:
        collector.stop()

    # valid entries: on time, once per slot
    assert set(runs) == {task for task, _ in valid.values()}, "an invalid entry fired"
    for key, (task, every) in valid.items():
        got = runs[task]
        assert got[0].received - started < 5, f"{task} first fired late"
        times = [m.received for m in got]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(g > every * 0.5 for g in gaps), (task, gaps)
        assert len(got) == run_count(client, key), task
        assert len({m.id for m in got}) == len(got)
        assert len(got) >= (stopped - got[0].received) // every - 1, (task, len(got))
        assert client.hget(key, "definition") == definitions[key]

    # invalid entries: untouched, still scheduled, noted with their rule
    assert set(client.zrange(prefix + ":schedule", 0, -1)) == members
    notes = {k.decode(): json.loads(v) for k, v in
             client.hgetall(prefix + ":invalid").items()}
    assert set(notes) == {p.member for p in bad}
    wrong = []
    for poison in bad:
        assert snapshot(client, poison.member) == before[poison.member], poison.source
        rule = notes[poison.member]["rule"]
        if rule not in poison.rules:
            wrong.append(f"{poison.member} {poison.source}: {rule} not in {sorted(poison.rules)}")
    assert wrong == [], "\n".join(wrong)
    retried = [n for n in notes.values() if n["attempts"] >= 2]
    assert len(retried) > len(bad) // 2  # back-off 1 s, 2 s: most were looked at again

    # logged once per entry, though retried
    logged = Counter(line["key"] for line in daemon.events("invalid entry not fired"))
    assert set(logged) == {p.member for p in bad}
    assert max(logged.values()) == 1
    assert all(line.get("rule") for line in daemon.events("invalid entry not fired"))

    # beatspec status: counted, and listed with the rule
    assert status["counts"]["invalid"] == len(bad)
    assert len(status["invalid"]) == min(len(bad), 100)
    by_member = {p.member: p for p in bad}
    for item in status["invalid"]:
        assert item["rule"] in by_member[item["key"]].rules


def test_invalid_entry_logged_once_per_change_then_fixed(
        daemons: DaemonFactory, redis_ns: Namespace, broker_ns: Namespace) -> None:
    """An invalid entry is logged once per change (not once per retry): retried with back-off
    it stays silent; a writer's change to another invalid form is logged again with the new
    rule; once a writer fixes it, it fires at the next tick and leaves ``prefix:invalid`` and
    the status listing."""
    client = redis_ns.client()
    prefix = redis_ns.prefix
    key = prefix + "report"
    broken_task = definition_json("report", "", interval(1))  # DEF-4: empty task name
    client.hset(key, mapping={"definition": broken_task, "meta": NEVER_RUN_META})
    client.zadd(prefix + ":schedule", {key: 0})
    collector = Collector(broker_ns.url)
    try:
        daemon = daemons.start("--backoff-min", "1", "--backoff-max", "1")
        wait_until(lambda: json.loads(client.hget(prefix + ":invalid", key) or "{}")
                   .get("attempts", 0) >= 3, 15, what="three attempts")
        first = daemon.events("invalid entry not fired")
        assert [(e["key"], e["rule"]) for e in first] == [(key, "DEF-4")]
        # another invalid form: logged again, with its own rule
        client.hset(key, "definition", definition_json("reports", "proj.report", interval(1)))
        daemon.wait_log("invalid entry not fired", count=2)
        wait_until(lambda: json.loads(client.hget(prefix + ":invalid", key) or "{}")
                   .get("rule") == "DEF-2", 10, what="the new rule noted")
        assert [e["rule"] for e in daemon.events("invalid entry not fired")] == ["DEF-4", "DEF-2"]
        assert status_json(redis_ns)["invalid"][0]["rule"] == "DEF-2"
        assert collector.snapshot() == []
        # fixed by a writer: fires, and the note is dropped
        client.hset(key, "definition", definition_json("report", "proj.report", interval(1)))
        wait_until(lambda: collector.snapshot(), 10, what="the fixed entry to fire")
        wait_until(lambda: not client.hexists(prefix + ":invalid", key), 5,
                   what="the note to go")
        assert status_json(redis_ns)["invalid"] == []
        assert len(daemon.events("invalid entry not fired")) == 2
        assert daemon.stop() == 0
    finally:
        collector.stop()
    assert {m.task for m in collector.snapshot()} == {"proj.report"}
    assert re.fullmatch(r"[0-9a-f-]{36}", collector.snapshot()[0].id)


@pytest.mark.parametrize("kind", ["dangling", "string"])
def test_index_poison_recovers_when_repaired(daemons: DaemonFactory, redis_ns: Namespace,
                                             broker_ns: Namespace, kind: str) -> None:
    """A member without hash (ZSET-6) and a string at an entry key (ENT-1) are noted and never
    deleted; when a writer repairs the entry (writes the hash) the note goes and it fires."""
    client = redis_ns.client()
    prefix = redis_ns.prefix
    member = prefix + "lost"
    if kind == "string":
        client.set(member, "not a hash")
    client.zadd(prefix + ":schedule", {member: 0})
    collector = Collector(broker_ns.url)
    try:
        daemon = daemons.start("--backoff-min", "1", "--backoff-max", "1")
        wait_until(lambda: client.hexists(prefix + ":invalid", member), 15, what="the note")
        rule = json.loads(client.hget(prefix + ":invalid", member))["rule"]
        assert rule == {"dangling": "ZSET-6", "string": "ENT-1"}[kind]
        time.sleep(1.5)  # retried at least once: still there, still not deleted
        assert client.zscore(prefix + ":schedule", member) is not None
        assert client.type(member) == (b"string" if kind == "string" else b"none")
        client.delete(member)
        write_entry(client, prefix, "lost", task="tests.lost")
        wait_until(lambda: collector.snapshot(), 10, what="the repaired entry to fire")
        wait_until(lambda: not client.hexists(prefix + ":invalid", member), 5,
                   what="the note to go")
        assert daemon.alive()
        assert daemon.stop() == 0
    finally:
        collector.stop()


@pytest.mark.parametrize("kind", ["bare", "entry"])
def test_removed_invalid_member_leaves_the_list(daemons: DaemonFactory, redis_ns: Namespace,
                                                kind: str) -> None:
    """When a writer removes an invalid entry (the delete recipe, §12.4: ZREM + DEL) or a
    bare-name member (ZSET-1: ZREM), its note leaves ``prefix:invalid`` and ``beatspec
    status`` soon after: the list shows what is invalid now, not what once was."""
    client = redis_ns.client()
    prefix = redis_ns.prefix
    if kind == "bare":
        member = "report"
    else:
        member = prefix + "report"
        client.hset(member, mapping={"definition": definition_json("report", "", interval(1)),
                                     "meta": NEVER_RUN_META})
    client.zadd(prefix + ":schedule", {member: 0})
    daemon = daemons.start()
    wait_until(lambda: client.hexists(prefix + ":invalid", member), 15, what="the note")
    assert status_json(redis_ns)["counts"]["invalid"] == 1
    pipe = client.pipeline(transaction=True)
    pipe.zrem(prefix + ":schedule", member)
    if kind == "entry":
        pipe.delete(member)
    pipe.execute()
    wait_until(lambda: not client.hexists(prefix + ":invalid", member), 10,
               what="the stale note to go")
    status = status_json(redis_ns)
    assert status["counts"]["invalid"] == 0 and status["invalid"] == []
    assert daemon.alive()
    assert daemon.stop() == 0
