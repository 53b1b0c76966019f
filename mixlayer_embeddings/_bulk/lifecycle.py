"""The output folder's state, read from the disk, and the steps that move it between states.

The table of states and events is in the package's docstring (``mixlayer_embeddings._bulk``);
``command`` drives it. Every state is read from files that are only ever written whole (a
temporary name, flushed, then renamed), so a run killed at any step leaves one of the states
below and the next run goes on from it.
"""

from __future__ import annotations

import argparse
import enum
import json
import os
from collections import deque
from pathlib import Path
from typing import Any

from .args import settings_fingerprint
from .parts import (
    EXIT_MISMATCH,
    FORMAT_VERSION,
    LOCK,
    MANIFEST,
    Part,
    changed_settings,
    clear_leftovers,
    committed_parts,
    discard_output,
    finish_discard,
    is_layout_name,
    write_atomically,
)
from .rows import Refused, Row, RowDigest, read_rows
from .swap import NEXT, generation, staged_folder

__all__ = [
    "State",
    "WrittenRows",
    "discard_everything",
    "finish_discards",
    "holds_vectors",
    "prepare",
    "refuse_links",
    "settings_differ",
    "state_of",
    "written_id_type",
    "written_rows_match",
]


class State(enum.Enum):
    """What a folder holds (see the package's table)."""

    EMPTY = "empty"
    EMBEDDING = "embedding"
    COMPLETE = "complete"
    UPDATING = "updating"
    SWAPPING = "swapping"


def _manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def settings_differ(folder: Path, settings: dict[str, Any]) -> bool:
    """Whether ``folder``'s manifest was written with other settings (no manifest: no)."""
    manifest = _manifest(folder)
    return manifest is not None and bool(changed_settings(manifest.get("settings", {}), settings))


def written_id_type(folder: Path) -> str | None:
    """The id type ``folder``'s manifest records, if any."""
    manifest = _manifest(folder)
    kind: str | None = None if manifest is None else manifest["settings"].get("id_type")
    return kind


def finish_discards(out: Path) -> None:
    """Finish every discard a killed run left half-done: in the folder, ``_next/`` and the
    staged generation (before the state is read: a half-discarded folder has no state)."""
    for folder in (out, out / NEXT, staged_folder(out)):
        if folder.is_dir() and not folder.is_symlink():
            finish_discard(folder)


def state_of(out: Path) -> State:
    """The folder's state: a staged generation, or a complete ``_next/``, is a swap under way;
    ``_next/`` otherwise an update embedding; else the top manifest tells (none: empty)."""
    if staged_folder(out).is_dir() or generation(out / NEXT) > 0:
        return State.SWAPPING
    if (out / NEXT).is_dir():
        return State.UPDATING
    manifest = _manifest(out)
    if manifest is None:
        return State.EMPTY
    return State.COMPLETE if "completed" in manifest else State.EMBEDDING


def refuse_links(out: Path) -> None:
    """A symbolic link under one of the layout's names would make a run write through it, to
    a file outside the folder (in a shared folder, anyone's): refused, in one line."""
    for folder in (out, out / NEXT, staged_folder(out)):
        if folder.is_symlink():
            raise Refused(f"{folder} is a symbolic link: remove it, the tool writes there", 2)
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.is_symlink() and (is_layout_name(entry.name) or entry.name == NEXT):
                raise Refused(
                    f"{entry} is a symbolic link with a name this tool writes: remove it", 2
                )


def discard_everything(out: Path) -> None:
    """``--restart``: every file of the layout, an update's ``_next/`` and a staged
    generation with them."""
    for folder in (out / NEXT, staged_folder(out)):
        if folder.is_dir() and not folder.is_symlink():
            discard_output(folder)
            lock = folder / LOCK
            if lock.is_file() and not lock.is_symlink():
                lock.unlink()
            os.rmdir(folder)  # not empty: someone else's files are there; say so
    discard_output(out)


def holds_vectors(parts: list[Part]) -> bool:
    """Whether any part holds a vector (a folder of rejects only, or none, holds none)."""
    return any(part.sidecar()["text_keys"] for part in parts)


def written_rows_match(args: argparse.Namespace, folder: Path, id_type: str) -> bool:
    """Whether the rows the parts of ``folder`` hold are still the input's first rows (read
    again, checked against each part's digest, as a resumed run checks them); nothing is
    sent."""
    written = WrittenRows(folder, committed_parts(folder))
    read = 0
    try:
        for row in read_rows(args.input, args.text_field, args.id_field, id_type):
            if row.number >= written.end:
                return True
            read += 1
            written.check(row)
        written.finish(read)
    except Refused:
        return False
    return True


_CHANGED_INPUT = (
    "Use --update (with --id-field) to embed only what changed, --restart to embed it all "
    "again, or another output directory."
)


class WrittenRows:
    """Checks the rows read again on resume against the digests of the parts holding them."""

    def __init__(self, out: Path, parts: list[Part]) -> None:
        self.out = out
        # A part of no row (an empty input's) holds nothing to check.
        self._parts = deque(part for part in parts if part.rows)
        self._digest = RowDigest()
        self.end = parts[-1].first_row + parts[-1].rows if parts else 0

    def check(self, row: Row) -> None:
        part = self._parts[0]
        self._digest.add(row)
        if row.number == part.first_row + part.rows - 1:
            self._parts.popleft()
            if self._digest.hexdigest() != part.sidecar()["rows_sha256"]:
                raise Refused(
                    f"the input changed: rows {part.first_row} to {row.number} differ from "
                    f"those embedded in {self.out / part.path.name}. {_CHANGED_INPUT}",
                    EXIT_MISMATCH,
                )
            self._digest = RowDigest()

    def finish(self, rows_read: int) -> None:
        if rows_read < self.end:
            raise Refused(
                f"the input changed: it has {rows_read} rows, and {self.out} holds "
                f"{self.end}. {_CHANGED_INPUT}",
                EXIT_MISMATCH,
            )


def prepare(args: argparse.Namespace, out: Path, settings: dict[str, Any]) -> list[Part]:
    """Check or write ``out``'s manifest; return the parts already written. A folder that
    holds no vector takes any settings: a failed first run never blocks the corrected
    command."""
    out.mkdir(parents=True, exist_ok=True)
    manifest = _manifest(out)
    if manifest is not None:
        changed = changed_settings(manifest.get("settings", {}), settings)
        if changed and not holds_vectors(committed_parts(out)):
            discard_output(out)
            manifest = None
        elif changed:
            raise Refused(
                f"{out} holds vectors made with other settings ({', '.join(changed)}). "
                "Use another output directory, or --restart to discard it.",
                EXIT_MISMATCH,
            )
    elif (out / "manifest.json").exists():
        raise Refused(
            f"{out} was written by an older mixlayer-embed; use --restart to discard it",
            EXIT_MISMATCH,
        )
    elif committed_parts(out):
        raise Refused(
            f"{out} has part files but no {MANIFEST}; use --restart to discard them",
            EXIT_MISMATCH,
        )
    if manifest is None:
        wanted = {
            "version": FORMAT_VERSION,
            "input": {"path": str(args.input.resolve()), "size": args.input.stat().st_size},
            "settings": settings,
            "fingerprint": settings_fingerprint(settings),
        }
        text = json.dumps(wanted, indent=2)
        write_atomically(out / MANIFEST, lambda f: f.write(text.encode("utf-8")))
    parts = committed_parts(out)
    clear_leftovers(out, parts)
    return parts
