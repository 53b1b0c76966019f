"""LangChain integration for Mixlayer embeddings: ``MixlayerEmbeddings``."""

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

from .embeddings import MixlayerEmbeddings

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
    "MixlayerEmbeddings",
    "MixlayerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseValidationError",
    "__version__",
]
