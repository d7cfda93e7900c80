"""Fixtures for the RedBeat oracle tests, and the agreement summary at the end of the session.

The helper modules (``oracle_harness``, ``oracle_expect``, ``oracle_docs``) live next to this
file; ``tests/`` has no ``__init__.py``, so this directory is put on ``sys.path`` explicitly
(pytest's default import mode does the same; this keeps it working under importlib mode).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from oracle_harness import TALLIES, OracleHarness

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter

    from beatspec.testing import Namespace, RedisServer

TIMEZONES = ("UTC", "Europe/Berlin")


@pytest.fixture(params=TIMEZONES)
def harness(request: pytest.FixtureRequest, redis_ns: Namespace) -> Iterator[OracleHarness]:
    """A RedBeat scheduler in the test's own namespace, with the app timezone as parameter."""
    h = OracleHarness(redis_ns, timezone=request.param)
    try:
        yield h
    finally:
        h.close()


@pytest.fixture(scope="module")
def oracle(redis_server: RedisServer) -> Iterator[dict[str, OracleHarness]]:
    """One harness per app timezone, each in a namespace of its own, for a whole module.

    Module scope (not session): the namespaces are cleaned up when the module ends, so their
    database numbers are free again before other tests of the session reuse them.
    """
    namespaces: list[Namespace] = []
    harnesses: dict[str, OracleHarness] = {}
    try:
        for tz in TIMEZONES:
            ns = redis_server.namespace()
            namespaces.append(ns)
            harnesses[tz] = OracleHarness(ns, timezone=tz)
        yield harnesses
    finally:
        for h in harnesses.values():
            h.close()
        for ns in namespaces:
            ns.cleanup()


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    if not TALLIES:
        return
    terminalreporter.section("RedBeat oracle")
    for label, tally in TALLIES.items():
        for line in tally.summary(label):
            terminalreporter.write_line(line)
