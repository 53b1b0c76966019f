"""Against a per-key rate limit: requests, 429s and wall time, ours against langchain-openai.

    python benchmarks/bench_rate_limit.py [--limit 10] [--n 150] [--repeat 3] [--before PATH]

The emulator (its own process) allows ``--limit`` requests per second per key, with a bucket
of the same size, and says when to come back in one of three ways: ``exact`` (Retry-After in
fractional seconds and retry-after-ms), ``seconds`` (Retry-After rounded up to whole seconds,
as gateways send it) or ``none``. Each client embeds ``--n`` texts one per request (the most
requests, so the limit is what bounds the run). Ideal wall: (n - limit) / limit seconds.
Each client runs in its own process (``ours-before`` from a checkout of main given by
``--before``); figures are medians with min-max over ``--repeat`` runs, interleaved.
Raw results: ``benchmarks/results/rate_limit.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save, spread
from bench_ingest import KEY, MODEL, start_emulator

CLIENTS = {
    "ours": "MixlayerClient(batch_size=1, max_retries=10), otherwise defaults",
    "ours-before": "the same at main before issue 18",
    "langchain-openai": "OpenAIEmbeddings(chunk_size=1, max_retries=10), otherwise defaults",
}


def child(name: str, n: int, base_url: str) -> None:
    texts = [f"text {i}" for i in range(n)]
    started = time.perf_counter()
    if name.startswith("ours"):
        from mixlayer_embeddings import MixlayerClient

        with MixlayerClient(
            api_key=KEY, model=MODEL, base_url=base_url, batch_size=1, max_retries=10
        ) as client:
            done = len(client.embed(texts).embeddings)
    else:
        from langchain_openai import OpenAIEmbeddings

        emb = OpenAIEmbeddings(
            model=MODEL,
            api_key=KEY,  # type: ignore[arg-type]
            base_url=base_url,
            chunk_size=1,
            check_embedding_ctx_length=False,
            max_retries=10,
        )
        done = len(emb.embed_documents(texts))
    print(json.dumps({"wall": time.perf_counter() - started, "done": done}))


def one_run(name: str, style: str, args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    proc, base_url = start_emulator(0.0, "--rate-limit", str(args.limit), "--retry-after", style)
    env = dict(os.environ)
    if name == "ours-before":
        env["PYTHONPATH"] = str(args.before)
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--child", name, "--n", str(args.n), "--base-url", base_url],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
        stats = httpx.get(
            f"{base_url.removesuffix('/v1')}/_emulator/stats",
            headers={"Authorization": f"Bearer {KEY}"},
        ).json()
    finally:
        proc.terminate()
        proc.wait(10)
    ideal = (args.n - args.limit) / args.limit
    return {
        "wall": result["wall"],
        "vs_ideal": ideal / result["wall"],
        "share_429": stats["rate_limited"] / stats["requests"],
        "requests": stats["requests"],
        "complete": result["done"] == args.n,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=float, default=10.0)
    parser.add_argument("--n", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", type=Path, help="a checkout of main before issue 18")
    parser.add_argument("--child")
    parser.add_argument("--base-url")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.n, args.base_url)
        return 0
    clients = [c for c in CLIENTS if c != "ours-before" or args.before]
    results = []
    for style in ("exact", "seconds", "none"):
        runs: dict[str, list[dict[str, Any]]] = {c: [] for c in clients}
        for _ in range(args.repeat):
            for name in clients:
                runs[name].append(one_run(name, style, args))
        for name in clients:
            entry = {
                "retry_after": style,
                "client": name,
                "settings": CLIENTS[name],
                "complete": all(r["complete"] for r in runs[name]),
                "vs_ideal": spread([r["vs_ideal"] for r in runs[name]]),
                "share_429": spread([r["share_429"] for r in runs[name]]),
                "wall": spread([r["wall"] for r in runs[name]]),
            }
            results.append(entry)
            print(json.dumps(entry), flush=True)
    save("rate_limit", {"limit": args.limit, "n": args.n, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
