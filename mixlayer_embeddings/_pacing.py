"""Rate pacing: requests start no faster than the service lets this key send them.

Pure arithmetic on timestamps the caller passes in, so it is tested from a table and can live
anywhere: in a client, shared by several clients, or in a Ray actor shared by a whole job.

Until the service first answers 429 there is no pacing at all. The first 429 sets the rate to
what actually succeeded over the last ``WINDOW`` seconds (a floor: the limit let at least that
through), and holds every start until its ``Retry-After``. From then on, starts are spaced
``1 / rate`` apart: after a pause the held requests resume one by one instead of all at once
(no thundering herd). A Retry-After in whole seconds (a gateway's rounding up) holds the starts
for one spacing only, not the whole rounded second. Each success raises the rate by
``FAST_PROBE`` of itself until the next 429 (the first estimate tends low: answers still in
flight are not counted), then by ``PROBE``; each further 429 for a request sent after the
last change takes it down by ``BACKOFF`` (a 429 for a request sent before it says nothing new).
The rate settles just under the limit and follows it.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Protocol

__all__ = ["BACKOFF", "FAST_PROBE", "MAX_HOLD", "PROBE", "WINDOW", "Pacer", "RatePacer"]

#: Seconds of successes that estimate the limit at the first 429.
WINDOW = 2.0
#: A success raises the rate by this fraction: a probe for spare room under the limit.
PROBE = 0.002
#: The probe from the first 429 to the next one.
FAST_PROBE = 0.02
#: A 429 while paced lowers the rate to this fraction of itself.
BACKOFF = 0.9
#: Never slower than this (requests per second), whatever the 429s said.
MIN_RATE = 0.2
#: The longest hold a Retry-After may put on every start (as for a retry's own wait): a
#: server asking for an hour, or for ever, does not hang the calls.
MAX_HOLD = 60.0


class Pacer(Protocol):
    """What a client asks before each request and tells after each answer."""

    def reserve(self) -> float:
        """Book the next start; return the seconds to wait before starting."""
        ...

    def on_success(self) -> None: ...

    def on_throttle(self, retry_after: float | None, sent_at: float, rounded: bool = False) -> None:
        """A 429 for a request sent at ``sent_at`` (the client's clock); ``rounded``: the
        Retry-After was whole seconds, rounded up by a gateway."""
        ...


class RatePacer:
    """A ``Pacer`` learning the rate from 429s (or given one). Thread-safe."""

    def __init__(self, rate: float | None = None, *, clock: object = time.monotonic) -> None:
        #: Requests per second; None until the first 429 (no pacing).
        self.rate = rate
        self._clock = clock
        self._next_start = 0.0
        self._successes: deque[float] = deque()
        self._changed = float("-inf")
        self._probe = PROBE if rate is not None else FAST_PROBE
        self._lock = threading.Lock()

    def _now(self) -> float:
        return float(self._clock())  # type: ignore[operator]

    def reserve(self, now: float | None = None) -> float:
        with self._lock:
            if self.rate is None:
                return 0.0
            now = self._now() if now is None else now
            start = max(now, self._next_start)
            self._next_start = start + 1.0 / self.rate
            return start - now

    def on_success(self, now: float | None = None) -> None:
        with self._lock:
            now = self._now() if now is None else now
            self._successes.append(now)
            while self._successes and self._successes[0] < now - WINDOW:
                self._successes.popleft()
            if self.rate is not None:
                self.rate *= 1.0 + self._probe

    def on_throttle(
        self,
        retry_after: float | None,
        sent_at: float,
        rounded: bool = False,
        now: float | None = None,
    ) -> None:
        with self._lock:
            now = self._now() if now is None else now
            while self._successes and self._successes[0] < now - WINDOW:
                self._successes.popleft()
            if self.rate is None:
                if len(self._successes) >= 2:
                    # What got through recently is what the limit allows; over at least a
                    # second, since a burst the service allows all at once is not its rate.
                    span = max(now - self._successes[0], 1.0)
                    estimate = len(self._successes) / span
                else:
                    # Refused before any success was counted (an opening burst): the wait for
                    # the next free slot bounds the rate from above; 429s bring it down.
                    # (A wait beyond MAX_HOLD says nothing about a rate: a hostile or broken
                    # server; one request a second until answers say more.)
                    estimate = 1.0 / retry_after if retry_after and retry_after <= MAX_HOLD else 1.0
                self.rate = max(MIN_RATE, estimate)
                self._changed = now
            elif sent_at >= self._changed:
                self.rate = max(MIN_RATE, self.rate * BACKOFF)
                self._probe = PROBE
                self._changed = now
            # else: an answer to a request sent before the last change; it says nothing new.
            wait = retry_after if retry_after is not None else 1.0 / self.rate
            if rounded:
                # "1" from a gateway can mean 0.1 s: holding every start for the whole second
                # would leave the limit unused. Once paced, the spacing is the wait.
                wait = min(wait, 1.0 / self.rate)
            hold = now + min(wait, MAX_HOLD)
            self._next_start = max(self._next_start, hold)

    def after_fork(self) -> None:
        """In a forked child: a lock a parent's thread held at the fork would never open."""
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        rate = "unpaced" if self.rate is None else f"{self.rate:.2f}/s"
        return f"RatePacer({rate})"
