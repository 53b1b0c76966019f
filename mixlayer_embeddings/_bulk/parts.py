"""``mixlayer-embed``'s output folder: a Parquet dataset, plus bookkeeping that readers skip.

    OUT/part-<first row>-<rows>.parquet        id (the input's type), row, embedding
    OUT/part-<first row>-<rows>.npy            --format npy: the vectors; with .rows.npy (row
                                               numbers) and .ids.json (ids, JSON-typed)
    OUT/_part-<first row>-<rows>.json          the rows' digest and the part's rejects
    OUT/_manifest.json                         settings, then the run's summary and generation
    OUT/_rejects.jsonl                         every rejected row, when the run completes
    OUT/_dropped.jsonl                         --update: the ids the new input no longer has
    OUT/_lock                                  held (flock) by the run writing here; its pid
    OUT/_discarding                            a discard under way (finished by the next run)
    OUT/.<name>.tmp                            a file being written
    OUT/_next/                                 --update: the next generation, being built (with
                                               _carry.npy, the earlier vectors, while it runs)
    .OUT.mixlayer-swap/                        beside OUT: a generation being swapped (``swap``)

pyarrow, pandas, polars and DuckDB skip names starting with ``_`` or ``.``, so the folder
reads as one table. A file is written under its temporary name, flushed, then renamed: a part
under its final name is complete, and its name says which rows it holds. The tool deletes
only names this layout defines, and only files; it creates none through a symbolic link.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

from .._exceptions import ResponseValidationError
from .._extras import require
from .rows import Refused, Row, text_key

__all__ = [
    "EXIT_BUSY",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_MISMATCH",
    "EXIT_OK",
    "EXIT_REJECTS",
    "FORMAT_VERSION",
    "LOCK",
    "MANIFEST",
    "REJECTS",
    "Part",
    "Writer",
    "changed_settings",
    "clear_leftovers",
    "committed_parts",
    "discard_output",
    "finish_discard",
    "is_layout_name",
    "is_ours",
    "lock_output",
    "vector_width",
    "write_atomically",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REJECTS = 4
EXIT_MISMATCH = 5
EXIT_BUSY = 6
EXIT_INTERRUPTED = 130

MANIFEST = "_manifest.json"
REJECTS = "_rejects.jsonl"
DISCARDING = "_discarding"
LOCK = "_lock"
FORMAT_VERSION = 2
_PART = re.compile(r"^part-(\d{12})-(\d+)\.(parquet|npy)$")
_COMPANION = re.compile(r"^part-(\d{12}-\d+)\.(rows\.npy|ids\.json)$")
_SIDECAR = re.compile(r"^_part-(\d{12}-\d+)\.json$")
_OURS = re.compile(
    r"^(part-\d{12}-\d+\.(parquet|npy|rows\.npy|ids\.json)|_part-\d{12}-\d+\.json"
    r"|_manifest\.json|_rejects\.jsonl|_dropped\.jsonl|_carry\.npy|_discarding"
    # the names of format 1, so --restart clears an older tool's output too
    r"|manifest\.json|rejects\.jsonl|part-\d{12}-\d+\.rejects\.jsonl)$"
)
_TEMPORARY = re.compile(r"^\.(.+)\.tmp$")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


#: Flags for a file this tool creates: never through a symbolic link, never an existing file
#: (in a shared folder, a link planted under our name would send our bytes elsewhere).
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def write_atomically(target: Path, write: Callable[[BinaryIO], object]) -> None:
    """``write(file)`` into a new temporary file, flushed to disk, then renamed to ``target``
    (a rename replaces a link under that name; it never writes through it)."""
    tmp = target.with_name(f".{target.name}.tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()  # a leftover, or a link: removing a link leaves its target alone
    with os.fdopen(os.open(tmp, _CREATE, 0o644), "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def changed_settings(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The settings a folder's vectors were made with that differ from this run's."""
    return sorted(k for k in {*before, *now} if before.get(k) != now.get(k))


def lock_output(out: Path) -> IO[str]:
    """Hold ``OUT/_lock`` for this process (released by the system when it ends, whatever the
    way); refuse, naming the holder's pid, when another run holds it."""
    out.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(out / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:  # ELOOP: a link under the lock's name
        raise Refused(
            f"{out / LOCK} cannot be opened as the run's lock ({exc.strerror})", 2
        ) from None
    handle = os.fdopen(fd, "a+", encoding="utf-8")
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks; one run at a time
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise Refused(
            f"another mixlayer-embed (pid {holder}) is writing to {out}: wait for it to end, "
            "or use another output directory",
            EXIT_BUSY,
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def is_layout_name(name: str) -> bool:
    """Whether this layout defines ``name`` (a temporary name of one included)."""
    temporary = _TEMPORARY.match(name)
    return name == LOCK or bool(_OURS.match(temporary[1] if temporary else name))


def is_ours(entry: Path) -> bool:
    """A file (not a link) under a name of this layout: what the tool may delete."""
    return (
        entry.is_file()
        and not entry.is_symlink()
        and is_layout_name(entry.name)
        and (entry.name != LOCK)
    )


def discard_output(out: Path) -> None:
    """Delete this layout's files (and an older format's), nothing else: ``--restart``, and a
    stale folder the state machine starts again. A ``_discarding`` mark is written first and
    deleted last, so a discard cut short at any file is finished by the next run, whatever
    command it is (``finish_discard``); the manifest goes first, so no run resumes meanwhile."""
    if not out.is_dir():
        return
    mark = out / DISCARDING
    write_atomically(mark, lambda f: f.write(b"discarding\n"))
    manifest = out / MANIFEST
    if is_ours(manifest):
        manifest.unlink()
    for entry in out.iterdir():
        if is_ours(entry) and entry.name != DISCARDING:
            entry.unlink()
    mark.unlink()


def finish_discard(out: Path) -> None:
    """Finish a discard a killed run began (its mark is there), or do nothing."""
    if is_ours(out / DISCARDING):
        discard_output(out)


@dataclass(frozen=True)
class Part:
    first_row: int
    rows: int
    path: Path

    @property
    def stem(self) -> str:
        return f"{self.first_row:012d}-{self.rows}"

    def sidecar(self) -> dict[str, Any]:
        path = self.path.with_name(f"_part-{self.stem}.json")
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded


def vector_width(parts: list[Part]) -> int | None:
    """The width of the vectors already written (the first part holding any), or None."""
    for part in parts:
        if part.path.suffix == ".npy":
            np = require("bulk", "numpy", feature="mixlayer-embed")[0]
            shape = np.load(part.path, mmap_mode="r").shape
            if shape[0]:
                return int(shape[1])
        else:
            (pq,) = require("bulk", "pyarrow.parquet", feature="Parquet output")
            metadata = pq.read_metadata(part.path)
            if metadata.num_rows:
                size: int = metadata.schema.to_arrow_schema().field("embedding").type.list_size
                return size
    return None


def committed_parts(out: Path) -> list[Part]:
    """The parts under their final names, in row order (reads only)."""
    parts = []
    for entry in out.iterdir():
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
    return parts


def clear_leftovers(out: Path, parts: list[Part]) -> None:
    """Delete what an interrupted run left half-done: its temporary files, and the companions
    of a part that never got its final name (that batch is redone)."""
    named = {p.stem for p in parts}
    for entry in out.iterdir():
        temporary = _TEMPORARY.match(entry.name)
        companion = _SIDECAR.match(entry.name) or _COMPANION.match(entry.name)
        if (temporary and is_ours(entry)) or (
            companion and companion[1] not in named and is_ours(entry)
        ):
            entry.unlink()


class Writer:
    """Commits one batch at a time as a part file, its sidecar first, atomically."""

    def __init__(self, out: Path, fmt: str, width: int | None, id_type: str) -> None:
        self.out = out
        self.fmt = fmt
        #: The vectors' width: --dimensions, else learned from the first vectors.
        self.width = width
        self._np = require("bulk", "numpy", feature="mixlayer-embed")[0]
        if fmt == "parquet":
            self._pa, self._pq = require(
                "bulk", "pyarrow", "pyarrow.parquet", feature="Parquet output"
            )
            self._id_type = _arrow_type(self._pa, id_type)

    def commit(
        self,
        first_row: int,
        covered: int,
        kept_rows: list[Row],
        kept: Any,
        rejects: list[dict[str, Any]],
        digest: str,
        fallback_width: int,
    ) -> Part:
        """Rows ``first_row`` to ``first_row + covered``: ``kept_rows`` with their vectors
        (``kept``, one row each), and ``rejects`` for the rest. ``fallback_width``: the width
        of a part with no vector when none was seen yet (the model's own size)."""
        np = self._np
        stem = f"{first_row:012d}-{covered}"
        if len(kept_rows) and self.width is None:
            self.width = int(kept.shape[1])
        width = self.width or fallback_width
        if kept.shape != (len(kept_rows), width):
            # Never reshaped: a vector of another width, or one row too many or few, would
            # put vectors on rows they do not answer.
            raise ResponseValidationError(
                f"rows {first_row} to {first_row + covered - 1}: {kept.shape[0]} vectors of "
                f"length {kept.shape[1]} for {len(kept_rows)} rows of vectors of length "
                f"{width}; nothing of them is written"
            )
        kept = np.ascontiguousarray(kept, dtype=np.float32)
        sidecar = {
            "rows_sha256": digest,
            "rejects": rejects,
            # What --update compares: each kept row's id and a hash of its text.
            "text_keys": [text_key(r.text) for r in kept_rows],
        }
        write_atomically(
            self.out / f"_part-{stem}.json",
            lambda f: f.write(json.dumps(sidecar, ensure_ascii=True).encode("ascii")),
        )
        target = self.out / f"part-{stem}.{self.fmt}"
        if self.fmt == "parquet":
            pa = self._pa
            flat = pa.array(kept.reshape(-1), type=pa.float32())
            table = pa.table(
                {
                    "id": pa.array([r.id for r in kept_rows], type=self._id_type),
                    "row": pa.array([r.number for r in kept_rows], type=pa.int64()),
                    "embedding": pa.FixedSizeListArray.from_arrays(flat, width),
                }
            )
            write_atomically(target, lambda f: self._pq.write_table(table, f))
        else:
            numbers = np.array([r.number for r in kept_rows], dtype=np.int64)
            ids = json.dumps([r.id for r in kept_rows], default=str)
            write_atomically(self.out / f"part-{stem}.rows.npy", lambda f: np.save(f, numbers))
            write_atomically(
                self.out / f"part-{stem}.ids.json", lambda f: f.write(ids.encode("utf-8"))
            )
            write_atomically(target, lambda f: np.save(f, kept))
        return Part(first_row, covered, target)


def _arrow_type(pa: Any, name: str) -> Any:
    simple = {"int64": pa.int64(), "string": pa.string(), "float64": pa.float64()}
    if name in simple:
        return simple[name]
    with contextlib.suppress(ValueError, KeyError):
        return pa.type_for_alias(name)
    return None  # inferred from the values (a Parquet input's rarer column types)
