"""``mixlayer-emulator`` as a person meets it: what it prints, and how it fails."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from mixlayer_embeddings.emulator._cli import main

MODEL = "qwen/qwen3-embedding-8b"


def test_a_taken_port_is_one_line_and_nothing_is_announced(capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port), "--api-key", "k"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == [
        f"mixlayer-emulator: cannot listen on 127.0.0.1:{port}: Address already in use. "
        "Is another server on that port? Try --port 0 for any free port."
    ]


def test_an_empty_key_is_refused(capsys, monkeypatch) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--api-key", ""])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "mixlayer-emulator: error: the API key is empty: pass --api-key KEY or set MIXLAYER_API_KEY"
    )
    monkeypatch.setenv("MIXLAYER_API_KEY", " ")
    with pytest.raises(SystemExit):
        main([])


def test_version_and_help_show_every_default(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("mixlayer-emulator 0.")
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for default in (
        "(default: 127.0.0.1)",
        "(default: 8765)",
        "(default: 0.0)",
        "(default: 32768)",
    ):
        assert default in out, default


@pytest.fixture
def running(monkeypatch):
    """The CLI in a child process on a free port, with the access log on."""
    env = {**os.environ, "MIXLAYER_API_KEY": "cli-key", "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mixlayer_embeddings.emulator._cli",
            "--port",
            "0",
            "--access-log",
            "--latency-ms",
            "300",
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = []
    assert child.stderr is not None
    while not lines or lines[-1] != "Ctrl-C stops it.":
        line = child.stderr.readline()
        assert line, "the emulator exited before announcing itself"
        lines.append(line.rstrip("\n"))
    yield child, lines
    if child.poll() is None:
        child.kill()
        child.wait()
    child.stderr.close()


def test_it_announces_copy_pasteable_exports_and_logs_each_request(running) -> None:
    child, lines = running
    exports = dict(line.strip().removeprefix("export ").split("=", 1) for line in lines
                   if line.strip().startswith("export "))  # fmt: skip
    assert exports["MIXLAYER_API_KEY"] == "cli-key"
    assert exports["MIXLAYER_EMBEDDING_MODEL"] == MODEL
    base_url = exports["MIXLAYER_BASE_URL"]
    assert MODEL in lines[0] and base_url in lines[0]
    headers = {"Authorization": "Bearer cli-key"}
    response = httpx.post(
        f"{base_url}/embeddings", json={"model": MODEL, "input": ["a", "b"]}, headers=headers
    )
    assert response.status_code == 200
    # A client that gives up during the latency: at most one line, never a traceback.
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{base_url}/embeddings",
            json={"model": MODEL, "input": "x"},
            headers=headers,
            timeout=0.05,
        )
    time.sleep(0.6)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=10)
    log = err.splitlines()
    assert child.returncode == 0
    assert "Traceback" not in err
    assert any(line.endswith(" ms") and "POST /v1/embeddings 200 2 items" in line for line in log)
    assert len([line for line in log if "disconnect" in line.lower()]) <= 1
    assert log[-1] == "mixlayer-emulator: stopped."


def test_model_ids_are_matched_exactly(mixlayer_emulator) -> None:
    response = httpx.post(
        f"{mixlayer_emulator.base_url}/embeddings",
        json={"model": "qwen3-embedding-8b", "input": "x"},
        headers={"Authorization": f"Bearer {mixlayer_emulator.api_key}"},
    )
    assert response.status_code == 404
    assert response.json()["error"]["message"] == (
        "model qwen3-embedding-8b does not exist or is not available to this API key "
        f"(this emulator serves the embedding model {MODEL})"
    )
