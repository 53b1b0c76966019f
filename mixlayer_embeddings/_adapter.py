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

import asyncio
import contextlib
import copy
import difflib
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from pydantic import field_validator, model_validator

from ._client import AsyncMixlayerClient, MixlayerClient, ProgressCallback
from ._config import Secret, TimeoutSetting, resolve_settings, to_timeout
from ._options import EmbedOptions, check_extra_body
from ._validation import (
    check_client_options,
    check_default_headers,
    check_text,
    check_texts,
    validate_options,
)

__all__ = [
    "AdapterCore",
    "AdapterModel",
    "AdapterSettings",
    "ClientSettings",
    "progress_bar",
    "suggest_keyword",
    "timeout_as_data",
]


@dataclass(frozen=True)
class ClientSettings:
    """Everything that shapes a client; a change to any of it means new clients.

    Compared with ``==``: injected http clients compare by identity.
    """

    api_key: Secret | None
    base_url: str | None
    model: str | None
    timeout: TimeoutSetting
    max_retries: int
    batch_size: int
    max_concurrency: int
    allow_insecure_http: bool
    default_headers: Mapping[str, str]
    proxy: str | None
    http_client: httpx.Client | None
    async_http_client: httpx.AsyncClient | None

    def _common(self) -> dict[str, Any]:
        return {
            "api_key": self.api_key,
            "base_url": self.base_url,
            "model": self.model,
            "timeout": self.timeout,
            "max_retries": self.max_retries,
            "batch_size": self.batch_size,
            "max_concurrency": self.max_concurrency,
            "allow_insecure_http": self.allow_insecure_http,
            "default_headers": self.default_headers,
        }

    def sync_client(self) -> MixlayerClient:
        proxy = None if self.http_client is not None else self.proxy
        return MixlayerClient(**self._common(), http_client=self.http_client, proxy=proxy)

    def async_client(self) -> AsyncMixlayerClient:
        proxy = None if self.async_http_client is not None else self.proxy
        return AsyncMixlayerClient(
            **self._common(), http_client=self.async_http_client, proxy=proxy
        )


@dataclass(frozen=True)
class AdapterSettings:
    """An adapter's fields, in the core's spelling (each adapter maps its own names here)."""

    client: ClientSettings
    dimensions: int | None = None
    normalize: bool | None = None
    truncate: bool | None = None
    query_input_type: str | None = "query"
    document_input_type: str | None = "document"
    extra_body: Mapping[str, Any] = field(default_factory=dict)
    #: The adapter's names for the options whose spelling differs from the core's.
    batch_size_param: str = "batch_size"
    extra_body_param: str = "extra_body"

    def validate(self) -> None:
        """Refuse, with the model's own limits, what would fail at the first call.

        Makes no network call and builds no client. Raises ``ConfigurationError`` or
        ``InvalidParameterError`` (both ``ValueError``, which pydantic reports as a
        ``ValidationError`` naming this message).
        """
        c = self.client
        resolved = resolve_settings(
            api_key=c.api_key,
            base_url=c.base_url,
            model=c.model,
            allow_insecure_http=c.allow_insecure_http,
        )
        check_client_options(
            batch_size=c.batch_size,
            max_concurrency=c.max_concurrency,
            max_retries=c.max_retries,
            batch_size_param=self.batch_size_param,
        )
        to_timeout(c.timeout)
        check_default_headers(c.default_headers)
        check_extra_body(self.extra_body, param=self.extra_body_param)
        for param, input_type in (
            ("query_input_type", self.query_input_type),
            ("document_input_type", self.document_input_type),
        ):
            try:
                validate_options(
                    spec=resolved.spec,
                    input_type=input_type,
                    dimensions=self.dimensions,
                    encoding_format=None,
                    normalize=self.normalize,
                    truncate=self.truncate,
                )
            except ValueError as exc:
                if getattr(exc, "param", None) == "input_type":
                    raise type(exc)(str(exc).replace("input_type=", f"{param}="), param=param)  # type: ignore[call-arg]  # noqa: B904 - the same error, named by the adapter's field
                raise

    def options(self, input_type: str | None) -> EmbedOptions:
        return EmbedOptions(
            input_type=input_type,
            dimensions=self.dimensions,
            normalize=self.normalize,
            truncate=self.truncate,
            extra_body=self.extra_body,
        )


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
                checked, s.options(s.document_input_type), on_progress=on_progress
            ).embeddings

    def embed_query(self, s: AdapterSettings, text: str) -> list[float]:
        client = self.sync_client(s.client)
        return client.embed_with_options(
            check_text(text), s.options(s.query_input_type)
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
                checked, s.options(s.document_input_type), on_progress=on_progress
            )
        return response.embeddings

    async def aembed_query(self, s: AdapterSettings, text: str) -> list[float]:
        client = self.async_client(s.client)
        response = await client.embed_with_options(check_text(text), s.options(s.query_input_type))
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
        if client._loop is None or client._loop is asyncio.get_running_loop():
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


class AdapterModel:
    """Mixed into both adapters, before their pydantic base.

    Subclasses define ``_settings()`` (fields to ``AdapterSettings``), ``_SYNONYMS`` (other
    frameworks' names for their fields), a ``timeout`` field, and hold an ``AdapterCore`` in
    ``_core``. pydantic collects the validators below from this mixin for both adapters.
    """

    #: Other spellings users bring from other integrations, mapped to this adapter's field.
    _SYNONYMS: ClassVar[Mapping[str, str]] = {}
    #: Fields holding live objects a copy shares with its original instead of copying.
    _SHARED_FIELDS: ClassVar[tuple[str, ...]] = ()
    _core: AdapterCore

    def _settings(self) -> AdapterSettings:  # pragma: no cover - each adapter defines it
        raise NotImplementedError

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
