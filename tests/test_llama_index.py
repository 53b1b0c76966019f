"""LlamaIndex: MixlayerEmbedding over the emulator (real HTTP), conventions, ecosystem."""

from __future__ import annotations

import json
import logging
import pickle
from pathlib import Path

import httpx
import pytest
from conftest import KEY, MODEL, PASSAGES
from llama_index.core import Document, Settings, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.ingestion import IngestionPipeline
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter

import llama_index_mixlayer
from llama_index.embeddings.mixlayer import (
    ConfigurationError,
    InvalidInputError,
    MixlayerEmbedding,
)


@pytest.fixture
async def make(mixlayer_emulator, wire):
    # An async fixture, so its teardown closes the injected async client on the test's loop.
    made: list[MixlayerEmbedding] = []

    def factory(**kwargs) -> MixlayerEmbedding:
        params = {
            "model_name": mixlayer_emulator.model,
            "api_key": mixlayer_emulator.api_key,
            "api_base": mixlayer_emulator.base_url,
            "http_client": httpx.Client(event_hooks={"request": [wire.hook]}),
            "async_http_client": httpx.AsyncClient(event_hooks={"request": [wire.ahook]}),
            **kwargs,
        }
        made.append(MixlayerEmbedding(**params))
        return made[-1]

    yield factory
    for emb in made:
        await emb.aclose()
        if emb.http_client is not None:
            emb.http_client.close()
        if emb.async_http_client is not None:
            await emb.async_http_client.aclose()


def test_conventions() -> None:
    assert issubclass(MixlayerEmbedding, BaseEmbedding)
    assert MixlayerEmbedding.class_name() == "MixlayerEmbedding"
    assert set(llama_index_mixlayer.__all__) >= {
        "MixlayerEmbedding",
        "MixlayerError",
        "APIError",
        "RateLimitError",
    }
    import llama_index.embeddings.mixlayer as namespaced

    assert namespaced.MixlayerEmbedding is llama_index_mixlayer.MixlayerEmbedding
    assert namespaced.__all__ == llama_index_mixlayer.__all__
    # One package, the LlamaHub way: the code lives at llama_index/embeddings/mixlayer/base.py,
    # the older path only re-exports it.
    assert MixlayerEmbedding.__module__ == "llama_index.embeddings.mixlayer.base"
    shim = Path(llama_index_mixlayer.__file__).parent
    assert sorted(p.name for p in shim.glob("*.py")) == ["__init__.py"]
    import llama_index
    import llama_index.embeddings

    assert getattr(llama_index, "__file__", None) is None  # PEP 420 namespace, not shadowed
    assert getattr(llama_index.embeddings, "__file__", None) is None


def test_query_as_query_and_texts_as_documents(make, wire) -> None:
    emb = make(dimensions=128)
    q = emb.get_query_embedding("How do plants make energy from light?")
    one = emb.get_text_embedding(PASSAGES[0])
    many = emb.get_text_embedding_batch(PASSAGES)
    assert wire.input_types() == ["query", "document", "document"]
    assert [b["dimensions"] for b in wire.bodies] == [128] * 3
    assert len(q) == 128
    assert many[0] == one
    scores = [sum(a * b for a, b in zip(q, d, strict=True)) for d in many]
    assert max(range(5), key=scores.__getitem__) == 1


async def test_async_twins(make, wire) -> None:
    emb = make()
    q = await emb.aget_query_embedding("Paris tower")
    t = await emb.aget_text_embedding(PASSAGES[0])
    many = await emb.aget_text_embedding_batch(PASSAGES)
    assert wire.input_types() == ["query", "document", "document"]
    assert q == emb.get_query_embedding("Paris tower")
    assert many[0] == t


def test_a_batch_is_one_core_call_split_into_concurrent_requests(make, wire) -> None:
    emb = make(embed_batch_size=40, max_concurrency=4, dimensions=32)
    texts = [f"chunk {i}" for i in range(200)]
    handler = LlamaDebugHandler()
    emb.callback_manager = CallbackManager([handler])
    vectors = emb.get_text_embedding_batch(texts, show_progress=False)
    assert [len(b["input"]) for b in wire.bodies] == [40] * 5
    assert len(vectors) == 200
    assert vectors[150] == make(dimensions=32).get_text_embedding("chunk 150")
    events = handler.get_event_pairs(CBEventType.EMBEDDING)
    assert len(events) == 1
    assert len(events[0][1].payload["chunks"]) == 200


def test_input_type_none_is_omitted(make, wire) -> None:
    emb = make(query_input_type=None, document_input_type=None)
    emb.get_query_embedding("a")
    emb.get_text_embedding("b")
    assert wire.input_types() == [None, None]


def test_empty_text_named_by_index(make, wire) -> None:
    with pytest.raises(InvalidInputError) as info:
        make().get_text_embedding_batch(["a", "", "c"])
    assert info.value.indexes == [1]
    assert wire.bodies == []


def test_embed_batch_size_is_capped_at_the_service_limit() -> None:
    with pytest.raises(ValueError, match="2048"):
        MixlayerEmbedding(model_name=MODEL, api_key=KEY, embed_batch_size=4096)


def test_unknown_keyword_is_an_error() -> None:
    with pytest.raises(ValueError, match="dimension"):
        MixlayerEmbedding(model_name=MODEL, api_key=KEY, dimension=64)


def test_environment_configuration(monkeypatch) -> None:
    with pytest.raises(ValueError, match="MIXLAYER_API_KEY") as info:
        MixlayerEmbedding(model_name=MODEL)
    assert isinstance(info.value.errors()[0]["ctx"]["error"], ConfigurationError)
    monkeypatch.setenv("MIXLAYER_API_KEY", KEY)
    with pytest.raises(ValueError, match="MIXLAYER_EMBEDDING_MODEL"):
        MixlayerEmbedding()
    monkeypatch.setenv("MIXLAYER_EMBEDDING_MODEL", "env/model")
    monkeypatch.setenv("MIXLAYER_BASE_URL", "http://127.0.0.1:1/v1")
    emb = MixlayerEmbedding()
    assert (emb.model_name, emb.api_base) == ("env/model", "http://127.0.0.1:1/v1")


def test_the_key_leaks_nowhere(mixlayer_emulator, caplog, monkeypatch) -> None:
    caplog.set_level(logging.DEBUG)
    key = mixlayer_emulator.api_key
    handler = LlamaDebugHandler()
    emb = MixlayerEmbedding(
        model_name=MODEL,
        api_key=key,
        api_base=mixlayer_emulator.base_url,
        callback_manager=CallbackManager([handler]),
    )
    emb.get_text_embedding_batch(["hello"])
    emb.get_query_embedding("hello")
    events = handler.get_events()
    forms = [
        repr(emb),
        str(emb),
        json.dumps(emb.to_dict()),
        emb.to_json(),
        json.dumps(emb.to_payload()),
        repr(events),
        str([e.payload for e in events]),
        caplog.text,
    ]
    assert all(key not in form for form in forms)
    pickled = pickle.dumps(emb)
    assert key.encode() not in pickled
    monkeypatch.setenv("MIXLAYER_API_KEY", key)
    restored = MixlayerEmbedding.from_dict(emb.to_dict())
    assert restored.get_query_embedding("hello") == emb.get_query_embedding("hello")
    assert pickle.loads(pickled).get_query_embedding("hello") == emb.get_query_embedding("hello")


def test_settings_index_retriever_and_query_engine(make, wire, monkeypatch) -> None:
    emb = make(dimensions=256)
    monkeypatch.setattr(Settings, "_embed_model", emb)
    monkeypatch.setattr(Settings, "_llm", MockLLM())
    index = VectorStoreIndex.from_documents([Document(text=p) for p in PASSAGES])
    assert wire.input_types() == ["document"]
    hits = index.as_retriever(similarity_top_k=1).retrieve(
        "Which insects dance to show where flowers are?"
    )
    assert hits[0].node.get_content() == PASSAGES[4]
    assert wire.bodies[-1]["input_type"] == "query"
    response = index.as_query_engine(similarity_top_k=1).query("What is the Eiffel Tower?")
    assert response.source_nodes[0].node.get_content() == PASSAGES[0]
    assert wire.input_types()[-1] == "query"
    assert wire.bodies[-1]["input"] == "What is the Eiffel Tower?"


async def test_ingestion_pipeline_with_the_embedding_as_a_transformation(make, wire) -> None:
    emb = make(dimensions=64)
    pipeline = IngestionPipeline(
        transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0), emb]
    )
    nodes = await pipeline.arun(documents=[Document(text=" ".join(PASSAGES))])
    assert nodes and all(len(n.embedding) == 64 for n in nodes)
    assert set(wire.input_types()) == {"document"}
    sync_nodes = IngestionPipeline(
        transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=0), emb]
    ).run(documents=[Document(text=" ".join(PASSAGES))])
    assert [n.embedding for n in sync_nodes] == [n.embedding for n in nodes]


@pytest.mark.vcr
def test_cassette_replay(cassette_target) -> None:
    emb = MixlayerEmbedding(
        model_name=cassette_target["model"],
        api_key=cassette_target["api_key"],
        api_base=cassette_target["base_url"],
        dimensions=64,
    )
    assert len(emb.get_query_embedding("What is the capital of France?")) == 64
    vectors = emb.get_text_embedding_batch(["Paris is the capital of France.", "Bread."])
    assert [len(v) for v in vectors] == [64, 64]


@pytest.mark.vcr
async def test_cassette_replay_async(cassette_target) -> None:
    emb = MixlayerEmbedding(
        model_name=cassette_target["model"],
        api_key=cassette_target["api_key"],
        api_base=cassette_target["base_url"],
        dimensions=64,
    )
    assert len(await emb.aget_query_embedding("Where is Paris?")) == 64


async def test_acall_passes_keyword_arguments_through(make, wire) -> None:
    """TransformComponent.acall(nodes, **kwargs) forwards kwargs to aget_text_embedding_batch;
    the async twin used to drop them (TypeError)."""
    from llama_index.core.schema import TextNode

    emb = make()
    nodes = [TextNode(text=f"node {i}") for i in range(3)]
    result = await emb.acall(nodes, in_place=True, show_progress=False)
    assert [len(n.embedding) for n in result] == [4096] * 3
    assert wire.input_types() == ["document"]
    assert emb.get_text_embedding_batch(["x"], extra_kwarg=True)  # the sync twin, as before
