"""Batch planning: one call validated and cut into the requests it will send.

A list input is planned at once (``Plan`` with every ``Batch``, sized evenly); a stream is cut
as it is read (``Chunker``). Either way, an item keeps its index in the caller's input, so every
error and every vector is placed by it.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._exceptions import InvalidInputError
from ._placement import VectorWidth
from ._telemetry import NO_TELEMETRY, CallTelemetry
from ._tokens import TokenEstimator
from ._validation import Item, normalize_input

__all__ = [
    "FLUSH",
    "TICK",
    "Batch",
    "Chunker",
    "Plan",
    "aiter_batches",
    "astream_batches",
    "plan_batches",
    "plan_token_batches",
    "stream_batches",
]


@dataclass(frozen=True)
class Batch:
    """Items of one request, where the first of them stands in the caller's input, and the
    tokens they are estimated to hold (what the server's time grows with)."""

    start: int
    items: list[Item]
    tokens: int = 0

    @functools.cached_property
    def size(self) -> int:
        """What a body-size limit sees: UTF-8 bytes of the texts (tokens of token arrays);
        unlike the token estimate, it does not move as the estimator learns."""
        return sum(TokenEstimator.size(item) for item in self.items)

    @property
    def stop(self) -> int:
        return self.start + len(self.items)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """One call, validated and split: the body every request shares, and the batches."""

    body: dict[str, Any]
    #: The call's batches (empty for a stream, whose batches are made as it is read).
    batches: list[Batch]
    #: The input was one item, not a list: its request sends it alone, not in a list.
    single: bool
    dimensions: int | None
    model: str
    #: How many distinct items the call embeds; None for a stream (not known in advance).
    total: int | None
    #: Vectors are kept as their float32 bytes (for the numpy path), never as floats.
    raw: bool = False
    #: The whole call's deadline: seconds, and when they run out on the client's clock.
    deadline: float | None = None
    deadline_at: float | None = None
    #: Each request sends its distinct items once: a stream's, when the client's ``dedupe`` is
    #: on (a list's plan is made of distinct items already, so it has this off).
    dedupe: bool = True
    #: Where this call's usage and requests are reported (``track_usage`` blocks in force).
    trackers: tuple[Any, ...] = ()
    #: A call whose input repeats items: its batches hold each distinct item once, and
    #: ``fan[i]`` is the distinct item that input ``i`` is (None: no repeats, or a stream).
    fan: list[int] | None = None
    #: For each distinct item, how many inputs it stands for (with ``fan``).
    copies: list[int] | None = None
    #: The one width of every vector of the call (``dimensions``, else the first answer's).
    width: VectorWidth = field(default_factory=VectorWidth)
    #: The call's span and metrics (``_telemetry``; a no-op without OpenTelemetry).
    telemetry: CallTelemetry = NO_TELEMETRY

    def inputs_in(self, batch: Batch) -> int:
        """How many of the call's inputs ``batch`` answers (its items, counted with copies)."""
        if self.copies is None:
            return len(batch.items)
        return sum(self.copies[batch.start : batch.start + len(batch.items)])

    @property
    def shown_options(self) -> str:
        """What shapes the vectors, for the DEBUG line of each request (never the texts)."""
        return "".join(
            f", {name}={self.body[name]}"
            for name in ("input_type", "dimensions")
            if name in self.body
        )


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


def plan_token_batches(
    tokens: Sequence[int], batch_size: int, budget: int
) -> list[tuple[int, int]]:
    """Split items of the given estimated ``tokens`` into the fewest batches of at most
    ``batch_size`` items and ``budget`` tokens, as even in tokens as they can be (even sizes
    keep concurrent requests finishing together, so the last one is not a straggler).

    An item larger than the budget goes alone. Returns ``(start, stop)`` slices in order.
    """
    count = len(tokens)
    if count == 0:
        return []
    # A lower bound on the batches; a greedy pass aiming at even shares shows whether it is
    # enough (items are whole, so it may take one or two more).
    least = max(-(-count // batch_size), -(-sum(min(t, budget) for t in tokens) // budget))
    for batches in range(least, least + 4):
        slices = _even_slices(tokens, batch_size, budget, batches)
        if len(slices) <= batches:
            return slices
    return slices


def _even_slices(
    tokens: Sequence[int], batch_size: int, budget: int, batches: int
) -> list[tuple[int, int]]:
    remaining = sum(tokens)
    target = remaining / batches
    slices: list[tuple[int, int]] = []
    start = held = 0
    for i, size in enumerate(tokens):
        if i > start and (
            i - start >= batch_size or held + size > budget or held + size / 2 > target
        ):
            slices.append((start, i))
            remaining -= held
            batches = max(1, batches - 1)
            target = remaining / batches
            start, held = i, 0
        held += size
    slices.append((start, len(tokens)))
    return slices


class _Flush(str):
    """``FLUSH``'s type: a marker in a stream of texts, not a text (a ``str`` only so a
    stream of texts stays typed as one; it is recognised by identity, never sent)."""

    def __repr__(self) -> str:
        return "FLUSH"


#: In a stream given to ``iter_embed``: send the texts read so far as a batch now, without
#: waiting for a full one, and hand over the oldest answer before reading on. Private to this
#: package: ``mixlayer-embed --update`` yields it when many rows that need no request sit
#: behind a few that do, so memory stays bounded whatever the share of rows that changed.
FLUSH: str = _Flush()


#: Yielded by a stream of batches after a ``FLUSH``: not a batch to send; the pipeline
#: (``_pipeline``) waits for the oldest batch in flight and hands its answer over before more
#: of the input is read, so what the reader holds while waiting stays bounded.
TICK = Batch(-1, [], 0)


class Chunker:
    """Cuts a stream of texts into validated batches of at most ``batch_size`` items and
    ``budget`` estimated tokens (``estimate`` per item), numbering them; ``prepare`` (input
    index, item) gives each validated item as it is sent (an instructed query)."""

    def __init__(
        self,
        batch_size: int,
        budget: int | None = None,
        estimate: Callable[[Any], int] | None = None,
        prepare: Callable[[int, Any], Any] | None = None,
    ) -> None:
        self._batch_size = batch_size
        self._budget = budget
        self._estimate = estimate
        self._prepare = prepare
        self._chunk: list[Any] = []
        self._tokens = 0
        self._start = 0

    def push(self, text: Any) -> Batch | None:
        """Take one item; return the batch it closes, if any (the item starts the next one
        when it would not fit)."""
        size = 0
        if self._estimate is not None:
            try:
                size = self._estimate(text)
            except (TypeError, AttributeError):
                size = 1  # a bad item: refused, with its index, when its batch is validated
        ready = None
        if self._chunk and self._budget is not None and self._tokens + size > self._budget:
            ready = self.flush()
        self._chunk.append(text)
        self._tokens += size
        if len(self._chunk) == self._batch_size:
            return ready or self.flush()
        return ready

    def take(self, text: Any) -> list[Batch]:
        """What one item of a stream makes ready: the batch it closes, if any; for ``FLUSH``,
        the batch read so far and a ``TICK``."""
        if text is FLUSH:
            batch = self.flush()
            return [TICK] if batch is None else [batch, TICK]
        batch = self.push(text)
        return [] if batch is None else [batch]

    def flush(self) -> Batch | None:
        """The batch read so far (validated; bad items named by input index), or None."""
        if not self._chunk:
            return None
        try:
            normalized = normalize_input(self._chunk)
        except InvalidInputError as exc:
            raise exc.shifted(self._start) from None
        items = normalized.items
        if self._prepare is not None:
            items = [self._prepare(self._start + i, item) for i, item in enumerate(items)]
        batch = Batch(self._start, items, self._tokens)
        self._start += len(self._chunk)
        self._chunk = []
        self._tokens = 0
        return batch


def stream_batches(
    texts: Iterable[Any],
    batch_size: int,
    budget: int | None = None,
    estimate: Callable[[Any], int] | None = None,
    prepare: Callable[[int, Any], Any] | None = None,
) -> Iterator[Batch]:
    """A stream of texts as batches, read one batch ahead of what is sent."""
    chunker = Chunker(batch_size, budget, estimate, prepare)
    for text in texts:
        yield from chunker.take(text)
    last = chunker.flush()
    if last is not None:
        yield last


async def astream_batches(
    texts: Iterable[Any] | AsyncIterable[Any],
    batch_size: int,
    budget: int | None = None,
    estimate: Callable[[Any], int] | None = None,
    prepare: Callable[[int, Any], Any] | None = None,
) -> AsyncIterator[Batch]:
    """``stream_batches`` for the async client: ``texts`` may also be an async iterable."""
    if not isinstance(texts, AsyncIterable):
        for ready in stream_batches(texts, batch_size, budget, estimate, prepare):
            yield ready
        return
    chunker = Chunker(batch_size, budget, estimate, prepare)
    async for text in texts:
        for ready in chunker.take(text):
            yield ready
    last = chunker.flush()
    if last is not None:
        yield last


async def aiter_batches(batches: Sequence[Batch]) -> AsyncIterator[Batch]:
    """A planned call's batches as an async iterator (what the task pipeline reads)."""
    for batch in batches:
        yield batch
