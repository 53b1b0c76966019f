"""Ingest benchmark: our four paths against the peers and a hand-written floor, in one run.

    python benchmarks/bench_ingest.py [--n 20000] [--dims 1024] [--latency-ms 50]
                                      [--scenarios default|all] [--repeat 3]

The emulator runs in its own process at a fixed latency per request. Each client runs in its
own process and reports wall seconds, client CPU seconds and peak RSS; its vectors are checked
against the emulator's own function for each text (a fast wrong answer is a failure). Every
client runs ``--repeat`` times, interleaved (a, b, c, a, b, c, ...) so a slow spell of the
machine falls on all of them; figures are medians with min-max, ratios are of medians to the
floor's, all in one run. Each client's settings are in ``CLIENTS`` and in every table: the
peers run both at their defaults and tuned to our batch size and concurrency. Raw results go
to ``benchmarks/results/ingest.json``; ``benchmarks/report.py`` writes the tables. Needs the
``bench`` extra.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save, spread

MODEL = "qwen/qwen3-embedding-8b"
KEY = "bench-key-not-a-secret"
#: Each client and the settings it runs with.
CLIENTS: dict[str, str] = {
    "floor": "hand-written: one httpx.AsyncClient, 2048 texts a request, 8 at once, base64 "
    "decoded with numpy, no checks",
    "ours-langchain-sync": "MixlayerEmbeddings defaults (2048 texts and ~32k tokens a "
    "request, 8 at once, adapting)",
    "ours-langchain-async": "MixlayerEmbeddings defaults, aembed_documents",
    "ours-llamaindex-sync": "MixlayerEmbedding defaults",
    "ours-llamaindex-async": "MixlayerEmbedding defaults, aget_text_embedding_batch",
    "langchain-openai": "OpenAIEmbeddings defaults: 1000 texts a request, one at a time",
    "langchain-openai-tuned": "OpenAIEmbeddings chunk_size=2048 (it has no concurrency setting)",
    "llamaindex-openai": "OpenAIEmbedding defaults: 100 texts a request, one at a time",
    "llamaindex-openai-tuned": "OpenAIEmbedding embed_batch_size=2048, num_workers=8, async",
    # For --otel: ours with the OpenTelemetry API installed and no SDK (the default above, in
    # a venv with the otel extra) against ours with the API not importable.
    "ours-langchain-sync-without-otel": "MixlayerEmbeddings defaults, OpenTelemetry API not "
    "importable",
    "ours-langchain-async-without-otel": "MixlayerEmbeddings defaults, aembed_documents, "
    "OpenTelemetry API not importable",
}
#: ``--otel``: the clients whose ratio is the cost of the API with no SDK behind it.
OTEL_CLIENTS = (
    "ours-langchain-sync",
    "ours-langchain-sync-without-otel",
    "ours-langchain-async",
    "ours-langchain-async-without-otel",
)


def texts_for(n: int) -> list[str]:
    topics = ("retrieval", "embedding", "vector", "passage", "question", "answer", "index")
    return [
        f"Passage {i} about {topics[i % 7]} number {i % 101} and token {i * 7919 % 10007}"
        for i in range(n)
    ]


# -- the clients (each runs in a child process) -------------------------------------------------


def run_floor(texts: list[str], base_url: str, dims: int) -> list[list[float]]:
    """The fastest correct client we can write: one AsyncClient, 2048 a request, 8 at once,
    base64 decoded by numpy straight from the bytes, no checks, lists out like the others."""
    import base64

    import httpx
    import numpy as np

    async def go() -> list[list[float]]:
        out: list[list[float]] = [[] for _ in texts]
        gate = asyncio.Semaphore(8)
        async with httpx.AsyncClient(
            timeout=120, headers={"Authorization": f"Bearer {KEY}"}
        ) as client:

            async def one(start: int) -> None:
                async with gate:
                    r = await client.post(
                        f"{base_url}/embeddings",
                        json={
                            "model": MODEL,
                            "input": texts[start : start + 2048],
                            "dimensions": dims,
                            "encoding_format": "base64",
                            "input_type": "document",
                        },
                    )
                r.raise_for_status()
                data = r.json()["data"]
                raw = b"".join(base64.b64decode(item["embedding"]) for item in data)
                rows = np.frombuffer(raw, dtype="<f4").reshape(len(data), -1).tolist()
                for item, row in zip(data, rows, strict=True):
                    out[start + item["index"]] = row

            await asyncio.gather(*(one(s) for s in range(0, len(texts), 2048)))
        return out

    return asyncio.run(go())


def run_ours_langchain(
    texts: list[str], base_url: str, dims: int, is_async: bool
) -> list[list[float]]:
    from langchain_mixlayer import MixlayerEmbeddings

    emb = MixlayerEmbeddings(model=MODEL, api_key=KEY, base_url=base_url, dimensions=dims)
    if is_async:
        return asyncio.run(emb.aembed_documents(texts))
    return emb.embed_documents(texts)


def run_ours_llamaindex(
    texts: list[str], base_url: str, dims: int, is_async: bool
) -> list[list[float]]:
    from llama_index.embeddings.mixlayer import MixlayerEmbedding

    emb = MixlayerEmbedding(model_name=MODEL, api_key=KEY, api_base=base_url, dimensions=dims)
    if is_async:
        return asyncio.run(emb.aget_text_embedding_batch(texts))
    return emb.get_text_embedding_batch(texts)


def run_langchain_openai(
    texts: list[str], base_url: str, dims: int, tuned: bool = False
) -> list[list[float]]:
    from langchain_openai import OpenAIEmbeddings

    emb = OpenAIEmbeddings(
        model=MODEL,
        api_key=KEY,
        base_url=base_url,
        dimensions=dims,
        check_embedding_ctx_length=False,  # it would tokenize with tiktoken, for OpenAI models
        **({"chunk_size": 2048} if tuned else {}),
    )
    return emb.embed_documents(texts)


def run_llamaindex_openai(
    texts: list[str], base_url: str, dims: int, tuned: bool = False
) -> list[list[float]]:
    from llama_index.embeddings.openai import OpenAIEmbedding

    emb = OpenAIEmbedding(
        model_name=MODEL,
        api_key=KEY,
        api_base=base_url,
        dimensions=dims,
        **({"embed_batch_size": 2048, "num_workers": 8} if tuned else {}),
    )
    if tuned:
        return asyncio.run(emb.aget_text_embedding_batch(texts))
    return emb.get_text_embedding_batch(texts)


RUNNERS: dict[str, Callable[[list[str], str, int], list[list[float]]]] = {
    "floor": run_floor,
    "ours-langchain-sync": lambda t, u, d: run_ours_langchain(t, u, d, False),
    "ours-langchain-async": lambda t, u, d: run_ours_langchain(t, u, d, True),
    "ours-llamaindex-sync": lambda t, u, d: run_ours_llamaindex(t, u, d, False),
    "ours-llamaindex-async": lambda t, u, d: run_ours_llamaindex(t, u, d, True),
    "langchain-openai": run_langchain_openai,
    "langchain-openai-tuned": lambda t, u, d: run_langchain_openai(t, u, d, True),
    "llamaindex-openai": run_llamaindex_openai,
    "llamaindex-openai-tuned": lambda t, u, d: run_llamaindex_openai(t, u, d, True),
    "ours-langchain-sync-without-otel": lambda t, u, d: run_ours_langchain(t, u, d, False),
    "ours-langchain-async-without-otel": lambda t, u, d: run_ours_langchain(t, u, d, True),
}


#: Imported before the clock starts: import time is paid once per process, not per ingest.
IMPORTS = {
    "floor": ["httpx"],
    "ours-langchain-sync": ["langchain_mixlayer"],
    "ours-langchain-async": ["langchain_mixlayer"],
    "ours-llamaindex-sync": ["llama_index_mixlayer"],
    "ours-llamaindex-async": ["llama_index_mixlayer"],
    "langchain-openai": ["langchain_openai"],
    "langchain-openai-tuned": ["langchain_openai"],
    "llamaindex-openai": ["llama_index.embeddings.openai"],
    "llamaindex-openai-tuned": ["llama_index.embeddings.openai"],
    "ours-langchain-sync-without-otel": ["langchain_mixlayer"],
    "ours-langchain-async-without-otel": ["langchain_mixlayer"],
}


def child(name: str, n: int, dims: int, base_url: str) -> dict[str, Any]:
    import importlib

    import numpy as np

    if name.endswith("-without-otel"):
        sys.modules["opentelemetry"] = None  # type: ignore[assignment]  # as if not installed
    for module in IMPORTS[name]:
        importlib.import_module(module)
    texts = texts_for(n)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    vectors = RUNNERS[name](texts, base_url, dims)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    from mixlayer_embeddings.emulator import embed_items

    # The emulator's vectors are a pure function of (text, dims, input_type).
    expected = embed_items(texts, dimensions=dims, input_type="document")
    got = np.asarray(vectors, dtype=np.float32)
    correct = got.shape == expected.shape and bool(np.allclose(got, expected, atol=1e-5))
    return {"client": name, "wall": wall, "cpu": cpu, "rss_mb": rss_mb, "correct": correct}


# -- the parent: start the emulator, run every client, print ratios ------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_emulator(latency_ms: float, *options: str) -> tuple[subprocess.Popen[bytes], str]:
    """The emulator CLI in its own process; ``options`` are more of its flags."""
    import httpx

    port = free_port()
    proc = subprocess.Popen(  # fixed arguments, our own entry point
        [
            sys.executable,
            "-m",
            "mixlayer_embeddings.emulator._cli",
            "--port",
            str(port),
            "--api-key",
            KEY,
            "--latency-ms",
            str(latency_ms),
            *options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    for _ in range(200):
        try:
            httpx.get(f"{base_url}/models", headers={"Authorization": f"Bearer {KEY}"})
            return proc, base_url
        except httpx.ConnectError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("emulator did not start")


def scenario(
    n: int, dims: int, latency_ms: float, clients: list[str], repeat: int
) -> list[dict[str, Any]]:
    proc, base_url = start_emulator(latency_ms)
    try:
        # Warm the emulator's feature cache so every client meets the same server.
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "floor",
                "--n",
                str(n),
                "--dims",
                str(dims),
                "--base-url",
                base_url,
            ],
            check=True,
            capture_output=True,
        )
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in clients}
        for _ in range(repeat):
            for name in clients:  # interleaved: a slow spell of the machine hits every client
                out = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--child",
                        name,
                        "--n",
                        str(n),
                        "--dims",
                        str(dims),
                        "--base-url",
                        base_url,
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
        return [
            {
                "client": name,
                "settings": CLIENTS[name],
                "wall": spread([r["wall"] for r in runs[name]]),
                "cpu": spread([r["cpu"] for r in runs[name]]),
                "rss_mb": spread([r["rss_mb"] for r in runs[name]]),
                "correct": all(r["correct"] for r in runs[name]),
            }
            for name in clients
        ]
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--dims", type=int, default=1024)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--clients", default=",".join(c for c in CLIENTS if not c.endswith("-without-otel"))
    )
    parser.add_argument("--scenarios", choices=("default", "all"), default="all")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--base-url")
    parser.add_argument(
        "--otel",
        action="store_true",
        help="measure the OpenTelemetry API's cost with no SDK (results/ingest-otel.json)",
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.n, args.dims, args.base_url)))
        return 0
    clients = list(OTEL_CLIENTS) if args.otel else args.clients.split(",")
    if "floor" not in clients:
        clients.insert(0, "floor")
    runs = [(args.dims, args.latency_ms)]
    if args.scenarios == "all" and not args.otel:
        runs += [(4096, args.latency_ms), (args.dims, 100.0)]
    scenarios = []
    ok = True
    for dims, latency in runs:
        results = scenario(args.n, dims, latency, clients, args.repeat)
        scenarios.append({"n": args.n, "dims": dims, "latency_ms": latency, "results": results})
        print(json.dumps(scenarios[-1]), flush=True)
        ok &= all(r["correct"] for r in results)
    save("ingest-otel" if args.otel else "ingest", {"repeat": args.repeat, "scenarios": scenarios})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
