"""``mixlayer-embed``'s run: read the folder's state, take one step of the state machine (the
table in the package's docstring), embed the input through ``MixlayerClient.iter_embed`` and
write the summary. Exit codes are listed in the package's docstring."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from .._config import API_KEY_ENV, BASE_URL_ENV, lookup_model
from .._extras import require
from .._instruction import check_instruction, instructed
from .._tokens import PlannedTally
from .._validation import is_utf8
from .args import (
    CLI_NAMES,
    call_options,
    client_config,
    input_type_of,
    parser,
    settings_fingerprint,
)
from .ingest import Ingest, unchanged
from .lifecycle import (
    State,
    WrittenRows,
    discard_everything,
    finish_discards,
    holds_vectors,
    prepare,
    refuse_links,
    settings_differ,
    state_of,
    written_id_type,
    written_rows_match,
)
from .messages import advice
from .parts import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REJECTS,
    MANIFEST,
    REJECTS,
    Part,
    Writer,
    committed_parts,
    discard_output,
    lock_output,
    vector_width,
    write_atomically,
)
from .rows import Refused, Row, count_rows, id_type_of, read_rows, refuse_repeated_ids
from .swap import NEXT, swap
from .update import CARRY, DROPPED, EarlierOutput, write_dropped

__all__ = ["main", "run"]


def _settings(args: argparse.Namespace, model: str, base_url: str, id_type: str) -> dict[str, Any]:
    """What shapes the vectors and the table (a resumed run must have the same)."""
    settings = {
        "model": model,
        "base_url": base_url,
        "dimensions": args.dimensions,
        "input_type": input_type_of(args),
        "text_field": args.text_field,
        "id_field": args.id_field,
        "id_type": id_type,
        "format": args.format,
    }
    settings.update({k: v for k, v in call_options(args).items() if v is not None})
    if args.instruction is not None:
        settings["instruction"] = args.instruction
    return settings


def run(args: argparse.Namespace) -> int:
    require("bulk", "numpy", feature="mixlayer-embed")
    if not args.input.is_file():
        raise Refused(f"{args.input}: no such file", 2)
    if args.update and args.id_field is None:
        raise Refused("--update needs --id-field (rows are matched by id)", 2)
    refuse_links(args.output)
    lock = lock_output(args.output)
    try:
        return _run_locked(args)
    finally:
        lock.close()


def _run_locked(args: argparse.Namespace) -> int:
    """One step of the folder's state machine (the table in the package's docstring)."""
    out = args.output
    config = client_config(args)
    resolved = config.resolve(CLI_NAMES)
    finish_discards(out)
    if args.restart:
        discard_everything(out)
    state = state_of(out)
    if state is State.SWAPPING:
        # An update killed during its swap: finish it, then do what was asked today.
        swap(out)
        print(f"mixlayer-embed: finished the earlier update of {out}", file=sys.stderr)
        state = State.COMPLETE
    # An input with no id to tell its type (empty) fits the type of what is written.
    earlier_type = written_id_type(out)
    id_type = id_type_of(args.input, args.id_field) or earlier_type or "string"
    settings = _settings(args, resolved.model, str(resolved.base_url), id_type)
    if (
        state is not State.EMPTY
        and settings_differ(out, settings)
        and not holds_vectors(committed_parts(out))
    ):
        # Nothing to keep (a failed or empty first run): the corrected command starts anew.
        discard_everything(out)
        state = State.EMPTY
    if args.update and state is State.EMBEDDING and not written_rows_match(args, out, id_type):
        # An unfinished first run of an older input: nothing complete to carry over.
        discard_everything(out)
        state = State.EMPTY
    if not args.update or state in (State.EMPTY, State.EMBEDDING):
        # (An update with nothing complete earlier is a first run: every row is new.)
        parts = prepare(args, out, settings)
        return _ingest(args, out, parts, settings, None)
    earlier = EarlierOutput(out, settings)
    folder = out / NEXT
    if state is State.UPDATING and not _next_fits(args, folder, settings, id_type):
        # An update interrupted while embedding an older input (or with other settings):
        # its rows are stale, so it starts again by itself.
        discard_output(folder)
    parts = prepare(args, folder, settings)
    earlier.read(folder / CARRY)
    try:
        code = _ingest(args, folder, parts, settings, earlier)
    finally:
        earlier.close()
        (folder / CARRY).unlink(missing_ok=True)
    if code in (EXIT_OK, EXIT_REJECTS):
        swap(out)
    return code


def _next_fits(
    args: argparse.Namespace, folder: Path, settings: dict[str, Any], id_type: str
) -> bool:
    """Whether an interrupted update's ``_next/`` can be resumed by this one."""
    return not settings_differ(folder, settings) and written_rows_match(args, folder, id_type)


def _ingest(
    args: argparse.Namespace,
    out: Path,
    parts: list[Part],
    settings: dict[str, Any],
    earlier: EarlierOutput | None,
) -> int:
    """Embed the input into ``out`` (resuming after ``parts``); write the summary."""
    from .. import MixlayerClient, MixlayerError

    config = client_config(args)
    written = WrittenRows(out, parts)
    start_row = written.end
    spec = lookup_model(settings["model"])
    bar = _progress(args, start_row)
    ingest = Ingest(
        # Without --dimensions, a resumed run's vectors must be as wide as those written.
        Writer(out, args.format, args.dimensions or vector_width(parts), settings["id_type"]),
        start_row=start_row,
        part_rows=args.batch_size,
        fallback_width=spec.max_dimensions if spec else 1,
        fail_fast=args.fail_fast,
        carry=unchanged(earlier.index) if earlier is not None else None,
        load=earlier.load if earlier is not None else None,
        on_commit=bar.update if bar is not None else None,
    )
    #: id -> the row that first held it (a copy is a reject); the ids an update keeps.
    first_at: dict[Any, int] = {}

    def rows() -> Iterator[Row]:
        read = 0
        every = read_rows(args.input, args.text_field, args.id_field, settings["id_type"])
        for row in refuse_repeated_ids(every, first_at if args.id_field is not None else None):
            read += 1
            if row.number < start_row:
                written.check(row)
                continue
            yield row
        written.finish(read)

    started = time.perf_counter()
    # The plan's estimate of what this run sends, beside what the service bills.
    tally = PlannedTally(
        None if args.instruction is None else functools.partial(instructed, args.instruction)
    )
    input_type = None if input_type_of(args) == "none" else input_type_of(args)
    client_settings = {f.name: getattr(config, f.name) for f in fields(config)}
    with MixlayerClient(**client_settings) as client:
        try:
            stream = client.iter_embed(
                tally.count(ingest.texts(rows())),
                input_type=input_type,
                instruction=args.instruction,
                **call_options(args),
                as_array=True,
                skip_rejected=not args.fail_fast,
            )
            for batch in stream:
                refused = {i - batch.start: why for i, why in batch.rejected.items()}
                ingest.answer(batch.start, batch.embeddings, refused, batch.usage.total_tokens)
                if bar is not None:
                    bar.set_postfix(tokens=ingest.counts.tokens, refresh=False)
            ingest.finish()
            if ingest.next_row == 0 and not parts:
                ingest.commit_empty()  # an empty input: a table every reader opens
        except MixlayerError as exc:
            print(f"mixlayer-embed: {str(exc).splitlines()[0]}", file=sys.stderr)
            base_url = str(settings["base_url"])
            print(advice(exc, ingest.next_row, out, base_url), file=sys.stderr)
            return EXIT_FAILED
        finally:
            if bar is not None:
                bar.close()
        counters = client.usage
    all_rejects = _gather_rejects(out)
    seconds = time.perf_counter() - started
    counts = ingest.counts
    summary: dict[str, Any] = {
        "rows": ingest.next_row,
        "embedded_this_run": counts.embedded,
        "rejected": len(all_rejects),
        "requests": counters.requests,
        "retries": counters.retries,
        "rate_limited": counters.rate_limited,
        "tokens": counts.tokens,
        "estimated_tokens": tally.total,
        "seconds": round(seconds, 2),
        "texts_per_second": round(counts.embedded / seconds) if seconds else 0,
        "resumed_at_row": start_row,
    }
    note = ""
    if earlier is not None:
        dropped = earlier.dropped(first_at)
        write_dropped(out, dropped)
        summary |= {"reused": counts.carried, "dropped": len(dropped)}
        note = (
            f"; update: {counts.carried} reused, {counts.embedded} embedded, "
            f"{len(dropped)} dropped (ids in {DROPPED})"
        )
    size = sum(p.path.stat().st_size for p in committed_parts(out))
    summary["output_bytes"] = size
    manifest_path = out / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["completed"] = summary
    # What made its vectors (a manifest of an earlier version has none until now).
    manifest["fingerprint"] = settings_fingerprint(manifest["settings"])
    # An update's output is the generation after the one it updates (``swap``).
    manifest["generation"] = (
        earlier.generation + 1 if earlier is not None else manifest.get("generation", 1)
    )
    text = json.dumps(manifest, indent=2)
    write_atomically(manifest_path, lambda f: f.write(text.encode("utf-8")))
    print(
        f"mixlayer-embed: {summary['rows']} rows in {args.output} ({size / 1e6:.1f} MB); this run: "
        f"{counts.embedded} embedded, {counters.requests} requests, {counters.retries} retries, "
        f"{counts.tokens} tokens (--plan estimates {tally.total}), {seconds:.1f} s"
        + (f"; resumed at row {start_row}" if start_row else "")
        + note
        + (f"; {_count(len(all_rejects), 'rejected row')} in {REJECTS}" if all_rejects else ""),
        file=sys.stderr,
    )
    return EXIT_REJECTS if all_rejects else EXIT_OK


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _plan(args: argparse.Namespace) -> int:
    """``--plan``: nothing sent, no key needed, the output folder only read."""
    from .plan import plan_run, print_plan

    try:
        check_instruction(
            args.instruction, input_type_of(args), param="--instruction",
            input_type_param="--input-type",
        )  # fmt: skip
        if not args.input.is_file():
            raise Refused(f"{args.input}: no such file", 2)
        print_plan(plan_run(args), args)
    except ValueError as exc:
        print(f"mixlayer-embed: {exc}", file=sys.stderr)
        return 2
    except Refused as refusal:
        print(f"mixlayer-embed: {refusal}", file=sys.stderr)
        return refusal.code
    return EXIT_OK


def _rows_written(args: argparse.Namespace) -> str:
    """ "N rows are written in OUT; " for the interrupt message, when it can be told."""
    folder = args.output / NEXT if args.update else args.output
    try:
        parts = committed_parts(folder)
    except (OSError, Refused):
        return ""
    rows = parts[-1].first_row + parts[-1].rows if parts else 0
    return f"{rows} rows are written in {folder}; "


def _json_line(record: dict[str, Any]) -> str:
    """One JSON line, readable as UTF-8: text as is, or escaped where it is not valid Unicode
    (a row read from bytes that are not UTF-8)."""
    line = json.dumps(record, ensure_ascii=False)
    return (line if is_utf8(line) else json.dumps(record)) + "\n"


def _gather_rejects(out: Path) -> list[dict[str, Any]]:
    rejects: list[dict[str, Any]] = []
    for part in committed_parts(out):
        rejects.extend(part.sidecar()["rejects"])
    target = out / REJECTS
    if rejects:
        lines = "".join(_json_line(r) for r in rejects)
        write_atomically(target, lambda f: f.write(lines.encode("utf-8")))
    elif target.exists():
        target.unlink()
    return rejects


def _progress(args: argparse.Namespace, start_row: int) -> Any:
    if args.no_progress:
        return None
    (tqdm_auto,) = require("bulk", "tqdm.auto", feature="The progress bar")
    return tqdm_auto.tqdm(
        total=count_rows(args.input),
        initial=start_row,
        unit="text",
        unit_scale=True,
        desc="Embedding",
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.plan:
        return _plan(args)
    try:
        # Every setting checked before the output folder is touched: a bad one is exit 2,
        # and leaves nothing behind.
        from .. import MixlayerClient

        config = client_config(args)
        config.resolve(CLI_NAMES)
        MixlayerClient(**{f.name: getattr(config, f.name) for f in fields(config)}).close()
        check_instruction(
            args.instruction,
            input_type_of(args),
            param="--instruction",
            input_type_param="--input-type",
        )
    except ValueError as exc:  # ConfigurationError, InvalidParameterError, a bad --timeout
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
            f"mixlayer-embed: interrupted; {_rows_written(args)}run the same command again "
            "to continue.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    except (ValueError, OSError) as exc:
        with contextlib.suppress(Exception):
            print(f"mixlayer-embed: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
