from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import threading
from array import array
from collections.abc import Callable
from typing import Any

import httpx
import pytest

MODEL = "qwen/qwen3-embedding-8b"
KEY = "sk-test-0123456789abcdef-SECRET"


class FakeClock:
    """A ``Clock`` whose time moves only when someone sleeps on it: every wait a client makes
    (backoff, Retry-After, pacing) is recorded and returns at once, so tests can assert the
    waits themselves instead of timing them on a machine that may be busy."""

    def __init__(self, start: float = 1000.0) -> None:
        self._lock = threading.Lock()
        self.time = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        with self._lock:
            return self.time

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.time += seconds

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.time += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def env(mixlayer_emulator, monkeypatch):  # type: ignore[no-untyped-def]
    """The emulator, named by the environment as a user's shell would (key, URL, model)."""
    monkeypatch.setenv("MIXLAYER_API_KEY", mixlayer_emulator.api_key)
    monkeypatch.setenv("MIXLAYER_BASE_URL", mixlayer_emulator.base_url)
    monkeypatch.setenv("MIXLAYER_EMBEDDING_MODEL", mixlayer_emulator.model)
    return mixlayer_emulator


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


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

    def vectors_of(self, item: object) -> list[float]:
        """The vector this service gives ``item`` (decoded as the client decodes it)."""
        return [float(x) for x in array("f", vector_for(item, self.dims))]

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


def error_response(
    status: int,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    message: str = "nope",
) -> Callable[[httpx.Request], httpx.Response]:
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


PASSAGES = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France.",
    "Photosynthesis converts light energy into chemical energy in green plants.",
    "The Great Wall of China stretches across the northern border of China.",
    "Python is a programming language that emphasises code readability.",
    "Honey bees communicate the location of flowers with a waggle dance.",
]


class Wire:
    """Request bodies as they went over HTTP, seen through httpx event hooks."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def hook(self, request: httpx.Request) -> None:
        self.bodies.append(json.loads(request.content))

    async def ahook(self, request: httpx.Request) -> None:
        self.hook(request)

    def input_types(self) -> list[str | None]:
        return [b.get("input_type") for b in self.bodies]


@pytest.fixture
def wire() -> Wire:
    return Wire()


# -- cassettes (vcrpy through pytest-recording) ---------------------------------------------

CASSETTE_DIR = __import__("pathlib").Path(__file__).resolve().parent.parent / "cassettes"
#: Where a recording came from, written in every recorded URI: the real service keeps its own
#: origin; a recording from a local emulator (any loopback port) says so with this one.
EMULATOR_ORIGIN = "http://mixlayer-emulator.invalid"
SERVICE_HOST = "models.mixlayer.ai"
_KEY_HEADERS = (
    "authorization",
    "x-api-key",
    "api-key",
    "openai-api-key",
    "cookie",
    "set-cookie",
    "proxy-authorization",
)


def _canonical_request(request):
    """Key headers removed; a loopback origin (an emulator, on whatever port) labelled as the
    emulator. The real service's origin stays as it is: a cassette says where it came from."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(request.uri)
    if parts.hostname in ("127.0.0.1", "localhost", "::1"):
        label = urlsplit(EMULATOR_ORIGIN)
        request.uri = urlunsplit((label.scheme, label.netloc, parts.path, parts.query, ""))
    for name in list(request.headers):
        if name.lower() in _KEY_HEADERS:
            del request.headers[name]
    return request


def _scrub_response(response):
    headers = response.get("headers", {})
    for name in list(headers):
        if name.lower() in _KEY_HEADERS:
            del headers[name]
    return response


def _json_body(r1, r2) -> None:
    def load(r):
        body = r.body or b""
        return json.loads(body) if body else None

    assert load(r1) == load(r2), "JSON bodies differ"


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    return {
        "filter_headers": [(h, None) for h in _KEY_HEADERS],
        "before_record_request": _canonical_request,
        "before_record_response": _scrub_response,
        # Not the origin: a recording replays whichever server the test would have called.
        "match_on": ["method", "path", "json_body"],
        "decode_compressed_response": True,
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    return str(CASSETTE_DIR / request.module.__name__.split(".")[-1])


def pytest_recording_configure(config, vcr) -> None:
    vcr.register_matcher("json_body", _json_body)


@pytest.fixture
def cassette_target(request: pytest.FixtureRequest):
    """Where cassette tests send: replaying, any loopback URL (never contacted); recording,
    the real service when MIXLAYER_API_KEY is set, else an emulator started for the purpose."""
    import os

    mode = request.config.getoption("--record-mode") or "none"
    if mode == "none":
        yield {
            "base_url": "http://127.0.0.1:9/v1",
            "api_key": "replaying-no-key-needed",
            "model": MODEL,
        }
        return
    if os.environ.get("MIXLAYER_API_KEY"):
        yield {
            "base_url": os.environ.get("MIXLAYER_BASE_URL", f"https://{SERVICE_HOST}/v1"),
            "api_key": os.environ["MIXLAYER_API_KEY"],
            "model": os.environ.get("MIXLAYER_EMBEDDING_MODEL", MODEL),
        }
        return
    from mixlayer_embeddings.emulator import Emulator

    with Emulator() as emulator:
        yield {"base_url": emulator.base_url, "api_key": emulator.api_key, "model": MODEL}


# -- make test-fast --------------------------------------------------------------------------

#: Test files left out of ``make test-fast`` (``-m "not slow"``): each builds or starts
#: something big (fresh venvs, a Ray cluster, several readers over kills, a server per cell)
#: or runs a long property search. Named here, once, so the inner loop stays under a minute.
SLOW_FILES = frozenset(
    {
        "test_packaging.py",
        "test_ray_data.py",
        "test_bulk_properties.py",
        "test_bulk_swap_readers.py",
        "test_langchain_standard.py",
        "test_inference_server.py",
        "test_docs.py",
        "test_demo.py",
    }
)


#: Single tests left out of it for the same reason: each measures at corpus scale, or waits
#: out real faults and rate limits.
SLOW_TESTS = frozenset(
    {
        "test_an_update_with_few_changes_keeps_few_rows_in_memory",
        "test_embed_array_makes_no_python_floats",
        "test_random_fault_rate_and_rate_limit",
        "test_scripted_faults_are_survived_by_retries",
        "test_a_faulty_ingest_loses_and_misplaces_nothing",
        "test_ctrl_c_during_a_sync_ingest_stops_promptly",
        "test_a_deadline_bounds_the_wait_for_a_slot_another_call_holds",
        "test_a_deadline_is_not_congestion_the_call_ends_on_time",
    }
)
#: Set by ``make test-fast``: property tests run a tenth of their examples.
FAST = os.environ.get("MIXLAYER_FAST_TESTS") == "1"


def examples(full: int) -> int:
    """Hypothesis examples for a property: all in ``make test``, a tenth in ``make test-fast``."""
    return max(10, full // 10) if FAST else full


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        name = getattr(item, "originalname", item.name)
        if item.path.name in SLOW_FILES or name in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
