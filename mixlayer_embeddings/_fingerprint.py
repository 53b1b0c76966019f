"""A fingerprint of what makes a vector: two vectors of one text are interchangeable only when
their fingerprints are equal.

What makes a vector: the model, the dimensions (None is the model's full size, spelled out
when the model is known), the ``input_type`` or the instruction that replaces it,
``normalize``, ``truncate``, and any further request field (``extra_body``). Not what only
changes how it is fetched (the URL, timeouts, batch sizes, the key).

A cache keyed on the text alone (LangChain's ``CacheBackedEmbeddings``, LlamaIndex's
``IngestionCache``) serves a stale vector after any of these changes; with the fingerprint as
its namespace or collection, it cannot. The adapters expose it as ``fingerprint``,
``mixlayer-embed`` writes it in its manifest, Ray in its output's field metadata.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ._config import lookup_model
from ._options import EmbedOptions

__all__ = ["fingerprint", "vector_recipe"]


def vector_recipe(model: str, options: EmbedOptions) -> dict[str, Any]:
    """What the vectors of a call with ``options`` are made with, as plain data."""
    spec = lookup_model(model)
    return {
        "model": spec.model_id if spec is not None else model,
        "dimensions": options.dimensions or (spec.full_dimensions if spec is not None else None),
        "input_type": None if options.instruction is not None else options.input_type,
        "instruction": options.instruction,
        "normalize": options.normalize,
        "truncate": options.truncate,
        "extra_body": dict(options.extra_body),
    }


def fingerprint(recipe: Mapping[str, Any]) -> str:
    """A short, stable name for ``recipe``: ``mixlayer-`` and 24 hex digits of its SHA-256
    (letters, digits and ``-`` only, so any store accepts it as a namespace or a path)."""
    canonical = json.dumps(recipe, sort_keys=True, separators=(",", ":"), default=str)
    return "mixlayer-" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:24]
