"""What a proxy in front of the service refuses before the service sees a request: a body
over its size limit (nginx's ``client_max_body_size``), refused on its Content-Length without
reading it, or, without one (chunked), as soon as it passes the limit."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["BODY_TOO_LARGE", "read_within"]


#: What nginx answers a body over its client_max_body_size (its own page, not the envelope).
BODY_TOO_LARGE = Response(
    "<html><head><title>413 Request Entity Too Large</title></head><body><center><h1>413 "
    "Request Entity Too Large</h1></center><hr><center>nginx</center></body></html>",
    status_code=413,
    media_type="text/html",
)


def _declared_length(request: Request) -> int:
    try:
        return int(request.headers.get("content-length", "0"))
    except ValueError:
        return 0


async def _read_body(request: Request, limit: int | None) -> bytes | None:
    """The body, or None as soon as it passes ``limit`` bytes (the rest is never read)."""
    if limit is None:
        return await request.body()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def read_within(request: Request, limit: int | None) -> bytes | None:
    """The body, or None when it is over ``limit`` (refused as nginx would: on its declared
    length before reading, else as soon as the bytes read pass it)."""
    if limit is not None and _declared_length(request) > limit:
        return None
    return await _read_body(request, limit)
