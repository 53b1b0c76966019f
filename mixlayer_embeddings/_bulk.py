"""``mixlayer-embed``: embed a file of texts into Parquet or .npy chunks, resumably.

Reads ``.jsonl``, ``.csv``, ``.txt`` (one text per line) or ``.parquet`` as a stream, sends it
through ``MixlayerClient.iter_embed`` (batches in input order, at most ``--max-concurrency`` in
flight or waiting, so memory is flat whatever the input length) and commits every batch as it
arrives:

    OUTPUT/manifest.json                    settings and the input's fingerprint, written first
    OUTPUT/part-<first row>-<rows>.parquet  id, row, embedding (fixed_size_list<float32>)
    OUTPUT/part-<first row>-<rows>.npy      (--format npy: the vectors; rows in .rows.npy)
    OUTPUT/part-<first row>-<rows>.rejects.jsonl   rows the service refused in that batch
    OUTPUT/rejects.jsonl                    every refused row, written when the run completes

A part is written to a temporary name, flushed to disk, then renamed: a part file under its
final name is complete, and its name says which rows it holds. A rerun of the same command
lists the parts, deletes temporary leftovers, and continues at the first row no part holds; so
after ``kill -9``, a power cut or a batch that failed for good, no row is duplicated or missing
and no request is sent again for a row already written. A changed input file or changed
settings are refused (exit 5) unless ``--restart`` is given.

Exit codes: 0 every row embedded; 4 done, with refused rows in rejects.jsonl; 1 a batch failed
for good (rerun to resume); 2 bad arguments; 3 a missing extra; 5 the output holds another
input's or other settings' vectors; 130 interrupted (rerun to resume).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ._bulk_files import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_REJECTS,
    FORMAT_VERSION,
    MANIFEST,
    Refused,
    Row,
    Writer,
    committed_parts,
    fingerprint,
    read_rows,
    write_atomically,
)
from ._config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_TOKENS_PER_REQUEST,
    MODEL_ENV,
    QWEN3_EMBEDDING_8B,
    ClientConfig,
    to_timeout,
)
from ._extras import require
from ._options import CALL_OPTION_NAMES

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_MISMATCH",
    "EXIT_OK",
    "EXIT_REJECTS",
    "committed_parts",
    "main",
    "run",
]


# -- the run -----------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    spec = QWEN3_EMBEDDING_8B

    def dimensions(text: str) -> int:
        value = int(text)
        if not spec.min_dimensions <= value <= spec.max_dimensions:
            raise argparse.ArgumentTypeError(
                f"{value} is out of range for {spec.name}: use {spec.dimensions_range()}"
            )
        return value

    def positive(text: str) -> int:
        value = int(text)
        if value < 1:
            raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
        return value

    parser = argparse.ArgumentParser(
        prog="mixlayer-embed",
        description="Embed a file of texts with Mixlayer, resumably. "
        f"Key, model and URL from {API_KEY_ENV}, {MODEL_ENV}, {BASE_URL_ENV}.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        epilog="Exit codes: 0 done; 4 done with refused rows in rejects.jsonl; 1 a batch failed "
        "(rerun to resume); 2 bad arguments; 3 missing extra; 5 output belongs to another "
        "input or settings (use --restart); 130 interrupted (rerun to resume).",
    )
    parser.add_argument("input", type=Path, help=".jsonl, .csv, .txt or .parquet")
    parser.add_argument("output", type=Path, help="output directory (created)")
    parser.add_argument("--text-field", default="text", help="the text column (jsonl/csv/parquet)")
    parser.add_argument("--id-field", default=None, help="the id column (default: row number)")
    parser.add_argument(
        "--format", choices=("parquet", "npy"), default="parquet", help="output part format"
    )
    # Per-call options, by the core's names (OptionKwargs).
    parser.add_argument("--dimensions", type=dimensions, default=None, help="32 to 4096")
    parser.add_argument(
        "--input-type",
        choices=("document", "query", "none"),
        default="document",
        help="input_type sent with every text (none: omit it)",
    )
    parser.add_argument(
        "--normalize", action=argparse.BooleanOptionalAction, default=None, help="normalize"
    )
    parser.add_argument(
        "--truncate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="ask the service to truncate texts longer than the context window",
    )
    # Client settings, by the core's names (ClientKwargs); key, model and URL as everywhere.
    parser.add_argument("--model", default=None, help=f"embedding model id (default: ${MODEL_ENV})")
    parser.add_argument(
        "--base-url", default=None, help=f"API base URL (default: ${BASE_URL_ENV} or the service)"
    )
    parser.add_argument(
        "--batch-size", type=positive, default=DEFAULT_BATCH_SIZE, help="texts per request"
    )
    parser.add_argument(
        "--max-concurrency",
        type=positive,
        default=DEFAULT_MAX_CONCURRENCY,
        help="requests in flight",
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        default=DEFAULT_MAX_RETRIES,
        help="retries of a failed request (connection errors, timeouts, 408, 409, 429, 5xx)",
    )
    parser.add_argument(
        "--max-tokens-per-request",
        type=positive,
        default=DEFAULT_MAX_TOKENS_PER_REQUEST,
        help="estimated tokens per request (a long text goes alone)",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds (default: 10 s connect, 60 s read)"
    )
    parser.add_argument(
        "--rate", type=float, default=None, help="requests per second the key may send, if known"
    )
    parser.add_argument("--proxy", default=None, help="proxy URL for the requests")
    parser.add_argument(
        "--trust-env",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read proxy settings (HTTP_PROXY, HTTPS_PROXY, NO_PROXY) from the environment",
    )
    parser.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow sending the key over plain http:// to a host that is not loopback",
    )
    parser.add_argument("--restart", action="store_true", help="discard earlier output")
    parser.add_argument(
        "--fail-fast", action="store_true", help="stop at the first refused row (exit 1)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _settings(args: argparse.Namespace, model: str) -> dict[str, Any]:
    """What shapes the vectors (a resumed run must have the same): the options that are set."""
    settings = {
        "model": model,
        "dimensions": args.dimensions,
        "input_type": args.input_type,
        "text_field": args.text_field,
        "id_field": args.id_field,
        "format": args.format,
    }
    settings.update({k: v for k, v in call_options(args).items() if v is not None})
    return settings


def call_options(args: argparse.Namespace) -> dict[str, Any]:
    """The per-call options that have a flag (named for the option), besides input_type."""
    return {name: getattr(args, name) for name in CALL_OPTION_NAMES if hasattr(args, name)}


def client_config(args: argparse.Namespace) -> ClientConfig:
    """The flags, as the core's one settings object: a flag is named for its setting
    (``--max-retries`` is ``max_retries``), so a new setting is one ``add_argument``."""
    given = {f.name: getattr(args, f.name) for f in fields(ClientConfig) if hasattr(args, f.name)}
    return ClientConfig(**{**given, "timeout": to_timeout(args.timeout)})


def _prepare(args: argparse.Namespace, model: str) -> int:
    """Check or write the manifest; return the first row still to embed."""
    out: Path = args.output
    wanted: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "input": fingerprint(args.input),
        "settings": _settings(args, model),
    }
    manifest_path = out / MANIFEST
    if args.restart and out.exists():
        for entry in out.iterdir():
            if (
                entry.name == MANIFEST
                or entry.name.startswith("part-")
                or entry.name in ("rejects.jsonl",)
                or entry.name.endswith(".tmp")
            ):
                entry.unlink()
    out.mkdir(parents=True, exist_ok=True)
    if manifest_path.exists():
        saved = json.loads(manifest_path.read_text(encoding="utf-8"))
        for key, what in (("input", "the input file"), ("settings", "the settings")):
            before: dict[str, Any] = saved.get(key, {})
            now: dict[str, Any] = wanted[key]
            if before != now:
                changed = sorted(k for k in {*before, *now} if before.get(k) != now.get(k))
                raise Refused(
                    f"{out} holds vectors of another run: {what} changed ({', '.join(changed)}). "
                    "Use another output directory, or --restart to discard it.",
                    EXIT_MISMATCH,
                )
    else:
        if any(out.glob("part-*")):
            raise Refused(
                f"{out} has part files but no {MANIFEST}; use --restart to discard them",
                EXIT_MISMATCH,
            )
        write_atomically(
            manifest_path,
            lambda p: p.write_text(json.dumps(wanted, indent=2), encoding="utf-8"),
        )
    parts = committed_parts(out)
    return parts[-1].first_row + parts[-1].rows if parts else 0


@dataclass
class Totals:
    """This run's counts (the rows written in all runs are ``next_row``)."""

    embedded: int = 0
    tokens: int = 0


def run(args: argparse.Namespace) -> int:
    require("bulk", "numpy", feature="mixlayer-embed")
    from . import MixlayerClient, MixlayerError

    config = client_config(args)
    # Key, model and URL: the flags, else the environment, else the core's ConfigurationError.
    model = config.resolve().model
    if not args.input.is_file():
        raise Refused(f"{args.input}: no such file", 2)
    start_row = _prepare(args, model)
    writer = Writer(args.output, args.format, args.dimensions)
    totals = Totals()

    started = time.perf_counter()
    input_type = None if args.input_type == "none" else args.input_type

    # Rows go to the client as a stream of texts. Empty texts are refused here (the service
    # would refuse them) and never sent; each part still covers every row up to its last one.
    fed: deque[Row] = deque()
    skipped: deque[Row] = deque()
    rows = read_rows(args.input, args.text_field, args.id_field)

    def texts() -> Iterator[str]:
        for row in rows:
            if row.number < start_row:
                continue
            if not isinstance(row.text, str) or not row.text.strip():
                if args.fail_fast:
                    raise Refused(f"row {row.number} (id {row.id}): the text is empty", EXIT_FAILED)
                skipped.append(row)
                continue
            fed.append(row)
            yield row.text

    next_row = start_row

    def commit(batch_rows: list[Row], vectors: Any, refused: dict[int, str], upto: int) -> None:
        nonlocal next_row
        rejects: list[dict[str, Any]] = []
        while skipped and skipped[0].number < upto:
            row = skipped.popleft()
            rejects.append({"row": row.number, "id": row.id, "error": "empty text (not sent)"})
        for offset, row in enumerate(batch_rows):
            if offset in refused:
                rejects.append({"row": row.number, "id": row.id, "error": refused[offset]})
        rejects.sort(key=lambda r: r["row"])
        writer.commit(next_row, upto - next_row, batch_rows, vectors, rejects)
        totals.embedded += len(batch_rows) - len(refused)
        if bar is not None:
            bar.update(upto - next_row)
        next_row = upto

    bar = _progress(args, start_row)
    settings = {f.name: getattr(config, f.name) for f in fields(config)}
    with MixlayerClient(**settings) as client:
        try:
            stream = client.iter_embed(
                texts(),
                input_type=input_type,
                **call_options(args),
                as_array=True,
                skip_rejected=not args.fail_fast,
            )
            for batch in stream:
                batch_rows = [fed.popleft() for _ in range(len(batch.embeddings))]
                refused = {i - batch.start: why for i, why in batch.rejected.items()}
                totals.tokens += batch.usage.total_tokens
                commit(batch_rows, batch.embeddings, refused, batch_rows[-1].number + 1)
                if bar is not None:
                    bar.set_postfix(tokens=totals.tokens, refresh=False)
            if skipped:  # empty rows after the last text sent
                commit([], None, {}, skipped[-1].number + 1)
        except MixlayerError as exc:
            if bar is not None:
                bar.close()
            print(f"mixlayer-embed: {str(exc).splitlines()[0]}", file=sys.stderr)
            print(
                f"{next_row} rows are written in {args.output}; run the same command again "
                "to continue from there.",
                file=sys.stderr,
            )
            return EXIT_FAILED
        finally:
            if bar is not None:
                bar.close()
        counters = client.counters
    all_rejects = _gather_rejects(args.output)
    seconds = time.perf_counter() - started
    size = sum(p.path.stat().st_size for p in committed_parts(args.output))
    summary = {
        "rows": next_row,
        "embedded_this_run": totals.embedded,
        "rejected": len(all_rejects),
        "requests": counters.requests,
        "retries": counters.retries,
        "rate_limited": counters.rate_limited,
        "tokens": totals.tokens,
        "seconds": round(seconds, 2),
        "texts_per_second": round(totals.embedded / seconds) if seconds else 0,
        "output_bytes": size,
        "resumed_at_row": start_row,
    }
    manifest_path = args.output / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["completed"] = summary
    write_atomically(
        manifest_path, lambda p: p.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    )
    print(
        f"mixlayer-embed: {summary['rows']} rows in {args.output} ({size / 1e6:.1f} MB); this run: "
        f"{totals.embedded} embedded, {counters.requests} requests, {counters.retries} retries, "
        f"{totals.tokens} tokens, {seconds:.1f} s"
        + (f"; resumed at row {start_row}" if start_row else "")
        + (f"; {len(all_rejects)} refused rows in rejects.jsonl" if all_rejects else ""),
        file=sys.stderr,
    )
    return EXIT_REJECTS if all_rejects else EXIT_OK


def _gather_rejects(out: Path) -> list[str]:
    lines: list[str] = []
    for entry in sorted(out.glob("part-*.rejects.jsonl")):
        lines.extend(entry.read_text(encoding="utf-8").splitlines(keepends=True))
    target = out / "rejects.jsonl"
    if lines:
        write_atomically(target, lambda p: p.write_text("".join(lines), encoding="utf-8"))
    elif target.exists():
        target.unlink()
    return lines


def _progress(args: argparse.Namespace, start_row: int) -> Any:
    if args.no_progress:
        return None
    (tqdm_auto,) = require("bulk", "tqdm.auto", feature="The progress bar")
    total = None
    if args.input.suffix.lower() in (".txt", ".jsonl") and args.input.stat().st_size < 2 << 30:
        with args.input.open("rb") as f:
            total = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    elif args.input.suffix.lower() == ".parquet":
        (pq,) = require("bulk", "pyarrow.parquet", feature="Reading Parquet")
        total = pq.ParquetFile(args.input).metadata.num_rows
    return tqdm_auto.tqdm(
        total=total, initial=start_row, unit="text", unit_scale=True, desc="Embedding"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        client_config(args).resolve()
    except ValueError as exc:  # ConfigurationError, or a bad --timeout
        hint = (
            f" (and {BASE_URL_ENV} to use a local emulator: mixlayer-emulator prints the lines "
            "to export)"
            if API_KEY_ENV in str(exc)
            else ""
        )
        print(f"mixlayer-embed: {exc}{hint}", file=sys.stderr)
        return 2
    try:
        return run(args)
    except Refused as refusal:
        print(f"mixlayer-embed: {refusal}", file=sys.stderr)
        return refusal.code
    except KeyboardInterrupt:
        print(
            "mixlayer-embed: interrupted; run the same command again to continue.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except (ValueError, OSError) as exc:
        with contextlib.suppress(Exception):
            print(f"mixlayer-embed: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
