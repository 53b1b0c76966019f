"""The service's usage where each framework's users look for it, checked against the
emulator's own count of the tokens it reported."""

from __future__ import annotations

import pytest

from langchain_mixlayer import MixlayerEmbeddings
from llama_index.embeddings.mixlayer import MixlayerEmbedding
from mixlayer_embeddings import MixlayerClient, track_usage

TEXTS = [f"passage {i} about bread, yeast and ovens" for i in range(40)]


@pytest.fixture(autouse=True)
def _fresh_counts(env):
    """Each test compares with the emulator's count since it began."""
    env.state.reset()


@pytest.mark.parametrize("front", ["langchain", "llama_index"])
def test_an_adapter_counts_what_the_service_reported(env, front) -> None:
    state = env.state
    embedder: MixlayerEmbeddings | MixlayerEmbedding = (
        MixlayerEmbeddings(batch_size=8, dimensions=32)
        if front == "langchain"
        else MixlayerEmbedding(embed_batch_size=8, dimensions=32)
    )
    if isinstance(embedder, MixlayerEmbeddings):
        embedder.embed_documents(TEXTS)
        embedder.embed_query("how does bread rise?")
    else:
        embedder.get_text_embedding_batch(TEXTS)
        embedder.get_query_embedding("how does bread rise?")
    served = state.stats()
    assert served["tokens"] > 0
    usage = embedder.usage
    assert (usage.prompt_tokens, usage.total_tokens) == (served["tokens"], served["tokens"])
    assert usage.requests == served["requests"] == 6  # 5 of documents (8 per request), 1 query
    assert (usage.retries, usage.rate_limited) == (0, 0)
    assert embedder.last_usage.requests == 1  # the query
    assert 0 < embedder.last_usage.total_tokens < usage.total_tokens


async def test_async_calls_and_a_usage_block(env) -> None:
    embedder = MixlayerEmbeddings(batch_size=8, dimensions=32)
    with embedder.track_usage() as block:
        await embedder.aembed_documents(TEXTS)
        await embedder.aembed_query("q")
    served = env.state.stats()
    assert block.total_tokens == served["tokens"] == embedder.usage.total_tokens
    assert block.requests == served["requests"] == 6
    before = embedder.usage.total_tokens
    with track_usage() as outside:
        embedder.embed_query("another question")
    assert embedder.usage.total_tokens - before == outside.total_tokens > 0
    assert block.requests == 6  # closed blocks count no more


def test_retries_and_429s_are_counted(env) -> None:
    env.script([{"status": 503}, {"status": 429}])
    embedder = MixlayerEmbedding(embed_batch_size=100, dimensions=32)
    embedder.get_text_embedding_batch(TEXTS[:3])
    assert embedder.usage.requests == 3 and embedder.usage.retries == 2
    assert embedder.usage.rate_limited == 1
    assert embedder.usage.total_tokens == env.state.stats()["tokens"]


def test_a_core_client_call_in_a_block_and_copies_start_at_zero(env) -> None:
    with MixlayerClient() as client, track_usage() as usage:
        client.embed(TEXTS, dimensions=32)
        client.embed_array(TEXTS[:5], dimensions=32)
    assert usage.total_tokens == env.state.stats()["tokens"]
    embedder = MixlayerEmbeddings(dimensions=32)
    embedder.embed_query("q")
    assert embedder.model_copy().usage.requests == 0


def test_a_langchain_vector_store_ingest_reports_the_services_tokens(env) -> None:
    from langchain_core.vectorstores import InMemoryVectorStore

    embedder = MixlayerEmbeddings(dimensions=32)
    with embedder.track_usage() as usage:
        store = InMemoryVectorStore.from_texts(TEXTS, embedding=embedder)
        hits = store.similarity_search("ovens", k=2)
    assert len(hits) == 2
    assert usage.total_tokens == env.state.stats()["tokens"] == embedder.usage.total_tokens


def test_a_llama_index_pipeline_reaches_usage_by_event_and_callback(env) -> None:
    from llama_index.core import Document
    from llama_index.core.callbacks import CallbackManager, CBEventType
    from llama_index.core.callbacks.base_handler import BaseCallbackHandler
    from llama_index.core.ingestion import IngestionPipeline
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.node_parser import SentenceSplitter

    from llama_index.embeddings.mixlayer import USAGE_PAYLOAD_KEY, MixlayerUsageEvent

    events: list[MixlayerUsageEvent] = []
    payloads: list[object] = []

    class Events(BaseEventHandler):  # type: ignore[misc]
        def handle(self, event: object, **kwargs: object) -> None:
            if isinstance(event, MixlayerUsageEvent):
                events.append(event)

    class Callbacks(BaseCallbackHandler):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__([], [])

        def on_event_start(self, *args: object, **kwargs: object) -> str:
            return ""

        def on_event_end(self, event_type, payload=None, event_id="", **kwargs) -> None:  # type: ignore[no-untyped-def]
            if event_type == CBEventType.EMBEDDING and payload:
                payloads.append(payload[USAGE_PAYLOAD_KEY])

        def start_trace(self, trace_id: str | None = None) -> None:
            pass

        def end_trace(self, *args: object, **kwargs: object) -> None:
            pass

    root = get_dispatcher()
    handler = Events()
    root.add_event_handler(handler)
    try:
        embedder = MixlayerEmbedding(dimensions=32, callback_manager=CallbackManager([Callbacks()]))
        pipeline = IngestionPipeline(
            transformations=[SentenceSplitter(chunk_size=64, chunk_overlap=8), embedder]
        )
        nodes = pipeline.run(documents=[Document(text=" ".join(TEXTS))])
    finally:
        root.event_handlers.remove(handler)
    assert nodes and all(node.embedding for node in nodes)
    served = env.state.stats()["tokens"]
    assert sum(e.total_tokens for e in events) == served == embedder.usage.total_tokens
    assert sum(p.total_tokens for p in payloads) == served  # type: ignore[attr-defined]


def test_a_tracker_pickles_with_its_counts() -> None:
    import pickle

    from mixlayer_embeddings import Usage, UsageTracker

    tracker = UsageTracker()
    tracker.add(Usage(3, 3), requests=1)
    copy = pickle.loads(pickle.dumps(tracker))
    copy.add(Usage(1, 1))
    assert (copy.total_tokens, copy.requests, tracker.total_tokens) == (4, 1, 3)


def test_each_request_shows_its_input_type_and_dimensions_never_its_texts(env, caplog) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="mixlayer_embeddings")  # the access log too
    with MixlayerClient() as client:
        client.embed(["a secret sentence"], input_type="query", dimensions=64)
    client_lines = [r.getMessage() for r in caplog.records if r.name == "mixlayer_embeddings"]
    access = [
        r.getMessage() for r in caplog.records if r.name == "mixlayer_embeddings.emulator.access"
    ]
    assert any("input_type=query, dimensions=64" in line for line in client_lines), client_lines
    assert any("input_type=query, dimensions=64" in line for line in access), access
    assert "a secret sentence" not in caplog.text
