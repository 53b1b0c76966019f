"""OpenTelemetry, in the GenAI semantic conventions, when ``opentelemetry-api`` is installed
(the ``otel`` extra); nothing is imported, and nothing costs but a no-op call, when it is not.

A call (``embed``, ``embed_array``, a stream of ``iter_embed``) is one ``embeddings {model}``
span; each HTTP attempt of it, a ``POST`` span under it, retries and split halves included
(``http.request.resend_count``: this request's; ``mixlayer.batch.attempt``: its batch's,
halves included; ``mixlayer.request.items``). The call records the metrics
``gen_ai.client.operation.duration`` and ``gen_ai.client.token.usage`` (the service's own
count of input tokens). No span or metric holds a text or the key. Parents are set explicitly,
so the attempts of a call made on a worker thread or task still sit under the call's span.

The flow reports attempts (``_flow``, the one place every attempt ends); the clients open and
close the call.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from functools import cache
from typing import Any

import httpx

from ._version import __version__

__all__ = ["NO_TELEMETRY", "CallTelemetry", "start_call"]

_SCOPE = "mixlayer_embeddings"
_PROVIDER = "mixlayer"


@cache
def _otel() -> tuple[Any, Any, Any, Any] | None:
    """The tracer, the two histograms and the trace module, or None without the API."""
    try:
        from opentelemetry import metrics, trace
    except ImportError:
        return None
    meter = metrics.get_meter(_SCOPE, __version__)
    duration = meter.create_histogram(
        "gen_ai.client.operation.duration",
        unit="s",
        description="GenAI operation duration",
    )
    tokens = meter.create_histogram(
        "gen_ai.client.token.usage",
        unit="{token}",
        description="Measures number of input and output tokens used",
    )
    return trace.get_tracer(_SCOPE, __version__), duration, tokens, trace


class CallTelemetry:
    """One call's span and metrics. The base class is the no-op every call gets without the
    API: its methods do nothing."""

    def attempt(
        self,
        sent_at: float,
        now: float,
        *,
        items: int,
        resend_count: int,
        batch_attempt: int,
        status: int | None,
        error: str | None,
    ) -> None:
        """An HTTP attempt that started ``now - sent_at`` seconds ago ended: with ``status``
        (an HTTP status) or ``error`` (the name of what ended it)."""

    def add_usage(self, input_tokens: int) -> None:
        """Tokens the service counted for one answer of the call."""

    def end(self, error: BaseException | None = None) -> None:
        """The call is over (``error``: what it raised)."""

    @contextlib.contextmanager
    def observed(self) -> Iterator[None]:
        """Around a call's body: the call ends with what the body raised, or well (a stream
        whose consumer stopped early ended well: nothing failed)."""
        try:
            yield
        except GeneratorExit:
            self.end()
            raise
        except BaseException as error:
            self.end(error)
            raise
        self.end()


NO_TELEMETRY = CallTelemetry()


class _Recording(CallTelemetry):
    def __init__(
        self,
        otel: tuple[Any, Any, Any, Any],
        model: str,
        url: httpx.URL,
        dimensions: int | None,
        encoding_format: str,
    ) -> None:
        tracer, self._duration, self._tokens, self._trace = otel
        self._common: dict[str, Any] = {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.provider.name": _PROVIDER,
            "gen_ai.request.model": model,
            "server.address": url.host,
            "server.port": url.port or (443 if url.scheme == "https" else 80),
        }
        self._url = str(url)
        attributes = {**self._common, "gen_ai.request.encoding_formats": (encoding_format,)}
        if dimensions is not None:
            attributes["gen_ai.embeddings.dimension.count"] = dimensions
        self._span = tracer.start_span(
            f"embeddings {model}", kind=self._trace.SpanKind.CLIENT, attributes=attributes
        )
        self._tracer = tracer
        self._context = self._trace.set_span_in_context(self._span)
        self._started = time.perf_counter()
        self._input_tokens = 0
        self._ended = False

    def attempt(
        self,
        sent_at: float,
        now: float,
        *,
        items: int,
        resend_count: int,
        batch_attempt: int,
        status: int | None,
        error: str | None,
    ) -> None:
        ended_ns = time.time_ns()
        attributes: dict[str, Any] = {
            "http.request.method": "POST",
            "server.address": self._common["server.address"],
            "server.port": self._common["server.port"],
            "url.full": self._url,
            "mixlayer.request.items": items,
            # The batch's attempts so far, its retries and split halves included.
            "mixlayer.batch.attempt": batch_attempt,
        }
        if resend_count:
            attributes["http.request.resend_count"] = resend_count
        if status is not None:
            attributes["http.response.status_code"] = status
        failed = error or (str(status) if status is not None and status >= 400 else None)
        if failed:
            attributes["error.type"] = failed
        span = self._tracer.start_span(
            "POST",
            context=self._context,
            kind=self._trace.SpanKind.CLIENT,
            attributes=attributes,
            start_time=ended_ns - int(max(0.0, now - sent_at) * 1e9),
        )
        if failed:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
        span.end(end_time=ended_ns)

    def add_usage(self, input_tokens: int) -> None:
        self._input_tokens += input_tokens

    def end(self, error: BaseException | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        attributes = dict(self._common)
        if error is not None:
            attributes["error.type"] = type(error).__name__
            self._span.set_attribute("error.type", type(error).__name__)
            self._span.set_status(self._trace.Status(self._trace.StatusCode.ERROR))
        self._span.set_attribute("gen_ai.usage.input_tokens", self._input_tokens)
        self._span.end()
        self._duration.record(time.perf_counter() - self._started, attributes)
        if self._input_tokens:
            self._tokens.record(self._input_tokens, {**attributes, "gen_ai.token.type": "input"})


def start_call(
    model: str, url: httpx.URL, dimensions: int | None, encoding_format: str
) -> CallTelemetry:
    """A call's telemetry: recording when the OpenTelemetry API is installed, else the no-op."""
    otel = _otel()
    if otel is None:
        return NO_TELEMETRY
    return _Recording(otel, model, url, dimensions, encoding_format)
