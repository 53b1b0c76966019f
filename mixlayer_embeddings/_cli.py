"""Console entry points. A missing extra is one line naming its ``pip install``, not a
traceback; the command itself lives in its own module, imported only here."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from ._extras import MissingExtraError

__all__ = ["EXIT_MISSING_EXTRA", "HelpFormatter", "demo", "embed", "emulator"]

#: Exit status when a command's extra is not installed (2 is argparse's usage error).
EXIT_MISSING_EXTRA = 3


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows a default only when there is one: a flag whose help already says where its
    value comes from (None: the environment) gets no second "(default: None)"."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or "default:" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


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
