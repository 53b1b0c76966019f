"""A keyword nobody takes: the one error for it, naming the keyword most likely meant.

Constructors, per-call options, the adapters and Ray all refuse an unknown keyword through
here, so a typo gets the same message, with the same suggestion, wherever it is made.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence

__all__ = ["closest_keyword", "unexpected_keyword"]

#: How alike a typo and a keyword must be (``difflib``'s ratio) for the keyword to be named.
_CUTOFF = 0.6


def closest_keyword(
    unknown: str, known: Sequence[str], synonyms: Mapping[str, str] | None = None
) -> str | None:
    """The keyword a user most likely meant by ``unknown``: a known synonym (another
    framework's name for it), else the closest spelling, else None."""
    if synonyms and unknown in synonyms:
        return synonyms[unknown]
    close = difflib.get_close_matches(unknown, list(known), n=1, cutoff=_CUTOFF)
    return close[0] if close else None


def unexpected_keyword(owner: str, name: str, known: Sequence[str], listing: str) -> TypeError:
    """The error for a keyword ``owner`` does not take, naming the one most likely meant."""
    meant = closest_keyword(name, known)
    hint = f" (did you mean {meant!r}?)" if meant else ""
    return TypeError(f"{owner} got an unexpected keyword argument {name!r}{hint}; {listing}")
