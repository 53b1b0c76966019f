"""How many requests are in flight, and when the next may start.

``AdaptiveLimit`` is the pure limit (fed successes and throttles); ``ThreadGate`` and
``AsyncGate`` are the two places a request waits for a slot and for the pacer's pace, one for
threads and one for the tasks of an event loop. ``Counters`` tallies what a client sent.
"""

from __future__ import annotations

import asyncio
import threading

from ._clock import Clock
from ._pacing import Pacer

__all__ = ["AdaptiveLimit", "AsyncGate", "Counters", "ThreadGate"]


class Counters:
    """What a client has sent so far, for summaries: requests, retries, 429s. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0

    def count(self, *, requests: int = 0, retries: int = 0, rate_limited: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.rate_limited += rate_limited

    def __repr__(self) -> str:
        return (
            f"Counters(requests={self.requests}, retries={self.retries}, "
            f"rate_limited={self.rate_limited})"
        )


class AdaptiveLimit:
    """How many requests may be in flight: halved on a 429, +1/limit per success (AIMD).

    Pure arithmetic, shared by both clients' gates; it never goes below one or above the
    configured ``max_concurrency``.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.current = float(maximum)

    @property
    def allowed(self) -> int:
        return max(1, int(self.current))

    def on_throttle(self) -> None:
        self.current = max(1.0, self.current / 2)

    def on_success(self) -> None:
        self.current = min(float(self.maximum), self.current + 1.0 / self.current)


class ThreadGate:
    """At most ``limit.allowed`` requests in flight across threads, started at the pacer's
    pace."""

    def __init__(self, limit: AdaptiveLimit, pacer: Pacer, clock: Clock) -> None:
        self._limit = limit
        self._pacer = pacer
        self._clock = clock
        self._cond = threading.Condition()
        self._busy = 0

    def __enter__(self) -> None:
        # The start is booked before a slot is taken: a slot held while waiting for the pace
        # would add the request's own duration to the spacing.
        wait = self._pacer.reserve()
        if wait > 0:
            self._clock.sleep(wait)
        with self._cond:
            self._cond.wait_for(lambda: self._busy < self._limit.allowed)
            self._busy += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()


class AsyncGate:
    """At most ``limit.allowed`` requests in flight across tasks of one event loop, started at
    the pacer's pace."""

    def __init__(self, limit: AdaptiveLimit, pacer: Pacer, clock: Clock) -> None:
        self._limit = limit
        self._pacer = pacer
        self._clock = clock
        self._cond = asyncio.Condition()
        self._busy = 0

    async def __aenter__(self) -> None:
        wait = self._pacer.reserve()
        if wait > 0:
            await self._clock.asleep(wait)
        async with self._cond:
            await self._cond.wait_for(lambda: self._busy < self._limit.allowed)
            self._busy += 1

    async def __aexit__(self, *exc_info: object) -> None:
        async with self._cond:
            self._busy -= 1
            self._cond.notify_all()
