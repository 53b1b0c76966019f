"""mixlayer-embeddings: Mixlayer's embeddings API (Qwen3 Embedding 8B) on a typed httpx core.

The LangChain adapter is ``langchain_mixlayer.MixlayerEmbeddings``; the LlamaIndex adapter is
``llama_index.embeddings.mixlayer.MixlayerEmbedding``. Both stand on the clients here.
"""

from ._client import AsyncMixlayerClient, MixlayerClient, ProgressCallback
from ._config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    MAX_BATCH_SIZE,
    MODEL_ENV,
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
from ._results import EmbeddedBatch, EmbeddingArray, FailedRange, PartialResult
from ._retry import set_testing
from ._version import __version__

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
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
    "PartialResult",
    "PermissionDeniedError",
    "ProgressCallback",
    "RateLimitError",
    "ResponseValidationError",
    "Secret",
    "Usage",
    "__version__",
    "set_testing",
]
