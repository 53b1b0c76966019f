"""A local server that speaks the Mixlayer embeddings API, for offline development and tests.

>>> from mixlayer_embeddings.emulator import Emulator
>>> with Emulator() as emu:  # doctest: +SKIP
...     print(emu.base_url, emu.api_key, emu.model)

Or from a shell: ``mixlayer-emulator --port 8765 --api-key KEY``. In pytest, the
``mixlayer_emulator`` fixture (installed with this package) yields a running one.
Its vectors are a deterministic lexical stand-in, not Qwen3: see ``_vectors``.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from .._extras import require

require("emulator", "starlette", "uvicorn", "numpy", feature="The Mixlayer emulator")

# Imported after the check, so a missing extra says what to install.
from ._accelerator import Accelerator  # noqa: E402
from ._app import (  # noqa: E402
    CHAT_MODEL,
    CONTEXT_WINDOW,
    EMBEDDING_MODEL,
    EmulatorState,
    create_app,
)
from ._vectors import FULL_DIMENSIONS, embed_items  # noqa: E402

__all__ = [
    "CHAT_MODEL",
    "CONTEXT_WINDOW",
    "EMBEDDING_MODEL",
    "FULL_DIMENSIONS",
    "Emulator",
    "EmulatorState",
    "create_app",
    "embed_items",
]


def listening_socket(host: str) -> socket.socket:
    """A TCP socket for the server, made so that its connections answer without delay.

    asyncio turns Nagle's algorithm off only on sockets whose ``proto`` is ``IPPROTO_TCP``; a
    socket made as ``socket.socket(AF_INET)`` has proto 0, so every keep-alive answer after the
    first waited for the client's delayed ACK (measured: 44 ms per request).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class Emulator:
    """The emulator on a background thread of this process, on a free loopback port."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        latency_ms: float = 0.0,
        fault_rate: float = 0.0,
        rate_limit: float | None = None,
        retry_after: str = "exact",
        context_window: int = CONTEXT_WINDOW,
        seed: int = 0,
        tokens_per_second: float | None = None,
        max_queue: int | None = None,
        max_tokens_per_request: int | None = None,
        max_body_bytes: int | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.state = EmulatorState(
            api_key=api_key or f"emu-{secrets.token_hex(12)}",
            latency_ms=latency_ms,
            fault_rate=fault_rate,
            rate_limit=rate_limit,
            retry_after=retry_after,
            context_window=context_window,
            seed=seed,
            accelerator=Accelerator(tokens_per_second, max_queue=max_queue)
            if tokens_per_second
            else None,
            max_tokens_per_request=max_tokens_per_request,
            max_body_bytes=max_body_bytes,
        )
        self.model = EMBEDDING_MODEL
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def api_key(self) -> str:
        return self.state.api_key

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def __repr__(self) -> str:
        return f"Emulator(base_url={self.base_url!r})"

    def start(self) -> Emulator:
        import uvicorn

        sock = listening_socket(self.host)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.state),
            log_level="error",
            http="h11",
            lifespan="off",
            access_log=False,
            timeout_keep_alive=30,
            # Stopping does not wait for requests still being worked on (a slow scripted one,
            # or one its client gave up on) longer than this.
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        started = threading.Event()

        def serve() -> None:
            async def main() -> None:
                task = asyncio.ensure_future(self._server.serve(sockets=[sock]))
                # uvicorn offers no startup hook: poll its flag (or its early failure).
                while not self._server.started and not task.done():  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
                started.set()
                await task

            asyncio.run(main())

        self._thread = threading.Thread(target=serve, name="mixlayer-emulator", daemon=True)
        self._thread.start()
        if not started.wait(10) or not self._server.started:
            raise RuntimeError("the Mixlayer emulator did not start")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._server = self._thread = None

    def script(self, faults: Iterable[dict[str, Any]]) -> None:
        """Queue faults for the next responses, e.g. ``{"status": 429, "retry_after": 1}``,
        ``{"status": 503}``, ``{"drop": True}``, ``{"slow_body_s": 2}``, ``{"latency_ms": 200}``,
        ``{"status": 502, "html": True}``."""
        self.state.script.extend(faults)

    def reset(self) -> None:
        """Clear faults, latency, the rate limit and the counters."""
        self.state.reset()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
