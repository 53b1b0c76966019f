"""mixlayer-embeddings: Mixlayer's embeddings API (Qwen3 Embedding 8B) on a typed httpx core.

The LangChain adapter is ``langchain_mixlayer.MixlayerEmbeddings``; the LlamaIndex adapter is
``llama_index.embeddings.mixlayer.MixlayerEmbedding``. Both stand on the clients here.
"""

from ._client import AsyncMixlayerClient, MixlayerClient, ProgressCallback
from ._clock import Clock
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
    ClientKwargs,
    Secret,
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
from ._options import OptionKwargs
from ._pacing import RatePacer
from ._results import EmbeddedBatch, EmbeddingArray, FailedRange, PartialResult
from ._usage import UsageTracker, track_usage
from ._version import __version__

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_TOKENS_PER_REQUEST",
    "DEFAULT_TIMEOUT",
    "MAX_BATCH_SIZE",
    "MODEL_ENV",
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncMixlayerClient",
    "AuthenticationError",
    "BadRequestError",
    "ClientKwargs",
    "Clock",
    "ConfigurationError",
    "EmbeddedBatch",
    "EmbeddingArray",
    "EmbeddingResponse",
    "FailedRange",
    "InputRejectedError",
    "InsecureTransportError",
    "InternalServerError",
    "InvalidInputError",
    "InvalidParameterError",
    "InvalidRequestError",
    "MixlayerClient",
    "MixlayerError",
    "NotFoundError",
    "OptionKwargs",
    "PartialResult",
    "PermissionDeniedError",
    "ProgressCallback",
    "RateLimitError",
    "RatePacer",
    "ResponseValidationError",
    "Secret",
    "Usage",
    "UsageTracker",
    "__version__",
    "track_usage",
]


# Errors and clients report the module users import them from (``mixlayer_embeddings.
# AuthenticationError``), not the private one that defines them, as httpx does.
for _public in (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AsyncMixlayerClient,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InputRejectedError,
    InsecureTransportError,
    InternalServerError,
    InvalidInputError,
    InvalidParameterError,
    InvalidRequestError,
    MixlayerClient,
    MixlayerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RatePacer,
    UsageTracker,
    ResponseValidationError,
):
    _public.__module__ = __name__
del _public
