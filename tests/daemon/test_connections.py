"""``beatspec run`` over the connections the audit supports: a least-privilege ACL user, TLS
(server-verified and mutual), Sentinel, and a three-node Redis Cluster with a hash-tag prefix;
each through the options and through their ``BEATSPEC_*`` variables.

Every test starts the servers it needs with the audit's factory (``servers``, ``tls_certs`` from
tests/audit/conftest.py, loaded here as ``audit_kit``), writes due entries, runs the real CLI as a
subprocess (``beatspec run --once``, as an operator would) with a throwaway Redis as the broker,
and checks that each entry fired: a message in the broker's ``celery`` queue, ``meta`` advanced,
the score moved to the next run.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import redis
from daemon_kit import beatspec_command, interval, messages, run_count, wait_until, write_entry

from beatspec._cli_run import SCHEDULER_COMMANDS, acl_setuser, hash_tag
from beatspec.testing import Namespace


def _audit_kit() -> ModuleType:
    """tests/audit/conftest.py as a module of its own: tests/ is no package, and pytest imports
    every conftest.py under the one name "conftest"."""
    name = "audit_kit"
    if name not in sys.modules:
        path = Path(__file__).resolve().parents[1] / "audit" / "conftest.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


audit_kit = _audit_kit()
servers = audit_kit.servers  # fixture: a ServerFactory per test
tls_certs = audit_kit.tls_certs  # fixture: a throwaway CA, server and client certificates
closed_port = audit_kit.closed_port  # fixture: a loopback port nobody listens on

README = Path(__file__).resolve().parents[2] / "README.md"
PREFIX = "redbeat:"
TAGGED = "{redbeat}:"
PASSWORD = "s3cret-pw"
#: what redis-py's RedisCluster sends to learn the topology (README: an ACL user on Cluster)
CLUSTER_DISCOVERY = ("+cluster|slots", "+command")


# -- running the CLI -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    code: int
    out: str  # stdout and stderr

    def __str__(self) -> str:
        return f"exit {self.code}\n{self.out[-4000:]}"


def _env(env: dict[str, str] | None) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BEATSPEC_")}
    return {**clean, **(env or {})}


def beatspec_run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Run:
    """``beatspec run ARGS`` to completion (no BEATSPEC_* of ours leaks in but ``env``)."""
    proc = subprocess.run([*beatspec_command(), "run", *args], capture_output=True, text=True,
                          env=_env(env), timeout=timeout, check=False)
    return Run(proc.returncode, proc.stdout + proc.stderr)


def once(redis_url: str, broker: Namespace, *args: str, prefix: str = PREFIX,
         env: dict[str, str] | None = None) -> Run:
    return beatspec_run("--once", "--redis", redis_url, "--broker", broker.url,
                        "--prefix", prefix, *args, env=env)


# -- entries ---------------------------------------------------------------------------------------


def due(client: Any, name: str, prefix: str = PREFIX) -> str:
    """A never-run 60 s interval entry with score 0: due now. Returns its key."""
    return write_entry(client, prefix, name, task=f"tests.{name}", schedule=interval(60))


def assert_fired(client: Any, broker: Namespace, *keys: str, prefix: str = PREFIX) -> None:
    """Each entry fired once: its message is in the queue, meta counts one run, and its score
    is the next run (about 60 s ahead)."""
    tasks = [m.task for m in messages(broker.client())]
    for key in keys:
        task = "tests." + key[len(prefix):]
        assert tasks.count(task) == 1, (task, tasks)
        assert run_count(client, key) == 1, key
        score = client.zscore(prefix + ":schedule", key)
        assert score is not None and score > time.time() + 30, (key, score)


# -- ACL -------------------------------------------------------------------------------------------


def _readme_acl() -> str:
    match = re.search(r"^ACL SETUSER beatspec .*$", README.read_text(encoding="utf-8"),
                      re.MULTILINE)
    assert match, "README has no 'ACL SETUSER beatspec' line"
    return match.group(0)


def _commands_run(admin: redis.Redis) -> set[str]:
    """Commands the server ran at least once since CONFIG RESETSTAT (Lua's calls included)."""
    stats = admin.info("commandstats")
    return {name.removeprefix("cmdstat_") for name, row in stats.items() if row["calls"] > 0}


def test_readme_acl_is_the_schedulers() -> None:
    """The README's copyable line is the one the tests use (and the daemon's hint prints)."""
    assert _readme_acl() == acl_setuser("beatspec", PREFIX, "secret")


def test_acl_user_with_the_documented_commands(servers: Any, broker_ns: Namespace,
                                               tmp_path: Path) -> None:
    """A user limited to ``~redbeat:*`` and the README's commands runs every path of the
    scheduler (fire, back-off, statics sync and deletion, the declaration, pruning notes, lock
    extension, --once finding the lock taken) without one refusal, and each granted command is
    used: the list is both sufficient and minimal."""
    server = servers.plain()
    admin = server.client()
    host = f"127.0.0.1:{server.port}"
    admin.execute_command(*acl_setuser("scheduler", PREFIX, PASSWORD).split())
    admin.hset(PREFIX + ":beatspec", mapping={"version": "1.0", "profile": "core"})
    fires = [due(admin, "acl-ping"), due(admin, "acl-pong")]
    bad = write_entry(admin, PREFIX, "acl-bad", schedule={"__type__": "interval", "every": 1.0})
    admin.zadd(PREFIX + ":schedule", {"bare-name": 0})  # ZSET-1: a key the user may not read
    write_entry(admin, PREFIX, "gone-static", schedule=interval(3600), score=4e9)
    admin.sadd(PREFIX + ":statics", "gone-static")
    admin.hset(PREFIX + ":invalid", PREFIX + "long-gone", "{}")
    schedule = tmp_path / "schedule.toml"
    schedule.write_text('[nightly]\ntask = "tests.nightly"\n'
                        'schedule = { __type__ = "interval", every = 86400.0, relative = false }\n',
                        encoding="utf-8")
    admin.config_resetstat()

    run = once(f"redis://scheduler:{PASSWORD}@{host}/0", broker_ns, "--schedule", str(schedule))
    assert run.code == 0, run
    assert PASSWORD not in run.out

    # the same user from BEATSPEC_REDIS_USERNAME/PASSWORD, as a daemon extending its lock
    env = {"BEATSPEC_REDIS_URL": f"redis://{host}/0", "BEATSPEC_BROKER_URL": broker_ns.url,
           "BEATSPEC_REDIS_USERNAME": "scheduler", "BEATSPEC_REDIS_PASSWORD": PASSWORD,
           "BEATSPEC_LOCK_TTL": "2", "BEATSPEC_MAX_INTERVAL": "0.2"}
    daemon = subprocess.Popen([*beatspec_command(), "run"], env=_env(env),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: "pexpire" in _commands_run(admin), 15, what="a lock extension")
        taken = once(f"redis://scheduler:{PASSWORD}@{host}/0", broker_ns)
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=15)
    used = _commands_run(admin)
    assert daemon.returncode == 0, out
    assert taken.code == 1 and "is held by" in taken.out, taken

    assert admin.acl_log() == [], "a command or key was refused"
    assert set(SCHEDULER_COMMANDS) <= used, set(SCHEDULER_COMMANDS) - used
    assert_fired(admin, broker_ns, *fires)
    assert admin.hexists(PREFIX + ":invalid", bad)
    assert not admin.hexists(PREFIX + ":invalid", PREFIX + "long-gone")
    assert admin.smembers(PREFIX + ":statics") == {b"nightly"}
    assert not admin.exists(PREFIX + "gone-static")
    assert not admin.exists(PREFIX + ":lock")


def test_acl_user_without_write_rights_gets_a_clear_error(servers: Any,
                                                           broker_ns: Namespace) -> None:
    """A read-only user (the audit's ACL of spec §13.2) is refused at the first write: exit 3
    with the NOPERM reason and the ACL line to grant, no traceback, no password, nothing
    written; the daemon (without --once) stops at start the same way instead of retrying."""
    server = servers.plain()
    admin = server.client()
    host = f"127.0.0.1:{server.port}"
    admin.execute_command("ACL", "SETUSER", "reader", "on", f">{PASSWORD}", "~redbeat:*",
                          "resetchannels", "-@all", "+ping", "+scan", "+type", "+hgetall",
                          "+zscore", "+zscan", "+zcard", "+sscan", "+get", "+pttl", "+info")
    key = due(admin, "ro-ping")
    before = admin.hgetall(key), admin.zscore(PREFIX + ":schedule", key)
    url = f"redis://reader:{PASSWORD}@{host}/0"
    runs = [once(url, broker_ns),
            beatspec_run(env={"BEATSPEC_REDIS_URL": url, "BEATSPEC_BROKER_URL": broker_ns.url},
                         timeout=30)]
    for run in runs:
        assert run.code == 3, run
        assert "Traceback" not in run.out, run
        assert PASSWORD not in run.out, run
        assert "refused a command (NOPERM)" in run.out and "'set' command" in run.out, run
        assert acl_setuser("reader", PREFIX) in run.out, run
    assert (admin.hgetall(key), admin.zscore(PREFIX + ":schedule", key)) == before
    assert not admin.exists(PREFIX + ":lock")
    assert messages(broker_ns.client()) == []


# -- TLS -------------------------------------------------------------------------------------------


def test_tls_server_verified(servers: Any, tls_certs: Any, broker_ns: Namespace) -> None:
    """rediss:// verified against the CA from --tls-ca-cert or BEATSPEC_TLS_CA_CERT (and, for
    testing, BEATSPEC_TLS_INSECURE); a CA that did not sign the server's certificate is a
    clear exit 3."""
    server = servers.tls(tls_certs)
    admin = server.client()
    first, second, third = due(admin, "tls-opt"), due(admin, "tls-env"), due(admin, "tls-insec")

    run = once(server.url, broker_ns, "--tls-ca-cert", str(tls_certs.ca))
    assert run.code == 0, run
    assert_fired(admin, broker_ns, first)

    run = beatspec_run("--once", env={
        "BEATSPEC_REDIS_URL": server.url, "BEATSPEC_BROKER_URL": broker_ns.url,
        "BEATSPEC_TLS_CA_CERT": str(tls_certs.ca)})
    assert run.code == 0, run
    run = once(server.url, broker_ns, env={"BEATSPEC_TLS_INSECURE": "1"})
    assert run.code == 0, run
    assert_fired(admin, broker_ns, first, second, third)

    admin.zadd(PREFIX + ":schedule", {first: 0})
    for env in ({}, {"BEATSPEC_TLS_CA_CERT": str(tls_certs.other_ca)}):
        run = once(server.url, broker_ns, env=env)
        assert run.code == 3, run
        assert "certificate verify failed" in run.out and "Traceback" not in run.out, run
    assert run_count(admin, first) == 1


def test_mutual_tls(servers: Any, tls_certs: Any, broker_ns: Namespace) -> None:
    """A server that requires a client certificate: given by --tls-cert/--tls-key or by
    BEATSPEC_TLS_CERT/BEATSPEC_TLS_KEY; without one the start fails with exit 3."""
    server = servers.tls(tls_certs, auth_clients="yes")
    admin = server.client()
    first, second = due(admin, "mtls-opt"), due(admin, "mtls-env")
    run = once(server.url, broker_ns, "--tls-ca-cert", str(tls_certs.ca),
               "--tls-cert", str(tls_certs.client_cert), "--tls-key", str(tls_certs.client_key))
    assert run.code == 0, run
    run = once(server.url, broker_ns, env={
        "BEATSPEC_TLS_CA_CERT": str(tls_certs.ca), "BEATSPEC_TLS_CERT": str(tls_certs.client_cert),
        "BEATSPEC_TLS_KEY": str(tls_certs.client_key)})
    assert run.code == 0, run
    assert_fired(admin, broker_ns, first, second)

    admin.zadd(PREFIX + ":schedule", {first: 0})
    run = once(server.url, broker_ns, "--tls-ca-cert", str(tls_certs.ca))
    assert run.code == 3 and "Traceback" not in run.out, run
    assert run_count(admin, first) == 1


# -- Sentinel --------------------------------------------------------------------------------------


def test_sentinel(servers: Any, broker_ns: Namespace, closed_port: int) -> None:
    """The master is found through a Sentinel (the URL's host is ignored): by --sentinel and
    --sentinel-service, and by BEATSPEC_SENTINEL (several, space-separated) and
    BEATSPEC_SENTINEL_SERVICE, with the master's password from BEATSPEC_REDIS_PASSWORD."""
    master = servers.plain(password=PASSWORD)
    sentinel = servers.sentinel(master, service="beat-master", auth_pass=PASSWORD)
    admin = master.client()
    first, second = due(admin, "sentinel-opt"), due(admin, "sentinel-env")

    run = once("redis://nowhere.invalid/0", broker_ns, "--sentinel", f"127.0.0.1:{sentinel.port}",
               "--sentinel-service", "beat-master", "--password", PASSWORD)
    assert run.code == 0, run
    run = beatspec_run("--once", env={
        "BEATSPEC_REDIS_URL": "redis://nowhere.invalid/0", "BEATSPEC_BROKER_URL": broker_ns.url,
        "BEATSPEC_SENTINEL": f"127.0.0.1:{sentinel.port} 127.0.0.1:{closed_port}",
        "BEATSPEC_SENTINEL_SERVICE": "beat-master", "BEATSPEC_REDIS_PASSWORD": PASSWORD})
    assert run.code == 0, run
    assert_fired(admin, broker_ns, first, second)

    run = once("redis://nowhere.invalid/0", broker_ns, "--sentinel", f"127.0.0.1:{sentinel.port}",
               "--password", PASSWORD)  # the default service name, mymaster, is unknown
    assert run.code == 3 and "Traceback" not in run.out and PASSWORD not in run.out, run


# -- Cluster ---------------------------------------------------------------------------------------


def three_node_cluster(factory: Any) -> list[Any]:
    """Three empty Cluster nodes from the audit's factory, the slots split between them, joined
    with CLUSTER MEET; returned once every node sees three masters and ``cluster_state:ok``."""
    nodes = []
    for _ in range(3):
        workdir = factory._workdir()
        nodes.append(factory._start(
            lambda port, workdir=workdir: [
                "--port", str(port), *factory._base(workdir), "--cluster-enabled", "yes",
                "--cluster-config-file", str(workdir / "nodes.conf"),
                "--cluster-node-timeout", "2000"],
            lambda port: f"redis://127.0.0.1:{port}/0", factory._ping,
            what="redis-server cluster node", workdir=workdir, pick_port=audit_kit.cluster_port))
    bounds = [0, 5461, 10923, 16384]
    for i, node in enumerate(nodes):
        with node.client() as client:
            client.execute_command("CLUSTER", "ADDSLOTS", *range(bounds[i], bounds[i + 1]))
            if i:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", nodes[0].port)

    def ready() -> bool:
        for node in nodes:
            with node.client() as client:
                info = client.execute_command("CLUSTER", "INFO")
                text = info.decode() if isinstance(info, bytes) else str(info)
                if "cluster_state:ok" not in text or "cluster_known_nodes:3" not in text:
                    return False
                if len(client.execute_command("CLUSTER", "SLOTS")) != 3:
                    return False
        return True

    wait_until(ready, 30, 0.1, what="a three-node cluster")
    return nodes


def test_hash_tag() -> None:
    assert hash_tag("{redbeat}:") == "redbeat"
    assert hash_tag("app:{beat}:") == "beat"
    assert hash_tag("{a}{b}") == "a"
    for untagged in ("redbeat:", "{}:", "{redbeat:", "}{", "redbeat}:"):
        assert hash_tag(untagged) is None, untagged


def test_cluster_with_a_hash_tag_prefix(servers: Any, broker_ns: Namespace) -> None:
    """On three masters, the prefix ``{redbeat}:`` keeps every key of the keyspace in one slot,
    so each Lua script runs there: entries fire via --cluster from a node that does not own
    that slot, and via BEATSPEC_CLUSTER under the README's ACL user (plus the cluster discovery
    commands the README names). Without --cluster, that node answers MOVED: exit 3 with a hint
    to add --cluster."""
    from redis.cluster import RedisCluster, key_slot

    nodes = three_node_cluster(servers)
    admin = RedisCluster(host="127.0.0.1", port=nodes[0].port)
    try:
        slot = key_slot(TAGGED.encode())
        assert {key_slot((TAGGED + s).encode()) for s in (":lock", ":schedule", "x")} == {slot}
        # without the tag, the same keys would lie on different nodes
        untagged = {admin.get_node_from_key(PREFIX + s).port for s in (":lock", ":schedule",
                                                                        ":statics", "a", "b")}
        assert len(untagged) > 1
        owner = admin.get_node_from_key(TAGGED).port
        other = next(n for n in nodes if n.port != owner)
        first, second = due(admin, "cluster-opt", TAGGED), due(admin, "cluster-env", TAGGED)

        run = once(other.url, broker_ns, "--cluster", prefix=TAGGED)
        assert run.code == 0, run
        for node in nodes:  # the README's user, plus the client's discovery of the cluster
            with node.client() as client:
                client.execute_command(*acl_setuser("scheduler", TAGGED, PASSWORD).split(),
                                       *CLUSTER_DISCOVERY)
        run = beatspec_run("--once", env={
            "BEATSPEC_REDIS_URL": f"redis://127.0.0.1:{owner}/0",
            "BEATSPEC_BROKER_URL": broker_ns.url, "BEATSPEC_PREFIX": TAGGED,
            "BEATSPEC_CLUSTER": "1", "BEATSPEC_REDIS_USERNAME": "scheduler",
            "BEATSPEC_REDIS_PASSWORD": PASSWORD})
        assert run.code == 0, run
        assert_fired(admin, broker_ns, first, second, prefix=TAGGED)
        assert admin.exists(TAGGED + ":lock") == 0
        for node in nodes:
            with node.client() as client:
                assert client.acl_log() == [], node.port

        admin.zadd(TAGGED + ":schedule", {first: 0})
        run = once(other.url, broker_ns, prefix=TAGGED)
        assert run.code == 3, run
        assert "MOVED" in run.out and "add --cluster" in run.out, run
        assert "Traceback" not in run.out, run
        assert run_count(admin, first) == 1
    finally:
        admin.close()


def test_cluster_prefix_without_hash_tag_is_a_usage_error(closed_port: int,
                                                          broker_ns: Namespace) -> None:
    """With --cluster (or BEATSPEC_CLUSTER), a prefix without a hash tag cannot work (its keys
    span slots, and each write is one script over them): exit 2, naming a tagged prefix to use,
    before connecting (the URL names a closed port: connecting would exit 3)."""
    url = f"redis://127.0.0.1:{closed_port}/0"
    runs = [
        once(url, broker_ns, "--cluster"),
        once(url, broker_ns, "--cluster", prefix="{}:"),
        beatspec_run("--once", env={"BEATSPEC_REDIS_URL": url,
                                    "BEATSPEC_BROKER_URL": broker_ns.url,
                                    "BEATSPEC_PREFIX": "myapp:beat:", "BEATSPEC_CLUSTER": "1"}),
    ]
    for run, tagged in zip(runs, ("{redbeat}:", "{redbeat}:", "{myapp:beat}:"), strict=True):
        assert run.code == 2, run
        assert "has no hash tag" in run.out and f"--prefix '{tagged}'" in run.out, run
        assert "Traceback" not in run.out, run
    run = once(url, broker_ns, "--cluster", prefix=TAGGED)
    assert run.code == 3, run  # a tagged prefix passes the check
