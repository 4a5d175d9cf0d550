"""Dynamic micro-batching: requests queue up, worker threads run the model.

A worker takes the oldest job and, while the queue's head holds jobs with the same key (same
kind of work, e.g. classification inputs or generation with the same settings), adds them until
`max_batch` inputs or `max_wait` seconds after the first job; then it runs them as one call and
hands each job its slice of the results. A batch that fails is retried job by job, so one bad
request cannot fail its neighbours. With several workers, batches run side by side (the forward
pass releases the GIL); callables queued with `call` (a streamed generation, a model swap) still
run alone, in queue order: once one reaches the head of the queue, no new batch starts until the
running ones are done and it has run. Hand-written: uvicorn/FastAPI have no batcher.
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
        workers: int = 1,
    ) -> None:
        self.run, self.max_batch, self.max_wait_s = run, max_batch, max_wait_s
        self.on_batch = on_batch  # (inputs, requests) of every forward pass
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._running = 0  # batches being run now
        self._alone = False  # a `call` job is running: nothing runs beside it
        self._threads = [
            threading.Thread(target=self._work, name=f"tunewise-model-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

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
        for thread in self._threads:
            thread.join(timeout)

    # -- the worker --------------------------------------------------------------------------------
    def _next_batch(self) -> list[_Job] | None:
        with self._cond:
            while True:
                if not self._queue:
                    if self._closed:
                        return None
                elif not self._alone and (self._queue[0].key is not None or not self._running):
                    break
                self._cond.wait()  # for work, or for the running batches to make way
            first = self._queue.popleft()
            if first.key is None:
                self._alone = True
                return [first]
            self._running += 1
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
            try:
                self._run_batch(batch)
            finally:
                with self._cond:
                    if batch[0].fn is not None:
                        self._alone = False
                    else:
                        self._running -= 1
                    self._cond.notify_all()

    def _run_batch(self, batch: list[_Job]) -> None:
        if batch[0].fn is not None:
            _settle(batch[0].future, batch[0].fn)
            return
        items = [x for job in batch for x in job.items]
        try:
            results = self.run(batch[0].key, items)
            if self.on_batch:
                self.on_batch(len(items), len(batch))
        except Exception as exc:  # retried one job at a time below
            if len(batch) == 1:
                batch[0].future.set_exception(exc)
                return
            for job in batch:
                _settle(job.future, lambda job=job: self._run_one(job))
            return
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
