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

import threading
from collections.abc import Sequence

__all__ = ["INITIAL_BYTES_PER_TOKEN", "TokenEstimator"]

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
