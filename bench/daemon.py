"""Benchmark: the ``beatspec run`` daemon against celery-redbeat 2.4.2, side by side.

Both schedulers run on the same kind of keyspace (interval entries as RedBeat writes them: JSON
``definition`` and ``meta`` in the entry hash, an integer score in ``prefix:schedule``) in a
throwaway ``redis-server`` this script starts (the schedule in db 0, the Celery broker in db 1,
both flushed before every run), and publish Celery protocol-2 messages through kombu's Redis
transport to the default queue ``celery``. Every entry's definition carries ``args: [i]``, its
index, so each message names the entry it was sent for.

(a) fire throughput: N entries (default 10,000), all due now, valid meta. beatspec:
    ``Scheduler.run_once()`` (take the lock, tick until nothing is due, release). RedBeat:
    ``RedBeatScheduler.tick()`` with its lock taken as ``celery beat`` takes it, repeated until
    the queue holds N messages. Timed: that call (or loop), nothing else; best of --repeat runs,
    each on a freshly filled keyspace. Checked after every run: LLEN celery == N, every entry's
    ``total_run_count`` went from 0 to 1 and no member is still due. Target: beatspec fires/s
    >= 15 x RedBeat's.
(b) fire lateness: N entries (default 100,000) with whole-second due times spread so that
    about 1 % fall due each second (``every`` = N / rate seconds, so nothing fires twice), for
    --duration seconds. Each scheduler runs its real loop in a thread (beatspec:
    ``Scheduler.run()``; RedBeat: celery beat's loop, ``tick()`` then sleep what it returns,
    ``beat_max_loop_interval`` = 1 s like beatspec's ``--max-interval``). Lateness of a message
    = the wall-clock time it landed on the broker minus the due time of its entry, known
    exactly from the index in ``args``; "landed" = kombu's ``Producer.publish`` returned (the
    LPUSH was acknowledged) or, for a message buffered in a ``Producer.batch``, the batch's flush
    returned, or, for beatspec's Redis lane, its pipelined LPUSHes were acknowledged (see
    :class:`PublishLog`). Due times are whole seconds by default, the precision of
    the schedule index (a score is the due time rounded down); ``--spread`` gives them random
    sub-second parts instead (last_run_at with microseconds, as after real fires): a scheduler
    must then wake up inside the second its whole-second scores point at. Entries due in
    the window but not sent by its end (plus a 2 s grace) count with their lateness at that
    moment (a lower bound; the table then shows ">="); a RedBeat tick still running then is
    ended at its next publish. Target: beatspec p99 <= 100 ms.
(c) peak RSS with N entries (default 1,000,000): each scheduler in a fresh child process, which
    reports its own peak (``VmHWM``). beatspec: the CLI, ``beatspec run --once``. RedBeat: a
    scheduler built as ``celery beat`` builds it, lock taken, ticked until nothing is due. Two
    keyspaces: none due, and --rss-due (default 10,000) due now. Target: beatspec <= 150 MB.
(d) idle CPU: N entries (default 100,000), none due within the run; each scheduler's loop in a
    fresh child process for --idle seconds (default 20, both with a 1 s maximum sleep), CPU
    seconds (user + system, ``getrusage``) of that process between loop start and stop, and the
    CPU the redis-server spent meanwhile (``INFO cpu``).

    python bench/daemon.py                      # everything, full size (about 6 minutes)
    python bench/daemon.py --quick              # smoke test: 1,000 entries, 10 s windows
    python bench/daemon.py --only a --only d    # some parts only

Results go to stdout; the exit status is 1 if a measured beatspec target is missed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import platform
import random
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import redis

from beatspec.keyspace import _bulk_packed, _pack
from beatspec.testing import start_redis_server

PREFIX = "redbeat:"
QUEUE = "celery"
TASK = "bench.tasks.tick"
GRACE = 2.0  # (b): seconds the loops keep running after the window, for late fires
REDBEAT_LOCK_TIMEOUT = 1500  # seconds: RedBeat's default, 5 x celery's default 300 s interval

DEFINITION = ('{{"name": "e{i}", "task": "' + TASK + '", "args": [{i}], "kwargs": {{}}, '
              '"options": {{}}, "schedule": {{"__type__": "interval", "every": {every}, '
              '"relative": false}}, "enabled": true}}')
META = ('{{"last_run_at": {{"__type__": "datetime", "year": {t.year}, "month": {t.month}, '
        '"day": {t.day}, "hour": {t.hour}, "minute": {t.minute}, "second": {t.second}, '
        '"microsecond": {t.microsecond}, "timezone": "UTC"}}, "total_run_count": 0}}')


# ------------------------------------------------------------------------------- keyspace


@dataclass(frozen=True)
class Urls:
    schedule: str  # db 0
    broker: str  # db 1


def flush(urls: Urls) -> None:
    redis.Redis.from_url(urls.schedule).flushall()


def fill(urls: Urls, count: int, due: Callable[[int], float], every: float,
         chunk: int = 10_000) -> None:
    """Write ``count`` interval entries: entry i is due at ``due(i)`` (epoch seconds), so its
    last run is ``due(i) - every`` and its score ``floor(due(i))``. Raw pipelined HSET/ZADD."""
    client = redis.Redis.from_url(urls.schedule)
    schedule = PREFIX + ":schedule"
    for start in range(0, count, chunk):
        commands: list[bytes] = []
        zadd: list[bytes | str] = ["ZADD", schedule]
        for i in range(start, min(start + chunk, count)):
            key = f"{PREFIX}e{i}"
            slot = due(i)
            last = datetime.fromtimestamp(slot - every, UTC)
            commands.append(_pack(("HSET", key, "definition", DEFINITION.format(i=i, every=every),
                                   "meta", META.format(t=last))))
            zadd += [str(math.floor(slot)), key]
        commands.append(_pack(tuple(zadd)))
        replies = _bulk_packed(client, b"".join(commands), len(commands))
        if replies is None or any(isinstance(r, Exception) for r in replies):
            raise RuntimeError(f"fill failed: {replies and replies[-1]}")


def queue_length(urls: Urls) -> int:
    return int(redis.Redis.from_url(urls.broker).llen(QUEUE))


def check_fired(urls: Urls, count: int) -> str:
    """'ok' if the queue holds ``count`` messages, each entry ran once and none is still due."""
    client = redis.Redis.from_url(urls.schedule)
    problems = []
    if (length := queue_length(urls)) != count:
        problems.append(f"LLEN {length}")
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        pipe.hget(f"{PREFIX}e{i}", "meta")
    runs = [json.loads(m)["total_run_count"] if m else None for m in pipe.execute()]
    if (advanced := sum(1 for r in runs if r == 1)) != count:
        problems.append(f"{advanced} metas advanced")
    if still := client.zcount(PREFIX + ":schedule", 0, math.floor(time.time())):
        problems.append(f"{still} still due")
    return "ok" if not problems else "FAILED: " + ", ".join(problems)


# ------------------------------------------------------------------------------ schedulers


def make_beatspec(urls: Urls, *, max_interval: float = 1.0) -> Any:
    from beatspec.daemon import Publisher, RunConfig, Scheduler
    from beatspec.keyspace import Layout
    from beatspec.keyspace.scheduling import ScheduleStore

    config = RunConfig(redis_url=urls.schedule, broker_url=urls.broker, prefix=PREFIX,
                       max_interval=max_interval)
    publisher = Publisher(urls.broker)
    publisher.check()  # connect now, as the CLI does before it starts
    store = ScheduleStore(redis.Redis.from_url(urls.schedule), Layout(PREFIX))
    return Scheduler(config, store, publisher)


def make_redbeat(urls: Urls, *, max_interval: float = 1.0, lock: bool = True) -> Any:
    """A RedBeat scheduler built as ``celery beat -S redbeat.RedBeatScheduler`` builds it,
    holding the lock (RedBeat's beat_init handler, called directly). redis-py's lock token is
    thread-local: a loop in another thread takes it there (``lock=False`` here)."""
    from celery import Celery
    from redbeat import RedBeatScheduler

    app = Celery("bench", set_as_current=False)
    # The lock timeout RedBeat has by default (5 x the default 300 s loop interval): with
    # 5 x 1 s, a tick with a backlog outlasts the lock and tick() raises LockNotOwnedError,
    # which ends celery beat; the lateness test would then measure that, not the scheduling.
    app.conf.update(broker_url=urls.broker, redbeat_redis_url=urls.schedule,
                    redbeat_key_prefix=PREFIX, redbeat_lock_timeout=REDBEAT_LOCK_TIMEOUT,
                    beat_max_loop_interval=max_interval, beat_schedule={}, result_expires=None,
                    timezone="UTC")
    scheduler = RedBeatScheduler(app=app)
    if lock:
        take_lock(scheduler)
    scheduler.producer.connection.ensure_connection(max_retries=1)
    return scheduler


def take_lock(scheduler: Any) -> None:
    from redbeat.schedulers import acquire_distributed_beat_lock

    acquire_distributed_beat_lock(sender=SimpleNamespace(scheduler=scheduler))


def beat_loop(scheduler: Any, stop: threading.Event, died: list[str] | None = None) -> None:
    """celery.beat.Service.start for RedBeat: take the lock, then tick and sleep what the tick
    returns, until ``stop`` is set; then close (release the lock) in the same thread. An
    exception ends the loop, as it ends celery beat; it is noted in ``died``."""
    take_lock(scheduler)
    try:
        while not stop.is_set():
            interval = scheduler.tick()
            if interval and interval > 0:
                stop.wait(interval)
    except StopPublishing:
        pass
    except Exception as exc:
        if died is None:
            raise
        died.append(type(exc).__name__)
    finally:
        with contextlib.suppress(Exception):
            scheduler.close()


# ------------------------------------------------------------------------ (a) throughput


@dataclass
class Row:
    label: str
    beatspec: str
    redbeat: str
    ratio: str = ""
    note: str = ""


def part_a(urls: Urls, count: int, repeat: int) -> tuple[list[Row], bool]:
    every = 3600.0
    best: dict[str, float] = {}
    checks: dict[str, str] = {}
    for _ in range(repeat):
        for name in ("beatspec", "redbeat"):
            flush(urls)
            now = math.floor(time.time())
            fill(urls, count, lambda i, now=now: now - 10 - i % 50, every)
            if name == "beatspec":
                scheduler = make_beatspec(urls)
                started = time.perf_counter()
                scheduler.run_once()
                elapsed = time.perf_counter() - started
                scheduler.publisher.close()
            else:
                scheduler = make_redbeat(urls)
                started = time.perf_counter()
                for _tick in range(100):
                    scheduler.tick()
                    if queue_length(urls) >= count:
                        break
                elapsed = time.perf_counter() - started
                scheduler.close()
            check = check_fired(urls, count)
            checks[name] = check if checks.get(name, "ok") == "ok" else checks[name]
            best[name] = min(best.get(name, math.inf), elapsed)
    rate = {name: count / s for name, s in best.items()}
    ratio = rate["beatspec"] / rate["redbeat"]
    rows = [
        Row(f"(a) fire {count:,} due: seconds", f"{best['beatspec']:.3f}",
            f"{best['redbeat']:.3f}", note=f"best of {repeat}"),
        Row("(a) fires/s", f"{rate['beatspec']:,.0f}", f"{rate['redbeat']:,.0f}",
            f"{ratio:.1f}x", "target >= 15x"),
        Row("(a) check: published, metas advanced", checks["beatspec"], checks["redbeat"]),
    ]
    ok = ratio >= 15 and checks["beatspec"] == "ok"
    return rows, ok


# --------------------------------------------------------------------------- (b) lateness


class StopPublishing(BaseException):
    """Ends a RedBeat tick still running after the window: RedBeat's tick can take minutes
    once it is behind, and it catches ``Exception`` from publishing, not this."""


class PublishLog:
    """Notes, per message either scheduler publishes, the entry index (``args[0]`` of the body)
    and the wall-clock time the message landed on the broker: when kombu's ``Producer.publish``
    returned (its LPUSH was acknowledged) or, for a message buffered in a ``Producer.batch``,
    when the batch's flush returned (its pipelined LPUSHes were acknowledged), or, for
    beatspec's Redis lane, when its pipelined LPUSHes were acknowledged (the lane reads those
    acknowledgements after the next batch is decided: a message's time is noted then, so it
    is at or after the time it really landed). The wrappers cost about
    a microsecond per message."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, float]] = []
        self.closed = False  # then publishing raises StopPublishing (ends RedBeat's tick)
        self._buffered: list[int] = []
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> PublishLog:
        from kombu import messaging

        producer, state = messaging.Producer, messaging._ProducerBatchState
        publish, flush, abort = producer.publish, state.flush, state.abort
        self._saved = {"publish": publish, "flush": flush, "abort": abort}
        log, sent, buffered = self, self.sent, self._buffered

        def logged_publish(self: Any, body: Any, *args: Any, **kwargs: Any) -> Any:
            if log.closed:
                raise StopPublishing
            result = publish(self, body, *args, **kwargs)
            index = int(body[0][0])
            if getattr(self._batch_local, "current", None) is not None:
                buffered.append(index)  # lands when the batch is flushed
            else:
                sent.append((index, time.time()))
            return result

        def logged_flush(self: Any) -> None:
            flush(self)
            at = time.time()
            sent.extend((index, at) for index in buffered)
            buffered.clear()

        def logged_abort(self: Any) -> None:
            abort(self)
            buffered.clear()  # discarded, never sent

        producer.publish, state.flush, state.abort = logged_publish, logged_flush, logged_abort

        from beatspec.daemon.messages import _RedisLane

        push_begin = _RedisLane.push_begin
        self._saved["push_begin"] = push_begin

        def logged_push_begin(self: Any, encoded: Any, allowed: Any) -> Any:
            if log.closed:
                raise StopPublishing
            finish = push_begin(self, encoded, allowed)

            def logged_finish() -> Any:
                errors = finish()
                at = time.time()
                if errors is not None:
                    sent.extend((int(e.message.body[0][0]), at)
                                for e, error in zip(encoded, errors, strict=True)
                                if error is None)
                return errors

            return logged_finish

        _RedisLane.push_begin = logged_push_begin  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        from kombu import messaging

        messaging.Producer.publish = self._saved["publish"]
        messaging._ProducerBatchState.flush = self._saved["flush"]
        messaging._ProducerBatchState.abort = self._saved["abort"]
        from beatspec.daemon.messages import _RedisLane

        _RedisLane.push_begin = self._saved["push_begin"]  # type: ignore[method-assign]


def part_b(urls: Urls, count: int, rate: int, duration: float, spread: bool) -> tuple[
        list[Row], bool]:
    every = float(count // rate)
    rng = random.Random(20261122)
    fractions = [rng.random() if spread else 0.0 for _ in range(count)]
    results: dict[str, dict[str, Any]] = {}
    died: list[str] = []  # an exception that ended RedBeat's loop
    for name in ("beatspec", "redbeat"):
        flush(urls)
        start = math.floor(time.time()) + 4 + count // 50_000  # after the fill and the start
        def due(i: int, start: int = start) -> float:
            return start + i // rate + fractions[i]
        fill(urls, count, due, every)
        if name == "beatspec":
            scheduler = make_beatspec(urls)
            stop = scheduler.stopping
            loop: Callable[[], None] = scheduler.run
        else:
            scheduler = make_redbeat(urls, lock=False)
            stop = threading.Event()
            loop = functools.partial(beat_loop, scheduler, stop, died)
        with PublishLog() as log:
            thread = threading.Thread(target=loop, name=f"{name}-loop", daemon=True)
            thread.start()
            end = start + duration
            time.sleep(max(end + GRACE - time.time(), 0))
            stop.set()
            if name == "redbeat":  # a tick still running now would go on for long
                log.closed = True
            thread.join()
        if name == "beatspec":
            scheduler.publisher.close()
        window = [i for i in range(count) if due(i) < end]
        cutoff = end + GRACE  # landed later (a tick finishing after the stop): not in time
        sent = {i: at for i, at in log.sent if at <= cutoff}
        lateness = [sent[i] - due(i) if i in sent else cutoff - due(i) for i in window]
        early = sum(1 for i in window if i in sent and sent[i] < due(i))
        results[name] = {
            "p50": _percentile(lateness, 50), "p99": _percentile(lateness, 99),
            "max": max(lateness, default=0.0), "window": len(window),
            "sent": sum(1 for i in window if i in sent),
            "dupes": len(log.sent) - len({i for i, _ in log.sent}),
            "early": early,
            # the latest message of each second of due times (whole seconds: the 1,000th)
            "worst": _per_second_worst(window, sent, due, cutoff),
        }
    bs, rb = results["beatspec"], results["redbeat"]
    label = "sub-second due times" if spread else "whole-second due times"

    def ms(r: dict[str, Any], key: str) -> str:
        bound = ">=" if r["sent"] < r["window"] else ""
        return f"{bound}{r[key] * 1000:,.0f} ms"

    def fired(r: dict[str, Any]) -> str:
        text = f"{r['sent']:,}/{r['window']:,}"
        if r["dupes"] or r["early"]:
            text += f" ({r['dupes']} dup, {r['early']} early)"
        return text

    rows = [
        Row(f"(b) lateness p50, {count:,} entries, {label}", ms(bs, "p50"), ms(rb, "p50"),
            _ratio(rb["p50"], bs["p50"])),
        Row(f"(b) lateness p99, {rate:,}/s for {duration:g} s", ms(bs, "p99"), ms(rb, "p99"),
            _ratio(rb["p99"], bs["p99"]), "target <= 100 ms" if not spread else ""),
        Row("(b) lateness max", ms(bs, "max"), ms(rb, "max"), _ratio(rb["max"], bs["max"])),
        Row("(b) latest of each second: median", f"{_percentile(bs['worst'], 50) * 1000:,.0f} ms",
            f"{_percentile(rb['worst'], 50) * 1000:,.0f} ms",
            note=f"beatspec's worst seconds (s: ms): {_worst_seconds(bs['worst'])}"),
        Row("(b) sent in time/due in window", fired(bs), fired(rb),
            note=f"RedBeat's loop died: {died[0]}" if died else ""),
    ]
    ok = spread or (bs["p99"] <= 0.100 and bs["sent"] == bs["window"] and not bs["dupes"])
    return rows, ok


def _per_second_worst(window: Sequence[int], sent: dict[int, float], due: Callable[[int], float],
                      cutoff: float) -> list[float]:
    """Per second of the window (in order), the largest lateness of its entries."""
    worst: dict[int, float] = {}
    for i in window:
        second = math.floor(due(i))
        late = sent.get(i, cutoff) - due(i)
        worst[second] = max(worst.get(second, late), late)
    return [worst[k] for k in sorted(worst)]


def _worst_seconds(worst: Sequence[float], count: int = 3) -> str:
    ranked = sorted(range(len(worst)), key=lambda k: -worst[k])[:count]
    return ", ".join(f"{k}: {worst[k] * 1000:,.0f}" for k in sorted(ranked))


def _percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1)]


def _ratio(redbeat: float, beatspec: float) -> str:
    """How many times smaller beatspec's value is (lateness, memory, CPU: smaller is better)."""
    return f"{redbeat / beatspec:.1f}x" if beatspec > 0 else ""


# ----------------------------------------------------------------- (c), (d) in children


def child(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Run in a fresh process: ``rss-beatspec``, ``rss-redbeat``, ``idle-beatspec`` or
    ``idle-redbeat``; the answer is printed as JSON."""
    urls = Urls(params["schedule"], params["broker"])
    if kind == "rss-beatspec":
        from beatspec.cli import cli

        cli.main(["run", "--redis", urls.schedule, "--broker", urls.broker, "--prefix", PREFIX,
                  "--once", "--log-level", "WARNING"], standalone_mode=False)
        return {"rss_mb": _maxrss_mb()}
    if kind == "rss-redbeat":
        scheduler = make_redbeat(urls)
        for _ in range(100):  # until nothing is due
            scheduler.tick()
            if queue_length(urls) >= params["due"]:
                break
        scheduler.close()
        return {"rss_mb": _maxrss_mb()}
    seconds = float(params["seconds"])
    info = redis.Redis.from_url(urls.schedule)
    if kind == "idle-beatspec":
        scheduler = make_beatspec(urls)
        loop: Callable[[], None] = scheduler.run
        stop = scheduler.stopping
    else:
        scheduler = make_redbeat(urls, lock=False)
        stop = threading.Event()
        loop = functools.partial(beat_loop, scheduler, stop)
    timer = threading.Timer(seconds, stop.set)
    before, server_before = _cpu(), _server_cpu(info)
    timer.start()
    loop()
    after, server_after = _cpu(), _server_cpu(info)
    return {"cpu": after - before, "server_cpu": server_after - server_before,
            "queued": queue_length(urls)}


def _maxrss_mb() -> float:
    """Peak RSS of this process: VmHWM, which belongs to the process's own memory map. (Linux
    carries the parent's RSS at fork into ``ru_maxrss`` across exec, so a child started by a
    big parent would report the parent's size.)"""
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _server_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def run_child(kind: str, **params: Any) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", kind, json.dumps(params)],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"child {kind} failed:\n{out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def part_c(urls: Urls, count: int, due_count: int) -> tuple[list[Row], bool]:
    rows = []
    ok = True
    for due_now in (0, due_count):
        flush(urls)
        started = time.perf_counter()
        now = math.floor(time.time())
        # none due: the first due time is a day away; else the first due_now are due now
        fill(urls, count, lambda i, now=now, d=due_now: now - 5 if i < d else now + 86_400 + i,
             3600.0)
        fill_s = time.perf_counter() - started
        rss: dict[str, float] = {}
        for name in ("beatspec", "redbeat"):
            if name == "redbeat" and due_now:  # the same keyspace again, fresh
                flush(urls)
                fill(urls, count, lambda i, now=now, d=due_now: now - 5 if i < d
                     else now + 86_400 + i, 3600.0)
            result = run_child(f"rss-{name}", schedule=urls.schedule, broker=urls.broker,
                               due=due_now)
            rss[name] = result["rss_mb"]
            if queue_length(urls) != due_now:
                raise RuntimeError(f"{name}: {queue_length(urls)} messages, not {due_now}")
        what = "none due" if not due_now else f"{due_now:,} due"
        rows.append(Row(f"(c) peak RSS, {count:,} entries, {what}", f"{rss['beatspec']:.0f} MB",
                        f"{rss['redbeat']:.0f} MB", _ratio(rss["redbeat"], rss["beatspec"]),
                        f"fill {fill_s:.0f} s; target <= 150 MB"))
        ok = ok and rss["beatspec"] <= 150
    return rows, ok


def part_d(urls: Urls, count: int, seconds: float) -> tuple[list[Row], bool]:
    flush(urls)
    now = math.floor(time.time())
    fill(urls, count, lambda i: now + 86_400 + i, 3600.0)
    cpu: dict[str, dict[str, Any]] = {}
    for name in ("beatspec", "redbeat"):
        cpu[name] = run_child(f"idle-{name}", schedule=urls.schedule, broker=urls.broker,
                              seconds=seconds)
    bs, rb = cpu["beatspec"], cpu["redbeat"]
    return [
        Row(f"(d) idle CPU s, {count:,} entries, {seconds:g} s", f"{bs['cpu']:.3f}",
            f"{rb['cpu']:.3f}", _ratio(rb["cpu"], bs["cpu"]), "scheduler process"),
        Row("(d) redis-server CPU s meanwhile", f"{bs['server_cpu']:.3f}",
            f"{rb['server_cpu']:.3f}", _ratio(rb["server_cpu"], bs["server_cpu"])),
    ], bs["queued"] == 0


# ------------------------------------------------------------------------------------ main


def environment(url: str) -> Iterator[str]:
    from importlib.metadata import version

    server = redis.Redis.from_url(url).info("server")
    yield (f"python {platform.python_version()} on {platform.system()} {platform.machine()}, "
           f"{os.cpu_count()} cores; redis-server {server['redis_version']} (own, throwaway)")
    yield ("beatspec " + version("beatspec") + ", celery-redbeat " + version("celery-redbeat")
           + ", celery " + version("celery") + ", kombu " + version("kombu") + ", redis-py "
           + version("redis") + ", hiredis " + version("hiredis"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices="abcd", help="run only these parts "
                        "(repeatable; default: all)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 1,000 entries everywhere, 10 s windows, 1 repeat")
    parser.add_argument("--fire-count", type=int, default=10_000, help="(a) due entries")
    parser.add_argument("--repeat", type=int, default=5, help="(a) runs; the fastest counts")
    parser.add_argument("--lateness-count", type=int, default=100_000, help="(b) entries")
    parser.add_argument("--rate", type=int, default=0,
                        help="(b) entries due per second (default: 1%% of the entries)")
    parser.add_argument("--duration", type=float, default=60.0, help="(b) window, seconds")
    parser.add_argument("--spread", action="store_true",
                        help="(b) also a run with sub-second due times")
    parser.add_argument("--rss-count", type=int, default=1_000_000, help="(c) entries")
    parser.add_argument("--rss-due", type=int, default=10_000, help="(c) due entries, 2nd row")
    parser.add_argument("--idle-count", type=int, default=100_000, help="(d) entries")
    parser.add_argument("--idle", type=float, default=20.0, help="(d) seconds")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], json.loads(args.child[1]))))
        return 0
    if args.quick:
        args.fire_count = args.lateness_count = args.rss_count = args.idle_count = 1000
        args.rss_due = 100
        args.duration = args.idle = 10.0
        args.repeat = 1
    parts = set(args.only or "abcd")
    server = start_redis_server(databases=2)
    urls = Urls(server.url + "/0", server.url + "/1")
    ok = True
    rows: list[Row] = []
    try:
        for line in environment(urls.schedule):
            print(line)
        print()
        steps: list[Callable[[], tuple[list[Row], bool]]] = []
        if "a" in parts:
            steps.append(lambda: part_a(urls, args.fire_count, args.repeat))
        if "b" in parts:
            rate = args.rate or max(args.lateness_count // 100, 1)
            steps.append(lambda: part_b(urls, args.lateness_count, rate, args.duration, False))
            if args.spread:
                steps.append(lambda: part_b(urls, args.lateness_count, rate, args.duration,
                                            True))
        if "c" in parts:
            steps.append(lambda: part_c(urls, args.rss_count, args.rss_due))
        if "d" in parts:
            steps.append(lambda: part_d(urls, args.idle_count, args.idle))
        for step in steps:
            found, met = step()
            rows += found
            ok = ok and met
            for row in found:  # progress on stderr; the table comes at the end
                print(f"  {row.label}: {row.beatspec} | {row.redbeat}", file=sys.stderr)
    finally:
        server.stop()
    width = max(len(r.label) for r in rows) if rows else 10
    print(f"{'':<{width}}  {'beatspec':>14}  {'RedBeat 2.4.2':>14}  {'ratio':>7}  note")
    for r in rows:
        print(f"{r.label:<{width}}  {r.beatspec:>14}  {r.redbeat:>14}  {r.ratio:>7}  {r.note}")
    print("\nratio: fires/s beatspec / RedBeat; lateness, memory, CPU RedBeat / beatspec "
          "(above 1.0: beatspec better)")
    print("beatspec targets:", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
