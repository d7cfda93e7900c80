"""`beatspec next`: next fire times and score, from a file and from an entry RedBeat wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from beatspec.testing import Namespace

CRON = {"name": "report", "task": "t", "args": [], "kwargs": {}, "options": {},
        "schedule": {"__type__": "crontab", "minute": "30", "hour": "2", "day_of_week": "*",
                     "day_of_month": "*", "month_of_year": "*"}, "enabled": True}


def run_cli(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from beatspec.cli import main; main()", "next", *args],
        input=stdin.decode(), capture_output=True, text=True, timeout=60, check=False,
    )


def test_spring_forward_gap_runs_once_an_hour_later(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps(CRON))
    result = run_cli(str(path), "--app-timezone", "Europe/Berlin", "--format", "json",
                     "--last-run-at", "2026-03-28T01:30:00Z", "--now", "2026-03-28T12:00:00Z",
                     "--count", "2")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["due"] is False
    assert out["next_run"] == "2026-03-29T01:30:00Z"  # 02:30 does not exist: 03:30 CEST
    assert out["runs"] == ["2026-03-29T01:30:00Z", "2026-03-30T00:30:00Z"]
    assert out["score"] == int(datetime(2026, 3, 29, 1, 30, tzinfo=UTC).timestamp())


def test_never_run_entry_is_due_now() -> None:
    result = run_cli("-", "--now", "2026-01-01T00:00:00Z", "--format", "json",
                     stdin=json.dumps(CRON).encode())
    out = json.loads(result.stdout)
    assert out["due"] is True
    assert out["score"] == int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())


def test_invalid_definition_names_the_rule() -> None:
    bad = dict(CRON, schedule={"__type__": "crontab", "minute": "61"})
    result = run_cli("-", stdin=json.dumps(bad).encode())
    assert result.returncode == 1
    assert "CRON-3" in result.stdout


def test_usage_errors_exit_2() -> None:
    assert run_cli("-", "--app-timezone", "Mars/Olympus").returncode == 2
    assert run_cli("-", "--now", "yesterday").returncode == 2


def test_unreachable_redis_exits_3() -> None:
    assert run_cli("x", "--redis", "redis://127.0.0.1:1/0").returncode == 3


def test_entry_written_by_redbeat_is_read_and_its_score_judged(redis_ns: Namespace) -> None:
    from celery import Celery
    from celery.schedules import crontab
    from redbeat import RedBeatSchedulerEntry

    app = Celery("next-test", set_as_current=False)
    app.conf.update(redbeat_redis_url=redis_ns.url, redbeat_key_prefix=redis_ns.prefix,
                    timezone="UTC")
    last = datetime.now(UTC) - timedelta(hours=1)
    entry = RedBeatSchedulerEntry("nightly", "proj.nightly", crontab(minute="0", hour="4"),
                                  app=app, last_run_at=last)
    entry.save()
    result = run_cli("nightly", "--redis", redis_ns.url, "--prefix", redis_ns.prefix,
                     "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    out = json.loads(result.stdout)
    assert out["score_check"]["ok"] is True
    stored = out["stored_score"]
    # RedBeat's estimate is early (redbeat#210) but never later than the next run
    assert stored <= out["score"]
    assert out["next_run"].endswith("04:00:00Z")

    # a score in milliseconds is caught (ZSET-2)
    with redis_ns.client() as client:
        client.zadd(redis_ns.prefix + ":schedule", {entry.key: stored * 1000})
    result = run_cli("nightly", "--redis", redis_ns.url, "--prefix", redis_ns.prefix)
    assert result.returncode == 1
    assert "ZSET-2" in result.stdout and "milliseconds" in result.stdout
