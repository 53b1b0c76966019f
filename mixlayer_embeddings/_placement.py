"""The placement rule: a vector is returned, yielded or written only for the input it answers.

Each response is placed by its ``index`` fields (``_response``); across the responses of one
call or stream, ``VectorWidth`` holds every vector to one width. Without ``dimensions`` a
service may change width between requests (a rolling deploy behind one model id): vectors of
two widths side by side cannot be compared, and an array of them could only be filled by
reshaping, which moves vectors onto rows they do not answer. So a second width is refused.
"""

from __future__ import annotations

import threading

from ._exceptions import ResponseValidationError

__all__ = ["VectorWidth"]


class VectorWidth:
    """The one width of a call's vectors: ``dimensions`` when it was asked for, else the
    first answer's. Shared by every batch of the call (thread-safe)."""

    def __init__(self, dimensions: int | None = None) -> None:
        self._width = dimensions
        self._asked = dimensions is not None
        self._lock = threading.Lock()

    @property
    def known(self) -> int | None:
        """The width, once asked for or seen."""
        return self._width

    def check(self, width: int | None) -> None:
        """Accept vectors ``width`` long (None: a batch with no vector), or raise
        ``ResponseValidationError`` naming both widths."""
        if width is None:
            return
        with self._lock:
            if self._width is None:
                self._width = width
                return
            expected = self._width
        if width != expected:
            why = f"dimensions={expected} was asked" if self._asked else "earlier answers"
            raise ResponseValidationError(
                f"vectors of length {width} where {why} had length {expected}: the service "
                "changed the vectors' width during the call (pass dimensions= to fix one)"
            )
