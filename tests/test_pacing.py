"""The pacer from a table of events, and against the emulator's per-key rate limit."""

from __future__ import annotations

import pytest

from mixlayer_embeddings import AsyncMixlayerClient
from mixlayer_embeddings._pacing import BACKOFF, FAST_PROBE, PROBE, RatePacer


@pytest.mark.parametrize(
    ("events", "rate"),
    [
        ([], None),
        ([("s", 0.0)] * 3, None),  # successes alone never start pacing
        # 2 successes within a second, then a 429: 2/s (a burst counts over at least 1 s).
        ([("s", 9.5), ("s", 9.6), ("t", 10.0, 9.9)], 2.0),
        ([("s", 8.5), ("s", 9.0), ("s", 9.5), ("t", 10.0, 9.9)], 2.0),  # 3 over 1.5 s
        ([("s", 9.5), ("s", 9.6), ("t", 10.0, 9.9), ("s", 10.5)], 2.0 * (1 + FAST_PROBE)),
        # A 429 for a request sent before the last change says nothing new...
        ([("s", 9.5), ("s", 9.6), ("t", 10.0, 9.9), ("t", 10.2, 9.95)], 2.0),
        # ...one sent after it lowers the rate, and the probe becomes gentle.
        ([("s", 9.5), ("s", 9.6), ("t", 10.0, 9.9), ("t", 10.5, 10.1)], 2.0 * BACKOFF),
        (
            [("s", 9.5), ("s", 9.6), ("t", 10.0, 9.9), ("t", 10.5, 10.1), ("s", 11)],
            2.0 * BACKOFF * (1 + PROBE),
        ),
        ([("t", 1.0, 0.9)], 10.0),  # no success yet: 1 / Retry-After (0.1 s), an upper bound
    ],
)
def test_rate_from_events(events, rate) -> None:
    pacer = RatePacer()
    for kind, now, *sent in events:
        if kind == "s":
            pacer.on_success(now=now)
        else:
            pacer.on_throttle(0.1, sent_at=sent[0], now=now)
    assert pacer.rate == (pytest.approx(rate) if rate is not None else None)


@pytest.mark.parametrize(
    ("retry_after", "rounded", "next_start"),
    [
        (0.08, False, 10.08),  # exact: as told
        (1.0, True, 10 + 1 / 9),  # "1" from a gateway, paced at 9/s: one spacing, not a second
        (1.0, False, 11.0),  # a real second (it said retry-after-ms: 1000)
        (None, False, 10 + 1 / 9),  # nothing said: one spacing
    ],
)
def test_a_rounded_retry_after_holds_for_one_spacing(retry_after, rounded, next_start) -> None:
    pacer = RatePacer(rate=10.0)
    pacer.on_throttle(retry_after, sent_at=9.0, rounded=rounded, now=10.0)
    assert pacer.rate == pytest.approx(9.0)  # a 429 while paced: BACKOFF
    assert 10.0 + pacer.reserve(now=10.0) == pytest.approx(next_start)


def test_a_given_rate_spaces_starts_from_the_first() -> None:
    pacer = RatePacer(rate=4.0)
    assert [pacer.reserve(now=0.0) for _ in range(4)] == [0.0, 0.25, 0.5, 0.75]


async def test_against_the_emulator_rate_limit_few_429s_and_near_the_limit(
    mixlayer_emulator, clock
) -> None:
    """25 requests/s per key, 100 single-text requests, 8 at once, on one fake clock shared
    by the emulator's bucket and the client: only the opening burst (the requests in flight
    when the first 429 comes) can be refused, and the waits add up to near the ideal."""
    mixlayer_emulator.state.clock = clock.now
    mixlayer_emulator.state.rate_limit = 25.0
    texts = [f"t{i}" for i in range(100)]
    async with AsyncMixlayerClient(
        api_key=mixlayer_emulator.api_key,
        model=mixlayer_emulator.model,
        base_url=mixlayer_emulator.base_url,
        batch_size=1,
        max_retries=10,
        clock=clock,
    ) as client:
        started = clock.now()
        response = await client.embed(texts)
        wall = clock.now() - started
    assert len(response.embeddings) == 100
    limited = mixlayer_emulator.state.rate_limited
    # The bucket starts full (25), then 75 more at 25/s: ideally 3.0 s.
    assert limited <= 0.1 * (100 + limited), limited
    # Fake time does not depend on how busy the machine is, only on which answers come first:
    # 3.0-3.2 s in 19 of 20 runs; up to 4.1 s when the first 429 comes before two successes.
    assert 3.0 * 0.95 <= wall <= 3.0 / 0.7, wall
