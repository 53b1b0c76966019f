"""Batch planning: one call validated and cut into the requests it will send.

A list input is planned at once (``Plan`` with every ``Batch``, sized evenly); a stream is cut
as it is read (``Chunker``). Either way, an item keeps its index in the caller's input, so every
error and every vector is placed by it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ._exceptions import InvalidInputError
from ._validation import Item, normalize_input

__all__ = [
    "Batch",
    "Chunker",
    "Plan",
    "aiter_batches",
    "astream_batches",
    "plan_batches",
    "stream_batches",
]


@dataclass(frozen=True)
class Batch:
    """Items of one request, and where the first of them stands in the caller's input."""

    start: int
    items: list[Item]

    @property
    def stop(self) -> int:
        return self.start + len(self.items)


@dataclass(frozen=True)
class Plan:
    """One call, validated and split: the body every request shares, and the batches."""

    body: dict[str, Any]
    batches: list[Batch]
    single: bool
    dimensions: int | None
    model: str
    total: int
    #: Vectors are kept as their float32 bytes (for the numpy path), never as floats.
    raw: bool = False


def plan_batches(count: int, batch_size: int) -> list[tuple[int, int]]:
    """Split ``count`` items into the fewest batches of at most ``batch_size``, evenly sized.

    Even sizes keep concurrent requests finishing together, so the last one is not a straggler.
    Returns ``(start, stop)`` slices in order.
    """
    if count == 0:
        return []
    n_batches = -(-count // batch_size)
    size, extra = divmod(count, n_batches)
    slices = []
    start = 0
    for i in range(n_batches):
        stop = start + size + (1 if i < extra else 0)
        slices.append((start, stop))
        start = stop
    return slices


class Chunker:
    """Cuts a stream of texts into validated batches of ``batch_size``, numbering them."""

    def __init__(self, batch_size: int) -> None:
        self._batch_size = batch_size
        self._chunk: list[Any] = []
        self._start = 0

    def push(self, text: Any) -> Batch | None:
        self._chunk.append(text)
        return self.flush() if len(self._chunk) == self._batch_size else None

    def flush(self) -> Batch | None:
        """The batch read so far (validated; bad items named by input index), or None."""
        if not self._chunk:
            return None
        try:
            normalized = normalize_input(self._chunk)
        except InvalidInputError as exc:
            raise exc.shifted(self._start) from None
        batch = Batch(self._start, normalized.items)
        self._start += len(self._chunk)
        self._chunk = []
        return batch


def stream_batches(texts: Iterable[Any], batch_size: int) -> Iterator[Batch]:
    """A stream of texts as batches, read one batch ahead of what is sent."""
    chunker = Chunker(batch_size)
    for text in texts:
        batch = chunker.push(text)
        if batch is not None:
            yield batch
    last = chunker.flush()
    if last is not None:
        yield last


async def astream_batches(
    texts: Iterable[Any] | AsyncIterable[Any], batch_size: int
) -> AsyncIterator[Batch]:
    """``stream_batches`` for the async client: ``texts`` may also be an async iterable."""
    if not isinstance(texts, AsyncIterable):
        for ready in stream_batches(texts, batch_size):
            yield ready
        return
    chunker = Chunker(batch_size)
    async for text in texts:
        batch = chunker.push(text)
        if batch is not None:
            yield batch
    last = chunker.flush()
    if last is not None:
        yield last


async def aiter_batches(batches: Sequence[Batch]) -> AsyncIterator[Batch]:
    """A planned call's batches as an async iterator (what the task pipeline reads)."""
    for batch in batches:
        yield batch
