"""Load: 200,000 short texts through the async path at high concurrency, against the emulator.

    python benchmarks/bench_load.py [--n 200000] [--dims 256] [--concurrency 32] [--repeat 3]

Reports wall time, peak RSS against the size of the output, and whether any task, thread or
socket outlived the call; each run in its own process (peak RSS is per process), medians with
min-max. The emulator runs in its own process. Raw results: ``results/load.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _report import save, spread
from bench_ingest import KEY, MODEL, start_emulator

SETTINGS = "AsyncMixlayerClient defaults but max_concurrency (2048 texts and ~32k tokens a request)"


def open_sockets() -> int:
    fds = Path(f"/proc/{os.getpid()}/fd")
    return sum(1 for fd in fds.iterdir() if "socket" in os.path.realpath(fd))


async def ingest(base_url: str, n: int, dims: int, concurrency: int) -> dict[str, float]:
    from mixlayer_embeddings import AsyncMixlayerClient

    texts = [f"short text {i} about item {i % 977}" for i in range(n)]
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    async with AsyncMixlayerClient(
        api_key=KEY, model=MODEL, base_url=base_url, max_concurrency=concurrency
    ) as client:
        started = time.perf_counter()
        response = await client.embed(texts, dimensions=dims, input_type="document")
        wall = time.perf_counter() - started
        sockets_during = open_sockets()
    assert len(response.embeddings) == n
    assert all(len(v) == dims for v in response.embeddings)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # One list of `dims` Python floats per text: 24 bytes a float, 8 a pointer, ~56 a list.
    output_mb = n * (dims * 32 + 56) / 2**20
    leftover_tasks = len(asyncio.all_tasks()) - 1
    return {
        "wall": wall,
        "requests": response.requests,
        "rss_before_mb": rss_before,
        "rss_peak_mb": rss_peak,
        "output_mb": output_mb,
        "sockets_during": sockets_during,
        "leftover_tasks": leftover_tasks,
    }


def child(base_url: str, n: int, dims: int, concurrency: int) -> dict[str, float]:
    sockets_before = open_sockets()
    r = asyncio.run(ingest(base_url, n, dims, concurrency))
    return {
        **r,
        "sockets_before": sockets_before,
        "sockets_after": open_sockets(),
        "threads_at_exit": threading.active_count(),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child-of")
    args = parser.parse_args()
    if args.child_of:
        print(json.dumps(child(args.child_of, args.n, args.dims, args.concurrency)))
        return 0
    proc, base_url = start_emulator(args.latency_ms)
    try:
        runs = [
            json.loads(
                subprocess.run(
                    [sys.executable, __file__, "--child-of", base_url, "--n", str(args.n),
                     "--dims", str(args.dims), "--concurrency", str(args.concurrency)],
                    check=True, capture_output=True, text=True,
                ).stdout
            )
            for _ in range(args.repeat)
        ]  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(10)
    summary = {
        key: spread([r[key] for r in runs])
        for key in ("wall", "rss_peak_mb", "rss_before_mb", "output_mb", "sockets_during")
    }
    summary["texts_per_second"] = spread([args.n / r["wall"] for r in runs])
    leaks = {
        "sockets_left": max(r["sockets_after"] - r["sockets_before"] for r in runs),
        "tasks_left": max(r["leftover_tasks"] for r in runs),
        "threads_at_exit": max(r["threads_at_exit"] for r in runs),
    }
    save(
        "load",
        {
            "n": args.n,
            "dims": args.dims,
            "latency_ms": args.latency_ms,
            "settings": f"{SETTINGS}: max_concurrency {args.concurrency}",
            "requests": runs[0]["requests"],
            "summary": summary,
            "leaks": leaks,
        },
    )
    print(json.dumps({"summary": summary, "leaks": leaks}, indent=1))
    return 1 if leaks["sockets_left"] > 0 or leaks["tasks_left"] > 0 else 0


if __name__ == "__main__":
    sys.exit(main())
