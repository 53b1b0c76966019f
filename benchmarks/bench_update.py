"""Re-embedding a corpus that changed, and corpora that repeat themselves, with ``mixlayer-embed``.

    python benchmarks/bench_update.py [--rows 1000000] [--changed 0.01] [--repeats 3]
        [--tokens-per-second 400000] [--dup-rows 200000] [--dup-share 0.3]

Against the emulator as an inference server (``--tokens-per-second``: a request's time grows
with its tokens, so work not sent is time saved). Interleaved, ``--repeats`` times each:

- update: a corpus of ``--rows`` rows is embedded once; then ``--changed`` of its rows change
  (half edited, a quarter new, a quarter deleted) and ``--update`` runs on a copy of that
  output, with the changed corpus in its order and shuffled, against a full re-run of the
  changed corpus into an empty folder. Wall time, requests and texts sent; each updated output
  is checked equal, id for id, to the re-run's.
- dedupe: ``--dup-rows`` rows of which ``--dup-share`` are boilerplate (50 distinct strings:
  cookie banners, footers), with ``--dedupe`` (the default) and ``--no-dedupe``.

Both sides use the same settings: ``--dimensions 64``, the CLI's defaults otherwise
(batch_size 2048, max_concurrency 8, max_tokens_per_request 32768).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
from _report import save, spread
from bench_bulk import KEY, MODEL, reset, stats
from bench_ingest import start_emulator

DIMS = 64
SETTINGS = "mixlayer-embed --id-field doc_id --dimensions 64; CLI defaults otherwise"


def text(i: int, version: int = 0) -> str:
    suffix = f" (revised {version})" if version else ""
    return f"passage {i} on subject {i % 977} and theme {i % 31}{suffix}"


def write(path: Path, rows: list[tuple[int, str]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for doc_id, body in rows:
            f.write(json.dumps({"doc_id": doc_id, "text": body}) + "\n")


def run(source: Path, out: Path, base_url: str, *extra: str) -> dict[str, Any]:
    env = {**os.environ, "MIXLAYER_API_KEY": KEY, "MIXLAYER_BASE_URL": base_url}
    env["MIXLAYER_EMBEDDING_MODEL"] = MODEL
    command = [sys.executable, "-m", "mixlayer_embeddings._bulk", str(source), str(out)]
    command += ["--id-field", "doc_id", "--dimensions", str(DIMS), "--no-progress", *extra]
    reset(base_url)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 4):
        raise RuntimeError(f"{command}: exit {done.returncode}: {done.stderr[-2000:]}")
    served = stats(base_url)
    return {"wall": wall, "requests": served["requests"], "items": served["items"]}


def table_of(out: Path) -> tuple[list[Any], np.ndarray]:
    table = pq.read_table(out).sort_by("row")
    width = table.schema.field("embedding").type.list_size
    vectors = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, width)
    return table.column("id").to_pylist(), vectors


def update_bench(args: argparse.Namespace, base_url: str, work: Path) -> dict[str, Any]:
    rng = random.Random(7)  # noqa: S311 - a seeded corpus, not a secret
    rows = [(i, text(i)) for i in range(args.rows)]
    source = work / "corpus.jsonl"
    write(source, rows)
    base = work / "base"
    first = run(source, base, base_url)
    changes = int(args.rows * args.changed)
    edited = set(rng.sample(range(args.rows), changes // 2))
    deleted = set(rng.sample(sorted(set(range(args.rows)) - edited), changes // 4))
    new_rows = [
        (args.rows + k, text(args.rows + k)) for k in range(changes - len(edited) - len(deleted))
    ]
    changed = [(i, text(i, 1) if i in edited else body) for i, body in rows if i not in deleted]
    write(source, changed + new_rows)
    # The same changed corpus with its rows in another order (an export sorted differently):
    # carrying a vector over must not depend on where its row now is.
    shuffled_rows = changed + new_rows
    rng.shuffle(shuffled_rows)
    shuffled = work / "shuffled.jsonl"
    write(shuffled, shuffled_rows)
    results: dict[str, list[dict[str, Any]]] = {"update": [], "update_shuffled": [], "full": []}
    for _ in range(args.repeats):
        for name, corpus in (("update", source), ("update_shuffled", shuffled)):
            target = work / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(base, target)
            results[name].append(run(corpus, target, base_url, "--update"))
        full = work / "full"
        shutil.rmtree(full, ignore_errors=True)
        results["full"].append(run(source, full, base_url))
    ids_u, vec_u = table_of(work / "update")
    ids_s, vec_s = table_of(work / "update_shuffled")
    ids_f, vec_f = table_of(work / "full")
    by_id = {row_id: vec_s[k] for k, row_id in enumerate(ids_s)}
    return {
        "rows": args.rows,
        "changed": changes,
        "first_run": first,
        "equal_to_full_rerun": ids_u == ids_f and bool(np.array_equal(vec_u, vec_f)),
        "shuffled_equal_to_full_rerun": sorted(ids_s) == sorted(ids_f)
        and all(np.array_equal(by_id[row_id], vec_f[k]) for k, row_id in enumerate(ids_f)),
        "runs": {
            name: {key: spread([r[key] for r in runs]) for key in ("wall", "requests", "items")}
            for name, runs in results.items()
        },
    }


def dedupe_bench(args: argparse.Namespace, base_url: str, work: Path) -> dict[str, Any]:
    rng = random.Random(11)  # noqa: S311 - a seeded corpus, not a secret
    boilerplate = [
        f"Accept cookies? We use cookies to improve this site. Variant {k}." for k in range(50)
    ]
    rows = [
        (i, rng.choice(boilerplate) if rng.random() < args.dup_share else text(i))
        for i in range(args.dup_rows)
    ]
    source = work / "dups.jsonl"
    write(source, rows)
    results: dict[str, list[dict[str, Any]]] = {"dedupe": [], "no_dedupe": []}
    for _ in range(args.repeats):
        for name, flag in (("dedupe", "--dedupe"), ("no_dedupe", "--no-dedupe")):
            out = work / name
            shutil.rmtree(out, ignore_errors=True)
            results[name].append(run(source, out, base_url, flag))
    ids_d, vec_d = table_of(work / "dedupe")
    ids_n, vec_n = table_of(work / "no_dedupe")
    return {
        "rows": args.dup_rows,
        "share": args.dup_share,
        "distinct_texts": len({body for _, body in rows}),
        "equal": ids_d == ids_n and bool(np.array_equal(vec_d, vec_n)),
        "runs": {
            name: {key: spread([r[key] for r in runs]) for key in ("wall", "requests", "items")}
            for name, runs in results.items()
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tokens-per-second", type=float, default=400_000)
    parser.add_argument("--dup-rows", type=int, default=200_000)
    parser.add_argument("--dup-share", type=float, default=0.3)
    parser.add_argument("--skip-dedupe", action="store_true", help="only the update runs")
    args = parser.parse_args()
    emulator, base_url = start_emulator(
        0, "--workers", "2", "--tokens-per-second", str(args.tokens_per_second)
    )
    try:
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            update = update_bench(args, base_url, work)
            dedupe = None if args.skip_dedupe else dedupe_bench(args, base_url, work)
    finally:
        emulator.terminate()
        emulator.wait()
    payload = {
        "settings": SETTINGS,
        "tokens_per_second": args.tokens_per_second,
        "update": update,
        "dedupe": dedupe,
    }
    print(json.dumps(payload, indent=1))
    save("update", payload)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
