"""The client's validation and the emulator's, written separately from the reference page,
must agree: whatever the client refuses before sending, the emulator refuses with a 400, and
whatever the client sends, the emulator accepts. Neither is checked against itself."""

from __future__ import annotations

import httpx
from conftest import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mixlayer_embeddings import InvalidRequestError, MixlayerClient

texts = st.text(max_size=8)
tokens = st.lists(st.integers(min_value=0, max_value=1000), max_size=4)
inputs = st.one_of(
    texts,
    st.lists(texts, max_size=5),
    tokens,
    st.lists(tokens, max_size=4),
    st.lists(st.one_of(texts, st.integers(0, 9), tokens), max_size=4),
    st.none(),
    st.integers(),
    st.dictionaries(st.text(max_size=3), texts, max_size=1),
)
options = st.fixed_dictionaries(
    {},
    optional={
        "dimensions": st.one_of(st.integers(-2, 5000), st.sampled_from(["64", True, 64.0])),
        "encoding_format": st.sampled_from(["float", "base64", "int8", "", "FLOAT"]),
        "input_type": st.sampled_from(["query", "document", "passage", "", "Query"]),
        "normalize": st.sampled_from([True, False, "yes", 1]),
        "truncate": st.sampled_from([True, False, "no", 0]),
    },
)


@settings(
    max_examples=examples(300),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(input=inputs, opts=options)
def test_the_client_and_the_emulator_refuse_the_same_requests(
    mixlayer_emulator, input, opts
) -> None:
    sent: list[httpx.Request] = []
    with (
        httpx.Client(event_hooks={"request": [sent.append]}) as http,
        MixlayerClient(
            api_key=mixlayer_emulator.api_key,
            model=mixlayer_emulator.model,
            base_url=mixlayer_emulator.base_url,
            http_client=http,
            max_retries=0,
        ) as client,
    ):
        try:
            client.embed(input, **opts)
            client_refused = False
        except InvalidRequestError:
            client_refused = True
        except Exception:  # the service's answer to what was sent: judged below
            client_refused = False
    if not client_refused and not sent:
        return  # nothing to ask the service (an empty list embeds as an empty list)
    body: dict[str, object] = {"model": mixlayer_emulator.model, "input": input, **opts}
    answer = httpx.post(
        f"{mixlayer_emulator.base_url}/embeddings",
        headers={"Authorization": f"Bearer {mixlayer_emulator.api_key}"},
        json=body,
    )
    emulator_refused = answer.status_code == 400
    assert client_refused == emulator_refused, (body, answer.text)
    if client_refused:
        assert sent == []  # refused before any request
