"""Identical items within one call (or one request of a stream) are sent once and their vector
given to every copy, against the emulator (which counts the items it embeds); ``dedupe=False``
sends every copy."""

from __future__ import annotations

import numpy as np
import pytest

from mixlayer_embeddings import (
    AsyncMixlayerClient,
    AuthenticationError,
    InputRejectedError,
    MixlayerClient,
)
from mixlayer_embeddings.emulator import embed_items

POISON = "x " * 40_000  # longer than the emulator's context window

TEXTS = ["cookie banner", "a page", "cookie banner", "footer", "cookie banner", "footer"]


def client_for(emulator, **settings) -> MixlayerClient:
    return MixlayerClient(
        api_key=emulator.api_key, base_url=emulator.base_url, model=emulator.model, **settings
    )


def expected(texts: list[str]) -> np.ndarray:
    return embed_items(texts, dimensions=32, input_type="document")


@pytest.mark.parametrize("dedupe", [True, False])
def test_copies_are_sent_once_and_every_position_gets_its_vector(mixlayer_emulator, dedupe):
    with client_for(mixlayer_emulator, dedupe=dedupe) as client:
        before = mixlayer_emulator.state.items
        vectors = client.embed(TEXTS, dimensions=32, input_type="document").embeddings
        sent = mixlayer_emulator.state.items - before
        array = client.embed_array(TEXTS, dimensions=32, input_type="document").vectors
        streamed = np.concatenate(
            [b.embeddings for b in client.iter_embed(iter(TEXTS), dimensions=32,
                                                     input_type="document", as_array=True)]
        )  # fmt: skip
    assert sent == (3 if dedupe else 6)
    assert np.array_equal(np.array(vectors, dtype=np.float32), expected(TEXTS))
    assert np.array_equal(array, expected(TEXTS))
    assert np.array_equal(streamed, expected(TEXTS))


async def test_the_async_client_sends_copies_once(mixlayer_emulator):
    async with AsyncMixlayerClient(
        api_key=mixlayer_emulator.api_key,
        base_url=mixlayer_emulator.base_url,
        model=mixlayer_emulator.model,
    ) as client:
        before = mixlayer_emulator.state.items
        result = await client.embed_array(TEXTS, dimensions=32, input_type="document")
    assert mixlayer_emulator.state.items - before == 3
    assert np.array_equal(result.vectors, expected(TEXTS))


def test_every_copy_of_a_refused_item_is_named_and_the_rest_are_kept(mixlayer_emulator):
    texts = ["fine", POISON, "other", POISON, "fine"]
    # One request for all five (a budget above the poison's tokens): copies inside it.
    with (
        client_for(mixlayer_emulator, max_tokens_per_request=500_000) as client,
        pytest.raises(InputRejectedError) as info,
    ):
        client.embed(texts, dimensions=32, input_type="document")
    assert info.value.indexes == [1, 3]
    assert str(info.value).startswith("The service refused input items 1, 3 (")
    partial = info.value.partial
    assert partial is not None and partial.failed_indexes == [1, 3]
    kept = [partial.embeddings[i] for i in (0, 2, 4)]
    assert np.array_equal(np.array(kept, dtype=np.float32), expected(["fine", "other", "fine"]))


def test_token_arrays_are_deduplicated_too(mixlayer_emulator):
    tokens = [[1, 2, 3], [4, 5], [1, 2, 3]]
    with client_for(mixlayer_emulator) as client:
        before = mixlayer_emulator.state.items
        vectors = client.embed(tokens, dimensions=32).embeddings
    assert mixlayer_emulator.state.items - before == 2
    assert vectors[0] == vectors[2] != vectors[1]


def test_copies_in_different_requests_of_one_call_are_sent_once(mixlayer_emulator):
    texts = [f"text {i % 5}" for i in range(40)]  # 5 distinct, spread over every request
    seen: list[int] = []
    with client_for(mixlayer_emulator, batch_size=4) as client:
        before = mixlayer_emulator.state.items
        response = client.embed(
            texts, dimensions=32, input_type="document", on_progress=seen.append
        )
        array = client.embed_array(texts, dimensions=32, input_type="document").vectors
    assert mixlayer_emulator.state.items - before == 5 + 5
    assert sum(seen) == 40  # progress counts the inputs, copies included
    assert np.array_equal(np.array(response.embeddings, dtype=np.float32), expected(texts))
    assert np.array_equal(array, expected(texts))
    response.embeddings[0][0] = 99.0  # each input owns its vector: no copy changes with it
    assert response.embeddings[5][0] != 99.0


def test_a_refused_item_repeated_across_requests_is_named_at_every_copy(mixlayer_emulator):
    texts = ["fine", POISON, "other", "fine", POISON, "last"]
    with (
        client_for(mixlayer_emulator, batch_size=2) as client,
        pytest.raises(InputRejectedError) as info,
    ):
        client.embed(texts, dimensions=32, input_type="document")
    assert info.value.indexes == [1, 4]
    assert str(info.value).startswith("The service refused input items 1, 4 (")
    partial = info.value.partial
    assert partial is not None and partial.total == 6 and partial.failed_indexes == [1, 4]
    kept = [partial.embeddings[i] for i in (0, 2, 3, 5)]
    assert np.array_equal(
        np.array(kept, dtype=np.float32), expected(["fine", "other", "fine", "last"])
    )
    retried = (
        client_for(mixlayer_emulator)
        .embed(["mended one", "mended two"], dimensions=32, input_type="document")
        .embeddings
    )
    assert partial.fill(retried)[4] == retried[1]


def test_a_call_that_fails_part_way_spreads_what_it_did_embed(mixlayer_emulator):
    texts = [f"text {i % 6}" for i in range(24)]
    mixlayer_emulator.script([{"latency_ms": 0}, {"status": 401}])
    with (
        client_for(mixlayer_emulator, batch_size=2, max_concurrency=1) as client,
        pytest.raises(AuthenticationError) as info,
    ):
        client.embed(texts, dimensions=32, input_type="document")
    partial = info.value.partial
    assert partial.total == 24
    done = [i for i in range(24) if partial.embeddings[i] is not None]
    assert done == [i for i in range(24) if i % 6 in (0, 1)]  # the first request's 2 texts
    assert sorted(partial.failed_indexes) == [i for i in range(24) if i % 6 not in (0, 1)]


def test_a_flush_in_a_stream_sends_what_was_read_and_hands_it_over_first(mixlayer_emulator):
    from mixlayer_embeddings._batching import FLUSH

    received: list[int] = []
    seen_on_resume: list[int] = []

    def texts():
        yield "a"
        yield "b"
        yield FLUSH  # a partial batch: sent now, and its answer handed over before reading on
        seen_on_resume.append(len(received))
        yield "c"

    with client_for(mixlayer_emulator, batch_size=100) as client:
        for batch in client.iter_embed(texts(), dimensions=32):
            received.append(len(batch.embeddings))
    assert received == [2, 1]
    assert seen_on_resume == [1]


async def test_the_async_stream_honours_a_flush_too(mixlayer_emulator):
    from mixlayer_embeddings._batching import FLUSH

    received: list[int] = []
    seen_on_resume: list[int] = []

    async def texts():
        yield "a"
        yield "b"
        yield FLUSH
        seen_on_resume.append(len(received))
        yield "c"

    async with AsyncMixlayerClient(
        api_key=mixlayer_emulator.api_key,
        base_url=mixlayer_emulator.base_url,
        model=mixlayer_emulator.model,
        batch_size=100,
    ) as client:
        async for batch in client.iter_embed(texts(), dimensions=32):
            received.append(len(batch.embeddings))
    assert received == [2, 1]
    assert seen_on_resume == [1]


def test_a_partial_array_result_gives_each_input_its_own_row(mixlayer_emulator):
    texts = ["same", "same", POISON]
    with (
        client_for(mixlayer_emulator, max_tokens_per_request=500_000) as client,
        pytest.raises(InputRejectedError) as info,
    ):
        client.embed_array(texts, dimensions=32, input_type="document")
    partial = info.value.partial
    assert partial is not None and partial.failed_indexes == [2]
    first, second = partial.embeddings[0], partial.embeddings[1]
    assert np.array_equal(first, second)
    first[0] = 99.0
    assert second[0] != 99.0
