from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

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
    MAX_BATCH_SIZE,
    MODEL_ENV,
)
from mixlayer_embeddings._adapter import AdapterClients, AdapterModel, SharedFields
from mixlayer_embeddings._config import environment_value
from mixlayer_embeddings._usage import UsageTracker, tracking

from .events import USAGE_PAYLOAD_KEY, MixlayerUsageEvent

__all__ = ["MixlayerEmbedding"]

# llama-index-core re-exports get_dispatcher without declaring it; its own modules call it so.
dispatcher = instrument.get_dispatcher(__name__)  # type: ignore[attr-defined]


def _env(name: str) -> Callable[[], str | None]:
    return lambda: environment_value(name)


class MixlayerEmbedding(AdapterModel, SharedFields, BaseEmbedding):
    """Mixlayer embeddings (Qwen3 Embedding 8B) for LlamaIndex.

    Queries are sent with ``input_type="query"``, texts and nodes with ``"document"``. A batch
    of any length is one core call: split into requests of ``embed_batch_size`` and sent
    ``max_concurrency`` at a time. Every field is read at call time, so
    ``Settings.embed_model.embed_batch_size = 100`` applies to the next call, and an invalid
    assignment is refused at once. The key is never in ``to_dict()``, ``to_json()``, events or
    pickles; a saved model loads with the key from ``MIXLAYER_API_KEY``.

    Example:
        .. code-block:: python

            from llama_index.embeddings.mixlayer import MixlayerEmbedding

            embed_model = MixlayerEmbedding(model_name="qwen/qwen3-embedding-8b")
            vector = embed_model.get_query_embedding("Where is Paris?")
    """

    model_name: str = Field(
        default_factory=lambda: environment_value(MODEL_ENV) or "",
        description="Embedding model id (env MIXLAYER_EMBEDDING_MODEL).",
    )
    api_key: str | None = Field(
        default_factory=_env(API_KEY_ENV),
        exclude=True,
        repr=False,
        description="API key (env MIXLAYER_API_KEY); never serialized.",
    )
    api_base: str | None = Field(
        default_factory=_env(BASE_URL_ENV), description="API base URL (env MIXLAYER_BASE_URL)."
    )
    additional_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Further request-body fields; may not set model, input or a named option.",
    )
    embed_batch_size: int = Field(
        default=DEFAULT_BATCH_SIZE,
        gt=0,
        le=MAX_BATCH_SIZE,
        description="Texts per request (at most 2048).",
    )
    async_http_client: httpx.AsyncClient | None = Field(default=None, exclude=True)

    model_config = ConfigDict(
        extra="forbid",
        arbitrary_types_allowed=True,
        protected_namespaces=(),
        validate_assignment=True,
        # An error must not echo the inputs: they can hold the key.
        hide_input_in_errors=True,
    )

    _SYNONYMS: ClassVar[dict[str, str]] = {
        "model": "model_name",
        "base_url": "api_base",
        "openai_api_base": "api_base",
        "mixlayer_api_key": "api_key",
        "openai_api_key": "api_key",
        "batch_size": "embed_batch_size",
        "chunk_size": "embed_batch_size",
        "model_kwargs": "additional_kwargs",
        "extra_body": "additional_kwargs",
        "request_timeout": "timeout",
        "http_async_client": "async_http_client",
        "input_type": "document_input_type",
        "dimension": "dimensions",
        "instruction": "query_instruction",
        "query_prompt": "query_instruction",
    }
    _RENAMES: ClassVar[dict[str, str]] = {
        "model": "model_name",
        "base_url": "api_base",
        "batch_size": "embed_batch_size",
        "extra_body": "additional_kwargs",
    }
    _SHARED_FIELDS: ClassVar[tuple[str, ...]] = (
        "http_client",
        "async_http_client",
        "callback_manager",
        "embeddings_cache",
        "rate_limiter",
    )

    _core: AdapterClients = PrivateAttr(default_factory=AdapterClients)

    @classmethod
    def class_name(cls) -> str:
        return "MixlayerEmbedding"

    # -- the mapping: queries as "query", everything else as "document" -----------------------

    def _get_query_embedding(self, query: str) -> Embedding:
        with tracking(UsageTracker()) as call:
            vector = self._core.embed_query(self._settings(), query)
        dispatcher.event(MixlayerUsageEvent.of(self.model_name, call))
        return vector

    async def _aget_query_embedding(self, query: str) -> Embedding:
        with tracking(UsageTracker()) as call:
            vector = await self._core.aembed_query(self._settings(), query)
        dispatcher.event(MixlayerUsageEvent.of(self.model_name, call))
        return vector

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._core.embed_documents(self._settings(), [text])[0]

    async def _aget_text_embedding(self, text: str) -> Embedding:
        return (await self._core.aembed_documents(self._settings(), [text]))[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._core.embed_documents(self._settings(), texts)

    async def _aget_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return await self._core.aembed_documents(self._settings(), texts)

    # -- a batch of any length is one core call (the core batches and runs requests at once) --

    @dispatcher.span
    def get_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        if self.embeddings_cache is not None or self.rate_limiter is not None:
            # Those features work chunk by chunk; keep LlamaIndex's own loop for them.
            return super().get_text_embedding_batch(texts, show_progress, **kwargs)
        with self._events(texts) as finish:
            return finish(
                self._core.embed_documents(self._settings(), texts, show_progress=show_progress)
            )

    @dispatcher.span
    async def aget_text_embedding_batch(
        self, texts: list[str], show_progress: bool = False, **kwargs: Any
    ) -> list[Embedding]:
        if self.embeddings_cache is not None or self.rate_limiter is not None:
            return await super().aget_text_embedding_batch(texts, show_progress, **kwargs)
        with self._events(texts) as finish:
            return finish(
                await self._core.aembed_documents(
                    self._settings(), texts, show_progress=show_progress
                )
            )

    @contextlib.contextmanager
    def _events(self, texts: list[str]) -> Iterator[Callable[[list[Embedding]], list[Embedding]]]:
        """LlamaIndex's start/end events and callback event, around one whole-batch call; the
        service's usage of the call goes in the callback's end payload (``"mixlayer_usage"``)
        and in a ``MixlayerUsageEvent`` after ``EmbeddingEndEvent``."""
        payload = self.to_payload()
        call = UsageTracker()
        dispatcher.event(EmbeddingStartEvent(model_dict=payload))
        # Events are built with model_construct: validating every float of every vector again
        # would double the CPU time of an ingest (the vectors were checked by the core).
        with self.callback_manager.event(
            CBEventType.EMBEDDING, payload={EventPayload.SERIALIZED: payload}
        ) as event:

            def finish(embeddings: list[Embedding]) -> list[Embedding]:
                event.on_end(
                    payload={
                        EventPayload.CHUNKS: texts,
                        EventPayload.EMBEDDINGS: embeddings,
                        USAGE_PAYLOAD_KEY: call,
                    }
                )
                dispatcher.event(
                    EmbeddingEndEvent.model_construct(chunks=texts, embeddings=embeddings)
                )
                dispatcher.event(MixlayerUsageEvent.of(self.model_name, call))
                return embeddings

            with tracking(call):
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
        object.__setattr__(self, "__pydantic_private__", {"_core": AdapterClients()})
        if self.api_key is None:
            self.__dict__["api_key"] = _env(API_KEY_ENV)()
        self._check_settings()
