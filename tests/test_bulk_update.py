"""``mixlayer-embed --update``: a changed corpus re-embeds only its new and changed rows,
carries the rest over, drops the ids that are gone, and resumes like any run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import mixlayer_embeddings._bulk as bulk
from mixlayer_embeddings._bulk import swap as swap_module
from mixlayer_embeddings.emulator import embed_items

ARGS = ["--id-field", "doc_id", "--dimensions", "32", "--batch-size", "8", "--no-progress"]


def write(path: Path, corpus: dict[int, str]) -> Path:
    lines = "".join(json.dumps({"doc_id": k, "text": v}) + "\n" for k, v in corpus.items())
    path.write_text(lines, encoding="utf-8")
    return path


def table_of(out: Path) -> tuple[list[int], np.ndarray]:
    table = pq.read_table(out).sort_by("row")
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    return table.column("doc_id" if "doc_id" in table.column_names else "id").to_pylist(), vectors


def changed_corpus() -> tuple[dict[int, str], dict[int, str]]:
    before = {i: f"document {i} about topic {i % 7}" for i in range(100)}
    after = {k: v for k, v in before.items() if k not in (10, 55)}  # two ids gone
    for k in (3, 40, 99):
        after[k] = f"document {k}, rewritten"
    for k in range(100, 104):
        after[k] = f"new document {k}"
    return before, after


def test_an_update_embeds_only_new_and_changed_rows(env, tmp_path, capsys) -> None:
    before, after = changed_corpus()
    source = write(tmp_path / "corpus.jsonl", before)
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), *ARGS]) == 0
    write(source, after)
    items = env.state.items
    assert bulk.main([str(source), str(out), *ARGS, "--update"]) == 0
    assert env.state.items - items == 7  # 3 changed + 4 new, nothing else sent
    ids, vectors = table_of(out)
    assert ids == list(after)  # the new input's rows, in its order; 10 and 55 gone
    assert np.array_equal(vectors, embed_items(list(after.values()), dimensions=32,
                                               input_type="document"))  # fmt: skip
    dropped = [json.loads(line)["id"] for line in (out / "_dropped.jsonl").read_text().splitlines()]
    assert dropped == [10, 55]
    err = capsys.readouterr().err
    assert "update: 95 reused, 7 embedded, 2 dropped" in err
    summary = json.loads((out / "_manifest.json").read_text())["completed"]
    assert (summary["reused"], summary["embedded_this_run"], summary["dropped"]) == (95, 7, 2)
    assert not (out / "_next").exists()
    # And again with nothing changed: nothing sent.
    items = env.state.items
    assert bulk.main([str(source), str(out), *ARGS, "--update"]) == 0
    assert env.state.items == items


class Crash(BaseException):
    """Stands for kill -9."""


real_exchange = swap_module.exchange


def crashing_exchange(*args: object) -> None:
    raise Crash  # the new generation staged, not yet the folder's


@pytest.mark.parametrize("crash_at", ["embedding", "swap"])
def test_an_interrupted_update_resumes(env, tmp_path, monkeypatch, crash_at) -> None:
    before, after = changed_corpus()
    source = write(tmp_path / "corpus.jsonl", before)
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), *ARGS]) == 0
    write(source, after)
    real_replace = os.replace
    calls = 0

    def crashing_replace(src, dst) -> None:
        nonlocal calls
        calls += 1
        into_next = "_next" in str(dst)
        if crash_at == "embedding" and into_next and str(dst).endswith(".parquet") and calls > 6:
            raise Crash
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crashing_replace)
    if crash_at == "swap":
        monkeypatch.setattr(swap_module, "exchange", crashing_exchange)
    with pytest.raises(Crash):
        bulk.main([str(source), str(out), *ARGS, "--update"])
    monkeypatch.setattr(os, "replace", real_replace)
    monkeypatch.setattr(swap_module, "exchange", real_exchange)
    assert bulk.main([str(source), str(out), *ARGS, "--update"]) == 0
    ids, vectors = table_of(out)
    assert ids == list(after)
    assert np.array_equal(vectors, embed_items(list(after.values()), dimensions=32,
                                               input_type="document"))  # fmt: skip
    assert not (out / "_next").exists()


def test_an_update_needs_ids_and_the_same_settings(env, tmp_path, capsys) -> None:
    source = write(tmp_path / "corpus.jsonl", {1: "a", 2: "b"})
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), *ARGS]) == 0
    no_ids = [a for a in ARGS if a not in ("--id-field", "doc_id")]
    assert bulk.main([str(source), str(out), *no_ids, "--update"]) == 2
    assert "--update needs --id-field" in capsys.readouterr().err
    other = [*ARGS[:-4], "64", *ARGS[-3:]]  # --dimensions 64
    assert bulk.main([str(source), str(out), *other, "--update"]) == bulk.EXIT_MISMATCH
    assert "other settings (dimensions)" in capsys.readouterr().err


def test_a_first_update_is_a_first_run(env, tmp_path) -> None:
    source = write(tmp_path / "corpus.jsonl", {1: "a", 2: "b"})
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), *ARGS, "--update"]) == 0  # a scheduled job's 1st
    ids, _ = table_of(out)
    assert ids == [1, 2]


def test_an_update_with_few_changes_keeps_few_rows_in_memory(env, tmp_path, monkeypatch) -> None:
    corpus = {i: f"document {i}" for i in range(30_000)}
    source = write(tmp_path / "corpus.jsonl", corpus)
    out = tmp_path / "out"
    args = [*ARGS[:-3], "--batch-size", "50", "--no-progress"]
    assert bulk.main([str(source), str(out), *args]) == 0
    for k in range(0, 30_000, 5_000):  # 6 changes, 5,000 rows apart
        corpus[k] = f"document {k}, rewritten"
    write(source, corpus)
    seen: list[bulk.Ingest] = []

    class Recorded(bulk.Ingest):
        def __init__(self, *a, **kw) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*a, **kw)
            seen.append(self)

    monkeypatch.setattr(bulk.command, "Ingest", Recorded)
    items = env.state.items
    assert bulk.main([str(source), str(out), *args, "--update"]) == 0
    assert env.state.items - items == 6
    # Without sending the few waiting texts early, all 30,000 rows queued behind the first.
    assert seen[0].peak_queue <= 2 * seen[0].flush_rows + 50  # 400 rows a flush
    ids, vectors = table_of(out)
    assert ids == list(corpus)
    assert np.array_equal(vectors, embed_items(list(corpus.values()), dimensions=32,
                                               input_type="document"))  # fmt: skip
