"""The official openai client against the emulator: it speaks what OpenAI clients expect."""

from __future__ import annotations

import base64
from array import array

import openai
import pytest

from mixlayer_embeddings.emulator import CHAT_MODEL, EMBEDDING_MODEL


@pytest.fixture
def client(mixlayer_emulator):
    with openai.OpenAI(
        api_key=mixlayer_emulator.api_key, base_url=mixlayer_emulator.base_url, max_retries=0
    ) as c:
        yield c


def test_float_and_dimensions(client) -> None:
    result = client.embeddings.create(
        model=EMBEDDING_MODEL, input=["a b", "c"], dimensions=64, encoding_format="float"
    )
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) == 64 for d in result.data)
    assert result.usage.prompt_tokens == 3


def test_base64_matches_float(client) -> None:
    as_float = (
        client.embeddings.create(model=EMBEDDING_MODEL, input="hello", encoding_format="float")
        .data[0]
        .embedding
    )
    raw = client.with_raw_response.embeddings.create(
        model=EMBEDDING_MODEL, input="hello", encoding_format="base64"
    )
    encoded = raw.http_response.json()["data"][0]["embedding"]
    assert array("f", base64.b64decode(encoded)).tolist() == as_float
    # openai's own default path asks for base64 and decodes it itself.
    assert client.embeddings.create(model=EMBEDDING_MODEL, input="hello").data[
        0
    ].embedding == pytest.approx(as_float)


@pytest.mark.parametrize(
    ("kwargs", "error", "code"),
    [
        ({"model": CHAT_MODEL, "input": "a"}, openai.BadRequestError, "model_kind_mismatch"),
        ({"model": "nope/nope", "input": "a"}, openai.NotFoundError, "model_not_found"),
        ({"model": EMBEDDING_MODEL, "input": ""}, openai.BadRequestError, "invalid_input"),
        (
            {"model": EMBEDDING_MODEL, "input": "a", "dimensions": 0},
            openai.BadRequestError,
            "invalid_dimensions",
        ),
    ],
)
def test_errors_are_openai_shaped(client, kwargs, error, code) -> None:
    with pytest.raises(error) as info:
        client.embeddings.create(**kwargs)
    assert info.value.code == code


def test_wrong_key_is_authentication_error(mixlayer_emulator) -> None:
    with (
        openai.OpenAI(api_key="wrong", base_url=mixlayer_emulator.base_url, max_retries=0) as c,
        pytest.raises(openai.AuthenticationError),
    ):
        c.embeddings.create(model=EMBEDDING_MODEL, input="a")
