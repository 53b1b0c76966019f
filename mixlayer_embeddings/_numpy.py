"""numpy, imported only when an array is asked for (the ``numpy`` extra)."""

from __future__ import annotations

from types import ModuleType

from ._extras import require

__all__ = ["numpy"]


def numpy() -> ModuleType:
    return require("numpy", "numpy", feature="Embeddings as a numpy array")[0]
