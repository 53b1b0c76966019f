"""``MixlayerEmbeddings``: Mixlayer embeddings as a LangChain ``Embeddings``."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from langchain_core.embeddings import Embeddings
from langchain_core.load.serializable import Serializable
from langchain_core.utils import secret_from_env
from pydantic import (
    AliasChoices,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
)

from mixlayer_embeddings import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BATCH_SIZE,
    MODEL_ENV,
)
from mixlayer_embeddings._adapter import (
    AdapterClients,
    AdapterModel,
    SharedFields,
    has_credentials,
)
from mixlayer_embeddings._config import PROXY_ENV, environment_value

__all__ = ["MixlayerEmbeddings"]


#: The key from MIXLAYER_API_KEY, by LangChain's own helper (as langchain-openai and
#: langchain-voyageai read theirs).
_env_secret = secret_from_env(API_KEY_ENV, default=None)


class MixlayerEmbeddings(AdapterModel, SharedFields, Serializable, Embeddings):
    """Mixlayer embeddings (Qwen3 Embedding 8B) for LangChain.

    A pydantic model (through LangChain's ``Serializable``, so ``dumps``/``loads`` work) and an
    ``Embeddings``. Every field is read at call time: ``emb.dimensions = 256`` applies to the
    next call, and an invalid assignment is refused at once (and changes nothing).

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

    model: str | None = Field(default_factory=lambda: environment_value(MODEL_ENV))
    """Embedding model id (env ``MIXLAYER_EMBEDDING_MODEL``)."""
    api_key: SecretStr | str | None = Field(
        default_factory=_env_secret,
        validation_alias=AliasChoices("api_key", "mixlayer_api_key"),
    )
    """API key (env ``MIXLAYER_API_KEY``); held as a ``SecretStr``, so never shown in a repr,
    a dump or a pickle."""
    base_url: str | None = Field(default_factory=lambda: environment_value(BASE_URL_ENV))
    """API base URL (env ``MIXLAYER_BASE_URL``, default ``https://models.mixlayer.ai/v1``)."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Further request-body fields; may not set ``model``, ``input`` or a named option."""
    batch_size: int = DEFAULT_BATCH_SIZE
    """Texts per request (at most 2048)."""
    show_progress_bar: bool = False
    """A tqdm progress bar for ``embed_documents`` (``pip install "…[progress]"``)."""
    http_async_client: httpx.AsyncClient | None = Field(default=None, exclude=True)
    """Your own ``httpx.AsyncClient``."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        arbitrary_types_allowed=True,
        protected_namespaces=(),
        validate_assignment=True,
        # An error must not echo the inputs: they can hold the key.
        hide_input_in_errors=True,
    )

    _SYNONYMS: ClassVar[dict[str, str]] = {
        "model_name": "model",
        "api_base": "base_url",
        "openai_api_base": "base_url",
        "openai_api_key": "api_key",
        "embed_batch_size": "batch_size",
        "chunk_size": "batch_size",
        "additional_kwargs": "model_kwargs",
        "extra_body": "model_kwargs",
        "request_timeout": "timeout",
        "async_http_client": "http_async_client",
        "openai_proxy": "proxy",
        "input_type": "document_input_type",
        "dimension": "dimensions",
        "instruction": "query_instruction",
        "query_prompt": "query_instruction",
    }
    _RENAMES: ClassVar[dict[str, str]] = {
        "extra_body": "model_kwargs",
        "async_http_client": "http_async_client",
    }
    _SHARED_FIELDS: ClassVar[tuple[str, ...]] = ("http_client", "http_async_client")

    _core: AdapterClients = PrivateAttr(default_factory=AdapterClients)

    @field_validator("api_key", mode="after")
    @classmethod
    def _key_as_secret(cls, value: SecretStr | str | None) -> SecretStr | None:
        # Accepted as a str (what users pass), always held as a SecretStr.
        return SecretStr(value) if isinstance(value, str) else value

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed corpus texts (``input_type="document"``), one vector per text, in order."""
        return self._core.embed_documents(
            self._settings(), texts, show_progress=self.show_progress_bar
        )

    def embed_query(self, text: str) -> list[float]:
        """Embed a question (``input_type="query"``)."""
        return self._core.embed_query(self._settings(), text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self._core.aembed_documents(
            self._settings(), texts, show_progress=self.show_progress_bar
        )

    async def aembed_query(self, text: str) -> list[float]:
        return await self._core.aembed_query(self._settings(), text)

    # -- serialization, the LangChain way; the key stays out of every serialized form ----------

    @classmethod
    def is_lc_serializable(cls) -> bool:
        return True

    @classmethod
    def get_lc_namespace(cls) -> list[str]:
        return ["langchain_mixlayer"]

    @property
    def lc_secrets(self) -> dict[str, str]:
        # A proxy with credentials is a secret like the key: ``dumps`` writes a reference to
        # MIXLAYER_PROXY, which ``loads`` reads from its secrets_map or the environment.
        proxy = {"proxy": PROXY_ENV} if has_credentials(self.proxy) else {}
        return {"api_key": API_KEY_ENV, **proxy}

    def __getstate__(self) -> dict[Any, Any]:
        # A pickle must not carry the key or live connections: the key comes back from
        # MIXLAYER_API_KEY on load, the clients are rebuilt on first use.
        state = super().__getstate__()
        fields = dict(state["__dict__"])
        fields.update(api_key=None, http_client=None, http_async_client=None)
        return {**state, "__dict__": fields, "__pydantic_private__": None}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        object.__setattr__(self, "__pydantic_private__", {"_core": AdapterClients()})
        if self.api_key is None:
            self.__dict__["api_key"] = _env_secret()
        self._check_settings()
