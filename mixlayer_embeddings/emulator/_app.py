"""The emulator's ASGI app: the Mixlayer embeddings API, faithful to its reference page.

Routes: ``POST /v1/embeddings``, ``GET /v1/models``; and, for tests and benchmarks,
``POST /_emulator/script`` (queue faults for the next responses), ``POST /_emulator/reset``
and ``GET /_emulator/stats``. Every route needs the Bearer key.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hmac
import json
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._config import QWEN3_EMBEDDING_8B
from ._accelerator import Accelerator, queue_for
from ._checks import RequestRefused, read_input, read_options
from ._gateway import BODY_TOO_LARGE, read_within
from ._vectors import FULL_DIMENSIONS, count_tokens, encode_data, truncate_tokens

__all__ = ["CHAT_MODEL", "CONTEXT_WINDOW", "EMBEDDING_MODEL", "EmulatorState", "create_app"]

# The model it serves, and its limits, come from the one model spec the clients also use.
EMBEDDING_MODEL = QWEN3_EMBEDDING_8B.model_id
CHAT_MODEL = "qwen/qwen3.5-9b"
#: Qwen3 Embedding 8B's context window, in tokens.
CONTEXT_WINDOW = QWEN3_EMBEDDING_8B.context_window


@dataclass
class EmulatorState:
    """What the emulator is configured to do, and what it has seen. Thread-safe to poke."""

    api_key: str
    latency_ms: float = 0.0
    fault_rate: float = 0.0
    rate_limit: float | None = None
    context_window: int = CONTEXT_WINDOW
    seed: int = 0
    script: deque[dict[str, Any]] = field(default_factory=deque)
    requests: int = 0
    items: int = 0
    #: Tokens counted in the answers' usage, summed: what a client's usage figures must match.
    tokens: int = 0
    faults: int = 0
    rate_limited: int = 0
    #: How a 429 says when to come back: "exact" (Retry-After in fractional seconds and
    #: retry-after-ms), "seconds" (Retry-After rounded up to whole seconds, as gateways send
    #: it) or "none".
    retry_after: str = "exact"
    #: Requests refused for their size (413).
    too_large: int = 0
    #: The JSON body of the last embeddings request (for tests of what a front end sends).
    last_body: dict[str, Any] | None = None
    #: An inference server's limits (None: none): the accelerator the requests queue for,
    #: the tokens one request may hold (413), and the body size a proxy in front lets through
    #: (413, as nginx answers; its default is 1 MB).
    accelerator: Accelerator | None = None
    max_tokens_per_request: int | None = None
    max_body_bytes: int | None = None
    #: The rate limiter's time: a test gives the emulator and the client one fake clock, so
    #: the bucket refills exactly as the client's waits say, whatever the machine's speed.
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _random: random.Random = field(default_factory=random.Random, repr=False)
    _bucket: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._random.seed(self.seed)

    def next_fault(self) -> dict[str, Any] | None:
        with self._lock:
            if self.script:
                return self.script.popleft()
            if self.fault_rate and self._random.random() < self.fault_rate:
                kind = self._random.choice(("429", "503", "drop"))
                if kind == "429":
                    return {"status": 429, "retry_after": 0.05, "code": "rate_limited"}
                if kind == "503":
                    return {"status": 503, "code": "overloaded"}
                return {"drop": True}
            return None

    def take_token(self, key: str) -> float | None:
        """Token bucket per key: None to go ahead, else the seconds until a token is free."""
        if not self.rate_limit:
            return None
        with self._lock:
            now = self.clock()
            tokens, last = self._bucket.get(key, (self.rate_limit, now))
            tokens = min(self.rate_limit, tokens + (now - last) * self.rate_limit)
            if tokens >= 1.0:
                self._bucket[key] = (tokens - 1.0, now)
                return None
            self._bucket[key] = (tokens, now)
            return (1.0 - tokens) / self.rate_limit

    def reset(self) -> None:
        with self._lock:
            self.script.clear()
            self.requests = self.items = self.faults = self.rate_limited = self.too_large = 0
            self.tokens = 0
            self.last_body = None
            self.fault_rate = 0.0
            self.latency_ms = 0.0
            self.rate_limit = None
            self.clock = time.monotonic
            self._bucket.clear()
            self._random.seed(self.seed)

    def stats(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "items": self.items,
            "tokens": self.tokens,
            "faults": self.faults,
            "rate_limited": self.rate_limited,
            "too_large": self.too_large,
            **(self.accelerator.stats() if self.accelerator is not None else {}),
        }


def _error(
    status: int,
    message: str,
    code: str | None,
    error_type: str = "invalid_request_error",
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": error_type, "code": code}},
        status_code=status,
        headers=headers,
    )


class DroppedConnection(Exception):
    """Raised inside the app to make the server drop the connection (a scripted fault)."""


class _QuietDrops(logging.Filter):
    """Keep scripted drops out of the server's error log; real errors still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


class _Refusal(Exception):
    def __init__(self, response: JSONResponse) -> None:
        self.response = response


def _bad_request(message: str, code: str = "invalid_request") -> _Refusal:
    return _Refusal(_error(400, message, code))


def _retry_after_headers(wait: float, style: str) -> dict[str, str]:
    if style == "none":
        return {}
    if style == "seconds":
        return {"retry-after": str(max(1, math.ceil(wait)))}
    return {"retry-after": f"{wait:.3f}", "retry-after-ms": str(max(1, round(wait * 1000)))}


class _GateMiddleware:
    """Auth, per-key rate limit, latency and scripted faults, ahead of every route."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization", "")
        given = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(given.encode(), self.state.api_key.encode()):
            message = "missing API key" if not auth else "invalid API key"
            await _error(
                401,
                f"{message}: send Authorization: Bearer $MIXLAYER_API_KEY",
                "invalid_api_key",
                "authentication_error",
            )(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        self.state.requests += 1
        wait = self.state.take_token(given)
        if wait is not None:
            self.state.rate_limited += 1
            await _error(
                429,
                "rate limit exceeded for this API key",
                "rate_limited",
                "rate_limit_error",
                headers=_retry_after_headers(wait, self.state.retry_after),
            )(scope, receive, send)
            return
        fault = self.state.next_fault()
        latency = (fault or {}).get("latency_ms", self.state.latency_ms)
        if latency:
            await asyncio.sleep(latency / 1000)
        if fault is None or set(fault) == {"latency_ms"}:
            await self.app(scope, receive, send)
            return
        self.state.faults += 1
        await self._fault(fault, scope, receive, send)

    async def _fault(
        self, fault: dict[str, Any], scope: Scope, receive: Receive, send: Send
    ) -> None:
        if fault.get("drop"):
            # Start a response, then fail: the server closes the socket mid-response, and the
            # client sees the connection drop before a body arrives.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"1000"),
                    ],
                }
            )
            raise DroppedConnection
        if "slow_body_s" in fault:
            captured: list[Message] = []

            async def hold(message: Message) -> None:
                captured.append(message)

            await self.app(scope, receive, hold)
            for message in captured:
                if message["type"] == "http.response.body":
                    await asyncio.sleep(float(fault["slow_body_s"]))
                await send(message)
            return
        status = int(fault.get("status", 500))
        extra: dict[str, str] = {}
        if "retry_after" in fault:
            extra["retry-after"] = str(fault["retry_after"])
        if "retry_after_ms" in fault:
            extra["retry-after-ms"] = str(fault["retry_after_ms"])
        if fault.get("html"):
            response: Response = Response(
                "<html><body><h1>502 Bad Gateway</h1></body></html>",
                status_code=status,
                media_type="text/html",
                headers=extra,
            )
        else:
            response = _error(
                status,
                fault.get("message", f"emulated fault {status}"),
                fault.get("code"),
                "server_error"
                if status >= 500
                else "rate_limit_error"
                if status == 429
                else "invalid_request_error",
                headers=extra,
            )
        await response(scope, receive, send)


def _parse_body(raw: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _bad_request(f"request body is not valid JSON: {exc}", "invalid_json") from exc
    if not isinstance(body, dict):
        raise _bad_request("request body must be a JSON object")
    return body


def _check_request(body: dict[str, Any], state: EmulatorState) -> tuple[str, list[Any], bool]:
    """Refuse what the service refuses, with its codes; return (model, items, truncate)."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad_request("model is required and must be a string", "missing_model")
    # Matched exactly, as the service does: a config typo must fail here too.
    if model == CHAT_MODEL:
        raise _Refusal(
            _error(400, f"model {model} is not an embedding model", "model_kind_mismatch")
        )
    if model != EMBEDDING_MODEL:
        raise _Refusal(
            _error(
                404,
                f"model {model} does not exist or is not available to this API key "
                f"(this emulator serves the embedding model {EMBEDDING_MODEL})",
                "model_not_found",
            )
        )
    try:
        read_options(body)
        kind, items = read_input(body.get("input"))
    except RequestRefused as refused:
        raise _bad_request(refused.message, refused.code) from refused
    truncate = body.get("truncate") is True
    too_long = [i for i, item in enumerate(items) if count_tokens(item) > state.context_window]
    if too_long and (kind == "tokens" or not truncate):
        raise _bad_request(
            f"input {'token arrays' if kind == 'tokens' else 'texts'} longer than the "
            f"model context window ({state.context_window} tokens)",
            "invalid_input",
        )
    for i in too_long:  # only texts get here, and only with truncate=true
        items[i] = truncate_tokens(items[i], state.context_window)
    return model, items, truncate


def create_app(
    state: EmulatorState, *, executor: concurrent.futures.Executor | None = None
) -> ASGIApp:
    """The app. Vectors are computed off the event loop: on ``executor`` (a process pool makes
    concurrent requests run in parallel), else on a worker thread."""

    async def embeddings(request: Request) -> Response:
        try:
            raw = await read_within(request, state.max_body_bytes)
            if raw is None:
                state.too_large += 1
                return BODY_TOO_LARGE
            body = _parse_body(raw)
            state.last_body = body if isinstance(body, dict) else None
            model, items, _ = _check_request(body, state)
        except _Refusal as refusal:
            return refusal.response
        except ClientDisconnect:
            request.scope["mixlayer.note"] = "client disconnected"
            return Response(status_code=499)
        request.scope["mixlayer.items"] = len(items)
        # What shapes the vectors, so a user can see a query went as "query" (never the texts).
        request.scope["mixlayer.shape"] = ", ".join(
            f"{name}={body[name]}" for name in ("input_type", "dimensions") if name in body
        )
        if state.max_tokens_per_request is not None or state.accelerator is not None:
            tokens = sum(count_tokens(item) for item in items)
            if state.max_tokens_per_request is not None and tokens > state.max_tokens_per_request:
                state.too_large += 1
                return _error(
                    413,
                    f"request too large: {tokens} tokens, at most "
                    f"{state.max_tokens_per_request} in one request",
                    "request_too_large",
                )
            if state.accelerator is not None:
                refused = await queue_for(state.accelerator, tokens, request)
                if refused is not None:
                    return refused
        loop = asyncio.get_running_loop()
        data, tokens = await loop.run_in_executor(
            executor,
            encode_data,
            items,
            body.get("dimensions") or FULL_DIMENSIONS,
            body.get("input_type"),
            body.get("normalize") is not False,
            body.get("encoding_format") == "base64",
        )
        state.items += len(items)
        state.tokens += tokens
        head = json.dumps({"object": "list", "model": model}, separators=(",", ":"))[:-1]
        usage = json.dumps({"prompt_tokens": tokens, "total_tokens": tokens})
        return Response(
            f'{head},"usage":{usage},"data":'.encode() + data + b"}",
            media_type="application/json",
        )

    async def models(request: Request) -> Response:
        created = 1_700_000_000
        return JSONResponse(
            {
                "object": "list",
                "data": [
                    {
                        "id": EMBEDDING_MODEL,
                        "object": "model",
                        "created": created,
                        "owned_by": "qwen",
                        "kind": "embedding",
                    },
                    {
                        "id": CHAT_MODEL,
                        "object": "model",
                        "created": created,
                        "owned_by": "qwen",
                        "kind": "chat",
                    },
                ],
            }
        )

    async def script(request: Request) -> Response:
        try:
            faults = json.loads(await request.body())
        except (json.JSONDecodeError, UnicodeDecodeError):
            faults = None
        if not isinstance(faults, list) or not all(isinstance(f, dict) for f in faults):
            return _error(400, "send a JSON list of fault objects", "invalid_request")
        state.script.extend(faults)
        return JSONResponse({"queued": len(state.script)})

    async def reset(request: Request) -> Response:
        state.reset()
        return JSONResponse({"ok": True})

    async def stats(request: Request) -> Response:
        return JSONResponse(state.stats())

    app = Starlette(
        routes=[
            Route("/v1/embeddings", embeddings, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/_emulator/script", script, methods=["POST"]),
            Route("/_emulator/reset", reset, methods=["POST"]),
            Route("/_emulator/stats", stats, methods=["GET"]),
        ]
    )
    return _AccessLog(_GateMiddleware(app, state))


access_logger = logging.getLogger("mixlayer_embeddings.emulator.access")


class _AccessLog:
    """One line per request at INFO on ``mixlayer_embeddings.emulator.access``: method, path,
    status, items, ``input_type`` and ``dimensions`` when sent, milliseconds (shown by
    ``mixlayer-emulator --access-log``); never the texts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not access_logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [0]

        async def record(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            items = scope.get("mixlayer.items")
            shape = scope.get("mixlayer.shape")
            note = scope.get("mixlayer.note")
            access_logger.info(
                "%s %s %s%s %.0f ms%s",
                scope["method"],
                scope["path"],
                status[0] or "dropped",
                (f" {items} items" if items is not None else "") + (f", {shape}" if shape else ""),
                (time.perf_counter() - started) * 1000,
                f" ({note})" if note else "",
            )
