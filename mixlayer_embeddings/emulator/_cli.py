"""``mixlayer-emulator``: run the emulator in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import logging
import os
import secrets
import signal
import socket
import sys
from collections.abc import Sequence

from .._cli import HelpFormatter
from .._config import API_KEY_ENV, BASE_URL_ENV, MODEL_ENV
from .._version import __version__

EXIT_CANNOT_LISTEN = 1


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value:g}")
    return value


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value:g}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return value


def _not_negative(text: str) -> float:
    value = float(text)
    if not value >= 0:  # (NaN too)
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def _not_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    from ._app import CONTEXT_WINDOW

    parser = argparse.ArgumentParser(
        prog="mixlayer-emulator",
        description="A local server speaking the Mixlayer embeddings API (lexical vectors, "
        "not Qwen3): for offline development and tests.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (0: any free)")
    parser.add_argument(
        "--api-key",
        default=None,
        help=f"the Bearer key clients must send (default: ${API_KEY_ENV}, else a random one)",
    )
    parser.add_argument(
        "--latency-ms", type=_not_negative, default=0.0, help="added to every embeddings request"
    )
    parser.add_argument(
        "--fault-rate",
        type=_probability,
        default=0.0,
        help="fraction of requests answered 429, 503 or a dropped connection",
    )
    parser.add_argument(
        "--rate-limit",
        type=_positive,
        default=None,
        help="requests per second per key; beyond it, 429 with Retry-After",
    )
    parser.add_argument(
        "--retry-after",
        choices=("exact", "seconds", "none"),
        default="exact",
        help="how a 429 says when to come back: exact (also retry-after-ms), seconds (rounded "
        "up, as gateways send it) or none",
    )
    parser.add_argument(
        "--context-window", type=_positive_int, default=CONTEXT_WINDOW, help="tokens per input"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random fault choice")
    parser.add_argument(
        "--workers",
        type=_not_negative_int,
        default=0,
        help="processes computing vectors, so concurrent requests run in parallel (0: one thread)",
    )
    parser.add_argument(
        "--tokens-per-second",
        type=_positive,
        default=None,
        help="an inference server: one accelerator working through this many tokens per "
        "second, first come first served, finishing work its client gave up on "
        "(about 30000 is one H100)",
    )
    parser.add_argument(
        "--max-queue",
        type=_positive_int,
        default=None,
        help="with --tokens-per-second: requests waiting or running beyond which it answers "
        "503 with Retry-After",
    )
    parser.add_argument(
        "--max-tokens-per-request",
        type=_positive_int,
        default=None,
        help="tokens one request may hold; beyond, 413 request_too_large",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=_positive_int,
        default=None,
        help="request body size a proxy in front lets through (nginx's default is 1048576); "
        "beyond, 413",
    )
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="print one line per request: status, items, milliseconds",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV)
    if key is None:
        key = f"emu-{secrets.token_hex(12)}"
    if not key.strip():
        parser.error(f"the API key is empty: pass --api-key KEY or set {API_KEY_ENV}")

    import uvicorn

    # Bind first: announce only an address that is really ours.
    from . import listening_socket
    from ._accelerator import Accelerator
    from ._app import EMBEDDING_MODEL, EmulatorState, create_app

    sock = listening_socket(args.host)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as exc:
        sock.close()
        print(
            f"mixlayer-emulator: cannot listen on {args.host}:{args.port}: "
            f"{exc.strerror or exc}. Is another server on that port? Try --port 0 for any "
            "free port.",
            file=sys.stderr,
        )
        return EXIT_CANNOT_LISTEN
    # Listening before announcing: a client that connects at once waits in the backlog until
    # the server loop starts, instead of being refused.
    sock.listen(2048)
    port = sock.getsockname()[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    base_url = f"http://{host}:{port}/v1"
    state = EmulatorState(
        api_key=key,
        latency_ms=args.latency_ms,
        fault_rate=args.fault_rate,
        rate_limit=args.rate_limit,
        retry_after=args.retry_after,
        context_window=args.context_window,
        seed=args.seed,
        accelerator=Accelerator(args.tokens_per_second, max_queue=args.max_queue)
        if args.tokens_per_second
        else None,
        max_tokens_per_request=args.max_tokens_per_request,
        max_body_bytes=args.max_body_bytes,
    )
    if args.access_log:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        access = logging.getLogger("mixlayer_embeddings.emulator.access")
        access.addHandler(handler)
        access.setLevel(logging.INFO)
    print(
        f"mixlayer emulator {__version__} serving {EMBEDDING_MODEL} (lexical vectors, not "
        f"Qwen3) on {base_url}\n"
        "Point a client at it:\n"
        f"  export {BASE_URL_ENV}={base_url}\n"
        f"  export {API_KEY_ENV}={key}\n"
        f"  export {MODEL_ENV}={EMBEDDING_MODEL}\n"
        "Ctrl-C stops it.",
        file=sys.stderr,
        flush=True,
    )
    executor = (
        concurrent.futures.ProcessPoolExecutor(
            max_workers=args.workers, initializer=_worker_signals
        )
        if args.workers > 0
        else None
    )
    if executor is not None:
        # The workers are forked at the pool's first task: started now, before any client
        # connects, they hold no client's socket. Forked later, a worker would keep the
        # connection open after the server closed it (a dropped one), and its client would
        # wait out its read timeout instead of seeing the drop.
        executor.submit(_ready).result()
    config = uvicorn.Config(
        create_app(state, executor=executor),
        log_level="warning",
        http="h11",
        lifespan="off",
        access_log=False,
        timeout_keep_alive=30,
        # Stopping does not wait long for requests still being worked on.
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    # SIGTERM stops it as Ctrl-C does: uvicorn re-raises the signal it caught once it has
    # stopped serving, and SIGTERM's default action would then end this process before the
    # worker processes are shut down, leaving them running.
    signal.signal(signal.SIGTERM, _terminated)
    try:
        with contextlib.suppress(KeyboardInterrupt, _Terminated):
            asyncio.run(server.serve(sockets=[sock]))
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
        sock.close()
    print("mixlayer-emulator: stopped.", file=sys.stderr)
    return 0


class _Terminated(Exception):
    """SIGTERM, turned into an exception so the shutdown runs."""


def _terminated(signum: int, frame: object) -> None:
    raise _Terminated


def _ready() -> None:
    """A task for each new pool: its workers start on it."""


def _worker_signals() -> None:
    """In each worker process: the parent stops them (Ctrl-C reaches the whole terminal's
    process group, so a worker ignores it); SIGTERM ends one at once, as by default (a worker
    forked from the parent would otherwise run the parent's handlers and ignore it)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
