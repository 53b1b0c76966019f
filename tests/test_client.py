"""The core clients over httpx.MockTransport: request building, parsing, errors, retries."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import pickle
import threading
from array import array
from typing import Any

import httpx
import pytest
from conftest import KEY, MODEL, FakeClock, FakeService, encode, error_response, vector_for

from mixlayer_embeddings import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncMixlayerClient,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    InputRejectedError,
    InsecureTransportError,
    InternalServerError,
    InvalidInputError,
    InvalidParameterError,
    MixlayerClient,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseValidationError,
)
from mixlayer_embeddings._batching import plan_batches
from mixlayer_embeddings._concurrency import AdaptiveLimit
from mixlayer_embeddings._response import decode_base64_vector


def embed(
    flavour: str,
    handler: Any,
    input: Any,
    /,
    client_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
):
    """Run one embed call through the sync or the async client over a MockTransport, on a
    fake clock unless ``client_kwargs`` names one (every wait is recorded, none is slept)."""
    options = {"api_key": KEY, "model": MODEL, "clock": FakeClock(), **(client_kwargs or {})}
    transport = httpx.MockTransport(handler)
    if flavour == "sync":
        with MixlayerClient(http_client=httpx.Client(transport=transport), **options) as client:
            return client.embed(input, **kwargs)

    async def go():
        async with AsyncMixlayerClient(
            http_client=httpx.AsyncClient(transport=transport), **options
        ) as client:
            return await client.embed(input, **kwargs)

    return asyncio.run(go())


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return request.param


# -- request building ------------------------------------------------------------------------


def test_request_carries_auth_agent_encoding_and_only_the_options_set(flavour, service) -> None:
    embed(flavour, service, ["a"], input_type="query", dimensions=64)
    request = service.requests[0]
    assert request.method == "POST"
    assert str(request.url) == "https://models.mixlayer.ai/v1/embeddings"
    assert request.headers["user-agent"].startswith("mixlayer-embeddings/")
    assert request.headers["accept-encoding"] == "gzip"
    assert request.headers["content-type"] == "application/json"
    assert service.bodies[0] == {
        "model": MODEL,
        "input": ["a"],
        "encoding_format": "base64",
        "input_type": "query",
        "dimensions": 64,
    }


def test_unset_options_are_omitted_not_null(flavour, service) -> None:
    embed(flavour, service, "a")
    assert service.bodies[0] == {"model": MODEL, "input": "a", "encoding_format": "base64"}
    assert b"null" not in service.requests[0].content


def test_normalize_truncate_and_float_are_sent_when_asked(flavour, service) -> None:
    embed(flavour, service, ["a"], normalize=False, truncate=True, encoding_format="float")
    assert service.bodies[0]["normalize"] is False
    assert service.bodies[0]["truncate"] is True
    assert service.bodies[0]["encoding_format"] == "float"


def test_base_url_with_and_without_trailing_slash(service) -> None:
    for base in ("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/"):
        embed("sync", service, "a", client_kwargs={"base_url": base})
    assert [str(r.url) for r in service.requests] == ["http://127.0.0.1:9/v1/embeddings"] * 2


@pytest.mark.parametrize(
    "value",
    ["one text", ["a", "b"], [101, 7592, 102], [[101, 7592, 102], [101, 2088, 102]]],
)
def test_every_input_form_round_trips(flavour, service, value) -> None:
    response = embed(flavour, service, value)
    assert service.bodies[0]["input"] == value
    single = isinstance(value, str) or isinstance(value[0], int)
    items = [value] if single else value
    assert response.embeddings == [vector_for(item) for item in items]


def test_empty_list_makes_no_request(flavour, service) -> None:
    response = embed(flavour, service, [])
    assert response.embeddings == []
    assert service.requests == []


# -- parsing ----------------------------------------------------------------------------------


def test_base64_decodes_little_endian_float32() -> None:
    values = [0.0023064255, -0.009327292, 0.015797347, 1.0]
    little = array("f", values)
    if little.itemsize != 4:  # pragma: no cover - every CPython platform has 4-byte "f"
        pytest.skip("no float32 array type")
    raw = little.tobytes() if __import__("sys").byteorder == "little" else _swapped(little)
    assert decode_base64_vector(base64.b64encode(raw).decode()) == list(array("f", values))


def _swapped(values: array) -> bytes:  # pragma: no cover - big-endian hosts only
    copy = array("f", values)
    copy.byteswap()
    return copy.tobytes()


def test_float_arrays_are_accepted_when_server_ignores_base64(flavour) -> None:
    def float_server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"data": [{"index": 0, "embedding": [1, 2.5, -3]}], "model": MODEL, "usage": {}},
        )

    assert embed(flavour, float_server, "a").embeddings == [[1.0, 2.5, -3.0]]


def test_vectors_are_placed_by_index_not_position(flavour) -> None:
    service = FakeService(shuffle=True)
    texts = [f"text {i}" for i in range(50)]
    response = embed(flavour, service, texts, client_kwargs={"batch_size": 7})
    assert response.embeddings == [vector_for(t) for t in texts]
    assert response.requests == 8
    assert response.usage.prompt_tokens == 150
    assert response.usage.total_tokens == 150


def _answer(data: list[dict[str, Any]], **extra: Any):
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": data, "model": MODEL, **extra})

    return respond


V = encode([1.0, 2.0])


@pytest.mark.parametrize(
    ("handler", "fragment"),
    [
        (_answer([{"index": 0, "embedding": V}]), "1 embeddings for 2 inputs"),
        (_answer([{"index": 0, "embedding": V}, {"index": 0, "embedding": V}]), "more than once"),
        (_answer([{"index": 0, "embedding": V}, {"index": 2, "embedding": V}]), "out of range"),
        (_answer([{"index": 0, "embedding": V}, {"embedding": V}]), "no integer 'index'"),
        (
            _answer([{"index": 0, "embedding": V}, {"index": 1, "embedding": encode([1.0])}]),
            "different lengths",
        ),
        (_answer([{"index": 0, "embedding": V}, {"index": 1, "embedding": "@@@"}]), "bad base64"),
        (_answer([{"index": 0, "embedding": V}, {"index": 1, "embedding": V[:-4]}]), "bad base64"),
        (
            _answer(
                [
                    {"index": 0, "embedding": encode([1.0, float("nan")])},
                    {"index": 1, "embedding": V},
                ]
            ),
            "NaN or infinite",
        ),
        (
            lambda r: httpx.Response(
                200,
                content=b'{"data": [{"index": 0, "embedding": [1.0, '
                b'Infinity]}, {"index": 1, "embedding": [1.0, 2.0]}]}',
            ),
            "NaN or infinite",
        ),
        (
            _answer([{"index": 0, "embedding": V}, {"index": 1, "embedding": ["x", 1]}]),
            "non-numeric",
        ),
        (
            _answer([{"index": 0, "embedding": V}, {"index": 1, "embedding": None}]),
            "of type NoneType",
        ),
        (lambda r: httpx.Response(200, text="<html>oops</html>"), "not JSON"),
        (lambda r: httpx.Response(200, json=[1, 2]), "JSON list"),
        (lambda r: httpx.Response(200, json={"object": "list"}), "no 'data' list"),
        (lambda r: httpx.Response(200, json={"error": {"message": "boom"}}), "error envelope"),
    ],
)
def test_untrustworthy_responses_raise_never_return(flavour, handler, fragment) -> None:
    with pytest.raises(ResponseValidationError, match=fragment):
        embed(flavour, handler, ["a", "b"])


def test_vectors_not_of_the_requested_dimensions_are_refused(flavour) -> None:
    handler = _answer([{"index": 0, "embedding": V}])
    with pytest.raises(ResponseValidationError, match="dimensions=64"):
        embed(flavour, handler, ["a"], dimensions=64)


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid_input", InputRejectedError),
        (400, "invalid_dimensions", BadRequestError),
        (400, "invalid_encoding_format", BadRequestError),
        (400, "model_kind_mismatch", BadRequestError),
        (401, "invalid_api_key", AuthenticationError),
        (403, "forbidden", PermissionDeniedError),
        (404, "model_not_found", NotFoundError),
        (422, None, APIStatusError),
        (429, "rate_limited", RateLimitError),
        (500, None, InternalServerError),
        (503, "overloaded", InternalServerError),
    ],
)
def test_status_and_code_map_to_typed_errors(flavour, status, code, cls) -> None:
    service = FakeService()
    service.script = [
        error_response(
            status, code, {"x-request-id": "req-42"}, message="input strings must not be empty"
        )
    ] * 10
    with pytest.raises(cls) as info:
        embed(flavour, service, ["a"])
    error = info.value
    assert type(error) is cls
    assert error.status_code == status
    assert error.code == code
    assert error.request_id == "req-42"
    assert error.type == "invalid_request_error"
    assert "input strings must not be empty" in str(error)
    if code:
        assert code in str(error)


def test_html_error_page_gives_a_short_typed_error(flavour) -> None:
    html = "<html><body>" + "x" * 5000 + "</body></html>"
    service = FakeService()
    service.script = [lambda r: httpx.Response(502, text=html)] * 10
    with pytest.raises(InternalServerError) as info:
        embed(flavour, service, ["a"])
    assert len(str(info.value)) < 300
    assert info.value.code is None


def test_transport_errors_become_connection_errors_in_one_place(flavour) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(APIConnectionError) as info:
        embed(flavour, refuse, ["a"])
    assert isinstance(info.value.__cause__, httpx.ConnectError)


def test_timeouts_become_api_timeout_error(flavour) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(APITimeoutError):
        embed(flavour, slow, ["a"])


# -- retries -----------------------------------------------------------------------------------


def test_retryable_errors_are_retried_then_succeed(flavour, service) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed", request=request)

    service.script = [
        error_response(429, "rate_limited", {"retry-after": "1"}),
        error_response(503),
        drop,
        error_response(408),
    ]
    response = embed(flavour, service, ["a"], client_kwargs={"max_retries": 4})
    assert response.embeddings == [vector_for("a")]
    assert len(service.requests) == 5


def test_retries_give_up_after_max_retries(flavour, service) -> None:
    service.script = [error_response(500)] * 10
    with pytest.raises(InternalServerError):
        embed(flavour, service, ["a"], client_kwargs={"max_retries": 2})
    assert len(service.requests) == 3


def test_client_errors_are_never_retried(flavour, service) -> None:
    service.script = [error_response(400, "invalid_dimensions")] * 10
    with pytest.raises(BadRequestError):
        embed(flavour, service, ["a"])
    assert len(service.requests) == 1


def test_retry_after_is_waited_on_the_clients_clock(flavour, service, clock) -> None:
    service.script = [error_response(429, headers={"retry-after": "1.5"})]
    embed(flavour, service, ["a"], client_kwargs={"clock": clock})
    assert clock.sleeps == [pytest.approx(1.5, abs=0.01)]


def test_backoff_waits_grow_on_the_clients_clock(flavour, service, clock) -> None:
    service.script = [error_response(503)] * 3
    embed(flavour, service, ["a"], client_kwargs={"clock": clock})
    # 0.5 s doubling, each less a jitter of at most a quarter.
    assert len(clock.sleeps) == 3
    for wait, base in zip(clock.sleeps, (0.5, 1.0, 2.0), strict=True):
        assert 0.75 * base <= wait <= base


def test_timeout_is_configurable_per_client(service) -> None:
    embed("sync", service, "a", client_kwargs={"timeout": httpx.Timeout(3.0, connect=1.0)})
    timeout = service.requests[0].extensions["timeout"]
    assert timeout == {"connect": 1.0, "read": 3.0, "write": 3.0, "pool": 3.0}


def test_default_timeouts_are_ours() -> None:
    client = MixlayerClient(api_key=KEY, model=MODEL)
    try:
        assert client._http.timeout.connect == 10.0
        assert client._http.timeout.read == 60.0
    finally:
        client.close()


# -- batching and concurrency -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "size", "expected"),
    [
        (0, 4, []),
        (1, 4, [(0, 1)]),
        (4, 4, [(0, 4)]),
        (5, 4, [(0, 3), (3, 5)]),
        (10, 4, [(0, 4), (4, 7), (7, 10)]),
        (4097, 2048, [(0, 1366), (1366, 2732), (2732, 4097)]),
    ],
)
def test_plan_batches_is_even_and_covers_everything(count, size, expected) -> None:
    assert plan_batches(count, size) == expected


def test_no_request_holds_more_than_batch_size(flavour, service) -> None:
    texts = [f"t{i}" for i in range(5000)]
    response = embed(flavour, service, texts)
    sizes = sorted(len(b["input"]) for b in service.bodies)
    # The fewest requests (3), evenly sized (the items' tokens differ a little: t7 and t4999).
    assert len(sizes) == 3 and sum(sizes) == 5000 and max(sizes) <= 2048
    assert max(sizes) - min(sizes) <= 0.05 * max(sizes)
    assert len(response.embeddings) == 5000


def test_concurrency_is_bounded(flavour) -> None:
    lock = threading.Lock()
    in_flight = 0
    peak = 0
    service = FakeService()

    if flavour == "sync":
        import time

        def handler(request: httpx.Request) -> httpx.Response:
            nonlocal in_flight, peak
            with lock:
                in_flight += 1
                peak = max(peak, in_flight)
            time.sleep(0.02)
            with lock:
                in_flight -= 1
            return service(request)
    else:

        async def handler(request: httpx.Request) -> httpx.Response:  # type: ignore[misc]
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1
            return service(request)

    texts = [f"t{i}" for i in range(40)]
    response = embed(flavour, handler, texts, client_kwargs={"batch_size": 2, "max_concurrency": 3})
    assert response.embeddings == [vector_for(t) for t in texts]
    assert peak == 3


def test_progress_callback_counts_every_item(flavour, service) -> None:
    seen: list[int] = []
    embed(
        flavour,
        service,
        [f"t{i}" for i in range(10)],
        client_kwargs={"batch_size": 3},
        on_progress=seen.append,
    )
    assert sorted(seen) == [2, 2, 3, 3]


def test_a_failing_batch_fails_the_call(flavour) -> None:
    service = FakeService()

    def handler(request: httpx.Request) -> httpx.Response:
        if "t5" in json.loads(request.content)["input"]:
            return error_response(400, "invalid_input")(request)
        return service(request)

    with pytest.raises(BadRequestError):
        embed(flavour, handler, [f"t{i}" for i in range(10)], client_kwargs={"batch_size": 2})


# -- validation before sending -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input", "kwargs", "error"),
    [
        (["a", ""], {}, InvalidInputError),
        ([[1], []], {}, InvalidInputError),
        ([1, 2.0], {}, InvalidInputError),
        (["a", [1]], {}, InvalidInputError),
        ("a", {"dimensions": 0}, InvalidParameterError),
        ("a", {"dimensions": 5000}, InvalidParameterError),
        ("a", {"encoding_format": "binary"}, InvalidParameterError),
        ("a", {"input_type": "passage"}, InvalidParameterError),
        ("a", {"input_type": 1}, InvalidParameterError),
    ],
)
def test_bad_requests_are_refused_before_sending(flavour, service, input, kwargs, error) -> None:
    with pytest.raises(error):
        embed(flavour, service, input, **kwargs)
    assert service.requests == []


def test_unknown_model_passes_its_own_limits_to_the_server(service) -> None:
    embed("sync", service, "a", model="acme/other", input_type="passage", dimensions=9000)
    assert service.bodies[0]["model"] == "acme/other"


@pytest.mark.parametrize(
    ("field", "value"),
    [("batch_size", 0), ("batch_size", 2049), ("max_concurrency", 0), ("max_retries", -1)],
)
def test_bad_client_settings(field, value) -> None:
    with pytest.raises(InvalidParameterError, match=field):
        MixlayerClient(api_key=KEY, model=MODEL, **{field: value})


# -- configuration and security ------------------------------------------------------------------


def test_configuration_comes_from_the_environment(monkeypatch, service) -> None:
    monkeypatch.setenv("MIXLAYER_API_KEY", KEY)
    monkeypatch.setenv("MIXLAYER_EMBEDDING_MODEL", "env/model")
    monkeypatch.setenv("MIXLAYER_BASE_URL", "http://localhost:1234/v9")
    with MixlayerClient(http_client=httpx.Client(transport=httpx.MockTransport(service))) as c:
        c.embed("x")
    assert str(service.requests[0].url) == "http://localhost:1234/v9/embeddings"
    assert service.bodies[0]["model"] == "env/model"
    assert service.requests[0].headers["authorization"] == "Bearer [REDACTED]"


def test_explicit_arguments_beat_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("MIXLAYER_EMBEDDING_MODEL", "env/model")
    client = MixlayerClient(api_key=KEY, model="arg/model")
    assert client.model == "arg/model"
    client.close()


@pytest.mark.parametrize(
    ("missing", "kwargs"),
    [
        ("MIXLAYER_API_KEY", {"model": MODEL}),
        ("MIXLAYER_EMBEDDING_MODEL", {"api_key": KEY}),
    ],
)
def test_missing_configuration_names_the_variable(missing, kwargs) -> None:
    with pytest.raises(ConfigurationError, match=missing):
        MixlayerClient(**kwargs)


def test_constructing_makes_no_request() -> None:
    def explode(request: httpx.Request) -> httpx.Response:
        raise AssertionError("no request expected")

    MixlayerClient(
        api_key=KEY, model=MODEL, http_client=httpx.Client(transport=httpx.MockTransport(explode))
    ).close()


@pytest.mark.parametrize("url", ["http://models.example.com/v1", "http://10.0.0.5/v1"])
def test_plain_http_to_a_remote_host_is_refused(url) -> None:
    with pytest.raises(InsecureTransportError, match="plain http"):
        MixlayerClient(api_key=KEY, model=MODEL, base_url=url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765/v1",
        "http://localhost/v1",
        "http://[::1]:8000/v1",
        "http://127.5.5.5/v1",
    ],
)
def test_plain_http_to_loopback_is_allowed(url) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    http = httpx.Client(transport=httpx.MockTransport(answer))
    with (
        MixlayerClient(
            api_key=KEY, model=MODEL, base_url=url, http_client=http, max_retries=0
        ) as c,
        pytest.raises(APIStatusError),
    ):
        c.embed("a")
    # Sent, in clear, to that loopback address, with the key: nothing refused it.
    assert [str(r.url) for r in sent] == [url.rstrip("/") + "/embeddings"]
    assert sent[0].headers["authorization"] == "Bearer [REDACTED]"  # blanked once it was sent


def test_plain_http_opt_in(service) -> None:
    embed(
        "sync",
        service,
        "a",
        client_kwargs={"base_url": "http://intranet.local/v1", "allow_insecure_http": True},
    )
    assert service.requests[0].url.host == "intranet.local"


def test_key_is_in_no_repr_exception_or_log(caplog, flavour) -> None:
    caplog.set_level(logging.DEBUG)
    service = FakeService()
    service.script = [error_response(503)] * 2 + [error_response(401, "invalid_api_key")]
    with pytest.raises(AuthenticationError) as info:
        embed(flavour, service, ["a"])
    client = MixlayerClient(api_key=KEY, model=MODEL)
    texts = [
        repr(client),
        str(client),
        repr(vars(client)),  # the key lives only inside its Secret
        repr(info.value),
        str(info.value),
        repr(info.value.request),
        str(info.value.request.headers),
        str(info.value.response.request.headers),
        caplog.text,
    ]
    client.close()
    assert all(KEY not in text for text in texts)
    assert "retry 1/3" in caplog.text
    with pytest.raises(TypeError):
        pickle.dumps(client)


def test_key_does_reach_the_wire(service) -> None:
    captured: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        captured.append(request.headers["authorization"])
        return service(request)

    embed("sync", handler, "a")
    assert captured == [f"Bearer {KEY}"]


# -- attribution and adaptive concurrency -------------------------------------------------------


def test_a_refused_batch_is_bisected_to_name_the_offending_items(flavour) -> None:
    service = FakeService()
    bad = {"bad 3", "bad 41", "bad 42"}

    def handler(request: httpx.Request) -> httpx.Response:
        if bad & set(json.loads(request.content)["input"]):
            return error_response(400, "invalid_input", message="input too long")(request)
        return service(request)

    texts = [f"ok {i}" for i in range(60)]
    for i in (3, 41, 42):
        texts[i] = f"bad {i}"
    with pytest.raises(InputRejectedError) as info:
        embed(flavour, handler, texts, client_kwargs={"batch_size": 30})
    # Every refused item of every batch is named, and the valid items' vectors are kept.
    assert info.value.indexes == [3, 41, 42]
    assert str(info.value) == (
        "The service refused input items 3, 41, 42 (invalid_input: input too long) in 2 "
        "batches; the other 57 items were embedded (see .partial). Retry without them, or with "
        "truncate=True if they are too long."
    )
    partial = info.value.partial
    assert partial.failed_indexes == [3, 41, 42]
    for i, vector in enumerate(partial.embeddings):
        assert vector == (None if i in (3, 41, 42) else vector_for(texts[i]))
    # Retrying only the failed inputs is one call, and fill() puts them in place.
    fixed = [f"fixed {i}" for i in partial.failed_indexes]
    merged = partial.fill(embed(flavour, service, fixed).embeddings)
    assert merged == [
        vector_for(f"fixed {i}") if i in (3, 41, 42) else vector_for(t) for i, t in enumerate(texts)
    ]
    assert info.value.code == "invalid_input"
    assert isinstance(info.value, BadRequestError)


def test_a_single_refused_item_is_named_without_bisecting(flavour, service) -> None:
    service.script = [error_response(400, "invalid_input")]
    with pytest.raises(InputRejectedError) as info:
        embed(flavour, service, "too long")
    assert info.value.indexes == [0]
    assert len(service.requests) == 1


@pytest.mark.parametrize(
    ("events", "allowed"),
    [
        ("", 8),
        ("t", 4),
        ("tt", 2),
        ("tttttt", 1),
        ("tttttts", 2),
        ("ttttttsss", 2),
        ("ttttttssss", 3),
        ("s" * 50, 8),
        ("t" + "s" * 30, 8),
    ],
)
def test_adaptive_limit_table(events, allowed) -> None:
    limit = AdaptiveLimit(8)
    for event in events:
        limit.on_throttle() if event == "t" else limit.on_success()
    assert limit.allowed == allowed


def test_a_429_with_retry_after_pauses_new_requests_then_paces_them() -> None:
    from mixlayer_embeddings._pacing import RatePacer

    pacer = RatePacer()
    assert pacer.reserve(now=99.0) == 0.0  # unpaced until the service says otherwise
    for t in (98.5, 99.0, 99.5, 99.9):
        pacer.on_success(now=t)
    pacer.on_throttle(2.0, sent_at=99.9, now=100.0)
    assert pacer.rate == 4 / 1.5  # 4 successes over the last 1.5 s
    # Held until the Retry-After, then one start every 1 / rate: no thundering herd.
    assert [pacer.reserve(now=100.5) for _ in range(3)] == [1.5, 1.875, 2.25]


def test_one_pool_per_client_whatever_the_number_of_event_loops() -> None:
    # asyncio.run per call is how frameworks often call async code; each run is a new loop.
    # A client used to register a finalizer per loop, each keeping that loop's pool (and its
    # httpx.AsyncClient) alive: 200 runs left 200 pools.
    import gc

    from mixlayer_embeddings._loop_pool import LoopPool

    service = FakeService()
    client = AsyncMixlayerClient(api_key=KEY, model=MODEL, clock=FakeClock())
    # An owned pool over a MockTransport: each new loop's http client gets one.
    binding = client._binding
    binding._http_kwargs["transport"] = httpx.MockTransport(service)
    binding.http = httpx.AsyncClient(**binding._http_kwargs)

    def live() -> tuple[int, int]:
        gc.collect()
        objects = gc.get_objects()
        pools = sum(isinstance(o, LoopPool) for o in objects)
        return pools, sum(isinstance(o, httpx.AsyncClient) for o in objects)

    pools_before, http_before = live()
    for _ in range(200):
        asyncio.run(client.embed("a"))
    pools_after, http_after = live()
    assert len(service.requests) == 200
    assert pools_after - pools_before <= 1
    assert http_after - http_before <= 1
    client._release()
