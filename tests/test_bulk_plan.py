"""``mixlayer-embed --plan`` (``_bulk.plan``): the input read as a run reads it, nothing sent,
no key needed, the folder untouched; and what it says a run sends is what the run sends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mixlayer_embeddings._bulk.command import main
from mixlayer_embeddings._tokens import planned_tokens

TASK = "Given a question, retrieve the passage that answers it"


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def plan(capsys, *argv: str) -> dict[str, Any]:
    assert main([*argv, "--plan"]) == 0
    planned: dict[str, Any] = json.loads(capsys.readouterr().out)
    return planned


CORPUS = [
    {"id": 1, "text": "Paris is the capital of France."},
    {"id": 2, "text": "Bread rises because yeast makes gas."},
    {"id": 3, "text": "Paris is the capital of France."},  # a copy: sent once per request
    {"id": 4, "text": ""},
    {"id": 2, "text": "a second row with id 2"},
    {"id": None, "text": "no id"},
    {"id": 7, "text": "Neptune has the strongest winds."},
]


def test_a_plan_sends_nothing_needs_no_key_and_leaves_the_folder_alone(
    env, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.delenv("MIXLAYER_API_KEY")
    corpus = write_jsonl(tmp_path / "c.jsonl", CORPUS)
    out = tmp_path / "out"
    served = env.state.stats()["requests"]
    planned = plan(capsys, str(corpus), str(out), "--id-field", "id")
    assert env.state.stats()["requests"] == served
    assert not out.exists()
    assert planned["rows"] == 7


def test_a_plan_counts_rows_rejects_copies_requests_size_cost_and_time(
    env, tmp_path, capsys
) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", CORPUS)
    planned = plan(
        capsys, str(corpus), str(tmp_path / "out"), "--id-field", "id", "--dimensions", "64",
        "--batch-size", "2", "--price-per-million-tokens", "0.5", "--tokens-per-second", "100",
    )  # fmt: skip
    assert planned["rejects"] == {
        "empty text (not sent)": 1,
        "duplicate id: row … has the same id": 1,
        "the id is null: every row needs an id (see --id-field)": 1,
    }
    sent = [CORPUS[i]["text"] for i in (0, 1, 2, 6)]
    assert (planned["texts"], planned["distinct_texts"]) == (4, 3)
    # Requests of 2: [Paris, Bread], [Paris, Neptune]: the copy is in another request.
    assert (planned["requests"], planned["texts_sent"]) == (2, 4)
    tokens = sum(planned_tokens(t) for t in sent)
    assert planned["estimated_tokens"] == tokens
    assert planned["output_bytes"] == 4 * 64 * 4 + 4 * 8
    assert planned["estimated_cost"] == pytest.approx(tokens / 1e6 * 0.5)
    assert planned["estimated_seconds"] == pytest.approx(tokens / 100, abs=1e-3)
    assert planned["tokens_per_second_source"] == "given (--tokens-per-second)"


def test_the_default_rate_is_stated_as_an_accelerators(env, tmp_path, capsys) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", CORPUS[:2])
    planned = plan(capsys, str(corpus), str(tmp_path / "out"))
    assert planned["tokens_per_second"] == 30_000
    assert "one accelerator" in planned["tokens_per_second_source"]
    assert planned["estimated_cost"] is None  # no price given, no cost made up


def test_a_run_records_the_plans_estimate_beside_the_tokens_billed(env, tmp_path, capsys) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", [CORPUS[i] for i in (0, 1, 6)])
    out = tmp_path / "out"
    planned = plan(capsys, str(corpus), str(out), "--instruction", TASK)
    assert main([str(corpus), str(out), "--instruction", TASK, "--no-progress"]) == 0
    summary = json.loads((out / "_manifest.json").read_text())["completed"]
    assert summary["estimated_tokens"] == planned["estimated_tokens"]
    assert summary["tokens"] == env.state.stats()["tokens"]  # what the service billed
    assert f"(--plan estimates {planned['estimated_tokens']})" in capsys.readouterr().err
    without = plan(capsys, str(corpus), str(tmp_path / "other"))
    assert planned["estimated_tokens"] > without["estimated_tokens"]  # the instruction counts


def test_an_update_plan_counts_only_what_the_update_sends(env, tmp_path, capsys) -> None:
    rows = [{"id": i, "text": f"passage number {i} of the corpus"} for i in range(10)]
    corpus = write_jsonl(tmp_path / "c.jsonl", rows)
    out = tmp_path / "out"
    assert main([str(corpus), str(out), "--id-field", "id", "--no-progress"]) == 0
    rows[3]["text"] = "a changed passage"
    rows.append({"id": 10, "text": "a new passage"})
    write_jsonl(corpus, rows)
    planned = plan(capsys, str(corpus), str(out), "--id-field", "id", "--update")
    assert (planned["texts"], planned["carried"]) == (2, 9)
    before = env.state.stats()["items"]
    assert main([str(corpus), str(out), "--id-field", "id", "--update", "--no-progress"]) == 0
    assert env.state.stats()["items"] - before == planned["texts_sent"] == 2
    other = plan(
        capsys, str(corpus), str(out), "--id-field", "id", "--update", "--dimensions", "32"
    )
    assert other["texts"] == 11 and "other settings" in other["notes"][0]


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--price-per-million-tokens", "-1"], "must be a number of 0 or more"),
        (["--tokens-per-second", "0"], "must be a number greater than 0"),
        (["--instruction", TASK, "--input-type", "document"], "is for queries"),
    ],
)
def test_bad_plan_flags_exit_2(env, tmp_path, capsys, flags, says) -> None:
    corpus = write_jsonl(tmp_path / "c.jsonl", CORPUS[:1])
    try:
        code = main([str(corpus), str(tmp_path / "out"), "--plan", *flags])
    except SystemExit as exit:  # argparse refuses a flag's value itself
        code = exit.code
    assert code == 2
    assert says in capsys.readouterr().err
