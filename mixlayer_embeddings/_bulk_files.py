"""``mixlayer-embed``'s files: reading rows from an input, and committing parts atomically.

A part is written to a temporary name, flushed to disk, then renamed: a part file under its
final name is complete, and its name says which rows it holds (``committed_parts``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._extras import require

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_MISMATCH",
    "EXIT_OK",
    "EXIT_REJECTS",
    "FORMAT_VERSION",
    "MANIFEST",
    "Part",
    "Refused",
    "Row",
    "Writer",
    "committed_parts",
    "fingerprint",
    "read_rows",
    "write_atomically",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REJECTS = 4
EXIT_MISMATCH = 5
EXIT_INTERRUPTED = 130

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
_PART = re.compile(r"^part-(\d{12})-(\d+)\.(parquet|npy)$")


class Refused(Exception):
    """The run cannot start or go on; the message says why and what to do."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# -- input -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    number: int
    id: str
    text: Any


def fingerprint(path: Path) -> dict[str, Any]:
    """Size, modification time and a hash of the first and last MiB: cheap, and any edit,
    truncation or append changes it."""
    stat = path.stat()
    digest = hashlib.sha256()
    with path.open("rb") as f:
        digest.update(f.read(1 << 20))
        if stat.st_size > 1 << 20:
            f.seek(max(1 << 20, stat.st_size - (1 << 20)))
            digest.update(f.read(1 << 20))
    return {
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256_head_tail": digest.hexdigest(),
    }


def read_rows(path: Path, text_field: str, id_field: str | None) -> Iterator[Row]:
    """Every data row of the input, numbered from 0, as a stream."""
    suffix = path.suffix.lower()
    if suffix == ".txt":
        with path.open(encoding="utf-8", newline="") as f:
            for number, line in enumerate(f):
                yield Row(number, str(number), line.rstrip("\r\n"))
    elif suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f):
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise Refused(f"{path}: line {number + 1} is not JSON: {exc}", 1) from None
                yield _row(number, record, text_field, id_field, path)
    elif suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as f:
            for number, record in enumerate(csv.DictReader(f)):
                yield _row(number, record, text_field, id_field, path)
    elif suffix == ".parquet":
        (pq,) = require("bulk", "pyarrow.parquet", feature="Reading Parquet")
        columns = [text_field] + ([id_field] if id_field else [])
        number = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=8192, columns=columns):
            records = batch.to_pydict()
            for i, text in enumerate(records[text_field]):
                row_id = records[id_field][i] if id_field else number
                yield Row(number, str(row_id), text)
                number += 1
    else:
        raise Refused(
            f"{path}: unknown input type {suffix!r}: use .jsonl, .csv, .txt or .parquet", 2
        )


def _row(number: int, record: Any, text_field: str, id_field: str | None, path: Path) -> Row:
    if not isinstance(record, dict) or text_field not in record:
        raise Refused(f"{path}: row {number} has no field {text_field!r} (see --text-field)", 2)
    if id_field is not None and id_field not in record:
        raise Refused(f"{path}: row {number} has no field {id_field!r} (see --id-field)", 2)
    row_id = record[id_field] if id_field is not None else number
    return Row(number, str(row_id), record[text_field])


# -- output ------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(target: Path, write: Any) -> None:
    """``write(tmp_path)``, flushed to disk, then renamed to ``target``."""
    tmp = target.with_name(target.name + ".tmp")
    write(tmp)
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, target)
    _fsync_dir(target.parent)


@dataclass(frozen=True)
class Part:
    first_row: int
    rows: int
    path: Path


def committed_parts(out: Path) -> list[Part]:
    """The parts under their final names, in row order; temporary leftovers are deleted."""
    parts = []
    for entry in out.iterdir():
        if entry.name.endswith(".tmp"):
            entry.unlink()
            continue
        match = _PART.match(entry.name)
        if match:
            parts.append(Part(int(match[1]), int(match[2]), entry))
    parts.sort(key=lambda p: p.first_row)
    expected = 0
    for part in parts:
        if part.first_row != expected:
            raise Refused(
                f"{out}: part files are not contiguous at row {expected} (found "
                f"{part.path.name}); rerun with --restart",
                EXIT_MISMATCH,
            )
        expected += part.rows
    # A rejects file whose part never got its final name is from a batch to be redone.
    named = {p.path.name.rsplit(".", 1)[0] for p in parts}
    for entry in out.glob("part-*.rejects.jsonl"):
        if entry.name.removesuffix(".rejects.jsonl") not in named:
            entry.unlink()
    return parts


class Writer:
    """Commits one batch at a time as a part file (and its rejects), atomically."""

    def __init__(self, out: Path, fmt: str, dimensions: int | None) -> None:
        self.out = out
        self.fmt = fmt
        self.dimensions = dimensions
        self.bytes_written = 0
        if fmt == "parquet":
            self._pa, self._pq = require(
                "bulk", "pyarrow", "pyarrow.parquet", feature="Parquet output"
            )
        self._np = require("bulk", "numpy", feature="mixlayer-embed")[0]

    def commit(
        self,
        first_row: int,
        covered: int,
        rows: list[Row],
        vectors: Any,
        rejects: list[dict[str, Any]],
    ) -> None:
        """Rows ``first_row`` to ``first_row + covered``: ``rows`` with their ``vectors`` (NaN
        rows are refused ones, dropped), and ``rejects`` for the rest."""
        stem = f"part-{first_row:012d}-{covered}"
        if rejects:
            lines = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rejects)
            write_atomically(
                self.out / f"{stem}.rejects.jsonl", lambda p: p.write_text(lines, encoding="utf-8")
            )
        np = self._np
        if len(rows) == 0:
            vectors = np.empty((0, self.dimensions or 0), dtype=np.float32)
        keep = [i for i in range(len(rows)) if not np.isnan(vectors[i, 0])]
        kept_rows = [rows[i] for i in keep]
        kept = np.ascontiguousarray(vectors[keep], dtype=np.float32)
        target = self.out / f"{stem}.{self.fmt}"
        if self.fmt == "parquet":
            pa = self._pa
            width = kept.shape[1] if kept.ndim == 2 and kept.size else (self.dimensions or 0)
            flat = pa.array(kept.reshape(-1), type=pa.float32())
            table = pa.table(
                {
                    "id": pa.array([r.id for r in kept_rows], type=pa.string()),
                    "row": pa.array([r.number for r in kept_rows], type=pa.int64()),
                    "embedding": pa.FixedSizeListArray.from_arrays(flat, width),
                }
            )
            write_atomically(target, lambda p: self._pq.write_table(table, p))
        else:
            numbers = np.array([r.number for r in kept_rows], dtype=np.int64)
            rows_path = self.out / f"{stem}.rows.npy"
            write_atomically(rows_path, lambda p: _save_npy(np, p, numbers))
            write_atomically(target, lambda p: _save_npy(np, p, kept))
        self.bytes_written += target.stat().st_size


def _save_npy(np: Any, path: Path, array: Any) -> None:
    with path.open("wb") as f:
        np.save(f, array)
