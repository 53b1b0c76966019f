"""Under faults, rate limits, cancellation and redirects: nothing lost, misplaced or leaked."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest
from conftest import KEY, MODEL, FakeService

from langchain_mixlayer import MixlayerEmbeddings
from llama_index.embeddings.mixlayer import MixlayerEmbedding
from mixlayer_embeddings import (
    APIStatusError,
    AsyncMixlayerClient,
    MixlayerClient,
)

N = 20_000


def corpus(n: int = N) -> list[str]:
    return [f"text {i} about topic {i % 313} with word {i * 7919 % 10007}" for i in range(n)]


def lc(emulator, **kw) -> MixlayerEmbeddings:
    return MixlayerEmbeddings(
        model=MODEL, api_key=emulator.api_key, base_url=emulator.base_url, **kw
    )


def li(emulator, **kw) -> MixlayerEmbedding:
    return MixlayerEmbedding(
        model_name=MODEL, api_key=emulator.api_key, api_base=emulator.base_url, **kw
    )


PATHS = {
    "langchain-sync": lambda e, t: lc(e, **OPTS).embed_documents(t),
    "langchain-async": lambda e, t: asyncio.run(lc(e, **OPTS).aembed_documents(t)),
    "llamaindex-sync": lambda e, t: li(e, embed_batch_size=500, **LI_OPTS).get_text_embedding_batch(
        t
    ),
    "llamaindex-async": lambda e, t: asyncio.run(
        li(e, embed_batch_size=500, **LI_OPTS).aget_text_embedding_batch(t)
    ),
}
OPTS = {"dimensions": 128, "batch_size": 500, "max_retries": 8}
LI_OPTS = {"dimensions": 128, "max_retries": 8}


@pytest.fixture(scope="module")
def fault_free(_mixlayer_emulator_server) -> list[list[float]]:
    _mixlayer_emulator_server.reset()
    return lc(_mixlayer_emulator_server, **OPTS).embed_documents(corpus())


@pytest.mark.parametrize("path", sorted(PATHS))
def test_a_faulty_ingest_loses_and_misplaces_nothing(mixlayer_emulator, fault_free, path) -> None:
    mixlayer_emulator.state.fault_rate = 0.10
    vectors = PATHS[path](mixlayer_emulator, corpus())
    stats = mixlayer_emulator.state.stats()
    assert stats["faults"] >= 1, stats
    assert len(vectors) == N
    assert vectors == fault_free


def test_retry_after_is_honoured(mixlayer_emulator, clock) -> None:
    mixlayer_emulator.script([{"status": 429, "retry_after": 0.4}])
    with MixlayerClient(
        api_key=mixlayer_emulator.api_key,
        model=MODEL,
        base_url=mixlayer_emulator.base_url,
        clock=clock,
    ) as client:
        client.embed("a")
    assert clock.sleeps == [pytest.approx(0.4)]


async def test_a_concurrent_ingest_under_a_rate_limit_completes(mixlayer_emulator, clock) -> None:
    # One fake clock for the emulator's bucket and the client's waits: the time below is the
    # time the waits add up to, not what a busy machine makes of it.
    rate = 40.0
    mixlayer_emulator.state.clock = clock.now
    mixlayer_emulator.state.rate_limit = rate
    requests = 120
    async with AsyncMixlayerClient(
        api_key=mixlayer_emulator.api_key,
        model=MODEL,
        base_url=mixlayer_emulator.base_url,
        batch_size=10,
        max_concurrency=8,
        clock=clock,
    ) as client:
        started = clock.now()
        response = await client.embed(corpus(requests * 10), dimensions=32)
        elapsed = clock.now() - started
    ideal = (requests - rate) / rate  # the first `rate` requests ride the initial burst
    assert len(response.embeddings) == requests * 10
    assert mixlayer_emulator.state.stats()["rate_limited"] > 0
    assert elapsed < ideal * 2.5 + 1, (elapsed, ideal)


async def test_cancelling_an_async_ingest_stops_it_and_leaves_no_tasks(mixlayer_emulator) -> None:
    # Each request takes 60 s: a cancellation that waited for the requests in flight would
    # not end within the 20 s below on any machine, however busy; one that cancels them does.
    mixlayer_emulator.state.latency_ms = 60_000
    client = AsyncMixlayerClient(
        api_key=mixlayer_emulator.api_key,
        model=MODEL,
        base_url=mixlayer_emulator.base_url,
        batch_size=10,
        max_concurrency=4,
    )
    task = asyncio.ensure_future(client.embed(corpus(400), dimensions=32))
    for _ in range(2000):  # until the first requests are in flight
        if mixlayer_emulator.state.stats()["requests"]:
            break
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), 20)
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == {asyncio.current_task()}
    served_then = mixlayer_emulator.state.stats()["requests"]
    await asyncio.sleep(0.5)
    assert mixlayer_emulator.state.stats()["requests"] == served_then  # nothing more sent
    await client.aclose()


_CTRL_C_CHILD = """
import signal, sys, time
# A shell that starts jobs in the background (nohup, `&` in a script) ignores SIGINT in them,
# and a child inherits that: this test is about an interrupt reaching the client.
signal.signal(signal.SIGINT, signal.default_int_handler)
base_url, key, model, front = sys.argv[1:5]
texts = [f"text {i}" for i in range(400)]  # 40 requests of 6 s
if front == "client":
    from mixlayer_embeddings import MixlayerClient
    embedder = MixlayerClient(api_key=key, model=model, base_url=base_url, batch_size=10,
                              max_concurrency=4)
    embed = lambda: embedder.embed(texts, dimensions=32)
elif front == "langchain":
    from langchain_mixlayer import MixlayerEmbeddings
    embedder = MixlayerEmbeddings(model=model, base_url=base_url, batch_size=10,
                                  max_concurrency=4, dimensions=32)
    embed = lambda: embedder.embed_documents(texts)
else:
    from llama_index.embeddings.mixlayer import MixlayerEmbedding
    embedder = MixlayerEmbedding(model_name=model, api_base=base_url, embed_batch_size=10,
                                 max_concurrency=4, dimensions=32)
    embed = lambda: embedder.get_text_embedding_batch(texts)
print("ready", flush=True)
try:
    embed()
except KeyboardInterrupt:
    print("interrupted", time.monotonic(), flush=True)
    raise
"""


@pytest.mark.parametrize("front", ["client", "langchain", "llama_index"])
def test_ctrl_c_during_a_sync_ingest_stops_promptly(mixlayer_emulator, front) -> None:
    """A real SIGINT to a process mid-ingest: it stops and exits (threads included) promptly."""
    import signal
    import subprocess
    import sys

    # Each request takes 6 s: the call must stop well before the requests in flight end.
    mixlayer_emulator.state.latency_ms = 6000
    with subprocess.Popen(  # noqa: S603 - our own interpreter and a fixed script
        [
            sys.executable,
            "-c",
            _CTRL_C_CHILD,
            mixlayer_emulator.base_url,
            mixlayer_emulator.api_key,
            MODEL,
            front,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MIXLAYER_API_KEY": mixlayer_emulator.api_key},
    ) as child:  # closes its pipes, whatever happens below
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            for _ in range(2000):  # until the first requests are in flight
                if mixlayer_emulator.state.stats()["requests"]:
                    break
                time.sleep(0.005)
            sent = time.monotonic()
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=120)  # a bound on a hang, not a claim
            exited = time.monotonic()
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode != 0
    assert "KeyboardInterrupt" in err
    interrupted_at = float(out.split()[1])  # CLOCK_MONOTONIC is one clock for the machine
    assert interrupted_at - sent < 3.0  # the call stops without waiting for its requests
    assert exited - sent < 3.0  # and the process exits: no thread holds it for 6 s
    assert "_python_exit" not in err  # no join of worker threads at exit
    served = mixlayer_emulator.state.stats()["requests"]
    time.sleep(0.5)
    assert mixlayer_emulator.state.stats()["requests"] == served  # nothing sent after exit
    assert served < 40  # the queued batches were never sent
    assert served <= 4  # only those in flight when the interrupt came


def test_redirects_never_carry_the_key_to_another_host() -> None:
    seen: list[httpx.Request] = []
    service = FakeService()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "models.mixlayer.ai":
            return httpx.Response(
                307, headers={"location": "https://elsewhere.example/v1/embeddings"}
            )
        return service(request)

    transport = httpx.MockTransport(handler)
    with (
        MixlayerClient(
            api_key=KEY, model=MODEL, http_client=httpx.Client(transport=transport)
        ) as client,
        pytest.raises(APIStatusError) as info,
    ):
        client.embed("a")  # our own default: redirects are not followed
    assert info.value.status_code == 307
    assert [r.url.host for r in seen] == ["models.mixlayer.ai"]

    seen.clear()
    following = httpx.Client(transport=transport, follow_redirects=True)
    with MixlayerClient(api_key=KEY, model=MODEL, http_client=following) as client:
        client.embed("a")
    assert [r.url.host for r in seen] == ["models.mixlayer.ai", "elsewhere.example"]
    assert "authorization" not in seen[1].headers
