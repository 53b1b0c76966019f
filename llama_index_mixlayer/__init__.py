"""LlamaIndex integration for Mixlayer embeddings: ``MixlayerEmbedding``.

Also importable the LlamaIndex way: ``from llama_index.embeddings.mixlayer import
MixlayerEmbedding``.
"""

from mixlayer_embeddings import (
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
    __version__,
)

from .base import MixlayerEmbedding

__all__ = [
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
    "MixlayerEmbedding",
    "MixlayerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseValidationError",
    "__version__",
]
