"""Against the emulator as an inference server (one accelerator, tokens per second, work that
goes on after a client gives up, request and body size limits): the client fits itself to it."""

from __future__ import annotations

import httpx
import pytest

from mixlayer_embeddings import AsyncMixlayerClient, MixlayerClient
from mixlayer_embeddings.emulator import Emulator, embed_items


def chunks(count: int, words: int) -> list[str]:
    return [f"chunk {i} " + " ".join(f"w{j}" for j in range(words - 2)) for i in range(count)]


def client_for(emu: Emulator, **settings) -> MixlayerClient:
    return MixlayerClient(api_key=emu.api_key, model=emu.model, base_url=emu.base_url, **settings)


def test_a_corpus_larger_than_a_read_timeout_of_work_completes_without_waste() -> None:
    # 600 chunks of 100 tokens at 20,000 tokens/s: 3 s of work against a 2 s read timeout (the
    # default 60 s against a server 30 times slower). Sent as one request, or eight of 75 at
    # once, the later answers cannot come in time, and every resend only adds work.
    texts = chunks(600, 100)
    with Emulator(tokens_per_second=20_000) as emu, client_for(emu, timeout=(5, 2.0)) as client:
        vectors = client.embed_array(texts, dimensions=32).vectors
        stats = emu.state.stats()
        timeouts = client.usage.timeouts
    assert (vectors == embed_items(texts, dimensions=32)).all()
    assert stats["done_tokens"] == 60_000  # every token worked through once
    assert stats["wasted_tokens"] == 0 and timeouts == 0


async def test_the_async_client_fits_the_same_server() -> None:
    texts = chunks(600, 100)
    with Emulator(tokens_per_second=20_000) as emu:
        async with AsyncMixlayerClient(
            api_key=emu.api_key, model=emu.model, base_url=emu.base_url, timeout=(5, 2.0)
        ) as client:
            response = await client.embed(texts, dimensions=32)
        stats = emu.state.stats()
    assert len(response.embeddings) == 600
    assert stats["wasted_tokens"] == 0 and client.usage.timeouts == 0


def test_the_emulator_finishes_work_its_client_gave_up_on() -> None:
    texts = chunks(40, 100)  # 4,000 tokens at 2,000 tokens/s: 2 s
    with Emulator(tokens_per_second=2_000) as emu:
        with (
            httpx.Client(timeout=httpx.Timeout(5, read=0.2)) as http,
            pytest.raises(httpx.ReadTimeout),
        ):
            http.post(
                f"{emu.base_url}/embeddings",
                headers={"Authorization": f"Bearer {emu.api_key}"},
                json={"model": emu.model, "input": texts, "dimensions": 32},
            )
        accelerator = emu.state.accelerator
        assert accelerator is not None
        # Booked at once, worked through whether or not anyone waits (checked once it is done).
        for _ in range(400):
            if accelerator.done_tokens:
                break
            httpx.get(f"{emu.base_url}/models", headers={"Authorization": f"Bearer {emu.api_key}"})
            __import__("time").sleep(0.02)
        assert accelerator.stats()["wasted_tokens"] == 4_000


@pytest.mark.parametrize(
    "limits",
    [
        {"max_body_bytes": 8_000},  # a proxy's body limit (nginx answers 413 with its own page)
        {"max_tokens_per_request": 1_500},  # the server's own limit (413 request_too_large)
    ],
)
def test_requests_refused_for_their_size_are_split_and_the_cap_is_kept(limits) -> None:
    texts = chunks(120, 100)  # ~600 bytes, 100 tokens each
    with Emulator(**limits) as emu, client_for(emu) as client:
        first = client.embed(texts, dimensions=32).embeddings
        refused_then = emu.state.stats()
        second = client.embed(texts, dimensions=32).embeddings
        refused_after = emu.state.stats()
    expected = embed_items(texts, dimensions=32).tolist()
    assert first == expected and second == expected
    assert refused_then["too_large"] > 0  # the first call met the limit...
    assert refused_after["too_large"] == refused_then["too_large"]  # ...the second kept under it
    assert refused_after["items"] - refused_then["items"] == 120


def test_an_overloaded_server_answers_503_with_retry_after_and_the_client_waits() -> None:
    texts = chunks(64, 100)
    with (
        Emulator(tokens_per_second=50_000, max_queue=3) as emu,
        client_for(emu, max_tokens_per_request=800, max_concurrency=8) as client,
    ):
        client._capacity.window = client._capacity.max_window  # as if it had run fast before
        vectors = client.embed(texts, dimensions=32).embeddings
        overloaded = emu.state.stats()["overloaded"]
        allowed = client._limit.allowed
    assert vectors == embed_items(texts, dimensions=32).tolist()
    assert overloaded > 0  # 8 at once against a queue of 3: refused, then retried
    assert allowed < 8  # and fewer sent at once after that
