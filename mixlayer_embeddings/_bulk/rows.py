"""``mixlayer-embed``'s input: rows read as a stream, each either sendable or a reject.

The rule: a bad row (no text field, a text that is not a string, empty, not valid Unicode, a
line that is not JSON, an id of the wrong type) becomes a reject with its reason, and the run
goes on; only a file that cannot be read as asked (unknown type, a missing column, no such
file) stops it.

Every row also feeds a digest of the rows' ids and texts (``RowDigest``): a resumed run checks
each written part against the rows it reads again, so the fingerprint is the content itself
(a ``touch`` or a copy still resumes; an edit of the same size is refused), computed as the
input is read.
"""

from __future__ import annotations

import csv
import hashlib
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .._extras import require
from .._validation import is_utf8, problem_of

__all__ = [
    "ID_TYPES",
    "Refused",
    "Row",
    "RowDigest",
    "count_rows",
    "id_problem",
    "id_type_of",
    "read_rows",
    "refuse_repeated_ids",
    "text_key",
]

#: The id column's type in Parquet output, by name (recorded in the manifest).
ID_TYPES = ("int64", "string", "float64")


class Refused(Exception):
    """The run cannot start or go on; the message says why and what to do."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Row:
    """One input row. ``text`` is what the row holds (the raw line when it is not JSON);
    ``problem`` says why it cannot be sent, or is None."""

    number: int
    id: Any
    text: Any
    problem: str | None = None


class RowDigest:
    """A running SHA-256 of rows' ids and texts: what a written part was made from."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def add(self, row: Row) -> None:
        # ensure_ascii: a lone surrogate is written as an escape, not refused by the encoder.
        self._hash.update(json.dumps([row.id, row.text], default=str).encode("ascii"))
        self._hash.update(b"\n")

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def text_key(text: str) -> str:
    """A short hash of one text: what ``--update`` compares to know a row's text changed."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def id_type_of(path: Path, id_field: str | None) -> str | None:
    """The id column's type for this input: the Parquet column's, the first JSON id's that
    is a string or a number (integers stay integers), text for CSV (a CSV field has no type),
    the row number (an integer) without ``--id-field``; None when no row holds an id to tell
    (an empty input: any earlier output's type fits it). A Parquet id column whose values
    cannot be ids (lists, structs, maps) refuses the run."""
    suffix = path.suffix.lower()
    if id_field is None:
        return "int64"
    if suffix == ".csv":
        return "string"
    if suffix == ".parquet":
        (pq,) = require("bulk", "pyarrow.parquet", feature="Reading Parquet")
        schema = pq.ParquetFile(path).schema_arrow
        _check_columns(path, schema.names, None, id_field)
        kind = schema.field(id_field).type
        if getattr(kind, "num_fields", 0) or "list" in str(kind) or "map" in str(kind):
            raise Refused(
                f"{path}: the --id-field column {id_field!r} holds {kind} values; ids must be "
                "strings or numbers",
                2,
            )
        return str(kind)
    if suffix == ".jsonl":
        with path.open(encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                try:
                    value = json.loads(line).get(id_field)
                except (ValueError, AttributeError, RecursionError):
                    continue
                if isinstance(value, bool) or not isinstance(value, int | float | str):
                    continue
                if isinstance(value, int):
                    return "int64"
                if isinstance(value, float):
                    return "float64"
                return "string"
    return None


#: Whether an id fits the file's id type (a type not listed here takes any id: a Parquet
#: input's rarer column types, whose values come from that very column).
_ID_FITS: dict[str, Callable[[Any], bool]] = {
    "int64": lambda v: type(v) is int and -(2**63) <= v < 2**63,
    "float64": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str) and is_utf8(v),
}


def id_problem(value: Any, id_type: str) -> str | None:
    """Why ``value`` cannot be a row's id (null, not a string or a number, not of the file's id
    type), or None. Every id names one row: a null one names none, and an update could never
    match it again."""
    if value is None:
        return "the id is null: every row needs an id (see --id-field)"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        shown = json.dumps(value, default=str)[:40]
        return f"the id {shown} is not a string or a number"
    fits = _ID_FITS.get(id_type)
    if fits is None or fits(value):
        return None
    return f"the id {json.dumps(value, default=str)[:40]} is not of this file's id type ({id_type})"


def _allow_long_csv_fields() -> None:
    """csv's default field limit is 131,072 characters, an ordinary long document."""
    limit = sys.maxsize
    while True:
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:  # pragma: no cover - platforms whose C long is 32 bits
            limit //= 2


def read_rows(path: Path, text_field: str, id_field: str | None, id_type: str) -> Iterator[Row]:
    """Every data row of the input, numbered from 0, as a stream."""
    suffix = path.suffix.lower()
    if suffix == ".txt":
        # surrogateescape: bytes that are not UTF-8 make that row a reject, not a crash.
        with path.open(encoding="utf-8", errors="surrogateescape", newline="") as f:
            for number, line in enumerate(f):
                text = line.rstrip("\r\n")
                yield Row(number, number, text, problem_of(text))
    elif suffix == ".jsonl":
        with path.open(encoding="utf-8", errors="surrogateescape") as f:
            for number, line in enumerate(f):
                if not line.strip():
                    yield Row(number, None, "", "empty line")
                    continue
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError) as exc:
                    text = line.rstrip("\r\n")
                    why = (
                        "nested deeper than the JSON parser goes"
                        if isinstance(exc, RecursionError)
                        else str(exc)
                    )
                    yield Row(number, None, text, f"line {number + 1} is not JSON: {why}")
                    continue
                yield _row(number, record, text_field, id_field, id_type)
    elif suffix == ".csv":
        _allow_long_csv_fields()
        with path.open(encoding="utf-8", errors="surrogateescape", newline="") as f:
            reader = csv.DictReader(f)
            _check_columns(path, reader.fieldnames or [], text_field, id_field)
            for number, record in enumerate(reader):
                yield _row(number, record, text_field, id_field, id_type)
    elif suffix == ".parquet":
        (pq,) = require("bulk", "pyarrow.parquet", feature="Reading Parquet")
        source = pq.ParquetFile(path)
        _check_columns(path, source.schema_arrow.names, text_field, id_field)
        columns = [text_field] + ([id_field] if id_field else [])
        number = 0
        for batch in source.iter_batches(batch_size=8192, columns=columns):
            records = batch.to_pydict()
            for i, text in enumerate(records[text_field]):
                row_id = records[id_field][i] if id_field else number
                problem = id_problem(row_id, id_type) if id_field else None
                yield Row(number, row_id, text, problem or problem_of(text))
                number += 1
    else:
        raise Refused(
            f"{path}: unknown input type {suffix!r}: use .jsonl, .csv, .txt or .parquet", 2
        )


def _check_columns(
    path: Path, names: Sequence[str], text_field: str | None, id_field: str | None
) -> None:
    for field, flag in ((text_field, "--text-field"), (id_field, "--id-field")):
        if field is not None and field not in names:
            raise Refused(
                f"{path} has no column {field!r} (see {flag}); its columns are: "
                + ", ".join(repr(n) for n in names),
                2,
            )


def _row(number: int, record: Any, text_field: str, id_field: str | None, id_type: str) -> Row:
    if not isinstance(record, dict):
        kind = type(record).__name__
        return Row(number, None, record, f"the row is a JSON {kind}, not an object")
    row_id = record.get(id_field) if id_field is not None else number
    if id_field is not None and id_field not in record:
        return Row(number, None, record.get(text_field), f"no field {id_field!r} (see --id-field)")
    if text_field not in record:
        return Row(number, row_id, None, f"no field {text_field!r} (see --text-field)")
    text = record[text_field]
    problem = (id_problem(row_id, id_type) if id_field is not None else None) or problem_of(text)
    return Row(number, row_id, text, problem)


def refuse_repeated_ids(rows: Iterable[Row], first_at: dict[Any, int] | None) -> Iterator[Row]:
    """``rows``, a row whose id an earlier row holds made a reject naming that row: an id names
    one row (an update could match only one of them, and re-embed the other on every run).
    ``first_at`` (id -> the row that first held it) is filled on the way; None when the rows'
    ids are their numbers, which cannot repeat."""
    for row in rows:
        if first_at is not None and row.problem is None:
            first = first_at.setdefault(row.id, row.number)
            if first != row.number:
                row = replace(row, problem=f"duplicate id: row {first} has the same id")
        yield row


def count_rows(path: Path) -> int | None:
    """The input's rows, for the progress bar's total, when cheap to know."""
    suffix = path.suffix.lower()
    if path.stat().st_size >= 2 << 30:
        return None
    if suffix in (".txt", ".jsonl"):
        with path.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    if suffix == ".csv":
        # Quoted fields may hold newlines: count records, not lines (the C reader is fast).
        _allow_long_csv_fields()
        with path.open(encoding="utf-8", errors="surrogateescape", newline="") as f:
            return max(0, sum(1 for _ in csv.reader(f)) - 1)
    if suffix == ".parquet":
        (pq,) = require("bulk", "pyarrow.parquet", feature="Reading Parquet")
        return int(pq.ParquetFile(path).metadata.num_rows)
    return None
