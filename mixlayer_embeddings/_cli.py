"""Console entry points. A missing extra is one line naming its ``pip install``, not a
traceback; the command itself lives in its own module, imported only here."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

from ._extras import MissingExtraError

__all__ = ["EXIT_MISSING_EXTRA", "demo", "embed", "emulator"]

#: Exit status when a command's extra is not installed (2 is argparse's usage error).
EXIT_MISSING_EXTRA = 3


def _run(prog: str, module: str) -> int:
    try:
        main: Callable[[], int] = importlib.import_module(module).main
        return main()
    except MissingExtraError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return EXIT_MISSING_EXTRA


def emulator() -> int:
    return _run("mixlayer-emulator", "mixlayer_embeddings.emulator._cli")


def demo() -> int:
    return _run("mixlayer-demo", "mixlayer_embeddings.demo")


def embed() -> int:
    return _run("mixlayer-embed", "mixlayer_embeddings._bulk")
