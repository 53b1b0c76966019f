"""Reading a streamed response: a success's body into an ``Answer``, an error's in place.

The only I/O on a response besides sending it; one function for each kind of http client.
Bodies are read with a bound, counted after decompression (a 2 MB gzip body can inflate to
gigabytes): a success's by what its request can need (``limit``), an error's to
``ERROR_BODY_LIMIT``, kept truncated (an error page says what it says in its first bytes).
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

import httpx

from ._exceptions import ResponseValidationError

__all__ = [
    "ATTEMPT_DEADLINE_READS",
    "ERROR_BODY_LIMIT",
    "Answer",
    "Deadline",
    "aread_answer",
    "body_limit",
    "read_answer",
]


@dataclass(frozen=True)
class Answer:
    """A successful response and its body, read by us: httpx keeps a response in a reference
    cycle until the garbage collector's next full pass, so a body it held would pile up at
    corpus scale (measured: +700 MB over 1M texts). Ours is freed as soon as it is parsed."""

    response: httpx.Response
    content: bytes


#: Bytes of an error body that are read (the rest is dropped, unread).
ERROR_BODY_LIMIT = 64 * 1024
_UNSET_DIMENSIONS = 4096


def body_limit(items: int, dimensions: int | None) -> int:
    """The largest success body a request of ``items`` can need: every vector as JSON floats
    (about 25 characters a value, base64 takes 5.4), with the envelope, twice over."""
    per_item = (dimensions or _UNSET_DIMENSIONS) * 25 + 200
    return 2 * items * per_item + 64 * 1024


def _too_big(response: httpx.Response, limit: int) -> ResponseValidationError:
    return ResponseValidationError(
        f"the response body is larger than {limit:,} bytes, more than the request can need; "
        "refused without reading the rest",
        request=response.request,
    )


def _truncated(response: httpx.Response, content: bytes) -> httpx.Response:
    """The error response with the part of its body that was read, decoded already."""
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        if name.lower() not in ("content-encoding", "content-length", "transfer-encoding")
    ]
    return httpx.Response(
        response.status_code, headers=headers, content=content, request=response.request
    )


class _Body:
    """A body read chunk by chunk up to a bound (``limit`` for a success, ``ERROR_BODY_LIMIT``
    for an error), inflated here (gzip, the one encoding we ask for) at most a chunk at a time,
    so a small compressed body cannot grow into a large one in memory before the bound is
    seen. Where its bytes come from is decided once: the raw stream (inflated here), httpx's
    own decoders (an encoding we did not ask for), or a body read already (an in-memory
    response: a mock transport's, a recording's)."""

    def __init__(
        self, response: httpx.Response, limit: int, deadline: Deadline | None = None
    ) -> None:
        self.response = response
        self.limit = limit if response.is_success else ERROR_BODY_LIMIT
        self.deadline = deadline
        self.parts: list[bytes] = []
        self.size = 0
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if hasattr(response, "_content"):
            self.source = "content"
        elif encoding in ("", "identity", "gzip", "x-gzip"):
            self.source = "raw"
        else:
            # We ask for gzip only. Another encoding (deflate, br, zstd, several at once) would
            # be inflated by httpx a whole chunk at once, outside our bound, and its corrupt
            # data would surface as a connection error: refused, typed, before reading it.
            raise ResponseValidationError(
                f"the response body is encoded as {encoding!r}, which this client did not ask "
                "for (it sends Accept-Encoding: gzip)",
                request=response.request,
            )
        self._inflater = (
            zlib.decompressobj(16 + zlib.MAX_WBITS)
            if self.source == "raw" and encoding in ("gzip", "x-gzip")
            else None
        )

    def chunks(self) -> Iterator[bytes]:
        if self.source == "content":
            return iter([self.response.content])
        return self.response.iter_raw()

    def achunks(self) -> AsyncIterator[bytes]:
        if self.source == "content":
            return _one(self.response.content)
        return self.response.aiter_raw()

    def feed(self, raw: bytes) -> bool:
        """Take a raw chunk; False once the limit is passed (read no more)."""
        if self.deadline is not None:
            self.deadline.check(self.response.request)
        if self._inflater is None:
            return self._keep(raw)
        try:
            data = self._inflater.decompress(raw, _INFLATE_STEP)
            while True:
                if not self._keep(data):
                    return False
                if not self._inflater.unconsumed_tail:
                    return True
                data = self._inflater.decompress(self._inflater.unconsumed_tail, _INFLATE_STEP)
        except zlib.error as exc:
            raise ResponseValidationError(
                f"the response body is not valid gzip: {exc}", request=self.response.request
            ) from None

    def _keep(self, data: bytes) -> bool:
        self.parts.append(data)
        self.size += len(data)
        return self.size <= self.limit

    def content(self) -> bytes:
        return b"".join(self.parts)[: self.limit]


class Deadline:
    """When an attempt must have its whole answer: the read timeout bounds each read, so a body
    dripping a byte a second would otherwise keep a call alive for hours."""

    def __init__(
        self,
        at: float,
        seconds: float,
        now: Callable[[], float],
        what: str = "the attempt's deadline",
    ) -> None:
        self.at = at
        self.seconds = seconds
        self._now = now
        self.what = what

    def check(self, request: httpx.Request) -> None:
        if self._now() > self.at:
            # A timeout like any other: the flow splits or retries it, and says which one.
            timeout = httpx.ReadTimeout(f"{self.what} passed", request=request)
            timeout.deadline = f"{self.what} of {self.seconds:g} s"  # type: ignore[attr-defined]
            raise timeout


#: An attempt's deadline, in read timeouts: each read may take one, the whole answer this many.
ATTEMPT_DEADLINE_READS = 4


#: Bytes inflated from a compressed body at a time.
_INFLATE_STEP = 1 << 20


def _finish(body: _Body, complete: bool) -> Answer | httpx.Response:
    if body.response.is_success:
        if not complete:
            raise _too_big(body.response, body.limit)
        return Answer(body.response, body.content())
    return _truncated(body.response, body.content())


def read_answer(
    response: httpx.Response, limit: int, deadline: Deadline | None = None
) -> Answer | httpx.Response:
    try:
        body = _Body(response, limit, deadline)
        complete = all(body.feed(chunk) for chunk in body.chunks())
        return _finish(body, complete)
    finally:
        response.close()


async def _one(content: bytes) -> AsyncIterator[bytes]:
    yield content


async def aread_answer(
    response: httpx.Response, limit: int, deadline: Deadline | None = None
) -> Answer | httpx.Response:
    try:
        body = _Body(response, limit, deadline)
        complete = True
        async for chunk in body.achunks():
            if not body.feed(chunk):
                complete = False
                break
        return _finish(body, complete)
    finally:
        await response.aclose()
