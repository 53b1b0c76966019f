"""``mixlayer-emulator``: run the emulator in the foreground."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="mixlayer-emulator",
        description="A local server speaking the Mixlayer embeddings API (lexical vectors).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", required=True, help="the Bearer key clients must send")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added to every request")
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="fraction of requests answered 429, 503 or a dropped connection",
    )
    parser.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        help="requests per second per key; beyond it, 429 with Retry-After",
    )
    parser.add_argument(
        "--context-window",
        type=int,
        default=None,
        help="tokens per input (default: Qwen3 Embedding 8B's 32768)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random fault choice")
    args = parser.parse_args(argv)
    if not 0.0 <= args.fault_rate <= 1.0:
        parser.error("--fault-rate must be between 0 and 1")

    import uvicorn

    from ._app import CONTEXT_WINDOW, EmulatorState, create_app

    state = EmulatorState(
        api_key=args.api_key,
        latency_ms=args.latency_ms,
        fault_rate=args.fault_rate,
        rate_limit=args.rate_limit,
        context_window=args.context_window or CONTEXT_WINDOW,
        seed=args.seed,
    )
    print(f"mixlayer emulator on http://{args.host}:{args.port}/v1", file=sys.stderr, flush=True)
    uvicorn.run(
        create_app(state),
        host=args.host,
        port=args.port,
        log_level="warning",
        http="h11",
        lifespan="off",
        access_log=False,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
