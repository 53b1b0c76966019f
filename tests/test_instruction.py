"""Task instructions for queries (``_instruction``): Qwen3's format exactly, ``input_type`` left
out, documents never instructed, bad instructions refused before any request, in the core,
both adapters, ``mixlayer-embed`` and the emulator."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import KEY, MODEL, FakeClock, FakeService

from langchain_mixlayer import MixlayerEmbeddings
from llama_index.embeddings.mixlayer import MixlayerEmbedding
from mixlayer_embeddings import AsyncMixlayerClient, InvalidParameterError, MixlayerClient
from mixlayer_embeddings._bulk.command import main as embed_main
from mixlayer_embeddings._instruction import INSTRUCTION_FORMAT

TASK = "Given a web search query, retrieve relevant passages that answer the query"


def test_the_format_is_the_qwen3_model_cards_character_for_character() -> None:
    # get_detailed_instruct in Qwen3-Embedding's model card: f'Instruct: {task}\nQuery:{query}'
    assert INSTRUCTION_FORMAT.format(instruction="T", text="q") == "Instruct: T\nQuery:q"


def _client(service: FakeService) -> MixlayerClient:
    http = httpx.Client(transport=httpx.MockTransport(service))
    return MixlayerClient(api_key=KEY, model=MODEL, http_client=http, clock=FakeClock())


@pytest.mark.parametrize(
    ("call", "input_type"),
    [
        ("embed", None),
        ("embed", "query"),
        ("embed_array", None),
        ("iter_embed", "query"),
        ("async embed", None),
        ("async iter_embed", None),
    ],
)
def test_an_instructed_query_is_sent_formatted_with_no_input_type(call, input_type) -> None:
    service = FakeService()
    texts = ["where is paris", "who wrote hamlet"]
    options: dict[str, Any] = {"instruction": TASK, "input_type": input_type}
    if call == "embed":
        _client(service).embed(texts, **options)
    elif call == "embed_array":
        _client(service).embed_array(texts, **options)
    elif call == "iter_embed":
        list(_client(service).iter_embed(iter(texts), **options))
    else:

        async def go() -> None:
            http = httpx.AsyncClient(transport=httpx.MockTransport(service))
            async with AsyncMixlayerClient(api_key=KEY, model=MODEL, http_client=http) as c:
                if call == "async embed":
                    await c.embed(texts, **options)
                else:
                    async for _ in c.iter_embed(iter(texts), **options):
                        pass

        asyncio.run(go())
    [body] = service.bodies
    assert body["input"] == [f"Instruct: {TASK}\nQuery:{text}" for text in texts]
    assert "input_type" not in body
    assert "instruction" not in body  # not a field of the service


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"instruction": ""}, "non-empty string"),
        ({"instruction": "   "}, "non-empty string"),
        ({"instruction": 42}, "non-empty string.*got int"),
        ({"instruction": TASK, "input_type": "document"}, "for queries"),
        ({"extra_body": {"instruction": TASK}}, "may not set 'instruction'"),
    ],
)
def test_a_bad_instruction_is_refused_before_any_request(options, match) -> None:
    service = FakeService()
    with pytest.raises(InvalidParameterError, match=match):
        _client(service).embed(["q"], **options)
    assert service.bodies == []


def test_token_ids_cannot_take_an_instruction_and_the_error_names_the_item() -> None:
    service = FakeService()
    with pytest.raises(InvalidParameterError, match="item 0 is token ids"):
        _client(service).embed([[1, 2, 3]], instruction=TASK)
    # A stream's batches hold texts or token ids; the error names the item's input index.
    http = httpx.Client(transport=httpx.MockTransport(service))
    client = MixlayerClient(api_key=KEY, model=MODEL, http_client=http, batch_size=2)
    with pytest.raises(InvalidParameterError, match="item 2 is token ids"):
        list(client.iter_embed(iter(["a", "b", [1, 2]]), instruction=TASK))
    # (The stream reads ahead: the first batch may or may not have gone; if it did, as queries.)
    for body in service.bodies:
        assert body["input"] == [f"Instruct: {TASK}\nQuery:a", f"Instruct: {TASK}\nQuery:b"]


def test_the_token_estimate_counts_the_instruction() -> None:
    client = MixlayerClient(api_key=KEY, model=MODEL)
    plain = client._plan(["where is paris"], client._options({}, "embed"), None)
    told = client._plan(["where is paris"], client._options({"instruction": TASK}, "embed"), None)
    assert told.batches[0].tokens > plain.batches[0].tokens + len(TASK) // 8


def test_on_the_emulator_an_instructed_query_is_its_formatted_text_and_not_the_plain_query(
    mixlayer_emulator,
) -> None:
    settings = {
        "base_url": mixlayer_emulator.base_url,
        "api_key": mixlayer_emulator.api_key,
        "model": MODEL,
    }
    with MixlayerClient(**settings) as client:
        told = client.embed("where is paris", instruction=TASK, dimensions=64).embeddings[0]
        formatted = client.embed(f"Instruct: {TASK}\nQuery:where is paris", dimensions=64)
        plain = client.embed("where is paris", input_type="query", dimensions=64)
    assert told == formatted.embeddings[0]
    assert told != plain.embeddings[0]


@pytest.mark.parametrize("cls", [MixlayerEmbeddings, MixlayerEmbedding])
def test_the_adapters_instruct_queries_and_never_documents(cls) -> None:
    bodies: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return FakeService()(request)

    http = httpx.Client(transport=httpx.MockTransport(answer))
    model = {"model" if cls is MixlayerEmbeddings else "model_name": MODEL}
    emb = cls(api_key=KEY, http_client=http, query_instruction=TASK, **model)
    if cls is MixlayerEmbeddings:
        emb.embed_query("where is paris")
        emb.embed_documents(["Paris is in France."])
    else:
        emb.get_query_embedding("where is paris")
        emb.get_text_embedding_batch(["Paris is in France."])
    query, documents = bodies
    assert query["input"] == f"Instruct: {TASK}\nQuery:where is paris"
    assert "input_type" not in query
    assert documents["input"] == ["Paris is in France."]
    assert documents["input_type"] == "document"


@pytest.mark.parametrize("cls", [MixlayerEmbeddings, MixlayerEmbedding])
def test_an_adapter_refuses_an_instruction_for_document_queries_naming_its_fields(cls) -> None:
    from pydantic import ValidationError

    model = {"model" if cls is MixlayerEmbeddings else "model_name": MODEL}
    with pytest.raises(ValidationError, match="query_instruction is for queries"):
        cls(api_key=KEY, query_instruction=TASK, query_input_type="document", **model)
    with pytest.raises(ValidationError, match="query_instruction must be a non-empty"):
        cls(api_key=KEY, query_instruction=" ", **model)


def test_mixlayer_embed_instructs_every_row_and_records_the_instruction(
    env, tmp_path: Path, capsys
) -> None:
    corpus = tmp_path / "queries.txt"
    corpus.write_text("where is paris\nwho wrote hamlet\n")
    out = tmp_path / "out"
    flags = ["--format", "npy", "--dimensions", "32", "--no-progress"]
    assert embed_main([str(corpus), str(out), "--instruction", TASK, *flags]) == 0
    import numpy as np

    vectors = np.load(next(out.glob("part-*[0-9].npy")))
    with MixlayerClient(model=MODEL) as c:  # the key and URL of the environment, as the run
        expected = c.embed_array(
            [f"Instruct: {TASK}\nQuery:{t}" for t in ("where is paris", "who wrote hamlet")],
            dimensions=32,
        ).vectors
    assert np.array_equal(vectors, expected)
    manifest = json.loads((out / "_manifest.json").read_text())
    assert manifest["settings"]["instruction"] == TASK
    # With documents it is refused, exit 2, before the folder is touched.
    refused = tmp_path / "refused"
    code = embed_main([str(corpus), str(refused), "--instruction", TASK, "--input-type",
                       "document", *flags])  # fmt: skip
    assert code == 2
    assert "--instruction is for queries" in capsys.readouterr().err
    assert not refused.exists()
