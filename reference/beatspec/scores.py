"""Judge a stored ``::schedule`` score against the engine (spec ZSET-2..ZSET-5, SCHED-3)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

__all__ = ["MILLISECONDS_THRESHOLD", "ScoreVerdict", "judge_score"]

#: A score above this (year 5138 in seconds) is almost certainly milliseconds.
MILLISECONDS_THRESHOLD = 1e11


@dataclass(frozen=True, slots=True)
class ScoreVerdict:
    """``rule`` is None when the stored score is acceptable."""

    ok: bool
    rule: str | None
    message: str


def judge_score(
    stored: float | None, expected: int, next_run: datetime | None, *, enabled: bool = True,
    tolerance: float = 0.0,
) -> ScoreVerdict:
    """Compare a stored score with the score a writer should store (``expected``).

    ``next_run`` is when the entry is due (now for an entry that never ran; None when the
    schedule is exhausted); a score more than ``tolerance`` seconds after it is late.
    """
    if stored is None:
        if not enabled:
            return ScoreVerdict(True, None, "no schedule member (the entry is disabled)")
        return ScoreVerdict(False, "ZSET-4", "the entry has no member in the schedule: it "
                            "never fires")
    if not math.isfinite(stored):
        return ScoreVerdict(False, "ZSET-2", f"score {stored} is not a finite number")
    if next_run is None:
        if stored == -1:
            return ScoreVerdict(True, None, "-1: the schedule is exhausted")
        return ScoreVerdict(True, "ZSET-3", "the schedule is exhausted; its score should be -1 "
                            "(RedBeat reloads it at every tick until then)")
    if stored == -1:
        return ScoreVerdict(False, "ZSET-3", "score -1 marks an exhausted schedule, but this "
                            "one has a next run: it never fires")
    if stored < 0:
        return ScoreVerdict(False, "ZSET-3", f"score {stored:g} is negative: RedBeat's tick "
                            "selects scores from 0 up, so the entry never fires")
    if stored >= MILLISECONDS_THRESHOLD:
        return ScoreVerdict(False, "ZSET-2", f"score {stored:.0f} looks like milliseconds; "
                            "scores are epoch seconds")
    due_at = math.floor(next_run.timestamp())
    if stored > due_at + tolerance:
        return ScoreVerdict(False, "ZSET-2", f"score is {stored - due_at:.0f} s after the next "
                            "run: the entry fires late")
    if stored != math.floor(stored):
        return ScoreVerdict(True, "ZSET-5", "score is not a whole number of seconds")
    if stored == expected:
        return ScoreVerdict(True, None, "agrees")
    return ScoreVerdict(True, None, f"{expected - stored:.0f} s early (allowed: the scheduler "
                        "re-checks the entry when it loads it; RedBeat's own estimate is early)")
