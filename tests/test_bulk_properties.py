"""Property: whatever the corpus (hostile rows among good ones), the settings, and wherever runs
are killed (embedding, swap, ``--update``, ``--restart``), a final ``--update`` leaves exactly
one vector per current id, each a fresh embedding of its current text, every other row listed
as a reject, and the four readers agreeing."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mixlayer_embeddings._bulk as bulk
from mixlayer_embeddings._bulk import swap as swap_module
from mixlayer_embeddings._bulk.swap import staged_folder
from mixlayer_embeddings.emulator import embed_items

WORDS = ["bread", "yeast", "dough", "neptune", "winds", "rises", "gas", "warm", "cold", "fast"]
LONG = "word " * 40_000  # over the context window: the service refuses it

good_text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join)
#: (kind, value): what a row's text field holds; all but "good" are rejects.
text = st.one_of(
    good_text.map(lambda t: ("good", t)),
    st.sampled_from([("empty", ""), ("number", 5), ("missing", None), ("long", LONG)]),
)
row = st.tuples(st.one_of(st.integers(0, 30), st.none()), text)
corpus = st.lists(row, max_size=25)


class Killed(BaseException):
    """kill -9: not an Exception, so no handler of ours runs."""


@contextlib.contextmanager
def killed_at(step: int | None) -> Iterator[None]:
    """The ``step``-th file put in place, renamed, exchanged or deleted kills the run; None:
    no kill."""
    calls = 0
    targets = [(os, "replace"), (os, "rename"), (os, "unlink"), (swap_module, "exchange")]
    originals = [getattr(module, name) for module, name in targets]

    def killing(real: Any) -> Any:
        def call(*args: Any, **kw: Any) -> Any:
            nonlocal calls
            calls += 1
            if step is not None and calls == step:
                raise Killed
            return real(*args, **kw)

        return call

    for (module, name), real in zip(targets, originals, strict=True):
        setattr(module, name, killing(real))
    try:
        yield
    except Killed:
        pass
    finally:
        for (module, name), real in zip(targets, originals, strict=True):
            setattr(module, name, real)


Rows = list[tuple[int | None, tuple[str, Any]]]


def as_file(rows: Rows, fmt: str) -> Rows:
    """The rows as ``fmt`` can hold them: CSV has no types and no null (an id is a string, a
    missing one empty; a number is text, a missing text empty); a Parquet column has one type
    (a number in the text column is null)."""
    if fmt == "csv":
        return [
            (
                "" if row_id is None else str(row_id),  # type: ignore[misc]
                ("good", "5")
                if kind == "number"
                else ("empty", "")
                if kind == "missing"
                else (kind, value),
            )
            for row_id, (kind, value) in rows
        ]
    if fmt == "parquet":
        return [
            (row_id, ("missing", None) if kind == "number" else (kind, value))
            for row_id, (kind, value) in rows
        ]
    return rows


def write(path: Path, rows: Rows, fmt: str) -> Path:
    target = path.with_suffix(f".{fmt}")
    if fmt == "jsonl":
        lines = []
        for row_id, (kind, value) in rows:
            record: dict[str, Any] = {"doc_id": row_id}
            if kind != "missing":
                record["text"] = value
            lines.append(json.dumps(record) + "\n")
        target.write_text("".join(lines), encoding="utf-8")
    elif fmt == "csv":
        with target.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(["doc_id", "text"])
            out.writerows([row_id, value] for row_id, (_, value) in rows)
    else:
        ids = pa.array([row_id for row_id, _ in rows], type=pa.int64())
        texts = pa.array([value for _, (_, value) in rows], type=pa.string())
        pq.write_table(pa.table({"doc_id": ids, "text": texts}), target)
    return target


def expected(rows: Rows) -> dict[Any, str]:
    """Written from the rule, not from the tool: a row is embedded when its id is not null and
    not held by an earlier row that is not a reject for another reason, and its text is good
    (a long one is refused by the service, after it claimed its id)."""
    claimed: set[Any] = set()
    kept: dict[Any, str] = {}
    for row_id, (kind, value) in rows:
        if row_id is None or kind in ("empty", "number", "missing"):
            continue
        if row_id in claimed:
            continue
        claimed.add(row_id)
        if kind == "good":
            kept[row_id] = value
    return kept


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    first=corpus,
    second=corpus,
    batch_size=st.sampled_from([1, 3, 8]),
    kills=st.lists(st.one_of(st.none(), st.integers(1, 30)), min_size=3, max_size=3),
    restart=st.booleans(),
    fmt=st.sampled_from(["jsonl", "csv", "parquet"]),
)
def test_every_current_id_has_its_own_fresh_vector_after_any_kills(
    env, first, second, batch_size, kills, restart, fmt
) -> None:
    args = ["--id-field", "doc_id", "--dimensions", "32", "--batch-size", str(batch_size)]
    first, second = as_file(first, fmt), as_file(second, fmt)
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / f"corpus.{fmt}"
        out = Path(folder) / "out"
        command = [str(source), str(out), *args, "--no-progress"]
        write(source, first, fmt)
        with killed_at(kills[0]):
            bulk.main(command)
        write(source, second, fmt)
        with killed_at(kills[1]):
            bulk.main([*command, "--update"])
        with killed_at(kills[2]):
            bulk.main([*command, "--update", *(["--restart"] if restart else [])])
        # Whatever was killed where (a discard included), the next --update finishes it.
        assert bulk.main([*command, "--update"]) in (bulk.EXIT_OK, bulk.EXIT_REJECTS)

        want = expected(second)
        table = pq.read_table(out).sort_by("row")
        ids = table.column("id").to_pylist()
        assert ids == list(want)
        if want:
            vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
            fresh = embed_items(list(want.values()), dimensions=32, input_type="document")
            assert np.array_equal(vectors, fresh)
        rejects = out / "_rejects.jsonl"
        rejected = len(rejects.read_text().splitlines()) if rejects.exists() else 0
        assert len(want) + rejected == len(second)  # every row written or a reject
        glob = str(out / "*.parquet")
        query = f"SELECT id FROM read_parquet('{glob}')"  # noqa: S608  # a temporary folder
        seen_by = [
            sorted(ids),
            sorted(pl.read_parquet(glob)["id"].to_list()),
            sorted(r[0] for r in duckdb.sql(query).fetchall()),
        ]
        assert all(s == sorted(want) for s in seen_by)
        assert not (out / "_next").exists()
        assert not staged_folder(out).exists()
