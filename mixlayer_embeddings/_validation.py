"""Checks that refuse, before anything is sent, what the reference says the service refuses."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ._config import MAX_BATCH_SIZE, ClientConfig, ModelSpec
from ._exceptions import InvalidInputError, InvalidParameterError

__all__ = [
    "EmbeddingInput",
    "NormalizedInput",
    "check_client_config",
    "check_client_options",
    "check_default_headers",
    "check_text",
    "check_texts",
    "is_utf8",
    "normalize_input",
    "problem_of",
    "validate_options",
]

#: Every input form of the reference: a string, strings, a token array, token arrays.
EmbeddingInput = str | Sequence[str] | Sequence[int] | Sequence[Sequence[int]]
Item = str | list[int]

ENCODING_FORMATS = ("float", "base64")


@dataclass(frozen=True)
class NormalizedInput:
    """The input as a list of items, and whether the caller passed one item or many."""

    items: list[Item]
    kind: Literal["text", "tokens"]
    single: bool


def _is_token(value: object) -> bool:
    # bool is a subclass of int, but True is not a token id.
    return isinstance(value, int) and not isinstance(value, bool)


def _token_array(value: Sequence[object], where: str, index: int | None) -> list[int]:
    bad = [i for i, token in enumerate(value) if not _is_token(token)]
    if bad:
        shown = ", ".join(f"{i} ({type(value[i]).__name__})" for i in bad[:10])
        raise InvalidInputError(
            f"token arrays must hold only ints; {where} has non-int tokens at positions {shown}",
            indexes=[] if index is None else [index],
        )
    return list(value)  # type: ignore[arg-type]  # every element was just checked to be an int


def normalize_input(value: object) -> NormalizedInput:
    """Accept every form of the reference; raise ``InvalidInputError`` naming each bad item.

    An empty list is valid here (it embeds to nothing, without a request); the request size
    limit is the batching plan's business, since a long list is split, not refused.
    """
    if isinstance(value, str):
        if not value:
            raise InvalidInputError("input strings must not be empty", indexes=[0])
        if not is_utf8(value):
            raise InvalidInputError(_NOT_UTF8, indexes=[0])
        return NormalizedInput([value], "text", single=True)
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, Sequence):
        raise InvalidInputError(
            "input must be a string, a list of strings, a token array (list of ints) or a list "
            f"of token arrays; got {type(value).__name__}"
        )
    if len(value) == 0:
        return NormalizedInput([], "text", single=False)
    if any(_is_token(v) for v in value) and not any(isinstance(v, (str, Sequence)) for v in value):
        # A flat list with ints in it is one token array; floats or bools in it are bad tokens.
        return NormalizedInput([_token_array(value, "the token array", 0)], "tokens", single=True)

    first = value[0]
    kind: Literal["text", "tokens"] = (
        "tokens" if isinstance(first, Sequence) and not isinstance(first, str) else "text"
    )
    items: list[Item] = []
    wrong_type: list[int] = []
    empty: list[int] = []
    not_utf8: list[int] = []
    for i, item in enumerate(value):
        if kind == "text":
            if not isinstance(item, str):
                wrong_type.append(i)
            elif not item:
                empty.append(i)
            elif not is_utf8(item):
                not_utf8.append(i)
            else:
                items.append(item)
        else:
            if isinstance(item, (str, bytes, bytearray)) or not isinstance(item, Sequence):
                wrong_type.append(i)
            elif len(item) == 0:
                empty.append(i)
            else:
                items.append(_token_array(item, f"input[{i}]", i))
    if wrong_type:
        expected = "strings" if kind == "text" else "token arrays (lists of ints)"
        found = ", ".join(sorted({type(value[i]).__name__ for i in wrong_type}))
        raise InvalidInputError(
            f"input items must be all strings or all token arrays; expected {expected}, "
            f"found {found}",
            indexes=wrong_type,
        )
    if empty:
        what = "input strings" if kind == "text" else "token arrays"
        raise InvalidInputError(f"{what} must not be empty", indexes=empty)
    if not_utf8:
        raise InvalidInputError(_NOT_UTF8, indexes=not_utf8)
    return NormalizedInput(items, kind, single=False)


_NOT_UTF8 = (
    "input strings must be valid Unicode: a lone surrogate (such as '\\ud800', often from "
    "a bad decode) cannot be sent as UTF-8"
)


def is_utf8(text: str) -> bool:
    """Can ``text`` be sent as UTF-8? (Not when it holds a lone surrogate.)"""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_options(
    *,
    spec: ModelSpec | None,
    input_type: object,
    dimensions: object,
    encoding_format: object,
    normalize: object,
    truncate: object,
    input_type_param: str = "input_type",
) -> None:
    """Refuse bad parameters, with the model's own limits when we recognise the model.

    ``input_type_param``: the name the caller knows ``input_type`` by (an adapter's
    ``query_input_type``), used in the message and as the error's ``param``.
    """
    if dimensions is not None:
        in_range = _is_token(dimensions) and (
            spec.min_dimensions <= dimensions <= spec.max_dimensions  # type: ignore[operator]
            if spec is not None
            else dimensions > 0  # type: ignore[operator]
        )
        if not in_range:
            wanted = (
                f"an integer from {spec.dimensions_range()} for {spec.name}"
                if spec is not None
                else "an integer greater than 0"
            )
            raise InvalidParameterError(
                f"dimensions must be {wanted}, got {dimensions!r}", param="dimensions"
            )
    if encoding_format is not None and encoding_format not in ENCODING_FORMATS:
        raise InvalidParameterError(
            f'encoding_format must be "float" or "base64", got {encoding_format!r}',
            param="encoding_format",
        )
    if input_type is not None:
        if not isinstance(input_type, str):
            raise InvalidParameterError(
                f"{input_type_param} must be a string, got {type(input_type).__name__}",
                param=input_type_param,
            )
        if spec is not None and input_type not in spec.input_types:
            allowed = " or ".join(repr(t) for t in sorted(spec.input_types, reverse=True))
            raise InvalidParameterError(
                f"{input_type_param}={input_type!r} is not supported by {spec.name}: "
                f"use {allowed}, or None to omit it",
                param=input_type_param,
            )
    for name, flag in (("normalize", normalize), ("truncate", truncate)):
        if flag is not None and not isinstance(flag, bool):
            raise InvalidParameterError(
                f"{name} must be True, False or None, got {flag!r}", param=name
            )


def check_client_options(
    *,
    batch_size: object,
    max_concurrency: object,
    max_retries: object,
    rate: object = None,
    max_tokens_per_request: object = 1,
    batch_size_param: str = "batch_size",
) -> None:
    """Refuse client settings that could only produce requests the service refuses."""
    if not _is_token(batch_size) or not 1 <= batch_size <= MAX_BATCH_SIZE:  # type: ignore[operator]
        raise InvalidParameterError(
            f"{batch_size_param} must be an integer from 1 to {MAX_BATCH_SIZE}, got {batch_size!r}",
            param=batch_size_param,
        )
    if not _is_token(max_concurrency) or max_concurrency < 1:  # type: ignore[operator]
        raise InvalidParameterError(
            f"max_concurrency must be an integer of at least 1, got {max_concurrency!r}",
            param="max_concurrency",
        )
    if not _is_token(max_retries) or max_retries < 0:  # type: ignore[operator]
        raise InvalidParameterError(
            f"max_retries must be an integer of at least 0, got {max_retries!r}",
            param="max_retries",
        )
    if not _is_token(max_tokens_per_request) or max_tokens_per_request < 1:  # type: ignore[operator]
        raise InvalidParameterError(
            "max_tokens_per_request must be an integer of at least 1, got "
            f"{max_tokens_per_request!r}",
            param="max_tokens_per_request",
        )
    if rate is not None and not (
        isinstance(rate, (int, float)) and not isinstance(rate, bool) and 0 < rate < float("inf")
    ):
        raise InvalidParameterError(
            f"rate must be requests per second greater than 0, or None, got {rate!r}",
            param="rate",
        )


def check_client_config(config: ClientConfig, *, batch_size_param: str = "batch_size") -> None:
    """``check_client_options`` for every numeric setting of ``config`` (one list of them, for
    the clients and the adapters alike)."""
    check_client_options(
        batch_size=config.batch_size,
        max_concurrency=config.max_concurrency,
        max_retries=config.max_retries,
        rate=config.rate,
        max_tokens_per_request=config.max_tokens_per_request,
        batch_size_param=batch_size_param,
    )


#: Headers this package sets itself; a default header may not replace them.
_OWN_HEADERS = {"authorization": "api_key", "content-type": None, "content-length": None}


def check_default_headers(headers: object) -> dict[str, str]:
    """A copy of ``default_headers``; the key goes in ``api_key``, never in a header."""
    if headers is None:
        return {}
    if not isinstance(headers, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise InvalidParameterError(
            "default_headers must be a dict of header names to string values",
            param="default_headers",
        )
    for name in headers:
        if name.lower() in _OWN_HEADERS:
            instead = _OWN_HEADERS[name.lower()]
            hint = f": pass the key as {instead}" if instead else ""
            raise InvalidParameterError(
                f"default_headers may not set {name!r}; this client sets it{hint}",
                param="default_headers",
            )
    return dict(headers)


def check_texts(texts: object) -> list[str]:
    """For the adapters: a list of texts, each a non-empty string (a token array is refused,
    since a framework's list of documents must give one vector per document)."""
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise InvalidInputError(f"texts must be a list of strings, got {type(texts).__name__}")
    wrong = [i for i, text in enumerate(texts) if not isinstance(text, str)]
    if wrong:
        found = ", ".join(sorted({type(texts[i]).__name__ for i in wrong}))
        raise InvalidInputError(f"texts must be strings, found {found}", indexes=wrong)
    empty = [i for i, text in enumerate(texts) if not text]
    if empty:
        raise InvalidInputError("texts must not be empty strings", indexes=empty)
    return list(texts)


def check_text(text: object) -> str:
    """For the adapters: one query text, a non-empty string."""
    if not isinstance(text, str):
        raise InvalidInputError(f"the query must be a string, got {type(text).__name__}")
    if not text:
        raise InvalidInputError("the query must not be an empty string", indexes=[0])
    return text


def problem_of(text: Any) -> str | None:
    """Why a corpus row's ``text`` cannot be sent, or None: the one rule of ``mixlayer-embed``
    and ``ray_data`` (such a row becomes a reject, or a null vector, and the run goes on), and
    the core's (``normalize_input``): a text is a non-empty string of valid Unicode, as the
    reference says. A text of spaces is a text: the service embeds it, so it is sent."""
    if not isinstance(text, str):
        shown = json.dumps(text, default=str)
        return f"the text is {type(text).__name__} {shown[:40]}, not a string"
    if not text:
        return "empty text (not sent)"
    if not is_utf8(text):
        return (
            "the text is not valid Unicode (a lone surrogate, often from bytes that are not UTF-8)"
        )
    return None
