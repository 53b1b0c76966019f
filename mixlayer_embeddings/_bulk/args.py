"""``mixlayer-embed``'s command line: every flag named for the core setting or option it sets
(``--max-retries`` is ``max_retries``), so a new setting is one ``add_argument``."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from .._cli import HelpFormatter
from .._config import (
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
from .._fingerprint import fingerprint, vector_recipe
from .._instruction import bulk_input_type
from .._options import CALL_OPTION_NAMES, EmbedOptions

__all__ = [
    "CLI_NAMES",
    "call_options",
    "client_config",
    "input_type_of",
    "parser",
    "settings_fingerprint",
]

#: The core's parameter names, as this command spells them in messages.
CLI_NAMES = {
    "api_key": API_KEY_ENV,
    "model": "--model",
    "base_url": "--base-url",
    "allow_insecure_http": "--allow-insecure-http",
    "trust_env": "--no-trust-env",
}


def parser() -> argparse.ArgumentParser:
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

    def non_negative(text: str) -> float:
        value = float(text)
        if not 0 <= value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a number of 0 or more, got {text}")
        return value

    def positive_rate(text: str) -> float:
        value = float(text)
        if not 0 < value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a number greater than 0, got {text}")
        return value

    parser = argparse.ArgumentParser(
        prog="mixlayer-embed",
        description="Embed a file of texts with Mixlayer, resumably. "
        f"Key, model and URL from {API_KEY_ENV}, {MODEL_ENV}, {BASE_URL_ENV}.",
        formatter_class=HelpFormatter,
        epilog="Exit codes: 0 done; 4 done with rejected rows in OUTPUT/_rejects.jsonl; 1 a "
        "batch failed (rerun to resume); 2 bad arguments or an unreadable input; 3 missing "
        "extra; 5 the output holds other rows or settings (use --restart); 6 another run is "
        "writing to OUTPUT; 130 interrupted (rerun to resume).",
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
        default=None,
        help="input_type sent with every text (none: omit it; default: document, or query "
        "with --instruction)",
    )
    parser.add_argument(
        "--instruction",
        default=None,
        metavar="TASK",
        help="a task instruction: every text is embedded as a query, "
        "'Instruct: TASK\\nQuery:TEXT' (Qwen3's format), for query logs and question sets",
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
        "--dedupe",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="send identical texts of one request once, their vector given to each of them",
    )
    parser.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="allow sending the key over plain http:// to a host that is not loopback",
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="discard earlier output (only the files this tool writes)",
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="the input changed: embed only rows that are new or whose text changed (by "
        "--id-field), carry the other vectors over, drop rows whose id is gone",
    )
    parser.add_argument(
        "--fail-fast", action="store_true", help="stop at the first rejected row (exit 1)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--plan",
        action="store_true",
        help="send nothing (no key needed): read the input as a run would and estimate its "
        "rows, rejects, tokens, requests, output size, cost and time (JSON on stdout)",
    )
    parser.add_argument(
        "--price-per-million-tokens",
        type=non_negative,
        default=None,
        metavar="PRICE",
        help="with --plan: the cost of the estimated tokens at this price",
    )
    parser.add_argument(
        "--tokens-per-second",
        type=positive_rate,
        default=None,
        metavar="RATE",
        help="with --plan: the service's rate (default: about 30,000, one accelerator)",
    )
    return parser


def input_type_of(args: argparse.Namespace) -> str:
    """``--input-type`` as given, else ``document`` (``query`` with ``--instruction``)."""
    given: str | None = args.input_type
    return given if given is not None else bulk_input_type(args.instruction)


def settings_fingerprint(settings: Mapping[str, Any]) -> str:
    """The fingerprint (``_fingerprint``) of a run's vectors, from its manifest's settings:
    the same as an adapter's made the same way."""
    input_type = settings.get("input_type")
    options = EmbedOptions(
        input_type=None if input_type == "none" else input_type,
        instruction=settings.get("instruction"),
        dimensions=settings.get("dimensions"),
        normalize=settings.get("normalize"),
        truncate=settings.get("truncate"),
    )
    return fingerprint(vector_recipe(settings["model"], options))


def call_options(args: argparse.Namespace) -> dict[str, Any]:
    """The per-call options that have a flag (named for the option), besides input_type."""
    return {name: getattr(args, name) for name in CALL_OPTION_NAMES if hasattr(args, name)}


def client_config(args: argparse.Namespace) -> ClientConfig:
    """The flags, as the core's one settings object: a flag is named for its setting
    (``--max-retries`` is ``max_retries``), so a new setting is one ``add_argument``."""
    given = {f.name: getattr(args, f.name) for f in fields(ClientConfig) if hasattr(args, f.name)}
    return ClientConfig(**{**given, "timeout": to_timeout(args.timeout)})
