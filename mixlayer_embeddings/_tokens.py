"""Token estimates that cost almost nothing: UTF-8 bytes over a ratio learned from the service.

A request is sized by the tokens it asks the model to read, since that is what an inference
server's time grows with. Counting them exactly would need the model's tokenizer; instead an
item's tokens are estimated as its UTF-8 length divided by ``bytes_per_token`` (a token array
is its own length). The ratio starts at ``INITIAL_BYTES_PER_TOKEN`` and then follows the
corpus: every answer's ``usage.prompt_tokens`` against the bytes that were sent.

The starting ratio was calibrated on Qwen's tokenizer (``benchmarks/calibrate_tokens.py``):
prose and code in eleven samples of nine languages ran 3.6-5.8 bytes per token, number-heavy
text (ids, amounts) 1.4. 3.0 overestimates prose (safe: requests come out smaller than the
budget), and the learned ratio corrects number-heavy corpora after the first answers.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence

__all__ = ["INITIAL_BYTES_PER_TOKEN", "PlannedTally", "TokenEstimator", "planned_tokens"]

INITIAL_BYTES_PER_TOKEN = 3.0
#: The learned ratio stays within these bounds, whatever an odd answer says.
MIN_BYTES_PER_TOKEN = 1.0
MAX_BYTES_PER_TOKEN = 8.0
#: Weight of each new answer in the learned ratio (an exponentially weighted average).
LEARNING_RATE = 0.3


class TokenEstimator:
    """Estimates an item's tokens; learns the bytes-per-token ratio from the service's usage.

    Thread-safe; one per client, so every call of the client learns from the others.
    """

    def __init__(self, bytes_per_token: float = INITIAL_BYTES_PER_TOKEN) -> None:
        self.bytes_per_token = bytes_per_token
        self._lock = threading.Lock()

    @staticmethod
    def size(item: str | Sequence[int]) -> int:
        """What an estimate is made from: UTF-8 bytes of a text, the length of a token array."""
        if isinstance(item, str):
            # Plain len() for ASCII (no copy); the exact byte count otherwise.
            return len(item) if item.isascii() else len(item.encode("utf-8", "surrogatepass"))
        return len(item)

    def estimate(self, item: str | Sequence[int]) -> int:
        if isinstance(item, str):
            return max(1, int(self.size(item) / self.bytes_per_token + 0.999))
        return max(1, len(item))

    def observe(self, text_bytes: int, prompt_tokens: int) -> None:
        """An answer for texts of ``text_bytes`` UTF-8 bytes counted ``prompt_tokens`` tokens."""
        if text_bytes <= 0 or prompt_tokens <= 0:
            return
        seen = min(MAX_BYTES_PER_TOKEN, max(MIN_BYTES_PER_TOKEN, text_bytes / prompt_tokens))
        with self._lock:
            self.bytes_per_token += LEARNING_RATE * (seen - self.bytes_per_token)

    def after_fork(self) -> None:
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenEstimator({self.bytes_per_token:.2f} bytes/token)"


# -- an estimate to plan a run by, before anything is sent ------------------------------------

#: The pieces Qwen's tokenizer splits text into before its BPE (its pattern, in ``re``'s
#: terms): runs of letters, single digits, runs of marks, runs of white space.
_PIECES = re.compile(r"[^\W\d_]+|\d|[^\w\s]+|\s+|_+")
#: Fitted on Qwen's own vocabulary (``benchmarks/bench_plan.py``): an ASCII word of up to 6
#: letters is one token, then one more per 5 letters; another script's word, one token per 3
#: letters after its first 3; a run of CJK or Hangul, one per 1.6 characters; a run of marks,
#: one per 3; a digit, one; a line break or a run of spaces, half a token (a single space
#: rides on the next word).
_ASCII_WORD, _ASCII_STEP = 6, 5.0
_OTHER_WORD, _OTHER_STEP = 3, 3.0
_CJK_CHARS = 1.6
_MARKS = 3.0
_SPACE = 0.5


def _is_cjk(piece: str) -> bool:
    return any("\u3040" <= c <= "\u9fff" or "\uac00" <= c <= "\ud7af" for c in piece)


_ASCII_WORDS = re.compile(r"[A-Za-z]+")
_LONG_ASCII_WORDS = re.compile(r"[A-Za-z]{" + str(_ASCII_WORD + 1) + ",}")
_DIGITS = re.compile(r"\d")
_MARK_RUNS = re.compile(r"[^\w\s]+")
_SPACE_RUNS = re.compile(r"\s{2,}|[^\S ]")


def planned_tokens(item: str | Sequence[int]) -> int:
    """The tokens ``item`` will most likely be counted as, for a plan made before anything is
    sent (``mixlayer-embed --plan``): closer than ``TokenEstimator``'s first guess, which is
    pessimistic on purpose (it sizes requests) and then learns from the service."""
    if not isinstance(item, str):
        return max(1, len(item))
    if item.isascii():
        return _planned_ascii(item)
    return _planned_any(item)


def _planned_ascii(text: str) -> int:
    """``_planned_any`` for ASCII text, in a few passes of the regex engine (most corpora)."""
    long_words = _LONG_ASCII_WORDS.findall(text)
    count = (
        len(_ASCII_WORDS.findall(text))
        + (sum(map(len, long_words)) - _ASCII_WORD * len(long_words)) / _ASCII_STEP
        + len(_DIGITS.findall(text))
        + sum(max(1.0, len(run) / _MARKS) for run in _MARK_RUNS.findall(text))
        + _SPACE * len(_SPACE_RUNS.findall(text))
    )
    return max(1, round(count))


def _planned_any(text: str) -> int:
    count = 0.0
    for match in _PIECES.finditer(text):
        piece = match.group()
        first = piece[0]
        if first.isspace():
            count += _SPACE if (len(piece) > 1 or first != " ") else 0.0
        elif first.isdigit():
            count += 1
        elif first.isalpha():
            if piece.isascii():
                count += 1 + max(0, len(piece) - _ASCII_WORD) / _ASCII_STEP
            elif _is_cjk(piece):
                count += len(piece) / _CJK_CHARS
            else:
                count += 1 + max(0, len(piece) - _OTHER_WORD) / _OTHER_STEP
        else:
            count += max(1.0, len(piece) / _MARKS)
    return max(1, round(count))


class PlannedTally:
    """``planned_tokens`` summed over the texts a run sends, to set beside the tokens the
    service billed: every text up to ``EXACT``, then one in ``STEP`` counted ``STEP`` times,
    so that a run of millions of texts pays about a microsecond a text for it."""

    EXACT = 20_000
    STEP = 16

    def __init__(self, prepare: Callable[[str], str] | None = None) -> None:
        #: What is sent for a text (an instructed query), if not the text itself.
        self._prepare = prepare
        self._seen = 0
        self.total = 0

    def count(self, texts: Iterable[str]) -> Iterator[str]:
        """``texts``, unchanged, counted on the way."""
        for text in texts:
            self._seen += 1
            if self._seen <= self.EXACT or self._seen % self.STEP == 0:
                sent = text if self._prepare is None else self._prepare(text)
                weight = 1 if self._seen <= self.EXACT else self.STEP
                self.total += weight * planned_tokens(sent)
            yield text
