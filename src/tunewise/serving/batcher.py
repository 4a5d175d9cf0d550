"""Dynamic micro-batching: requests queue up, one worker thread runs the model.

The worker takes the oldest job and, while the queue's head holds jobs with the same key (same
kind of work, e.g. classification inputs or generation with the same settings), adds them until
`max_batch` inputs or `max_wait` seconds after the first job; then it runs them as one call and
hands each job its slice of the results. A batch that fails is retried job by job, so one bad
request cannot fail its neighbours. Callables queued with `call` (a streamed generation, a model
swap) run alone, in queue order, between batches. Hand-written: uvicorn/FastAPI have no batcher.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

RunBatch = Callable[[Hashable, list[Any]], list[Any]]


@dataclass
class _Job:
    key: Hashable | None  # None: a callable that runs alone
    items: list[Any]
    future: Future = field(default_factory=Future)
    fn: Callable[[], Any] | None = None


class BatcherClosed(RuntimeError):
    """The server is shutting down and accepts no new work."""


class MicroBatcher:
    def __init__(
        self,
        run: RunBatch,
        max_batch: int = 32,
        max_wait_s: float = 0.005,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> None:
        self.run, self.max_batch, self.max_wait_s = run, max_batch, max_wait_s
        self.on_batch = on_batch  # (inputs, requests) of every forward pass
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="tunewise-model", daemon=True)
        self._thread.start()

    # -- submitting --------------------------------------------------------------------------------
    def _put(self, job: _Job) -> Future:
        with self._cond:
            if self._closed:
                raise BatcherClosed("the server is shutting down")
            self._queue.append(job)
            self._cond.notify()
        return job.future

    def submit(self, key: Hashable, items: list[Any]) -> Future:
        """Results for `items` (a list, in order) once their batch has run."""
        return self._put(_Job(key, list(items)))

    def call(self, fn: Callable[[], Any]) -> Future:
        """Run `fn` in the worker thread, alone, after everything queued before it."""
        return self._put(_Job(None, [], fn=fn))

    async def asubmit(self, key: Hashable, items: list[Any]) -> list[Any]:
        return await asyncio.wrap_future(self.submit(key, items))

    @property
    def depth(self) -> int:
        return len(self._queue)

    def close(self, timeout: float | None = None) -> None:
        """Refuse new work, finish what is queued, stop the worker."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    # -- the worker --------------------------------------------------------------------------------
    def _next_batch(self) -> list[_Job] | None:
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            first = self._queue.popleft()
            if first.key is None:
                return [first]
            batch, size = [first], len(first.items)
            deadline = time.monotonic() + self.max_wait_s
            while size < self.max_batch:
                if self._queue:
                    head = self._queue[0]
                    if head.key != first.key or size + len(head.items) > self.max_batch:
                        break
                    batch.append(self._queue.popleft())
                    size += len(head.items)
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    break
                self._cond.wait(remaining)
            return batch

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            if batch[0].fn is not None:
                _settle(batch[0].future, batch[0].fn)
                continue
            items = [x for job in batch for x in job.items]
            try:
                results = self.run(batch[0].key, items)
                if self.on_batch:
                    self.on_batch(len(items), len(batch))
            except Exception as exc:  # retried one job at a time below
                if len(batch) == 1:
                    batch[0].future.set_exception(exc)
                    continue
                for job in batch:
                    _settle(job.future, lambda job=job: self._run_one(job))
                continue
            start = 0
            for job in batch:
                job.future.set_result(results[start : start + len(job.items)])
                start += len(job.items)

    def _run_one(self, job: _Job) -> list[Any]:
        out = self.run(job.key, job.items)
        if self.on_batch:
            self.on_batch(len(job.items), 1)
        return out


def _settle(future: Future, fn: Callable[[], Any]) -> None:
    try:
        future.set_result(fn())
    except BaseException as exc:  # handed to the waiting request, never kills the worker
        future.set_exception(exc)
