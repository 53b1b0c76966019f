"""``mixlayer-embed`` as a data engineer meets it: the output folder is a table every reader
opens in one line, bad rows are rejects, ids keep their type, one run per folder, and the tool
touches only its own files."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mixlayer_embeddings._bulk as bulk
from mixlayer_embeddings.emulator import embed_items

ARGS = ["--dimensions", "32", "--batch-size", "4", "--no-progress"]


def jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def rejects_of(out: Path) -> dict[int, str]:
    lines = (out / "_rejects.jsonl").read_text(encoding="utf-8").splitlines()
    return {json.loads(line)["row"]: json.loads(line)["error"] for line in lines}


def test_every_reader_opens_the_output_folder_in_one_line(env, tmp_path) -> None:
    records = [{"id": i, "text": f"text {i}"} for i in range(10)]
    records[3]["text"] = ""  # a reject, so the folder has a rejects file too
    source = jsonl(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), "--id-field", "id", *ARGS]) == bulk.EXIT_REJECTS
    assert (out / "_manifest.json").exists() and (out / "_rejects.jsonl").exists()

    import duckdb
    import pandas as pd
    import polars as pl

    # The README's lines, as written there.
    df = pd.read_parquet(out)
    table = pq.read_table(out)
    frame = pl.read_parquet(out / "*.parquet")
    # The folder is a temporary path of this test, not user input.
    query = f"SELECT id, embedding FROM '{out}/*.parquet' ORDER BY id"  # noqa: S608
    rows = duckdb.sql(query).fetchall()

    assert sorted(df["id"]) == sorted(table.column("id").to_pylist()) == [0, 1, 2, 4, 5, 6, 7, 8, 9]
    assert sorted(frame["id"].to_list()) == [r[0] for r in rows] == sorted(df["id"])
    assert table.schema.field("id").type == pa.int64()
    assert len(rows[0][1]) == 32


def test_bad_rows_are_rejects_with_their_reason_and_the_run_goes_on(env, tmp_path) -> None:
    lines = [
        json.dumps({"id": "a", "text": "fine"}),
        json.dumps({"id": "b"}),  # no text field
        json.dumps({"id": "c", "text": 42}),
        json.dumps({"id": "d", "text": ["x"]}),
        json.dumps({"id": "e", "text": "\ud800 lone surrogate"}),
        "{not json",
        json.dumps({"id": "g", "text": "also fine"}),
        json.dumps({"id": 7, "text": "an id of another type"}),
        "",  # trailing blank lines
        "",
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), "--id-field", "id", *ARGS]) == bulk.EXIT_REJECTS
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == ["a", "g"]
    expected = embed_items(["fine", "also fine"], dimensions=32, input_type="document")
    assert np.array_equal(
        np.stack(table.column("embedding").to_numpy(zero_copy_only=False)), expected
    )
    why = rejects_of(out)
    assert sorted(why) == [1, 2, 3, 4, 5, 7, 8, 9]
    assert why[1] == "no field 'text' (see --text-field)"
    assert why[2].startswith("the text is int 42, not a string")
    assert why[3].startswith("the text is list")
    assert why[4].startswith("the text is not valid Unicode")
    assert why[5].startswith("line 6 is not JSON")
    assert why[7] == "the id 7 is not of this file's id type (string)"
    assert why[8] == why[9] == "empty line"


def test_an_integer_id_beyond_int64_is_a_reject_not_a_crash(env, tmp_path) -> None:
    records = [{"id": 1, "text": "a"}, {"id": 2**64, "text": "b"}, {"id": 3, "text": "c"}]
    source = jsonl(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), "--id-field", "id", *ARGS]) == bulk.EXIT_REJECTS
    assert pq.read_table(out).column("id").to_pylist() == [1, 3]
    assert rejects_of(out)[1] == f"the id {2**64} is not of this file's id type (int64)"


def test_an_id_that_is_not_valid_unicode_is_a_reject_not_a_crash(env, tmp_path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"id,text\nok,a\nbad\xff,b\n")  # bytes that are not UTF-8
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), "--id-field", "id", *ARGS]) == bulk.EXIT_REJECTS
    assert pq.read_table(out).column("id").to_pylist() == ["ok"]
    assert "is not of this file's id type (string)" in rejects_of(out)[1]


def test_a_file_of_only_empty_rows_without_dimensions_completes(env, tmp_path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("first\n\n\n  \n", encoding="utf-8")
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), "--batch-size", "1", "--no-progress"]) == 4
    assert sorted(rejects_of(out)) == [1, 2]  # a line of spaces is a text (the one rule)
    assert pq.read_table(out).column("id").to_pylist() == [0, 3]
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n", encoding="utf-8")
    assert bulk.main([str(blank), str(tmp_path / "o2"), "--no-progress"]) == 4


def test_a_parquet_input_without_the_column_names_the_columns_it_has(env, tmp_path, capsys) -> None:
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"doc": ["a"], "body": ["b"]}), source)
    assert bulk.main([str(source), str(tmp_path / "out"), *ARGS]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"mixlayer-embed: {source} has no column 'text' (see --text-field);")
    assert "its columns are: 'doc', 'body'" in err and "Traceback" not in err
    argv = [str(source), str(tmp_path / "out"), "--text-field", "body", "--id-field", "key"]
    assert bulk.main([*argv, *ARGS]) == 2  # the id column, named the same way
    err = capsys.readouterr().err
    assert err.startswith(f"mixlayer-embed: {source} has no column 'key' (see --id-field);")


def test_ids_keep_their_type_a_null_id_is_a_reject_and_npy_writes_them(env, tmp_path) -> None:
    # A null id names no row: an update could never match it again (it re-embedded, and
    # billed, that row on every run), so it is a reject with its reason.
    records = [{"id": 10, "text": "a"}, {"id": None, "text": "b"}, {"id": 12, "text": "c"}]
    source = jsonl(tmp_path / "in.jsonl", records)
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), "--id-field", "id", *ARGS]) == bulk.EXIT_REJECTS
    table = pq.read_table(out)
    assert table.schema.field("id").type == pa.int64()
    assert table.column("id").to_pylist() == [10, 12]
    (reject,) = [json.loads(line) for line in (out / "_rejects.jsonl").read_text().splitlines()]
    assert (reject["row"], reject["id"]) == (1, None)
    assert "the id is null" in reject["error"]
    npy = tmp_path / "npy"
    args = [str(source), str(npy), "--id-field", "id", "--format", "npy", *ARGS]
    assert bulk.main(args) == bulk.EXIT_REJECTS
    (ids,) = npy.glob("part-*.ids.json")
    assert json.loads(ids.read_text()) == [10, 12]
    parquet = tmp_path / "in.parquet"
    pq.write_table(pa.table({"key": pa.array([3, 1], pa.int32()), "text": ["x", "y"]}), parquet)
    assert bulk.main([str(parquet), str(tmp_path / "p"), "--id-field", "key", *ARGS]) == 0
    assert pq.read_table(tmp_path / "p").schema.field("id").type == pa.int32()


def test_a_second_run_into_the_same_folder_is_refused_naming_the_first(
    env, tmp_path, capsys
) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"text": "a"}])
    from mixlayer_embeddings._bulk.parts import lock_output

    out = tmp_path / "out"
    holder = lock_output(out)  # as another run would hold it
    try:
        assert bulk.main([str(source), str(out), *ARGS]) == bulk.EXIT_BUSY
    finally:
        holder.close()
    import os

    assert (
        f"another mixlayer-embed (pid {os.getpid()}) is writing to {out}" in capsys.readouterr().err
    )
    assert env.state.requests == 0
    assert bulk.main([str(source), str(out), *ARGS]) == 0  # free again once it ended


def test_only_its_own_files_are_ever_deleted(env, tmp_path) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"text": f"t {i}"} for i in range(6)])
    out = tmp_path / "out"
    out.mkdir()
    mine = {"notes.tmp": "x", "part-1-thesis.docx": "y", "readme.txt": "z"}
    for name, content in mine.items():
        (out / name).write_text(content)
    (out / "cache.tmp").mkdir()
    assert bulk.main([str(source), str(out), *ARGS]) == 0
    assert bulk.main([str(source), str(out), *ARGS, "--restart"]) == 0
    for name, content in mine.items():
        assert (out / name).read_text() == content
    assert (out / "cache.tmp").is_dir()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--batch-size", "5000"], "batch_size"),
        (["--max-retries", "-1"], "max_retries"),
        (["--base-url", "http://example.com/v1"], "or pass --allow-insecure-http if"),
    ],
)
def test_bad_arguments_exit_2_and_leave_nothing_behind(
    env, tmp_path, capsys, flags, message
) -> None:
    source = jsonl(tmp_path / "in.jsonl", [{"text": "a"}])
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), *ARGS, *flags]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_help_shows_one_default_per_flag_and_help_for_each() -> None:
    from mixlayer_embeddings._bulk.args import parser

    text = parser().format_help()
    assert "(default: None)" not in text
    for action in parser()._actions:
        assert action.help, action.dest


def test_a_csv_input_gets_a_total(tmp_path) -> None:
    from mixlayer_embeddings._bulk.rows import count_rows

    source = tmp_path / "in.csv"
    source.write_text('id,text\n1,"two\nlines"\n2,plain\n', encoding="utf-8")
    assert count_rows(source) == 2


_SECOND_CTRL_C = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)
import mixlayer_embeddings._bulk as bulk
sys.exit(bulk.main(sys.argv[1:]))
"""


def test_ctrl_c_twice_exits_at_once_without_a_traceback(env, tmp_path) -> None:
    import signal
    import time

    source = jsonl(tmp_path / "in.jsonl", [{"text": f"t {i}"} for i in range(40)])
    env.state.latency_ms = 6000  # requests in flight for 6 s
    argv = [str(source), str(tmp_path / "out"), *ARGS, "--max-concurrency", "2"]
    with subprocess.Popen(  # noqa: S603 - our own interpreter and a fixed script
        [sys.executable, "-c", _SECOND_CTRL_C, *argv],
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            for _ in range(4000):
                if env.state.stats()["requests"]:
                    break
                time.sleep(0.005)
            sent = time.monotonic()
            child.send_signal(signal.SIGINT)
            time.sleep(0.2)
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=60)  # a bound on a hang, not a claim
            exited = time.monotonic()
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == bulk.EXIT_INTERRUPTED
    assert exited - sent < 3.0  # not the 6 s of the requests in flight
    assert "Traceback" not in err
    assert re.search(r"interrupted; \d+ rows are written in .*; run the same command again", err)
