"""The emulator over real HTTP: faithful answers, retrieval-meaningful vectors, faults."""

from __future__ import annotations

import base64
import time
from array import array

import httpx
import pytest

from mixlayer_embeddings import (
    APIConnectionError,
    AsyncMixlayerClient,
    BadRequestError,
    MixlayerClient,
    RateLimitError,
)
from mixlayer_embeddings.emulator import CHAT_MODEL, EMBEDDING_MODEL, Emulator
from mixlayer_embeddings.emulator._cli import main as cli_main


@pytest.fixture
def raw(mixlayer_emulator):
    """A plain httpx client with the key: it bypasses our validation, as other clients can."""
    with httpx.Client(
        base_url=mixlayer_emulator.base_url + "/",
        headers={"Authorization": f"Bearer {mixlayer_emulator.api_key}"},
    ) as c:
        yield c


def post(raw: httpx.Client, **body) -> httpx.Response:
    return raw.post("embeddings", json={"model": EMBEDDING_MODEL, **body})


def cosine(a, b) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / ((sum(x * x for x in a) ** 0.5) * (sum(y * y for y in b) ** 0.5))


def test_every_route_needs_the_bearer_key(mixlayer_emulator) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        r = httpx.post(
            mixlayer_emulator.base_url + "/embeddings",
            headers=headers,
            json={"model": EMBEDDING_MODEL, "input": "a"},
        )
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert r.json()["error"]["type"] == "authentication_error"


def test_models_lists_an_embedding_and_a_chat_model(raw) -> None:
    ids = {m["id"]: m["kind"] for m in raw.get("models").json()["data"]}
    assert ids[EMBEDDING_MODEL] == "embedding"
    assert ids[CHAT_MODEL] == "chat"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"input": "a", "model": CHAT_MODEL}, 400, "model_kind_mismatch"),
        ({"input": "a", "model": "acme/nothing"}, 404, "model_not_found"),
        ({"input": ""}, 400, "invalid_input"),
        ({"input": []}, 400, "invalid_input"),
        ({"input": ["a", ""]}, 400, "invalid_input"),
        ({"input": ["x"] * 2049}, 400, "invalid_input"),
        ({"input": [[1, 2], []]}, 400, "invalid_input"),
        ({"input": [1, "a"]}, 400, "invalid_input"),
        ({"input": {"text": "a"}}, 400, "invalid_input"),
        ({}, 400, "invalid_input"),
        ({"input": "a", "dimensions": 0}, 400, "invalid_dimensions"),
        ({"input": "a", "dimensions": 5000}, 400, "invalid_dimensions"),
        ({"input": "a", "dimensions": "64"}, 400, "invalid_dimensions"),
        ({"input": "a", "encoding_format": "int8"}, 400, "invalid_encoding_format"),
        ({"input": "a", "input_type": "passage"}, 400, "invalid_input_type"),
        ({"input": "a", "normalize": "yes"}, 400, "invalid_request"),
    ],
)
def test_bad_requests_get_the_reference_codes(raw, body, status, code) -> None:
    r = post(raw, **body)
    assert r.status_code == status
    error = r.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["type"]


@pytest.mark.parametrize("content", [b"{not json", b"[1, 2]", b"\xff\xfe", b""])
def test_malformed_bodies_get_a_400_envelope_never_a_500(raw, content) -> None:
    r = raw.post("embeddings", content=content, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json()["error"]["code"] in ("invalid_json", "invalid_request")


def test_over_long_input_is_refused_or_truncated(raw, mixlayer_emulator, monkeypatch) -> None:
    monkeypatch.setattr(mixlayer_emulator.state, "context_window", 5)
    long_text = "one two three four five six seven"
    for body in (
        {"input": [long_text]},
        {"input": [long_text], "truncate": False},
        {"input": [[1, 2, 3, 4, 5, 6]], "truncate": True},
    ):
        r = post(raw, **body)
        assert r.status_code == 400
        assert r.json()["error"]["code"] == "invalid_input"
        assert "context window" in r.json()["error"]["message"]
    truncated = post(raw, input=[long_text], truncate=True, encoding_format="float").json()
    short = post(raw, input=["one two three four five"], encoding_format="float").json()
    assert truncated["data"][0]["embedding"] == short["data"][0]["embedding"]


def test_float_and_base64_carry_the_same_vector(raw) -> None:
    as_float = post(raw, input=["hello world"], encoding_format="float").json()
    as_b64 = post(raw, input=["hello world"], encoding_format="base64").json()
    decoded = array("f", base64.b64decode(as_b64["data"][0]["embedding"])).tolist()
    assert decoded == as_float["data"][0]["embedding"]
    assert len(decoded) == 4096
    assert as_float["usage"] == {"prompt_tokens": 2, "total_tokens": 2}


def test_every_input_form_and_usage_in_tokens(raw) -> None:
    for value, count, tokens in [
        ("a b c", 1, 3),
        (["a b", "c"], 2, 3),
        ([1, 2, 3], 1, 3),
        ([[1, 2], [3]], 2, 3),
    ]:
        body = post(raw, input=value, dimensions=32).json()
        assert [d["index"] for d in body["data"]] == list(range(count))
        assert body["usage"]["prompt_tokens"] == tokens


def test_vectors_are_deterministic_normalised_and_matryoshka(mixlayer_emulator) -> None:
    with MixlayerClient(
        api_key=mixlayer_emulator.api_key,
        model=mixlayer_emulator.model,
        base_url=mixlayer_emulator.base_url,
    ) as client:
        full = client.embed("the quick brown fox").embeddings[0]
        again = client.embed("the quick brown fox").embeddings[0]
        small = client.embed("the quick brown fox", dimensions=256).embeddings[0]
        raw_vec = client.embed("the quick brown fox", normalize=False).embeddings[0]
    assert full == again
    assert sum(x * x for x in full) == pytest.approx(1.0, abs=1e-5)
    assert len(small) == 256
    assert sum(x * x for x in small) == pytest.approx(1.0, abs=1e-5)
    assert cosine(small, full[:256]) == pytest.approx(1.0, abs=1e-5)
    assert sum(x * x for x in raw_vec) > 1.5


def test_a_question_finds_its_passage_and_query_differs_from_document(mixlayer_emulator) -> None:
    passages = [
        "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
        "Photosynthesis converts light energy into chemical energy in plants.",
        "The Great Wall of China stretches thousands of kilometres across northern China.",
        "Python is a programming language that emphasises code readability.",
    ]
    with MixlayerClient(
        api_key=mixlayer_emulator.api_key,
        model=mixlayer_emulator.model,
        base_url=mixlayer_emulator.base_url,
    ) as client:
        docs = client.embed(passages, input_type="document").embeddings
        question = "How do plants turn light into chemical energy?"
        query = client.embed(question, input_type="query").embeddings[0]
        as_doc = client.embed(question, input_type="document").embeddings[0]
    scores = [cosine(query, d) for d in docs]
    assert max(range(4), key=scores.__getitem__) == 1
    assert query != as_doc
    assert cosine(query, as_doc) > 0.8


def test_scripted_faults_are_survived_by_retries(mixlayer_emulator) -> None:
    mixlayer_emulator.script(
        [
            {"status": 429, "retry_after": 0.01},
            {"status": 503},
            {"drop": True},
            {"status": 502, "html": True},
        ]
    )
    with MixlayerClient(
        api_key=mixlayer_emulator.api_key,
        model=mixlayer_emulator.model,
        base_url=mixlayer_emulator.base_url,
        max_retries=4,
    ) as client:
        assert len(client.embed(["a"]).embeddings) == 1
    assert mixlayer_emulator.state.stats()["faults"] == 4


def test_a_dropped_connection_is_a_connection_error(mixlayer_emulator) -> None:
    mixlayer_emulator.script([{"drop": True}])
    with (
        MixlayerClient(
            api_key=mixlayer_emulator.api_key,
            model=mixlayer_emulator.model,
            base_url=mixlayer_emulator.base_url,
            max_retries=0,
        ) as client,
        pytest.raises(APIConnectionError),
    ):
        client.embed("a")


def test_latency_and_slow_bodies(mixlayer_emulator) -> None:
    mixlayer_emulator.script([{"latency_ms": 150}, {"slow_body_s": 0.15}])
    with MixlayerClient(
        api_key=mixlayer_emulator.api_key,
        model=mixlayer_emulator.model,
        base_url=mixlayer_emulator.base_url,
        timeout=0.05,
        max_retries=0,
    ) as c:
        from mixlayer_embeddings import APITimeoutError

        with pytest.raises(APITimeoutError):
            c.embed("a")
        with pytest.raises(APITimeoutError):
            c.embed("a")
        assert c.embed("a").embeddings


def test_random_fault_rate_and_rate_limit(mixlayer_emulator) -> None:
    mixlayer_emulator.state.fault_rate = 0.3
    with MixlayerClient(
        api_key=mixlayer_emulator.api_key,
        model=mixlayer_emulator.model,
        base_url=mixlayer_emulator.base_url,
        max_retries=8,
        batch_size=10,
    ) as client:
        response = client.embed([f"t{i}" for i in range(200)])
    assert len(response.embeddings) == 200
    assert mixlayer_emulator.state.stats()["faults"] > 0
    mixlayer_emulator.reset()
    mixlayer_emulator.state.rate_limit = 2.0
    with (
        MixlayerClient(
            api_key=mixlayer_emulator.api_key,
            model=mixlayer_emulator.model,
            base_url=mixlayer_emulator.base_url,
            max_retries=0,
            batch_size=1,
        ) as client,
        pytest.raises(RateLimitError) as info,
    ):
        client.embed([f"t{i}" for i in range(10)])
    assert float(info.value.response.headers["retry-after"]) > 0


async def test_async_client_against_the_emulator(mixlayer_emulator) -> None:
    async with AsyncMixlayerClient(
        api_key=mixlayer_emulator.api_key,
        base_url=mixlayer_emulator.base_url,
        model=mixlayer_emulator.model,
        batch_size=16,
    ) as client:
        texts = [f"text {i}" for i in range(100)]
        response = await client.embed(texts, dimensions=64, input_type="document")
    with MixlayerClient(
        api_key=mixlayer_emulator.api_key,
        model=mixlayer_emulator.model,
        base_url=mixlayer_emulator.base_url,
    ) as client:
        one_by_one = [
            client.embed(t, dimensions=64, input_type="document").embeddings[0] for t in texts[:5]
        ]
    assert response.embeddings[:5] == one_by_one
    assert response.requests == 7


def test_server_refusals_surface_with_their_code(mixlayer_emulator, monkeypatch) -> None:
    monkeypatch.setattr(mixlayer_emulator.state, "context_window", 3)
    with MixlayerClient(
        api_key=mixlayer_emulator.api_key,
        model=mixlayer_emulator.model,
        base_url=mixlayer_emulator.base_url,
    ) as client:
        with pytest.raises(BadRequestError) as info:
            client.embed(["a b c d e"])
        with pytest.raises(BadRequestError, match="model_kind_mismatch"):
            client.embed("a", model=CHAT_MODEL)
    assert info.value.code == "invalid_input"


def test_in_process_start_stop_on_a_free_port() -> None:
    with Emulator(api_key="k") as emulator:
        port = emulator.port
        assert port > 0
        r = httpx.get(emulator.base_url + "/models", headers={"Authorization": "Bearer k"})
        assert r.status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1)


def test_console_script_serves_until_stopped(tmp_path) -> None:
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(  # noqa: S603 - our own entry point, fixed arguments
        [
            sys.executable,
            "-m",
            "mixlayer_embeddings.emulator._cli",
            "--port",
            str(port),
            "--api-key",
            "cli-key",
            "--latency-ms",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/v1/models",
                    headers={"Authorization": "Bearer cli-key"},
                )
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the emulator did not come up"
                time.sleep(0.1)
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(10)
    with pytest.raises(SystemExit):
        cli_main(["--api-key", "k", "--fault-rate", "2"])


def test_the_listening_socket_turns_nagle_off_for_its_connections() -> None:
    # Nagle's algorithm on the server's sockets held every answer after the first on a
    # keep-alive connection until the client's delayed ACK (~44 ms each). asyncio turns it off
    # only for sockets made with proto=IPPROTO_TCP; Linux passes TCP_NODELAY on to accepted ones.
    import socket as socket_module

    from mixlayer_embeddings.emulator import listening_socket

    server = listening_socket("127.0.0.1")
    server.bind(("127.0.0.1", 0))
    server.listen()
    try:
        with socket_module.create_connection(server.getsockname()):
            accepted, _ = server.accept()
            with accepted:
                assert accepted.proto == socket_module.IPPROTO_TCP
                assert accepted.getsockopt(socket_module.IPPROTO_TCP, socket_module.TCP_NODELAY)
    finally:
        server.close()
