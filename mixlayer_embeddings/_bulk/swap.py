"""An update's new generation made the folder's output in one step that readers cannot split.

An update builds its output in ``OUT/_next/`` (a name readers skip). When it completes:

1. ``OUT/_next`` is renamed to ``OUT``'s sibling ``.OUT.mixlayer-swap`` (same file system);
2. that sibling and ``OUT`` are exchanged in one atomic step (Linux ``renameat2`` with
   ``RENAME_EXCHANGE``): a reader opening ``OUT`` sees the old generation or the new one,
   never parts of both;
3. files that are not this tool's (a user's notes) are moved back into ``OUT``, and the old
   generation, now in the sibling, is deleted.

Each manifest holds its ``generation`` (an update's is one more than what it updates), so a
run killed at any step is finished by the next one: a sibling newer than ``OUT`` is still to
be exchanged, an older one still to be deleted. Where the system has no atomic exchange, step
2 is two renames, and a reader between them finds no folder (never a mixed one).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
from pathlib import Path

from .parts import LOCK, MANIFEST, is_layout_name, is_ours, lock_output

__all__ = ["NEXT", "exchange", "finish_swap", "generation", "staged_folder", "swap"]

NEXT = "_next"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def staged_folder(out: Path) -> Path:
    """Where a finished update waits to be exchanged with ``out``, and where the old
    generation waits to be deleted after: ``out``'s sibling, a hidden name."""
    return out.parent / f".{out.name}.mixlayer-swap"


def generation(folder: Path) -> int:
    """The generation of the output in ``folder`` (0: none, or not complete)."""
    path = folder / MANIFEST
    if not path.is_file():
        return 0
    manifest = json.loads(path.read_text(encoding="utf-8"))
    return int(manifest.get("generation", 1)) if "completed" in manifest else 0


def _renameat2() -> object | None:
    name = ctypes.util.find_library("c")
    if name is None:  # pragma: no cover - no C library to ask
        return None
    return getattr(ctypes.CDLL(name, use_errno=True), "renameat2", None)


def exchange(first: Path, second: Path) -> None:
    """Swap two directories' names in one step (two renames where the system cannot)."""
    call = _renameat2()
    if call is not None:
        done = call(  # type: ignore[operator]
            _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
        )
        if done == 0:
            return
        errno = ctypes.get_errno()
        if errno not in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: no exchange here
            raise OSError(errno, os.strerror(errno), str(first))
    aside = first.with_name(first.name + ".aside")  # pragma: no cover - non-Linux systems
    os.rename(second, aside)  # pragma: no cover
    os.rename(first, second)  # pragma: no cover
    os.rename(aside, first)  # pragma: no cover


def swap(out: Path) -> None:
    """Make the completed ``OUT/_next`` the folder's output (the module's steps 1 to 3)."""
    staged = staged_folder(out)
    if staged.is_dir() and generation(staged) <= generation(out):
        _delete_generation(staged, out)  # an old generation a killed run left
    if (out / NEXT).is_dir():
        os.rename(out / NEXT, staged)
    finish_swap(out)


def finish_swap(out: Path) -> bool:
    """Finish what a swap began (steps 2 and 3, or 3 alone); False when there was nothing."""
    staged = staged_folder(out)
    if not staged.is_dir():
        return False
    if generation(staged) > generation(out):
        # The new generation brings its own held lock: a run starting after the exchange
        # waits for this one, as it would have on the old folder's lock.
        lock = lock_output(staged)
        try:
            exchange(staged, out)
            _delete_generation(staged, out)
        finally:
            lock.close()
    else:
        _delete_generation(staged, out)
    return True


def _delete_generation(old: Path, out: Path) -> None:
    """Delete an old generation's files; hand entries that are not ours back to ``out``."""
    for entry in old.iterdir():
        if entry.name == LOCK and entry.is_file() and not entry.is_symlink():
            entry.unlink()
        elif is_ours(entry) or entry.name == NEXT:
            if entry.is_dir() and not entry.is_symlink():
                _delete_generation(entry, out)
            else:
                entry.unlink()
        elif not is_layout_name(entry.name) and not (out / entry.name).exists():
            os.rename(entry, out / entry.name)
    with contextlib.suppress(OSError):  # a file someone else put there stays, with its folder
        old.rmdir()
