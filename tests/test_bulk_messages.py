"""What ``mixlayer-embed`` says when a run fails for good (``_bulk.messages``): what to fix,
and "run the same command again" only where a rerun can help."""

from __future__ import annotations

import json
import socket

import pytest

import mixlayer_embeddings._bulk as bulk

ARGS = ["--dimensions", "32", "--no-progress", "--max-retries", "0"]
RERUN = "run the same command again"


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": f"t{i}"}) + "\n" for i in range(3)))
    return path


def test_a_wrong_key_names_the_variable_and_the_url_and_no_rerun(
    env, source, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("MIXLAYER_API_KEY", "sk-wrong")
    assert bulk.main([str(source), str(tmp_path / "out"), *ARGS]) == bulk.EXIT_FAILED
    err = capsys.readouterr().err
    assert "MIXLAYER_API_KEY" in err
    assert env.base_url in err
    assert RERUN not in err
    assert "sk-wrong" not in err


def test_a_wrong_path_says_to_check_the_model_and_the_url(
    env, source, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("MIXLAYER_BASE_URL", env.base_url + "/nowhere")
    assert bulk.main([str(source), str(tmp_path / "out"), *ARGS]) == bulk.EXIT_FAILED
    err = capsys.readouterr().err
    assert "--model" in err and "--base-url" in err
    assert RERUN not in err


def test_no_answer_advises_running_the_same_command_again(
    env, source, tmp_path, monkeypatch, capsys
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MIXLAYER_BASE_URL", f"http://127.0.0.1:{port}/v1")
    assert bulk.main([str(source), str(tmp_path / "out"), *ARGS]) == bulk.EXIT_FAILED
    assert RERUN in capsys.readouterr().err
