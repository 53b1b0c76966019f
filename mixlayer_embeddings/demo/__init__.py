"""The main job: ingest a small corpus through both adapters, then answer questions.

``python -m mixlayer_embeddings.demo [--question "..."]`` or ``mixlayer-demo``. With
``MIXLAYER_API_KEY`` set it uses the real service; otherwise it starts the local emulator on
loopback (lexical vectors, not Qwen3) and says so. Needs the ``langchain``, ``llama-index`` and
``emulator`` extras (``make demo`` installs them).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .._config import API_KEY_ENV, BASE_URL_ENV, MODEL_ENV

DEFAULT_MODEL = "qwen/qwen3-embedding-8b"
CORPUS = Path(__file__).with_name("corpus.txt")
QUESTIONS = (
    "Which planet has the strongest winds?",
    "How do bees tell each other where flowers are?",
    "What makes bread dough rise?",
    "Which element has atomic number 79?",
    "How does retrieval-augmented generation use embeddings?",
)


@dataclass
class Tally:
    """What went over the wire, seen through httpx event hooks on the adapters' clients."""

    requests: int = 0
    items: int = 0
    tokens: int = 0

    def on_request(self, request: httpx.Request) -> None:
        body = json.loads(request.content)
        self.requests += 1
        self.items += 1 if isinstance(body["input"], str) else len(body["input"])

    def on_response(self, response: httpx.Response) -> None:
        response.read()
        self._count_tokens(response)

    async def aon_request(self, request: httpx.Request) -> None:
        self.on_request(request)

    async def aon_response(self, response: httpx.Response) -> None:
        await response.aread()
        self._count_tokens(response)

    def _count_tokens(self, response: httpx.Response) -> None:
        if response.is_success:
            self.tokens += response.json().get("usage", {}).get("total_tokens", 0)


@contextlib.contextmanager
def _service() -> Iterator[tuple[str | None, str, str | None]]:
    """(api_key, model, base_url): the real service when a key is set, else an emulator."""
    model = os.environ.get(MODEL_ENV) or DEFAULT_MODEL
    if os.environ.get(API_KEY_ENV):
        print(
            f"Using the Mixlayer service at {os.environ.get(BASE_URL_ENV) or 'the default URL'}"
            f" with model {model}."
        )
        yield None, model, None
        return
    from ..emulator import Emulator

    with Emulator() as emulator:
        print(
            f"{API_KEY_ENV} is not set: using the local emulator at {emulator.base_url} "
            "(offline, lexical vectors, not Qwen3)."
        )
        yield emulator.api_key, emulator.model, emulator.base_url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mixlayer-demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--question", "-q", action="append", help="ask your own question (repeatable)"
    )
    parser.add_argument("--dimensions", type=int, default=1024)
    parser.add_argument("--top", type=int, default=3, help="passages shown per question")
    args = parser.parse_args(argv)

    from .._extras import require

    require("demo", "langchain_core", "llama_index.core", "starlette", "tqdm", feature="The demo")
    from langchain_core.vectorstores import InMemoryVectorStore
    from llama_index.core import Document, VectorStoreIndex

    from langchain_mixlayer import MixlayerEmbeddings
    from llama_index_mixlayer import MixlayerEmbedding

    passages = CORPUS.read_text(encoding="utf-8").splitlines()
    questions = args.question or list(QUESTIONS)
    tally = Tally()
    hooks: dict[str, list[Callable[..., Any]]] = {
        "request": [tally.on_request],
        "response": [tally.on_response],
    }
    ahooks: dict[str, list[Callable[..., Any]]] = {
        "request": [tally.aon_request],
        "response": [tally.aon_response],
    }
    started = time.perf_counter()
    # The demo only calls the sync methods; the async client is there for completeness.
    ahttp = httpx.AsyncClient(event_hooks=ahooks)
    with (
        _service() as (api_key, model, base_url),
        httpx.Client(event_hooks=hooks, timeout=httpx.Timeout(60.0, connect=10.0)) as http,
    ):
        lc = MixlayerEmbeddings(
            model=model,
            api_key=api_key,
            base_url=base_url,
            dimensions=args.dimensions,
            show_progress_bar=True,
            http_client=http,
            http_async_client=ahttp,
        )
        li = MixlayerEmbedding(
            model_name=model,
            api_key=api_key,
            api_base=base_url,
            dimensions=args.dimensions,
            http_client=http,
            async_http_client=ahttp,
        )

        print(f"\nIngesting {len(passages)} passages with LangChain (InMemoryVectorStore)...")
        store = InMemoryVectorStore.from_texts(passages, embedding=lc)
        print(f"Ingesting {len(passages)} passages with LlamaIndex (VectorStoreIndex)...")
        index = VectorStoreIndex.from_documents(
            [Document(text=p) for p in passages], embed_model=li, show_progress=True
        )
        retriever = index.as_retriever(similarity_top_k=args.top)

        for question in questions:
            print(f"\nQ: {question}")
            for doc, score in store.similarity_search_with_score(question, k=args.top):
                print(f"  LangChain  {score:.3f}  {doc.page_content}")
            for hit in retriever.retrieve(question):
                print(f"  LlamaIndex {hit.score or 0.0:.3f}  {hit.node.get_content()}")
    seconds = time.perf_counter() - started
    print(
        f"\nSummary: {tally.requests} requests (one batch each), {tally.items} texts embedded, "
        f"{tally.tokens} tokens, {seconds:.2f} s."
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
