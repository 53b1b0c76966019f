"""The flow owns every attempt (``_flow``): whatever an attempt ends with, an answer, an error
status, a transport error or a body that cannot be read, goes into the flow, which redacts the
key, counts the request and decides, in one place, for both clients."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import httpx
import pytest
from conftest import KEY, MODEL

from mixlayer_embeddings import AsyncMixlayerClient, MixlayerClient, ResponseValidationError


class Streamed(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, content: bytes) -> None:
        self.content = content

    def __iter__(self):  # type: ignore[no-untyped-def]
        yield self.content

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield self.content


BODIES = {
    "corrupt gzip": ({"content-encoding": "gzip"}, b"not gzip"),
    "an encoding not asked for": ({"content-encoding": "br"}, b"x" * 100),
    "a body too large": ({}, b"[" + b"0," * 2_000_000 + b"0]"),
}


def unreadable(kind: str) -> Any:
    headers, content = BODIES[kind]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers, stream=Streamed(content))

    return handler


def sync_failure(kind: str) -> tuple[ResponseValidationError, int]:
    transport = httpx.MockTransport(unreadable(kind))
    client = MixlayerClient(api_key=KEY, model=MODEL, http_client=httpx.Client(transport=transport))
    with client, pytest.raises(ResponseValidationError) as info:
        client.embed(["a"], dimensions=32)
    return info.value, client.counters.requests


def async_failure(kind: str) -> tuple[ResponseValidationError, int]:
    async def go() -> tuple[ResponseValidationError, int]:
        transport = httpx.MockTransport(unreadable(kind))
        client = AsyncMixlayerClient(
            api_key=KEY, model=MODEL, http_client=httpx.AsyncClient(transport=transport)
        )
        async with client:
            with pytest.raises(ResponseValidationError) as info:
                await client.embed(["a"], dimensions=32)
        return info.value, client.counters.requests

    return asyncio.run(go())


@pytest.mark.parametrize("kind", list(BODIES))
@pytest.mark.parametrize("failure", [sync_failure, async_failure], ids=["sync", "async"])
def test_a_body_that_cannot_be_read_is_counted_and_carries_no_key(failure, kind) -> None:
    error, requests = failure(kind)
    assert error.request is not None
    assert KEY not in error.request.headers.get("authorization", "")
    assert KEY.encode() not in pickle.dumps(error)
    assert requests == 1  # it was sent: counted as every request is
