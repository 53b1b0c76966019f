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


#: On the emulator's lexical vectors, a best cosine below this shares almost no word with the
#: question (measured on the shipped corpus: answered questions score 0.3 to 0.6).
WEAK_MATCH = 0.2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Service:
    api_key: str | None
    model: str
    base_url: str | None
    #: What a person should read: the URL actually used.
    url: str
    emulated: bool


@contextlib.contextmanager
def _service(say: Callable[[str], None]) -> Iterator[Service]:
    """The real service when a key is set, else an emulator on loopback."""
    from .._config import DEFAULT_BASE_URL

    model = os.environ.get(MODEL_ENV, "").strip() or DEFAULT_MODEL
    if os.environ.get(API_KEY_ENV, "").strip():
        url = os.environ.get(BASE_URL_ENV, "").strip() or DEFAULT_BASE_URL
        say(f"Using the Mixlayer service at {url} with model {model} ({API_KEY_ENV} is set).")
        yield Service(None, model, None, url, emulated=False)
        return
    from ..emulator import Emulator

    with Emulator() as emulator:
        say(
            f"{API_KEY_ENV} is not set: using the local emulator at {emulator.base_url} "
            "(offline, lexical vectors, not Qwen3)."
        )
        yield Service(
            emulator.api_key, emulator.model, emulator.base_url, emulator.base_url, emulated=True
        )


def _dimensions(text: str) -> int:
    from .._config import QWEN3_EMBEDDING_8B as spec

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not spec.min_dimensions <= value <= spec.max_dimensions:
        raise argparse.ArgumentTypeError(
            f"{value} is out of range for {spec.name}: use {spec.dimensions_range()}"
        )
    return value


def _top(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _question(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a question must not be empty")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixlayer-demo",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--question",
        "-q",
        action="append",
        type=_question,
        help="ask your own question (repeatable); default: five built-in questions",
    )
    parser.add_argument(
        "--dimensions", type=_dimensions, default=1024, help="vector size, 32 to 4096"
    )
    parser.add_argument("--top", type=_top, default=3, help="passages shown per question")
    parser.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error, and HTTP logs"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.debug:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    # _run fills in the URL it used, so an error can name it.
    where = ["the Mixlayer service"]
    try:
        return _run(args, where)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print("mixlayer-demo: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:
        from .._extras import MissingExtraError

        if args.debug or isinstance(exc, MissingExtraError):
            raise
        print(f"mixlayer-demo: {explain(exc, where[0])}", file=sys.stderr)
        return EXIT_FAILED


def explain(exc: BaseException, url: str) -> str:
    """One or two lines: what failed, where, and what to do."""
    from pydantic import ValidationError

    from .. import (
        APIConnectionError,
        APIStatusError,
        AuthenticationError,
        MixlayerError,
        PermissionDeniedError,
    )

    offline = f"or unset {API_KEY_ENV} to run on the local emulator."
    if isinstance(exc, ValidationError):
        # Our own error, as the adapter's validator raised it.
        causes = [e.get("ctx", {}).get("error") for e in exc.errors()]
        exc = next((c for c in causes if isinstance(c, BaseException)), exc)
    if isinstance(exc, AuthenticationError):
        return (
            f"the Mixlayer service at {url} refused the key in {API_KEY_ENV} (401).\n"
            f"Check the key, {offline}"
        )
    if isinstance(exc, PermissionDeniedError):
        return (
            f"the key in {API_KEY_ENV} may not use this model at {url} (403).\n"
            f"Check {MODEL_ENV} and the key's access, {offline}"
        )
    if isinstance(exc, APIConnectionError):
        return (
            f"could not reach the Mixlayer service at {url}: {exc.message}\n"
            f"Check the network and {BASE_URL_ENV}, {offline}"
        )
    if isinstance(exc, APIStatusError):
        return f"the Mixlayer service at {url} answered: {exc.message}"
    if isinstance(exc, MixlayerError):
        return str(exc)
    return f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"


@dataclass(frozen=True)
class Hit:
    score: float
    text: str


def _run(args: argparse.Namespace, where: list[str]) -> int:
    from .._extras import require

    require("demo", "langchain_core", "llama_index.core", "starlette", "tqdm", feature="The demo")
    from langchain_core.vectorstores import InMemoryVectorStore
    from llama_index.core import Document, VectorStoreIndex

    from langchain_mixlayer import MixlayerEmbeddings
    from llama_index.embeddings.mixlayer import MixlayerEmbedding

    def say(line: str) -> None:
        # In --json mode stdout is the JSON document only; the story goes to stderr.
        print(line, file=sys.stderr if args.json else sys.stdout, flush=True)

    passages = CORPUS.read_text(encoding="utf-8").splitlines()
    questions = args.question or list(QUESTIONS)
    top = min(args.top, len(passages))
    tally = Tally()
    hooks: dict[str, list[Callable[..., Any]]] = {
        "request": [tally.on_request],
        "response": [tally.on_response],
    }
    started = time.perf_counter()
    results: list[dict[str, Any]] = []
    with (
        _service(say) as service,
        httpx.Client(event_hooks=hooks, timeout=httpx.Timeout(60.0, connect=10.0)) as http,
    ):
        where[:] = [service.url]
        lc = MixlayerEmbeddings(
            model=service.model,
            api_key=service.api_key,
            base_url=service.base_url,
            dimensions=args.dimensions,
            show_progress_bar=not args.json,
            http_client=http,
        )
        li = MixlayerEmbedding(
            model_name=service.model,
            api_key=service.api_key,
            api_base=service.base_url,
            dimensions=args.dimensions,
            http_client=http,
        )

        say(f"\nIngesting {len(passages)} passages with LangChain (InMemoryVectorStore)...")
        store = InMemoryVectorStore.from_texts(passages, embedding=lc)
        say(f"Ingesting {len(passages)} passages with LlamaIndex (VectorStoreIndex)...")
        index = VectorStoreIndex.from_documents(
            [Document(text=p) for p in passages], embed_model=li, show_progress=not args.json
        )
        retriever = index.as_retriever(similarity_top_k=top)

        agree = True
        for question in questions:
            from_lc = [
                Hit(score, doc.page_content)
                for doc, score in store.similarity_search_with_score(question, k=top)
            ]
            from_li = [
                Hit(h.score or 0.0, h.node.get_content()) for h in retriever.retrieve(question)
            ]
            same = [h.text for h in from_lc] == [h.text for h in from_li] and all(
                abs(a.score - b.score) < 1e-4 for a, b in zip(from_lc, from_li, strict=True)
            )
            agree = agree and same
            weak = service.emulated and (not from_lc or from_lc[0].score < WEAK_MATCH)
            results.append(
                {
                    "question": question,
                    "hits": [{"score": round(h.score, 4), "text": h.text} for h in from_lc],
                    "llamaindex_hits": None
                    if same
                    else [{"score": round(h.score, 4), "text": h.text} for h in from_li],
                    "weak_match": weak,
                }
            )
            if args.json:
                continue
            say(f"\nQ: {question}")
            for hit in from_lc:
                say(f"  {hit.score:.3f}  {hit.text}")
            if not same:
                say("  LlamaIndex ranked differently:")
                for hit in from_li:
                    say(f"  {hit.score:.3f}  {hit.text}")
            if weak:
                say(
                    f"  (weak match: best score below {WEAK_MATCH}. The emulator's vectors are "
                    "lexical: they match shared words, not meaning.)"
                )
    seconds = time.perf_counter() - started
    summary = {
        "requests": tally.requests,
        "texts": tally.items,
        "tokens": tally.tokens,
        "seconds": round(seconds, 2),
    }
    if args.json:
        document = {
            "service": service.url,
            "emulator": service.emulated,
            "model": service.model,
            "dimensions": args.dimensions,
            "adapters_agree": agree,
            "results": results,
            "summary": summary,
        }
        print(json.dumps(document, indent=2))
        return 0
    if agree:
        say(
            "\nLangChain (InMemoryVectorStore) and LlamaIndex (VectorStoreIndex) returned the "
            "same ranking and scores for every question (checked)."
        )
    say(
        f"\nSummary: {tally.requests} requests (one batch each), {tally.items} texts embedded, "
        f"{tally.tokens} tokens, {seconds:.2f} s."
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
