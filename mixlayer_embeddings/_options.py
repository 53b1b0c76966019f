"""Per-call options: one frozen value, validated against the model, turned into a body once.

Adding an option means a field of ``EmbedOptions`` (with its check in ``validate`` and its name
in ``_BODY_FIELDS``) and a line of ``OptionKwargs``; then a field of each adapter (the adapters
and Ray read every ``EmbedOptions`` field by name) and a flag of ``mixlayer-embed``. Every
client method takes them as ``**options`` (typed by ``Unpack``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypedDict

from ._config import ModelSpec
from ._exceptions import InvalidParameterError
from ._instruction import check_instruction, instruct_item
from ._keywords import unexpected_keyword
from ._validation import validate_options

#: EmbedOptions fields sent as request fields of the same name, when set.
_BODY_FIELDS = ("input_type", "dimensions", "normalize", "truncate")

__all__ = [
    "CALL_OPTION_NAMES",
    "RESERVED_BODY_KEYS",
    "EmbedOptions",
    "OptionKwargs",
    "check_extra_body",
]

#: Request fields an ``extra_body`` may not set: they belong to the call or to a named option,
#: and letting a dict override them would silently change what is embedded, or how.
RESERVED_BODY_KEYS = {
    "model": "model",
    "input": "the texts you pass",
    "input_type": "input_type (query_input_type / document_input_type in the adapters)",
    "instruction": "instruction (query_instruction in the adapters)",
    "dimensions": "dimensions",
    "normalize": "normalize",
    "truncate": "truncate",
    "encoding_format": "encoding_format",
}


def check_extra_body(extra: object, *, param: str = "extra_body") -> dict[str, Any]:
    """A copy of ``extra`` as a dict of JSON fields, refusing keys that have their own option."""
    if extra is None:
        return {}
    if not isinstance(extra, Mapping) or not all(isinstance(k, str) for k in extra):
        raise InvalidParameterError(
            f"{param} must be a dict of request fields, got {type(extra).__name__}", param=param
        )
    clashing = sorted(k for k in extra if k in RESERVED_BODY_KEYS)
    if clashing:
        name = clashing[0]
        raise InvalidParameterError(
            f"{param} may not set {name!r}: it would silently override what this client sends. "
            f"Use {RESERVED_BODY_KEYS[name]} instead.",
            param=param,
        )
    for name, value in extra.items():
        try:
            # The body is JSON: a value it cannot carry (an object, NaN) is refused here, by name,
            # not as a TypeError from deep in the request build.
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidParameterError(
                f"{param}[{name!r}] cannot be sent as JSON: {exc}", param=param
            ) from None
    return dict(extra)


class OptionKwargs(TypedDict, total=False):
    """The per-call options as keyword arguments of the clients' methods (typed by ``Unpack``):
    the same names as ``EmbedOptions``, written once here instead of in every signature."""

    input_type: str | None
    instruction: str | None
    dimensions: int | None
    normalize: bool | None
    truncate: bool | None
    extra_body: Mapping[str, Any]


@dataclass(frozen=True)
class EmbedOptions:
    """What one call asks of the service, besides the model and the input."""

    input_type: str | None = None
    #: A task instruction for queries: each text is sent as ``Instruct: {instruction}\nQuery:
    #: {text}`` with ``input_type`` left out (``_instruction``); never for documents.
    instruction: str | None = None
    dimensions: int | None = None
    normalize: bool | None = None
    truncate: bool | None = None
    #: None: we ask for base64 (4x smaller on the wire, decoded in C) and return floats.
    encoding_format: str | None = None
    #: Further request fields (an option the service has and this package does not name yet).
    extra_body: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], *, owner: str, **fixed: Any) -> EmbedOptions:
        """The options a method was given as keywords (``fixed``: its own, such as
        ``encoding_format``); an unknown keyword is refused as a constructor's is, naming the
        option most likely meant (a keyword is never swallowed)."""
        known = list(OptionKwargs.__annotations__)
        for name in kwargs:
            if name not in known:
                raise unexpected_keyword(owner, name, known, f"its options are: {', '.join(known)}")
        return cls(**fixed, **kwargs)

    def _validate(
        self, spec: ModelSpec | None, names: Mapping[str, str] | None = None
    ) -> EmbedOptions:
        """Refuse what the service would refuse, with the model's own limits when known.

        ``names``: a front end's spelling of ``input_type`` and ``extra_body``, so the error
        names the argument its user passed.
        """
        names = names or {}
        validate_options(
            spec=spec,
            input_type=self.input_type,
            dimensions=self.dimensions,
            encoding_format=self.encoding_format,
            normalize=self.normalize,
            truncate=self.truncate,
            input_type_param=names.get("input_type", "input_type"),
        )
        check_extra_body(self.extra_body, param=names.get("extra_body", "extra_body"))
        check_instruction(
            self.instruction,
            self.input_type,
            param=names.get("instruction", "instruction"),
            input_type_param=names.get("input_type", "input_type"),
        )
        return self

    def _prepare(self, index: int, item: Any) -> Any:
        """Item ``index`` as it is sent: instructed when the call has an instruction."""
        if self.instruction is None:
            return item
        return instruct_item(self.instruction, index, item)

    def _body(self, model: str) -> dict[str, Any]:
        """The request body every batch of the call shares (``input`` is added per batch)."""
        body: dict[str, Any] = {**self.extra_body, "model": model}
        body["encoding_format"] = self.encoding_format or "base64"
        # Unset options are omitted, never sent as null.
        for name in _BODY_FIELDS:
            value = getattr(self, name)
            if value is not None:
                body[name] = value
        if self.instruction is not None:
            # The instruction is the prompt: no model-specific one on top (the reference).
            body.pop("input_type", None)
        return body


#: The options a front end passes through by name (``input_type`` and ``instruction`` are
#: chosen per method by the adapters, for queries or documents; ``encoding_format`` is the
#: core's own).
CALL_OPTION_NAMES = tuple(
    f.name
    for f in fields(EmbedOptions)
    if f.name not in ("input_type", "instruction", "encoding_format")
)
