"""Configuration: defaults, known models, and the environment: the core reads it here only
(``resolve_settings``, ``environment_value``); front ends that read a variable of their own
(the demo, the emulator's command line) name it where they read it."""

from __future__ import annotations

import ipaddress
import os
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypedDict

import httpx

from ._capacity import DEFAULT_MAX_TOKENS_PER_REQUEST
from ._clock import Clock
from ._exceptions import ConfigurationError, InsecureTransportError, InvalidParameterError
from ._keywords import unexpected_keyword
from ._pacing import Pacer

__all__ = [
    "API_KEY_ENV",
    "BASE_URL_ENV",
    "DEFAULT_BASE_URL",
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_TOKENS_PER_REQUEST",
    "DEFAULT_TIMEOUT",
    "MAX_BATCH_SIZE",
    "MODEL_ENV",
    "PROXY_ENV",
    "QWEN3_EMBEDDING_8B",
    "ClientConfig",
    "ClientKwargs",
    "ModelSpec",
    "ResolvedSettings",
    "Secret",
    "TimeoutSetting",
    "environment_value",
    "lookup_model",
    "proxy_for",
    "resolve_settings",
    "to_timeout",
]

API_KEY_ENV = "MIXLAYER_API_KEY"
BASE_URL_ENV = "MIXLAYER_BASE_URL"
MODEL_ENV = "MIXLAYER_EMBEDDING_MODEL"
#: An adapter's proxy when it has none: how a proxy with credentials comes back after loading a
#: serialized adapter (which leaves it out, as it leaves out the key).
PROXY_ENV = "MIXLAYER_PROXY"
DEFAULT_BASE_URL = "https://models.mixlayer.ai/v1"

#: The reference's limit on items in one request.
MAX_BATCH_SIZE = 2048
#: Items per request when a call is split. Measured in benchmarks/ (see README): full-size
#: requests need the fewest round trips, and the service caps a request at 2048 items.
DEFAULT_BATCH_SIZE = 2048
#: Requests in flight at once, for one client (all its calls together). Measured in
#: benchmarks/ (see README).
DEFAULT_MAX_CONCURRENCY = 8
DEFAULT_MAX_RETRIES = 3
#: A big batch on an 8B model can take a while to come back: be patient reading, quick connecting.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


#: What ``timeout=`` accepts: seconds for everything, an ``httpx.Timeout``, a ``(connect, read)``
#: pair or httpx's four-tuple ``(connect, read, write, pool)``; None means the default.
TimeoutSetting = float | httpx.Timeout | tuple[float | None, ...] | None


def to_timeout(value: object, *, param: str = "timeout") -> httpx.Timeout | None:
    """Turn every accepted ``timeout`` form into an ``httpx.Timeout`` (None stays None)."""
    if value is None or isinstance(value, httpx.Timeout):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 0 < value < float("inf"):
            return httpx.Timeout(float(value))
    elif isinstance(value, (tuple, list)) and len(value) in (2, 4):
        parts = list(value)
        if all(
            p is None
            or (isinstance(p, (int, float)) and not isinstance(p, bool) and 0 < p < float("inf"))
            for p in parts
        ):
            if len(parts) == 2:
                connect, read = parts
                # The read timeout also bounds writing and waiting for a pooled connection.
                return httpx.Timeout(read, connect=connect)
            return httpx.Timeout(tuple(parts))
    raise InvalidParameterError(
        f"{param} must be seconds greater than 0, an httpx.Timeout, or a (connect, read) pair "
        f"of seconds; got {value!r}",
        param=param,
    )


class Secret:
    """Holds a credential so that no repr, str, log line or pickle shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        # A pickle is a serialized form: it must not carry the key.
        raise TypeError("a Secret cannot be pickled; pass the key again or use the environment")


@dataclass(frozen=True)
class ModelSpec:
    """What we know of a model, to refuse what the service would refuse.

    Read by the clients (validation), the emulator (what it serves) and the docs.
    """

    name: str
    #: The id the service knows the model by, exactly as the reference spells it.
    model_id: str
    min_dimensions: int
    max_dimensions: int
    input_types: frozenset[str]
    #: Items in one request (the reference's limit).
    max_batch_size: int = MAX_BATCH_SIZE
    #: Tokens per input.
    context_window: int = 32768

    @property
    def full_dimensions(self) -> int:
        """The vector size when ``dimensions`` is not given."""
        return self.max_dimensions

    def dimensions_range(self) -> str:
        return f"{self.min_dimensions} to {self.max_dimensions}"


QWEN3_EMBEDDING_8B = ModelSpec(
    name="Qwen3 Embedding 8B",
    model_id="qwen/qwen3-embedding-8b",
    min_dimensions=32,
    max_dimensions=4096,
    input_types=frozenset({"query", "document"}),
)
_QWEN3_EMBEDDING_8B = QWEN3_EMBEDDING_8B
_KNOWN_MODELS: dict[str, ModelSpec] = {"qwen3-embedding-8b": _QWEN3_EMBEDDING_8B}


def lookup_model(model: str) -> ModelSpec | None:
    """Recognise a model id leniently: any case, any org prefix, ``_`` or ``-``.

    ``qwen/qwen3-embedding-8b``, ``Qwen/Qwen3-Embedding-8B`` and ``qwen3_embedding_8b`` are all
    Qwen3 Embedding 8B; an unknown id returns None and is left for the server to judge.
    """
    key = model.strip().rsplit("/", 1)[-1].lower().replace("_", "-")
    return _KNOWN_MODELS.get(key)


def _is_header_safe(value: str) -> bool:
    """Printable ASCII only: what a Bearer header carries without mangling or splitting."""
    return value.isascii() and value.isprintable()


def _is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain") or host.lower().endswith(
        ".localhost"
    ):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ResolvedSettings:
    """Resolved client settings. ``api_key`` is a Secret, so the repr never shows it."""

    api_key: Secret
    base_url: httpx.URL
    model: str
    spec: ModelSpec | None = field(default=None)


def _pick(explicit: str | None, env: Mapping[str, str], name: str) -> str | None:
    if explicit is not None:
        return explicit
    value = env.get(name, "").strip()
    return value or None


def proxy_for(
    url: httpx.URL, explicit: str | httpx.URL | None, *, trust_env: bool
) -> httpx.URL | None:
    """The proxy a request to ``url`` goes through: ``proxy=``, else (with ``trust_env``) the
    environment's, as httpx picks it (``NO_PROXY`` honoured)."""
    if explicit is not None:
        return httpx.URL(str(explicit))
    # proxy_bypass_environment is in urllib.request but not in its type stubs.
    bypass = urllib.request.proxy_bypass_environment(url.host)  # type: ignore[attr-defined]
    if not trust_env or bypass:
        return None
    proxies = urllib.request.getproxies_environment()
    raw = proxies.get(url.scheme) or proxies.get("all")
    return httpx.URL(raw if "://" in raw else f"http://{raw}") if raw else None


def environment_value(name: str) -> str | None:
    """One of our variables (``API_KEY_ENV``, ``MODEL_ENV``, ``BASE_URL_ENV``), stripped, or
    None when unset or blank. The only reader of the environment besides ``resolve_settings``:
    front ends that show or store a setting (an adapter's field default) read it here."""
    return _pick(None, os.environ, name)


def resolve_settings(
    *,
    api_key: str | Secret | None,
    base_url: str | httpx.URL | None,
    model: str | None,
    allow_insecure_http: bool = False,
    environ: Mapping[str, str] | None = None,
    names: Mapping[str, str] | None = None,
) -> ResolvedSettings:
    """Explicit argument, then environment, then a clear error naming the missing variable.

    ``names``: a front end's spelling of ``api_key``, ``model`` and ``base_url``, so the
    message names the argument its user can actually pass.
    """
    env = os.environ if environ is None else environ
    named = {
        "api_key": "api_key",
        "model": "model",
        "base_url": "base_url",
        "allow_insecure_http": "allow_insecure_http=True",
        **(names or {}),
    }
    key = api_key if isinstance(api_key, Secret) else _pick(api_key, env, API_KEY_ENV)
    if isinstance(key, Secret):
        key = key.get_secret_value()
    if key is not None and not isinstance(key, str):
        raise ConfigurationError(
            f"{named['api_key']} must be a string, got {type(key).__name__}"  # never the value
        )
    if key is not None and not _is_header_safe(key.strip()):
        raise ConfigurationError(
            f"{named['api_key']} holds characters an HTTP header cannot carry (a line break, a "
            "control character or a non-ASCII one): check how it was copied"
        )
    if key is None or not key.strip():
        raise ConfigurationError(
            f"No Mixlayer API key: pass {named['api_key']}=... or set the {API_KEY_ENV} "
            "environment variable."
        )
    secret = Secret(key.strip())

    chosen_model = _pick(model, env, MODEL_ENV)
    if chosen_model is not None and not isinstance(chosen_model, str):
        raise ConfigurationError(
            f"{named['model']} must be a string, got {type(chosen_model).__name__}"
        )
    if chosen_model is None or not chosen_model.strip():
        raise ConfigurationError(
            f"No embedding model: pass {named['model']}=... or set the {MODEL_ENV} "
            "environment variable "
            "(for example qwen/qwen3-embedding-8b)."
        )

    raw_url = base_url if base_url is not None else _pick(None, env, BASE_URL_ENV)
    url = httpx.URL(str(raw_url).strip() if raw_url is not None else DEFAULT_BASE_URL)
    if url.userinfo:
        # httpx would send user:pw as Basic auth instead of the key, and a repr would show it.
        raise ConfigurationError(
            f"{named['base_url']} must not hold a user name or password (the key goes in "
            f"{named['api_key']}); got a URL with credentials for {url.host}"
        )
    if url.query or url.fragment:
        raise ConfigurationError(
            f"{named['base_url']} must not have a query string or fragment, such as "
            f"{DEFAULT_BASE_URL}; got {url.copy_with(query=None, fragment=None)}?..."
        )
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            f"{named['base_url']} must be an absolute http(s) URL such as {DEFAULT_BASE_URL}, "
            f"got {url!s}"
        )
    if url.scheme == "http" and not allow_insecure_http and not _is_loopback(url.host):
        raise InsecureTransportError(
            f"Refusing to send the API key over plain http:// to {url.host}: use https://, "
            f"or pass {named['allow_insecure_http']} if this network is trusted."
        )
    # Keep a trailing slash so relative joins ("embeddings") land under the version prefix.
    if not url.raw_path.endswith(b"/"):
        url = url.copy_with(raw_path=url.raw_path + b"/")
    return ResolvedSettings(
        api_key=secret, base_url=url, model=chosen_model.strip(), spec=lookup_model(chosen_model)
    )


class ClientKwargs(TypedDict, total=False):
    """The client settings as keyword arguments (typed by ``Unpack``): the fields of
    ``ClientConfig``, written once here instead of in every constructor and front end."""

    api_key: str | Secret | None
    base_url: str | httpx.URL | None
    model: str | None
    timeout: TimeoutSetting
    max_retries: int
    batch_size: int
    max_concurrency: int
    max_tokens_per_request: int
    allow_insecure_http: bool
    default_headers: Mapping[str, str] | None
    proxy: str | httpx.URL | None
    trust_env: bool
    dedupe: bool
    rate: float | None
    pacer: Pacer | None
    clock: Clock | None


@dataclass(frozen=True)
class ClientConfig:
    """Everything that shapes a client except its http client, with the defaults.

    ``api_key``, ``model`` and ``base_url`` left None are read from the environment when the
    client is built (``resolve_settings``). ``rate``: requests per second you know the key
    may send (None: learned from 429s). ``pacer``: a rate budget (``RatePacer``) to share
    between clients; None gives the client its own, at ``rate``. ``clock``: where waits are
    read and slept (tests pass their own); None is the system clock. Compared with ``==`` by
    adapters, which build new clients when it changes.
    """

    api_key: str | Secret | None = None
    base_url: str | httpx.URL | None = None
    model: str | None = None
    timeout: TimeoutSetting = None
    max_retries: int = DEFAULT_MAX_RETRIES
    batch_size: int = DEFAULT_BATCH_SIZE
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    max_tokens_per_request: int = DEFAULT_MAX_TOKENS_PER_REQUEST
    allow_insecure_http: bool = False
    default_headers: Mapping[str, str] | None = None
    proxy: str | httpx.URL | None = None
    #: Read proxy settings (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY) and netrc from the
    #: environment, as httpx does by default; False ignores them.
    trust_env: bool = True
    #: Identical items are sent once and their vector given to each: within one call of
    #: ``embed``/``embed_array`` (whatever requests they fall in), within one request of a
    #: stream (``iter_embed``).
    dedupe: bool = True
    rate: float | None = None
    pacer: Pacer | None = None
    clock: Clock | None = None

    def __post_init__(self) -> None:
        # The key is held in its Secret from the first moment: no repr of the settings, or of
        # an object holding them, can show it.
        if isinstance(self.api_key, str):
            object.__setattr__(self, "api_key", Secret(self.api_key))

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any], *, owner: str) -> ClientConfig:
        """The settings a constructor was given; an unknown keyword is refused, naming the
        setting most likely meant (a keyword is never swallowed)."""
        names = [f.name for f in fields(cls)]
        for key in kwargs:
            if key not in names:
                raise unexpected_keyword(
                    owner, key, names, f"its settings are: http_client, {', '.join(names)}"
                )
        return cls(**kwargs)

    def resolve(self, names: Mapping[str, str] | None = None) -> ResolvedSettings:
        """Key, URL and model: explicit, else the environment, else a ConfigurationError; and
        no hop that would carry the key in clear (a plain-http proxy on the way included)."""
        settings = resolve_settings(
            api_key=self.api_key,
            base_url=self.base_url,
            model=self.model,
            allow_insecure_http=self.allow_insecure_http,
            names=names,
        )
        proxy = proxy_for(settings.base_url, self.proxy, trust_env=self.trust_env)
        if (
            proxy is not None
            and settings.base_url.scheme == "http"
            and proxy.scheme == "http"
            and not self.allow_insecure_http
            and not _is_loopback(proxy.host)
        ):
            named = {
                "allow_insecure_http": "allow_insecure_http=True",
                "trust_env": "trust_env=False",
                **(names or {}),
            }
            raise InsecureTransportError(
                f"Refusing to send the API key over plain http:// through the proxy "
                f"{proxy.host}: it would read the key. Use an https:// base_url (the proxy then "
                f"only tunnels), {named['trust_env']} to ignore the environment's proxy "
                f"settings, or {named['allow_insecure_http']} if that proxy is trusted."
            )
        return settings
