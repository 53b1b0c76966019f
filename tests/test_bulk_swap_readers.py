"""Readers during an update's swap (``mixlayer_embeddings._bulk.swap``): pyarrow, pandas, polars
and DuckDB, reading the folder before every step of a swap, and after a kill -9 at any step,
see one generation, never ids of both or an id twice."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

import mixlayer_embeddings._bulk as bulk
from mixlayer_embeddings._bulk import swap as swap_module

ARGS = ["--id-field", "doc_id", "--dimensions", "32", "--batch-size", "8", "--no-progress"]
BEFORE = {i: f"document {i}" for i in range(40)}
AFTER = {
    **{k: v for k, v in BEFORE.items() if k % 5},  # 8 ids gone
    **{k: f"new document {k}" for k in range(40, 50)},
}


class Killed(BaseException):
    """kill -9."""


def ids_by_reader(out: Path) -> dict[str, list[Any]]:
    glob = str(out / "*.parquet")
    query = f"SELECT id FROM read_parquet('{glob}')"  # noqa: S608  # a test's own folder
    return {
        "pyarrow": pq.read_table(out).column("id").to_pylist(),
        "pandas": pd.read_parquet(out)["id"].tolist(),
        "polars": pl.read_parquet(glob)["id"].to_list(),
        "duckdb": [r[0] for r in duckdb.sql(query).fetchall()],
    }


def assert_one_generation(out: Path) -> str:
    """Every reader sees the same ids, once each, all of BEFORE or all of AFTER."""
    seen = ids_by_reader(out)
    generations = set()
    for reader, ids in seen.items():
        assert len(ids) == len(set(ids)), f"{reader} read an id twice"
        generation = {frozenset(BEFORE): "before", frozenset(AFTER): "after"}.get(frozenset(ids))
        assert generation is not None, f"{reader} read a mix of generations"
        generations.add(generation)
    assert len(generations) == 1
    return generations.pop()


def watched_steps(monkeypatch: pytest.MonkeyPatch, on_step: Callable[[str], None]) -> None:
    """Call ``on_step`` before every rename, exchange and deletion the run makes."""
    for module, name in ((os, "rename"), (os, "unlink"), (swap_module, "exchange")):
        real = getattr(module, name)

        def step(*args: Any, _real: Any = real, _name: str = name, **kw: Any) -> Any:
            on_step(_name)
            return _real(*args, **kw)

        monkeypatch.setattr(module, name, step)


def write(path: Path, corpus: dict[int, str]) -> Path:
    lines = "".join(json.dumps({"doc_id": k, "text": v}) + "\n" for k, v in corpus.items())
    path.write_text(lines, encoding="utf-8")
    return path


@pytest.fixture
def updated(env, tmp_path) -> tuple[Path, Path]:
    source = write(tmp_path / "corpus.jsonl", BEFORE)
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), *ARGS]) == 0
    write(source, AFTER)
    return source, out


def test_readers_see_one_generation_before_every_step_of_a_swap(updated) -> None:
    source, out = updated
    seen: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        watched_steps(patch, lambda step: seen.append(assert_one_generation(out)))
        assert bulk.main([str(source), str(out), *ARGS, "--update"]) == 0
    assert len(seen) >= 10  # the swap's steps were watched, not skipped
    assert seen[0] == "before"
    assert assert_one_generation(out) == "after"


STEPS = 18  # a swap of this folder takes 14 steps: the last kills land after it ended


@pytest.mark.parametrize("kill_at", range(1, STEPS + 1))
def test_readers_see_one_generation_after_a_kill_at_any_step(updated, monkeypatch, kill_at) -> None:
    source, out = updated
    count = 0

    def step(name: str) -> None:
        nonlocal count
        count += 1
        if count == kill_at:
            raise Killed

    with pytest.MonkeyPatch.context() as patch:
        watched_steps(patch, step)
        with contextlib.suppress(Killed):
            bulk.main([str(source), str(out), *ARGS, "--update"])
    assert_one_generation(out)
    assert bulk.main([str(source), str(out), *ARGS, "--update"]) == 0
    assert assert_one_generation(out) == "after"
    assert not swap_module.staged_folder(out).exists()
    assert not (out / "_next").exists()
