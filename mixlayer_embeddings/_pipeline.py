"""The windowed pipelines: batches run at most ``window`` at a time, by threads or by tasks.

Each yields ``(batch, outcome)`` pairs, the outcome being the batch's parsed result or the
exception it ended with: in completion order (``embed``), or in input order (``iter_embed``,
where a batch done but not yet taken still holds its place in the window, so a slow consumer
slows the reading). A ``TICK`` among the batches (a stream's ``FLUSH``) is not sent: the
pipeline waits for the oldest batch in flight and hands it over before reading on. Closing a
pipeline drops the batches not yet started; the async one also cancels the requests in flight.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine, Generator, Iterator
from typing import Any

from ._batching import TICK, Batch
from ._response import ParsedBatch

__all__ = ["PipelineOutcome", "task_outcomes", "thread_outcomes"]

#: A batch and how it ended: its parsed result, or the exception it raised.
PipelineOutcome = tuple[Batch, ParsedBatch | BaseException]


def thread_outcomes(
    run: Callable[[Batch], ParsedBatch],
    batches: Iterator[Batch],
    *,
    window: int,
    ordered: bool,
    inline: bool = False,
) -> Generator[PipelineOutcome, None, None]:
    """Run ``run(batch)`` on worker threads (``inline``: on the caller's thread)."""
    finished: queue.SimpleQueue[tuple[int, ParsedBatch | BaseException]] = queue.SimpleQueue()

    def work(position: int, batch: Batch) -> None:
        try:
            finished.put((position, run(batch)))
        except BaseException as exc:
            finished.put((position, exc))

    pool = None if inline else DaemonWorkers(window)
    pending: dict[int, Batch] = {}
    done: dict[int, PipelineOutcome] = {}
    submitted = taken = 0
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) + len(done) < window:
                batch = next(batches, None)
                if batch is None:
                    exhausted = True
                    break
                if batch is TICK:
                    # The reader asks for its answers before reading on: wait for the oldest
                    # batch in flight (0.1 s at a time, so Ctrl-C is noticed), then hand it over.
                    while ordered and taken in pending:
                        try:
                            position, outcome = finished.get(timeout=0.1)
                        except queue.Empty:
                            continue
                        done[position] = (pending.pop(position), outcome)
                    if ordered and taken in done:
                        break
                    continue
                if pool is None:
                    work(submitted, batch)
                else:
                    pool.submit(work, submitted, batch)
                pending[submitted] = batch
                submitted += 1
            if ordered and taken in done:
                yield done.pop(taken)
                taken += 1
                continue
            if not pending:
                return
            try:
                # A timeout, so the caller's thread notices Ctrl-C within 0.1 s. A C-level
                # SimpleQueue, not concurrent.futures.wait: an interrupt inside wait()'s
                # Python-level locking can deadlock the worker completing a future.
                position, outcome = finished.get(timeout=0.1)
            except queue.Empty:
                continue
            result = (pending.pop(position), outcome)
            if ordered:
                done[position] = result
            else:
                yield result
    finally:
        # On an error, a close or Ctrl-C: drop the batches not yet started and return at
        # once; the ones in flight end with their request, and never hold the process open.
        if pool is not None:
            pool.shutdown()


class DaemonWorkers:
    """Up to ``size`` daemon threads taking jobs from a queue, started as jobs arrive.

    Not a ``ThreadPoolExecutor``: its threads are joined when the interpreter exits, so after
    Ctrl-C the process stayed alive until every request in flight had its answer (up to the
    read timeout), and a second Ctrl-C printed a traceback from that join. A request of an
    abandoned call has nobody waiting for it; its thread may die with the process.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: queue.SimpleQueue[tuple[Callable[..., None], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def submit(self, job: Callable[..., None], *args: Any) -> None:
        with self._lock:
            if self._idle == 0 and len(self._threads) < self._size:
                thread = threading.Thread(target=self._work, name="mixlayer-embed", daemon=True)
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1
        self._jobs.put((job, args))

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, args = item
            job(*args)
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        """Drop the jobs not started; each thread ends after its current job."""
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            self._jobs.put(None)


async def task_outcomes(
    run: Callable[[Batch], Coroutine[Any, Any, ParsedBatch]],
    batches: AsyncIterator[Batch],
    *,
    window: int,
    ordered: bool,
) -> AsyncGenerator[PipelineOutcome, None]:
    """Run ``run(batch)`` as tasks of the running loop."""
    tasks: dict[asyncio.Task[ParsedBatch], tuple[int, Batch]] = {}
    done: dict[int, PipelineOutcome] = {}
    submitted = taken = 0
    exhausted = False
    try:
        while True:
            while not exhausted and len(tasks) + len(done) < window:
                try:
                    batch = await batches.__anext__()
                except StopAsyncIteration:
                    exhausted = True
                    break
                if batch is TICK:
                    # The reader asks for its answers before reading on: wait for the oldest
                    # batch in flight, then hand it over.
                    oldest = [t for t, (position, _) in tasks.items() if position == taken]
                    if ordered and oldest:
                        await asyncio.wait(oldest)
                        position, finished_batch = tasks.pop(oldest[0])
                        failure = oldest[0].exception()
                        outcome = failure if failure is not None else oldest[0].result()
                        done[position] = (finished_batch, outcome)
                    if ordered and taken in done:
                        break
                    continue
                tasks[asyncio.ensure_future(run(batch))] = (submitted, batch)
                submitted += 1
            if ordered and taken in done:
                yield done.pop(taken)
                taken += 1
                continue
            if not tasks:
                return
            finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                position, batch = tasks.pop(task)
                failure = task.exception()
                outcome = failure if failure is not None else task.result()
                if ordered:
                    done[position] = (batch, outcome)
                else:
                    yield batch, outcome
    finally:
        # One batch failed, the consumer stopped, or the caller was cancelled: stop every
        # request still in flight.
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
