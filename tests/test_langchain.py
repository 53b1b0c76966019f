"""LangChain: MixlayerEmbeddings over the emulator (real HTTP), standard tests, ecosystem."""

from __future__ import annotations

import logging
import pickle

import httpx
import pytest
from conftest import KEY, MODEL, PASSAGES
from langchain_core.documents import Document
from langchain_core.load import dumps, loads
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from pydantic import ValidationError

import langchain_mixlayer
from langchain_mixlayer import (
    AuthenticationError,
    ConfigurationError,
    InvalidInputError,
    InvalidParameterError,
    MixlayerEmbeddings,
)


@pytest.fixture
async def make(mixlayer_emulator, wire):
    # An async fixture, so its teardown closes the injected async client on the test's loop.
    made: list[MixlayerEmbeddings] = []

    def factory(**kwargs) -> MixlayerEmbeddings:
        params = {
            "model": mixlayer_emulator.model,
            "api_key": mixlayer_emulator.api_key,
            "base_url": mixlayer_emulator.base_url,
            "http_client": httpx.Client(event_hooks={"request": [wire.hook]}),
            "http_async_client": httpx.AsyncClient(event_hooks={"request": [wire.ahook]}),
            **kwargs,
        }
        made.append(MixlayerEmbeddings(**params))
        return made[-1]

    yield factory
    for emb in made:
        await emb.aclose()
        if emb.http_client is not None:
            emb.http_client.close()
        if emb.http_async_client is not None:
            await emb.http_async_client.aclose()


def test_public_surface() -> None:
    assert set(langchain_mixlayer.__all__) == {
        "MixlayerEmbeddings",
        "MixlayerError",
        "APIError",
        "APIStatusError",
        "APIConnectionError",
        "APITimeoutError",
        "AuthenticationError",
        "BadRequestError",
        "ConfigurationError",
        "InputRejectedError",
        "InsecureTransportError",
        "InternalServerError",
        "InvalidInputError",
        "InvalidParameterError",
        "InvalidRequestError",
        "NotFoundError",
        "PermissionDeniedError",
        "RateLimitError",
        "ResponseValidationError",
        "__version__",
    }
    for name in langchain_mixlayer.__all__:
        assert hasattr(langchain_mixlayer, name)


def test_documents_go_as_document_and_queries_as_query(make, wire) -> None:
    emb = make(dimensions=128)
    docs = emb.embed_documents(PASSAGES)
    query = emb.embed_query("How do plants make energy from light?")
    assert [b.get("input_type") for b in wire.bodies] == ["document", "query"]
    assert [b.get("dimensions") for b in wire.bodies] == [128, 128]
    assert len(docs) == 5 and all(len(d) == 128 for d in docs)
    scores = [sum(a * b for a, b in zip(query, d, strict=True)) for d in docs]
    assert max(range(5), key=scores.__getitem__) == 1


async def test_async_methods_are_native_and_mapped(make, wire) -> None:
    emb = make()
    docs = await emb.aembed_documents(PASSAGES[:2])
    query = await emb.aembed_query("Paris tower")
    assert [b.get("input_type") for b in wire.bodies] == ["document", "query"]
    assert docs == emb.embed_documents(PASSAGES[:2])
    assert query == emb.embed_query("Paris tower")


def test_input_type_none_is_omitted(make, wire) -> None:
    emb = make(query_input_type=None, document_input_type=None, normalize=True, truncate=True)
    emb.embed_documents(["a"])
    emb.embed_query("b")
    assert all("input_type" not in b for b in wire.bodies)
    assert all(b["normalize"] is True and b["truncate"] is True for b in wire.bodies)


def test_empty_list_makes_no_request(make, wire) -> None:
    assert make().embed_documents([]) == []
    assert wire.bodies == []


def test_empty_string_is_refused_with_its_index_before_sending(make, wire) -> None:
    emb = make()
    with pytest.raises(InvalidInputError) as info:
        emb.embed_documents(["fine", "", "also fine"])
    assert info.value.indexes == [1]
    assert "index 1" in str(info.value)
    with pytest.raises(InvalidInputError):
        emb.embed_query("")
    with pytest.raises(InvalidInputError) as info:
        emb.embed_documents(["a", None, 3])  # type: ignore[list-item]
    assert info.value.indexes == [1, 2]
    assert wire.bodies == []


def test_long_lists_are_batched_concurrently_and_stay_in_order(make, wire) -> None:
    emb = make(batch_size=50, max_concurrency=4, dimensions=32)
    texts = [f"document number {i}" for i in range(437)]
    vectors = emb.embed_documents(texts)
    sizes = sorted(len(b["input"]) for b in wire.bodies)
    # The fewest requests of at most 50 (9), as even as the texts' lengths allow.
    assert len(sizes) == 9 and sum(sizes) == 437 and max(sizes) <= 50
    assert max(sizes) - min(sizes) <= 3
    singles = make(dimensions=32).embed_documents(texts[::50])
    assert vectors[::50] == singles


def test_progress_bar(make, capsys) -> None:
    make(show_progress_bar=True, batch_size=10).embed_documents([f"t{i}" for i in range(30)])
    assert "30/30" in capsys.readouterr().err


def test_errors_are_typed(mixlayer_emulator) -> None:
    bad_key = MixlayerEmbeddings(model=MODEL, api_key="wrong", base_url=mixlayer_emulator.base_url)
    with pytest.raises(AuthenticationError):
        bad_key.embed_query("x")
    # Refused at construction, before any call, with the model's range.
    in_range = "dimensions must be an integer from 32 to 4096"
    with pytest.raises(ValidationError, match=in_range) as info:
        MixlayerEmbeddings(model=MODEL, api_key=KEY, dimensions=9)
    assert isinstance(info.value.errors()[0]["ctx"]["error"], InvalidParameterError)


def test_unknown_keyword_arguments_are_an_error() -> None:
    with pytest.raises(ValidationError, match="dimension"):
        MixlayerEmbeddings(model=MODEL, api_key=KEY, dimension=64)


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(ValidationError, match="MIXLAYER_API_KEY") as info:
        MixlayerEmbeddings(model=MODEL)
    assert isinstance(info.value.errors()[0]["ctx"]["error"], ConfigurationError)


def test_environment_configuration(monkeypatch) -> None:
    monkeypatch.setenv("MIXLAYER_API_KEY", KEY)
    monkeypatch.setenv("MIXLAYER_EMBEDDING_MODEL", "env/model")
    monkeypatch.setenv("MIXLAYER_BASE_URL", "http://127.0.0.1:1/v1")
    emb = MixlayerEmbeddings()
    assert emb.model == "env/model"
    assert emb.api_key.get_secret_value() == KEY
    assert emb.base_url == "http://127.0.0.1:1/v1"
    assert MixlayerEmbeddings(mixlayer_api_key="other").api_key.get_secret_value() == "other"


@pytest.mark.filterwarnings("ignore::langchain_core._api.beta_decorator.LangChainBetaWarning")
def test_the_key_leaks_nowhere(mixlayer_emulator, caplog, monkeypatch) -> None:
    caplog.set_level(logging.DEBUG)
    key = mixlayer_emulator.api_key
    emb = MixlayerEmbeddings(model=MODEL, api_key=key, base_url=mixlayer_emulator.base_url)
    emb.embed_query("hello")
    dumped = dumps(emb)
    forms = [
        repr(emb),
        str(emb),
        dumped,
        str(emb.model_dump()),
        emb.model_dump_json(),
        repr(emb.model_copy()),
        repr(emb._core),
        caplog.text,
    ]
    assert all(key not in form for form in forms)
    pickled = pickle.dumps(emb)
    assert key.encode() not in pickled
    monkeypatch.setenv("MIXLAYER_API_KEY", key)
    assert pickle.loads(pickled).embed_query("hello") == emb.embed_query("hello")
    restored = loads(
        dumped,
        valid_namespaces=["langchain_mixlayer"],
        secrets_map={"MIXLAYER_API_KEY": key},
        allowed_objects=[MixlayerEmbeddings],
    )
    assert isinstance(restored, MixlayerEmbeddings)
    assert restored.embed_query("hello") == emb.embed_query("hello")


def test_in_memory_vector_store_ingestion_and_search(make, wire) -> None:
    store = InMemoryVectorStore(embedding=make(dimensions=256))
    store.add_documents(
        [Document(page_content=p, metadata={"i": i}) for i, p in enumerate(PASSAGES)]
    )
    hits = store.similarity_search("Which insects dance to show where flowers are?", k=2)
    assert hits[0].metadata["i"] == 4
    assert [b.get("input_type") for b in wire.bodies] == ["document", "query"]


def test_cache_backed_embeddings(make, wire) -> None:
    from langchain_classic.embeddings import CacheBackedEmbeddings
    from langchain_core.stores import InMemoryByteStore

    store = InMemoryByteStore()
    cached = CacheBackedEmbeddings.from_bytes_store(
        make(dimensions=64),
        store,
        namespace=MODEL,
        query_embedding_cache=True,
        key_encoder="sha256",
    )
    first = cached.embed_documents(PASSAGES)
    second = cached.embed_documents(PASSAGES)
    cached.embed_query("tower")
    cached.embed_query("tower")
    assert first == second
    assert [b.get("input_type") for b in wire.bodies] == ["document", "query"]
    assert len(list(store.yield_keys())) == 6


async def test_retriever_in_an_lcel_chain_embeds_the_question_as_a_query(make, wire) -> None:
    store = InMemoryVectorStore(embedding=make())
    await store.aadd_texts(PASSAGES)
    retriever = store.as_retriever(search_kwargs={"k": 1})
    chain = (
        {
            "context": retriever | RunnableLambda(lambda docs: docs[0].page_content),
            "question": RunnablePassthrough(),
        }
        | RunnableLambda(lambda d: f"{d['question']} -> {d['context']}")
        | StrOutputParser()
    )
    answer = await chain.ainvoke("What is the Eiffel Tower made of?")
    assert answer.endswith(PASSAGES[0])
    assert wire.bodies[-1]["input_type"] == "query"
    assert wire.bodies[-1]["input"] == "What is the Eiffel Tower made of?"
    assert chain.invoke("Tell me about the Great Wall").endswith(PASSAGES[2])
