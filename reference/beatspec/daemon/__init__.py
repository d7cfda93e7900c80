"""The reference scheduler daemon, ``beatspec run``: a drop-in for ``celery beat -S
redbeat.RedBeatScheduler`` (spec §11.5)."""

from __future__ import annotations

from beatspec.daemon.config import RunConfig, load_toml
from beatspec.daemon.messages import (
    MessagePlan,
    MessageShape,
    Publisher,
    TaskMessage,
    build_message,
    plan_message,
)
from beatspec.daemon.metrics import Metrics
from beatspec.daemon.plan import Decision, Fire, decide
from beatspec.daemon.scheduler import Scheduler
from beatspec.daemon.statics import ScheduleFileError, load_schedule, sync_statics
from beatspec.daemon.status import SchedulerStatus, read_status

__all__ = [
    "Decision",
    "Fire",
    "MessagePlan",
    "MessageShape",
    "Metrics",
    "Publisher",
    "RunConfig",
    "ScheduleFileError",
    "Scheduler",
    "SchedulerStatus",
    "TaskMessage",
    "build_message",
    "decide",
    "load_schedule",
    "load_toml",
    "plan_message",
    "read_status",
    "sync_statics",
]
