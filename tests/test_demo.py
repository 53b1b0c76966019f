"""The main job runs offline end to end, answers from the corpus, and fails in plain lines."""

from __future__ import annotations

import json

import pytest

from mixlayer_embeddings.demo import CORPUS, QUESTIONS, main

PASSAGES = CORPUS.read_text().splitlines()
#: The passage each built-in question is about (checked on the emulator's lexical vectors).
EXPECTED = {
    QUESTIONS[0]: "Neptune is",
    QUESTIONS[1]: "Honey bees communicate",
    QUESTIONS[2]: "Bread is made",
    QUESTIONS[3]: "Gold is",
    QUESTIONS[4]: "Retrieval-augmented generation finds",
}


def test_demo_answers_offline_and_checks_that_both_adapters_agree(capsys) -> None:
    assert main(["--question", "What makes bread dough rise?", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "using the local emulator" in out
    bread = next(p for p in PASSAGES if p.startswith("Bread is made"))
    answers = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(answers) == 1 and answers[0].endswith(bread)  # shown once, not per adapter
    assert "returned the same ranking and scores for every question (checked)" in out
    assert f"{2 * len(PASSAGES) + 2} texts embedded" in out
    assert len(PASSAGES) >= 200


def test_every_built_in_question_finds_its_passage(capsys) -> None:
    assert main(["--json", "--top", "1"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["emulator"] is True and document["adapters_agree"] is True
    for result in document["results"]:
        best = result["hits"][0]["text"]
        assert best.startswith(EXPECTED[result["question"]]), (result["question"], best)
        assert result["weak_match"] is False
    assert document["summary"]["texts"] == 2 * len(PASSAGES) + len(QUESTIONS) * 2


def test_a_weak_match_is_flagged_with_the_reason(capsys) -> None:
    assert main(["-q", "Why does my sourdough get bigger?", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "weak match" in out and "lexical" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--dimensions", "5000"],
            "argument --dimensions: 5000 is out of range for Qwen3 Embedding 8B: use 32 to 4096",
        ),
        (["--top", "0"], "argument --top: must be at least 1, got 0"),
        (["--top", "-1"], "argument --top: must be at least 1, got -1"),
        (["-q", ""], "argument --question/-q: a question must not be empty"),
    ],
)
def test_bad_arguments_are_refused_by_argparse(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"mixlayer-demo: error: {message}"


def test_an_unreachable_service_is_two_plain_lines(monkeypatch, capsys) -> None:
    monkeypatch.setenv("MIXLAYER_API_KEY", "some-key")
    monkeypatch.setenv("MIXLAYER_BASE_URL", "http://127.0.0.1:9/v1")
    assert main(["--top", "1", "--json"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-2].startswith(
        "mixlayer-demo: could not reach the Mixlayer service at http://127.0.0.1:9/v1: "
        "Connection error (POST http://127.0.0.1:9/v1/embeddings)"
    )
    assert "4 attempts over" in lines[-2]
    assert lines[-1] == (
        "Check the network and MIXLAYER_BASE_URL, or unset MIXLAYER_API_KEY to run on the "
        "local emulator."
    )


def test_a_bad_key_is_two_plain_lines(mixlayer_emulator, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MIXLAYER_API_KEY", "not-the-key")
    monkeypatch.setenv("MIXLAYER_BASE_URL", mixlayer_emulator.base_url)
    assert main(["--top", "1", "--json"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-2] == (
        f"mixlayer-demo: the Mixlayer service at {mixlayer_emulator.base_url} refused the key "
        "in MIXLAYER_API_KEY (401)."
    )
    assert lines[-1].startswith("Check the key, or unset MIXLAYER_API_KEY")


def test_an_interrupt_is_one_line(monkeypatch, capsys) -> None:
    import mixlayer_embeddings.demo as demo

    def interrupted(*args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(demo, "_run", interrupted)
    assert main([]) == 130
    assert capsys.readouterr().err == "mixlayer-demo: interrupted.\n"


def test_debug_shows_the_traceback(monkeypatch) -> None:
    monkeypatch.setenv("MIXLAYER_API_KEY", "some-key")
    monkeypatch.setenv("MIXLAYER_BASE_URL", "http://127.0.0.1:9/v1")
    from mixlayer_embeddings import APIConnectionError

    with pytest.raises(APIConnectionError):
        main(["--top", "1", "--json", "--debug"])


def test_make_demo_json_pipes_into_a_json_parser() -> None:
    """`make demo ARGS="--json" | python -m json.tool`: make echoes no command on stdout."""
    import os
    import shutil
    import subprocess
    from pathlib import Path

    make = shutil.which("make")
    if make is None:  # pragma: no cover - make is how this repository is driven
        pytest.skip("no make on this machine")
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS", "MIXLAYER_"))}
    result = subprocess.run(  # noqa: S603 - make, in this repository, with a fixed target
        [make, "--no-print-directory", "demo", "ARGS=--json --top 1"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["emulator"] is True
