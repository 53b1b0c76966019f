"""The public surface, walked from ``__all__``: every public name reports the module users
import it from, and no public signature names a type users cannot import."""

from __future__ import annotations

import inspect
import typing
import warnings
from types import ModuleType
from typing import Any

import numpy
import numpy.typing
import pytest
import typing_extensions

import langchain_mixlayer
import llama_index.embeddings.mixlayer
import mixlayer_embeddings
import mixlayer_embeddings.typing

PUBLIC_MODULES = [mixlayer_embeddings, mixlayer_embeddings.typing, langchain_mixlayer,
                  llama_index.embeddings.mixlayer]  # fmt: skip
OURS = ("mixlayer_embeddings", "langchain_mixlayer", "llama_index_mixlayer", "llama_index")


def _is_private_module(module: str) -> bool:
    return module.split(".")[0] in OURS and any(p.startswith("_") for p in module.split("."))


def _public_names(module: ModuleType) -> list[tuple[str, Any]]:
    return [(name, getattr(module, name)) for name in module.__all__]


@pytest.mark.parametrize("module", PUBLIC_MODULES, ids=lambda m: m.__name__)
def test_every_exported_class_and_function_reports_a_public_module(module: ModuleType) -> None:
    leaking = [
        f"{name} -> {value.__module__}"
        for name, value in _public_names(module)
        if (inspect.isclass(value) or inspect.isfunction(value))
        and _is_private_module(value.__module__)
    ]
    assert leaking == []


def _types_in(hint: Any) -> list[Any]:
    found = [hint] if inspect.isclass(hint) else []
    for arg in typing.get_args(hint):
        found += _types_in(arg)
    origin = typing.get_origin(hint)
    if origin is not None and inspect.isclass(origin):
        found.append(origin)
    return found


def _signature_types(function: Any) -> list[Any]:
    # Names imported for type checkers only (``if TYPE_CHECKING``).
    local = {"Unpack": typing_extensions.Unpack, "np": numpy, "npt": numpy.typing}
    hints = typing.get_type_hints(function, localns=local, include_extras=True)
    return [t for hint in hints.values() for t in _types_in(hint)]


def _public_callables() -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    for module in PUBLIC_MODULES:
        for name, value in _public_names(module):
            if inspect.isfunction(value):
                seen.append((name, value))
            elif inspect.isclass(value) and value.__module__.split(".")[0] in OURS:
                for attr, member in vars(value).items():
                    if attr.startswith("_") and attr != "__init__":
                        continue
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    if inspect.isfunction(member) and member.__module__.split(".")[0] in OURS:
                        seen.append((f"{name}.{attr}", member))
    return seen


def _typed_dict_fields() -> list[tuple[str, Any]]:
    return [
        (name, value)
        for module in PUBLIC_MODULES
        for name, value in _public_names(module)
        if typing_extensions.is_typeddict(value)
    ]


def test_no_public_signature_names_a_private_type() -> None:
    named = [(where, _signature_types(function)) for where, function in _public_callables()]
    named += [(where, _signature_types(kind)) for where, kind in _typed_dict_fields()]
    private = sorted(
        f"{where}: {t.__module__}.{t.__qualname__}"
        for where, types in named
        for t in types
        if _is_private_module(t.__module__)
    )
    assert private == []
    assert len(named) > 40  # the walk found the clients' and adapters' methods


def test_the_names_that_moved_to_typing_still_import_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match=r"mixlayer_embeddings\.typing\.ClientKwargs"):
        moved = mixlayer_embeddings.ClientKwargs  # type: ignore[attr-defined]
    assert moved is mixlayer_embeddings.typing.ClientKwargs
    with warnings.catch_warnings(), pytest.raises(AttributeError):
        mixlayer_embeddings.NoSuchName  # type: ignore[attr-defined]  # noqa: B018


def test_a_client_and_an_adapter_call_their_usage_by_one_name(mixlayer_emulator) -> None:
    client = mixlayer_embeddings.MixlayerClient(
        base_url=mixlayer_emulator.base_url,
        api_key=mixlayer_emulator.api_key,
        model=mixlayer_emulator.model,
    )
    client.embed(["a", "b"])
    assert client.usage.requests == 1
    with pytest.warns(DeprecationWarning, match=r"client\.usage"):
        assert client.counters is client.usage  # type: ignore[attr-defined]


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
    for name in mixlayer_embeddings.typing.__all__:
        assert name not in vars(mixlayer_embeddings), name  # one home each
