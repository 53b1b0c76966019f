"""Identical items sent once, their vector given back to every position that held it.

Web corpora repeat boilerplate (cookie banners, footers, "Read more"); a service bills and
computes every copy. Pure: ``Copies`` maps positions to distinct items and back. A call on a
list is planned over its distinct items (``_base_client._plan``; ``_results`` spreads the
answer and any error back to the inputs); a stream's batches are compacted one request at a
time (``_flow.batch_flow``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._batching import Batch
from ._models import Usage
from ._response import ParsedBatch

__all__ = ["Copies", "own_copies"]


def _key(item: Any) -> Any:
    return item if isinstance(item, str) else tuple(item)


@dataclass(frozen=True)
class Copies:
    """``distinct[fan[i]]`` is item ``i`` of the batch."""

    distinct: list[Any]
    fan: list[int]

    @classmethod
    def of(cls, items: Sequence[Any]) -> Copies | None:
        """The batch's distinct items, or None when it has no copy (nothing to do)."""
        seen: dict[Any, int] = {}
        fan = [seen.setdefault(_key(item), len(seen)) for item in items]
        if len(seen) == len(items):
            return None
        first: dict[int, Any] = {}
        for item, slot in zip(items, fan, strict=True):
            first.setdefault(slot, item)
        return cls([first[slot] for slot in range(len(seen))], fan)

    def counts(self) -> list[int]:
        """For each distinct item, how many positions hold it."""
        counts = [0] * len(self.distinct)
        for slot in self.fan:
            counts[slot] += 1
        return counts

    def compact(self, batch: Batch) -> Batch:
        """The batch as it is sent: each distinct item once, its token estimate in proportion."""
        tokens = max(1, batch.tokens * len(self.distinct) // len(self.fan))
        return Batch(batch.start, self.distinct, tokens)

    def spread(self, parsed: ParsedBatch) -> ParsedBatch:
        """The compact batch's vectors given to every position (usage as the service said)."""
        vectors: Any = own_copies([parsed.embeddings[slot] for slot in self.fan])
        return ParsedBatch(vectors, parsed.model, parsed.usage, parsed.requests)

    def positions(
        self, culprits: list[int], accepted: list[tuple[int, ParsedBatch]], start: int
    ) -> tuple[list[int], list[tuple[int, ParsedBatch]]]:
        """A bisection's refused items and accepted vectors, found on the compact batch, as
        positions of the batch (every copy of a refused item is refused)."""
        refused = {index - start for index in culprits}
        vectors: dict[int, Any] = {}
        for first, parsed in accepted:
            for offset, vector in enumerate(parsed.embeddings):
                vectors[first - start + offset] = vector
        model = next((parsed.model for _, parsed in accepted), "")
        usage = sum((parsed.usage for _, parsed in accepted), Usage())
        spread: list[tuple[int, ParsedBatch]] = []
        given: set[int] = set()
        for i, slot in enumerate(self.fan):
            if slot in vectors:
                vector = vectors[slot]
                if slot in given and hasattr(vector, "copy"):
                    vector = vector.copy()  # each position owns its vector
                given.add(slot)
                # One vector per position; the usage goes with the first, as it was billed once.
                spread.append((start + i, ParsedBatch([vector], model, usage, 0)))
                usage = Usage()
        return [start + i for i, slot in enumerate(self.fan) if slot in refused], spread


def own_copies(vectors: list[Any]) -> list[Any]:
    """``vectors`` where an object seen before is replaced by a copy of it: two inputs never
    share one list (or numpy row), so changing one input's vector cannot change another's.
    Immutable vectors (the raw ``bytes`` of the numpy path) are shared as they are."""
    seen: set[int] = set()
    out: list[Any] = []
    for vector in vectors:
        if id(vector) in seen and hasattr(vector, "copy"):
            vector = vector.copy()
        elif vector is not None:
            seen.add(id(vector))
        out.append(vector)
    return out
