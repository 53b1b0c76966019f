import mixlayer_embeddings


def test_core_public_surface_is_exactly_this() -> None:
    assert len(mixlayer_embeddings.__all__) == len(set(mixlayer_embeddings.__all__))
    assert set(mixlayer_embeddings.__all__) == {
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
    }
    for name in mixlayer_embeddings.__all__:
        assert getattr(mixlayer_embeddings, name) is not None, name
