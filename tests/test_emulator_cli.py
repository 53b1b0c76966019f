"""``mixlayer-emulator`` as a person meets it: what it prints, and how it fails."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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
    # One default per flag: where a value comes from is said once.
    assert "(default: None)" not in out
    assert out.count("(default: $MIXLAYER_API_KEY, else a random one)") == 1


def start_cli(*flags: str) -> tuple[subprocess.Popen[str], list[str]]:
    """The CLI in a child process on a free port, and the lines it announced itself with."""
    env = {**os.environ, "MIXLAYER_API_KEY": "cli-key", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "mixlayer_embeddings.emulator._cli", "--port", "0"]
    child = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [*command, *flags], env=env, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    assert child.stderr is not None
    while not lines or lines[-1] != "Ctrl-C stops it.":
        line = child.stderr.readline()
        if not line:
            child.kill()
            child.wait()
        assert line, "the emulator exited before announcing itself"
        lines.append(line.rstrip("\n"))
    return child, lines


def announced_url(lines: list[str]) -> str:
    return next(x.split("=", 1)[1] for x in lines if "MIXLAYER_BASE_URL=" in x)


@pytest.fixture
def running(monkeypatch):
    """The CLI in a child process on a free port, with the access log on."""
    child, lines = start_cli("--access-log", "--latency-ms", "300")
    yield child, lines
    if child.poll() is None:
        child.kill()
        child.wait()
    assert child.stderr is not None
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


def _alive(pid: int) -> bool:
    """Running or sleeping: not gone, and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(c) for c in (task / "children").read_text().split())
    return found


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc (Linux)")
def test_sigterm_stops_it_with_its_worker_processes() -> None:
    child, lines = start_cli("--workers", "2")
    try:
        base_url = announced_url(lines)
        for _ in range(4):  # work for both workers, so both processes exist
            response = httpx.post(
                f"{base_url}/embeddings",
                json={"model": MODEL, "input": ["a", "b"]},
                headers={"Authorization": "Bearer cli-key"},
            )
            assert response.status_code == 200
        workers = _children(child.pid)
        assert len(workers) >= 1
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == 0 and "Traceback" not in err
    assert err.splitlines()[-1] == "mixlayer-emulator: stopped."
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if _alive(pid)]
    assert not left, f"worker processes left behind: {left}"


@pytest.mark.parametrize(
    "flag",
    [
        ["--max-queue", "-1"],
        ["--max-tokens-per-request", "0"],
        ["--max-body-bytes", "-5"],
        ["--latency-ms", "-100"],
        ["--latency-ms", "nan"],
        ["--context-window", "0"],
        ["--workers", "-2"],
    ],
)
def test_a_value_out_of_range_exits_2_naming_the_flag(capsys, flag) -> None:
    # It started with them, and misbehaved later.
    with pytest.raises(SystemExit) as info:
        main(flag)
    assert info.value.code == 2
    assert flag[0] in capsys.readouterr().err


def test_a_body_over_the_limit_is_refused_on_its_content_length_unread() -> None:
    # A 300 MB body was read whole before the 413, where nginx refuses on Content-Length.
    import socket

    from mixlayer_embeddings.emulator import Emulator

    with Emulator(max_body_bytes=1_000_000) as emulator:
        host, port = emulator.host, emulator.port
        with socket.create_connection((host, port), timeout=5) as sock:
            sock.sendall(
                b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Authorization: Bearer " + emulator.api_key.encode() + b"\r\n"
                b"Content-Length: 300000000\r\n\r\n" + b"[" * 1000
            )  # 1 kB of the 300 MB announced: the answer must not wait for the rest
            answer = sock.recv(200)
        assert answer.startswith(b"HTTP/1.1 413")
        assert emulator.state.too_large == 1


def test_a_dropped_connection_is_closed_at_once_with_worker_processes() -> None:
    # The workers were forked at the first request, holding its connection's socket: after a
    # scripted drop on that kept-alive connection the client waited out its read timeout.
    child, lines = start_cli("--workers", "1")
    try:
        base_url = announced_url(lines)
        root = base_url.rsplit("/v1", 1)[0]
        body = {"model": MODEL, "input": ["a", "b"]}
        timeout = httpx.Timeout(10.0, read=5.0)
        with httpx.Client(headers={"Authorization": "Bearer cli-key"}, timeout=timeout) as http:
            assert http.post(f"{base_url}/embeddings", json=body).status_code == 200
            http.post(f"{root}/_emulator/script", json=[{"drop": True}]).raise_for_status()
            started = time.monotonic()
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                http.post(f"{base_url}/embeddings", json=body)  # on the kept-alive connection
            assert time.monotonic() - started < 2.0
    finally:
        child.kill()
        child.wait()
        assert child.stderr is not None
        child.stderr.close()
