"""What the service reported and what it took, summed where a user asks for it.

``UsageTracker`` sums the service's ``usage`` (prompt and total tokens) and the requests,
retries and 429s behind them. ``track_usage()`` opens one for a block of code: every call made
inside it, by any client or adapter, on any thread or task the call itself starts, reports to
it (the trackers in force are captured when a call is planned, so a call's worker threads
report to the block that made the call)::

    with track_usage() as usage:
        vectors = client.embed(texts).embeddings
    print(usage.total_tokens, usage.requests)
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections.abc import Iterator

from ._fork import register_for_fork
from ._models import Usage

__all__ = ["UsageTracker", "active_trackers", "track_usage", "tracking"]


class UsageTracker:
    """Token counts as the service reported them, and the requests behind them (requests,
    retries, 429s, read timeouts). Thread-safe. Every client keeps one of its own
    (``client.usage``); a ``track_usage`` block is another."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.prompt_tokens = 0
        self.total_tokens = 0
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0
        self.timeouts = 0
        # A fork while another thread holds the lock would leave the child's copy held forever.
        register_for_fork(self)

    def add(
        self,
        usage: Usage | None = None,
        *,
        requests: int = 0,
        retries: int = 0,
        rate_limited: int = 0,
        timeouts: int = 0,
    ) -> None:
        with self._lock:
            if usage is not None:
                self.prompt_tokens += usage.prompt_tokens
                self.total_tokens += usage.total_tokens
            self.requests += requests
            self.retries += retries
            self.rate_limited += rate_limited
            self.timeouts += timeouts

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    # Picklable (a callback handler that records payloads may be pickled with its owner).
    def __getstate__(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, int]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
        register_for_fork(self)

    def __repr__(self) -> str:
        return (
            f"UsageTracker(prompt_tokens={self.prompt_tokens}, total_tokens={self.total_tokens}, "
            f"requests={self.requests}, retries={self.retries}, "
            f"rate_limited={self.rate_limited}, timeouts={self.timeouts})"
        )


_ACTIVE: contextvars.ContextVar[tuple[UsageTracker, ...]] = contextvars.ContextVar(
    "mixlayer_usage_trackers", default=()
)


def active_trackers() -> tuple[UsageTracker, ...]:
    """The trackers a call planned now reports to."""
    return _ACTIVE.get()


@contextlib.contextmanager
def tracking(tracker: UsageTracker) -> Iterator[UsageTracker]:
    """Calls inside the block report to ``tracker`` too (and to every tracker already open)."""
    token = _ACTIVE.set((*_ACTIVE.get(), tracker))
    try:
        yield tracker
    finally:
        _ACTIVE.reset(token)


def track_usage() -> contextlib.AbstractContextManager[UsageTracker]:
    """A new ``UsageTracker`` for the calls made inside the ``with`` block."""
    return tracking(UsageTracker())
