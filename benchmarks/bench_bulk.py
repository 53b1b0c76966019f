"""Corpus scale: ``mixlayer-embed`` on up to 1,000,000 short texts against the emulator.

    python benchmarks/bench_bulk.py [--sizes 100000 300000 1000000] [--dims 256]
        [--latency-ms 50] [--workers 2] [--skip-kill] [--skip-faults] [--skip-numpy]

Each run is its own process (peak RSS from wait4), against an emulator in another process.
Reported, in one run: wall, texts/s and peak RSS per size (RSS must not grow with N); the row
count and every vector checked against the emulator's function; a kill -9 at ~40% then a
rerun (requests against the uninterrupted run, and the sorted result byte-identical); the
same corpus with a 10% fault rate and poison rows; and numpy against lists for 20,000 texts
at 1024 dimensions (peak traced memory above the output, and CPU).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).parent))
import bench_ingest
from _report import save
from bench_ingest import KEY, MODEL

#: What the runs are: stated with the results.
SETTINGS = (
    "mixlayer-embed defaults (--batch-size 2048, --max-concurrency 8, --max-retries 3, "
    "parquet) with --id-field id and --dimensions; the emulator in its own process (2 "
    "workers); peak RSS of the CLI process by /usr/bin/time"
)

POISON = "x " * 40_000


def start_emulator(latency_ms: float, workers: int, fault_rate: float = 0.0) -> tuple[Any, str]:
    return bench_ingest.start_emulator(
        latency_ms, "--workers", str(workers), "--fault-rate", str(fault_rate)
    )


def stats(base_url: str) -> dict[str, int]:
    root = base_url.removesuffix("/v1")
    response = httpx.get(f"{root}/_emulator/stats", headers={"Authorization": f"Bearer {KEY}"})
    return dict(response.json())


def reset(base_url: str) -> None:
    root = base_url.removesuffix("/v1")
    httpx.post(f"{root}/_emulator/reset", headers={"Authorization": f"Bearer {KEY}"})


def text(i: int) -> str:
    return f"short text {i} about item {i % 977} and topic {i % 31}"


def write_input(path: Path, n: int, poison: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            body = POISON if i in poison else text(i)
            f.write(json.dumps({"id": f"doc-{i:07d}", "text": body}) + "\n")


def run_cli(source: Path, out: Path, base_url: str, dims: int, *extra: str, kill_at: float = 0.0,
            total: int = 0) -> dict[str, Any]:  # fmt: skip
    if "--restart" in extra:
        shutil.rmtree(out, ignore_errors=True)  # so a kill watcher never sees an old run's parts
    env = {**os.environ, "MIXLAYER_API_KEY": KEY, "MIXLAYER_BASE_URL": base_url}
    env["MIXLAYER_EMBEDDING_MODEL"] = MODEL  # the CLI has no default model, as the clients
    # Peak RSS from /usr/bin/time: a child forked from this (large) process would count the
    # parent's pages in its own ru_maxrss.
    command = ["/usr/bin/time", "-f", "maxrss_kb=%M", sys.executable, "-m"]
    command += ["mixlayer_embeddings._bulk", str(source), str(out)]
    command += ["--id-field", "id", "--dimensions", str(dims), "--no-progress", *extra]
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    killed = False
    if kill_at:
        from mixlayer_embeddings._bulk import committed_parts

        while proc.poll() is None:  # SIGKILL goes to the CLI, under /usr/bin/time
            done = sum(part.rows for part in committed_parts(out)) if out.exists() else 0
            if done >= kill_at * total:
                children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text()
                for pid in children.split():
                    os.kill(int(pid), signal.SIGKILL)
                killed = True
                break
            time.sleep(0.02)
    _, status, _ = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode() if proc.stderr else ""
    peak = [line for line in err.splitlines() if line.startswith("maxrss_kb=")]
    err = "\n".join(line for line in err.splitlines() if not line.startswith("maxrss_kb="))
    return {
        "wall": time.perf_counter() - started,
        "rss_mb": int(peak[-1].split("=")[1]) / 1024 if peak else None,
        "exit": os.waitstatus_to_exitcode(status),
        "killed": killed,
        "stderr": err.strip().splitlines()[-1:] if err else [],
    }


def read_output(out: Path) -> tuple[list[str], np.ndarray]:
    tables = [pq.read_table(p) for p in sorted(out.glob("part-*.parquet"))]
    table = pa.concat_tables(tables)
    width = table.schema.field("embedding").type.list_size
    vectors = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, width)
    return table.column("id").to_pylist(), vectors


def check_vectors(ids: list[str], vectors: np.ndarray, dims: int) -> int:
    """Every vector against the emulator's function; returns the number checked."""
    from mixlayer_embeddings.emulator import embed_items

    for start in range(0, len(ids), 8192):
        chunk = ids[start : start + 8192]
        expected = embed_items(
            [text(int(i.removeprefix("doc-"))) for i in chunk], dimensions=dims,
            input_type="document",
        )  # fmt: skip
        if not np.array_equal(vectors[start : start + len(chunk)], expected):
            raise AssertionError(f"vectors differ in rows {start}..{start + len(chunk)}")
    return len(ids)


def sorted_digest(ids: list[str], vectors: np.ndarray) -> str:
    order = np.argsort(np.array(ids))
    digest = hashlib.sha256()
    for i in order:
        digest.update(ids[i].encode())
        digest.update(vectors[i].tobytes())
    return digest.hexdigest()


def numpy_vs_list(base_url: str, n: int = 20_000, dims: int = 1024) -> list[dict[str, Any]]:
    from mixlayer_embeddings import MixlayerClient

    texts = [text(i) for i in range(n)]
    rows = []
    with MixlayerClient(api_key=KEY, model=MODEL, base_url=base_url) as client:
        client.embed_array(texts[:100], dimensions=dims)  # warm up
        for name, call in (
            ("numpy (embed_array)", lambda: client.embed_array(texts, dimensions=dims).vectors),
            ("lists (embed)", lambda: client.embed(texts, dimensions=dims).embeddings),
        ):
            # CPU and wall without tracing (tracemalloc slows every allocation), then memory.
            cpu, wall = time.process_time(), time.perf_counter()
            result = call()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            del result
            tracemalloc.start()
            result = call()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            array_bytes = n * dims * 4
            rows.append({
                "path": name, "peak_mb": peak / 2**20, "peak_over_array": peak / array_bytes,
                "cpu_s": cpu, "wall_s": wall, "rows": len(result),
            })  # fmt: skip
            del result
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--workers", type=int, default=2)
    # Inputs and outputs of the runs (git-ignored: a million rows).
    parser.add_argument("--work", type=Path, default=Path("benchmarks/results/bulk"))
    parser.add_argument("--skip-kill", action="store_true")
    parser.add_argument("--skip-faults", action="store_true")
    parser.add_argument("--skip-numpy", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    proc, base_url = start_emulator(args.latency_ms, args.workers)
    report: dict[str, Any] = {"sizes": [], "latency_ms": args.latency_ms, "dims": args.dims}
    try:
        largest = max(args.sizes)
        for n in sorted(args.sizes):
            source = args.work / f"in-{n}.jsonl"
            if not source.exists():
                write_input(source, n)
            out = args.work / f"out-{n}"
            reset(base_url)
            result = run_cli(source, out, base_url, args.dims, "--restart")
            ids, vectors = read_output(out)
            checked = check_vectors(ids, vectors, args.dims) if n == largest else 0
            row = {"n": n, **result, "rows": len(ids), "checked": checked,
                   "requests": stats(base_url)["requests"],
                   "texts_per_s": n / result["wall"]}  # fmt: skip
            print(json.dumps(row), flush=True)
            report["sizes"].append(row)
        n = largest
        source, out = args.work / f"in-{n}.jsonl", args.work / f"out-{n}"
        if not args.skip_kill:
            clean_ids, clean_vectors = read_output(out)
            clean_requests = report["sizes"][-1]["requests"]
            killed_out = args.work / f"out-{n}-killed"
            reset(base_url)
            first = run_cli(source, killed_out, base_url, args.dims, "--restart", kill_at=0.4,
                            total=n)  # fmt: skip
            time.sleep(0.5)
            second = run_cli(source, killed_out, base_url, args.dims)
            ids, vectors = read_output(killed_out)
            kill = {
                "killed": first["killed"], "rerun_exit": second["exit"],
                "requests_total": stats(base_url)["requests"], "requests_clean": clean_requests,
                "rows": len(ids),
                "identical_sorted": sorted_digest(ids, vectors)
                == sorted_digest(clean_ids, clean_vectors),
                "rerun": second["stderr"],
            }  # fmt: skip
            print(json.dumps(kill), flush=True)
            report["kill"] = kill
        if not args.skip_faults:
            proc.terminate()
            proc.wait()
            proc, base_url = start_emulator(args.latency_ms, args.workers, fault_rate=0.1)
            poison = {17, 123_456 % n, n // 2, n - 3}
            faulty_source = args.work / f"in-{n}-poison.jsonl"
            write_input(faulty_source, n, poison)
            faulty_out = args.work / f"out-{n}-faults"
            result = run_cli(faulty_source, faulty_out, base_url, args.dims, "--restart",
                             "--max-retries", "8")  # fmt: skip
            ids, vectors = read_output(faulty_out)
            lines = (faulty_out / "_rejects.jsonl").read_text().splitlines()
            rejects = [json.loads(line)["row"] for line in lines]
            faults = {
                "exit": result["exit"], "wall": result["wall"], "rows": len(ids),
                "good_rows_expected": n - len(poison), "rejects": sorted(rejects),
                "poison": sorted(poison), "checked": check_vectors(ids, vectors, args.dims),
                "emulator": stats(base_url), "summary": result["stderr"],
            }  # fmt: skip
            print(json.dumps(faults), flush=True)
            report["faults"] = faults
        if not args.skip_numpy:
            report["numpy_vs_list"] = numpy_vs_list(base_url)
            print(json.dumps(report["numpy_vs_list"]), flush=True)
    finally:
        proc.terminate()
        proc.wait()
    # Numbers only: the tool's stderr (in the printed lines above) names this machine's paths.
    for section in ("kill", "faults"):
        for text_field in ("rerun", "summary"):
            report.get(section, {}).pop(text_field, None)
    for row in report["sizes"]:
        row.pop("stderr", None)
    report["settings"] = SETTINGS
    save("bulk", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
