"""Audit throughput and memory: entries audited per second at 100k and 1M entries, peak RSS.

Starts its own redis-server (or uses REDIS_URL with a unique prefix), fills it with canonical
entries as RedBeat writes them (a mix of interval, crontab and rrule schedules, every entry
with meta and a schedule member), then runs the audit in a fresh child process per size so that
peak RSS is the audit's own. Targets (issue C): >= 50,000 entries/s and <= 300 MB RSS at 1M.

    python bench/audit.py                 # 100k and 1M
    python bench/audit.py --sizes 100000  # just one size

BEATSPEC_AUDIT_WORKERS (default: cores, at most 4, as the CLI) and BEATSPEC_AUDIT_BATCH (1000)
change the audit's settings. Peak RSS is that of the largest process (parent or worker).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid

import redis

from beatspec.testing import start_redis_server

DEFINITIONS = (
    '{{"name": "{n}", "task": "proj.tasks.tick", "args": [1, 2], "kwargs": {{}}, "options": '
    '{{"queue": "q1"}}, "schedule": {{"__type__": "interval", "every": 300.0, "relative": '
    'false}}, "enabled": true}}',
    '{{"name": "{n}", "task": "proj.tasks.report", "args": null, "kwargs": {{"x": 1}}, '
    '"options": {{}}, "schedule": {{"__type__": "crontab", "minute": "*/15", "hour": "*", '
    '"day_of_week": "*", "day_of_month": "*", "month_of_year": "*"}}, "enabled": true}}',
    '{{"name": "{n}", "task": "proj.tasks.weekly", "args": [], "kwargs": {{}}, "options": {{}}, '
    '"schedule": {{"__type__": "rrule", "freq": 2, "interval": 1, "wkst": null, "count": null, '
    '"bysetpos": null, "bymonth": null, "bymonthday": null, "byyearday": null, "byeaster": null, '
    '"byweekno": null, "byweekday": [0, 2], "byhour": 9, "byminute": 0, "bysecond": null, '
    '"dtstart": 1704067200, "dtstart_tz": 0}}, "enabled": true}}',
)
META = ('{{"last_run_at": {{"__type__": "datetime", "year": 2026, "month": 11, "day": {d}, '
        '"hour": {h}, "minute": {m}, "second": {s}, "microsecond": 909667, "timezone": "UTC"}}, '
        '"total_run_count": {c}}}')


LAST_RUN_BASE = 1795132800  # 2026-11-18T00:00:00Z, before every last run below


def meta(i: int) -> str:
    """A different last run per entry (within the last four days), as in a real keyspace."""
    return META.format(d=18 + i % 4, h=i % 24, m=(i // 24) % 60, s=(i // 1440) % 60, c=i % 97)


def fill(url: str, prefix: str, count: int) -> None:
    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        name = f"entry-{i:07d}"
        key = prefix + name
        pipe.hset(key, mapping={"definition": DEFINITIONS[i % 3].format(n=name), "meta": meta(i)})
        # a score no later than the next run (RedBeat's own estimate is early too)
        pipe.zadd(prefix + ":schedule", {key: LAST_RUN_BASE + i % 3600})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()


def audit_child(url: str, prefix: str) -> None:
    from beatspec.audit import AuditOptions, run_audit
    from beatspec.keyspace import Keyspace, Layout

    client = redis.Redis.from_url(url)
    # the CLI's default: one process per core, at most four
    workers = int(os.environ.get("BEATSPEC_AUDIT_WORKERS", str(min(4, os.cpu_count() or 1))))
    batch = int(os.environ.get("BEATSPEC_AUDIT_BATCH", "1000"))
    started = time.perf_counter()
    result = run_audit(Keyspace(client, Layout(prefix)),
                       AuditOptions(batch=batch, workers=workers))
    elapsed = time.perf_counter() - started
    # the largest process: the parent or one of its workers (each keeps only its batch)
    rss_kb = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                 resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    print(json.dumps({"entries": result.counts["entries"], "seconds": elapsed,
                      "rss_mb": rss_kb / 1024, "failed": result.count(result.findings[0].outcome)
                      if result.findings else 0}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3, help="audits per size; the fastest "
                        "counts (default 3)")
    parser.add_argument("--child", nargs=2, metavar=("URL", "PREFIX"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        audit_child(*args.child)
        return 0
    server = None
    url = os.environ.get("REDIS_URL")
    if not url:
        server = start_redis_server()
        url = server.url + "/0"
    ok = True
    try:
        print(f"{'entries':>9} {'fill s':>8} {'audit s':>8} {'entries/s':>10} {'peak RSS MB':>12}"
              f"   (best of {args.repeat} audits; every audit's entries/s)")
        for size in (int(s) for s in args.sizes.split(",")):
            prefix = f"bench-{uuid.uuid4().hex[:8]}:"
            t0 = time.perf_counter()
            fill(url, prefix, size)
            fill_s = time.perf_counter() - t0
            runs = []
            for _ in range(args.repeat):  # the fastest run counts, as timeit does
                out = subprocess.run([sys.executable, __file__, "--child", url, prefix],
                                     capture_output=True, text=True, check=False)
                if out.returncode:
                    sys.exit(f"the audit failed (status {out.returncode}):\n{out.stderr}")
                runs.append(json.loads(out.stdout))
            stats = min(runs, key=lambda r: r["seconds"])
            stats["rss_mb"] = max(r["rss_mb"] for r in runs)
            rate = stats["entries"] / stats["seconds"]
            every = ", ".join(f"{r['entries'] / r['seconds']:,.0f}" for r in runs)
            print(f"{stats['entries']:>9} {fill_s:>8.1f} {stats['seconds']:>8.1f} {rate:>10,.0f} "
                  f"{stats['rss_mb']:>12.0f}   ({every})")
            ok = ok and rate >= 50_000 and stats["rss_mb"] <= 300
            client = redis.Redis.from_url(url)
            for key_batch in _batches(client.scan_iter(match=prefix + "*", count=5000)):
                client.delete(*key_batch)
    finally:
        if server is not None:
            server.stop()
    print("targets (>= 50,000 entries/s, <= 300 MB):", "met" if ok else "NOT met")
    return 0 if ok else 1


def _batches(keys: object, size: int = 5000) -> object:
    batch: list[bytes] = []
    for key in keys:  # type: ignore[attr-defined]
        batch.append(key)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


if __name__ == "__main__":
    sys.exit(main())
