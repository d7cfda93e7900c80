"""The key pass across processes: this process SCANs once and shares the key batches.

Forked workers take batches from one bounded queue. The scanning process offers each batch to
the queue and judges it itself when the queue is full, so every process stays busy, however
fast the others are, and no more than ``QUEUED`` batches per worker wait in memory.
"""

from __future__ import annotations

import multiprocessing
import queue
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import wait
from types import TracebackType
from typing import Any

from beatspec.audit._result import AuditResult

__all__ = ["Judge", "Workers"]

#: Judges an iterable of key batches and returns what it found.
Judge = Callable[[Iterable[list[bytes]]], AuditResult]

#: Batches that may wait in the queue per worker.
QUEUED = 2
#: Seconds to wait for room in the queue before looking whether the workers are still alive.
_PATIENCE = 0.5


class Workers:
    """``count - 1`` forked processes that judge the batches :meth:`share` does not keep.

    With ``count`` 1 (or where fork is unavailable) there are no workers and :meth:`share`
    keeps every batch. Use as a context manager: leaving it early stops the workers.
    """

    def __init__(self, judge: Judge, count: int) -> None:
        self._judge = judge
        self._count = max(1, count) if "fork" in multiprocessing.get_all_start_methods() else 1
        self._context = multiprocessing.get_context("fork")
        self._queue: Any = None
        self._children: list[tuple[Any, Any]] = []
        self._ended = 0  # end markers queued

    def __enter__(self) -> Workers:
        if self._count > 1:
            self._queue = self._context.Queue(QUEUED * (self._count - 1))
            for _ in range(self._count - 1):
                self._children.append(self._start())
        return self

    def __exit__(self, kind: type[BaseException] | None, _exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        if kind is not None:
            self._stop()

    def _start(self) -> tuple[Any, Any]:
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(target=_work, args=(self._judge, self._queue, sender),
                                        daemon=True)
        process.start()
        sender.close()
        return process, receiver

    def share(self, batches: Iterable[list[bytes]]) -> Iterator[list[bytes]]:
        """The batches this process judges: those no worker had room for."""
        for batch in batches:
            if not self._offer(batch):
                yield batch
        self._end(block=False)  # the workers need not wait for this process's last batches

    def _offer(self, item: list[bytes] | None, *, block: bool = False) -> bool:
        """Queue ``item`` (None: the end marker); False if the queue is full."""
        if self._queue is None:
            return False
        try:
            self._queue.put(item, block, _PATIENCE)
        except queue.Full:
            return False
        return True

    def _end(self, *, block: bool) -> None:
        """An end marker for each worker (as long as all are alive, if ``block``)."""
        while self._ended < len(self._children):
            if self._offer(None, block=block):
                self._ended += 1
            elif not block or not all(process.is_alive() for process, _ in self._children):
                return  # a worker that died sends its error (or nothing) to results()

    def results(self) -> list[AuditResult]:
        """Tell the workers that no more batches come, and collect what they found."""
        if self._queue is None:
            return []
        self._end(block=True)
        results = []
        pending = {receiver: process for process, receiver in self._children}
        while pending:
            for receiver in wait(list(pending)):
                results.append(_receive(pending.pop(receiver), receiver))
        self._children.clear()
        self._queue.close()
        self._queue.join_thread()
        return results

    def _stop(self) -> None:
        for process, receiver in self._children:
            process.terminate()
            process.join()
            receiver.close()
        self._children.clear()
        if self._queue is not None:
            self._queue.cancel_join_thread()  # batches nobody reads any more are dropped
            self._queue.close()


def _work(judge: Judge, tasks: Any, sender: Any) -> None:
    """A worker: judge batches from the queue until the end marker, send back the result."""
    try:
        sender.send(("ok", judge(iter(tasks.get, None))))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which re-raises it
        sender.send(("error", exc))
    finally:
        sender.close()


def _receive(process: Any, receiver: Any) -> AuditResult:
    try:
        status, payload = receiver.recv()
    except EOFError:
        process.join()
        raise RuntimeError(f"audit worker exited with status {process.exitcode}") from None
    process.join()
    receiver.close()
    if status != "ok":
        raise payload
    result: AuditResult = payload
    return result
