"""Against an inference server: does each client finish, how much of the server does it use,
and how much of the server's work does it waste? Ours and the peers, side by side, one run.

    python benchmarks/bench_capacity.py [--repeat 3] [--before PATH_TO_A_CHECKOUT_OF_MAIN]

The emulator runs in its own process as one accelerator (``--tokens-per-second T``): requests
are worked through first come first served, each for (its tokens / T) seconds, and the work
goes on after a client gives up. A fresh emulator serves each run. The grid:

- texts of ~10, ~100 and ~2,000 tokens (the emulator counts a word or a mark as a token);
- T of 20k, 100k and 1M tokens/s (about 30k is one H100 running a Qwen3-8B-shaped encoder);
- each client at its default timeouts, and every client at a read timeout of 2 s ("scaled":
  the default 60 s against a server 30 times slower, or texts 30 times longer).

The corpus of a cell is T x 2 s of work (1 s at 1M tokens/s; ``--scale 5``: five times that):
that is the ideal time.
Each client runs in its own process and its vectors are checked against the emulator's own
function; a run that does not finish within 45 s (over 20 times the ideal) counts as not
completed. Reported per
cell and client: completed runs, the fraction of the server's capacity reached
(ideal / wall), the server's wasted work (tokens worked through for answers nobody read, over
the corpus's tokens), and the requests the server worked through for a client that had gone.
Raw results: ``benchmarks/results/capacity.json``; tables: ``python benchmarks/report.py``.
"""

from __future__ import annotations

import argparse
import asyncio
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

DIMS = 64
SCALED_READ_TIMEOUT = 2.0
RUN_LIMIT_S = 45.0

#: Each client: what it is, and the settings it runs with (stated in every table).
CLIENTS: dict[str, str] = {
    "ours": "MixlayerEmbeddings defaults: batch_size 2048, max_concurrency 8, "
    "max_tokens_per_request 32768 (adapting), max_retries 3, read timeout 60 s",
    "ours-before": "the same class at the checkout given as --before (its commit is saved "
    "with the results), at its defaults",
    "langchain-openai": "OpenAIEmbeddings defaults: chunk_size 1000, one request at a time, "
    "max_retries 2, timeout 600 s (openai SDK)",
    "langchain-openai-tuned": "OpenAIEmbeddings chunk_size=2048 (no concurrency setting)",
    "llamaindex-openai": "OpenAIEmbedding defaults: embed_batch_size 100, one at a time, "
    "max_retries 10, timeout 60 s",
    "llamaindex-openai-tuned": "OpenAIEmbedding embed_batch_size=2048, num_workers=8 (async)",
}


def _commit_of(checkout: Path | None) -> str | None:
    if checkout is None:
        return None
    done = subprocess.run(
        # The contributor's own git, from PATH.
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None


def texts_for(count: int, tokens: int) -> list[str]:
    words = " ".join(f"w{j % 97}" for j in range(max(1, tokens - 1)))
    return [f"t{i} {words}" for i in range(count)]


# -- the clients (each in a child process) -------------------------------------------------------


def run_client(name: str, texts: list[str], base_url: str, timeout: float | None) -> Any:
    if name in ("ours", "ours-before"):
        from langchain_mixlayer import MixlayerEmbeddings

        kwargs: dict[str, Any] = {} if timeout is None else {"timeout": (10.0, timeout)}
        emb = MixlayerEmbeddings(
            model=MODEL, api_key=KEY, base_url=base_url, dimensions=DIMS, **kwargs
        )
        return emb.embed_documents(texts)
    if name.startswith("langchain-openai"):
        from langchain_openai import OpenAIEmbeddings

        kwargs = {} if timeout is None else {"request_timeout": timeout}
        if name.endswith("tuned"):
            kwargs["chunk_size"] = 2048
        lc = OpenAIEmbeddings(
            model=MODEL,
            api_key=KEY,  # type: ignore[arg-type]
            base_url=base_url,
            dimensions=DIMS,
            check_embedding_ctx_length=False,  # it would tokenize with tiktoken for OpenAI
            **kwargs,
        )
        return lc.embed_documents(texts)
    from llama_index.embeddings.openai import OpenAIEmbedding

    kwargs = {} if timeout is None else {"timeout": timeout}
    if name.endswith("tuned"):
        kwargs.update(embed_batch_size=2048, num_workers=8)
    li = OpenAIEmbedding(
        model_name=MODEL, api_key=KEY, api_base=base_url, dimensions=DIMS, **kwargs
    )
    if name.endswith("tuned"):
        return asyncio.run(li.aget_text_embedding_batch(texts))
    return li.get_text_embedding_batch(texts)


def child(name: str, count: int, tokens: int, base_url: str, timeout: float | None) -> None:
    import numpy as np

    texts = texts_for(count, tokens)
    started = time.perf_counter()
    try:
        vectors = run_client(name, texts, base_url, timeout)
        error = None
    except Exception as exc:  # a failed run is a result: report it
        vectors, error = None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    wall = time.perf_counter() - started
    correct = False
    if vectors is not None:
        from mixlayer_embeddings.emulator import embed_items

        expected = embed_items(texts, dimensions=DIMS, input_type="document")
        got = np.asarray(vectors, dtype=np.float32)
        correct = got.shape == expected.shape and bool(np.allclose(got, expected, atol=1e-5))
    print(json.dumps({"wall": wall, "error": error, "correct": correct}))


# -- the parent ---------------------------------------------------------------------------------


def one_run(
    name: str, cell: dict[str, Any], timeout: float | None, before: Path | None
) -> dict[str, Any]:
    import httpx

    proc, base_url = start_emulator(0.0, "--tokens-per-second", str(cell["T"]))
    env = dict(os.environ)
    if name == "ours-before":
        assert before is not None
        env["PYTHONPATH"] = str(before)
    command = [sys.executable, __file__, "--child", name, "--count", str(cell["count"])]
    command += ["--tokens", str(cell["tokens"]), "--base-url", base_url]
    if timeout is not None:
        command += ["--timeout", str(timeout)]
    try:
        out = subprocess.run(
            command,
            env=env,
            capture_output=True,
            text=True,
            timeout=max(RUN_LIMIT_S, 20 * cell["ideal"]),
            check=False,
        )
        lines = out.stdout.strip().splitlines()
        result = (
            json.loads(lines[-1])
            if lines
            else {"wall": None, "error": out.stderr.strip()[-200:], "correct": False}
        )
    except subprocess.TimeoutExpired:
        result = {"wall": None, "error": f"did not finish in {RUN_LIMIT_S:.0f} s", "correct": False}
    time.sleep(0.2)  # let the server finish booking what a failed client left
    stats = httpx.get(
        f"{base_url.removesuffix('/v1')}/_emulator/stats",
        headers={"Authorization": f"Bearer {KEY}"},
    ).json()
    proc.terminate()
    proc.wait(10)
    needed = cell["count"] * cell["tokens"]
    completed = bool(result["correct"]) and result["error"] is None
    return {
        "completed": completed,
        "wall": result["wall"],
        "capacity": (cell["ideal"] / result["wall"]) if completed and result["wall"] else None,
        "wasted": stats.get("wasted_tokens", 0) / needed,
        "abandoned": stats.get("abandoned", 0),
        "requests": stats.get("requests", 0),
        "rate_limited": stats.get("rate_limited", 0),
        "error": result["error"],
    }


def grid(
    scale: float = 1.0, rates: tuple[int, ...] = (20_000, 100_000, 1_000_000)
) -> list[dict[str, Any]]:
    cells = []
    for T in rates:
        ideal = (1.0 if T >= 1_000_000 else 2.0) * scale
        for tokens in (10, 100, 2000):
            count = max(1, int(T * ideal / tokens))
            cells.append({"T": T, "tokens": tokens, "count": count, "ideal": ideal})
    return cells


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="corpus size: x times 2 s of work (1 s at 1M)"
    )
    parser.add_argument("--rates", default="20000,100000,1000000", help="T values, tokens/s")
    parser.add_argument("--name", default="capacity", help="results/<name>.json")
    parser.add_argument("--timeouts", default="default,scaled")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--before", type=Path, help="a checkout of an earlier commit")
    parser.add_argument("--child")
    parser.add_argument("--count", type=int)
    parser.add_argument("--tokens", type=int)
    parser.add_argument("--base-url")
    parser.add_argument("--timeout", type=float)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.count, args.tokens, args.base_url, args.timeout)
        return 0
    clients = [c for c in args.clients.split(",") if c != "ours-before" or args.before]
    results = []
    rates = tuple(int(r) for r in args.rates.split(","))
    kinds = {"default": None, "scaled": SCALED_READ_TIMEOUT}
    for cell in grid(args.scale, rates):
        for timeout_kind in args.timeouts.split(","):
            timeout = kinds[timeout_kind]
            for name in clients:
                runs = [one_run(name, cell, timeout, args.before) for _ in range(args.repeat)]
                capacities = [r["capacity"] for r in runs if r["capacity"] is not None]
                entry = {
                    **cell,
                    "timeout": timeout_kind,
                    "client": name,
                    "completed": sum(r["completed"] for r in runs),
                    "runs": runs,
                    "capacity": spread(capacities) if capacities else None,
                    "wasted": spread([r["wasted"] for r in runs]),
                    "abandoned": spread([r["abandoned"] for r in runs]),
                }
                results.append(entry)
                print(json.dumps({k: v for k, v in entry.items() if k != "runs"}), flush=True)
                # Saved as it goes: a long run interrupted still leaves what it measured.
                save(
                    args.name,
                    {
                        "scale": args.scale,
                        "clients": {c: CLIENTS[c] for c in clients},
                        "scaled_read_timeout_s": SCALED_READ_TIMEOUT,
                        "repeat": args.repeat,
                        "before": _commit_of(args.before),
                        "results": results,
                    },
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
