from __future__ import annotations

import base64
import json
import random
from array import array
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from mixlayer_embeddings import set_testing

MODEL = "qwen/qwen3-embedding-8b"
KEY = "sk-test-0123456789abcdef-SECRET"


@pytest.fixture(autouse=True)
def _no_backoff_sleep() -> Iterator[None]:
    set_testing(True)
    yield
    set_testing(False)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MIXLAYER_API_KEY", "MIXLAYER_BASE_URL", "MIXLAYER_EMBEDDING_MODEL"):
        monkeypatch.delenv(name, raising=False)


def vector_for(item: object, dims: int = 8) -> list[float]:
    """A deterministic vector that identifies its input, so misplacement is detectable."""
    seed = json.dumps(item)
    rng = random.Random(seed)
    return [float(array("f", [rng.uniform(-1, 1)])[0]) for _ in range(dims)]


def encode(vector: list[float]) -> str:
    return base64.b64encode(array("f", vector).tobytes()).decode()


class FakeService:
    """A MockTransport handler answering like the service; records every request body."""

    def __init__(self, *, shuffle: bool = False, dims: int = 8) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.requests: list[httpx.Request] = []
        self.shuffle = shuffle
        self.dims = dims
        self.script: list[Callable[[httpx.Request], httpx.Response]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        body = json.loads(request.content)
        self.bodies.append(body)
        if self.script:
            return self.script.pop(0)(request)
        items = body["input"]
        if isinstance(items, str) or (items and isinstance(items[0], int)):
            items = [items]
        dims = body.get("dimensions", self.dims)
        data = []
        for i, item in enumerate(items):
            vec = vector_for(item, dims)
            emb: object = encode(vec) if body.get("encoding_format") == "base64" else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        if self.shuffle:
            random.Random(len(items)).shuffle(data)
        return httpx.Response(
            200,
            json={
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": len(items) * 3, "total_tokens": len(items) * 3},
            },
        )


def error_response(status: int, code: str | None = None, headers: dict[str, str] | None = None,
                   message: str = "nope") -> Callable[[httpx.Request], httpx.Response]:
    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            headers=headers,
            json={"error": {"message": message, "type": "invalid_request_error", "code": code}},
        )

    return respond


@pytest.fixture
def service() -> FakeService:
    return FakeService()
