"""How many requests are in flight, and when the next may start.

``AdaptiveLimit`` is the pure limit on requests (fed successes and throttles), the
``CapacityController`` (``_capacity``) the one on estimated tokens; ``ThreadGate`` and
``AsyncGate`` are the two places a request waits for the pacer's pace and for room under both
limits, one for threads and one for the tasks of an event loop; what they share (the turn
line, the pace cap, admitting and releasing) is written once, in ``_Gate``.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from ._capacity import CapacityController
from ._clock import Clock
from ._pacing import Pacer

__all__ = ["AdaptiveLimit", "AsyncGate", "ThreadGate"]


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


class _Gate:
    """What both gates decide, without waiting: the pace to keep, whose turn it is (requests
    in the order they came, so a large one keeps its place and its room instead of being
    passed by smaller ones for ever), and the bookkeeping of a request let in or out. The two
    subclasses hold only the lines that wait."""

    def __init__(
        self, limit: AdaptiveLimit, pacer: Pacer, clock: Clock, capacity: CapacityController
    ) -> None:
        self._limit = limit
        self._pacer = pacer
        self._clock = clock
        self._capacity = capacity
        self._busy = 0
        #: Requests waiting, in the order they came.
        self._line: deque[object] = deque()

    def _pace(self, latest: float | None) -> float:
        """Seconds to wait for the pacer (booked now), never past the call's deadline. The
        start is booked before a slot is taken: a slot held while waiting for the pace would
        add the request's own duration to the spacing."""
        wait = self._pacer.reserve()
        return wait if latest is None else min(wait, self._left(latest) or 0.0)

    def _left(self, latest: float | None) -> float | None:
        """Seconds until the call's deadline (None: no deadline)."""
        return None if latest is None else max(0.0, latest - self._clock.now())

    def _turn(self, ticket: object, tokens: int) -> bool:
        return (
            self._line[0] is ticket
            and self._busy < self._limit.allowed
            and self._capacity.admits(tokens)
        )

    def _admit(self, tokens: int) -> None:
        self._busy += 1
        self._capacity.started(tokens)

    def _release(self, tokens: int) -> None:
        self._busy -= 1
        self._capacity.finished(tokens)


class ThreadGate(_Gate):
    """At most ``limit.allowed`` requests, and the capacity's window of tokens, in flight
    across threads; requests started at the pacer's pace, in the order they came."""

    def __init__(
        self, limit: AdaptiveLimit, pacer: Pacer, clock: Clock, capacity: CapacityController
    ) -> None:
        super().__init__(limit, pacer, clock, capacity)
        self._cond = threading.Condition()

    def enter(self, tokens: int, latest: float | None = None) -> bool:
        """Wait for the pace, a slot and window room; False (nothing held) when the call's
        deadline ``latest`` passed first: no wait outlasts the call."""
        wait = self._pace(latest)
        if wait > 0:
            self._clock.sleep(wait)
        with self._cond:
            ticket = object()
            self._line.append(ticket)
            try:
                admitted = self._cond.wait_for(
                    lambda: self._turn(ticket, tokens), self._left(latest)
                )
                if admitted:
                    self._admit(tokens)
                return admitted
            finally:
                self._line.remove(ticket)
                self._cond.notify_all()  # the next in line looks

    def exit(self, tokens: int) -> None:
        with self._cond:
            self._release(tokens)
            self._cond.notify_all()

    def wake(self) -> None:
        """The limits changed (an answer widened the window): waiting requests look again."""
        with self._cond:
            self._cond.notify_all()


class AsyncGate(_Gate):
    """``ThreadGate`` for the tasks of one event loop."""

    def __init__(
        self, limit: AdaptiveLimit, pacer: Pacer, clock: Clock, capacity: CapacityController
    ) -> None:
        super().__init__(limit, pacer, clock, capacity)
        self._cond = asyncio.Condition()

    async def enter(self, tokens: int, latest: float | None = None) -> bool:
        """``ThreadGate.enter``, awaited."""
        wait = self._pace(latest)
        if wait > 0:
            await self._clock.asleep(wait)
        async with self._cond:
            ticket = object()
            self._line.append(ticket)
            try:
                turn = self._cond.wait_for(lambda: self._turn(ticket, tokens))
                await asyncio.wait_for(turn, self._left(latest))
            except (TimeoutError, asyncio.TimeoutError):
                return False
            else:
                self._admit(tokens)
                return True
            finally:
                self._line.remove(ticket)
                self._cond.notify_all()  # the next in line looks

    async def exit(self, tokens: int) -> None:
        async with self._cond:
            self._release(tokens)
            self._cond.notify_all()

    async def wake(self) -> None:
        async with self._cond:
            self._cond.notify_all()
