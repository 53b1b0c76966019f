"""The sections of ``benchmarks/RESULTS.md``, one function each, made from what a benchmark
saved in ``benchmarks/results/<name>.json`` (``report.py`` puts them together)."""

from __future__ import annotations

import re
from typing import Any

from _report import fmt, load, table

__all__ = [
    "bulk",
    "capacity",
    "ingest",
    "load_section",
    "otel",
    "plan",
    "rate_limit",
    "ray_section",
    "tokens",
    "update",
]


def _machine(data: dict[str, Any]) -> str:
    m = data["machine"]
    return f"Python {m['python']}, {m['cpus']} CPUs, {m['platform']}"


def _settings(clients: dict[str, str]) -> str:
    return "\n".join(f"- `{name}`: {settings}" for name, settings in clients.items())


def capacity(name: str = "capacity") -> str:
    data = load(name)
    results = data["results"]
    clients = list(data["clients"])
    scale = data.get("scale", 1.0)
    before = data.get("before")
    against = f", ours against `{before}` (--before)" if before else ""
    lines = [
        f"## Capacity: an inference server, corpus x{scale:g}{against} "
        f"(benchmarks/bench_capacity.py, results/{name}.json)",
        "",
        f"{_machine(data)}. One accelerator at T tokens/s, first come first served, work going "
        f"on after a client gives up; a corpus of T x {2 * scale:g} s of work "
        f"({scale:g} s at 1M tokens/s), so the ideal is that. Read timeouts: each client's "
        "default, and "
        f'{data["scaled_read_timeout_s"]:g} s for every client ("scaled": the default 60 s '
        "against a server 30 times slower). Each cell: completed runs of "
        f"{data.get('repeat', 3)} (every vector checked), fraction of the server's capacity "
        "reached (ideal / wall; median and min-max of the completed runs), and the server's "
        "wasted work (tokens worked through for answers nobody read, over the corpus).",
        "",
        "Clients and their settings:",
        "",
        _settings(data["clients"]),
        "",
    ]
    for timeout in ("default", "scaled"):
        rows = []
        for r in results:
            if r["timeout"] != timeout:
                continue
            rows.append(r)
        cells = sorted({(r["T"], r["tokens"]) for r in rows})
        header = ["T tokens/s", "tokens/text", *clients]
        body = []
        for T, tokens in cells:
            row = [f"{T:,}", f"{tokens:,}"]
            for client in clients:
                match = [
                    r for r in rows if (r["T"], r["tokens"], r["client"]) == (T, tokens, client)
                ]
                if not match:
                    row.append("-")
                    continue
                r = match[0]
                waste = r["wasted"]["median"]
                runs = len(r["runs"])
                cap = fmt(r["capacity"]) if r["capacity"] else "failed"
                row.append(f"{r['completed']}/{runs}: {cap}; waste {waste:.2f}")
            body.append(row)
        lines += [f"### Read timeout: {timeout}", "", table(header, body), ""]
    failures = sorted(
        {
            (r["client"], re.sub(r"http://127\.0\.0\.1:\d+", "http://127.0.0.1:PORT", run["error"]))
            for r in results
            for run in r["runs"]
            if run["error"] and r["client"] in ("ours", "ours-before")
        }
    )
    failures = sorted({(c, re.sub(r"over [0-9.]+ s", "over N s", e)) for c, e in failures})
    if failures:
        lines += ["How our runs failed, when they did:", ""]
        lines += [f"- `{client}`: {error}" for client, error in failures[:12]]
        lines.append("")
    lines += [
        "The physical limit of every cell is 1.0 of the server's capacity, less the fixed "
        "cost of the first request's arrival and of the last answer's encoding, transfer and "
        "parsing (a larger share of a 2 s corpus than of a long one). At 1M tokens/s the "
        "2-CPU machine is the limit before the accelerator: the emulator computing vectors "
        "and JSON and the client parsing them share two cores.",
        "",
    ]
    return "\n".join(lines)


def ingest() -> str:
    data = load("ingest")
    lines = [
        "## Ingest against a fixed-latency emulator (benchmarks/bench_ingest.py)",
        "",
        f"{_machine(data)}. Each client in its own process, {data['repeat']} runs each, "
        "interleaved; wall and CPU seconds and peak RSS as median (min-max); ratios are of "
        "medians to the floor's. Every vector checked.",
        "",
    ]
    for scenario in data["scenarios"]:
        results = scenario["results"]
        floor = next(r for r in results if r["client"] == "floor")
        body = []
        for r in results:
            body.append(
                [
                    r["client"],
                    fmt(r["wall"]),
                    fmt(r["cpu"]),
                    fmt(r["rss_mb"], 0),
                    f"{r['wall']['median'] / floor['wall']['median']:.2f}x",
                    f"{r['cpu']['median'] / floor['cpu']['median']:.2f}x",
                    "correct" if r["correct"] else "WRONG",
                ]
            )
        lines += [
            f"### {scenario['n']} texts, dims {scenario['dims']}, "
            f"{scenario['latency_ms']:.0f} ms per request",
            "",
            table(
                [
                    "client",
                    "wall s",
                    "CPU s",
                    "peak RSS MB",
                    "wall / floor",
                    "CPU / floor",
                    "vectors",
                ],
                body,
                "lrrrrrl",
            ),
            "",
        ]
    lines += ["Clients and their settings:", ""]
    lines += [f"- `{r['client']}`: {r['settings']}" for r in data["scenarios"][0]["results"]]
    lines.append("")
    return "\n".join(lines)


def rate_limit() -> str:
    data = load("rate_limit")
    body = [
        [
            r["retry_after"],
            r["client"],
            fmt(r["vs_ideal"]),
            fmt(r["share_429"], 3),
            fmt(r["wall"]),
            "yes" if r["complete"] else "NO",
        ]
        for r in data["results"]
    ]
    settings = {r["client"]: r["settings"] for r in data["results"]}
    return "\n".join(
        [
            "## Rate limit (benchmarks/bench_rate_limit.py)",
            "",
            f"{_machine(data)}. A per-key bucket of {data['limit']:g} requests/s; {data['n']} "
            "texts, one per request; Retry-After exact (with retry-after-ms), rounded up to "
            "whole seconds (as gateways send it), or absent.",
            "",
            table(
                ["Retry-After", "client", "rate / ideal", "share of 429s", "wall s", "complete"],
                body,
                "llrrrl",
            ),
            "",
            _settings(settings),
            "",
        ]
    )


def tokens() -> str:
    data = load("tokens")
    body = [
        [r["sample"], str(r["bytes"]), str(r["tokens"]), f"{r['ratio']:.2f}"] for r in data["rows"]
    ]
    return "\n".join(
        [
            "## Token estimate calibration (benchmarks/calibrate_tokens.py)",
            "",
            "Qwen's tokenizer (the vocabulary dashscope ships) on short passages: UTF-8 bytes "
            "per token. The client starts at 3.0 and learns each corpus's ratio from the "
            "service's usage.",
            "",
            table(["sample", "UTF-8 bytes", "Qwen tokens", "bytes / token"], body, "lrrr"),
            "",
        ]
    )


def _yes(flag: bool | None) -> str:
    return "not measured" if flag is None else ("yes" if flag else "NO")


def update() -> str:
    data = load("update")
    up, dd = data["update"], data["dedupe"]
    rows = [
        [
            name,
            fmt(r["wall"]),
            fmt(r["requests"], 0),
            fmt(r["items"], 0),
        ]
        for name, r in (
            ("--update", up["runs"]["update"]),
            ("--update, rows shuffled", up["runs"].get("update_shuffled")),
            ("full re-run", up["runs"]["full"]),
        )
        if r is not None
    ]
    dup_rows = [
        [name, fmt(r["wall"]), fmt(r["requests"], 0), fmt(r["items"], 0)]
        for name, r in (
            ("--dedupe", dd["runs"]["dedupe"]),
            ("--no-dedupe", dd["runs"]["no_dedupe"]),
        )
    ]
    return "\n".join(
        [
            "## Incremental re-embedding and duplicates (benchmarks/bench_update.py)",
            "",
            f"{_machine(data)}. The emulator as an inference server at "
            f"{data['tokens_per_second']:,.0f} tokens/s; {data['settings']}; median (min-max) "
            f"of {up['runs']['update']['wall']['runs']} interleaved runs.",
            "",
            f"A corpus of {up['rows']:,} rows, {up['changed']:,} of them changed (half edited, "
            "a quarter new, a quarter deleted): `--update` on the earlier output against a "
            "full re-run into an empty folder; the shuffled run has the same changed corpus in "
            "another row order. Updated output equal to the re-run's, row for row: "
            f"{'yes' if up['equal_to_full_rerun'] else 'NO'}; shuffled, id for id: "
            f"{_yes(up.get('shuffled_equal_to_full_rerun'))}.",
            "",
            table(["run", "wall s", "requests", "texts sent"], rows, "lrrr"),
            "",
            f"{dd['rows']:,} rows, {dd['share']:.0%} of them boilerplate ({dd['distinct_texts']:,} "
            "distinct texts in all); identical texts of one request sent once. Same vectors "
            f"either way: {'yes' if dd['equal'] else 'NO'}.",
            "",
            table(["run", "wall s", "requests", "texts sent"], dup_rows, "lrrr"),
            "",
        ]
    )


def plan() -> str:
    data = load("plan")
    rows = [*data["qwen"], data["emulator"]]
    body = [
        [
            "Qwen" if row is not data["emulator"] else "emulator",
            str(row["sample"]),
            f"{row['counted']:,}",
            f"{row['estimated']:,}",
            f"{row['error']:+.1%}",
        ]
        for row in rows
    ]
    return "\n".join(
        [
            "## `--plan`'s token estimate (benchmarks/bench_plan.py, results/plan.json)",
            "",
            f"{_machine(data)}. `planned_tokens` against Qwen's tokenizer (the calibration "
            "samples and the demo corpus) and against the emulator's count (a word or a mark "
            "a token) in a real `mixlayer-embed` run of the demo corpus.",
            "",
            table(["against", "sample", "counted", "estimated", "error"], body),
            "",
        ]
    )


def load_section() -> str:
    data = load("load")
    s = data["summary"]
    growth = {k: s["rss_peak_mb"][k] - s["rss_before_mb"][k] for k in ("median", "min", "max")}
    rows = [
        ["wall, s", fmt(s["wall"])],
        ["texts/s", fmt(s["texts_per_second"], 0)],
        ["peak RSS, MB", fmt(s["rss_peak_mb"], 0)],
        ["RSS growth over the output's size",
         f"{growth['median'] / s['output_mb']['median']:.2f}x"],
        ["sockets open inside the client", fmt(s["sockets_during"], 0)],
        ["sockets, tasks left after; threads at exit",
         f"{data['leaks']['sockets_left']}, {data['leaks']['tasks_left']}; "
         f"{data['leaks']['threads_at_exit']}"],
    ]  # fmt: skip
    return "\n".join(
        [
            "## Load (benchmarks/bench_load.py, results/load.json)",
            "",
            f"{_machine(data)}. {data['n']:,} texts, {data['dims']} dimensions, "
            f"{data['latency_ms']:g} ms per request, {data['requests']} requests; "
            f"{data['settings']}. Each run in its own process; median (min-max) of "
            f"{s['wall']['runs']}. The output is {s['output_mb']['median']:.0f} MB of Python "
            "floats.",
            "",
            table(["", "ours"], rows),
            "",
        ]
    )


def bulk() -> str:
    data = load("bulk")
    body = [
        [f"{r['n']:,}", f"{r['wall']:.2f}", f"{r['texts_per_s']:,.0f}",
         f"{r['rss_mb']:.0f}", f"{r['requests']:,}", f"{r['rows']:,}"]
        for r in data["sizes"]
    ]  # fmt: skip
    lines = [
        "## Corpus scale: `mixlayer-embed` (benchmarks/bench_bulk.py, results/bulk.json)",
        "",
        f"{_machine(data)}. {data['dims']} dimensions, {data['latency_ms']:g} ms per request; "
        f"{data['settings']}. One run per size (a run of a million rows is the measurement; "
        "its vectors are all checked against the emulator's function).",
        "",
        table(["texts", "wall s", "texts/s", "peak RSS MB", "requests", "rows"], body),
        "",
    ]
    kill = data.get("kill")
    if kill:
        lines.append(
            f"- kill -9 at ~40%, then the same command: {kill['requests_total']:,} requests in "
            f"all against {kill['requests_clean']:,} uninterrupted; {kill['rows']:,} rows; "
            f"sorted output identical to the uninterrupted run's: {kill['identical_sorted']}."
        )
    faults = data.get("faults")
    if faults:
        lines.append(
            f"- 10% faults (429, 503, dropped connections) and {len(faults['poison'])} poison "
            f"rows: exit {faults['exit']}, {faults['rows']:,} rows of "
            f"{faults['good_rows_expected']:,} good ones, every one checked "
            f"({faults['checked']:,}); rejects exactly the poison rows: "
            f"{faults['rejects'] == faults['poison']}; {faults['wall']:.0f} s."
        )
    for row in data.get("numpy_vs_list", []):
        lines.append(
            f"- {row['path']}, 20,000 texts at 1024 dimensions: peak {row['peak_mb']:.0f} MB "
            f"traced ({row['peak_over_array']:.2f}x the array), {row['cpu_s']:.2f} s CPU."
        )
    lines.append("")
    return "\n".join(lines)


def otel() -> str:
    data = load("ingest-otel")
    [scenario] = data["scenarios"]
    by = {r["client"]: r for r in scenario["results"]}
    body = []
    for mode in ("sync", "async"):
        with_api, without = by[f"ours-langchain-{mode}"], by[f"ours-langchain-{mode}-without-otel"]
        body.append(
            [
                mode,
                fmt(without["wall"]),
                fmt(with_api["wall"]),
                f"{with_api['wall']['median'] / without['wall']['median']:.3f}",
                f"{with_api['cpu']['median'] / without['cpu']['median']:.3f}",
            ]
        )
    return "\n".join(
        [
            "## OpenTelemetry's cost, API installed and no SDK "
            "(benchmarks/bench_ingest.py --otel, results/ingest-otel.json)",
            "",
            f"{_machine(data)}. {scenario['n']:,} texts, {scenario['dims']} dimensions, "
            f"{scenario['latency_ms']:g} ms per request; MixlayerEmbeddings defaults, with the "
            "API importable (every call and attempt goes to its no-op) and without (import "
            f"blocked); median (min-max) of {data['repeat']} interleaved runs each.",
            "",
            table(["ours", "wall s, no API", "wall s, API", "wall ratio", "CPU ratio"], body),
            "",
        ]
    )


def ray_section() -> str:
    data = load("ray")
    settings = data["settings"]
    body = [
        [r["path"], fmt(r["wall_s"]), fmt(r["texts_per_s"], 0), str(r["identical"])]
        for r in data["throughput"]
    ]
    limited = [
        [str(r["shared_budget"]), f"{r['wall_s']:.1f}", f"{r['requests']:,}",
         f"{r['share_429']:.1%}", f"{r['ok_requests_per_s']:.1f} of {r['limit']}",
         f"{r['rows']:,}"]
        for r in data.get("rate_limit", [])
    ]  # fmt: skip
    return "\n".join(
        [
            "## Ray Data (benchmarks/bench_ray.py, results/ray.json)",
            "",
            f"{_machine(data)}. {data['n']:,} texts, {data['dims']} dimensions, "
            f"{data['latency_ms']:g} ms per request; Ray on this machine (4 CPUs declared). "
            f"Median (min-max) of {settings['repeat']} runs each; every vector compared bit for "
            "bit with one MixlayerClient's.",
            "",
            f"- `embed_dataset`: {settings['embed_dataset']} "
            f"({settings['per_actor_concurrency']}).",
            f"- openai: {settings['openai']}.",
            "",
            table(["path", "wall s", "texts/s", "identical"], body),
            "",
            "A per-key limit of 20 requests/s, 40,000 texts, 4 actors of 8 requests in flight, "
            "without and with the shared budget:",
            "",
            table(
                ["shared budget", "wall s", "requests", "429s", "ok requests/s", "rows"], limited
            ),
            "",
        ]
    )
