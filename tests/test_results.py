"""Corpus scale in the core: numpy output, streaming with backpressure, partial results."""

from __future__ import annotations

import asyncio
import threading
import tracemalloc
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from conftest import KEY, MODEL, FakeService, error_response, vector_for

from mixlayer_embeddings import (
    AsyncMixlayerClient,
    InputRejectedError,
    InternalServerError,
    InvalidInputError,
    MixlayerClient,
)
from mixlayer_embeddings.emulator import embed_items


def client(handler, **kwargs) -> MixlayerClient:
    transport = httpx.MockTransport(handler)
    return MixlayerClient(
        api_key=KEY, model=MODEL, http_client=httpx.Client(transport=transport), **kwargs
    )


def aclient(handler, **kwargs) -> AsyncMixlayerClient:
    transport = httpx.MockTransport(handler)
    return AsyncMixlayerClient(
        api_key=KEY, model=MODEL, http_client=httpx.AsyncClient(transport=transport), **kwargs
    )


# -- numpy ---------------------------------------------------------------------------------------


def test_embed_array_is_c_contiguous_float32_in_input_order() -> None:
    service = FakeService(shuffle=True, dims=32)
    texts = [f"text {i}" for i in range(50)]
    with client(service, batch_size=7) as c:
        result = c.embed_array(texts, dimensions=32)
    vectors = result.vectors
    assert vectors.dtype == np.float32 and vectors.flags.c_contiguous
    assert vectors.shape == (50, 32)
    expected = np.array([vector_for(t, 32) for t in texts], dtype=np.float32)
    assert np.array_equal(vectors, expected)
    assert result.requests == 8 and result.usage.total_tokens == 150


def test_embed_array_against_the_emulator_sync_and_async(mixlayer_emulator) -> None:
    texts = [f"passage {i} about bees" for i in range(300)]
    settings = {
        "api_key": mixlayer_emulator.api_key,
        "model": MODEL,
        "base_url": mixlayer_emulator.base_url,
        "batch_size": 64,
    }
    expected = embed_items(texts, dimensions=256, input_type="document")
    with MixlayerClient(**settings) as c:
        assert np.array_equal(
            c.embed_array(texts, dimensions=256, input_type="document").vectors, expected
        )

    async def go() -> np.ndarray:
        async with AsyncMixlayerClient(**settings) as ac:
            return (await ac.embed_array(texts, dimensions=256, input_type="document")).vectors

    assert np.array_equal(asyncio.run(go()), expected)


def test_embed_array_makes_no_python_floats() -> None:
    """Peak traced memory above the array itself stays a fraction of the array, where the
    list path costs ~8x the array in float objects alone."""
    service = FakeService(dims=1024)
    texts = [f"t{i}" for i in range(2000)]
    # Responses made before tracing starts, so only the client's own memory is measured.
    answers: dict[bytes, bytes] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=answers[request.content])

    with client(service, batch_size=250, max_concurrency=1) as warm:
        for i in range(0, 2000, 250):
            for encoding in (None, "float"):
                service.requests.clear()
                warm.embed(texts[i : i + 250], encoding_format=encoding)
                answers[service.requests[0].content] = service(service.requests[0]).content
    with client(handler, batch_size=250, max_concurrency=1) as c:
        c.embed_array(texts[:250])  # warm up imports and caches
        tracemalloc.start()
        vectors = c.embed_array(texts).vectors
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        tracemalloc.start()
        lists = c.embed(texts).embeddings
        _, list_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert len(lists) == len(vectors)
    # The 500-text responses themselves (JSON and base64 text) are most of the overhead.
    print(f"array peak {peak / vectors.nbytes:.2f}x, list peak {list_peak / vectors.nbytes:.2f}x")
    assert peak < 2.0 * vectors.nbytes, (peak, vectors.nbytes)
    assert list_peak > 5 * vectors.nbytes


def test_embed_array_refuses_nan() -> None:
    from conftest import encode

    from mixlayer_embeddings import ResponseValidationError

    answered: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        answered.append(request)
        body = {
            "data": [{"index": 0, "embedding": encode([1.0, float("nan"), 0.0, 0.0])}],
            "model": MODEL,
        }
        return httpx.Response(200, json=body)

    with client(handler) as c, pytest.raises(ResponseValidationError, match="NaN"):
        c.embed_array(["x"])
    assert len(answered) == 1  # the NaN came back from the service, and was refused


# -- streaming -----------------------------------------------------------------------------------


def test_iter_embed_yields_batches_in_order_from_a_generator() -> None:
    service = FakeService(shuffle=True)

    def texts() -> Iterator[str]:
        for i in range(103):
            yield f"line {i}"

    with client(service, batch_size=10, max_concurrency=4) as c:
        batches = list(c.iter_embed(texts(), input_type="document"))
    assert [b.start for b in batches] == list(range(0, 103, 10))
    flat = [v for b in batches for v in b.embeddings]
    assert flat == [vector_for(f"line {i}") for i in range(103)]
    assert all(body["input_type"] == "document" for body in service.bodies)


def test_iter_embed_applies_backpressure() -> None:
    """A consumer that does not take results stops the reading: at most max_concurrency
    batches are in flight or waiting."""
    service = FakeService()
    read = 0

    def texts() -> Iterator[str]:
        nonlocal read
        for i in range(10_000):
            read += 1
            yield f"t{i}"

    with client(service, batch_size=10, max_concurrency=3) as c:
        stream = c.iter_embed(texts())
        first = next(stream)
        assert first.start == 0
        # Let every request already started finish, so the window is as full as it can get:
        # the workers have run ahead as far as they are allowed to.
        deadline = threading.Event()
        for _ in range(500):
            if len(service.requests) >= 3:
                break
            deadline.wait(0.01)
        # The window of 3: the batch the consumer holds and the 2 behind it; nothing more is
        # read or sent until the consumer takes the next one.
        assert len(service.requests) == 3
        assert read == 30
        second = next(stream)
        assert second.start == 10
        assert read == 40
        stream.close()


def test_iter_embed_as_array() -> None:
    service = FakeService(dims=8)
    with client(service, batch_size=4) as c:
        batches = list(c.iter_embed((f"t{i}" for i in range(10)), as_array=True))
    assert [b.embeddings.shape for b in batches] == [(4, 8), (4, 8), (2, 8)]
    assert np.array_equal(batches[2].embeddings[1], np.array(vector_for("t9"), dtype=np.float32))


def test_iter_embed_names_a_bad_item_by_its_input_index() -> None:
    service = FakeService()
    with client(service, batch_size=5, max_concurrency=1) as c:
        stream = c.iter_embed(["a"] * 7 + [""] + ["b"] * 3)
        assert next(stream).start == 0
        with pytest.raises(InvalidInputError) as info:
            list(stream)
    assert info.value.indexes == [7]


def test_iter_embed_yields_everything_before_a_failing_batch_then_raises() -> None:
    service = FakeService()

    def handler(request: httpx.Request) -> httpx.Response:
        if "t25" in request.content.decode():
            return error_response(500, "overloaded")(request)
        return service(request)

    got = []

    def consume(c: MixlayerClient) -> None:
        for batch in c.iter_embed(f"t{i}" for i in range(60)):
            got.append(batch.start)

    c = client(handler, batch_size=10, max_concurrency=2, max_retries=1)
    with c, pytest.raises(InternalServerError) as info:
        consume(c)
    assert got == [0, 10]
    partial = info.value.partial
    assert partial.start == 20 and partial.failed_indexes == list(range(20, 30))


async def test_async_iter_embed_takes_an_async_iterable() -> None:
    service = FakeService()

    async def texts():
        for i in range(25):
            yield f"a{i}"

    async with aclient(service, batch_size=10, max_concurrency=2) as c:
        batches = [b async for b in c.iter_embed(texts())]
    assert [b.start for b in batches] == [0, 10, 20]
    assert [v for b in batches for v in b.embeddings] == [vector_for(f"a{i}") for i in range(25)]


# -- partial results ----------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_batch_that_fails_for_good_keeps_the_others(flavour) -> None:
    service = FakeService()

    def handler(request: httpx.Request) -> httpx.Response:
        if "t35" in request.content.decode():
            return error_response(503, "overloaded")(request)
        return service(request)

    texts = [f"t{i}" for i in range(40)]
    if flavour == "sync":
        c = client(handler, batch_size=10, max_concurrency=1, max_retries=0)
        with c, pytest.raises(InternalServerError) as info:
            c.embed(texts)
    else:

        async def go() -> None:
            async with aclient(handler, batch_size=10, max_concurrency=1, max_retries=0) as c:
                await c.embed(texts)

        with pytest.raises(InternalServerError) as info:
            asyncio.run(go())
    partial = info.value.partial
    assert partial.failed_indexes == list(range(30, 40))
    assert partial.embeddings[:30] == [vector_for(t) for t in texts[:30]]
    merged = partial.fill([vector_for(texts[i]) for i in partial.failed_indexes])
    assert merged == [vector_for(t) for t in texts]


def test_refusals_in_several_batches_are_named_together_for_the_array_path() -> None:
    service = FakeService(dims=8)

    def handler(request: httpx.Request) -> httpx.Response:
        if "poison" in request.content.decode():
            return error_response(400, "invalid_input", message="too long")(request)
        return service(request)

    texts = [f"t{i}" for i in range(30)]
    texts[2] = texts[27] = "poison"
    with client(handler, batch_size=10) as c, pytest.raises(InputRejectedError) as info:
        c.embed_array(texts)
    assert info.value.indexes == [2, 27]
    rows = info.value.partial.embeddings
    assert rows[2] is None and np.array_equal(rows[3], np.array(vector_for("t3"), np.float32))
