"""The audit never crashes on arbitrary data and classifies every key (issue C, item 8)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beatspec.audit import AuditOptions, run_audit
from beatspec.findings import Outcome
from beatspec.keyspace import Keyspace, Layout
from beatspec.testing import Namespace

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(["__type__", "name", "task", "every", "relative",
                                       "minute", "year", "timezone", "x"]), inner, max_size=4),
    max_leaves=12,
)
field_values = st.one_of(
    st.binary(max_size=60),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([b"", b"{}", b"null", b'{"last_run_at": null}', b"\xff\xfe", b"[" * 100]),
)
hashes = st.dictionaries(
    st.sampled_from(["definition", "meta", "extensions", "other", "\u00e9"]), field_values,
    min_size=1, max_size=4,
)
scores = st.one_of(st.none(), st.floats(allow_nan=False), st.sampled_from([-1.0, 0.0, 1e13]))


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(entries=st.lists(st.tuples(hashes, scores), min_size=1, max_size=8))
def test_arbitrary_hashes_never_crash_the_audit(
    redis_ns: Namespace, entries: list[tuple[dict[str, bytes], float | None]]
) -> None:
    prefix = redis_ns.prefix
    with redis_ns.client() as client:
        client.delete(*[prefix + f"e{i}" for i in range(8)], prefix + ":schedule")
        for index, (fields, score) in enumerate(entries):
            key = prefix + f"e{index}"
            client.hset(key, mapping=fields)
            if score is not None:
                client.zadd(prefix + ":schedule", {key: score})
        result = run_audit(Keyspace(client, Layout(prefix)), AuditOptions(batch=3))
    classified = result.counts["entries"] + result.counts["other keys"]
    assert classified == len(entries)
    for finding in result.findings:
        assert finding.rule and finding.message and finding.hint
        assert finding.outcome in set(Outcome)
    assert result.counts["invalid entries"] <= result.counts["entries"]
    # every entry that breaks a document MUST rule is counted as invalid
    document_failures = {f.key for f in result.findings
                         if f.outcome is Outcome.FAILED and f.field is not None}
    assert len(document_failures) <= result.counts["invalid entries"]


def test_workers_give_the_same_result_as_one_process(redis_ns: Namespace) -> None:
    """--workers splits the key pass between processes; the findings and counts stay the same."""
    prefix = redis_ns.prefix
    good = json.dumps({"name": "{n}", "task": "t", "args": [], "kwargs": {}, "options": {},
                       "schedule": {"__type__": "interval", "every": 60.0, "relative": False},
                       "enabled": True})
    with redis_ns.client() as client:
        for i in range(300):
            name = f"e{i}"
            fields = {"definition": good.replace("{n}", name),
                      "meta": '{"last_run_at": null}'}
            if i % 7 == 0:
                fields["definition"] = fields["definition"].replace(', "relative": false', "")
            if i % 11 == 0:
                del fields["meta"]
            client.hset(prefix + name, mapping=fields)
            if i % 5:
                client.zadd(prefix + ":schedule", {prefix + name: 0 if i % 3 else 1e13})
        client.set(prefix + "stray", "x")
        client.zadd(prefix + ":schedule", {"bare": 0})
        now = datetime.now(UTC)  # one clock for both: the hints quote due times
        one = run_audit(Keyspace(client, Layout(prefix)),
                        AuditOptions(batch=17, workers=1, now=now))
        two = run_audit(Keyspace(client, Layout(prefix)),
                        AuditOptions(batch=17, workers=3, now=now))
    assert one.totals == two.totals
    assert one.counts == two.counts
    assert sorted(map(repr, one.findings)) == sorted(map(repr, two.findings))
    assert one.count(Outcome.FAILED) > 0


def test_streamed_reads_equal_single_reads_and_leave_the_connection_clean(
    redis_ns: Namespace,
) -> None:
    """stream_hashes sends each batch's reads before the previous batch is handed out; stopping
    early must not leave unread replies on a pooled connection."""
    prefix = redis_ns.prefix
    with redis_ns.client() as client:
        for i in range(40):
            client.hset(prefix + f"e{i}", mapping={"definition": f"d{i}", "meta": f"m{i}"})
            if i % 3:
                client.zadd(prefix + ":schedule", {prefix + f"e{i}": i})
        client.set(prefix + "stray", "x")
        keyspace = Keyspace(client, Layout(prefix))
        batches = [sorted(batch) for batch in keyspace.scan_raw(7)]
        streamed = list(keyspace.stream_hashes(iter(batches)))
        assert [keys for keys, _ in streamed] == [b for b in batches if b]
        for keys, reads in streamed:
            assert reads == keyspace.read_hashes(keys)
            assert reads == keyspace.read_hashes([k.decode() for k in keys])
        stream = keyspace.stream_hashes(iter(batches))
        next(stream)
        stream.close()  # a batch's replies are still unread
        assert keyspace.read_hashes([prefix + "e1", prefix + "stray"]) == [
            ({"definition": b"d1", "meta": b"m1"}, 1.0, True), ({}, None, False)]
