"""An adapter's fields in the core's spelling: ``AdapterSettings`` (read at every call) and the
``ClientRecipe`` part of it that shapes a client (compared to know when to build a new one)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import httpx

from .._client import AsyncMixlayerClient, MixlayerClient
from .._config import PROXY_ENV, ClientConfig, Secret, environment_value, to_timeout
from .._exceptions import InvalidParameterError
from .._fingerprint import fingerprint, vector_recipe
from .._options import CALL_OPTION_NAMES, EmbedOptions
from .._validation import check_client_config, check_default_headers

__all__ = ["ADAPTER_NAMES", "AdapterSettings", "ClientRecipe"]


#: The client settings an adapter exposes as fields (a shared pacer and a clock are the core's).
_CLIENT_FIELDS = tuple(f.name for f in fields(ClientConfig) if f.name not in ("pacer", "clock"))
#: The per-call options an adapter exposes as fields, in the core's spelling: every option but
#: input_type, which it has twice, one for queries and one for documents.
_OPTION_FIELDS = (
    *CALL_OPTION_NAMES,
    "query_input_type",
    "document_input_type",
    "query_instruction",
)
#: The adapter's own http clients, in the core's spelling.
_HTTP_FIELDS = ("http_client", "async_http_client")
#: Every core name an adapter maps a field to (its rename table may respell any of them).
ADAPTER_NAMES = (*_CLIENT_FIELDS, *_OPTION_FIELDS, *_HTTP_FIELDS)


@dataclass(frozen=True)
class ClientRecipe:
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

    client: ClientRecipe
    #: Every per-call option but ``input_type`` and ``instruction``, by its core name.
    options: Mapping[str, Any] = field(default_factory=dict)
    query_input_type: str | None = "query"
    document_input_type: str | None = "document"
    #: The task instruction of queries (``_instruction``); documents never have one.
    query_instruction: str | None = None
    #: The adapter's names for the core's, where they differ (its rename table).
    renames: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def read(cls, model: object, renames: Mapping[str, str]) -> AdapterSettings:
        """Every field of an adapter ``model``, read now and respelled by ``renames`` (core
        name -> the adapter's field name)."""

        def get(name: str) -> Any:
            value = getattr(model, renames.get(name, name))
            if name == "query_instruction":
                return value  # a blank one is refused, not read as "none"
            value = _plain(value)
            if name == "proxy" and value is None:
                # As the key: a proxy left out of a serialized form comes from the environment.
                return environment_value(PROXY_ENV)
            return value

        return cls(
            client=ClientRecipe(
                ClientConfig(**{name: get(name) for name in _CLIENT_FIELDS}),
                *(get(name) for name in _HTTP_FIELDS),
            ),
            options={name: get(name) for name in CALL_OPTION_NAMES},
            query_input_type=get("query_input_type"),
            document_input_type=get("document_input_type"),
            query_instruction=get("query_instruction"),
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
        for options, input_type in (
            (self.query_options(), "query_input_type"),
            (self.document_options(), "document_input_type"),
        ):
            options._validate(
                resolved.spec,
                {
                    "input_type": self._name(input_type),
                    "instruction": self._name("query_instruction"),
                    "extra_body": self._name("extra_body"),
                },
            )

    def fingerprint(self) -> str:
        """What makes the vectors of both kinds of call (``_fingerprint``)."""
        model = self.client.config.resolve(names=self.renames).model
        return fingerprint(
            {
                "documents": vector_recipe(model, self.document_options()),
                "queries": vector_recipe(model, self.query_options()),
            }
        )

    def query_options(self) -> EmbedOptions:
        """A question's options: ``query_input_type``, and the instruction if there is one."""
        return EmbedOptions(
            input_type=self.query_input_type, instruction=self.query_instruction, **self.options
        )

    def document_options(self) -> EmbedOptions:
        """A corpus text's options: ``document_input_type``, never an instruction."""
        return EmbedOptions(input_type=self.document_input_type, **self.options)
