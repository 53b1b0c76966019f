"""OpenTelemetry (``_telemetry``), read back through the SDK's in-memory exporters: a span per
call and one per HTTP attempt under it, in the GenAI semantic conventions; the two GenAI
metrics, with the service's own token count; never a text or the key; and nothing imported
without the API."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from conftest import MODEL
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mixlayer_embeddings import AsyncMixlayerClient, AuthenticationError, MixlayerClient

SPANS = InMemorySpanExporter()
# Delta: each read holds what was recorded since the last one (one test's calls).
READER = InMemoryMetricReader(preferred_temporality={Histogram: AggregationTemporality.DELTA})


@pytest.fixture(scope="module", autouse=True)
def _providers() -> None:
    """The SDK behind the global API. OpenTelemetry takes one provider per process: when a page
    of docs/ set one already, our exporter joins it."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        current.add_span_processor(SimpleSpanProcessor(SPANS))
    else:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(SPANS))
        trace.set_tracer_provider(provider)
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(MeterProvider(metric_readers=[READER]))


@pytest.fixture
def client(mixlayer_emulator):
    SPANS.clear()
    READER.get_metrics_data()  # drain what earlier tests recorded
    with MixlayerClient(
        base_url=mixlayer_emulator.base_url,
        api_key=mixlayer_emulator.api_key,
        model=MODEL,
        batch_size=2,
        max_concurrency=2,
    ) as c:
        yield c


def _spans() -> tuple[ReadableSpan, list[ReadableSpan]]:
    spans = SPANS.get_finished_spans()
    [call] = [s for s in spans if s.name.startswith("embeddings ")]
    attempts = [s for s in spans if s.name == "POST"]
    return call, attempts


def _metrics() -> dict[str, list[Any]]:
    """Each metric's data points recorded since the last read (the reader is delta)."""
    data = READER.get_metrics_data()
    points: dict[str, list[Any]] = {}
    for resource in data.resource_metrics if data is not None else []:
        for scope in resource.scope_metrics:
            if scope.scope.name == "mixlayer_embeddings":
                for metric in scope.metrics:
                    points.setdefault(metric.name, []).extend(metric.data.data_points)
    return points


def test_a_call_is_one_genai_span_with_one_child_span_per_http_attempt(
    client, mixlayer_emulator
) -> None:
    served = mixlayer_emulator.state.stats()["tokens"]
    client.embed(["one", "two", "three", "four", "five"], dimensions=64)
    tokens = mixlayer_emulator.state.stats()["tokens"] - served
    call, attempts = _spans()
    assert call.name == f"embeddings {MODEL}"
    assert call.kind is trace.SpanKind.CLIENT
    attributes = dict(call.attributes or {})
    assert {k: attributes[k] for k in (
        "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
        "gen_ai.embeddings.dimension.count", "server.address", "gen_ai.usage.input_tokens",
    )} == {
        "gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "mixlayer",
        "gen_ai.request.model": MODEL, "gen_ai.embeddings.dimension.count": 64,
        "server.address": "127.0.0.1", "gen_ai.usage.input_tokens": tokens,
    }  # fmt: skip
    assert attributes["gen_ai.request.encoding_formats"] == ("base64",)
    assert len(attempts) == 3  # batches of 2: 2 + 2 + 1
    for attempt in attempts:
        assert attempt.parent is not None
        assert attempt.parent.span_id == call.context.span_id
        assert attempt.attributes["http.response.status_code"] == 200
    assert sorted(a.attributes["mixlayer.request.items"] for a in attempts) == [1, 2, 2]


def test_the_metrics_record_the_call_and_the_services_token_count(
    client, mixlayer_emulator
) -> None:
    served = mixlayer_emulator.state.stats()["tokens"]
    client.embed(["alpha beta", "gamma"])
    client.embed(["delta epsilon zeta"])
    tokens = mixlayer_emulator.state.stats()["tokens"] - served
    recorded = _metrics()
    [usage] = recorded["gen_ai.client.token.usage"]
    assert usage.attributes["gen_ai.token.type"] == "input"
    assert usage.sum == tokens and usage.count == 2  # one record per call
    [duration] = recorded["gen_ai.client.operation.duration"]
    assert duration.count == 2 and duration.sum > 0
    assert duration.attributes["gen_ai.operation.name"] == "embeddings"


def test_a_429_then_a_success_is_an_error_attempt_then_a_resend(client, mixlayer_emulator) -> None:
    mixlayer_emulator.script([{"status": 429, "retry_after": 0}])
    client.embed(["only one request"])
    call, attempts = _spans()
    first, second = sorted(attempts, key=lambda s: s.start_time or 0)
    assert first.attributes["http.response.status_code"] == 429
    assert first.attributes["error.type"] == "429"
    assert first.status.status_code is trace.StatusCode.ERROR
    assert second.attributes["http.response.status_code"] == 200
    assert second.attributes["http.request.resend_count"] == 1
    assert second.attributes["mixlayer.batch.attempt"] == 2
    assert call.status.status_code is not trace.StatusCode.ERROR


def test_a_failed_call_says_what_ended_it(client, mixlayer_emulator) -> None:
    mixlayer_emulator.script([{"status": 401}])
    with pytest.raises(AuthenticationError):
        client.embed(["x"])
    call, _ = _spans()
    assert call.attributes["error.type"] == "AuthenticationError"
    assert call.status.status_code is trace.StatusCode.ERROR
    [duration] = _metrics()["gen_ai.client.operation.duration"]
    assert duration.attributes["error.type"] == "AuthenticationError"


def test_a_stream_and_the_async_client_keep_attempts_under_their_call(
    client, mixlayer_emulator
) -> None:
    batches = list(client.iter_embed(iter(["a", "b", "c"])))
    assert len(batches) == 2
    call, attempts = _spans()
    assert len(attempts) == 2 and {a.parent.span_id for a in attempts} == {call.context.span_id}
    SPANS.clear()

    async def go() -> None:
        async with AsyncMixlayerClient(
            base_url=mixlayer_emulator.base_url,
            api_key=mixlayer_emulator.api_key,
            model=MODEL,
            batch_size=1,
        ) as c:
            await c.embed(["d", "e", "f"])

    asyncio.run(go())
    call, attempts = _spans()
    assert len(attempts) == 3 and {a.parent.span_id for a in attempts} == {call.context.span_id}


def test_no_span_or_metric_holds_a_text_or_the_key(client, mixlayer_emulator) -> None:
    secret_text = "the-confidential-passage-xyzzy"
    mixlayer_emulator.script([{"status": 500}])
    client.embed([secret_text, "another"])
    dumped = json.dumps(
        [json.loads(s.to_json()) for s in SPANS.get_finished_spans()]
        + [str(READER.get_metrics_data())]
    )
    assert secret_text not in dumped
    assert mixlayer_emulator.api_key not in dumped


def test_without_the_api_nothing_is_imported_and_calls_get_the_no_op() -> None:
    script = """
import sys
sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
import mixlayer_embeddings
from mixlayer_embeddings._telemetry import NO_TELEMETRY, start_call
import httpx
assert start_call("m", httpx.URL("https://x/v1/embeddings"), None, "base64") is NO_TELEMETRY
assert not [m for m in sys.modules if m.startswith("opentelemetry") and sys.modules[m]]
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)  # noqa: S603 - ours
    importing = "import mixlayer_embeddings, sys; assert 'opentelemetry' not in sys.modules"
    subprocess.run([sys.executable, "-c", importing], check=True, timeout=60)  # noqa: S603 - ours
