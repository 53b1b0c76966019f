"""The retry policy, as pure functions: whether to retry, and how long to wait first.

Retried: connection errors and timeouts, 408, 409, 429 and 5xx, unless the service says
``x-should-retry: false``; ``x-should-retry: true`` retries anything. Never other 4xx.
The wait honours ``retry-after-ms``, then ``Retry-After`` (seconds or an HTTP date), up to
``MAX_RETRY_AFTER``; otherwise it is exponential backoff with jitter, 0.5 s doubling to 8 s.

A 429 that says when to come back is pacing, not failure (``paced_delay``): the request waits
as told without spending its retry budget, as long as its total wait stays under
``MAX_RETRY_AFTER`` (and retries are on at all).
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from ._exceptions import APIConnectionError, APIError, APIStatusError

__all__ = [
    "INITIAL_RETRY_DELAY",
    "MAX_RETRY_AFTER",
    "MAX_RETRY_DELAY",
    "MIN_PACED_CHARGE",
    "Decision",
    "RetryState",
    "backoff_delay",
    "decide",
    "paced_charge",
    "paced_delay",
    "parse_retry_after",
    "retry_after_is_rounded",
    "retry_delay",
    "should_retry",
]

INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
#: The longest server-requested wait we honour; a longer one is clamped to this.
MAX_RETRY_AFTER = 60.0
#: The least a paced wait (429 + Retry-After) counts toward MAX_RETRY_AFTER.
MIN_PACED_CHARGE = 4.0

_RETRYABLE_STATUSES = frozenset({408, 409, 429})


def should_retry(status_code: int | None, headers: Mapping[str, str]) -> bool:
    """``status_code`` None means no answer arrived (connection error or timeout)."""
    verdict = headers.get("x-should-retry", "").strip().lower()
    if verdict == "true":
        return True
    if verdict == "false":
        return False
    if status_code is None:
        return True
    return status_code in _RETRYABLE_STATUSES or status_code >= 500


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, or None when it did not say (or said nonsense:
    a negative, infinite or NaN wait). Finite waits come back as asked; every user of them
    clamps them (``MAX_RETRY_AFTER``, the pacer's ``MAX_HOLD``)."""
    asked = _parse_retry_after(headers, now)
    if asked is None or not math.isfinite(asked):
        return None
    return asked


def _parse_retry_after(headers: Mapping[str, str], now: float | None) -> float | None:
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = -1.0
        if ms >= 0 and ms == ms:  # ms == ms refuses NaN
            return ms / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        parsed = email.utils.parsedate_tz(raw)
        if parsed is None:
            return None
        try:
            moment = email.utils.mktime_tz(parsed)
        except (OverflowError, ValueError):  # a date past what the platform can hold
            return None
        seconds = moment - (time.time() if now is None else now)
        return max(seconds, 0.0)
    if seconds != seconds or seconds < 0:
        return None
    return seconds


def retry_after_is_rounded(headers: Mapping[str, str]) -> bool:
    """Retry-After in whole seconds and nothing finer: a gateway's rounding up, so the real
    wait may be anything down to a second less."""
    if headers.get("retry-after-ms") is not None:
        return False
    raw = headers.get("retry-after", "").strip()
    return raw.isdigit()


def backoff_delay(retries_done: int, jitter: float) -> float:
    """0.5 s doubling to 8 s; ``jitter`` in [0, 1) takes off up to a quarter, to spread clients."""
    base = min(INITIAL_RETRY_DELAY * 2.0**retries_done, MAX_RETRY_DELAY)
    return base * (1.0 - 0.25 * jitter)


def retry_delay(
    error: APIError,
    retries_done: int,
    max_retries: int,
    *,
    now: float | None = None,
    jitter: float | None = None,
) -> float | None:
    """How long to wait before retrying after ``error``, or None to give up and raise it."""
    if retries_done >= max_retries:
        return None
    if isinstance(error, APIStatusError):
        headers: Mapping[str, str] = error.response.headers
        if not should_retry(error.status_code, headers):
            return None
    elif isinstance(error, APIConnectionError):
        headers = {}
    else:
        return None
    asked = parse_retry_after(headers, now)
    if asked is not None:
        return min(asked, MAX_RETRY_AFTER)
    return backoff_delay(retries_done, random.random() if jitter is None else jitter)  # noqa: S311 - jitter, not crypto


def paced_delay(
    error: APIError, waited: float, max_retries: int, *, now: float | None = None
) -> float | None:
    """The wait a 429 asked for, if it is pacing we follow without spending a retry, else None."""
    if max_retries == 0 or not isinstance(error, APIStatusError) or error.status_code != 429:
        return None
    headers = error.response.headers
    if not should_retry(429, headers):
        return None
    asked = parse_retry_after(headers, now)
    if asked is None or waited + paced_charge(asked) > MAX_RETRY_AFTER:
        return None
    return asked


def paced_charge(asked: float) -> float:
    """What a paced wait counts toward ``MAX_RETRY_AFTER``: at least ``MIN_PACED_CHARGE``, so
    a server answering 429 with ``Retry-After: 0`` for ever gets a bounded number of free
    attempts (15) before they spend the retry budget, instead of unbounded ones."""
    return max(asked, MIN_PACED_CHARGE)


@dataclass(frozen=True)
class RetryState:
    """What one request's attempts have spent so far."""

    max_retries: int
    retries_done: int = 0
    #: Seconds waited as the service asked (429 + Retry-After), not counted as retries.
    paced_waited: float = 0.0


@dataclass(frozen=True)
class Decision:
    """``retry``: send again after ``delay`` seconds (``wait_here``: this request sleeps them;
    else the pacer holds it with every other request); ``state`` is the spend after that."""

    retry: bool
    delay: float
    wait_here: bool
    state: RetryState


def decide(error: APIError, state: RetryState) -> Decision:
    """The whole retry and pacing decision for one failed attempt, as a pure function."""
    rate_limited = isinstance(error, APIStatusError) and error.status_code == 429
    asked = paced_delay(error, state.paced_waited, state.max_retries)
    if asked is not None:
        waited = state.paced_waited + paced_charge(asked)
        return Decision(True, asked, False, replace(state, paced_waited=waited))
    delay = retry_delay(error, state.retries_done, state.max_retries)
    if delay is None:
        return Decision(False, 0.0, False, state)
    return Decision(
        True, delay, not rate_limited, replace(state, retries_done=state.retries_done + 1)
    )
