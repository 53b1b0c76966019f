from __future__ import annotations

import pytest

from mixlayer_embeddings import InvalidInputError, InvalidParameterError, MixlayerError
from mixlayer_embeddings._config import lookup_model
from mixlayer_embeddings._validation import normalize_input, validate_options

QWEN = lookup_model("qwen/qwen3-embedding-8b")


@pytest.mark.parametrize(
    ("value", "items", "kind", "single"),
    [
        ("hello", ["hello"], "text", True),
        (["a", "b"], ["a", "b"], "text", False),
        ([101, 7592, 102], [[101, 7592, 102]], "tokens", True),
        ([[101, 7592], [101, 2088, 102]], [[101, 7592], [101, 2088, 102]], "tokens", False),
        ((1, 2), [[1, 2]], "tokens", True),
        ([], [], "text", False),
    ],
)
def test_every_input_form_of_the_reference(value, items, kind, single) -> None:
    normalized = normalize_input(value)
    assert (normalized.items, normalized.kind, normalized.single) == (items, kind, single)


@pytest.mark.parametrize(
    ("value", "indexes", "fragment"),
    [
        ("", [0], "must not be empty"),
        (["a", "", "b", ""], [1, 3], "must not be empty"),
        ([[1], [], [2], []], [1, 3], "token arrays must not be empty"),
        (["a", 1, "b", None], [1, 3], "NoneType, int"),
        ([[1, 2], "a"], [1], "expected token arrays"),
        ([1, True, 3], [0], "positions 1 (bool)"),
        ([1, 2.5], [0], "positions 1 (float)"),
        ([[1, 2], [3, 4.0]], [1], "input[1]"),
        ([[1], [True]], [1], "(bool)"),
        ([1.5, 2.5], [0, 1], "found float"),
    ],
)
def test_bad_items_are_named_by_index(value, indexes, fragment) -> None:
    with pytest.raises(InvalidInputError) as info:
        normalize_input(value)
    assert info.value.indexes == indexes
    assert fragment in str(info.value)
    assert info.value.param == "input"
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, MixlayerError)


@pytest.mark.parametrize("value", [None, 3, b"bytes", {"a": 1}, 2.5])
def test_input_of_no_known_form_is_refused(value) -> None:
    with pytest.raises(InvalidInputError, match="input must be a string"):
        normalize_input(value)


def test_many_bad_indexes_are_all_kept_but_the_message_stays_short() -> None:
    with pytest.raises(InvalidInputError) as info:
        normalize_input([""] * 100)
    assert info.value.indexes == list(range(100))
    assert "and 80 more" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "param", "fragment"),
    [
        ({"dimensions": 0}, "dimensions", "greater than 0"),
        ({"dimensions": -5}, "dimensions", "greater than 0"),
        ({"dimensions": 2.0}, "dimensions", "greater than 0"),
        ({"dimensions": True}, "dimensions", "greater than 0"),
        ({"dimensions": "64"}, "dimensions", "greater than 0"),
        ({"encoding_format": "int8"}, "encoding_format", '"float" or "base64"'),
        ({"input_type": 3}, "input_type", "must be a string"),
        ({"normalize": "yes"}, "normalize", "True, False or None"),
        ({"truncate": 1}, "truncate", "True, False or None"),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs, param, fragment) -> None:
    options = {
        "input_type": None,
        "dimensions": None,
        "encoding_format": None,
        "normalize": None,
        "truncate": None,
        **kwargs,
    }
    with pytest.raises(InvalidParameterError) as info:
        validate_options(spec=None, **options)
    assert info.value.param == param
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    "model",
    [
        "qwen/qwen3-embedding-8b",
        "Qwen/Qwen3-Embedding-8B",
        "qwen3-embedding-8b",
        "QWEN3_EMBEDDING_8B",
        " qwen3-embedding-8b ",
    ],
)
def test_known_model_is_recognised_leniently(model) -> None:
    assert lookup_model(model) is QWEN


def test_unknown_model_is_left_to_the_server() -> None:
    assert lookup_model("acme/embed-v9") is None
    validate_options(
        spec=None,
        input_type="passage",
        dimensions=99999,
        encoding_format=None,
        normalize=None,
        truncate=None,
    )


@pytest.mark.parametrize(
    ("dims", "ok"), [(31, False), (32, True), (1024, True), (4096, True), (4097, False)]
)
def test_known_model_dimension_range(dims, ok) -> None:
    def call() -> None:
        validate_options(
            spec=QWEN,
            input_type=None,
            dimensions=dims,
            encoding_format=None,
            normalize=None,
            truncate=None,
        )

    if ok:
        call()
    else:
        with pytest.raises(InvalidParameterError, match="from 32 to 4096"):
            call()


def test_known_model_input_types() -> None:
    for ok in ("query", "document"):
        validate_options(
            spec=QWEN,
            input_type=ok,
            dimensions=None,
            encoding_format=None,
            normalize=None,
            truncate=None,
        )
    with pytest.raises(InvalidParameterError, match="'query' or 'document'"):
        validate_options(
            spec=QWEN,
            input_type="passage",
            dimensions=None,
            encoding_format=None,
            normalize=None,
            truncate=None,
        )
