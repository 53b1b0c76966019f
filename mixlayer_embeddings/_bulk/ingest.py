"""``mixlayer-embed``'s row pipeline: each row is sent, rejected or (``--update``) carried over,
and rows are committed as parts in input order as soon as every row before them is settled.

Every row becomes an ``Entry`` in one queue, in input order. A row to send waits there for its
vector; a rejected row and a carried row are settled at once. The settled front of the queue
is committed in parts of at most ``part_rows`` rows, so a long run of carried rows is written
as it is read and memory stays flat, and a part never holds a row whose vector is not known.

All of it runs on the caller's thread: ``texts()`` is pulled by the client's pipeline on the
same thread that takes the answers, so a commit from inside ``texts()`` sees every row before
it settled (``awaiting`` empty) or leaves it for the next answer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .._batching import FLUSH
from .._exceptions import ResponseValidationError
from .parts import EXIT_FAILED, Writer
from .rows import Refused, Row, RowDigest, text_key

__all__ = ["Entry", "Ingest"]


@dataclass
class Entry:
    """One row on its way to a part: ``vector`` once known, or ``reason`` it has none."""

    row: Row
    vector: Any = None
    reason: str | None = None
    #: ``--update``: where its vector is in the earlier output (loaded when committed).
    carried: Any = None
    settled: bool = False


@dataclass
class Counts:
    """This run's rows embedded and carried over, and the tokens the service counted (the
    rejected rows are counted from the parts' sidecars, across runs)."""

    embedded: int = 0
    carried: int = 0
    tokens: int = 0


class Ingest:
    """Routes rows and commits settled ones. ``carry(row)``: the earlier vector's place for a
    row whose id and text are unchanged (``--update``), else None. ``load(places)``: those
    vectors, as an array."""

    def __init__(
        self,
        writer: Writer,
        *,
        start_row: int,
        part_rows: int,
        fallback_width: int,
        fail_fast: bool,
        carry: Callable[[Row], Any] | None = None,
        load: Callable[[list[Any]], Any] | None = None,
        on_commit: Callable[[int], None] | None = None,
    ) -> None:
        self.writer = writer
        self.next_row = start_row
        self.part_rows = part_rows
        self.fallback_width = fallback_width
        self.fail_fast = fail_fast
        self.carry = carry
        self.load = load
        self.on_commit = on_commit
        self.counts = Counts()
        self._queue: deque[Entry] = deque()
        self._awaiting: deque[Entry] = deque()
        self._settled_front = 0  # how many entries at the queue's front are settled
        #: Rows settled on reading (carried, rejected) while texts wait for their answer: past
        #: ``flush_rows`` the texts waiting for a full batch are sent at once, so the rows
        #: queued behind them stay bounded whatever the share of rows that need a request.
        self.flush_rows = 8 * part_rows
        self._settled_waiting = 0
        #: Texts answered: an answer must start where the last ended (the placement rule,
        #: checked here for the rows as in the core for inputs).
        self._answered = 0
        #: The longest the queue of rows not yet committed has been (for tests and tuning).
        self.peak_queue = 0

    def texts(self, rows: Iterable[Row]) -> Iterator[str]:
        """The texts to send, in order; every other row is settled on the way. ``FLUSH``
        asks for the texts read so far to be sent without waiting for a full batch."""
        for row in rows:
            entry = Entry(row)
            self._queue.append(entry)
            self.peak_queue = max(self.peak_queue, len(self._queue))
            if row.problem is not None:
                if self.fail_fast:
                    raise Refused(f"row {row.number} (id {row.id}): {row.problem}", EXIT_FAILED)
                self._settle(entry, reason=row.problem)
                self._settled_waiting += 1
            elif self.carry is not None and (place := self.carry(row)) is not None:
                entry.carried = place
                self._settle(entry)
                self.counts.carried += 1
                self._settled_waiting += 1
            else:
                self._awaiting.append(entry)
                yield row.text
            if not self._awaiting:
                self._commit_settled(whole_parts_only=True)
                self._settled_waiting = 0
            elif self._settled_waiting >= self.flush_rows:
                self._settled_waiting = 0
                yield FLUSH

    @property
    def _sent(self) -> int:
        """Texts handed to the client: those answered, and those awaiting their answer."""
        return self._answered + len(self._awaiting)

    def answer(self, start: int, vectors: Any, refused: dict[int, str], tokens: int) -> None:
        """One batch's answer: texts ``start`` to ``start + len(vectors)`` of those sent, in
        order. A batch that does not begin where the last one ended, or answers texts never
        sent, is refused: its vectors would land on other rows."""
        if start != self._answered or start + len(vectors) > self._sent:
            raise ResponseValidationError(
                f"an answer for texts {start} to {start + len(vectors)} where text "
                f"{self._answered} was next (of {self._sent} sent): nothing of it is written"
            )
        self._answered += len(vectors)
        self.counts.tokens += tokens
        for offset in range(len(vectors)):
            entry = self._awaiting.popleft()
            if offset in refused:
                self._settle(entry, reason=refused[offset])
            else:
                entry.vector = vectors[offset]
                self._settle(entry)
                self.counts.embedded += 1
        self._commit_settled(whole_parts_only=bool(self._awaiting))

    def finish(self) -> None:
        """Commit what is left (rejected or carried rows after the last text sent)."""
        if self._answered != self._sent:
            raise ResponseValidationError(
                f"{self._sent} texts were sent and {self._answered} answered: the rest of the "
                "rows are not written"
            )
        self._commit_settled(whole_parts_only=False)

    def commit_empty(self) -> None:
        """A part of no row: an empty input's folder is still a table every reader opens."""
        import numpy as np

        width = self.writer.width or self.fallback_width
        empty = np.empty((0, width), dtype=np.float32)
        self.writer.commit(0, 0, [], empty, [], RowDigest().hexdigest(), self.fallback_width)

    def _settle(self, entry: Entry, reason: str | None = None) -> None:
        entry.reason = reason
        entry.settled = True
        while self._settled_front < len(self._queue) and self._queue[self._settled_front].settled:
            self._settled_front += 1

    def _commit_settled(self, *, whole_parts_only: bool) -> None:
        """Commit the settled front: in parts of ``part_rows``; the remainder too unless
        ``whole_parts_only`` (more rows may join it before a row still awaited)."""
        while self._settled_front >= self.part_rows or (
            self._settled_front and not whole_parts_only
        ):
            count = min(self._settled_front, self.part_rows)
            self._commit([self._queue.popleft() for _ in range(count)])
            self._settled_front -= count

    def _commit(self, entries: list[Entry]) -> None:
        import numpy as np

        digest = RowDigest()
        for entry in entries:
            digest.add(entry.row)
        kept = [e for e in entries if e.reason is None]
        carried = [e.carried for e in kept if e.carried is not None]
        old = iter(self.load(carried)) if carried and self.load is not None else iter(())
        vectors = [next(old) if e.carried is not None else e.vector for e in kept]
        width = self.writer.width or self.fallback_width
        widths = {len(v) for v in vectors}
        if len(widths) > 1:
            raise ResponseValidationError(
                f"vectors of lengths {sorted(widths)} for rows {entries[0].row.number} to "
                f"{entries[-1].row.number}; nothing of them is written"
            )
        array = np.stack(vectors) if vectors else np.empty((0, width), dtype=np.float32)
        rejects = [
            {"row": e.row.number, "id": e.row.id, "error": e.reason} for e in entries if e.reason
        ]
        first = entries[0].row.number
        covered = entries[-1].row.number + 1 - first
        self.writer.commit(
            first,
            covered,
            [e.row for e in kept],
            array,
            rejects,
            digest.hexdigest(),
            self.fallback_width,
        )
        self.next_row = first + covered
        if self.on_commit is not None:
            self.on_commit(covered)


def unchanged(index: dict[Any, tuple[Any, str]]) -> Callable[[Row], Any]:
    """``carry`` for ``--update``: the earlier place of a row whose id is known and whose text
    hashes the same."""

    def carry(row: Row) -> Any:
        known = index.get(row.id)
        if known is None or known[1] != text_key(row.text):
            return None
        return known[0]

    return carry
