"""The fingerprint of what makes a vector (``_fingerprint``): it changes with everything that
changes a vector and with nothing else, and used as a cache's namespace it keeps a real,
on-disk cache of either framework from serving a vector made another way."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import KEY, MODEL

from langchain_mixlayer import MixlayerEmbeddings
from llama_index.embeddings.mixlayer import MixlayerEmbedding
from mixlayer_embeddings import EmbedOptions
from mixlayer_embeddings._fingerprint import fingerprint, vector_recipe

ADAPTERS = [
    pytest.param(MixlayerEmbeddings, {"model": MODEL}, id="langchain"),
    pytest.param(MixlayerEmbedding, {"model_name": MODEL}, id="llama_index"),
]


@pytest.mark.parametrize(("cls", "named"), ADAPTERS)
@pytest.mark.parametrize(
    ("change", "changes_vectors"),
    [
        ({"dimensions": 64}, True),
        ({"query_instruction": "Given a question, retrieve the answer"}, True),
        ({"query_input_type": None}, True),
        ({"document_input_type": None}, True),
        ({"normalize": True}, True),
        ({"truncate": True}, True),
        ({"dimensions": 4096}, False),  # the model's full size: the same vectors as None
        ({"max_retries": 0}, False),
        ({"timeout": 5.0}, False),
        ({"max_concurrency": 2}, False),
        ({"base_url": "http://127.0.0.1:9/v1"}, False),  # where, not what
    ],
)
def test_the_fingerprint_changes_with_what_makes_a_vector_and_nothing_else(
    cls, named, change, changes_vectors
) -> None:
    emb = cls(api_key=KEY, **named)
    before = emb.fingerprint
    assert before.startswith("mixlayer-") and len(before) == len("mixlayer-") + 24
    for field, value in change.items():
        if field == "base_url" and cls is MixlayerEmbedding:
            field = "api_base"  # LlamaIndex's name for it
        setattr(emb, field, value)
    assert (emb.fingerprint != before) is changes_vectors


def test_extra_request_fields_are_part_of_it_under_either_frameworks_name() -> None:
    lc = MixlayerEmbeddings(api_key=KEY, model=MODEL)
    li = MixlayerEmbedding(api_key=KEY, model_name=MODEL)
    assert lc.fingerprint == li.fingerprint  # made the same way: the same name
    lc.model_kwargs = {"user": "a"}
    li.additional_kwargs = {"user": "a"}
    assert (
        lc.fingerprint == li.fingerprint != MixlayerEmbeddings(api_key=KEY, model=MODEL).fingerprint
    )


def _emulated(cls: Any, emulator: Any, **fields: Any) -> Any:
    named = {"model": MODEL} if cls is MixlayerEmbeddings else {"model_name": MODEL}
    return (
        cls(api_key=emulator.api_key, base_url=emulator.base_url, **named, **fields)
        if (cls is MixlayerEmbeddings)
        else cls(api_key=emulator.api_key, api_base=emulator.base_url, **named, **fields)
    )


def test_langchain_cache_backed_embeddings_never_serves_a_vector_made_another_way(
    mixlayer_emulator, tmp_path: Path
) -> None:
    from langchain_classic.embeddings import CacheBackedEmbeddings
    from langchain_classic.storage import LocalFileStore

    def cached(emb: MixlayerEmbeddings, namespace: str) -> CacheBackedEmbeddings:
        # The documented line: the fingerprint as namespace, queries in their own store.
        return CacheBackedEmbeddings.from_bytes_store(
            emb,
            LocalFileStore(tmp_path / "documents"),
            namespace=namespace,
            query_embedding_cache=LocalFileStore(tmp_path / "queries"),
            key_encoder="sha256",
        )

    emb = _emulated(MixlayerEmbeddings, mixlayer_emulator, dimensions=64)
    assert len(cached(emb, emb.fingerprint).embed_documents(["Paris is in France."])[0]) == 64
    first_query = cached(emb, emb.fingerprint).embed_query("Where is Paris?")
    emb.dimensions = 32
    assert len(cached(emb, emb.fingerprint).embed_documents(["Paris is in France."])[0]) == 32
    emb.dimensions = 64
    emb.query_instruction = "Given a question, retrieve the passage that answers it"
    instructed = cached(emb, emb.fingerprint).embed_query("Where is Paris?")
    assert instructed != first_query
    assert instructed == emb.embed_query("Where is Paris?")  # the fresh vector, not the cached
    # The control: keyed on the text alone, the same cache serves the stale vector.
    emb.query_instruction = None
    stale = cached(emb, "").embed_documents(["x"])
    emb.dimensions = 32
    assert len(cached(emb, "").embed_documents(["x"])[0]) == len(stale[0]) == 64


def test_llama_index_ingestion_cache_never_serves_a_vector_made_another_way(
    mixlayer_emulator, tmp_path: Path
) -> None:
    from llama_index.core import Document
    from llama_index.core.ingestion import IngestionCache, IngestionPipeline
    from llama_index.core.storage.kvstore import SimpleKVStore

    path = tmp_path / "cache.json"
    documents = [Document(text="Paris is in France.", id_="paris")]

    def run(emb: MixlayerEmbedding) -> list[float]:
        # The documented line: the fingerprint as the cache's collection.
        store = SimpleKVStore.from_persist_path(str(path)) if path.exists() else SimpleKVStore()
        cache = IngestionCache(cache=store, collection=emb.fingerprint)
        nodes = IngestionPipeline(transformations=[emb], cache=cache).run(documents=documents)
        store.persist(str(path))  # on disk, read back by the next run
        return list(nodes[0].embedding or [])

    emb = _emulated(MixlayerEmbedding, mixlayer_emulator, dimensions=64)
    first = run(emb)
    assert len(first) == 64
    assert run(emb) == first  # the cache serves it
    emb.dimensions = 32
    assert len(run(emb)) == 32
    stored = json.loads(path.read_text())
    assert len(stored) == 2  # one collection per fingerprint, both on disk


def test_mixlayer_embed_writes_the_fingerprint_of_its_vectors(env, tmp_path: Path) -> None:
    from mixlayer_embeddings._bulk.command import main

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("one\ntwo\n")
    prints = {}
    for dims in ("32", "64"):
        out = tmp_path / dims
        assert main([str(corpus), str(out), "--dimensions", dims, "--no-progress"]) == 0
        prints[dims] = json.loads((out / "_manifest.json").read_text())["fingerprint"]
    expected = fingerprint(vector_recipe(MODEL, EmbedOptions(input_type="document", dimensions=32)))
    assert prints["32"] == expected != prints["64"]


def test_ray_outputs_carry_the_fingerprint_in_their_provenance() -> None:
    from mixlayer_embeddings._ray_resume import provenance

    made = provenance(MODEL, {"input_type": "document", "dimensions": 32}, "text")
    expected = fingerprint(vector_recipe(MODEL, EmbedOptions(input_type="document", dimensions=32)))
    assert made["fingerprint"] == expected
