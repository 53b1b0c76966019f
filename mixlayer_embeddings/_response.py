"""One parser for both clients: decode a response body and check that it can be trusted."""

from __future__ import annotations

import base64
import binascii
import json
import math
import sys
from array import array
from dataclasses import dataclass
from typing import Any

import httpx

from ._exceptions import ResponseValidationError
from ._models import Usage

__all__ = ["ParsedBatch", "decode_base64_vector", "parse_embedding_response"]

_BIG_ENDIAN_HOST = sys.byteorder == "big"


@dataclass(frozen=True)
class ParsedBatch:
    """The vectors of one request, already in the order of that request's items.

    With ``raw=True`` parsing, each vector is its little-endian float32 bytes (no Python float
    is made); the numpy path checks their finiteness once they are in the array.
    """

    embeddings: list[list[float]] | list[bytes]
    model: str
    usage: Usage
    #: Requests that made it (more than one when a request was split to fit the server).
    requests: int = 1

    def __len__(self) -> int:
        return len(self.embeddings)

    @property
    def width(self) -> int | None:
        """The vectors' length (one response holds one length), or None with no vector."""
        if not self.embeddings:
            return None
        first = self.embeddings[0]
        return len(first) // 4 if isinstance(first, bytes) else len(first)

    def joined(self, after: ParsedBatch) -> ParsedBatch:
        """This batch's vectors followed by ``after``'s (the halves of a split request: two
        responses, so their widths must agree)."""
        if self.width is not None and after.width is not None and self.width != after.width:
            raise ResponseValidationError(
                f"vectors of length {after.width} after vectors of length {self.width} in the "
                "halves of one split request"
            )
        return ParsedBatch(
            self.embeddings + after.embeddings,  # type: ignore[operator]
            after.model or self.model,
            self.usage + after.usage,
            self.requests + after.requests,
        )


def _strict_b64decode(encoded: str) -> bytes:
    # binascii directly: base64.b64decode(validate=True) adds a regex pass over every vector.
    if sys.version_info >= (3, 11):
        return binascii.a2b_base64(encoded, strict_mode=True)
    return base64.b64decode(encoded, validate=True)  # pragma: no cover - Python 3.10


def decode_base64_vector(encoded: str) -> list[float]:
    """Decode the service's base64 form: little-endian float32, whatever this host's order."""
    raw = _strict_b64decode(encoded)
    if len(raw) % 4:
        raise ValueError(f"{len(raw)} bytes is not a whole number of float32 values")
    values = array("f")
    values.frombytes(raw)
    if _BIG_ENDIAN_HOST:
        values.byteswap()
    return values.tolist()


def _fail(message: str, response: httpx.Response, body: object = None) -> ResponseValidationError:
    return ResponseValidationError(
        f"Untrusted response from {response.request.method} {response.request.url}: {message}",
        request=response.request,
        body=body,
    )


def _raw_vector(raw: object, index: int, response: httpx.Response) -> bytes:
    """The vector as little-endian float32 bytes, decoded straight from base64."""
    if isinstance(raw, str):
        try:
            data = _strict_b64decode(raw)
        except (binascii.Error, ValueError) as exc:
            raise _fail(f"data item with index {index} has bad base64: {exc}", response) from exc
        if len(data) % 4:
            raise _fail(
                f"data item with index {index} has bad base64: {len(data)} bytes is not a whole "
                "number of float32 values",
                response,
            )
        return data
    # The service ignored base64 and sent floats: pack them (this makes floats, unavoidably).
    values = array("f", _vector(raw, index, response))
    if _BIG_ENDIAN_HOST:  # pragma: no cover - little-endian hosts
        values.byteswap()
    return values.tobytes()


def _vector(raw: object, index: int, response: httpx.Response) -> list[float]:
    if isinstance(raw, str):
        try:
            vector = decode_base64_vector(raw)
        except (binascii.Error, ValueError) as exc:
            raise _fail(f"data item with index {index} has bad base64: {exc}", response) from exc
    elif isinstance(raw, list):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
            raise _fail(f"data item with index {index} has non-numeric values", response)
        try:
            vector = [float(v) for v in raw]
        except OverflowError:  # an integer too large for any float (1e400 written out)
            raise _fail(f"data item with index {index} holds infinite values", response) from None
    else:
        raise _fail(
            f"data item with index {index} has an embedding of type {type(raw).__name__}", response
        )
    # One C-speed pass: a sum is finite exactly when every term is (float32-sized values
    # cannot overflow a float64 sum), and NaN or inf anywhere makes it NaN or inf.
    if not math.isfinite(sum(vector)):
        raise _fail(f"data item with index {index} holds NaN or infinite values", response)
    return vector


def parse_embedding_response(
    response: httpx.Response,
    *,
    expected_count: int,
    dimensions: int | None,
    raw: bool = False,
    content: bytes | None = None,
) -> ParsedBatch:
    """Place every vector by its ``index`` field, never by position, and refuse anything odd.

    Missing, duplicated or out-of-range indexes, a wrong ``data`` count, vectors of different
    lengths (or not ``dimensions`` long, when it was asked for) raise ResponseValidationError.
    """
    try:
        body: Any = json.loads(content if content is not None else response.content)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the parser goes (a hostile body).
        snippet = (
            (content if content is not None else response.content)[:120]
            .decode("utf-8", "replace")
            .strip()
        )
        raise _fail(f"body is not JSON (starts {snippet!r})", response) from exc
    if not isinstance(body, dict):
        raise _fail(f"body is a JSON {type(body).__name__}, not an object", response, body)
    if "error" in body and "data" not in body:
        raise _fail(
            f"status {response.status_code} with an error envelope: {body['error']!r}",
            response,
            body,
        )
    data = body.get("data")
    if not isinstance(data, list):
        raise _fail("no 'data' list", response, body)
    if len(data) != expected_count:
        raise _fail(f"{len(data)} embeddings for {expected_count} inputs", response, body)

    decode = _raw_vector if raw else _vector
    slots: list[list[float] | bytes | None] = [None] * expected_count
    for position, item in enumerate(data):
        index = item.get("index") if isinstance(item, dict) else None
        if not isinstance(index, int) or isinstance(index, bool):
            raise _fail(f"data[{position}] has no integer 'index'", response, body)
        if not 0 <= index < expected_count:
            raise _fail(
                f"index {index} is out of range for {expected_count} inputs", response, body
            )
        if slots[index] is not None:
            raise _fail(f"index {index} appears more than once", response, body)
        slots[index] = decode(item.get("embedding"), index, response)

    vectors: list[list[float]] | list[bytes] = slots  # type: ignore[assignment]  # all filled
    width = 4 if raw else 1
    lengths = {len(v) // width for v in vectors}
    if dimensions is not None and lengths != {dimensions}:
        raise _fail(
            f"vectors of length {sorted(lengths)} where dimensions={dimensions} was asked",
            response,
            body,
        )
    if len(lengths) > 1:
        raise _fail(f"vectors of different lengths {sorted(lengths)}", response, body)
    if 0 in lengths:
        raise _fail("empty vectors", response, body)

    usage_raw = body.get("usage")
    usage = Usage()
    if isinstance(usage_raw, dict):
        prompt = usage_raw.get("prompt_tokens")
        total = usage_raw.get("total_tokens", prompt)
        usage = Usage(_count(prompt), _count(total))
    model = body.get("model")
    return ParsedBatch(vectors, model if isinstance(model, str) else "", usage)


def _count(value: object) -> int:
    """A token count as reported, or 0 when it is not one (a bool, a negative, a float): usage
    feeds the token estimator and the users' cost figures, so nonsense must not enter either."""
    return value if type(value) is int and value >= 0 else 0
