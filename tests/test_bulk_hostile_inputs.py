"""``mixlayer-embed`` on inputs and folders that crashed it or misled it: every row is written or
listed as a reject with its reason, nothing is written outside the folder, and every reader
opens what is left."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mixlayer_embeddings._bulk as bulk

ARGS = ["--dimensions", "32", "--batch-size", "8", "--no-progress"]


def rejects_of(out: Path) -> list[dict[str, object]]:
    path = out / "_rejects.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_with_every_reader(out: Path) -> dict[str, list[object]]:
    """The ids each of the four readers sees in the folder, sorted."""
    glob = str(out / "*.parquet")
    # The folder is a temporary path of this test, not user input.
    query = f"SELECT id FROM read_parquet('{glob}')"  # noqa: S608
    return {
        "pyarrow": sorted(pq.read_table(out).column("id").to_pylist()),
        "pandas": sorted(pd.read_parquet(out)["id"].tolist()),
        "polars": sorted(pl.read_parquet(glob)["id"].to_list()),
        "duckdb": sorted(r[0] for r in duckdb.sql(query).fetchall()),
    }


def test_a_csv_field_of_5_mb_is_read(env, tmp_path) -> None:
    # csv's 131,072-character field limit crashed every run with a traceback.
    source = tmp_path / "in.csv"
    with source.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text"])
        writer.writerow(["short"])
        writer.writerow(["a" * 5_000_000])
        writer.writerow(["also short"])
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), *ARGS]) == bulk.EXIT_REJECTS
    assert pq.read_table(out).column("row").to_pylist() == [0, 2]
    (reject,) = rejects_of(out)  # read whole, and over the context window
    assert reject["row"] == 1
    assert "context window" in str(reject["error"])


def test_a_jsonl_line_nested_deeper_than_the_parser_goes_is_a_reject(env, tmp_path) -> None:
    source = tmp_path / "in.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    source.write_text(f'{{"text": "a"}}\n{deep}\n{{"text": "b"}}\n', encoding="utf-8")
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), *ARGS]) == bulk.EXIT_REJECTS
    (reject,) = rejects_of(out)
    assert reject["row"] == 1
    assert "nested deeper" in str(reject["error"])
    assert pq.read_table(out).column("row").to_pylist() == [0, 2]


def test_a_list_id_column_is_refused_in_one_line_before_anything_is_written(
    env, tmp_path, capsys
) -> None:
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"key": [[1], [2]], "text": ["a", "b"]}), source)
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), "--id-field", "key", *ARGS, "--update"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "ids must be strings or numbers" in err
    assert not list(out.glob("part-*"))


def test_jsonl_ids_that_are_lists_or_objects_are_rejects(env, tmp_path) -> None:
    source = tmp_path / "in.jsonl"
    records = [{"id": 1, "text": "a"}, {"id": [2], "text": "b"}, {"id": {"x": 3}, "text": "c"}]
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), "--id-field", "id", *ARGS, "--update"]) == 4
    assert [r["row"] for r in rejects_of(out)] == [1, 2]
    assert pq.read_table(out).column("id").to_pylist() == [1]


@pytest.mark.parametrize("fmt", ["parquet", "npy"])
def test_a_duplicate_id_is_a_reject_and_an_unchanged_update_sends_nothing(
    env, tmp_path, fmt
) -> None:
    source = tmp_path / "in.jsonl"
    records = [{"id": 1, "text": "a"}, {"id": 2, "text": "b"}, {"id": 1, "text": "c"}]
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    out = tmp_path / "out"
    args = [str(source), str(out), "--id-field", "id", *ARGS, "--format", fmt]
    assert bulk.main(args) == bulk.EXIT_REJECTS
    (reject,) = rejects_of(out)
    assert reject["row"] == 2
    assert "duplicate id: row 0" in str(reject["error"])
    items = env.state.items
    assert bulk.main([*args, "--update"]) == bulk.EXIT_REJECTS  # it re-embedded (billed) a copy
    assert env.state.items == items


def test_an_emptied_corpus_updates_to_an_empty_folder_every_reader_opens(env, tmp_path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": f"t{i}"}) + "\n" for i in range(5)))
    out = tmp_path / "out"
    args = [str(source), str(out), "--id-field", "id", *ARGS]
    assert bulk.main(args) == 0
    source.write_text("")
    assert bulk.main([*args, "--update"]) == 0  # was exit 5, "other settings (id_type)"
    assert read_with_every_reader(out) == {k: [] for k in ("pyarrow", "pandas", "polars", "duckdb")}
    dropped = [json.loads(line)["id"] for line in (out / "_dropped.jsonl").read_text().splitlines()]
    assert dropped == [0, 1, 2, 3, 4]


def test_an_empty_first_run_leaves_a_folder_every_reader_opens(env, tmp_path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("")
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), *ARGS]) == 0
    assert read_with_every_reader(out) == {k: [] for k in ("pyarrow", "pandas", "polars", "duckdb")}
    source.write_text('{"text": "now there is one"}\n')
    assert bulk.main([str(source), str(out), *ARGS]) == 0  # and it grows like any input
    assert pq.read_table(out).column("row").to_pylist() == [0]


@pytest.mark.parametrize("name", ["_lock", "_manifest.json", ".part-000000000000-3.parquet.tmp"])
def test_a_symlink_under_a_layout_name_is_refused_and_nothing_is_written_through_it(
    env, tmp_path, capsys, name
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": f"t{i}"}) + "\n" for i in range(3)))
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (out / name).symlink_to(victim)
    assert bulk.main([str(source), str(out), *ARGS]) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "precious"


def test_a_temporary_file_planted_as_a_link_mid_run_is_not_written_through(tmp_path) -> None:
    from mixlayer_embeddings._bulk.parts import write_atomically

    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target = tmp_path / "out.json"
    (tmp_path / ".out.json.tmp").symlink_to(victim)
    write_atomically(target, lambda f: f.write(b"ours"))
    assert victim.read_text() == "precious"
    assert target.read_bytes() == b"ours"
    assert not target.is_symlink()


def test_a_text_of_spaces_is_a_text_in_the_core_and_in_mixlayer_embed(env, tmp_path) -> None:
    # One rule everywhere (the reference's): a non-empty string is a text; it is sent.
    from mixlayer_embeddings import MixlayerClient
    from mixlayer_embeddings.emulator import embed_items

    with MixlayerClient() as client:
        (core,) = client.embed(["   "], dimensions=32, input_type="document").embeddings
    source = tmp_path / "in.jsonl"
    source.write_text('{"text": "a"}\n{"text": "   "}\n{"text": ""}\n', encoding="utf-8")
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), *ARGS]) == bulk.EXIT_REJECTS
    table = pq.read_table(out).sort_by("row")
    assert table.column("row").to_pylist() == [0, 1]
    written = table.column("embedding").to_pylist()[1]
    assert written == core == embed_items(["   "], dimensions=32, input_type="document")[0].tolist()
    assert [r["row"] for r in rejects_of(out)] == [2]
