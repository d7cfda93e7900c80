"""``beatspec run`` (the scheduler daemon) and ``beatspec status``."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
import redis
from redis.exceptions import RedisClusterException

from beatspec._cli_redis import connection_options, options_from
from beatspec.connection import ConnectionFailed, ConnectionOptions, connect, redact
from beatspec.keyspace import Layout, glob_escape

__all__ = ["run_command", "status_command"]


def _use_config_file(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    """``--config FILE``: its ``[run]`` table supplies defaults (options and BEATSPEC_* win)."""
    if not value:
        return
    from beatspec.daemon.config import load_toml

    try:
        ctx.default_map = {**(ctx.default_map or {}), **load_toml(Path(value))}
    except (OSError, ValueError) as exc:
        raise click.BadParameter(f"{value}: {exc}", ctx=ctx, param=_param) from None


def layout_for(prefix: str, lock_key: str | None) -> Layout:
    """The layout, with RedBeat's rule for a configured lock key: a key that does not start
    with the prefix gets the prefix prepended (spec §2.2)."""
    if not lock_key:
        return Layout(prefix)
    suffix = lock_key[len(prefix):] if lock_key.startswith(prefix) else lock_key
    return Layout(prefix, lock_suffix=suffix)


#: What the scheduler sends: directly, then only from its Lua scripts (which pass every key in
#: KEYS). An ACL user needs these on the keys under the prefix (README, "Connections").
SCHEDULER_COMMANDS = (
    "ping", "set", "get", "pttl", "type", "hgetall", "hget", "hmget", "hscan", "hlen",
    "zrangebyscore", "zcard", "zcount", "scard", "smembers", "evalsha", "script|load",
    "pexpire", "del", "hset", "hsetnx", "hdel", "zadd", "zrem", "zscore", "sadd", "srem",
)


def acl_setuser(user: str, prefix: str, password: str = "<password>") -> str:
    """The least-privilege ``ACL SETUSER`` line for a scheduler on ``prefix``."""
    commands = " ".join("+" + name for name in SCHEDULER_COMMANDS)
    return (f"ACL SETUSER {user} on >{password} ~{glob_escape(prefix)}* resetchannels -@all "
            f"{commands}")


def hash_tag(key: str) -> str | None:
    """The Cluster hash tag of a key: the text between its first '{' and the next '}', when
    that is not empty (only this part is hashed to pick the slot)."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    return key[start + 1:end] if end > start + 1 else None


def _cluster_prefix_problem(prefix: str) -> str | None:
    """On Cluster, every key the scheduler touches starts with the prefix (the lock key too, see
    :func:`layout_for`); they share one slot, as its Lua scripts need, only if the prefix holds a
    hash tag."""
    if hash_tag(prefix) is not None:
        return None
    tagged = "{" + (prefix.rstrip(":").replace("{", "").replace("}", "") or "redbeat") + "}:"
    return (f"--prefix {prefix!r} has no hash tag: on Redis Cluster (--cluster) the lock, the "
            "schedule index and the entries must lie in one slot, because every write of the "
            "scheduler is one Lua script over them. Use a prefix with a hash tag, e.g. "
            f"--prefix '{tagged}' (and the same redbeat_key_prefix in the Celery app).")


def _refused(url: str, connection: ConnectionOptions, prefix: str,
             exc: Exception) -> NoReturn:
    """Report a Redis error that retrying cannot mend (a missing ACL permission, a Cluster node
    addressed without --cluster) or that ended --once, and exit 3."""
    text = str(exc)
    for secret in (connection.password, connection.sentinel_password):
        if secret:
            text = text.replace(secret, "***")
    if isinstance(exc, redis.exceptions.MovedError):
        text = f"MOVED {text}"  # redis-py keeps only the slot and the node
    denied = isinstance(exc, redis.exceptions.NoPermissionError)
    click.echo(f"error: Redis at {redact(url)}{' refused a command (NOPERM)' if denied else ''}: "
               f"{text}", err=True)
    if denied:
        user = connection.username or _url_user(url) or "<user>"
        click.echo("hint: the ACL user needs the scheduler's commands on the keys under the "
                   f"prefix:\n  {acl_setuser(user, prefix)}", err=True)
    elif isinstance(exc, redis.exceptions.MovedError) and not connection.cluster:
        click.echo("hint: the server is a Redis Cluster node: add --cluster "
                   "(and use a prefix with a hash tag, e.g. '{redbeat}:')", err=True)
    sys.exit(3)


def _url_user(url: str) -> str | None:
    from urllib.parse import urlsplit

    try:
        return urlsplit(url).username or None
    except ValueError:
        return None


def _fatal_at_start(exc: Exception) -> bool:
    """Errors at the first election that no retry mends: a missing ACL permission, or a
    Cluster node addressed without --cluster (MOVED)."""
    return isinstance(exc, redis.exceptions.NoPermissionError | redis.exceptions.MovedError)


F = TypeVar("F", bound=Callable[..., Any])


def _option(*names: str, env: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(*names, envvar=env, show_envvar=True, show_default=True, **kwargs)


@click.command("run")
@click.option("--config", type=click.Path(exists=True, dir_okay=False), envvar="BEATSPEC_CONFIG",
              show_envvar=True, is_eager=True, expose_value=False, callback=_use_config_file,
              help="TOML file whose [run] table sets any option below (option names as keys, "
              "e.g. lock-ttl = 5). Command-line options and BEATSPEC_* variables win.")
@_option("--redis", "redis_url", env="BEATSPEC_REDIS_URL", required=True, metavar="URL",
         help="The schedule's Redis: redis://, rediss://, unix://, or embedded:PATH for a "
         "private server persisted at PATH (needs beatspec[embedded]).")
@_option("--broker", "broker_url", env="BEATSPEC_BROKER_URL", required=True, metavar="URL",
         help="Celery broker URL (kombu): redis://…, amqp://…; 'embedded' = the embedded Redis.")
@_option("--prefix", env="BEATSPEC_PREFIX", default="redbeat:",
         help="Key prefix (RedBeat's redbeat_key_prefix). Use a hash tag, e.g. '{redbeat}:', "
         "on Redis Cluster.")
@_option("--lock-key", env="BEATSPEC_LOCK_KEY", default=None,
         help="Lock key (RedBeat's redbeat_lock_key)  [default: PREFIX + ':lock']")
@_option("--app-timezone", env="BEATSPEC_APP_TIMEZONE", default="UTC", metavar="TZ",
         help="Celery's timezone setting: crontabs are matched and meta written in it.")
@_option("--schedule", "schedule_file", env="BEATSPEC_SCHEDULE", default=None,
         type=click.Path(exists=True, dir_okay=False, path_type=Path),
         help="Static entries (TOML or JSON: name -> definition), synced by the leader at "
         "election and on SIGHUP, like beat_schedule.")
@_option("--lock-ttl", env="BEATSPEC_LOCK_TTL", default=10.0, type=click.FloatRange(2, 3600),
         metavar="S", help="Lock TTL in seconds; the leader extends it every TTL/3, and a "
         "standby takes over about one TTL after the leader dies.")
@_option("--retry-interval", env="BEATSPEC_RETRY_INTERVAL", default=1.0,
         type=click.FloatRange(0.05, 60), metavar="S",
         help="How often a standby tries to take the lock.")
@_option("--max-interval", env="BEATSPEC_MAX_INTERVAL", default=1.0,
         type=click.FloatRange(0.01, 1200), metavar="S",
         help="Longest sleep between ticks: new and changed entries take effect within it.")
@_option("--batch", env="BEATSPEC_BATCH", default=250, type=click.IntRange(1, 10_000),
         metavar="N", help="Due entries committed (one fenced script) and published per "
         "batch; due members are listed four batches at a time.")
@_option("--default-queue", env="BEATSPEC_DEFAULT_QUEUE", default="celery",
         help="Queue for entries without options.queue (Celery's task_default_queue).")
@_option("--backoff-min", env="BEATSPEC_BACKOFF_MIN", default=10.0,
         type=click.FloatRange(1, 86400), metavar="S",
         help="First retry delay of an invalid entry; doubles per unchanged retry.")
@_option("--backoff-max", env="BEATSPEC_BACKOFF_MAX", default=300.0,
         type=click.FloatRange(1, 86400), metavar="S", help="Longest retry delay.")
@_option("--metrics-port", env="BEATSPEC_METRICS_PORT", default=None, type=click.IntRange(0, 65535),
         metavar="P", help="Serve Prometheus metrics at http://HOST:P/metrics  [default: off]")
@_option("--metrics-host", env="BEATSPEC_METRICS_HOST", default="127.0.0.1",
         help="Address the metrics endpoint listens on.")
@_option("--log-format", env="BEATSPEC_LOG_FORMAT", default="text",
         type=click.Choice(["text", "json"]), help="Log lines on stderr: text, or JSON objects.")
@_option("--log-level", env="BEATSPEC_LOG_LEVEL", default="INFO",
         type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
         help="Least severe level logged.")
@click.option("--once", is_flag=True, envvar="BEATSPEC_ONCE", show_envvar=True,
              help="Take the lock, handle what is due now, release and exit (exit 1 if "
              "another scheduler holds the lock).")
@connection_options
def run_command(**kwargs: Any) -> None:
    """Run the scheduler: a drop-in for `celery beat -S redbeat.RedBeatScheduler`.

    It takes RedBeat's lock (so it never runs beside a RedBeat beat), fires due entries as
    Celery protocol-2 messages, and never crashes or stops on bad data: invalid entries are
    logged with their rule, backed off and listed by `beatspec status`. Delivery is at most
    once. SIGTERM/SIGINT finish the current batch and release the lock; SIGHUP re-reads
    --schedule.

    \b
    Exit codes: 0 stopped by a signal (or --once done), 1 --once found the lock taken,
    2 usage error (options, schedule file, a --cluster prefix without hash tag),
    3 Redis or the broker unreachable at start, or Redis refusing the scheduler's
    commands (ACL); with --once, any Redis error.
    """
    from beatspec.daemon.config import RunConfig
    from beatspec.daemon.embedded import EMBEDDED, EmbeddedRedis
    from beatspec.daemon.logs import LOGGER, setup_logging
    from beatspec.daemon.messages import Publisher, PublishFailed
    from beatspec.daemon.metrics import Metrics
    from beatspec.daemon.scheduler import Scheduler
    from beatspec.daemon.statics import ScheduleFileError
    from beatspec.keyspace.scheduling import ScheduleStore

    connection = options_from(kwargs)
    embedded = None
    if kwargs["redis_url"].startswith(EMBEDDED):
        try:
            embedded = EmbeddedRedis(kwargs["redis_url"][len(EMBEDDED):])
        except RuntimeError as exc:
            raise click.UsageError(str(exc)) from None
        kwargs["redis_url"] = embedded.url
    if kwargs["broker_url"] == "embedded":
        if embedded is None:
            raise click.UsageError("--broker embedded needs --redis embedded:PATH")
        kwargs["broker_url"] = embedded.broker_url
    try:
        ZoneInfo(kwargs["app_timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"unknown time zone {kwargs['app_timezone']!r}",
                                 param_hint="--app-timezone") from None
    config = RunConfig(connection=connection, **kwargs)
    problems = config.problems()
    slots = _cluster_prefix_problem(config.prefix) if connection.cluster else None
    if slots:
        problems.append(slots)
    if problems:
        raise click.UsageError("; ".join(problems))
    setup_logging(config.log_format, config.log_level)
    try:
        client = connect(config.redis_url, connection)
    except ConnectionFailed as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)
    publisher = Publisher(config.broker_url)
    try:
        publisher.check()
    except PublishFailed as exc:
        click.echo(f"error: broker {redact(config.broker_url)}: {exc}", err=True)
        sys.exit(3)
    metrics = Metrics()
    store = ScheduleStore(client, layout_for(config.prefix, config.lock_key))
    scheduler = Scheduler(config, store, publisher, metrics=metrics)
    try:
        scheduler.load_statics()
    except ScheduleFileError as exc:
        raise click.UsageError(str(exc)) from None
    if config.metrics_port is not None:
        metrics.serve(config.metrics_port, config.metrics_host)
    LOGGER.info("beatspec run starting", extra={
        "redis": redact(config.redis_url), "broker": redact(config.broker_url),
        "prefix": config.prefix, "lock": store.layout.lock_key, "lock_ttl": config.lock_ttl})
    try:
        if config.once:
            try:
                took = scheduler.run_once()
                holder = None if took else store.holder()[0]
            except (redis.RedisError, RedisClusterException, OSError) as exc:
                _refused(config.redis_url, connection, config.prefix, exc)
            if not took:
                click.echo(f"the lock {store.layout.lock_key} is held by {holder}", err=True)
                sys.exit(1)
            return
        signal.signal(signal.SIGTERM, lambda *_: scheduler.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: scheduler.stopping.set())
        signal.signal(signal.SIGHUP, lambda *_: scheduler.reload.set())
        try:  # the loop's first election, here so that a misconfiguration stops the start
            scheduler.campaign()
        except Exception as exc:
            scheduler.release()  # a half-done election: the loop starts it again
            if _fatal_at_start(exc):
                _refused(config.redis_url, connection, config.prefix, exc)
            if isinstance(exc, redis.RedisError | OSError):
                metrics.redis_errors.inc()
                LOGGER.warning("Redis error: %s", exc)
            else:
                LOGGER.exception("unexpected error in the first election; standing by")
        scheduler.run()
        LOGGER.info("stopped", extra={"fired": scheduler.fired})
    finally:
        publisher.close()
        if embedded is not None:
            embedded.close()


@click.command("status")
@_option("--redis", "redis_url", env="BEATSPEC_REDIS_URL", required=True, metavar="URL",
         help="The schedule's Redis.")
@_option("--prefix", env="BEATSPEC_PREFIX", default="redbeat:", help="Key prefix.")
@_option("--lock-key", env="BEATSPEC_LOCK_KEY", default=None,
         help="Lock key  [default: PREFIX + ':lock']")
@click.option("--count", default=10, show_default=True, type=click.IntRange(0, 10_000),
              help="How many upcoming entries to list.")
@click.option("--invalid", "invalid_limit", default=100, show_default=True,
              type=click.IntRange(0, 100_000), metavar="N",
              help="How many invalid entries to list (the count covers all of them).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@connection_options
def status_command(**kwargs: Any) -> None:
    """Show the leader (token, age, lock TTL), entry counts, the next due entries and the
    entries the scheduler backed off as invalid."""
    from beatspec.daemon.status import read_status, render_text
    from beatspec.keyspace.scheduling import ScheduleStore

    connection = options_from(kwargs)
    try:
        client = connect(kwargs["redis_url"], connection)
    except ConnectionFailed as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(3)
    store = ScheduleStore(client, layout_for(kwargs["prefix"], kwargs["lock_key"]))
    status = read_status(store, count=kwargs["count"], invalid_limit=kwargs["invalid_limit"])
    click.echo(status.to_json() if kwargs["fmt"] == "json" else render_text(status))
