from __future__ import annotations

import email.utils

import httpx
import pytest

from mixlayer_embeddings import APIConnectionError, APITimeoutError, ResponseValidationError
from mixlayer_embeddings._exceptions import make_status_error
from mixlayer_embeddings._retry import (
    backoff_delay,
    paced_delay,
    parse_retry_after,
    retry_delay,
    should_retry,
)

NOW = 1_700_000_000.0


def status_error(status: int, headers: dict[str, str] | None = None):
    request = httpx.Request("POST", "https://models.mixlayer.ai/v1/embeddings")
    return make_status_error(httpx.Response(status, headers=headers, request=request, json={}))


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (None, {}, True),
        (408, {}, True),
        (409, {}, True),
        (429, {}, True),
        (500, {}, True),
        (502, {}, True),
        (503, {}, True),
        (400, {}, False),
        (401, {}, False),
        (403, {}, False),
        (404, {}, False),
        (422, {}, False),
        (400, {"x-should-retry": "true"}, True),
        (503, {"x-should-retry": "false"}, False),
        (429, {"x-should-retry": "FALSE"}, False),
        (None, {"x-should-retry": "false"}, False),
    ],
)
def test_should_retry_table(status, headers, expected) -> None:
    assert should_retry(status, headers) is expected


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after-ms": "junk", "retry-after": "2"}, 2.0),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": email.utils.formatdate(NOW + 7, usegmt=True)}, 7.0),
        ({"retry-after": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
    ],
)
def test_parse_retry_after_table(headers, expected) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


@pytest.mark.parametrize(
    ("retries_done", "jitter", "expected"),
    [
        (0, 0.0, 0.5),
        (1, 0.0, 1.0),
        (2, 0.0, 2.0),
        (3, 0.0, 4.0),
        (4, 0.0, 8.0),
        (9, 0.0, 8.0),
        (0, 0.999999, 0.5 * 0.75),
        (4, 0.5, 8.0 * 0.875),
    ],
)
def test_backoff_table(retries_done, jitter, expected) -> None:
    assert backoff_delay(retries_done, jitter) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    ("error", "retries_done", "max_retries", "expected"),
    [
        (status_error(429, {"retry-after": "2"}), 0, 3, 2.0),
        (status_error(429, {"retry-after-ms": "10"}), 0, 3, 0.01),
        (status_error(429, {"retry-after": "600"}), 0, 3, 60.0),  # clamped to the cap
        (status_error(503), 1, 3, 1.0),
        (status_error(503), 3, 3, None),  # out of retries
        (status_error(400), 0, 3, None),
        (status_error(404), 0, 3, None),
        (status_error(400, {"x-should-retry": "true"}), 0, 3, 0.5),
        (APIConnectionError("reset"), 2, 3, 2.0),
        (APITimeoutError("slow"), 0, 3, 0.5),
        (ResponseValidationError("bad shape"), 0, 3, None),
        (status_error(500), 0, 0, None),
    ],
)
def test_retry_delay_table(error, retries_done, max_retries, expected) -> None:
    assert retry_delay(error, retries_done, max_retries, now=NOW, jitter=0.0) == expected


@pytest.mark.parametrize(
    ("error", "waited", "max_retries", "expected"),
    [
        (status_error(429, {"retry-after": "2"}), 0.0, 3, 2.0),
        (status_error(429, {"retry-after-ms": "20"}), 56.0, 3, 0.02),
        # A tiny wait still counts 4 s: "Retry-After: 0" for ever is not free for ever.
        (status_error(429, {"retry-after-ms": "20"}), 57.0, 3, None),
        (status_error(429, {"retry-after": "0"}), 56.0, 3, 0.0),
        (status_error(429, {"retry-after": "0"}), 56.5, 3, None),
        (status_error(429, {"retry-after": "2"}), 59.0, 3, None),  # over the time budget
        (status_error(429, {"retry-after": "2"}), 0.0, 0, None),  # retries off: no pacing
        (status_error(429), 0.0, 3, None),  # no Retry-After: ordinary backoff
        (status_error(429, {"retry-after": "1", "x-should-retry": "false"}), 0.0, 3, None),
        (status_error(503, {"retry-after": "1"}), 0.0, 3, None),
        (APIConnectionError("reset"), 0.0, 3, None),
    ],
)
def test_paced_delay_table(error, waited, max_retries, expected) -> None:
    assert paced_delay(error, waited, max_retries, now=NOW) == expected


@pytest.mark.parametrize(
    ("status", "headers", "state", "retry", "delay", "wait_here", "after"),
    [
        # A 429 that says when: pacing, not a retry; the pacer holds the request.
        (429, {"retry-after": "2"}, (3, 0, 0.0), True, 2.0, False, (0, 4.0)),
        (429, {"retry-after": "10"}, (3, 0, 0.0), True, 10.0, False, (0, 10.0)),
        # Pacing stops counting as free once the total wait would pass MAX_RETRY_AFTER.
        (429, {"retry-after": "2"}, (3, 0, 59.0), True, 2.0, False, (1, 59.0)),
        (503, {"retry-after": "1"}, (3, 1, 0.0), True, 1.0, True, (2, 0.0)),
        (503, {}, (3, 3, 0.0), False, 0.0, False, (3, 0.0)),
        (400, {}, (3, 0, 0.0), False, 0.0, False, (0, 0.0)),
        (429, {"retry-after": "2"}, (0, 0, 0.0), False, 0.0, False, (0, 0.0)),  # retries off
    ],
)
def test_decide_from_a_table(status, headers, state, retry, delay, wait_here, after) -> None:
    from mixlayer_embeddings._retry import RetryState, decide

    decision = decide(status_error(status, headers), RetryState(*state))
    assert (decision.retry, decision.wait_here) == (retry, wait_here)
    assert decision.delay == pytest.approx(delay)
    assert (decision.state.retries_done, decision.state.paced_waited) == after
