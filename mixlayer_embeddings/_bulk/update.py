"""``mixlayer-embed --update``: re-embed only the rows of a changed corpus that are new or whose
text changed, keyed by id and a hash of the text; carry the other vectors over.

The new output is written beside the earlier one, in ``OUT/_next/`` (a name every Parquet
reader skips), as a normal, resumable run whose unchanged rows take their vector from the
earlier parts instead of the service. When it completes, ``swap`` makes it the folder's
output in one step (``swap``'s docstring).
"""

from __future__ import annotations

import json
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
    write_atomically,
)
from .rows import Refused

__all__ = [
    "CARRY",
    "DROPPED",
    "EarlierOutput",
    "write_dropped",
]

DROPPED = "_dropped.jsonl"
#: The earlier vectors, in one array on disk, while an update runs.
CARRY = "_carry.npy"


class EarlierOutput:
    """The completed output an update starts from: each id's row and text hash, and every
    vector, read part by part once into a scratch array on disk (``CARRY``, memory-mapped), so
    carrying a row over is a lookup whatever the new input's row order."""

    def __init__(self, out: Path, settings: dict[str, Any]) -> None:
        """Check that ``out`` can be updated with ``settings`` (nothing is read yet)."""
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
        #: The earlier output's generation: the update's is the next one.
        self.generation = int(manifest.get("generation", 1))
        self.parts = committed_parts(out)
        self.format = before.get("format", "parquet")
        #: id -> (row in the scratch array, text hash); filled by ``read``.
        self.index: dict[Any, tuple[int, str]] = {}
        self._vectors: Any = None

    def read(self, scratch: Path) -> None:
        """Read every earlier part once: its ids into ``index``, its vectors into ``scratch``
        (a file of this layout in the new output's folder, deleted when the update ends)."""
        np = require("bulk", "numpy", feature="mixlayer-embed")[0]
        keys = [part.sidecar()["text_keys"] for part in self.parts]
        total = sum(len(k) for k in keys)
        vectors = None
        row = 0
        for part, part_keys in zip(self.parts, keys, strict=True):
            if not part_keys:
                continue
            ids, array = self._read_part(part)
            if vectors is None:
                vectors = np.lib.format.open_memmap(
                    scratch, mode="w+", dtype=np.float32, shape=(total, array.shape[1])
                )
            vectors[row : row + len(array)] = array
            for offset, (row_id, key) in enumerate(zip(ids, part_keys, strict=True)):
                self.index[row_id] = (row + offset, key)
            row += len(array)
        self._vectors = vectors

    def read_index(self) -> dict[Any, str]:
        """Each earlier id's text hash, read without a vector (what ``--update --plan``
        needs to know what an update would send)."""
        index: dict[Any, str] = {}
        for part in self.parts:
            part_keys = part.sidecar()["text_keys"]
            if part_keys:
                index.update(zip(self._read_ids(part), part_keys, strict=True))
        return index

    def _read_ids(self, part: Part) -> list[Any]:
        if self.format == "npy":
            companion = part.path.with_name(part.path.name.replace(".npy", ".ids.json"))
            ids: list[Any] = json.loads(companion.read_text())
            return ids
        (pq,) = require("bulk", "pyarrow.parquet", feature="Parquet output")
        column: list[Any] = pq.read_table(part.path, columns=["id"]).column("id").to_pylist()
        return column

    def _read_part(self, part: Part) -> tuple[list[Any], Any]:
        np = require("bulk", "numpy", feature="mixlayer-embed")[0]
        if self.format == "npy":
            companion = part.path.with_name(part.path.name.replace(".npy", ".ids.json"))
            return json.loads(companion.read_text()), np.load(part.path)
        (pq,) = require("bulk", "pyarrow.parquet", feature="Parquet output")
        table = pq.read_table(part.path, columns=["id", "embedding"])
        column = table.column("embedding")
        width = column.type.list_size
        array = column.combine_chunks().flatten().to_numpy().reshape(-1, width)
        return table.column("id").to_pylist(), array

    def load(self, places: list[int]) -> Any:
        """The earlier vectors at ``places`` (rows of the scratch array), in that order: a new
        array, one row each."""
        np = require("bulk", "numpy", feature="mixlayer-embed")[0]
        return self._vectors[np.asarray(places, dtype=np.intp)]

    def close(self) -> None:
        """Let the scratch file go (the caller deletes it)."""
        self._vectors = None

    def dropped(self, seen: Iterable[Any]) -> list[Any]:
        """The earlier ids the new input no longer has."""
        present = set(seen)
        return [row_id for row_id in self.index if row_id not in present]


def write_dropped(folder: Path, ids: list[Any]) -> None:
    lines = "".join(json.dumps({"id": i}, default=str) + "\n" for i in ids)
    write_atomically(folder / DROPPED, lambda f: f.write(lines.encode("utf-8")))
