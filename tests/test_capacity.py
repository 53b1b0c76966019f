"""Sizing work to the server: the token estimator, token-budgeted batches, the capacity
controller (pure, from tables), and the flows that split what the server cannot take."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import KEY, MODEL, FakeClock, FakeService

from mixlayer_embeddings import APIStatusError, MixlayerClient
from mixlayer_embeddings._batching import Chunker, plan_token_batches
from mixlayer_embeddings._capacity import CapacityController
from mixlayer_embeddings._tokens import INITIAL_BYTES_PER_TOKEN, TokenEstimator

# -- the estimator -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("abc", 1),  # 3 bytes at 3.0 bytes/token
        ("a" * 300, 100),
        ("é" * 30, 20),  # 60 UTF-8 bytes, not 30 characters
        ("长城" * 10, 20),  # 60 bytes
        ([1, 2, 3, 4], 4),  # a token array is its own length
        ("x", 1),  # never 0
    ],
)
def test_estimates_are_utf8_bytes_over_the_ratio(item, expected) -> None:
    assert INITIAL_BYTES_PER_TOKEN == 3.0
    assert TokenEstimator().estimate(item) == expected


def test_the_ratio_follows_the_service_usage_within_bounds() -> None:
    estimator = TokenEstimator()
    for _ in range(30):
        estimator.observe(text_bytes=5000, prompt_tokens=1000)  # 5 bytes/token prose
    assert estimator.bytes_per_token == pytest.approx(5.0, rel=0.01)
    assert estimator.estimate("a" * 500) == 100
    for _ in range(30):
        estimator.observe(text_bytes=100, prompt_tokens=1000)  # nonsense: 0.1 byte/token
    assert estimator.bytes_per_token == pytest.approx(1.0, rel=0.01)  # clamped
    estimator.observe(text_bytes=0, prompt_tokens=10)  # nothing to learn from
    assert estimator.bytes_per_token == pytest.approx(1.0, rel=0.01)


# -- token-budgeted batches ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "batch_size", "budget", "expected"),
    [
        ([], 10, 100, []),
        ([10] * 10, 4, 1000, [(0, 3), (3, 7), (7, 10)]),  # the count cap, evened out
        ([10] * 10, 100, 50, [(0, 5), (5, 10)]),  # the token budget
        ([10] * 10, 100, 35, [(0, 3), (3, 5), (5, 8), (8, 10)]),  # 3 batches cannot hold 100
        ([5, 5, 500, 5, 5], 100, 100, [(0, 2), (2, 3), (3, 5)]),  # too big: alone
        ([500], 100, 100, [(0, 1)]),
        ([1] * 4097, 2048, 10**6, [(0, 1366), (1366, 2732), (2732, 4097)]),
    ],
)
def test_plan_token_batches(tokens, batch_size, budget, expected) -> None:
    slices = plan_token_batches(tokens, batch_size, budget)
    assert slices == expected
    for start, stop in slices:
        assert stop - start <= batch_size
        assert stop - start == 1 or sum(tokens[start:stop]) <= budget


def test_a_stream_is_cut_by_the_token_budget_too() -> None:
    chunker = Chunker(batch_size=100, budget=10, estimate=len)
    cut = [chunker.push(text) for text in ["aaaa", "bbbb", "cccc", "dd", "eeeeeeeeeeee", "f"]]
    cut.append(chunker.flush())
    batches = [b for b in cut if b is not None]
    assert [(b.start, b.items, b.tokens) for b in batches] == [
        (0, ["aaaa", "bbbb"], 8),
        (2, ["cccc", "dd"], 6),
        (4, ["eeeeeeeeeeee"], 12),  # larger than the budget: alone
        (5, ["f"], 1),
    ]


# -- the capacity controller, from tables of samples --------------------------------------------


def test_the_window_starts_at_one_request_and_doubles_per_round_on_a_fast_server() -> None:
    c = CapacityController(max_tokens_per_request=1000, max_concurrency=8, read_timeout=60)
    assert (c.window, c.target) == (1000, 10.0)
    t = 0.0
    for expected in (2000, 4000, 8000, 8000):  # a round completes the window; at most 8 requests
        for _ in range(int(c.window) // 1000):
            t += 0.01
            c.on_success(1000, sent_at=t - 0.01, now=t)
        assert c.window == expected
    assert c.throughput == pytest.approx(100_000, rel=0.01)


@pytest.mark.parametrize(
    ("read_timeout", "target", "rate", "window"),
    [
        (60.0, 10.0, 20_000, 200_000),  # a slow accelerator: 10 s of its work
        (5.0, 1.25, 20_000, 25_000),  # a short timeout: a quarter of it
        (5.0, 1.25, 400, 1024),  # slower still: never below the floor
    ],
)
def test_the_window_is_what_the_server_does_in_the_target_time(
    read_timeout, target, rate, window
) -> None:
    c = CapacityController(
        max_tokens_per_request=32_768, max_concurrency=8, read_timeout=read_timeout
    )
    assert c.target == target
    # A queue of 8 requests of 1000 tokens: each answer comes 1000 / rate seconds after the one
    # before it, 8 of those after its request was sent.
    t = 0.0
    for _ in range(400):
        t += 1000 / rate
        c.on_success(1000, sent_at=max(0.0, t - 8 * 1000 / rate), now=t)
    assert c.throughput == pytest.approx(rate, rel=0.01)
    assert c.window == pytest.approx(window, rel=0.01)
    assert c.request_budget() == max(1024, min(32_768, int(c.window) // 3))
    assert c.fits(c.request_budget(), size=10**9) and not c.fits(c.request_budget() + 1, size=1)


def test_answers_slower_than_the_target_shrink_the_window_in_proportion() -> None:
    c = CapacityController(max_tokens_per_request=10_000, max_concurrency=8, read_timeout=40)
    c.window = 80_000
    c.on_success(10_000, sent_at=0.0, now=15.0)  # 1.5x the target: the window's own queue
    assert c.window == pytest.approx(min(90_000, c.throughput * c.target))
    c.window = 80_000
    c.on_success(10_000, sent_at=15.0, now=55.0)  # 4x the 10 s target: a quarter
    assert c.window == pytest.approx(min(20_000, c.throughput * c.target))


def test_a_timeout_halves_and_says_how_long_the_server_stays_busy() -> None:
    c = CapacityController(max_tokens_per_request=32_768, max_concurrency=8, read_timeout=5.0)
    c.window = 262_144
    drain = c.on_timeout(32_768, in_flight=262_144, now=5.0)
    # It did not get through 262,144 tokens in 5 s: at most 52,429/s, halved to be safe.
    assert c.throughput == pytest.approx(262_144 / 5 / 2)
    assert c.window == 131_072
    assert drain == pytest.approx(5.0)  # capped at the read timeout


def test_a_refusal_for_size_caps_every_later_request() -> None:
    c = CapacityController(max_tokens_per_request=32_768, max_concurrency=8, read_timeout=60)
    c.on_too_large(20_000)
    assert c.size_cap == 10_000
    assert c.fits(tokens=100, size=10_000) and not c.fits(tokens=100, size=10_001)
    c.on_too_large(30_000)  # a later, larger refusal does not raise the cap
    assert c.size_cap == 10_000


@pytest.mark.parametrize(
    ("lasting", "answers", "cap"),
    [
        (True, 0, 10_000),
        (True, 100, 10_000),  # the server's own limit (413) is kept
        (False, 3, 10_000),
        (False, 4, None),  # a gateway's (502/504): doubled back to the refused size, lifted
        (False, 100, None),
    ],
)
def test_a_gateways_size_cap_is_lifted_after_answers_a_servers_is_kept(
    lasting, answers, cap
) -> None:
    c = CapacityController(max_tokens_per_request=32_768, max_concurrency=8, read_timeout=60)
    c.on_too_large(20_000, lasting=lasting)
    for i in range(answers):
        c.on_success(100, sent_at=float(i), now=float(i) + 0.1)
    assert c.size_cap == cap


def test_a_one_second_gateway_outage_does_not_slow_a_client_for_ever() -> None:
    # After one 502 on a big body, the same call took 14 requests instead of 2, for the
    # client's whole life (a long-lived adapter in a web app).
    service = FakeService()
    outage = [True]

    def handler(request: httpx.Request) -> httpx.Response:
        if outage[0] and len(request.content) > 30_000:
            outage[0] = False
            return httpx.Response(502, text="<html>Bad Gateway</html>")
        return service(request)

    texts = [f"passage {i} " + "word " * 200 for i in range(60)]  # ~60 kB of text
    with MixlayerClient(
        api_key=KEY,
        model=MODEL,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        max_concurrency=1,
    ) as client:
        per_call = []
        for _ in range(12):
            before = client.usage.requests
            client.embed(texts)
            per_call.append(client.usage.requests - before)
    assert per_call[0] > per_call[-1]
    assert per_call[-1] == per_call[-2] == 1  # one request again, as before the outage


def test_admission_counts_tokens_in_flight_but_always_lets_one_go() -> None:
    c = CapacityController(max_tokens_per_request=1000, max_concurrency=8, read_timeout=60)
    c.window = 2000
    assert c.admits(50_000)  # nothing in flight: even a request over the window
    c.started(1500)
    assert c.admits(500) and not c.admits(501)
    c.finished(1500)
    assert c.in_flight == 0


# -- flows that split what the server cannot take ------------------------------------------------


def sized(service: FakeService, *, max_items: int, status: int = 413, timeout: bool = False):
    """A service that refuses (or never answers) requests of more than ``max_items``."""

    def handler(request: httpx.Request) -> httpx.Response:
        items = json.loads(request.content)["input"]
        if isinstance(items, list) and len(items) > max_items:
            if timeout:
                raise httpx.ReadTimeout("no answer in time", request=request)
            return httpx.Response(status, json={"error": {"message": "request too large"}})
        return service(request)

    return handler


def make_client(handler, clock: FakeClock, **settings) -> MixlayerClient:
    return MixlayerClient(
        api_key=KEY,
        model=MODEL,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        clock=clock,
        **settings,
    )


@pytest.mark.parametrize("status", [413, 502])
def test_a_request_refused_for_its_size_is_split_and_the_cap_is_kept(status) -> None:
    service = FakeService()
    # ~1,340 tokens each: halves of 8 are still big bodies (a 502 on a small one is a fault).
    texts = [f"passage {i:02d} " + "word " * 800 for i in range(16)]
    handler = sized(service, max_items=4, status=status)
    with make_client(handler, FakeClock(), max_tokens_per_request=32_768) as client:
        first = client.embed(texts).embeddings
        assert len(first) == 16
        assert sorted(len(b["input"]) for b in service.bodies) == [4] * 4  # split 16 -> 8 -> 4
        service.bodies.clear()
        second = client.embed(texts).embeddings
    assert second == first
    # Remembered: the next call's requests are sized under the cap from the start.
    assert all(len(b["input"]) <= 4 for b in service.bodies)


def test_a_single_text_refused_for_its_size_is_an_error_not_a_split() -> None:
    service = FakeService()
    with (
        make_client(sized(service, max_items=0), FakeClock()) as client,
        pytest.raises(APIStatusError, match="request too large") as info,
    ):
        client.embed(["one"])
    assert info.value.status_code == 413


def test_a_read_timeout_splits_the_request_and_waits_for_the_server_to_drain() -> None:
    service = FakeService()
    clock = FakeClock()
    texts = [f"chunk {i} " + "token " * 100 for i in range(8)]
    handler = sized(service, max_items=2, timeout=True)
    with make_client(handler, clock, timeout=5.0) as client:
        vectors = client.embed(texts).embeddings
        counters = client.usage
    assert len(vectors) == 8 and vectors == [service.vectors_of(t) for t in texts]
    assert sorted(len(b["input"]) for b in service.bodies) == [2, 2, 2, 2]
    assert counters.timeouts == 3  # 8 -> 4 + 4 -> 2 + 2 + 2 + 2: never resent whole
    # Each split waited for the abandoned request's work, not a blind backoff.
    assert clock.sleeps and all(0 < s <= 5.0 for s in clock.sleeps)


@pytest.mark.parametrize("flavour", ["thread", "task"])
def test_a_large_request_keeps_its_place_in_line(flavour) -> None:
    # Smaller requests that came after it were admitted first, for as long as they kept
    # coming: a long text could wait without bound.
    import asyncio
    import threading
    import time

    from mixlayer_embeddings._clock import SYSTEM_CLOCK
    from mixlayer_embeddings._concurrency import AdaptiveLimit, AsyncGate, ThreadGate
    from mixlayer_embeddings._pacing import RatePacer

    capacity = CapacityController(max_tokens_per_request=100, max_concurrency=8, read_timeout=60)
    capacity.window = 100.0
    admitted: list[str] = []
    if flavour == "thread":
        gate = ThreadGate(AdaptiveLimit(8), RatePacer(), SYSTEM_CLOCK, capacity)
        assert gate.enter(60)  # 60 of the window's 100 tokens in flight

        def request(name: str, tokens: int) -> None:
            assert gate.enter(tokens)
            admitted.append(name)

        def in_line(count: int) -> None:  # waits until that many requests wait
            ends = time.monotonic() + 5
            while len(gate._line) < count and time.monotonic() < ends:
                time.sleep(0.01)

        big = threading.Thread(target=request, args=("big", 50))
        big.start()
        in_line(1)
        small = threading.Thread(target=request, args=("small", 10))
        small.start()
        in_line(2)
        time.sleep(0.05)
        assert admitted == []  # the small one fits, but waits its turn behind the big one
        gate.exit(60)
        big.join(2)
        small.join(2)
    else:

        async def go() -> None:
            gate = AsyncGate(AdaptiveLimit(8), RatePacer(), SYSTEM_CLOCK, capacity)
            assert await gate.enter(60)

            async def request(name: str, tokens: int) -> None:
                assert await gate.enter(tokens)
                admitted.append(name)

            big = asyncio.ensure_future(request("big", 50))
            await asyncio.sleep(0.05)
            small = asyncio.ensure_future(request("small", 10))
            await asyncio.sleep(0.05)
            assert admitted == []
            await gate.exit(60)
            await asyncio.wait_for(asyncio.gather(big, small), 2)

        asyncio.run(go())
    assert admitted == ["big", "small"]
