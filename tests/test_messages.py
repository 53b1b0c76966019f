"""The exact first line of each error a person meets first, so none regresses into noise."""

from __future__ import annotations

import httpx
import pytest
from conftest import KEY, MODEL, FakeService, error_response
from pydantic import ValidationError

from langchain_mixlayer import MixlayerEmbeddings
from llama_index.embeddings.mixlayer import MixlayerEmbedding
from mixlayer_embeddings import (
    APIConnectionError,
    APITimeoutError,
    InputRejectedError,
    InvalidParameterError,
    MixlayerClient,
    NotFoundError,
)


def first_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0]


def test_404_names_the_url_and_the_missing_v1(mixlayer_emulator) -> None:
    root = mixlayer_emulator.base_url.removesuffix("/v1")
    client = MixlayerClient(api_key=mixlayer_emulator.api_key, model=MODEL, base_url=root)
    with client, pytest.raises(NotFoundError) as info:
        client.embed("x")
    assert first_line(info.value) == (
        f"Error code: 404 Not Found: Not Found (POST {root}/embeddings); the URL has no /v1: "
        "the base URL should end in /v1"
    )


def test_404_on_a_base_url_ending_in_embeddings_says_so(mixlayer_emulator) -> None:
    base_url = mixlayer_emulator.base_url + "/embeddings"
    client = MixlayerClient(api_key=mixlayer_emulator.api_key, model=MODEL, base_url=base_url)
    with client, pytest.raises(NotFoundError) as info:
        client.embed("x")
    assert first_line(info.value) == (
        f"Error code: 404 Not Found: Not Found (POST {base_url}/embeddings); the base URL ends "
        "in /embeddings, which the client adds itself: the base URL should end in /v1"
    )


def test_connection_error_names_attempts_time_and_timeout() -> None:
    with (
        MixlayerClient(
            api_key=KEY,
            model=MODEL,
            base_url="http://127.0.0.1:9/v1",
            max_retries=2,
            timeout=(3, 20),
        ) as client,
        pytest.raises(APIConnectionError) as info,
    ):
        client.embed("x")
    line = first_line(info.value)
    assert line.startswith(
        "Connection error (POST http://127.0.0.1:9/v1/embeddings): [Errno 111] Connection refused"
        " (connect timeout 3 s); 3 attempts over "
    )
    assert line.endswith(" s")
    assert info.value.attempts == 3


def test_timeout_names_the_timeout_that_applied(mixlayer_emulator) -> None:
    mixlayer_emulator.state.latency_ms = 400
    with (
        MixlayerClient(
            api_key=mixlayer_emulator.api_key,
            model=MODEL,
            base_url=mixlayer_emulator.base_url,
            max_retries=1,
            timeout=(2, 0.1),
        ) as client,
        pytest.raises(APITimeoutError) as info,
    ):
        client.embed("x")
    assert first_line(info.value).startswith(
        f"Request timed out (POST {mixlayer_emulator.base_url}/embeddings): ReadTimeout, no "
        "answer within the read timeout of 0.1 s; 2 attempts over "
    )


def test_input_rejected_says_it_once() -> None:
    service = FakeService()
    bad = "way too long"

    def handler(request: httpx.Request) -> httpx.Response:
        if bad in request.content.decode():
            return error_response(400, "invalid_input", message="input too long")(request)
        return service(request)

    texts = ["ok"] * 8
    texts[5] = bad
    with (
        MixlayerClient(
            api_key=KEY,
            model=MODEL,
            http_client=httpx.Client(transport=httpx.MockTransport(handler)),
        ) as client,
        pytest.raises(InputRejectedError) as info,
    ):
        client.embed(texts)
    assert first_line(info.value) == (
        "The service refused input item 5 (invalid_input: input too long); the other 7 items of "
        "that batch were accepted. Retry without them, or with truncate=True if they are too long."
    )


@pytest.mark.parametrize("dimensions", [0, 5000, -1])
def test_range_errors_give_the_range(dimensions) -> None:
    client = MixlayerClient(api_key=KEY, model=MODEL)
    with client, pytest.raises(InvalidParameterError) as info:
        client.embed("x", dimensions=dimensions)
    assert first_line(info.value) == (
        f"dimensions must be an integer from 32 to 4096 for Qwen3 Embedding 8B, got {dimensions}"
    )


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (
            lambda: MixlayerEmbedding(model=MODEL, api_key=KEY),
            "MixlayerEmbedding got unknown keyword argument 'model' (did you mean 'model_name'?)",
        ),
        (
            lambda: MixlayerEmbeddings(model=MODEL, api_key=KEY, api_base="http://127.0.0.1/v1"),
            "MixlayerEmbeddings got unknown keyword argument 'api_base' (did you mean 'base_url'?)",
        ),
    ],
)
def test_adapters_suggest_the_right_keyword(make, expected) -> None:
    with pytest.raises(ValidationError) as info:
        make()
    message = info.value.errors()[0]["msg"]
    assert message.startswith(f"Value error, {expected}; its fields are: ")
