"""``beatspec run`` (the scheduler daemon) and ``beatspec status``."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from beatspec._cli_redis import connection_options, options_from
from beatspec.connection import ConnectionFailed, connect, redact
from beatspec.keyspace import Layout

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
@_option("--batch", env="BEATSPEC_BATCH", default=500, type=click.IntRange(1, 10_000),
         metavar="N", help="Due entries fetched, committed and published per batch.")
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
    2 usage error (options, schedule file), 3 Redis or the broker unreachable at start.
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
            if not scheduler.run_once():
                holder, _ = store.holder()
                click.echo(f"the lock {store.layout.lock_key} is held by {holder}", err=True)
                sys.exit(1)
            return
        signal.signal(signal.SIGTERM, lambda *_: scheduler.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: scheduler.stopping.set())
        signal.signal(signal.SIGHUP, lambda *_: scheduler.reload.set())
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
    status = read_status(store, count=kwargs["count"])
    click.echo(status.to_json() if kwargs["fmt"] == "json" else render_text(status))
