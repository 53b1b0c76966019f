"""Hostile servers and forks: every wait bounded, and a child never shares its parent's
connections."""

from __future__ import annotations

import json
import os
import traceback

import httpx
import pytest
from conftest import KEY, MODEL, FakeClock, FakeService, error_response

from mixlayer_embeddings import AsyncMixlayerClient, MixlayerClient, MixlayerError
from mixlayer_embeddings._pacing import MAX_HOLD, RatePacer
from mixlayer_embeddings._retry import MAX_RETRY_AFTER, parse_retry_after


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "3600"}, 3600.0),  # as asked: every user clamps it
        ({"retry-after": "inf"}, None),
        ({"retry-after": "1e400"}, None),  # float("1e400") is inf
        ({"retry-after-ms": "inf"}, None),
        ({"retry-after": "nan"}, None),
        (
            {"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT", "x": "y"},
            pytest.approx(2.534e11, 0.001),
        ),
    ],
)
def test_absurd_retry_afters_are_not_waits(headers, expected) -> None:
    assert parse_retry_after(headers, now=0.0) == expected


@pytest.mark.parametrize("asked", [3600.0, 100_000.0, 1e9])
def test_the_pacer_never_holds_starts_longer_than_a_minute(asked) -> None:
    pacer = RatePacer()
    pacer.on_throttle(asked, sent_at=0.0, now=0.0)
    assert pacer.reserve(now=0.0) == MAX_HOLD == MAX_RETRY_AFTER


@pytest.mark.parametrize("retry_after", ["3600", "100000", "inf", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_call_told_to_wait_an_hour_or_for_ever_waits_at_most_a_minute(retry_after) -> None:
    service = FakeService()
    service.script = [error_response(429, headers={"retry-after": retry_after})]
    clock = FakeClock()
    transport = httpx.MockTransport(service)
    with MixlayerClient(
        api_key=KEY, model=MODEL, http_client=httpx.Client(transport=transport), clock=clock
    ) as client:
        assert len(client.embed(["a"]).embeddings) == 1
        assert sum(clock.sleeps) <= MAX_HOLD
        clock.sleeps.clear()
        assert len(client.embed(["b"]).embeddings) == 1  # and the next call is not stuck:
    assert sum(clock.sleeps) <= 1.0  # paced at one a second until answers say more


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is a POSIX call")
def test_a_forked_child_gets_its_own_connections_and_its_own_vectors(mixlayer_emulator) -> None:
    from mixlayer_embeddings.emulator import embed_items

    client = MixlayerClient(
        api_key=mixlayer_emulator.api_key,
        model=mixlayer_emulator.model,
        base_url=mixlayer_emulator.base_url,
    )
    client.embed(["warm the pool"], dimensions=32)  # a keep-alive connection to inherit
    parent_pool = client._http
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, and leave without running the parent's cleanups
        try:
            texts = [f"child {i}" for i in range(20)]
            vectors = [client.embed(t, dimensions=32).embeddings[0] for t in texts]
            report = {
                "fresh_pool": client._http is not parent_pool,
                "correct": vectors == embed_items(texts, dimensions=32).tolist(),
            }
        except BaseException as exc:
            report = {"error": repr(exc)}
        os.write(write, json.dumps(report).encode())
        os._exit(0)
    os.close(write)
    texts = [f"parent {i}" for i in range(20)]
    vectors = [client.embed(t, dimensions=32).embeddings[0] for t in texts]
    os.waitpid(pid, 0)
    with os.fdopen(read) as pipe:
        report = json.loads(pipe.read())
    client.close()
    assert report == {"fresh_pool": True, "correct": True}
    assert client._http is parent_pool  # the parent keeps its own
    assert vectors == embed_items(texts, dimensions=32).tolist()


@pytest.mark.parametrize("texts", [["fine", "bad \ud800 text", "é"], "\udfff"])
def test_a_lone_surrogate_is_refused_naming_its_index_before_any_request(texts) -> None:
    from mixlayer_embeddings import InvalidInputError

    service = FakeService()
    transport = httpx.MockTransport(service)
    with (
        MixlayerClient(
            api_key=KEY, model=MODEL, http_client=httpx.Client(transport=transport)
        ) as client,
        pytest.raises(InvalidInputError, match="lone surrogate") as info,
    ):
        client.embed(texts)
    assert info.value.indexes == ([1] if isinstance(texts, list) else [0])
    assert service.requests == []


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("http://user:pw@127.0.0.1/v1", "must not hold a user name or password"),
        ("https://models.mixlayer.ai/v1?x=1", "must not have a query string"),
    ],
)
def test_base_urls_that_would_misroute_the_key_are_refused(base_url, message) -> None:
    from mixlayer_embeddings import ConfigurationError

    with pytest.raises(ConfigurationError, match=message) as info:
        MixlayerClient(api_key=KEY, model=MODEL, base_url=base_url)
    assert "pw" not in str(info.value)


def test_a_base_url_with_surrounding_spaces_is_used_without_them() -> None:
    with MixlayerClient(api_key=KEY, model=MODEL, base_url="  https://h.example/v1  ") as client:
        assert str(client.base_url) == "https://h.example/v1/"


@pytest.mark.parametrize(
    ("settings", "error", "names"),
    [
        ({"timeout": float("inf")}, "InvalidParameterError", "timeout"),
        ({"timeout": (5.0, float("inf"))}, "InvalidParameterError", "timeout"),
        ({"api_key": 12345}, "ConfigurationError", "api_key must be a string"),
        ({"model": 5}, "ConfigurationError", "model must be a string"),
        ({"api_key": "sk-\u00e9t\u00e9-key"}, "ConfigurationError", "HTTP header cannot carry"),
        ({"api_key": "sk-abc\r\nX-Evil: 1"}, "ConfigurationError", "HTTP header cannot carry"),
    ],
)
def test_odd_settings_are_typed_errors_at_construction(settings, error, names) -> None:
    import mixlayer_embeddings

    options = {"api_key": KEY, "model": MODEL, **settings}
    with pytest.raises(getattr(mixlayer_embeddings, error), match=names) as info:
        MixlayerClient(**options)
    key = settings.get("api_key")
    assert not isinstance(key, str) or key not in str(info.value)


@pytest.mark.parametrize(
    ("env", "settings", "refused"),
    [
        ({"HTTP_PROXY": "http://proxy.corp.example:3128"}, {}, True),
        ({"ALL_PROXY": "http://proxy.corp.example:3128"}, {}, True),
        ({}, {"proxy": "http://proxy.corp.example:3128"}, True),
        ({"HTTP_PROXY": "http://127.0.0.1:3128"}, {}, False),  # a loopback proxy
        ({"HTTP_PROXY": "http://proxy.corp.example:3128"}, {"trust_env": False}, False),
        ({"HTTP_PROXY": "http://proxy.corp.example:3128", "NO_PROXY": "127.0.0.1"}, {}, False),
        ({"HTTP_PROXY": "http://proxy.corp.example:3128"}, {"allow_insecure_http": True}, False),
    ],
)
def test_the_key_never_crosses_a_plain_http_proxy_in_clear(
    monkeypatch, env, settings, refused
) -> None:
    from mixlayer_embeddings import InsecureTransportError

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    options = {"api_key": KEY, "model": MODEL, "base_url": "http://127.0.0.1:8765/v1"}
    if refused:
        with pytest.raises(InsecureTransportError, match=r"proxy\.corp\.example"):
            MixlayerClient(**options, **settings)
    else:
        MixlayerClient(**options, **settings).close()


def test_an_https_base_url_through_a_plain_http_proxy_is_a_tunnel_and_allowed(monkeypatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    with MixlayerClient(api_key=KEY, model=MODEL) as client:
        # The requests go through that proxy, as a CONNECT tunnel (httpcore's HTTPProxy opens
        # one for an https origin): allowed, since the proxy never sees the key.
        url = client.base_url.join("embeddings")
        transport = client._http._transport_for_url(url)
        pool = transport._pool  # type: ignore[attr-defined]
        assert type(pool).__name__ == "HTTPProxy"
        assert (pool._proxy_url.host, pool._proxy_url.port) == (b"proxy.corp.example", 3128)
        assert url.scheme == "https"


class _Streamed(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that arrives in chunks, as from a socket (``content=`` would be read at once)."""

    def __init__(self, content: bytes, chunk: int = 65536) -> None:
        self._chunks = [content[i : i + chunk] for i in range(0, len(content), chunk)]
        self.read = 0

    def __iter__(self):  # type: ignore[no-untyped-def]
        for chunk in self._chunks:
            self.read += len(chunk)
            yield chunk

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        for chunk in self._chunks:
            self.read += len(chunk)
            yield chunk


def _gzip_bomb(size: int) -> bytes:
    import gzip

    return gzip.compress(b"[" * size, compresslevel=9)


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_gzip_bomb_is_refused_without_inflating_it(flavour) -> None:
    import asyncio

    from mixlayer_embeddings import AsyncMixlayerClient, ResponseValidationError

    bomb = _gzip_bomb(200_000_000)  # 200 MB inflated, ~200 kB on the wire

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-encoding": "gzip"}, stream=_Streamed(bomb))

    transport = httpx.MockTransport(handler)
    match = "larger than .* bytes, more than the request can need"
    if flavour == "sync":
        with (
            MixlayerClient(
                api_key=KEY, model=MODEL, http_client=httpx.Client(transport=transport)
            ) as client,
            pytest.raises(ResponseValidationError, match=match),
        ):
            client.embed(["a"], dimensions=32)
        return

    async def go() -> None:
        async with AsyncMixlayerClient(
            api_key=KEY, model=MODEL, http_client=httpx.AsyncClient(transport=transport)
        ) as client:
            await client.embed(["a"], dimensions=32)

    with pytest.raises(ResponseValidationError, match=match):
        asyncio.run(go())


def test_a_huge_error_body_is_read_only_in_part_and_still_typed() -> None:
    from mixlayer_embeddings import BadRequestError

    page = b"<html>" + b"x" * 50_000_000 + b"</html>"
    body = _Streamed(page)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, headers={"content-type": "text/html"}, stream=body)

    transport = httpx.MockTransport(handler)
    with (
        MixlayerClient(
            api_key=KEY, model=MODEL, http_client=httpx.Client(transport=transport)
        ) as client,
        pytest.raises(BadRequestError) as info,
    ):
        client.embed(["a"])
    assert len(info.value.response.content) <= 64 * 1024
    assert body.read < 1_000_000  # the rest was never read
    assert len(str(info.value)) < 400


def test_a_corrupt_gzip_body_is_a_typed_error_not_a_connection_error() -> None:
    from mixlayer_embeddings import ResponseValidationError

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, headers={"content-encoding": "gzip"}, stream=_Streamed(b"not gzip")
        )

    transport = httpx.MockTransport(handler)
    with (
        MixlayerClient(
            api_key=KEY, model=MODEL, http_client=httpx.Client(transport=transport)
        ) as client,
        pytest.raises(ResponseValidationError, match="not valid gzip"),
    ):
        client.embed(["a"])


def test_a_body_dripping_a_byte_a_second_ends_at_the_attempts_deadline() -> None:
    from mixlayer_embeddings import APITimeoutError

    clock = FakeClock()

    class Drip(httpx.SyncByteStream):
        def __iter__(self):  # type: ignore[no-untyped-def]
            for _ in range(100_000):  # 27 hours of a byte a second
                clock.advance(1.0)  # each read well inside the 2 s read timeout
                yield b" "

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=Drip())

    transport = httpx.MockTransport(handler)
    with (
        MixlayerClient(
            api_key=KEY,
            model=MODEL,
            http_client=httpx.Client(transport=transport),
            timeout=2.0,
            max_retries=0,
            clock=clock,
        ) as client,
        pytest.raises(APITimeoutError, match="deadline of 8 s"),
    ):
        client.embed(["a"])
    assert clock.now() - 1000.0 <= 10  # stopped at 4 read timeouts, not 27 hours


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, b'{"data":[{"index":0,"embedding":[1' + b"0" * 400 + b"]}]}", "infinite"),
        (200, b"[" * 100_000 + b"]" * 100_000, "not JSON|Untrusted"),
        (500, b"[" * 100_000 + b"]" * 100_000, "500"),
        (400, b"[" * 100_000 + b"]" * 100_000, "400"),
    ],
)
def test_hostile_json_bodies_give_typed_errors(status, body, error) -> None:
    from mixlayer_embeddings import MixlayerError

    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(status, headers={"content-type": "application/json"}, content=body)

    transport = httpx.MockTransport(handler)
    with (
        MixlayerClient(
            api_key=KEY,
            model=MODEL,
            http_client=httpx.Client(transport=transport),
            clock=FakeClock(),
        ) as client,
        pytest.raises(MixlayerError, match=error),
    ):
        client.embed(["a"])
    assert len(sent) == (4 if status == 500 else 1)  # a 500 is still retried, as it should be


@pytest.mark.parametrize("flavour", ["sync", "async"])
@pytest.mark.parametrize(
    "script",
    [
        [error_response(503)] * 20,  # backoff after backoff
        [error_response(429, headers={"retry-after": "50"})] * 20,  # pacing after pacing
    ],
)
def test_a_call_deadline_bounds_retries_and_pacing(flavour, script) -> None:
    import asyncio

    from mixlayer_embeddings import APITimeoutError, AsyncMixlayerClient

    service = FakeService()
    service.script = list(script)
    clock = FakeClock()
    settings = {"api_key": KEY, "model": MODEL, "clock": clock, "max_retries": 10}
    match = "deadline of 3 s passed"
    if flavour == "sync":
        transport = httpx.MockTransport(service)
        with (
            MixlayerClient(http_client=httpx.Client(transport=transport), **settings) as client,
            pytest.raises(APITimeoutError, match=match),
        ):
            client.embed(["a"], deadline=3)
    else:

        async def go() -> None:
            transport = httpx.MockTransport(service)
            async with AsyncMixlayerClient(
                http_client=httpx.AsyncClient(transport=transport), **settings
            ) as client:
                await client.embed(["a"], deadline=3)

        with pytest.raises(APITimeoutError, match=match):
            asyncio.run(go())
    assert clock.now() - 1000.0 <= 3.0 + 1e-6
    # Every attempt's own timeout was cut to what was left of the call.
    assert all(r.extensions["timeout"]["read"] <= 3.0 for r in service.requests)


def test_a_call_deadline_must_be_seconds() -> None:
    from mixlayer_embeddings import InvalidParameterError

    with (
        MixlayerClient(api_key=KEY, model=MODEL) as client,
        pytest.raises(InvalidParameterError, match="deadline must be seconds"),
    ):
        client.embed(["a"], deadline=0)


@pytest.mark.parametrize("value", [0, -5, 1.5, True])
def test_a_token_budget_must_be_a_positive_integer(value) -> None:
    from mixlayer_embeddings import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="max_tokens_per_request must be an integer"):
        MixlayerClient(api_key=KEY, model=MODEL, max_tokens_per_request=value)


def _formatted_with_locals(exc: BaseException) -> str:
    """What rich, sentry or ``traceback`` with ``capture_locals`` print for ``exc``."""
    return "".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format())


def _timing_out(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("no answer", request=request)


@pytest.mark.parametrize(
    ("kwargs", "handler"),
    [
        ({"extra_body": {"x": float("nan")}}, None),  # refused while building the request
        ({"extra_body": {"x": object()}}, None),
        ({}, _timing_out),  # raised by the transport, while the request is in flight
        ({}, lambda request: error_response(401)(request)),
        ({}, lambda request: error_response(500)(request)),
    ],
)
def test_a_traceback_formatted_with_its_locals_never_shows_the_key(kwargs, handler) -> None:
    transport = httpx.MockTransport(handler or FakeService())
    with (
        MixlayerClient(
            api_key=KEY, model=MODEL, max_retries=0, http_client=httpx.Client(transport=transport)
        ) as client,
        pytest.raises(MixlayerError) as info,  # on main: a TypeError / ValueError
    ):
        client.embed(["a"], **kwargs)
    assert KEY not in _formatted_with_locals(info.value)


async def test_an_async_traceback_formatted_with_its_locals_never_shows_the_key() -> None:
    transport = httpx.MockTransport(_timing_out)
    async with AsyncMixlayerClient(
        api_key=KEY, model=MODEL, max_retries=0, http_client=httpx.AsyncClient(transport=transport)
    ) as client:
        for kwargs in ({"extra_body": {"x": float("nan")}}, {}):
            with pytest.raises(MixlayerError) as info:
                await client.embed(["a"], **kwargs)
            assert KEY not in _formatted_with_locals(info.value)


@pytest.mark.parametrize("reported", ["-5", "true", "1.5", '"12"', "1e400"])
def test_a_usage_that_is_not_a_count_is_read_as_zero_not_trusted(reported) -> None:
    body = '{"data":[{"index":0,"embedding":[1.0]}],"usage":{"prompt_tokens":%s,"total_tokens":%s}}'
    content = (body % (reported, reported)).encode()
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=content))
    with MixlayerClient(
        api_key=KEY, model=MODEL, http_client=httpx.Client(transport=transport)
    ) as client:
        usage = client.embed(["a" * 300]).usage
        assert (usage.prompt_tokens, usage.total_tokens) == (0, 0)
        assert client._estimator.bytes_per_token == 3.0  # learned nothing from it


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is a POSIX call")
def test_a_usage_tracker_held_at_the_fork_is_usable_in_the_child() -> None:
    from mixlayer_embeddings import Usage, UsageTracker

    tracker = UsageTracker()
    tracker._lock.acquire()  # another thread is adding at the moment of the fork
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports by its exit status
        import signal

        signal.alarm(5)  # a deadlock ends the child with SIGALRM, not the test run
        tracker.add(Usage(1, 1))
        os._exit(0 if tracker.total_tokens == 1 else 1)
    tracker._lock.release()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("encoding", ["deflate", "br", "zstd", "gzip, gzip", "compress"])
def test_a_body_in_an_encoding_we_did_not_ask_for_is_refused_unread(encoding) -> None:
    """httpx would inflate deflate, br or zstd a whole chunk at once (outside the body bound),
    and report corrupt data as a connection error, retried."""
    from mixlayer_embeddings import ResponseValidationError

    body = _Streamed(b"x" * 100)
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"content-encoding": encoding}, stream=body)
    )
    with (
        MixlayerClient(
            api_key=KEY, model=MODEL, http_client=httpx.Client(transport=transport)
        ) as client,
        pytest.raises(ResponseValidationError, match="which this client did not ask for"),
    ):
        client.embed(["a"])
    assert body.read == 0
