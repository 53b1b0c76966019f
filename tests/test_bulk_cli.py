"""``mixlayer-embed`` at small sizes: formats, rejects, resume after a crash at each stage of
writing a part, refusal of a changed input, and a batch that fails for good."""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mixlayer_embeddings._bulk as bulk
from mixlayer_embeddings.emulator import embed_items

POISON = "x " * 40_000  # longer than the emulator's context window


def texts(n: int) -> list[str]:
    return [f"row {i} about topic {i % 13}" for i in range(n)]


def write_jsonl(path: Path, bodies: list[str]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i, body in enumerate(bodies):
            f.write(json.dumps({"id": f"doc-{i}", "body": body}) + "\n")
    return path


def read_parquet(out: Path) -> tuple[list[str], list[int], np.ndarray]:
    table = pa.concat_tables(pq.read_table(p) for p in sorted(out.glob("part-*.parquet")))
    width = table.schema.field("embedding").type.list_size
    vectors = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, width)
    return table.column("id").to_pylist(), table.column("row").to_pylist(), vectors


ARGS = ["--text-field", "body", "--id-field", "id", "--dimensions", "64", "--batch-size", "10"]


def test_jsonl_to_parquet_with_rejects(env, tmp_path, capsys) -> None:
    bodies = texts(95)
    bodies[4] = ""
    bodies[57] = POISON
    source = write_jsonl(tmp_path / "in.jsonl", bodies)
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), *ARGS, "--no-progress"]) == bulk.EXIT_REJECTS
    ids, rows, vectors = read_parquet(out)
    good = [i for i in range(95) if i not in (4, 57)]
    assert rows == good and ids == [f"doc-{i}" for i in good]
    expected = embed_items([bodies[i] for i in good], dimensions=64, input_type="document")
    assert np.array_equal(vectors, expected)
    rejects = [json.loads(line) for line in (out / "_rejects.jsonl").read_text().splitlines()]
    assert [(r["row"], r["id"]) for r in rejects] == [(4, "doc-4"), (57, "doc-57")]
    assert rejects[1]["error"].startswith("invalid_input: ")
    summary = json.loads((out / "_manifest.json").read_text())["completed"]
    assert summary["rows"] == 95 and summary["rejected"] == 2
    assert "95 rows in" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".parquet"])
def test_other_inputs_and_npy_output(env, tmp_path, suffix) -> None:
    bodies = texts(23)
    source = tmp_path / f"in{suffix}"
    if suffix == ".txt":
        source.write_text("\n".join(bodies) + "\n")
    elif suffix == ".csv":
        with source.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "body"])
            writer.writerows([f"doc-{i}", b] for i, b in enumerate(bodies))
    else:
        pq.write_table(pa.table({"id": [f"doc-{i}" for i in range(23)], "body": bodies}), source)
    out = tmp_path / "out"
    extra = [] if suffix == ".txt" else ["--text-field", "body", "--id-field", "id"]
    argv = [str(source), str(out), *extra, "--dimensions", "64", "--batch-size", "10"]
    assert bulk.main([*argv, "--format", "npy", "--no-progress"]) == 0
    parts = sorted(out.glob("part-*[0-9].npy"))
    vectors = np.concatenate([np.load(p) for p in parts])
    rows = np.concatenate([np.load(p.with_name(p.stem + ".rows.npy")) for p in parts])
    assert rows.tolist() == list(range(23))
    assert np.array_equal(vectors, embed_items(bodies, dimensions=64, input_type="document"))


class Crash(BaseException):
    """Stands for kill -9: nothing after it runs, no handler sees it."""


@pytest.mark.parametrize(
    ("stage", "when"),
    [
        ("before a part's rename", lambda name: name.endswith(".parquet.tmp")),
        ("after its rejects, before the part", lambda name: name.endswith(".parquet.tmp")),
        ("right after a part's rename", None),
    ],
)
def test_resume_after_a_crash_at_each_stage(env, tmp_path, monkeypatch, stage, when) -> None:
    bodies = texts(100)
    bodies[33] = POISON  # its batch writes a rejects file first
    source = write_jsonl(tmp_path / "in.jsonl", bodies)
    out = tmp_path / "out"
    argv = [str(source), str(out), *ARGS, "--no-progress", "--max-concurrency", "2"]
    real_replace = os.replace
    parts_done = 0

    def crashing_replace(src, dst) -> None:
        nonlocal parts_done
        name = Path(src).name
        is_part = name.endswith(".parquet.tmp")
        if stage.startswith("after its rejects") and is_part and parts_done == 3:
            raise Crash  # the batch of row 33: its rejects file is in place, its part is not
        if stage.startswith("before") and is_part and parts_done == 5:
            raise Crash
        real_replace(src, dst)
        if is_part:
            parts_done += 1
            if stage.startswith("right after") and parts_done == 5:
                raise Crash

    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(Crash):
        bulk.main(argv)
    monkeypatch.setattr(os, "replace", real_replace)
    time.sleep(0.3)  # the crashed run's requests still in flight land before we count
    committed = sum(p.rows for p in bulk.committed_parts(out))
    # Parts of 10 rows, except around the poison row: larger than a request's token budget,
    # it goes alone, and the batch before it closes early.
    assert 30 <= committed <= 50
    items_before = env.state.items
    assert bulk.main(argv) == bulk.EXIT_REJECTS
    # No request for a row already written: the rerun sent only the rows after them (plus
    # the bisection of the poison row's batch when it was not written yet).
    resent = env.state.items - items_before
    remaining = 100 - committed
    assert remaining - 1 <= resent <= remaining + (20 if committed < 40 else 0)
    _, rows, vectors = read_parquet(out)
    good = [i for i in range(100) if i != 33]
    assert rows == good  # no duplicate, no gap
    assert np.array_equal(
        vectors, embed_items([bodies[i] for i in good], dimensions=64, input_type="document")
    )
    rejects = (out / "_rejects.jsonl").read_text().splitlines()
    assert [json.loads(line)["row"] for line in rejects] == [33]
    assert not list(out.glob("*.tmp"))


def test_a_changed_input_is_refused_unless_restart(env, tmp_path, capsys) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", texts(30))
    out = tmp_path / "out"
    argv = [str(source), str(out), *ARGS, "--no-progress"]
    assert bulk.main(argv) == 0
    # One text edited in place: same size, and the modification time put back.
    before = source.stat()
    source.write_text(source.read_text().replace("row 17 about", "row 17 abuot"))
    os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert source.stat().st_size == before.st_size
    assert bulk.main(argv) == bulk.EXIT_MISMATCH
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("mixlayer-embed: the input changed: rows 10 to 19 differ from those ")
    assert err.endswith(
        "Use --update (with --id-field) to embed only what changed, --restart to "
        "embed it all again, or another output directory."
    )
    changed = [*argv[:-1], "--dimensions", "128", "--no-progress"]
    assert bulk.main([str(source), str(out), "--text-field", "body", "--restart", "--no-progress",
                      "--dimensions", "128"]) == 0  # fmt: skip
    assert bulk.main(changed) == bulk.EXIT_MISMATCH
    assert "other settings (id_field, id_type)" in capsys.readouterr().err
    _, rows, vectors = read_parquet(out)
    assert len(rows) == 30 and vectors.shape == (30, 128)


def test_a_touched_copied_or_appended_input_resumes_without_resending(env, tmp_path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", texts(30))
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), *ARGS, "--no-progress"]) == 0
    sent = env.state.items
    os.utime(source)  # touch
    assert bulk.main([str(source), str(out), *ARGS, "--no-progress"]) == 0
    copy = tmp_path / "downloaded-again.jsonl"
    copy.write_bytes(source.read_bytes())
    assert bulk.main([str(copy), str(out), *ARGS, "--no-progress"]) == 0
    assert env.state.items == sent  # the written rows were checked, not sent again
    write_jsonl(copy, [*texts(30), "one more"])
    assert bulk.main([str(copy), str(out), *ARGS, "--no-progress"]) == 0
    assert env.state.items == sent + 1  # only the appended row
    _, rows, _ = read_parquet(out)
    assert rows == list(range(31))


def test_a_run_on_another_service_is_refused(env, tmp_path, monkeypatch, capsys) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", texts(30))
    out = tmp_path / "out"
    assert bulk.main([str(source), str(out), *ARGS, "--no-progress"]) == 0
    other = env.base_url.replace("127.0.0.1", "localhost")
    argv = [str(source), str(out), *ARGS, "--no-progress", "--base-url", other]
    assert bulk.main(argv) == bulk.EXIT_MISMATCH
    assert "other settings (base_url)" in capsys.readouterr().err


def test_a_batch_that_fails_for_good_then_a_rerun(env, tmp_path, capsys) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", texts(50))
    out = tmp_path / "out"
    argv = [str(source), str(out), *ARGS, "--no-progress", "--max-concurrency", "1"]
    env.script([{"latency_ms": 0}, {"latency_ms": 0}, {"status": 503}, {"status": 503}])
    assert bulk.main([*argv, "--max-retries", "1"]) == bulk.EXIT_FAILED
    err = capsys.readouterr().err
    assert "20 rows are written" in err and "run the same command again" in err
    assert bulk.main(argv) == 0
    _, rows, _ = read_parquet(out)
    assert rows == list(range(50))


def test_fail_fast_stops_at_a_refused_row(env, tmp_path) -> None:
    bodies = texts(30)
    bodies[12] = POISON
    source = write_jsonl(tmp_path / "in.jsonl", bodies)
    assert bulk.main([str(source), str(tmp_path / "o"), *ARGS, "--fail-fast", "--no-progress"]) == 1


def test_no_model_is_the_cores_configuration_error_not_a_silent_default(
    env, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.delenv("MIXLAYER_EMBEDDING_MODEL")
    source = write_jsonl(tmp_path / "in.jsonl", texts(3))
    assert bulk.main([str(source), str(tmp_path / "out"), *ARGS, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "No embedding model: pass --model=... or set the MIXLAYER_EMBEDDING_MODEL" in err
    assert env.state.requests == 0 and not (tmp_path / "out").exists()


def test_every_option_and_client_setting_has_a_flag_that_reaches_the_wire(
    env, tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("MIXLAYER_EMBEDDING_MODEL")
    monkeypatch.delenv("MIXLAYER_BASE_URL")
    source = write_jsonl(tmp_path / "in.jsonl", texts(3))
    argv = [str(source), str(tmp_path / "out"), *ARGS, "--no-progress"]
    argv += ["--model", env.model, "--base-url", env.base_url, "--normalize", "--truncate"]
    argv += ["--input-type", "query", "--rate", "100", "--timeout", "30", "--max-retries", "0"]
    assert bulk.main(argv) == bulk.EXIT_OK
    body = env.state.last_body
    assert body is not None
    assert {k: body.get(k) for k in ("model", "normalize", "truncate", "input_type")} == {
        "model": env.model,
        "normalize": True,
        "truncate": True,
        "input_type": "query",
    }
    manifest = json.loads((tmp_path / "out" / "_manifest.json").read_text())
    assert manifest["settings"]["normalize"] is True and manifest["settings"]["truncate"] is True
