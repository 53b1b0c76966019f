"""How much work may be in flight: a window of estimated tokens, fitted to the server.

An embedding server is an accelerator reading tokens: a request's answer time grows with the
tokens queued ahead of it and its own, and an abandoned request is still worked through. Which
limit is safe depends on the server, so ``CapacityController`` measures it. It is pure: fed
samples (a success, a timeout, a refusal for size) with the time passed in, it keeps

- ``throughput``: tokens per second the server gets through, from the gaps between answers
  (behind a queue, a request's own share of the time is the gap since the answer before it);
- ``window``: the tokens allowed in flight. It starts at one full request's worth and grows by what
  each answer completed (doubling per round trip, as TCP's slow start does), up to what the
  server gets through in ``target`` seconds (a quarter of the read timeout, at most 10 s) and
  never above ``max_concurrency`` full requests. An answer more than twice slower than
  ``target`` shrinks it in proportion, so answer time per token rising is read as congestion,
  before any timeout. A request holds at most a third of the window, so that one is always
  queued behind the one being worked on;
- ``size_cap``: the largest request body, in UTF-8 bytes of text (a size that does not move
  as the token estimate learns), the server or a proxy on the way has not refused (413,
  "request too large", a gateway 502/504 on a big body).

A read timeout halves the window and the throughput estimate, and says how long the server will
still be busy with the abandoned work: the split halves of that request wait so long before
going again, so retries never pile work onto a server that is behind. The choice, after
Netflix's concurrency-limits (Vegas and Gradient2 compare latency with its minimum) and TCP
Vegas/BBR (estimate the bottleneck's rate and keep rate x delay in flight): an embedding
request's latency has no useful minimum (it grows with its size), so the rate is measured in
tokens and the window is rate x target delay, BBR's shape, with AIMD on timeouts like the AWS
SDKs' adaptive retry mode.
"""

from __future__ import annotations

import threading

__all__ = [
    "BIG_BODY_SIZE",
    "DEFAULT_MAX_TOKENS_PER_REQUEST",
    "MAX_TARGET_SECONDS",
    "CapacityController",
]

#: Estimated tokens per request. Measured (benchmarks/bench_capacity.py): 32k tokens is about a
#: second of one accelerator's work (~30k tokens/s), small enough that eight in flight stay far
#: inside the 60 s read timeout on one accelerator, large enough that a fast server spends
#: little of its time on per-request overhead.
DEFAULT_MAX_TOKENS_PER_REQUEST = 32_768
#: The answer time the window aims for, at most (a quarter of the read timeout when shorter).
MAX_TARGET_SECONDS = 10.0
TARGET_FRACTION_OF_TIMEOUT = 0.25
#: An answer this many times slower than the target is congestion (nearer, it is the queue the
#: window itself makes: the last request of a full window is answered about ``target`` late).
CONGESTED = 2.0
#: A request holds at most this fraction of the window.
REQUESTS_PER_WINDOW = 3
#: Weight of each new throughput sample.
SMOOTHING = 0.3
#: A body this big (UTF-8 bytes of text) answered 502/504 is taken as refused for its size;
#: a smaller one's 502/504 is a fault, retried as such.
BIG_BODY_SIZE = 24_576
#: Answers under a gateway's size cap (502/504 on a big body) before it is doubled.
CAP_PROBE_AFTER = 4
#: The window never goes below this many tokens (nor below one request: one always goes).
MIN_WINDOW_TOKENS = 1024


class CapacityController:
    """The in-flight token window and the request size cap; thread-safe, time passed in."""

    def __init__(
        self,
        *,
        max_tokens_per_request: int = DEFAULT_MAX_TOKENS_PER_REQUEST,
        max_concurrency: int = 8,
        read_timeout: float | None = 60.0,
    ) -> None:
        self.max_tokens_per_request = max_tokens_per_request
        self.max_window = max_tokens_per_request * max_concurrency
        self.min_window = min(MIN_WINDOW_TOKENS, max_tokens_per_request)
        #: Estimated tokens of the requests sent and not yet answered.
        self.in_flight = 0
        # One request's worth until the server is measured: a first contact with a slow server
        # and a short timeout must not already be more than it can answer in time.
        self.window = float(min(self.max_window, max_tokens_per_request))
        self.target = MAX_TARGET_SECONDS
        if read_timeout is not None:
            self.target = min(MAX_TARGET_SECONDS, TARGET_FRACTION_OF_TIMEOUT * read_timeout)
        self.read_timeout = read_timeout
        self.throughput: float | None = None
        self.size_cap: int | None = None
        #: Whether the cap is the server's own (413), never lifted; the smallest body a
        #: gateway refused; answers since the cap last moved.
        self._lasting_cap = False
        self._refused_size: int | None = None
        self._answers_under_cap = 0
        self._last_answer: float | None = None
        self._lock = threading.Lock()

    def request_budget(self) -> int:
        """Estimated tokens a request may hold now: a third of the window at most, so that a
        request is always queued behind the one being worked on (the server never idles
        between answers) and each is answered in time."""
        third = max(self.min_window, int(self.window) // REQUESTS_PER_WINDOW)
        return max(1, min(self.max_tokens_per_request, third))

    def fits(self, tokens: int, size: int) -> bool:
        """Is a request of ``tokens`` (estimated) and body ``size`` within both limits?"""
        return tokens <= self.request_budget() and (self.size_cap is None or size <= self.size_cap)

    def admits(self, tokens: int) -> bool:
        """May a request of ``tokens`` start now? (When nothing is in flight one always may,
        or a request larger than the window could never go.)"""
        return self.in_flight == 0 or self.in_flight + tokens <= self.window

    def started(self, tokens: int) -> None:
        with self._lock:
            self.in_flight += tokens

    def finished(self, tokens: int) -> None:
        with self._lock:
            self.in_flight -= tokens

    def on_success(self, tokens: int, sent_at: float, now: float) -> None:
        with self._lock:
            self._relax_cap()
            latency = max(now - sent_at, 1e-6)
            # Behind a queue, this request's own service time is the gap since the answer
            # before it; on an idle server, its whole latency.
            start = sent_at if self._last_answer is None else max(sent_at, self._last_answer)
            self._last_answer = now
            sample = tokens / max(now - start, 1e-6)
            self.throughput = (
                sample
                if self.throughput is None
                else self.throughput + SMOOTHING * (sample - self.throughput)
            )
            if latency > CONGESTED * self.target:
                self.window *= self.target / latency
            else:
                self.window += tokens
            self.window = min(self.window, self.throughput * self.target)
            self.window = max(float(self.min_window), min(float(self.max_window), self.window))

    def on_timeout(self, tokens: int, in_flight: int, now: float) -> float:
        """A request of ``tokens`` got no answer in time with ``in_flight`` tokens out (its own
        included). Returns the seconds the server will still be busy with what was abandoned."""
        with self._lock:
            if self.read_timeout:
                # The server did not get through in_flight tokens within the timeout.
                bound = in_flight / self.read_timeout
                self.throughput = bound if self.throughput is None else min(self.throughput, bound)
            if self.throughput is not None:
                self.throughput /= 2
            self.window = max(float(self.min_window), self.window / 2)
            self._last_answer = now
            if not self.throughput:
                return 0.0
            return min(in_flight / self.throughput, self.read_timeout or MAX_TARGET_SECONDS)

    def on_overload(self) -> None:
        """The server said it is overloaded (503): half the window."""
        with self._lock:
            self.window = max(float(self.min_window), self.window / 2)

    def on_too_large(self, size: int, *, lasting: bool = True) -> None:
        """A body of ``size`` was refused for its size: later requests stay well below it.
        ``lasting``: the server said so (413); else a gateway failed on a big body (502/504),
        which may pass: that cap is lifted again, doubling after every ``CAP_PROBE_AFTER``
        answers, until a body of the refused size goes whole again."""
        with self._lock:
            cap = max(1, (size + 1) // 2)  # both halves of the refused request fit
            self.size_cap = cap if self.size_cap is None else min(self.size_cap, cap)
            if lasting:
                self._lasting_cap = True
            self._refused_size = (
                size if self._refused_size is None else min(self._refused_size, size)
            )
            self._answers_under_cap = 0

    def _relax_cap(self) -> None:
        """After enough answers under a gateway's cap, try bodies twice as big (lock held)."""
        if self.size_cap is None or self._lasting_cap:
            return
        self._answers_under_cap += 1
        if self._answers_under_cap < CAP_PROBE_AFTER:
            return
        self._answers_under_cap = 0
        self.size_cap *= 2
        if self._refused_size is not None and self.size_cap >= self._refused_size:
            self.size_cap = None  # the refused size goes whole again, and is refused again
            self._refused_size = None  # if the gateway still fails on it

    def after_fork(self) -> None:
        """In a forked child: nothing is in flight, and no lock may be left held."""
        self._lock = threading.Lock()
        self.in_flight = 0

    def __repr__(self) -> str:
        rate = "unmeasured" if self.throughput is None else f"{self.throughput:.0f} tokens/s"
        return f"CapacityController(window={self.window:.0f} tokens, {rate})"
