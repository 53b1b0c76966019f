"""Against a per-key rate limit: requests, 429s and wall time, ours against langchain-openai.

    python benchmarks/bench_rate_limit.py [--limit 5] [--n 200]

The emulator (in this process, its own thread) allows ``--limit`` requests per second per key
with a bucket of the same size; each client embeds ``--n`` texts one per request (the most
requests, so the limit is what bounds the run). Ideal wall: (n - limit) / limit seconds.
"""

from __future__ import annotations

import argparse
import json
import time

from mixlayer_embeddings.emulator import Emulator

MODEL = "qwen/qwen3-embedding-8b"


def ours(emu: Emulator, texts: list[str]) -> None:
    from mixlayer_embeddings import MixlayerClient

    with MixlayerClient(
        api_key=emu.api_key, model=MODEL, base_url=emu.base_url, batch_size=1, max_retries=10
    ) as client:
        assert len(client.embed(texts).embeddings) == len(texts)


def langchain_openai(emu: Emulator, texts: list[str]) -> None:
    from langchain_openai import OpenAIEmbeddings

    emb = OpenAIEmbeddings(
        model=MODEL,
        api_key=emu.api_key,
        base_url=emu.base_url,
        chunk_size=1,
        check_embedding_ctx_length=False,
        max_retries=10,
    )
    assert len(emb.embed_documents(texts)) == len(texts)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=float, default=5.0)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    texts = [f"text {i}" for i in range(args.n)]
    ideal = (args.n - args.limit) / args.limit
    for name, run in (("ours", ours), ("langchain-openai", langchain_openai)):
        with Emulator(rate_limit=args.limit) as emu:
            started = time.perf_counter()
            run(emu, texts)
            wall = time.perf_counter() - started
            limited = emu.state.rate_limited
            total = emu.state.requests
        print(json.dumps({
            "client": name, "requests": total, "answered_429": limited,
            "share_429": round(limited / total, 3), "wall_s": round(wall, 2),
            "ideal_s": round(ideal, 2), "throughput_vs_ideal": round(ideal / wall, 3),
        }), flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
