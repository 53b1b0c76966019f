"""Reading a streamed response: a success's body into an ``Answer``, an error's in place.

The only I/O on a response besides sending it; one function for each kind of http client.
"""

from __future__ import annotations

import httpx

from ._flow import Answer

__all__ = ["aread_answer", "read_answer"]


def read_answer(response: httpx.Response) -> Answer | httpx.Response:
    try:
        if response.is_success:
            return Answer(response, b"".join(response.iter_bytes()))
        response.read()
        return response
    finally:
        response.close()


async def aread_answer(response: httpx.Response) -> Answer | httpx.Response:
    try:
        if response.is_success:
            return Answer(response, b"".join([chunk async for chunk in response.aiter_bytes()]))
        await response.aread()
        return response
    finally:
        await response.aclose()
