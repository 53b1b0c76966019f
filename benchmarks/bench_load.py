"""Load: 200,000 short texts through the async path at high concurrency, against the emulator.

    python benchmarks/bench_load.py [--n 200000] [--dims 256] [--concurrency 32]

Reports wall time, peak RSS against the size of the output, and whether any task, thread or
socket outlived the call. The emulator runs in its own process.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_ingest import KEY, MODEL, start_emulator


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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    args = parser.parse_args()
    proc, base_url = start_emulator(args.latency_ms)
    try:
        sockets_before = open_sockets()
        r = asyncio.run(ingest(base_url, args.n, args.dims, args.concurrency))
        sockets_after = open_sockets()
    finally:
        proc.terminate()
        proc.wait(10)
    growth = r["rss_peak_mb"] - r["rss_before_mb"]
    print(
        f"# Load: {args.n} texts, dims {args.dims}, max_concurrency {args.concurrency}, "
        f"{args.latency_ms:.0f} ms per request\n"
    )
    print(
        f"- wall: {r['wall']:.2f} s for {r['requests']:.0f} requests "
        f"({args.n / r['wall']:.0f} texts/s)"
    )
    print(
        f"- peak RSS: {r['rss_peak_mb']:.0f} MB (grew {growth:.0f} MB while the output, "
        f"{r['output_mb']:.0f} MB of Python floats, was built: {growth / r['output_mb']:.2f}x)"
    )
    print(
        f"- sockets: {sockets_before} before, {r['sockets_during']:.0f} open inside the "
        f"client, {sockets_after} after closing it"
    )
    print(
        f"- tasks left after the call: {r['leftover_tasks']:.0f}; "
        f"threads alive at exit: {threading.active_count()}"
    )
    leak = sockets_after > sockets_before or r["leftover_tasks"] > 0
    return 1 if leak else 0


if __name__ == "__main__":
    sys.exit(main())
