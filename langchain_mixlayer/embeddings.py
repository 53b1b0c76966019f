"""``MixlayerEmbeddings``: Mixlayer embeddings as a LangChain ``Embeddings``."""

from __future__ import annotations

from typing import Any

import httpx
from langchain_core.embeddings import Embeddings
from langchain_core.load.serializable import Serializable
from langchain_core.utils import from_env, secret_from_env
from pydantic import ConfigDict, Field, PrivateAttr, SecretStr

from mixlayer_embeddings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    MODEL_ENV,
    Secret,
)
from mixlayer_embeddings._adapter import AdapterCore, EmbedOptions

__all__ = ["MixlayerEmbeddings"]


class MixlayerEmbeddings(Serializable, Embeddings):
    """Mixlayer embeddings (Qwen3 Embedding 8B) for LangChain.

    A pydantic ``BaseModel`` (through LangChain's ``Serializable``, so ``dumps``/``loads``
    work) and an ``Embeddings``.

    ``embed_documents`` sends ``input_type="document"``, ``embed_query`` sends ``"query"``;
    long lists are split into batches of ``batch_size`` sent ``max_concurrency`` at a time.

    Setup: ``pip install "mixlayer-embeddings[langchain]"`` and set ``MIXLAYER_API_KEY`` and
    ``MIXLAYER_EMBEDDING_MODEL``.

    Example:
        .. code-block:: python

            from langchain_mixlayer import MixlayerEmbeddings

            embeddings = MixlayerEmbeddings(model="qwen/qwen3-embedding-8b", dimensions=1024)
            vectors = embeddings.embed_documents(["Paris is in France."])
            query = embeddings.embed_query("Where is Paris?")
    """

    model: str | None = Field(default_factory=from_env(MODEL_ENV, default=None))
    """Embedding model id (env ``MIXLAYER_EMBEDDING_MODEL``)."""
    api_key: SecretStr | None = Field(
        alias="mixlayer_api_key", default_factory=secret_from_env(API_KEY_ENV, default=None)
    )
    """API key (env ``MIXLAYER_API_KEY``); never shown in a repr, a dump or a pickle."""
    base_url: str | None = Field(default_factory=from_env(BASE_URL_ENV, default=None))
    """API base URL (env ``MIXLAYER_BASE_URL``, default ``https://models.mixlayer.ai/v1``)."""
    dimensions: int | None = None
    """Output vector size (Qwen3 Embedding 8B: 32 to 4096); None for the model's full size."""
    query_input_type: str | None = "query"
    """``input_type`` sent by ``embed_query``; None omits it."""
    document_input_type: str | None = "document"
    """``input_type`` sent by ``embed_documents``; None omits it."""
    normalize: bool | None = None
    truncate: bool | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    """Texts per request (at most 2048)."""
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    """Requests in flight at once for one call."""
    max_retries: int = DEFAULT_MAX_RETRIES
    timeout: float | None = None
    """Read timeout in seconds (None: 60 s read, 10 s connect)."""
    show_progress_bar: bool = False
    allow_insecure_http: bool = False
    """Allow sending the key over plain http:// to a host that is not loopback."""
    http_client: httpx.Client | None = Field(default=None, exclude=True)
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True)

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        arbitrary_types_allowed=True,
        protected_namespaces=(),
    )

    _core: AdapterCore = PrivateAttr()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Built after validation so configuration errors surface as themselves
        # (ConfigurationError naming the variable), not wrapped in a ValidationError.
        self._build_core()

    def _build_core(self) -> None:
        """Build the core clients once; this makes no network call."""
        self._core = AdapterCore(
            api_key=Secret(self.api_key.get_secret_value()) if self.api_key else None,
            base_url=self.base_url,
            model=self.model,
            timeout=self.timeout,
            max_retries=self.max_retries,
            batch_size=self.batch_size,
            max_concurrency=self.max_concurrency,
            http_client=self.http_client,
            async_http_client=self.http_async_client,
            allow_insecure_http=self.allow_insecure_http,
            options=EmbedOptions(
                dimensions=self.dimensions,
                normalize=self.normalize,
                truncate=self.truncate,
                query_input_type=self.query_input_type,
                document_input_type=self.document_input_type,
            ),
        )

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed corpus texts (``input_type="document"``), one vector per text, in order."""
        return self._core.embed_documents(texts, show_progress=self.show_progress_bar)

    def embed_query(self, text: str) -> list[float]:
        """Embed a question (``input_type="query"``)."""
        return self._core.embed_query(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self._core.aembed_documents(texts, show_progress=self.show_progress_bar)

    async def aembed_query(self, text: str) -> list[float]:
        return await self._core.aembed_query(text)

    # -- serialization, the LangChain way; the key stays out of every serialized form ----------

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["langchain_mixlayer"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        return {"api_key": API_KEY_ENV, "mixlayer_api_key": API_KEY_ENV}

    def __getstate__(self) -> dict[Any, Any]:
        # A pickle must not carry the key or live connections: both are rebuilt on load,
        # the key from MIXLAYER_API_KEY.
        state = super().__getstate__()
        fields = dict(state["__dict__"])
        fields.update(api_key=None, http_client=None, http_async_client=None)
        return {**state, "__dict__": fields, "__pydantic_private__": None}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        if self.api_key is None:
            self.api_key = secret_from_env(API_KEY_ENV, default=None)()
        self._build_core()
