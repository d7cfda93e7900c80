"""The Redis test plugin: a real server, isolated namespaces, and no foreign key ever deleted."""

from __future__ import annotations

import redis

from beatspec.testing import Namespace, RedisServer, find_redis_server


def test_a_real_server_answers(redis_server: RedisServer) -> None:
    with redis_server.client() as client:
        info = client.info("server")
    assert int(str(info["redis_version"]).split(".")[0]) >= 6


def test_binary_is_found() -> None:
    assert find_redis_server().endswith("redis-server")


def test_namespaces_are_isolated(redis_server: RedisServer) -> None:
    first, second = redis_server.namespace(), redis_server.namespace()
    try:
        assert (first.url, first.prefix) != (second.url, second.prefix)
        with first.client() as a, second.client() as b:
            a.set(first.prefix + "k", "1")
            assert b.get(second.prefix + "k") is None
    finally:
        first.cleanup()
        second.cleanup()


def test_cleanup_spares_keys_it_did_not_create(redis_server: RedisServer) -> None:
    ns = redis_server.namespace()
    foreign = f"foreign-{ns.token}-kept"
    with redis.Redis.from_url(ns.url) as client:
        client.set(ns.prefix + "mine", "1")
        client.set(foreign, "1")
        # a key whose name contains glob characters must not widen the cleanup pattern
        client.set(f"{ns.prefix[:-1]}x*", "1")
    try:
        if ns.owned:
            # a server we started: the namespace is a database of its own, flushed whole
            ns.cleanup()
            with redis.Redis.from_url(ns.url) as client:
                assert client.dbsize() == 0
        else:
            ns.cleanup()
            with redis.Redis.from_url(ns.url) as client:
                assert client.get(ns.prefix + "mine") is None
                assert client.get(foreign) == b"1"
    finally:
        with redis.Redis.from_url(ns.url) as client:
            client.delete(foreign, f"{ns.prefix[:-1]}x*")


def test_fixture_gives_a_usable_namespace(redis_ns: Namespace) -> None:
    with redis_ns.client(decode_responses=True) as client:
        client.hset(redis_ns.prefix + "entry", "definition", "{}")
        assert client.hget(redis_ns.prefix + "entry", "definition") == "{}"
