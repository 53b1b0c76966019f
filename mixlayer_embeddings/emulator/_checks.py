"""The emulator's own reading of a request, written from the service's reference page alone.

It shares no code with the client's validation (``mixlayer_embeddings._validation``), so the
tests that send both the same requests check two independent readings of the reference
against each other, instead of the client against itself.

From the reference: ``input`` is a string, an array of strings, a token array (integers) or an
array of token arrays; text strings must be non-empty; arrays must hold 1-2048 items; token
inputs must be non-empty and fit the context window. ``dimensions`` must be greater than 0
(Qwen3 Embedding 8B: integers from 32 to 4096). ``encoding_format`` is "float" or "base64".
``input_type`` for Qwen3 Embedding 8B is "query" or "document". ``normalize`` and ``truncate``
are booleans. Error codes: ``invalid_input``, ``invalid_dimensions``,
``invalid_encoding_format`` (and ``invalid_input_type`` / ``invalid_request`` for what the page
names without a code).
"""

from __future__ import annotations

from typing import Any

__all__ = ["QWEN3_INPUT_TYPES", "RequestRefused", "read_input", "read_options"]

#: Items one request may hold.
MAX_ITEMS = 2048
#: Qwen3 Embedding 8B's supported ``dimensions``.
MIN_DIMENSIONS, MAX_DIMENSIONS = 32, 4096
QWEN3_INPUT_TYPES = ("query", "document")
ENCODING_FORMATS = ("float", "base64")


class RequestRefused(Exception):
    """A 400 the service would answer: its message and error code."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_input(value: object) -> tuple[str, list[Any]]:
    """``("text" | "tokens", items)``, or ``RequestRefused`` with code ``invalid_input``."""
    if value is None:
        raise RequestRefused("input is required", "invalid_input")
    if isinstance(value, str):
        if value == "":
            raise RequestRefused("input strings must not be empty", "invalid_input")
        return "text", [value]
    if not isinstance(value, list):
        raise RequestRefused(
            "input must be a string, an array of strings, a token array or an array of token "
            "arrays",
            "invalid_input",
        )
    if not value:
        raise RequestRefused("input must not be empty", "invalid_input")
    if all(_is_integer(v) for v in value):
        return "tokens", [value]
    if len(value) > MAX_ITEMS:
        raise RequestRefused(
            f"input arrays must contain 1-{MAX_ITEMS} items, got {len(value)}", "invalid_input"
        )
    if all(isinstance(v, str) for v in value):
        empty = [i for i, v in enumerate(value) if v == ""]
        if empty:
            raise RequestRefused(
                f"input strings must not be empty (items {empty[:20]})", "invalid_input"
            )
        return "text", list(value)
    if all(isinstance(v, list) for v in value):
        for i, tokens in enumerate(value):
            if not tokens:
                raise RequestRefused(f"token input {i} must not be empty", "invalid_input")
            if not all(_is_integer(t) and t >= 0 for t in tokens):
                raise RequestRefused(f"token input {i} must hold integers", "invalid_input")
        return "tokens", list(value)
    raise RequestRefused(
        "input arrays must hold only strings or only token arrays", "invalid_input"
    )


def read_options(body: dict[str, Any]) -> None:
    """Refuse the optional parameters the reference page says the service refuses."""
    dimensions = body.get("dimensions")
    if dimensions is not None and not (
        _is_integer(dimensions) and MIN_DIMENSIONS <= dimensions <= MAX_DIMENSIONS
    ):
        raise RequestRefused(
            f"dimensions must be an integer from {MIN_DIMENSIONS} to {MAX_DIMENSIONS} for "
            f"this model, got {dimensions!r}",
            "invalid_dimensions",
        )
    encoding_format = body.get("encoding_format")
    if encoding_format is not None and encoding_format not in ENCODING_FORMATS:
        raise RequestRefused(
            f'encoding_format must be "float" or "base64", got {encoding_format!r}',
            "invalid_encoding_format",
        )
    input_type = body.get("input_type")
    if input_type is not None and input_type not in QWEN3_INPUT_TYPES:
        raise RequestRefused(
            f"input_type {input_type!r} is not supported by this model: use "
            f"{' or '.join(repr(t) for t in QWEN3_INPUT_TYPES)}",
            "invalid_input_type",
        )
    for name in ("normalize", "truncate"):
        flag = body.get(name)
        if flag is not None and not isinstance(flag, bool):
            raise RequestRefused(f"{name} must be a boolean, got {flag!r}", "invalid_request")
