"""Both adapters behave like the pydantic models users know: the next call always uses the
object's current values, bad values are refused at once, copies are independent, serialized
forms round-trip the current values without the key, and pools are closed."""

from __future__ import annotations

import asyncio
import copy
import gc
import json
import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from conftest import KEY, MODEL
from llama_index.core.base.embeddings.base import BaseEmbedding
from pydantic import ValidationError

from langchain_mixlayer import MixlayerEmbeddings
from llama_index.embeddings.mixlayer import MixlayerEmbedding


@dataclass
class Flavour:
    """One adapter, and its own names for the same things."""

    cls: type
    names: dict[str, str]
    query: Callable[[Any, str], list[float]]
    aquery: Callable[[Any, str], Any]
    documents: Callable[[Any, list[str]], list[list[float]]]

    def make(self, emulator: Any, **kwargs: Any) -> Any:
        params = {
            self.names["model"]: emulator.model,
            "api_key": emulator.api_key,
            self.names["base_url"]: emulator.base_url,
        }
        params.update({self.names.get(k, k): v for k, v in kwargs.items()})
        return self.cls(**params)


LANGCHAIN = Flavour(
    MixlayerEmbeddings,
    {
        "model": "model",
        "base_url": "base_url",
        "batch_size": "batch_size",
        "extra_body": "model_kwargs",
        "async_http_client": "http_async_client",
    },
    lambda e, t: e.embed_query(t),
    lambda e, t: e.aembed_query(t),
    lambda e, ts: e.embed_documents(ts),
)
LLAMA_INDEX = Flavour(
    MixlayerEmbedding,
    {
        "model": "model_name",
        "base_url": "api_base",
        "batch_size": "embed_batch_size",
        "extra_body": "additional_kwargs",
        "async_http_client": "async_http_client",
    },
    lambda e, t: e.get_query_embedding(t),
    lambda e, t: e.aget_query_embedding(t),
    lambda e, ts: e.get_text_embedding_batch(ts),
)


@pytest.fixture(params=[LANGCHAIN, LLAMA_INDEX], ids=["langchain", "llamaindex"])
def flavour(request: pytest.FixtureRequest) -> Flavour:
    return request.param


def test_assigned_settings_apply_to_the_next_call(flavour, mixlayer_emulator) -> None:
    emb = flavour.make(mixlayer_emulator, dimensions=64)
    assert len(flavour.query(emb, "bees")) == 64
    emb.dimensions = 256
    assert len(flavour.query(emb, "bees")) == 256
    # A setting that shapes the client (batch size) is honoured too: 10 texts, 3 per request.
    setattr(emb, flavour.names["batch_size"], 3)
    before = mixlayer_emulator.state.requests
    assert len(flavour.documents(emb, [f"t{i}" for i in range(10)])) == 10
    assert mixlayer_emulator.state.requests - before == 4
    emb.close()


def test_assigned_input_type_is_sent(flavour, mixlayer_emulator) -> None:
    emb = flavour.make(mixlayer_emulator, dimensions=64)
    as_query = flavour.query(emb, "honey bees dance")
    emb.query_input_type = "document"
    as_document = flavour.query(emb, "honey bees dance")
    emb.query_input_type = "query"
    # The emulator's vectors depend on input_type, so the assignment reached the wire.
    assert as_query != as_document
    assert flavour.query(emb, "honey bees dance") == as_query
    emb.close()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("dimensions", 5000, "dimensions must be an integer from 32 to 4096"),
        ("dimensions", 0, "dimensions must be an integer from 32 to 4096"),
        ("batch_size", 5000, "2048"),
        ("query_input_type", "question", "query_input_type='question' is not supported"),
        ("extra_body", {"input_type": "query"}, "may not set 'input_type'"),
        ("timeout", -1, "timeout must be seconds greater than 0"),
        ("default_headers", {"Authorization": "Bearer x"}, "may not set 'Authorization'"),
    ],
)
def test_a_bad_assignment_is_refused_at_once_and_changes_nothing(
    flavour, mixlayer_emulator, field, value, message
) -> None:
    emb = flavour.make(mixlayer_emulator, dimensions=64)
    name = flavour.names.get(field, field)
    before = getattr(emb, name)
    with pytest.raises(ValidationError, match=message):
        setattr(emb, name, value)
    assert getattr(emb, name) == before
    # The same message at construction.
    with pytest.raises(ValidationError, match=message):
        flavour.make(mixlayer_emulator, **{field: value})
    assert len(flavour.query(emb, "still works")) == 64
    emb.close()


def test_model_copy_and_deepcopy_are_independent(flavour, mixlayer_emulator) -> None:
    emb = flavour.make(mixlayer_emulator, dimensions=64)
    assert len(flavour.query(emb, "x")) == 64
    updated = emb.model_copy(update={"dimensions": 128})
    deep = copy.deepcopy(emb)
    deep.dimensions = 32
    shallow = copy.copy(emb)
    shallow.dimensions = 48
    assert len(flavour.query(updated, "x")) == 128
    assert len(flavour.query(deep, "x")) == 32
    assert len(flavour.query(shallow, "x")) == 48
    assert len(flavour.query(emb, "x")) == 64
    assert emb._core is not updated._core and emb._core is not deep._core
    # Closing one leaves the others working.
    updated.close()
    assert len(flavour.query(emb, "x")) == 64
    with pytest.raises(ValidationError, match="dimensions"):
        emb.model_copy(update={"dimensions": 9999})
    for obj in (emb, deep, shallow):
        obj.close()


def test_deepcopy_shares_an_injected_http_client(flavour, mixlayer_emulator) -> None:
    with httpx.Client() as http:
        emb = flavour.make(mixlayer_emulator, http_client=http)
        assert copy.deepcopy(emb).http_client is http


def test_pickle_round_trips_current_values_without_the_key(
    flavour, mixlayer_emulator, monkeypatch
) -> None:
    emb = flavour.make(mixlayer_emulator, dimensions=64)
    emb.dimensions = 96
    data = pickle.dumps(emb)
    assert mixlayer_emulator.api_key.encode() not in data
    monkeypatch.setenv("MIXLAYER_API_KEY", mixlayer_emulator.api_key)
    loaded = pickle.loads(data)
    assert loaded.dimensions == 96
    assert len(flavour.query(loaded, "x")) == 96
    loaded.close()
    emb.close()


def langchain_loads(text: str) -> Any:
    """LangChain's ``loads`` of one of our adapters, secrets from the environment."""
    from langchain_core.load import loads

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # loads() is beta in langchain-core
        return loads(
            text,
            secrets_from_env=True,
            valid_namespaces=["langchain_mixlayer"],
            allowed_objects=[MixlayerEmbeddings],
        )


def test_langchain_dumps_loads_round_trips_current_values(mixlayer_emulator, monkeypatch) -> None:
    from langchain_core.load import dumps

    emb = LANGCHAIN.make(mixlayer_emulator, dimensions=64, timeout=httpx.Timeout(5.0, connect=2.0))
    emb.dimensions = 80
    text = dumps(emb)
    assert mixlayer_emulator.api_key not in text
    monkeypatch.setenv("MIXLAYER_API_KEY", mixlayer_emulator.api_key)
    loaded = langchain_loads(text)
    assert (loaded.dimensions, loaded.timeout) == (80, (2.0, 5.0, 5.0, 5.0))
    assert len(loaded.embed_query("x")) == 80


def test_llama_index_to_dict_from_dict_round_trips(mixlayer_emulator, monkeypatch) -> None:
    emb = LLAMA_INDEX.make(mixlayer_emulator, dimensions=64)
    emb.embed_batch_size = 100
    saved = json.loads(emb.to_json())
    assert mixlayer_emulator.api_key not in json.dumps(saved)
    monkeypatch.setenv("MIXLAYER_API_KEY", mixlayer_emulator.api_key)
    loaded = MixlayerEmbedding.from_dict(saved)
    assert (loaded.embed_batch_size, loaded.dimensions) == (100, 64)
    assert len(loaded.get_query_embedding("x")) == 64


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        (5, httpx.Timeout(5.0)),
        ((2, 30), httpx.Timeout(30.0, connect=2.0)),
        (httpx.Timeout(7.0, connect=1.0), httpx.Timeout(7.0, connect=1.0)),
    ],
)
def test_timeout_forms(flavour, mixlayer_emulator, timeout, expected) -> None:
    emb = flavour.make(mixlayer_emulator, timeout=timeout)
    flavour.query(emb, "x")
    client = emb._core._sync[1]
    assert client._timeout == expected
    emb.close()


def test_default_headers_and_extra_body_reach_the_wire(flavour, mixlayer_emulator) -> None:
    seen: list[httpx.Request] = []
    with httpx.Client(event_hooks={"request": [seen.append]}) as http:
        emb = flavour.make(
            mixlayer_emulator,
            http_client=http,
            default_headers={"X-Team": "search"},
            extra_body={"user": "ingest-42"},
        )
        flavour.query(emb, "x")
    assert seen[0].headers["x-team"] == "search"
    assert json.loads(seen[0].content)["user"] == "ingest-42"


def test_proxy_is_given_to_the_clients_we_create(flavour, mixlayer_emulator) -> None:
    # A proxy on a closed loopback port: the request must try it (and fail to connect),
    # which proves the setting reached the transport.
    from mixlayer_embeddings import APIConnectionError

    emb = flavour.make(mixlayer_emulator, proxy="http://127.0.0.1:9", max_retries=0)
    with pytest.raises(APIConnectionError):
        flavour.query(emb, "x")
    emb.close()


def test_unknown_and_other_framework_keywords_get_a_suggestion() -> None:
    with pytest.raises(ValidationError, match=r"'api_base' \(did you mean 'base_url'\?\)"):
        MixlayerEmbeddings(model=MODEL, api_key=KEY, api_base="http://127.0.0.1:1/v1")
    with pytest.raises(ValidationError, match=r"'model' \(did you mean 'model_name'\?\)"):
        MixlayerEmbedding(model=MODEL, api_key=KEY)
    with pytest.raises(ValidationError, match=r"'dimenions' \(did you mean 'dimensions'\?\)"):
        MixlayerEmbedding(model_name=MODEL, api_key=KEY, dimenions=64)


def test_errors_never_echo_the_key() -> None:
    with pytest.raises(ValidationError) as info:
        MixlayerEmbedding(model=MODEL, api_key=KEY)
    assert KEY not in str(info.value) and KEY not in repr(info.value)
    with pytest.raises(ValidationError) as info:
        MixlayerEmbeddings(model=MODEL, api_key=KEY, dimensions=1)
    assert KEY not in str(info.value)


def test_known_model_limits_are_checked_at_construction() -> None:
    with pytest.raises(ValidationError, match="from 32 to 4096 for Qwen3 Embedding 8B"):
        MixlayerEmbeddings(model=MODEL, api_key=KEY, dimensions=5000)
    # An unknown model is left to the service to judge.
    assert MixlayerEmbeddings(model="acme/other", api_key=KEY, dimensions=5000).dimensions == 5000


def test_context_managers_close_the_pools(flavour, mixlayer_emulator) -> None:
    with flavour.make(mixlayer_emulator) as emb:
        flavour.query(emb, "x")
        client = emb._core._sync[1]
    assert client._http.is_closed

    async def use() -> None:
        async with flavour.make(mixlayer_emulator) as aemb:
            await flavour.aquery(aemb, "x")
            aclient = aemb._core._async[1]
        assert aclient._http.is_closed

    asyncio.run(use())


def test_a_new_event_loop_per_call_leaves_no_unclosed_socket(flavour, mixlayer_emulator) -> None:
    emb = flavour.make(mixlayer_emulator, dimensions=64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(10):
            assert len(asyncio.run(flavour.aquery(emb, "x"))) == 64
        # A temporary adapter, dropped inside the loop, is closed there too.
        asyncio.run(flavour.aquery(flavour.make(mixlayer_emulator), "y"))
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_a_proxy_with_an_injected_client_is_refused_not_dropped(flavour) -> None:
    # The core refuses proxy= with an injected http client; an adapter used to drop the proxy
    # silently, so requests went out directly while the user believed they used the proxy.
    names = {"model": flavour.names["model"], "base_url": flavour.names["base_url"]}
    for field, client in (
        ("http_client", httpx.Client()),
        (flavour.names["async_http_client"], httpx.AsyncClient()),
    ):
        with pytest.raises(ValidationError, match=rf"proxy applies .*\({field}\)"):
            flavour.cls(
                **{names["model"]: MODEL, "api_key": KEY, field: client},
                proxy="http://127.0.0.1:9",
            )


def test_a_missing_model_names_the_adapters_own_field(flavour) -> None:
    with pytest.raises(ValidationError) as info:
        flavour.cls(api_key=KEY)
    message = str(info.value)
    assert f"pass {flavour.names['model']}=..." in message
    other = "model_name" if flavour.names["model"] == "model" else "model="
    assert f"pass {other}" not in message


def test_a_bad_input_type_names_the_field_that_holds_it(flavour) -> None:
    with pytest.raises(ValidationError) as info:
        flavour.cls(**{flavour.names["model"]: MODEL, "api_key": KEY, "query_input_type": "qry"})
    error = info.value.errors()[0]["ctx"]["error"]
    assert error.param == "query_input_type"
    assert str(error).startswith("query_input_type='qry' is not supported by Qwen3 Embedding 8B")


def test_a_known_rate_paces_from_the_first_request(flavour, mixlayer_emulator) -> None:
    emb = flavour.make(mixlayer_emulator, rate=50.0)
    flavour.query(emb, "x")
    assert emb._core._sync[1]._pacer.rate == pytest.approx(50.0, rel=0.01)
    with pytest.raises(ValidationError, match="rate must be requests per second"):
        flavour.make(mixlayer_emulator, rate=0)
    emb.close()


def test_a_refused_construction_or_assignment_keeps_no_key_anywhere_in_the_error(flavour) -> None:
    # hide_input_in_errors keeps str(exc) clean; errors(), json() and a pickle held the key.
    params = {flavour.names["model"]: MODEL, "api_key": KEY}
    with pytest.raises(ValidationError) as info:
        flavour.cls(**params, dimensions=1)
    error = info.value
    assert error.errors()[0]["ctx"]["error"].param == "dimensions"  # the typed error stays
    for form in (str(error), repr(error.errors()), error.json(), repr(pickle.dumps(error))):
        assert KEY not in form
    emb = flavour.cls(**params)
    with pytest.raises(ValidationError) as info:
        emb.dimensions = 1
    assert KEY not in info.value.json() and KEY not in repr(pickle.dumps(info.value))
    with pytest.raises(ValidationError) as info:
        flavour.cls(**params, openai_api_key=KEY)  # refused as unknown, its value hidden
    assert KEY not in info.value.json()


def test_no_serialized_form_carries_a_proxys_credentials(flavour, mixlayer_emulator) -> None:
    # They were hidden from repr, but dumps(), model_dump(), to_dict() and to_json() wrote them.
    from langchain_core.load import dumps

    proxy = "http://proxyuser:proxy-s3cret@proxy.internal:3128"
    emb = flavour.make(mixlayer_emulator, proxy=proxy, allow_insecure_http=True)
    forms = [json.dumps(emb.model_dump(), default=str), json.dumps(emb.model_dump(mode="json"))]
    if hasattr(emb, "to_json") and hasattr(emb, "lc_secrets"):
        forms.append(dumps(emb))
    else:
        forms += [json.dumps(emb.to_dict(), default=str), emb.to_json()]
    for form in forms:
        assert "proxy-s3cret" not in form
    assert emb.proxy == proxy  # and the object still uses it


def test_a_proxy_with_credentials_is_read_back_the_way_the_key_is(
    flavour, mixlayer_emulator, monkeypatch
) -> None:
    # Left out of a serialized form, as the key; a loaded copy reads MIXLAYER_PROXY for it,
    # as it reads MIXLAYER_API_KEY. A proxy without credentials is kept as it is.
    proxy = "http://proxyuser:proxy-s3cret@proxy.internal:3128"
    emb = flavour.make(mixlayer_emulator, proxy=proxy, allow_insecure_http=True)
    plain = flavour.make(mixlayer_emulator, proxy="http://127.0.0.1:9")
    assert plain.model_dump()["proxy"] == "http://127.0.0.1:9"
    monkeypatch.setenv("MIXLAYER_PROXY", proxy)
    monkeypatch.setenv("MIXLAYER_API_KEY", KEY)
    if hasattr(emb, "lc_secrets"):
        from langchain_core.load import dumps

        text = dumps(emb)
        assert '"MIXLAYER_PROXY"' in text  # a secret reference, as the key's
        loaded = langchain_loads(text)
        assert loaded.proxy == proxy
    else:
        loaded = type(emb).from_dict(emb.to_dict())
        assert loaded.proxy is None
    assert loaded._settings().client.config.proxy == proxy  # what its clients are built with


def test_the_fields_both_adapters_name_alike_are_one_declaration() -> None:
    # Declared twice, they had drifted (a limit in one only, descriptions in one only).
    lc, li = MixlayerEmbeddings.model_fields, MixlayerEmbedding.model_fields
    # The key is held each framework's way: a SecretStr read by secret_from_env in LangChain,
    # a str left out of every dump in LlamaIndex (as its OpenAI integration holds it).
    ours = set(lc) & set(li) - set(BaseEmbedding.model_fields) - {"api_key"}
    assert len(ours) >= 16
    for name in sorted(ours):
        a, b = lc[name], li[name]
        assert (a.annotation, a.default, a.description, a.metadata) == (
            b.annotation,
            b.default,
            b.description,
            b.metadata,
        ), name
        assert a.description, name
