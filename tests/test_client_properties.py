"""Property-based: any input gives vectors (one per item, in order) or a clear typed error."""

# A property either returns vectors or raises; both outcomes are checked in one body.
# ruff: noqa: PT017

from __future__ import annotations

import asyncio

import httpx
from conftest import KEY, MODEL, FakeService, examples, vector_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from langchain_mixlayer import MixlayerEmbeddings
from llama_index.embeddings.mixlayer import MixlayerEmbedding
from mixlayer_embeddings import (
    AsyncMixlayerClient,
    InvalidRequestError,
    MixlayerClient,
    MixlayerError,
)

FAST = settings(
    max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

scalars = st.one_of(
    st.text(max_size=20),
    st.just(""),
    st.sampled_from([" ", "\t\n", "\u200b", "\x00", "é", "\U0001d518\U0001d52b\U0001d526"]),
    st.none(),
    st.integers(-5, 10**6),
    st.floats(allow_nan=True),
    st.booleans(),
    st.binary(max_size=4),
)
anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=6), max_leaves=30)


def mock_client(service: FakeService, cls=MixlayerClient, **kw):
    http = (httpx.Client if cls is MixlayerClient else httpx.AsyncClient)(
        transport=httpx.MockTransport(service)
    )
    return cls(api_key=KEY, model=MODEL, http_client=http, batch_size=3, **kw)


def expected_items(value) -> list:
    single = isinstance(value, str) or (
        isinstance(value, list)
        and value
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )
    return [value] if single else list(value)


@FAST
@given(anything)
def test_core_gives_vectors_in_order_or_a_typed_error(value) -> None:
    service = FakeService()
    with mock_client(service) as client:
        try:
            response = client.embed(value)
        except InvalidRequestError as exc:
            assert isinstance(exc, ValueError)
            assert exc.param == "input"
            assert service.requests == []  # refused before sending
            return
    items = expected_items(value)
    assert response.embeddings == [vector_for(item) for item in items]


@FAST
@given(st.lists(st.one_of(st.text(max_size=30), scalars), max_size=12))
def test_langchain_documents_give_one_vector_each_or_a_typed_error(texts) -> None:
    service = FakeService()
    emb = MixlayerEmbeddings(
        model=MODEL,
        api_key=KEY,
        batch_size=4,
        http_client=httpx.Client(transport=httpx.MockTransport(service)),
    )
    try:
        vectors = emb.embed_documents(texts)
    except MixlayerError as exc:
        assert isinstance(exc, ValueError)
        bad = {i for i, t in enumerate(texts) if not isinstance(t, str) or not t}
        assert exc.indexes
        assert set(exc.indexes) <= bad  # wrong types are named first, then empty strings
        return
    assert vectors == [vector_for(t) for t in texts]


@FAST
@given(st.lists(st.text(min_size=1, max_size=30), max_size=12))
def test_llamaindex_async_batches_keep_order(texts) -> None:
    service = FakeService(shuffle=True)
    emb = MixlayerEmbedding(
        model_name=MODEL,
        api_key=KEY,
        embed_batch_size=3,
        async_http_client=httpx.AsyncClient(transport=httpx.MockTransport(service)),
    )
    vectors = asyncio.run(emb.aget_text_embedding_batch(texts))
    assert vectors == [vector_for(t) for t in texts]


@FAST
@given(
    dimensions=st.one_of(st.none(), st.integers(-10, 5000), st.floats(), st.text(max_size=3)),
    input_type=st.one_of(
        st.none(), st.sampled_from(["query", "document", "passage"]), st.integers()
    ),
    encoding_format=st.one_of(st.none(), st.sampled_from(["float", "base64", "int8", ""])),
)
def test_parameters_are_accepted_or_refused_by_name(
    dimensions, input_type, encoding_format
) -> None:
    service = FakeService()

    async def go():
        async with mock_client(service, AsyncMixlayerClient) as client:
            return await client.embed(
                ["a"],
                dimensions=dimensions,
                input_type=input_type,
                encoding_format=encoding_format,
            )

    try:
        response = asyncio.run(go())
    except InvalidRequestError as exc:
        assert exc.param in ("dimensions", "input_type", "encoding_format")
        assert exc.param in str(exc)
        assert service.requests == []
        return
    assert len(response.embeddings) == 1
    assert 32 <= (dimensions or 32) <= 4096


def test_a_huge_list_is_split_not_refused() -> None:
    service = FakeService(dims=2)
    with MixlayerClient(
        api_key=KEY, model=MODEL, http_client=httpx.Client(transport=httpx.MockTransport(service))
    ) as client:
        response = client.embed([f"t{i}" for i in range(10_000)])
    assert len(response.embeddings) == 10_000
    assert max(len(b["input"]) for b in service.bodies) <= 2048
