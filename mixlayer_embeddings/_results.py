"""What a call gives back: whole responses, streamed batches, numpy arrays, and what survives a
failure.

Every batch a call completes goes through one ``Collector`` (lists or a numpy array), shared by
the sync and async clients. When a multi-batch call fails for good, the collector turns what it
holds into a ``PartialResult`` on the raised error: the vectors that did succeed, by input index,
and the ranges that failed, so retrying only those is one call.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._batching import Batch, Plan
from ._dedupe import own_copies
from ._exceptions import APIError, InputRejectedError, ResponseValidationError
from ._models import EmbeddingResponse, Usage
from ._placement import VectorWidth
from ._response import ParsedBatch

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = [
    "ArrayCollector",
    "CallTally",
    "Collector",
    "EmbeddedBatch",
    "EmbeddingArray",
    "FailedRange",
    "ListCollector",
    "PartialResult",
    "collector_for",
    "settle",
    "spread_array",
    "spread_response",
    "streamed_batch",
]

VectorsT = TypeVar("VectorsT")


@dataclass(frozen=True)
class EmbeddedBatch(Generic[VectorsT]):
    """One batch of a streamed call: ``embeddings[i]`` belongs to input ``start + i``."""

    start: int
    embeddings: VectorsT
    usage: Usage = field(default_factory=Usage)
    #: With ``skip_rejected=True``: input index -> the service's reason, for the items it
    #: refused; their rows are None (lists) or NaN (arrays).
    rejected: Mapping[int, str] = field(default_factory=dict)

    @property
    def stop(self) -> int:
        return self.start + len(self.embeddings)  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"EmbeddedBatch(start={self.start}, stop={self.stop}, usage={self.usage!r})"


@dataclass(frozen=True)
class EmbeddingArray:
    """``vectors`` is a C-contiguous float32 array of shape (N, D); row i belongs to input i."""

    vectors: npt.NDArray[np.float32]
    model: str
    usage: Usage = field(default_factory=Usage)
    requests: int = 0

    def __repr__(self) -> str:
        return (
            f"EmbeddingArray(vectors=<{self.vectors.shape[0]} x {self.vectors.shape[1]} float32>, "
            f"model={self.model!r}, usage={self.usage!r}, requests={self.requests})"
        )


@dataclass(frozen=True)
class FailedRange:
    """Inputs ``start`` to ``stop`` (exclusive) have no vector: ``error`` says why, or is None
    when the call stopped (after another batch failed) before they were sent."""

    start: int
    stop: int
    error: APIError | None

    @property
    def indexes(self) -> range:
        return range(self.start, self.stop)


@dataclass
class PartialResult:
    """What a failed call did embed. ``embeddings[i]`` is input i's vector, or None when input
    i is in a failed range. Retry the rest in one call, then merge::

        try:
            vectors = client.embed(texts).embeddings
        except MixlayerError as exc:
            if exc.partial is None:
                raise
            todo = exc.partial.failed_indexes
            retried = client.embed([texts[i] for i in todo]).embeddings
            vectors = exc.partial.fill(retried)
    """

    total: int
    embeddings: list[Any]
    failed: list[FailedRange]
    usage: Usage = field(default_factory=Usage)
    #: The input index of ``embeddings[0]`` (0 for ``embed``; a streamed batch's first index).
    start: int = 0

    @property
    def failed_indexes(self) -> list[int]:
        return [i for r in self.failed for i in r.indexes]

    @property
    def succeeded(self) -> int:
        return self.total - len(self.failed_indexes)

    def fill(self, retried: Sequence[Any]) -> list[Any]:
        """Every vector in input order: ours, with ``retried`` (the vectors of
        ``failed_indexes``, in that order) put in the gaps."""
        todo = self.failed_indexes
        if len(retried) != len(todo):
            raise ValueError(f"{len(retried)} vectors for {len(todo)} failed inputs")
        merged = list(self.embeddings)
        for index, vector in zip(todo, retried, strict=True):
            merged[index - self.start] = vector
        return merged

    def spread(self, fan: list[int]) -> PartialResult:
        """This result of a call's distinct items, given back to every input (``fan[i]`` is
        the distinct item input ``i`` is): failed ranges become the inputs' own ranges."""
        failed_at = {i: r.error for r in self.failed for i in r.indexes}
        embeddings = own_copies([self.embeddings[slot] for slot in fan])
        failed: list[FailedRange] = []
        for position, slot in enumerate(fan):
            if slot not in failed_at:
                continue
            error = failed_at[slot]
            last = failed[-1] if failed else None
            if last is not None and last.stop == position and last.error is error:
                failed[-1] = FailedRange(last.start, position + 1, error)
            else:
                failed.append(FailedRange(position, position + 1, error))
        return PartialResult(len(fan), embeddings, failed, self.usage, self.start)

    def __repr__(self) -> str:
        return (
            f"PartialResult(succeeded={self.succeeded} of {self.total}, "
            f"failed_ranges={[(r.start, r.stop) for r in self.failed]})"
        )


class Collector:
    """Receives each completed batch (from any thread) and builds the call's result."""

    def __init__(
        self, total: int, model: str, width: VectorWidth | None = None, *, offset: int = 0
    ) -> None:
        self.total = total
        #: The input index of the first slot (a streamed batch's start).
        self.offset = offset
        self.model = model
        #: The call's one width, shared by every batch (and every batch of a stream).
        self.width = width if width is not None else VectorWidth()
        self.usage = Usage()
        self.requests = 0
        self.failed: list[FailedRange] = []
        self._lock = threading.Lock()

    def add(self, start: int, parsed: ParsedBatch) -> None:
        with self._lock:
            self.usage = self.usage + parsed.usage
            self.requests += parsed.requests
            if parsed.model:
                self.model = parsed.model
            self.width.check(parsed.width)
            self._store(start - self.offset, parsed)

    def fail(self, start: int, stop: int, error: APIError | None) -> None:
        with self._lock:
            self.failed.append(FailedRange(start, stop, error))

    def _store(self, start: int, parsed: ParsedBatch) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def partial(self) -> PartialResult:  # pragma: no cover - abstract
        raise NotImplementedError


class ListCollector(Collector):
    """Vectors as ``list[float]``, placed by input index."""

    def __init__(
        self, total: int, model: str, width: VectorWidth | None = None, *, offset: int = 0
    ) -> None:
        super().__init__(total, model, width, offset=offset)
        self._slots: list[list[float] | None] = [None] * total

    def _store(self, start: int, parsed: ParsedBatch) -> None:
        self._slots[start : start + len(parsed)] = parsed.embeddings  # type: ignore[assignment]

    def response(self) -> EmbeddingResponse:
        return EmbeddingResponse(
            self._slots,  # type: ignore[arg-type]  # complete when no batch failed
            self.model,
            self.usage,
            requests=self.requests,
        )

    def partial(self) -> PartialResult:
        failed = sorted(self.failed, key=lambda r: r.start)
        return PartialResult(self.total, self._slots, failed, self.usage, self.offset)


class ArrayCollector(Collector):
    """Vectors decoded from base64 bytes straight into one float32 array; no Python floats."""

    def __init__(
        self, total: int, model: str, width: VectorWidth | None = None, *, offset: int = 0
    ) -> None:
        super().__init__(total, model, width, offset=offset)
        from ._numpy import numpy

        self._np = numpy()
        self._array: npt.NDArray[np.float32] | None = None
        if self.width.known is not None:
            self._array = self._np.empty((total, self.width.known), dtype=self._np.float32)

    def _store(self, start: int, parsed: ParsedBatch) -> None:
        raws: list[bytes] = parsed.embeddings  # type: ignore[assignment]
        if not raws:
            return
        width = len(raws[0]) // 4  # the same as self.width's: add() checked it
        if self._array is None:
            self._array = self._np.empty((self.total, width), dtype=self._np.float32)
        block = self._np.frombuffer(b"".join(raws), dtype="<f4").reshape(len(raws), width)
        if not self._np.isfinite(block).all():
            raise ResponseValidationError("the response holds NaN or infinite values")
        self._array[start : start + len(raws)] = block

    def array(self, *, gaps: bool = False) -> EmbeddingArray:
        """The array; ``gaps``: rows of failed inputs are NaN (else they are undefined)."""
        vectors = self._array
        if vectors is None:
            # Nothing answered (every item refused): still one row per input, as wide as the
            # call's vectors when that is known, so rows keep their inputs' places.
            width = self.width.known or 0
            vectors = self._np.full((self.total, width), self._np.nan, dtype=self._np.float32)
        elif gaps:
            for failed in self.failed:
                vectors[failed.start - self.offset : failed.stop - self.offset] = self._np.nan
        return EmbeddingArray(vectors, self.model, self.usage, self.requests)

    def partial(self) -> PartialResult:
        vectors = self._array
        failed = {i - self.offset for r in self.failed for i in r.indexes}
        rows = [None if vectors is None or i in failed else vectors[i] for i in range(self.total)]
        ranges = sorted(self.failed, key=lambda r: r.start)
        return PartialResult(self.total, rows, ranges, self.usage, self.offset)


# -- a call's bookkeeping, shared by the sync and async runners --------------------------------


def collector_for(
    plan: Plan, total: int | None = None, *, offset: int = 0
) -> ListCollector | ArrayCollector:
    """Where the vectors of ``total`` items go (a call's: its plan's count; a stream's batch:
    the batch's items, from ``offset``)."""
    make = ArrayCollector if plan.raw else ListCollector
    count = plan.total if total is None else total
    if count is None:
        raise TypeError("a stream's plan has no total: pass the batch's")
    return make(count, plan.model, plan.width, offset=offset)


def settle(
    collector: Collector, batch: Batch, outcome: ParsedBatch | BaseException
) -> BaseException | None:
    """Record one batch's outcome; return its error, if it failed. Vectors of another width
    than the call's (``VectorWidth``) fail the whole batch, placed nowhere."""
    try:
        if isinstance(outcome, ParsedBatch):
            collector.add(batch.start, outcome)
            return None
        if isinstance(outcome, InputRejectedError):
            # The bisection's accepted halves are kept: only the refused items fail.
            for start, parsed in outcome.accepted:
                collector.add(start, parsed)
    except ResponseValidationError as exc:
        collector.fail(batch.start, batch.stop, exc)
        return exc
    if isinstance(outcome, InputRejectedError):
        for index in outcome.indexes:
            collector.fail(index, index + 1, outcome)
    elif isinstance(outcome, APIError):
        collector.fail(batch.start, batch.stop, outcome)
    return outcome


class CallTally:
    """One ``embed`` call's bookkeeping: each batch's outcome goes into the collector; refused
    items let the other batches go on, any other failure stops the call; at the end, what
    failed is raised carrying what succeeded."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.collector = collector_for(plan)
        self._settled: set[int] = set()
        self._rejected: list[InputRejectedError] = []
        self._fatal: BaseException | None = None

    def record(self, batch: Batch, outcome: ParsedBatch | BaseException) -> bool:
        """Take one batch's outcome; True when the call must stop."""
        self._settled.add(batch.start)
        error = settle(self.collector, batch, outcome)
        if isinstance(error, InputRejectedError):
            self._rejected.append(error)
        elif error is not None:
            self._fatal = error
            return True
        return False

    def finish(self) -> ListCollector | ArrayCollector:
        """The collector when every batch succeeded; else raise, with ``partial`` attached."""
        fatal, rejected, plan, collector = self._fatal, self._rejected, self.plan, self.collector
        if fatal is None and not rejected:
            return collector
        if fatal is not None and not isinstance(fatal, APIError):
            raise fatal  # an interrupt, or a bug: nothing to attach
        for batch in plan.batches:
            if batch.start not in self._settled:
                collector.fail(batch.start, batch.stop, None)
        error: APIError
        fan = plan.fan
        # Named by the inputs the user passed (with ``fan``: every copy of a refused item).
        named = rejected if fan is None else [_spread(e, fan) for e in rejected]
        if fatal is not None:
            error = fatal
        elif len(rejected) == 1 and len(plan.batches) == 1:
            # Its own wording is exact: the batch is the whole call.
            error = (
                named[0]
                if fan is None
                else InputRejectedError.from_refusal(
                    named[0], named[0].indexes, batch_size=len(fan)
                )
            )
        else:
            error = InputRejectedError.combine(named, len(fan) if fan else self.collector.total)
        if len(plan.batches) > 1 or rejected:
            partial = collector.partial()
            error.partial = partial if fan is None else partial.spread(fan)
        raise error


def _spread(error: InputRejectedError, fan: list[int]) -> InputRejectedError:
    """A copy of ``error`` naming every input that is one of its refused distinct items."""
    refused = set(error.indexes)
    return InputRejectedError(
        str(error),  # not shown: combine() words the call's error from the indexes
        response=error.response,
        body=error.body,
        code=error.code,
        type=error.type,
        detail=error.detail,
        indexes=[i for i, slot in enumerate(fan) if slot in refused],
    )


def spread_response(response: EmbeddingResponse, fan: list[int] | None) -> EmbeddingResponse:
    """The response of a call's distinct items, one vector per input again."""
    if fan is None:
        return response
    vectors = response.embeddings
    return replace(response, embeddings=own_copies([vectors[slot] for slot in fan]))


def spread_array(array: EmbeddingArray, fan: list[int] | None) -> EmbeddingArray:
    """The array of a call's distinct items, one row per input again (a new array)."""
    if fan is None:
        return array
    import numpy as np

    return replace(array, vectors=np.ascontiguousarray(array.vectors[fan]))


def streamed_batch(
    plan: Plan, batch: Batch, outcome: ParsedBatch | BaseException, skip_rejected: bool = False
) -> EmbeddedBatch[Any]:
    """A streamed batch's result, or its error raised with what the batch did embed."""
    collector = collector_for(plan, len(batch.items), offset=batch.start)
    error = settle(collector, batch, outcome)
    rejected: dict[int, str] = {}
    if skip_rejected and isinstance(error, InputRejectedError):
        rejected = {i: f"{error.code}: {error.detail}" for i in error.indexes}
        error = None
    if error is None:
        if isinstance(collector, ArrayCollector):
            vectors: Any = collector.array(gaps=bool(rejected)).vectors
        else:
            vectors = collector.response().embeddings
        return EmbeddedBatch(batch.start, vectors, collector.usage, rejected)
    if isinstance(error, APIError):
        error.partial = collector.partial()
    raise error
