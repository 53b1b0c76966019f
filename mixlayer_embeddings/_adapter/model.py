"""The pydantic side both adapters share (``AdapterModel``): validation of the whole settings
on construction and on every assignment (a refused assignment is rolled back), keyword
suggestions, copies with their own clients, usage (``usage``, ``last_usage``,
``track_usage()``) and ``close()`` / ``aclose()``; and how a serialized form holds a timeout
and a proxy."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx
from pydantic import ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails

from .._config import to_timeout
from .._keywords import closest_keyword
from .._usage import UsageTracker, track_usage
from .clients import AdapterClients
from .settings import AdapterSettings

__all__ = [
    "AdapterModel",
    "has_credentials",
    "serialized_proxy",
    "timeout_as_data",
]


def timeout_as_data(value: Any) -> Any:
    """A ``mode="before"`` field validator for ``timeout``: checked, and an ``httpx.Timeout``
    stored as its ``(connect, read, write, pool)`` tuple, so serialized forms carry it."""
    timeout = to_timeout(value)
    if isinstance(value, httpx.Timeout) and timeout is not None:
        return (timeout.connect, timeout.read, timeout.write, timeout.pool)
    return value


def has_credentials(proxy: str | None) -> bool:
    """Whether a ``proxy`` URL holds a user name or password (then it is a secret)."""
    return proxy is not None and bool(httpx.URL(proxy).userinfo)


def serialized_proxy(value: str | None) -> str | None:
    """A ``proxy`` as serialized forms hold it: as it is, or left out (None) when it holds
    credentials, which are a secret like the key. A loaded adapter whose ``proxy`` is None
    reads ``MIXLAYER_PROXY``, as it reads ``MIXLAYER_API_KEY`` for its key."""
    return None if has_credentials(value) else value


def _hide_keys(value: Any) -> Any:
    """``value`` with every key-bearing entry (a name holding "key") masked."""
    if isinstance(value, Mapping):
        return {k: ("**********" if "key" in str(k).lower() else v) for k, v in value.items()}
    return value


class _KeyHidingValidator:
    """A model's pydantic validator whose errors never hold a key.

    ``hide_input_in_errors`` keeps the key out of ``str(exc)`` only: pydantic still keeps every
    refused input in ``exc.errors()``, ``exc.json()`` and a pickle of the error, and a
    model-level check's input is the whole set of arguments, the key among them. Errors leave
    through here with key-bearing inputs masked.
    """

    def __init__(self, validator: Any) -> None:
        self._validator = validator

    def __getattr__(self, name: str) -> Any:
        return getattr(self._validator, name)

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return getattr(self._validator, method)(*args, **kwargs)
        except ValidationError as exc:
            details: list[InitErrorDetails] = []
            for error in exc.errors():
                named_key = any("key" in str(part).lower() for part in error["loc"][:1])
                hidden = "**********" if named_key else _hide_keys(error.get("input"))
                detail = InitErrorDetails(type=error["type"], loc=error["loc"], input=hidden)
                if "ctx" in error:
                    detail["ctx"] = error["ctx"]
                details.append(detail)
            raise ValidationError.from_exception_data(exc.title, details) from None

    def validate_python(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("validate_python", *args, **kwargs)

    def validate_json(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("validate_json", *args, **kwargs)

    def validate_assignment(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("validate_assignment", *args, **kwargs)


class AdapterModel:
    """Mixed into both adapters, before their pydantic base.

    Subclasses define ``_RENAMES`` (the core's names they spell differently), ``_SYNONYMS``
    (other frameworks' names for their fields), a ``timeout`` field, and hold an
    ``AdapterClients`` in ``_core``. pydantic collects the validators below from this mixin for
    both adapters.
    """

    #: Core name -> this adapter's field name, where the framework spells it differently.
    _RENAMES: ClassVar[Mapping[str, str]] = {}
    #: Other spellings users bring from other integrations, mapped to this adapter's field.
    _SYNONYMS: ClassVar[Mapping[str, str]] = {}
    #: Fields holding live objects a copy shares with its original instead of copying.
    _SHARED_FIELDS: ClassVar[tuple[str, ...]] = ()
    _core: AdapterClients

    def _settings(self) -> AdapterSettings:
        """Every field, in the core's spelling: read at every call."""
        return AdapterSettings.read(self, self._RENAMES)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)  # type: ignore[misc]
        cls.__pydantic_validator__ = _KeyHidingValidator(  # type: ignore[attr-defined]
            cls.__pydantic_validator__  # type: ignore[attr-defined]
        )

    @model_validator(mode="before")
    @classmethod
    def _known_keywords(cls, data: Any) -> Any:
        """Refuse an unknown keyword, naming the field most likely meant."""
        if not isinstance(data, Mapping):
            return data
        fields: dict[str, Any] = cls.model_fields  # type: ignore[attr-defined]
        known = set(fields)
        for info in fields.values():
            for alias in (info.alias, info.validation_alias):
                if isinstance(alias, str):
                    known.add(alias)
                elif alias is not None and hasattr(alias, "choices"):
                    known.update(c for c in alias.choices if isinstance(c, str))
        unknown = sorted(k for k in data if isinstance(k, str) and k not in known)
        if unknown:
            hints = []
            for name in unknown:
                meant = closest_keyword(name, sorted(fields), cls._SYNONYMS)
                hints.append(f"{name!r} (did you mean {meant!r}?)" if meant else repr(name))
            noun = "argument" if len(unknown) == 1 else "arguments"
            raise ValueError(
                f"{cls.__name__} got unknown keyword {noun} {', '.join(hints)}; "
                f"its fields are: {', '.join(sorted(fields))}"
            )
        return data

    _timeout_as_data = field_validator("timeout", mode="before")(timeout_as_data)

    @model_validator(mode="after")
    def _valid_settings(self) -> Any:
        """Construction and every assignment refuse a bad value with the same message."""
        self._check_settings()
        return self

    def _check_settings(self) -> None:
        self._settings().validate()

    def __setattr__(self, name: str, value: Any) -> None:
        # pydantic applies an assignment before the model validators run, and leaves it in
        # place when they refuse it: put the old value back, so a refused assignment changes
        # nothing.
        fields: dict[str, Any] = type(self).model_fields  # type: ignore[attr-defined]
        if name not in fields:
            super().__setattr__(name, value)
            return
        old = self.__dict__.get(name)
        try:
            super().__setattr__(name, value)
        except Exception:
            # Looked up again: pydantic may have swapped in a new __dict__.
            self.__dict__[name] = old
            raise

    # -- copies: their own clients, their own values -------------------------------------------

    def __copy__(self) -> Any:
        clone = super().__copy__()  # type: ignore[misc]
        clone._core = AdapterClients()
        return clone

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        memo = {} if memo is None else memo
        # Live resources (an injected http client) are shared, not cloned.
        for name in self._SHARED_FIELDS:
            value = self.__dict__.get(name)
            if value is not None:
                memo[id(value)] = value
        # The clients are not copied: the copy builds its own on first use.
        memo[id(self._core)] = AdapterClients()
        return super().__deepcopy__(memo)  # type: ignore[misc]

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Any:
        """A copy with its own clients; ``update`` is validated as a whole, like a constructor's
        arguments (pydantic's own ``model_copy`` does not validate it)."""
        clone = copy.deepcopy(self) if deep else copy.copy(self)
        if update:
            fields: dict[str, Any] = type(self).model_fields  # type: ignore[attr-defined]
            current = {name: clone.__dict__[name] for name in fields if name in clone.__dict__}
            checked = type(self).model_validate({**current, **update})  # type: ignore[attr-defined]
            clone.__dict__.update({name: checked.__dict__[name] for name in fields})
            clone.__pydantic_fields_set__.update(update)  # type: ignore[attr-defined]
        return clone

    # -- usage ---------------------------------------------------------------------------------

    @property
    def usage(self) -> UsageTracker:
        """Every call of this object so far: the service's prompt and total tokens, and the
        requests, retries and 429s behind them (a copy or an unpickled object starts at 0)."""
        return self._core.usage

    @property
    def fingerprint(self) -> str:
        """What makes this object's vectors, as a short name (``mixlayer-`` and 24 hex
        digits): the model, dimensions, both input types, the query instruction, normalize,
        truncate and the extra request fields. Any change to them changes it; use it as a
        cache's namespace (LangChain's ``CacheBackedEmbeddings``) or collection (LlamaIndex's
        ``IngestionCache``) so a cache never serves a vector made another way."""
        return self._settings().fingerprint()

    @property
    def last_usage(self) -> UsageTracker:
        """The same counts for the last call to finish."""
        return self._core.last_usage

    def track_usage(self) -> contextlib.AbstractContextManager[UsageTracker]:
        """``with emb.track_usage() as u: ...``: the counts of the calls made in the block (of
        this object and of any other adapter or client)."""
        return track_usage()

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pools this object opened. It stays usable: a later call opens
        new ones."""
        self._core.close()

    async def aclose(self) -> None:
        await self._core.aclose()

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
