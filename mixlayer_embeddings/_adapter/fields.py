"""The fields both adapters have under the same name, declared once (``SharedFields``).

Limits are checked by the core (``AdapterSettings.validate``, on construction and on every
assignment), not by pydantic constraints, so a bad value gets the same typed error, naming
the field, in both frameworks. Each adapter adds only the fields its framework names its own
way: the model, the key, the URL, the batch size, the extra request fields and the async http
client (``model_name``, ``api_base``, ``embed_batch_size``... in LlamaIndex; ``model``,
``base_url``, ``batch_size``... in LangChain). Descriptions are written here, so the two cannot
drift apart.
"""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_serializer

from .._config import (
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_TOKENS_PER_REQUEST,
    PROXY_ENV,
)
from .model import serialized_proxy

__all__ = ["SharedFields"]


class SharedFields(BaseModel):
    """What both ``MixlayerEmbeddings`` and ``MixlayerEmbedding`` have, by the same name."""

    model_config = ConfigDict(arbitrary_types_allowed=True)  # httpx.Timeout, httpx.Client

    dimensions: int | None = Field(
        default=None,
        description="Output vector size (Qwen3 Embedding 8B: 32 to 4096); None: the full size.",
    )
    query_input_type: str | None = Field(
        default="query", description="input_type sent with queries; None omits it."
    )
    document_input_type: str | None = Field(
        default="document", description="input_type sent with documents; None omits it."
    )
    query_instruction: str | None = Field(
        default=None,
        description="A task instruction for queries (Qwen3's 'Instruct: {task}\\nQuery:{query}'"
        ", sent with input_type left out); documents are never instructed. None: no "
        "instruction.",
    )
    normalize: bool | None = Field(
        default=None,
        description="Ask the service for normalized vectors; None leaves it to the service.",
    )
    truncate: bool | None = Field(
        default=None, description="Ask the service to truncate inputs longer than its window."
    )
    max_concurrency: int = Field(
        default=DEFAULT_MAX_CONCURRENCY,
        description="Requests in flight at once, for all the calls of this object together.",
    )
    max_tokens_per_request: int = Field(
        default=DEFAULT_MAX_TOKENS_PER_REQUEST,
        description="Estimated tokens per request (a long text goes alone); the tokens in "
        "flight also adapt to the server's measured capacity.",
    )
    max_retries: int = Field(
        default=DEFAULT_MAX_RETRIES,
        description="Retries of a failed request (connection errors, timeouts, 408, 409, "
        "429, 5xx).",
    )
    timeout: float | tuple[float | None, ...] | httpx.Timeout | None = Field(
        default=None,
        description="Seconds, an httpx.Timeout or a (connect, read) pair (None: 10 s connect, "
        "60 s read); an httpx.Timeout is stored as its (connect, read, write, pool) tuple.",
    )
    default_headers: dict[str, str] = Field(
        default_factory=dict,
        description="Headers sent with every request (not Authorization: the key is api_key).",
    )
    proxy: str | None = Field(
        default=None,
        repr=False,
        description=f"Proxy URL for the http clients this object creates (None: {PROXY_ENV}, "
        "if set); one with credentials is left out of serialized forms, as the key.",
    )
    trust_env: bool = Field(
        default=True,
        description="Read proxy settings and netrc from the environment (as httpx does).",
    )
    dedupe: bool = Field(
        default=True,
        description="Identical texts within one call are sent once, their vector given to each.",
    )
    rate: float | None = Field(
        default=None,
        description="Requests per second the key may send, if known (None: learned from 429s).",
    )
    allow_insecure_http: bool = Field(
        default=False,
        description="Allow sending the key over plain http:// to a host that is not loopback.",
    )
    http_client: httpx.Client | None = Field(
        default=None,
        exclude=True,
        description="Your own httpx.Client (then proxy goes on it, not here).",
    )

    @field_serializer("proxy")
    def _proxy_as_serialized(self, value: str | None) -> str | None:
        return serialized_proxy(value)
