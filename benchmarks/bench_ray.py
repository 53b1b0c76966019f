"""Ray Data: throughput with 1, 2 and 4 actors, a plain openai-SDK ``map_batches`` for
comparison, and a per-key rate limit with and without the shared budget.

    python benchmarks/bench_ray.py [--n 200000] [--dims 256] [--latency-ms 50]

The emulator runs in its own process(es); Ray on this machine (``ray.init(num_cpus=4)``: actors
take half a CPU each, the work is waiting on HTTP). Every vector is checked bit for bit against
the single-process ``MixlayerClient`` result for the same texts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import ray

sys.path.insert(0, str(Path(__file__).parent))
import bench_ingest
from _report import save, spread
from bench_bulk import KEY, MODEL, start_emulator, stats

#: Each path and its settings, stated with the results.
SETTINGS = {
    "embed_dataset": "mixlayer_embeddings.ray_data.embed_dataset: batch_size 2048, "
    "max_concurrency --per-actor-concurrency per actor, shared_rate_limit off",
    "openai": "map_batches + openai SDK (OpenAI().embeddings.create, floats over JSON), "
    "batch_size 2048, ActorPoolStrategy(size=4), num_cpus 0.5",
}


class OpenAIEmbedder:
    """The plain way: the openai SDK in a map_batches actor, floats over JSON."""

    def __init__(self, base_url: str, dims: int) -> None:
        import openai

        self.client = openai.OpenAI(base_url=base_url, api_key=os.environ["MIXLAYER_API_KEY"])
        self.dims = dims

    def __call__(self, batch: pa.Table) -> pa.Table:
        texts = batch.column("text").to_pylist()
        response = self.client.embeddings.create(
            model=MODEL, input=texts, dimensions=self.dims, extra_body={"input_type": "document"}
        )
        vectors = np.array([d.embedding for d in response.data], dtype=np.float32)
        flat = pa.array(vectors.reshape(-1), type=pa.float32())
        return batch.append_column("embedding", pa.FixedSizeListArray.from_arrays(flat, self.dims))


def collect(ds: Any, dims: int) -> tuple[list[str], np.ndarray]:
    table = pa.concat_tables(ray.get(ds.to_arrow_refs())).sort_by("id")
    column = table.column("embedding").combine_chunks()
    return table.column("id").to_pylist(), column.flatten().to_numpy().reshape(-1, dims)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--per-actor-concurrency",
        type=int,
        default=1,
        help="requests in flight per actor in the scaling runs (1: scaling shows in actors)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each throughput path")
    args = parser.parse_args()
    from mixlayer_embeddings import MixlayerClient
    from mixlayer_embeddings.ray_data import embed_dataset

    proc, base_url = start_emulator(args.latency_ms, 2)
    texts = [f"short text {i} about item {i % 977}" for i in range(args.n)]
    ids = [f"doc-{i:07d}" for i in range(args.n)]
    report: dict[str, Any] = {"n": args.n, "dims": args.dims, "latency_ms": args.latency_ms}
    try:
        with MixlayerClient(api_key=KEY, model=MODEL, base_url=base_url) as client:
            expected = client.embed_array(
                texts, dimensions=args.dims, input_type="document"
            ).vectors
        env = {
            "MIXLAYER_API_KEY": KEY,
            "MIXLAYER_BASE_URL": base_url,
            "MIXLAYER_EMBEDDING_MODEL": MODEL,  # the workers', as a user's cluster would have it
        }
        ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": env})  # fmt: skip
        ray.data.DataContext.get_current().enable_progress_bars = False
        # Many blocks: an actor pool hands out blocks, so one block would feed one actor.
        table = pa.table({"id": ids, "text": texts})
        source = ray.data.from_arrow(table).repartition(args.n // 2048 + 1).materialize()

        def timed(path: str, run: Any) -> None:
            walls, same = [], True
            for _ in range(args.repeat):
                started = time.perf_counter()
                out = run().materialize()
                walls.append(time.perf_counter() - started)
                got_ids, vectors = collect(out, args.dims)
                same &= got_ids == ids and np.array_equal(vectors, expected)
            rows.append({"path": path, "wall_s": spread(walls),
                         "texts_per_s": spread([args.n / w for w in walls]),
                         "identical": same})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)

        rows: list[dict[str, Any]] = []
        for actors in (1, 2, 4):
            timed(
                f"embed_dataset, {actors} actor(s)",
                lambda actors=actors: embed_dataset(
                    source, dimensions=args.dims, concurrency=actors, batch_size=2048,
                    shared_rate_limit=False, max_concurrency=args.per_actor_concurrency,
                ),
            )  # fmt: skip
        timed(
            "map_batches + openai SDK, 4 actors",
            lambda: source.map_batches(
                OpenAIEmbedder, fn_constructor_kwargs={"base_url": base_url, "dims": args.dims},
                batch_size=2048, batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=4), num_cpus=0.5,  # 1 request a call
            ),
        )  # fmt: skip
        report["throughput"] = rows

        limited_rows = []
        proc.terminate()
        proc.wait()
        small = source.limit(40_000).materialize()
        for shared in (False, True):
            # A rate-limited emulator (20 requests/s per key), fresh for each run.
            proc, limited_url = bench_ingest.start_emulator(
                args.latency_ms, "--rate-limit", "20", "--workers", "2"
            )
            started = time.perf_counter()
            # 2048 rows per actor call sent as 8 requests of 256 at once: 32 in flight over the
            # 4 actors, far more than the limit allows.
            out = embed_dataset(
                small, dimensions=args.dims, concurrency=4, batch_size=2048, request_size=256,
                shared_rate_limit=shared, base_url=limited_url, max_retries=20,
            ).materialize()  # fmt: skip
            wall = time.perf_counter() - started
            seen = stats(limited_url)
            ok = seen["requests"] - seen["rate_limited"]
            limited_rows.append({
                "shared_budget": shared, "wall_s": round(wall, 2),
                "requests": seen["requests"], "answered_429": seen["rate_limited"],
                "share_429": round(seen["rate_limited"] / seen["requests"], 3),
                "ok_requests_per_s": round(ok / wall, 1), "limit": 20,
                "rows": out.count(),
            })  # fmt: skip
            print(json.dumps(limited_rows[-1]), flush=True)
        report["rate_limit"] = limited_rows
    finally:
        proc.terminate()
        proc.wait()
        ray.shutdown()
    report["settings"] = {
        **SETTINGS,
        "per_actor_concurrency": args.per_actor_concurrency,
        "repeat": args.repeat,
    }
    save("ray", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
