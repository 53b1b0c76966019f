"""``mixlayer-embed --update``: re-embed only the rows of a changed corpus that are new or whose
text changed, keyed by id and a hash of the text; carry the other vectors over.

The new output is written beside the earlier one, in ``OUT/_next/`` (a name every Parquet
reader skips), as a normal, resumable run whose unchanged rows take their vector from the
earlier parts instead of the service. When it completes, ``swap`` makes it the folder's
output: the earlier parts it does not reuse by name are deleted, the new ones moved in, the
manifest last. The new manifest lists the new output's files, so a swap cut short is finished
by the next run, whatever file it stopped at.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .._extras import require
from .parts import (
    EXIT_MISMATCH,
    MANIFEST,
    Part,
    changed_settings,
    committed_parts,
    is_ours,
    write_atomically,
)
from .rows import Refused

__all__ = [
    "DROPPED",
    "NEXT",
    "EarlierOutput",
    "finish_swap",
    "list_files",
    "swap",
    "write_dropped",
]

NEXT = "_next"
DROPPED = "_dropped.jsonl"


class EarlierOutput:
    """The completed output an update starts from: each id's place and text hash, and its
    vectors, read a part at a time (rows of a corpus mostly keep their order)."""

    def __init__(self, out: Path, settings: dict[str, Any]) -> None:
        manifest_path = out / MANIFEST
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if "completed" not in manifest:
            raise Refused(
                f"the earlier run into {out} did not complete: run it again without --update "
                "to finish it first",
                EXIT_MISMATCH,
            )
        before: dict[str, Any] = manifest.get("settings", {})
        changed = changed_settings(before, settings)
        if changed:
            raise Refused(
                f"{out} holds vectors made with other settings ({', '.join(changed)}): an "
                "update must use the same ones. Use --restart to embed everything again.",
                EXIT_MISMATCH,
            )
        self.parts = committed_parts(out)
        self.format = before.get("format", "parquet")
        #: id -> ((part number, row in part), text hash)
        self.index: dict[Any, tuple[tuple[int, int], str]] = {}
        for number, part in enumerate(self.parts):
            keys = part.sidecar()["text_keys"]
            for position, (row_id, key) in enumerate(zip(self._ids(part), keys, strict=True)):
                self.index[row_id] = ((number, position), key)
        self._cached: tuple[int, Any] | None = None

    def _ids(self, part: Part) -> list[Any]:
        if self.format == "npy":
            loaded: list[Any] = json.loads(
                part.path.with_name(part.path.name.replace(".npy", ".ids.json")).read_text()
            )
            return loaded
        (pq,) = require("bulk", "pyarrow.parquet", feature="Parquet output")
        ids: list[Any] = pq.read_table(part.path, columns=["id"]).column("id").to_pylist()
        return ids

    def _vectors(self, number: int) -> Any:
        if self._cached is None or self._cached[0] != number:
            np = require("bulk", "numpy", feature="mixlayer-embed")[0]
            path = self.parts[number].path
            if self.format == "npy":
                array = np.load(path)
            else:
                (pq,) = require("bulk", "pyarrow.parquet", feature="Parquet output")
                column = pq.read_table(path, columns=["embedding"]).column("embedding")
                width = column.type.list_size
                array = column.combine_chunks().flatten().to_numpy().reshape(-1, width)
            self._cached = (number, array)
        return self._cached[1]

    def load(self, places: list[tuple[int, int]]) -> list[Any]:
        """The earlier vectors at ``places``, in that order."""
        return [self._vectors(number)[position] for number, position in places]

    def dropped(self, seen: Iterable[Any]) -> list[Any]:
        """The earlier ids the new input no longer has."""
        present = set(seen)
        return [row_id for row_id in self.index if row_id not in present]


def write_dropped(folder: Path, ids: list[Any]) -> None:
    lines = "".join(json.dumps({"id": i}, default=str) + "\n" for i in ids)
    write_atomically(folder / DROPPED, lambda f: f.write(lines.encode("utf-8")))


def swap(out: Path) -> None:
    """Make ``OUT/_next`` the folder's output (see the module's docstring)."""
    folder = out / NEXT
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    files = set(manifest["files"])
    for entry in out.iterdir():
        if is_ours(entry) and entry.name not in files and entry.name != MANIFEST:
            entry.unlink()
    for name in sorted(files):
        if (folder / name).exists():
            os.replace(folder / name, out / name)
    os.replace(folder / MANIFEST, out / MANIFEST)
    for entry in folder.iterdir():
        if is_ours(entry):
            entry.unlink()
    folder.rmdir()


def finish_swap(out: Path) -> bool:
    """Finish a swap an earlier update began (True), or do nothing (False)."""
    manifest_path = out / NEXT / MANIFEST
    if not manifest_path.exists():
        return False
    if "files" not in json.loads(manifest_path.read_text(encoding="utf-8")):
        return False  # an update still embedding: it resumes
    swap(out)
    return True


def list_files(folder: Path) -> list[str]:
    return sorted(e.name for e in folder.iterdir() if is_ours(e) and e.name != MANIFEST)
