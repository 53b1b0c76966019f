"""``MixlayerEmbedding``: Mixlayer embeddings as a LlamaIndex ``BaseEmbedding``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import llama_index.core.instrumentation as instrument
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation.events.embedding import (
    EmbeddingEndEvent,
    EmbeddingStartEvent,
)
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from mixlayer_embeddings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    MAX_BATCH_SIZE,
    MODEL_ENV,
    Secret,
)
from mixlayer_embeddings._adapter import AdapterCore, EmbedOptions

__all__ = ["MixlayerEmbedding"]

# llama-index-core re-exports get_dispatcher without declaring it; its own modules call it so.
dispatcher = instrument.get_dispatcher(__name__)  # type: ignore[attr-defined]


class MixlayerEmbedding(BaseEmbedding):
    """Mixlayer embeddings (Qwen3 Embedding 8B) for LlamaIndex.

    Queries are sent with ``input_type="query"``, texts and nodes with ``"document"``. A batch
    of any length is one core call: split into requests of ``embed_batch_size`` and sent
    ``max_concurrency`` at a time. The key is never in ``to_dict()``, ``to_json()``, events or
    pickles; a saved model loads with the key from ``MIXLAYER_API_KEY``.

    Example:
        .. code-block:: python

            from llama_index.embeddings.mixlayer import MixlayerEmbedding

            embed_model = MixlayerEmbedding(model_name="qwen/qwen3-embedding-8b")
            vector = embed_model.get_query_embedding("Where is Paris?")
    """

    model_name: str = Field(
        default="", description="Embedding model id (env MIXLAYER_EMBEDDING_MODEL)."
    )
    api_key: str | None = Field(
        default=None,
        exclude=True,
        repr=False,
        description="API key (env MIXLAYER_API_KEY); never serialized.",
    )
    api_base: str | None = Field(default=None, description="API base URL (env MIXLAYER_BASE_URL).")
    dimensions: int | None = Field(default=None, description="Output vector size (32 to 4096).")
    query_input_type: str | None = Field(default="query", description="None omits input_type.")
    document_input_type: str | None = Field(
        default="document", description="None omits input_type."
    )
    normalize: bool | None = None
    truncate: bool | None = None
    embed_batch_size: int = Field(
        default=DEFAULT_BATCH_SIZE,
        gt=0,
        le=MAX_BATCH_SIZE,
        description="Texts per request (at most 2048).",
    )
    max_concurrency: int = Field(default=DEFAULT_MAX_CONCURRENCY, gt=0)
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0)
    timeout: float | None = Field(default=None, description="Read timeout in seconds.")
    allow_insecure_http: bool = False
    http_client: httpx.Client | None = Field(default=None, exclude=True)
    async_http_client: httpx.AsyncClient | None = Field(default=None, exclude=True)

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    _core: AdapterCore = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("model_name", os.environ.get(MODEL_ENV, "").strip())
        kwargs.setdefault("api_base", os.environ.get(BASE_URL_ENV) or None)
        kwargs.setdefault("api_key", os.environ.get(API_KEY_ENV) or None)
        super().__init__(**kwargs)
        self._build_core()

    def _build_core(self) -> None:
        """Build the core clients once (no network)."""
        self._core = AdapterCore(
            api_key=Secret(self.api_key) if self.api_key else None,
            base_url=self.api_base,
            model=self.model_name or None,
            timeout=self.timeout,
            max_retries=self.max_retries,
            batch_size=self.embed_batch_size,
            max_concurrency=self.max_concurrency,
            http_client=self.http_client,
            async_http_client=self.async_http_client,
            allow_insecure_http=self.allow_insecure_http,
            options=EmbedOptions(
                dimensions=self.dimensions,
                normalize=self.normalize,
                truncate=self.truncate,
                query_input_type=self.query_input_type,
                document_input_type=self.document_input_type,
            ),
        )

    @classmethod
    def class_name(cls) -> str:
        return "MixlayerEmbedding"

    # -- the mapping: queries as "query", everything else as "document" -----------------------

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._core.embed_query(query)

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return await self._core.aembed_query(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._core.embed_documents([text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._core.aembed_documents([text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._core.embed_documents(texts)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await self._core.aembed_documents(texts)

    # -- a batch of any length is one core call (the core batches and runs requests at once) --

    @dispatcher.span
    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        if self.embeddings_cache is not None or self.rate_limiter is not None:
            # Those features work chunk by chunk; keep LlamaIndex's own loop for them.
            return super().get_text_embedding_batch(texts, show_progress, **kwargs)
        with self._events(texts) as finish:
            return finish(self._core.embed_documents(texts, show_progress=show_progress))

    @dispatcher.span
    async def aget_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False
    ) -> list[Embedding]:
        if self.embeddings_cache is not None or self.rate_limiter is not None:
            return await super().aget_text_embedding_batch(texts, show_progress)
        with self._events(texts) as finish:
            return finish(await self._core.aembed_documents(texts, show_progress=show_progress))

    @contextlib.contextmanager
    def _events(self, texts: list[str]) -> Iterator[Callable[[list[Embedding]], list[Embedding]]]:
        """LlamaIndex's start/end events and callback event, around one whole-batch call."""
        payload = self.to_payload()
        dispatcher.event(EmbeddingStartEvent(model_dict=payload))
        # Events are built with model_construct: validating every float of every vector again
        # would double the CPU time of an ingest (the vectors were checked by the core).
        with self.callback_manager.event(
            CBEventType.EMBEDDING, payload={EventPayload.SERIALIZED: payload}
        ) as event:

            def finish(embeddings: list[Embedding]) -> list[Embedding]:
                event.on_end(
                    payload={EventPayload.CHUNKS: texts, EventPayload.EMBEDDINGS: embeddings}
                )
                dispatcher.event(
                    EmbeddingEndEvent.model_construct(chunks=texts, embeddings=embeddings)
                )
                return embeddings

            yield finish

    # -- secrets stay out of pickles --------------------------------------------------------

    def __getstate__(self) -> dict[Any, Any]:
        # pydantic's own state, not BaseComponent's (which pickles private attributes and logs
        # what it cannot); the core clients are rebuilt on load.
        state = BaseModel.__getstate__(self)
        fields = dict(state["__dict__"])
        # The key and live connections stay out; both come back on load (key from env).
        fields.update(api_key=None, http_client=None, async_http_client=None)
        return {**state, "__dict__": fields, "__pydantic_private__": None}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        BaseModel.__setstate__(self, state)
        if self.api_key is None:
            self.api_key = os.environ.get(API_KEY_ENV) or None
        self._build_core()
