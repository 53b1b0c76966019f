"""mixlayer-embeddings: Mixlayer's embeddings API (Qwen3 Embedding 8B) on a typed httpx core.

The LangChain adapter is ``langchain_mixlayer.MixlayerEmbeddings``; the LlamaIndex adapter is
``llama_index.embeddings.mixlayer.MixlayerEmbedding``. Both stand on the clients here. Types
for annotations (``ClientKwargs``, ``OptionKwargs``, ``EmbeddingInput``, ``Clock``, ``Pacer``,
``ProgressCallback``, ``Secret``) are in ``mixlayer_embeddings.typing``.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

from ._client import AsyncMixlayerClient, MixlayerClient
from ._config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_TOKENS_PER_REQUEST,
    DEFAULT_TIMEOUT,
    MAX_BATCH_SIZE,
    MODEL_ENV,
    PROXY_ENV,
)
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InputRejectedError,
    InsecureTransportError,
    InternalServerError,
    InvalidInputError,
    InvalidParameterError,
    InvalidRequestError,
    MixlayerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
)
from ._models import EmbeddingResponse, Usage
from ._options import EmbedOptions
from ._pacing import RatePacer
from ._results import EmbeddedBatch, EmbeddingArray, FailedRange, PartialResult
from ._usage import UsageTracker, track_usage
from ._version import __version__

__all__ = [  # noqa: RUF022 - grouped by what users need each for, not sorted
    # The clients, and the options of a call as one value (``embed_with_options``).
    "AsyncMixlayerClient",
    "EmbedOptions",
    "MixlayerClient",
    # What calls return: a response (``Usage`` in it), arrays, a stream's batches, and what a
    # failed call did embed.
    "EmbeddedBatch",
    "EmbeddingArray",
    "EmbeddingResponse",
    "FailedRange",
    "PartialResult",
    "Usage",
    # Counting what was sent and billed, over a client's life or a block of code.
    "UsageTracker",
    "track_usage",
    # A rate budget to share between clients (``pacer=``).
    "RatePacer",
    # Errors: the tree is drawn in ``_exceptions`` and the README.
    "APIConnectionError",
    "APIError",
    "APIStatusError",
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
    "MixlayerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseValidationError",
    # The environment variables read, for deployment scripts that set or check them.
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "MODEL_ENV",
    "PROXY_ENV",
    # The defaults and the service's batch limit, for front ends that show or size by them.
    "DEFAULT_BASE_URL",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_TOKENS_PER_REQUEST",
    "DEFAULT_TIMEOUT",
    "MAX_BATCH_SIZE",
    "__version__",
]

# Every public class and function reports the module users import it from
# (``mixlayer_embeddings.AuthenticationError``), not the private one that defines it, as httpx
# does; read from ``__all__`` itself, so a name added there cannot be missed.
for _name in __all__:
    _value = globals()[_name]
    if callable(_value) and getattr(_value, "__module__", "").startswith(__name__ + "._"):
        _value.__module__ = __name__
del _name, _value

#: Names that were in this namespace before they had a home of their own.
_MOVED = {
    name: "mixlayer_embeddings.typing"
    for name in ("ClientKwargs", "Clock", "OptionKwargs", "ProgressCallback", "Secret")
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        home = _MOVED[name]
        warnings.warn(
            f"mixlayer_embeddings.{name} is now {home}.{name}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(home), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
