"""Deterministic, retrieval-meaningful vectors: a lexical stand-in for Qwen3 Embedding 8B.

The method: a text is lower-cased and split into words; its features are each word (weight
1.0, 0.25 for a stop word) and each character trigram of each word padded with spaces (weight
0.3), so that "retrieval" and "retrieve" share most of their features. A token array's features
are its token ids and adjacent pairs. Each feature is hashed (blake2b, so it is the same in
every process and on every machine) to one signed position in each octave of the vector:
``[0, 32)``, ``[32, 64)``, ``[64, 128)``, ... ``[2048, 4096)``. Because every octave carries
every feature, a prefix of the vector is itself a usable embedding: ``dimensions`` truncates the
full 4096-d vector (Matryoshka style) and renormalises it. ``input_type="query"`` adds one
marker feature, so a query's vector differs from the same text as a document, yet stays close
to it. Vectors are L2-normalised unless ``normalize=False``.

Texts that share words and word pieces land near each other, so a question finds the passage
that answers it by shared vocabulary. It is a lexical stand-in, not Qwen3: no semantics.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from .._config import QWEN3_EMBEDDING_8B

__all__ = ["FULL_DIMENSIONS", "count_tokens", "embed_items", "encode_data", "tokenize"]

FULL_DIMENSIONS = QWEN3_EMBEDDING_8B.full_dimensions
_OCTAVES = (
    (0, 32),
    (32, 64),
    (64, 128),
    (128, 256),
    (256, 512),
    (512, 1024),
    (1024, 2048),
    (2048, 4096),
)
_WORD = re.compile(r"\w+", re.UNICODE)
_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
#: Common English function words: they weigh a quarter of a content word, so two texts match
#: on what they are about ("bees", "flowers"), not on "each other".
_STOP_WORDS = frozenset(
    [
        "a",
        "about",
        "after",
        "all",
        "also",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "been",
        "before",
        "being",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "each",
        "either",
        "for",
        "from",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "him",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "may",
        "me",
        "might",
        "more",
        "most",
        "my",
        "neither",
        "no",
        "nor",
        "not",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
    ]
)
_WORD_WEIGHT = 1.0
_STOP_WEIGHT = 0.25
_TRIGRAM_WEIGHT = 0.3
_QUERY_MARKER = ("\x00input_type", 0.35)

Feature = tuple[str, float]
_Sparse = tuple[npt.NDArray[np.intp], npt.NDArray[np.float64]]


def tokenize(text: str) -> list[str]:
    """The emulator's notion of a token: a word or a punctuation mark."""
    return _TOKEN.findall(text)


#: A real tokenizer cuts a long word into pieces: a word counts one token, and one more per
#: this many characters (so a 10 MB run of letters is far over the context window, as it is
#: for the service, not a single token).
WORD_PIECE_CHARS = 32


def count_tokens(item: str | Sequence[int]) -> int:
    if not isinstance(item, str):
        return len(item)
    return sum(1 + len(word) // WORD_PIECE_CHARS for word in tokenize(item))


def truncate_tokens(text: str, limit: int) -> str:
    """The first ``limit`` tokens of ``text`` (as ``count_tokens`` counts them), words joined
    by spaces; a word that does not fit whole keeps the pieces that do."""
    kept: list[str] = []
    left = limit
    for word in tokenize(text):
        if left <= 0:
            break
        pieces = 1 + len(word) // WORD_PIECE_CHARS
        kept.append(word if pieces <= left else word[: left * WORD_PIECE_CHARS - 1])
        left -= min(pieces, left)
    return " ".join(kept)


def _positions(feature: str) -> tuple[list[int], list[float]]:
    digest = hashlib.blake2b(feature.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    columns = []
    signs = []
    for octave, (low, high) in enumerate(_OCTAVES):
        word = digest[octave * 2] | (digest[octave * 2 + 1] << 8)
        columns.append(low + (word >> 1) % (high - low))
        signs.append(1.0 if word & 1 else -1.0)
    return columns, signs


def _sparse(features: Sequence[Feature]) -> _Sparse:
    columns: list[int] = []
    values: list[float] = []
    for feature, weight in features:
        feature_columns, signs = _positions(feature)
        columns.extend(feature_columns)
        values.extend(weight * sign for sign in signs)
    return np.asarray(columns, dtype=np.intp), np.asarray(values, dtype=np.float64)


@lru_cache(maxsize=1 << 17)
def _word_sparse(word: str) -> _Sparse:
    """A word and its trigrams, hashed once: texts are sums of cached words."""
    padded = f" {word} "
    features = [(word, _STOP_WEIGHT if word in _STOP_WORDS else _WORD_WEIGHT)]
    features.extend((padded[i : i + 3], _TRIGRAM_WEIGHT) for i in range(len(padded) - 2))
    return _sparse(features)


@lru_cache(maxsize=1 << 17)
def _token_sparse(token: int, following: int | None) -> _Sparse:
    features = [(f"\x00t{token}", _WORD_WEIGHT)]
    if following is not None:
        features.append((f"\x00t{token},{following}", _TRIGRAM_WEIGHT))
    return _sparse(features)


_QUERY_SPARSE = _sparse([_QUERY_MARKER])
_EMPTY_SPARSE = _sparse([("\x00empty", 1.0)])


def _item_parts(item: str | Sequence[int]) -> list[_Sparse]:
    if isinstance(item, str):
        return [_word_sparse(word) for word in _WORD.findall(item.lower())]
    tokens = list(item)
    return [_token_sparse(t, n) for t, n in zip(tokens, [*tokens[1:], None], strict=True)]


def embed_items(
    items: Sequence[str | Sequence[int]],
    *,
    dimensions: int = FULL_DIMENSIONS,
    input_type: str | None = None,
    normalize: bool = True,
) -> npt.NDArray[np.float32]:
    """One row per item; the same item always gives the same row, in any process."""
    columns: list[npt.NDArray[np.intp]] = []
    values: list[npt.NDArray[np.float64]] = []
    rows: list[npt.NDArray[np.intp]] = []
    for row, item in enumerate(items):
        parts = _item_parts(item)
        if input_type == "query":
            parts.append(_QUERY_SPARSE)
        if not parts:  # punctuation only: still a valid, deterministic vector
            parts = [_EMPTY_SPARSE]
        item_columns = np.concatenate([p[0] for p in parts])
        columns.append(item_columns)
        values.append(np.concatenate([p[1] for p in parts]))
        rows.append(np.full(len(item_columns), row, dtype=np.intp))
    all_columns = np.concatenate(columns)
    keep = all_columns < dimensions  # Matryoshka: the prefix of the full vector
    flat = np.concatenate(rows)[keep] * dimensions + all_columns[keep]
    out = np.bincount(
        flat, weights=np.concatenate(values)[keep], minlength=len(items) * dimensions
    ).reshape(len(items), dimensions)
    if normalize:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        out = out / norms
    return out.astype(np.float32)


def encode_data(
    items: list[Any], dimensions: int, input_type: str | None, normalize: bool, as_base64: bool
) -> tuple[bytes, int]:
    """The ``data`` array of a response, as JSON bytes, and the tokens counted.

    A pure function of its arguments, so it runs on a worker thread or in a worker process.
    """
    vectors = embed_items(items, dimensions=dimensions, input_type=input_type, normalize=normalize)
    little = vectors.astype("<f4", copy=False)
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(little[i].tobytes()).decode("ascii")
            if as_base64
            else little[i].tolist(),
        }
        for i in range(len(items))
    ]
    tokens = sum(count_tokens(item) for item in items)
    return json.dumps(data, separators=(",", ":")).encode(), tokens
