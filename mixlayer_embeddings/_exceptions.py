"""Every error this package raises, in one tree.

::

    MixlayerError
    ├── ConfigurationError (also ValueError)       missing key/model, bad client settings
    │   └── InsecureTransportError                  a key over plain http:// to a remote host
    ├── InvalidRequestError (also ValueError)       refused before anything is sent
    │   ├── InvalidInputError                       bad ``input`` items (names their indexes)
    │   └── InvalidParameterError                   bad ``dimensions``, ``encoding_format``, ...
    └── APIError                                    something went wrong talking to the service
        ├── APIStatusError                          the service answered with an error status
        │   ├── BadRequestError              400
        │   ├── AuthenticationError          401
        │   ├── PermissionDeniedError        403
        │   ├── NotFoundError                404
        │   ├── RateLimitError               429
        │   └── InternalServerError          5xx
        ├── APIConnectionError                      no answer: DNS, refused, reset, protocol
        │   └── APITimeoutError                     no answer in time
        └── ResponseValidationError                 an answer we cannot trust (shape, indexes)

``make_status_error`` is the one place a status code becomes a class, and
``translate_transport_error`` the one place an httpx exception becomes ours.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

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
    "MixlayerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseValidationError",
]

# How many offending indexes an error message spells out; the attribute keeps them all.
_MAX_INDEXES_IN_MESSAGE = 20


def _name_indexes(indexes: Sequence[int]) -> str:
    """``3, 41, 42``, or the first twenty and ``and N more``."""
    listed = ", ".join(str(i) for i in list(indexes)[:_MAX_INDEXES_IN_MESSAGE])
    more = len(indexes) - _MAX_INDEXES_IN_MESSAGE
    return f"{listed} and {more} more" if more > 0 else listed


class MixlayerError(Exception):
    """Base class of every error raised by mixlayer-embeddings.

    ``partial``: when a call of several batches fails for good, a ``PartialResult`` holding
    the vectors that did succeed (by input index) and the ranges that failed; else None.
    """

    partial: Any = None


class ConfigurationError(MixlayerError, ValueError):
    """The client cannot be configured: a missing key or model, or a bad setting."""


class InsecureTransportError(ConfigurationError):
    """Refused to send the API key over plain ``http://`` to a host that is not loopback."""


class InvalidRequestError(MixlayerError, ValueError):
    """A request the service would refuse, caught before it was sent.

    ``param`` names the offending parameter.
    """

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.param = param


class InvalidInputError(InvalidRequestError):
    """One or more ``input`` items are invalid; ``indexes`` lists every offending item."""

    def __init__(self, message: str, *, indexes: Sequence[int] = ()) -> None:
        #: What is wrong with the items, without where they are.
        self.reason = message
        self.indexes: list[int] = list(indexes)
        if self.indexes:
            noun = "index" if len(self.indexes) == 1 else "indexes"
            message = f"{message} (input {noun} {_name_indexes(self.indexes)})"
        super().__init__(message, param="input")

    def shifted(self, offset: int) -> InvalidInputError:
        """The same error for items that stand ``offset`` further on in the caller's input."""
        return type(self)(self.reason, indexes=[offset + i for i in self.indexes])


class InvalidParameterError(InvalidRequestError):
    """A parameter other than ``input`` is invalid."""


class APIError(MixlayerError):
    """An error while talking to the service. ``request`` is the request that failed."""

    def __init__(
        self, message: str, *, request: httpx.Request | None = None, body: object | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request = request
        self.body = body


class APIConnectionError(APIError):
    """The service could not be reached, or the connection broke before an answer.

    ``attempts`` and ``elapsed`` say how many requests were tried over how many seconds.
    """

    attempts: int = 1
    elapsed: float = 0.0

    def after_attempts(self, attempts: int, elapsed: float) -> APIConnectionError:
        """The same error, its message saying how many attempts were made over how long."""
        noun = "attempt" if attempts == 1 else "attempts"
        error = type(self)(
            f"{self.message}; {attempts} {noun} over {elapsed:.1f} s", request=self.request
        )
        error.attempts, error.elapsed = attempts, elapsed
        return error


class APITimeoutError(APIConnectionError):
    """The service did not answer within the configured timeout."""


class ResponseValidationError(APIError):
    """The service answered, but the answer cannot be trusted (shape, indexes, lengths)."""


class APIStatusError(APIError):
    """The service answered with an error status.

    ``code`` and ``type`` come from the OpenAI error envelope
    (``{"error": {"message", "type", "code"}}``) when the body has one.
    """

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        body: object | None,
        code: str | None,
        type: str | None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message, request=response.request, body=body)
        #: The service's own words (the envelope's message), without our status label.
        self.detail = detail if detail is not None else message
        self.response = response
        self.status_code = response.status_code
        self.code = code
        self.type = type
        self.request_id: str | None = response.headers.get("x-request-id")


class BadRequestError(APIStatusError):
    """400: the service refused the request (``code`` says why, e.g. ``invalid_input``)."""


class InputRejectedError(BadRequestError):
    """The service refused some items (``invalid_input``); ``indexes`` names them.

    A refused batch is bisected to find them, so every other item of that batch was accepted:
    retrying without these (or with ``truncate=True``, when they are too long) succeeds.
    """

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        body: object | None,
        code: str | None,
        type: str | None,
        detail: str | None = None,
        indexes: Sequence[int] = (),
    ) -> None:
        super().__init__(message, response=response, body=body, code=code, type=type, detail=detail)
        self.indexes: list[int] = list(indexes)
        #: (input index of the first item, vectors) of the parts of the batch that were accepted.
        self.accepted: list[Any] = []

    @classmethod
    def combine(cls, errors: Sequence[InputRejectedError], total: int) -> InputRejectedError:
        """One error for a call whose batches refused items: every refused item, named once."""
        indexes = sorted(i for e in errors for i in e.indexes)
        noun = "item" if len(indexes) == 1 else "items"
        first = errors[0]
        batches = "1 batch" if len(errors) == 1 else f"{len(errors)} batches"
        return cls(
            f"The service refused input {noun} {_name_indexes(indexes)} "
            f"({first.code}: {first.detail}) in {batches}; the other {total - len(indexes)} "
            "items were embedded (see .partial). "
            "Retry without them, or with truncate=True if they are too long.",
            response=first.response,
            body=first.body,
            code=first.code,
            type=first.type,
            detail=first.detail,
            indexes=indexes,
        )

    @classmethod
    def from_refusal(
        cls, refused: APIStatusError, indexes: Sequence[int], *, batch_size: int | None = None
    ) -> InputRejectedError:
        """The service's refusal of a batch, attributed to the items it refused."""
        noun = "item" if len(indexes) == 1 else "items"
        scope = (
            f"; the other {batch_size - len(indexes)} items of that batch were accepted"
            if batch_size is not None and batch_size > len(indexes)
            else ""
        )
        return cls(
            f"The service refused input {noun} {_name_indexes(indexes)} ({refused.code}: "
            f"{refused.detail}){scope}."
            " Retry without them, or with truncate=True if they are too long.",
            response=refused.response,
            body=refused.body,
            code=refused.code,
            type=refused.type,
            detail=refused.detail,
            indexes=indexes,
        )


class AuthenticationError(APIStatusError):
    """401: the API key is missing or wrong."""


class PermissionDeniedError(APIStatusError):
    """403: the key is not allowed to use this model or endpoint."""


class NotFoundError(APIStatusError):
    """404: unknown model or endpoint."""


class RateLimitError(APIStatusError):
    """429: too many requests; retried automatically up to ``max_retries``."""


class InternalServerError(APIStatusError):
    """5xx: the service failed; retried automatically up to ``max_retries``."""


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def _decode_body(response: httpx.Response) -> object | None:
    try:
        body: object = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        # RecursionError: nested deeper than the parser goes; the text still says something.
        return response.text or None
    return body


def make_status_error(response: httpx.Response) -> APIStatusError:
    """Map an error response to its exception class, with the envelope's fields on it."""
    body = _decode_body(response)
    message: str | None = None
    code: str | None = None
    error_type: str | None = None
    envelope: Any = body.get("error") if isinstance(body, dict) else None
    if isinstance(envelope, dict):
        message = envelope.get("message") if isinstance(envelope.get("message"), str) else None
        code = str(envelope["code"]) if envelope.get("code") is not None else None
        error_type = envelope.get("type") if isinstance(envelope.get("type"), str) else None
    elif isinstance(envelope, str):
        message = envelope
    if message is None:
        # Not our envelope (a proxy's HTML page, say): say so briefly, never dump the page.
        text = body if isinstance(body, str) else ""
        message = text.strip().splitlines()[0][:200] if text.strip() else "no error message"
    status = response.status_code
    reason = response.reason_phrase or "error"
    label = f"Error code: {status} {reason}"
    if code:
        label += f" ({code})"
    if status == 404:
        request = response.request
        message += f" ({request.method} {request.url})"
        if request.url.path.rstrip("/").endswith("/embeddings/embeddings"):
            message += (
                "; the base URL ends in /embeddings, which the client adds itself: "
                "the base URL should end in /v1"
            )
        elif "/v1/" not in request.url.path:
            message += "; the URL has no /v1: the base URL should end in /v1"
    cls = _STATUS_CLASSES.get(status)
    if cls is None:
        cls = InternalServerError if status >= 500 else APIStatusError
    return cls(
        f"{label}: {message}",
        response=response,
        body=body,
        code=code,
        type=error_type,
        detail=message,
    )


def translate_transport_error(exc: httpx.RequestError) -> APIConnectionError:
    """The one place an httpx transport exception becomes ours (raise it ``from exc``)."""
    request: httpx.Request | None
    try:
        request = exc.request
    except RuntimeError:  # httpx raises when an exception was built without a request
        request = None
    where = f" ({request.method} {request.url})" if request is not None else ""
    timeouts: dict[str, Any] = (
        request.extensions.get("timeout", {}) if request is not None else {}
    ) or {}
    deadline = getattr(exc, "deadline", None)  # set by the body reader
    if deadline is not None:
        return APITimeoutError(
            f"Request timed out{where}: the answer was still arriving after {deadline}",
            request=request,
        )
    if isinstance(exc, httpx.TimeoutException):
        phase = _TIMEOUT_PHASES.get(type(exc), "")
        limit = timeouts.get(phase)
        which = f"the {phase} timeout of {limit:g} s" if limit is not None else "the timeout"
        return APITimeoutError(
            f"Request timed out{where}: {type(exc).__name__}, no answer within {which}",
            request=request,
        )
    detail = str(exc) or type(exc).__name__
    connect = timeouts.get("connect")
    limit = f" (connect timeout {connect:g} s)" if connect is not None else ""
    return APIConnectionError(f"Connection error{where}: {detail}{limit}", request=request)


_TIMEOUT_PHASES: dict[type[httpx.TimeoutException], str] = {
    httpx.ConnectTimeout: "connect",
    httpx.ReadTimeout: "read",
    httpx.WriteTimeout: "write",
    httpx.PoolTimeout: "pool",
}
