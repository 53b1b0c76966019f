"""The main job runs offline end to end and answers from the corpus."""

from __future__ import annotations

from mixlayer_embeddings.demo import CORPUS, main


def test_demo_answers_offline_through_both_adapters(capsys) -> None:
    assert main(["--question", "What makes bread dough rise?", "--top", "1"]) == 0
    out = capsys.readouterr().out
    assert "using the local emulator" in out
    bread = next(p for p in CORPUS.read_text().splitlines() if p.startswith("Bread is made"))
    assert "LangChain  " in out and "LlamaIndex " in out
    answers = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(answers) == 2 and all(line.endswith(bread) for line in answers)
    passages = len(CORPUS.read_text().splitlines())
    assert f"{2 * passages + 2} texts embedded" in out
    assert len(CORPUS.read_text().splitlines()) >= 200
