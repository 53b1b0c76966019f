"""What both framework adapters need, written once.

An adapter is a pydantic model whose fields are the truth: each call turns the fields into one
``AdapterSettings`` (the adapter's only job is that mapping, in ``_settings``), and
``AdapterCore`` hands back clients built for exactly those settings, rebuilding them when a
field that shapes a client changed since the last call. Per-call options (``dimensions``,
``input_type``, ...) are read at every call. So ``emb.dimensions = 256`` applies to the next
call, a copy with other values behaves by its own values, and nothing is stale.

``AdapterModel`` is the pydantic side both adapters share: validation of the whole settings on
construction and on every assignment (a refused assignment is rolled back), keyword
suggestions, copies with their own clients, and ``close()`` / ``aclose()``.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import httpx
from pydantic import ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails

from ._client import AsyncMixlayerClient, MixlayerClient, ProgressCallback
from ._config import ClientConfig, Secret, to_timeout
from ._exceptions import InvalidParameterError
from ._options import CALL_OPTION_NAMES, EmbedOptions
from ._validation import (
    check_client_config,
    check_default_headers,
    check_text,
    check_texts,
)

__all__ = [
    "ADAPTER_NAMES",
    "AdapterCore",
    "AdapterModel",
    "AdapterSettings",
    "ClientSettings",
    "progress_bar",
    "suggest_keyword",
    "timeout_as_data",
]


#: The client settings an adapter exposes as fields (a shared pacer and a clock are the core's).
_CLIENT_FIELDS = tuple(f.name for f in fields(ClientConfig) if f.name not in ("pacer", "clock"))
#: The per-call options an adapter exposes as fields, in the core's spelling: every option but
#: input_type, which it has twice, one for queries and one for documents.
_OPTION_FIELDS = (*CALL_OPTION_NAMES, "query_input_type", "document_input_type")
#: The adapter's own http clients, in the core's spelling.
_HTTP_FIELDS = ("http_client", "async_http_client")
#: Every core name an adapter maps a field to (its rename table may respell any of them).
ADAPTER_NAMES = (*_CLIENT_FIELDS, *_OPTION_FIELDS, *_HTTP_FIELDS)


@dataclass(frozen=True)
class ClientSettings:
    """Everything that shapes a client; a change to any of it means new clients.

    Compared with ``==``: injected http clients compare by identity.
    """

    config: ClientConfig
    http_client: httpx.Client | None = None
    async_http_client: httpx.AsyncClient | None = None

    def _kwargs(self) -> dict[str, Any]:
        return {f.name: getattr(self.config, f.name) for f in fields(self.config)}

    def sync_client(self) -> MixlayerClient:
        return MixlayerClient(http_client=self.http_client, **self._kwargs())

    def async_client(self) -> AsyncMixlayerClient:
        return AsyncMixlayerClient(http_client=self.async_http_client, **self._kwargs())


def _plain(value: Any) -> Any:
    """A framework's secret (pydantic ``SecretStr``) as our ``Secret``; a blank string as None."""
    if hasattr(value, "get_secret_value") and not isinstance(value, Secret):
        value = value.get_secret_value()
        return Secret(value) if value else None
    if isinstance(value, str) and not value.strip():
        return None
    return value


@dataclass(frozen=True)
class AdapterSettings:
    """An adapter's fields, in the core's spelling (each adapter maps its own names here)."""

    client: ClientSettings
    #: Every per-call option but ``input_type``, by its core name.
    options: Mapping[str, Any] = field(default_factory=dict)
    query_input_type: str | None = "query"
    document_input_type: str | None = "document"
    #: The adapter's names for the core's, where they differ (its rename table).
    renames: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, model: object, renames: Mapping[str, str]) -> AdapterSettings:
        """Every field of an adapter ``model``, read now and respelled by ``renames`` (core
        name -> the adapter's field name)."""

        def get(name: str) -> Any:
            return _plain(getattr(model, renames.get(name, name)))

        return cls(
            client=ClientSettings(
                ClientConfig(**{name: get(name) for name in _CLIENT_FIELDS}),
                *(get(name) for name in _HTTP_FIELDS),
            ),
            options={name: get(name) for name in CALL_OPTION_NAMES},
            query_input_type=get("query_input_type"),
            document_input_type=get("document_input_type"),
            renames=renames,
        )

    def _name(self, core_name: str) -> str:
        return self.renames.get(core_name, core_name)

    def validate(self) -> None:
        """Refuse, with the model's own limits, what would fail at the first call.

        Makes no network call and builds no client. Raises ``ConfigurationError`` or
        ``InvalidParameterError`` (both ``ValueError``, which pydantic reports as a
        ``ValidationError`` naming this message), each naming the adapter's own field.
        """
        c = self.client.config
        resolved = c.resolve(names=self.renames)
        check_client_config(c, batch_size_param=self._name("batch_size"))
        injected = [
            self._name(name) for name in _HTTP_FIELDS if getattr(self.client, name) is not None
        ]
        if c.proxy is not None and injected:
            raise InvalidParameterError(
                f"proxy applies to the http clients this object creates; you passed your own "
                f"({', '.join(injected)}), so give it the proxy instead",
                param="proxy",
            )
        to_timeout(c.timeout)
        check_default_headers(c.default_headers)
        for param in ("query_input_type", "document_input_type"):
            self.options_for(getattr(self, param)).validate(
                resolved.spec,
                {"input_type": self._name(param), "extra_body": self._name("extra_body")},
            )

    def options_for(self, input_type: str | None) -> EmbedOptions:
        return EmbedOptions(input_type=input_type, **self.options)


@contextlib.contextmanager
def progress_bar(
    total: int, enabled: bool, desc: str = "Embedding"
) -> Iterator[ProgressCallback | None]:
    """A tqdm bar counting embedded items, or None when off (tqdm is imported only if on)."""
    if not enabled:
        yield None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError as exc:
        raise ImportError(
            "show_progress_bar=True needs tqdm: pip install 'mixlayer-embeddings[progress]'"
        ) from exc
    with tqdm(total=total, desc=desc, unit="text") as bar:
        try:
            yield bar.update
        except BaseException:
            # A failed call's half-drawn bar is wiped, so the error is what stays on screen.
            bar.leave = False
            raise


class AdapterCore:
    """The clients of one adapter object, built on first use for the settings of that call.

    Thread-safe: concurrent calls with the same settings share one client (and so one
    ``max_concurrency``). A client replaced because settings changed is not closed under a
    call still using it: it is closed when the last call lets go of it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sync: tuple[ClientSettings, MixlayerClient] | None = None
        self._async: tuple[ClientSettings, AsyncMixlayerClient] | None = None

    def __repr__(self) -> str:
        built = [c for c in (self._sync, self._async) if c is not None]
        return f"AdapterCore({', '.join(repr(client) for _, client in built)})"

    def sync_client(self, settings: ClientSettings) -> MixlayerClient:
        with self._lock:
            if self._sync is None or self._sync[0] != settings:
                self._sync = (settings, settings.sync_client())
            return self._sync[1]

    def async_client(self, settings: ClientSettings) -> AsyncMixlayerClient:
        with self._lock:
            if self._async is None or self._async[0] != settings:
                if self._async is not None:
                    self._async[1].release()
                self._async = (settings, settings.async_client())
            return self._async[1]

    # -- the mapping: documents as "document", questions as "query" --------------------------

    def embed_documents(
        self, s: AdapterSettings, texts: Sequence[str], *, show_progress: bool = False
    ) -> list[list[float]]:
        checked = check_texts(texts)
        if not checked:
            return []
        client = self.sync_client(s.client)
        with progress_bar(len(checked), show_progress) as on_progress:
            return client.embed_with_options(
                checked, s.options_for(s.document_input_type), on_progress=on_progress
            ).embeddings

    def embed_query(self, s: AdapterSettings, text: str) -> list[float]:
        client = self.sync_client(s.client)
        return client.embed_with_options(
            check_text(text), s.options_for(s.query_input_type)
        ).embeddings[0]

    async def aembed_documents(
        self, s: AdapterSettings, texts: Sequence[str], *, show_progress: bool = False
    ) -> list[list[float]]:
        checked = check_texts(texts)
        if not checked:
            return []
        client = self.async_client(s.client)
        with progress_bar(len(checked), show_progress) as on_progress:
            response = await client.embed_with_options(
                checked, s.options_for(s.document_input_type), on_progress=on_progress
            )
        return response.embeddings

    async def aembed_query(self, s: AdapterSettings, text: str) -> list[float]:
        client = self.async_client(s.client)
        response = await client.embed_with_options(
            check_text(text), s.options_for(s.query_input_type)
        )
        return response.embeddings[0]

    # -- lifecycle -----------------------------------------------------------------------------

    def _take(self) -> tuple[MixlayerClient | None, AsyncMixlayerClient | None]:
        """Hand over the clients (and forget them): the next call builds new ones."""
        with self._lock:
            sync, async_ = self._sync, self._async
            self._sync = self._async = None
        if sync is not None:
            sync[1].close()
        return (sync[1] if sync else None), (async_[1] if async_ else None)

    def close(self) -> None:
        """Close the pools this adapter opened (an injected http client is left to its owner)."""
        _, client = self._take()
        if client is not None:
            client.release()

    async def aclose(self) -> None:
        _, client = self._take()
        if client is None:
            return
        if client.bound_to_running_loop():
            await client.aclose()
        else:
            client.release()


def timeout_as_data(value: Any) -> Any:
    """A ``mode="before"`` field validator for ``timeout``: checked, and an ``httpx.Timeout``
    stored as its ``(connect, read, write, pool)`` tuple, so serialized forms carry it."""
    timeout = to_timeout(value)
    if isinstance(value, httpx.Timeout) and timeout is not None:
        return (timeout.connect, timeout.read, timeout.write, timeout.pool)
    return value


# -- keyword suggestions ------------------------------------------------------------------------


def suggest_keyword(unknown: str, known: Sequence[str], synonyms: Mapping[str, str]) -> str | None:
    """The field a user most likely meant by ``unknown``: a known synonym (another framework's
    name for it), else the closest spelling."""
    if unknown in synonyms:
        return synonyms[unknown]
    close = difflib.get_close_matches(unknown, list(known), n=1, cutoff=0.75)
    return close[0] if close else None


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
    ``AdapterCore`` in ``_core``. pydantic collects the validators below from this mixin for
    both adapters.
    """

    #: Core name -> this adapter's field name, where the framework spells it differently.
    _RENAMES: ClassVar[Mapping[str, str]] = {}
    #: Other spellings users bring from other integrations, mapped to this adapter's field.
    _SYNONYMS: ClassVar[Mapping[str, str]] = {}
    #: Fields holding live objects a copy shares with its original instead of copying.
    _SHARED_FIELDS: ClassVar[tuple[str, ...]] = ()
    _core: AdapterCore

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
                meant = suggest_keyword(name, sorted(fields), cls._SYNONYMS)
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
        clone._core = AdapterCore()
        return clone

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Any:
        memo = {} if memo is None else memo
        # Live resources (an injected http client) are shared, not cloned.
        for name in self._SHARED_FIELDS:
            value = self.__dict__.get(name)
            if value is not None:
                memo[id(value)] = value
        # The clients are not copied: the copy builds its own on first use.
        memo[id(self._core)] = AdapterCore()
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
