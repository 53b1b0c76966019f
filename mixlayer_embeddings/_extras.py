"""Optional dependencies: imported only when asked for, and named with their ``pip install``
when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["MissingExtraError", "require"]

DISTRIBUTION = "mixlayer-embeddings"


class MissingExtraError(ImportError):
    """A feature needs an extra that is not installed; the message says what to install."""


def install_hint(extra: str) -> str:
    return f'pip install "{DISTRIBUTION}[{extra}]"'


def require(extra: str, *modules: str, feature: str) -> list[ModuleType]:
    """Import ``modules`` or raise ``MissingExtraError`` naming the extra that brings them."""
    imported = []
    for name in modules:
        try:
            imported.append(importlib.import_module(name))
        except ImportError as exc:
            missing = exc.name or name
            raise MissingExtraError(
                f"{feature} needs the '{extra}' extra ({missing} is not installed): "
                f"{install_hint(extra)}",
                name=missing,
            ) from exc
    return imported
