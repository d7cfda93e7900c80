"""A tiny Celery app for the daemon end-to-end tests, run by ``celery worker``/``celery beat``
subprocesses (``-A celery_app`` with this directory on ``PYTHONPATH``).

Everything comes from the environment, so one module serves every test:

``BEATSPEC_E2E_BROKER``
    the broker URL (a throwaway Redis, or RabbitMQ).
``BEATSPEC_E2E_RESULTS`` / ``BEATSPEC_E2E_RESULTS_KEY``
    the Redis URL and list key where :func:`record` appends one JSON object per execution.
``BEATSPEC_E2E_REDBEAT_URL``, ``BEATSPEC_E2E_REDBEAT_PREFIX``, ``BEATSPEC_E2E_LOCK_TIMEOUT``,
``BEATSPEC_E2E_MAX_INTERVAL``
    the settings of a ``celery beat -S redbeat.RedBeatScheduler`` process.

Only ``e2e.record`` is a task here: entries the tests want sent the way a beat that does not
import its tasks sends them (``send_task``) use other task names.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import redis
from celery import Celery

RECORD_TASK = "e2e.record"

app = Celery("beatspec_e2e")
app.conf.update(
    broker_url=os.environ.get("BEATSPEC_E2E_BROKER", "memory://"),
    broker_connection_retry_on_startup=True,
    task_ignore_result=True,
    worker_enable_remote_control=False,  # no pidbox queues/exchanges on a shared RabbitMQ
    worker_send_task_events=False,
    # (keep the default prefetch: with worker_prefetch_multiplier=1 a solo worker on RabbitMQ
    # was handed new messages only every ~10 s)
    worker_hijack_root_logger=False,
    timezone="UTC",
    result_expires=None,  # no celery.backend_cleanup entry in beat
    beat_schedule={},
    beat_max_loop_interval=float(os.environ.get("BEATSPEC_E2E_MAX_INTERVAL", "1")),
    redbeat_redis_url=os.environ.get("BEATSPEC_E2E_REDBEAT_URL"),
    redbeat_redis_options={},
    redbeat_key_prefix=os.environ.get("BEATSPEC_E2E_REDBEAT_PREFIX", "redbeat:"),
    redbeat_lock_timeout=int(os.environ.get("BEATSPEC_E2E_LOCK_TIMEOUT", "3")),
)

_results: redis.Redis | None = None


def _plain(value: Any) -> Any:
    """``value`` if JSON can hold it, else its repr."""
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


@app.task(name=RECORD_TASK, bind=True)
def record(self: Any, *args: Any, **kwargs: Any) -> None:
    """Append what the worker saw (args, kwargs, request headers, delivery info) to a list."""
    global _results
    if _results is None:
        _results = redis.Redis.from_url(os.environ["BEATSPEC_E2E_RESULTS"])
    request = self.request
    _results.rpush(os.environ["BEATSPEC_E2E_RESULTS_KEY"], json.dumps({
        "id": request.id,
        "args": list(args),
        "kwargs": kwargs,
        "request": {k: _plain(v) for k, v in vars(request).items() if not k.startswith("_")},
        "delivery_info": _plain(request.delivery_info),
        "at": time.time(),
    }))
