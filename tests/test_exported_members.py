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
        "DEFAULT_MAX_TOKENS_PER_REQUEST",
        "DEFAULT_TIMEOUT",
        "MAX_BATCH_SIZE",
        "MODEL_ENV",
        "PROXY_ENV",
        "APIConnectionError",
        "APIError",
        "APIStatusError",
        "APITimeoutError",
        "AsyncMixlayerClient",
        "AuthenticationError",
        "BadRequestError",
        "ConfigurationError",
        "EmbedOptions",
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
        "RateLimitError",
        "RatePacer",
        "ResponseValidationError",
        "Usage",
        "UsageTracker",
        "track_usage",
        "__version__",
    }
    for name in mixlayer_embeddings.__all__:
        assert getattr(mixlayer_embeddings, name) is not None, name


def test_public_classes_report_the_public_module() -> None:
    for name in ("AuthenticationError", "InputRejectedError", "MixlayerClient", "RatePacer"):
        cls = getattr(mixlayer_embeddings, name)
        assert cls.__module__ == "mixlayer_embeddings", name
    error = mixlayer_embeddings.InvalidParameterError("bad", param="x")
    assert repr(type(error)) == "<class 'mixlayer_embeddings.InvalidParameterError'>"
