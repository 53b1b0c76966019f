"""The flow owns every attempt (``_flow``): whatever an attempt ends with, an answer, an error
status, a transport error or a body that cannot be read, goes into the flow, which redacts the
key, counts the request and decides, in one place, for both clients."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import httpx
import pytest
from conftest import KEY, MODEL

from mixlayer_embeddings import AsyncMixlayerClient, MixlayerClient, ResponseValidationError


class Streamed(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, content: bytes) -> None:
        self.content = content

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield self.content

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield self.content


BODIES = {
    "corrupt gzip": ({"content-encoding": "gzip"}, b"not gzip"),
    "an encoding not asked for": ({"content-encoding": "br"}, b"x" * 100),
    "a body too large": ({}, b"[" + b"0," * 2_000_000 + b"0]"),
}


def unreadable(kind: str) -> Any:
    headers, content = BODIES[kind]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers, stream=Streamed(content))

    return handler


def sync_failure(kind: str) -> tuple[ResponseValidationError, int]:
    transport = httpx.MockTransport(unreadable(kind))
    client = MixlayerClient(api_key=KEY, model=MODEL, http_client=httpx.Client(transport=transport))
    with client, pytest.raises(ResponseValidationError) as info:
        client.embed(["a"], dimensions=32)
    return info.value, client.usage.requests


def async_failure(kind: str) -> tuple[ResponseValidationError, int]:
    async def go() -> tuple[ResponseValidationError, int]:
        transport = httpx.MockTransport(unreadable(kind))
        client = AsyncMixlayerClient(
            api_key=KEY, model=MODEL, http_client=httpx.AsyncClient(transport=transport)
        )
        async with client:
            with pytest.raises(ResponseValidationError) as info:
                await client.embed(["a"], dimensions=32)
        return info.value, client.usage.requests

    return asyncio.run(go())


@pytest.mark.parametrize("kind", list(BODIES))
@pytest.mark.parametrize("failure", [sync_failure, async_failure], ids=["sync", "async"])
def test_a_body_that_cannot_be_read_is_counted_and_carries_no_key(failure, kind) -> None:
    error, requests = failure(kind)
    assert error.request is not None
    assert KEY not in error.request.headers.get("authorization", "")
    assert KEY.encode() not in pickle.dumps(error)
    assert requests == 1  # it was sent: counted as every request is


@pytest.fixture(scope="module")
def slow_server():
    from mixlayer_embeddings.emulator import Emulator

    with Emulator(latency_ms=3000) as emulator:  # every answer takes 3 s
        yield emulator


@pytest.mark.parametrize("items", [1, 8])
def test_a_deadline_is_not_congestion_the_call_ends_on_time(slow_server, items) -> None:
    # deadline=1.0 returned after 61 s: the read timeout the deadline shortened was taken as
    # the server's congestion (the request split, the halves waiting a drain), and the error
    # said "0 attempts over 0.0 s".
    import time

    from mixlayer_embeddings import APITimeoutError

    with MixlayerClient(
        api_key=slow_server.api_key, model=slow_server.model, base_url=slow_server.base_url
    ) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as info:
            client.embed([f"text {i}" for i in range(items)], dimensions=32, deadline=1.0)
        took = time.monotonic() - started
        assert took < 2.0
        assert "1 attempt over" in str(info.value)
        assert client._capacity.size_cap is None  # no split, no window learned from it


def test_an_abandoned_sync_call_stops_sending() -> None:
    # After embed() raised, batches in flight kept retrying, splitting and bisecting on
    # daemon threads: 42 more requests in 8 s, billed and holding the client's window.
    import threading
    import time

    from mixlayer_embeddings import BadRequestError

    seen: list[float] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            seen.append(time.monotonic())
        if b"poison" in request.content:
            return httpx.Response(400, json={"error": {"message": "no", "code": "bad_param"}})
        time.sleep(0.2)
        return httpx.Response(500, json={"error": {"message": "busy"}})

    transport = httpx.MockTransport(handler)
    with MixlayerClient(
        api_key=KEY,
        model=MODEL,
        http_client=httpx.Client(transport=transport),
        batch_size=1,
        max_concurrency=4,
        max_retries=5,
    ) as client:
        texts = [f"text {i}" for i in range(8)]
        texts[0] = "poison"
        with pytest.raises(BadRequestError):
            client.embed(texts)
        time.sleep(0.3)  # a request past its last check as the call raised reaches the server
        with lock:
            at_raise = len(seen)
        time.sleep(2.0)  # backoffs of 0.5 s and more would have sent again by now
        with lock:
            assert len(seen) == at_raise


def test_a_stream_whose_consumer_stops_stops_sending() -> None:
    import threading
    import time

    from conftest import FakeService

    seen: list[float] = []
    lock = threading.Lock()
    service = FakeService()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            seen.append(time.monotonic())
        if b"first" in request.content:
            return service(request)
        time.sleep(0.2)
        return httpx.Response(500, json={"error": {"message": "busy"}})

    transport = httpx.MockTransport(handler)
    with MixlayerClient(
        api_key=KEY,
        model=MODEL,
        http_client=httpx.Client(transport=transport),
        batch_size=1,
        max_concurrency=4,
        max_retries=5,
    ) as client:
        stream = client.iter_embed(["first", *(f"text {i}" for i in range(7))])
        for _ in stream:
            break  # a consumer that has what it wanted
        stream.close()
        time.sleep(0.3)  # the requests in flight end
        with lock:
            after_close = len(seen)
        time.sleep(2.0)
        with lock:
            assert len(seen) == after_close


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_deadline_bounds_the_wait_for_a_slot_another_call_holds(slow_server, flavour) -> None:
    # deadline=0.5 waited 5.7 s for a slot held by another call on the same client.
    import threading
    import time

    from mixlayer_embeddings import APITimeoutError

    settings = {
        "api_key": slow_server.api_key,
        "model": slow_server.model,
        "base_url": slow_server.base_url,
        "max_concurrency": 1,
    }
    if flavour == "sync":
        with MixlayerClient(**settings) as client:
            holder = threading.Thread(target=client.embed, args=(["hold the slot"],))
            holder.start()
            time.sleep(0.3)  # its request is in flight: the one slot is taken
            started = time.monotonic()
            with pytest.raises(APITimeoutError):
                client.embed(["waits"], deadline=0.5)
            took = time.monotonic() - started
            holder.join()
    else:

        async def go() -> float:
            async with AsyncMixlayerClient(**settings) as client:
                holder = asyncio.ensure_future(client.embed(["hold the slot"]))
                await asyncio.sleep(0.3)
                started = time.monotonic()
                with pytest.raises(APITimeoutError):
                    await client.embed(["waits"], deadline=0.5)
                took = time.monotonic() - started
                await holder
                return took

        took = asyncio.run(go())
    assert took < 1.0


def test_a_batch_that_is_never_answered_in_time_spends_one_retry_budget() -> None:
    # With max_retries=3, a call of 2,048 texts made 14 timed-out attempts (each split half
    # had a fresh budget, and a drain): about 23 minutes at the default read timeout. The
    # error said "4 attempts".
    from conftest import FakeClock

    from mixlayer_embeddings import APITimeoutError

    sent: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(1)
        raise httpx.ReadTimeout("no answer in time", request=request)

    with (
        MixlayerClient(
            api_key=KEY,
            model=MODEL,
            http_client=httpx.Client(transport=httpx.MockTransport(handler)),
            max_retries=3,
            clock=FakeClock(),
        ) as client,
        pytest.raises(APITimeoutError) as info,
    ):
        client.embed([f"text {i}" for i in range(2048)])
    assert len(sent) == 4  # one attempt and three retries, split or not
    assert "4 attempts" in str(info.value)


def _hostile(kind: str) -> Any:
    def handler(request: httpx.Request) -> httpx.Response:
        if kind == "connect":
            raise httpx.ConnectError("refused", request=request)
        if kind == "read timeout":
            raise httpx.ReadTimeout("slow", request=request)
        if kind == "not json":
            return httpx.Response(200, text="<html>hello</html>")
        if kind == "wrong count":
            return httpx.Response(200, json={"data": [], "model": MODEL})
        status = int(kind)
        envelope = {"error": {"message": "no", "type": "x", "code": "invalid_input"}}
        return httpx.Response(status, json=envelope, headers={"retry-after": "0"})

    return handler


KINDS = ["400", "401", "403", "404", "413", "429", "500", "502", "503"]
KINDS += ["connect", "read timeout", "not json", "wrong count", *BODIES]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_no_error_of_any_kind_holds_the_key(kind, flavour) -> None:
    import traceback

    from conftest import FakeClock

    from mixlayer_embeddings import MixlayerError

    handler = unreadable(kind) if kind in BODIES else _hostile(kind)
    settings: dict[str, Any] = {"api_key": KEY, "model": MODEL, "max_retries": 1}
    settings["clock"] = FakeClock()
    if flavour == "sync":
        transport = httpx.MockTransport(handler)
        client = MixlayerClient(http_client=httpx.Client(transport=transport), **settings)
        with client, pytest.raises(MixlayerError) as info:
            client.embed(["a", "b"], dimensions=32)
        error = info.value
    else:

        async def go() -> BaseException:
            transport = httpx.MockTransport(handler)
            client = AsyncMixlayerClient(
                http_client=httpx.AsyncClient(transport=transport), **settings
            )
            async with client:
                with pytest.raises(MixlayerError) as info:
                    await client.embed(["a", "b"], dimensions=32)
            return info.value

        error = asyncio.run(go())
    assert KEY not in repr(error) and KEY not in str(error)
    assert KEY.encode() not in pickle.dumps(error)
    for value in vars(error).values():
        assert KEY not in repr(value)
    request = getattr(error, "request", None)
    if request is not None:
        assert KEY not in request.headers.get("authorization", "")
    assert KEY not in "".join(traceback.format_exception(error))


def test_a_server_answering_429_retry_after_0_for_ever_is_not_retried_for_ever() -> None:
    # Each wait of 0 s was free pacing: the call never ended.
    from conftest import FakeClock

    from mixlayer_embeddings import RateLimitError

    sent: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(1)
        return httpx.Response(429, headers={"retry-after": "0"}, json={"error": {}})

    client = MixlayerClient(
        api_key=KEY,
        model=MODEL,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        max_retries=2,
        clock=FakeClock(),
    )
    with client, pytest.raises(RateLimitError):
        client.embed(["a"])
    assert len(sent) == 15 + 1 + 2  # free paced waits (60 s at 4 s each), then the budget


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_a_batch_against_a_server_that_never_answers_takes_at_most_2r_plus_1_read_timeouts(
    max_retries,
) -> None:
    # The README's bound: (2R + 1) x r for one batch (R retries, read timeout r).
    from conftest import FakeClock

    from mixlayer_embeddings import APITimeoutError

    clock = FakeClock()
    read_timeout = 60.0
    sent: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(clock.now())
        clock.advance(read_timeout)  # the server says nothing until the read times out
        raise httpx.ReadTimeout("no answer", request=request)

    client = MixlayerClient(
        api_key=KEY,
        model=MODEL,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        max_retries=max_retries,
        timeout=(10.0, read_timeout),
        clock=clock,
    )
    started = clock.now()
    with client, pytest.raises(APITimeoutError):
        client.embed([f"text {i}" for i in range(2048)])
    assert len(sent) == max_retries + 1
    assert clock.now() - started <= (2 * max_retries + 1) * read_timeout


def test_an_abandoned_sync_call_stops_sleeping_too() -> None:
    # Its batches slept out their backoff (here 5 s asked by Retry-After) on daemon threads.
    import threading
    import time

    from mixlayer_embeddings import BadRequestError

    def handler(request: httpx.Request) -> httpx.Response:
        if b"poison" in request.content:
            time.sleep(0.2)  # the others are asleep by now
            return httpx.Response(400, json={"error": {"message": "no", "code": "bad_param"}})
        return httpx.Response(500, headers={"retry-after": "5"}, json={"error": {}})

    transport = httpx.MockTransport(handler)
    client = MixlayerClient(
        api_key=KEY,
        model=MODEL,
        http_client=httpx.Client(transport=transport),
        batch_size=1,
        max_concurrency=4,
    )
    earlier = set(threading.enumerate())  # other tests' workers are not this call's
    with client, pytest.raises(BadRequestError):
        client.embed(["poison", "a", "b", "c"])

    def ours_alive() -> list[threading.Thread]:
        return [
            t
            for t in threading.enumerate()
            if t.name == "mixlayer-embed" and t not in earlier and t.is_alive()
        ]

    ended_by = time.monotonic() + 2.0  # well before the 5 s they were told to wait
    while ours_alive() and time.monotonic() < ended_by:
        time.sleep(0.05)
    assert ours_alive() == []
