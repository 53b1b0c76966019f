"""Cassette-backed core tests, and a scan of every cassette for credentials."""

from __future__ import annotations

import re

import pytest
from conftest import CASSETTE_DIR

from mixlayer_embeddings import AsyncMixlayerClient, BadRequestError, MixlayerClient


@pytest.mark.vcr
def test_core_sync_replay(cassette_target) -> None:
    with MixlayerClient(**cassette_target) as client:
        response = client.embed(
            ["Paris is the capital of France.", "Bread is baked."],
            input_type="document",
            dimensions=64,
        )
    assert len(response.embeddings) == 2
    assert all(len(v) == 64 for v in response.embeddings)
    assert response.usage.prompt_tokens > 0


@pytest.mark.vcr
async def test_core_async_replay(cassette_target) -> None:
    async with AsyncMixlayerClient(**cassette_target) as client:
        response = await client.embed(
            "What is the capital of France?", input_type="query", dimensions=64
        )
    assert len(response.embeddings[0]) == 64


@pytest.mark.vcr
def test_core_error_replay(cassette_target) -> None:
    with MixlayerClient(**cassette_target) as client, pytest.raises(BadRequestError) as info:
        client.embed("a", model="qwen/qwen3.5-9b")
    assert info.value.code == "model_kind_mismatch"


_CREDENTIAL = re.compile(
    r"(authorization|api[-_]?key|bearer)\W{0,4}[A-Za-z0-9_\-]{12,}|sk-[A-Za-z0-9]{8,}|emu-[0-9a-f]{8,}",
    re.IGNORECASE,
)


def test_no_cassette_holds_a_credential() -> None:
    cassettes = sorted(CASSETTE_DIR.rglob("*.yaml"))
    assert cassettes, "no cassettes recorded"
    for path in cassettes:
        text = path.read_text()
        assert not _CREDENTIAL.search(text), f"{path.name} holds a credential"
        assert "authorization" not in text.lower(), path.name


def test_every_cassette_says_where_it_was_recorded() -> None:
    from conftest import EMULATOR_ORIGIN, SERVICE_HOST

    cassettes = sorted(CASSETTE_DIR.rglob("*.yaml"))
    assert cassettes
    for path in cassettes:
        uris = re.findall(r"^\s+uri: (\S+)", path.read_text(), re.MULTILINE)
        origins = {uri.split("/v1/")[0] for uri in uris}
        # The emulator's or the service's (``make record`` with a key), and one per cassette:
        # a recording never mixes where its answers came from.
        assert origins <= {EMULATOR_ORIGIN, f"https://{SERVICE_HOST}"}, (path.name, origins)
        assert len(origins) == 1, (path.name, origins)
