"""What both clients share, with no I/O in it: configuration, request building, planning.

``_BaseClient`` resolves the settings once (``ClientConfig``), builds the shared state every
batch flow reports to (usage, the adaptive limit, the pacer, the capacity controller, the
token estimator, on one clock) and each request; the subclasses in ``_client`` only send,
sleep and hand the answers back to the flows.
"""

from __future__ import annotations

import functools
import platform
import warnings
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import httpx

from ._batching import Batch, Plan, plan_token_batches
from ._body import ATTEMPT_DEADLINE_READS
from ._capacity import CapacityController
from ._clock import SYSTEM_CLOCK, Clock
from ._concurrency import AdaptiveLimit
from ._config import (
    DEFAULT_TIMEOUT,
    ClientConfig,
    ClientKwargs,
    ResolvedSettings,
    lookup_model,
    to_timeout,
)
from ._dedupe import Copies
from ._endpoint import Endpoint
from ._exceptions import InvalidParameterError
from ._flow import Flow, FlowContext, batch_flow
from ._fork import register_for_fork
from ._options import EmbedOptions, OptionKwargs
from ._pacing import Pacer, RatePacer
from ._placement import VectorWidth
from ._telemetry import start_call
from ._tokens import TokenEstimator
from ._usage import UsageTracker, active_trackers
from ._validation import (
    EmbeddingInput,
    check_client_config,
    check_default_headers,
    normalize_input,
)
from ._version import __version__

__all__ = ["HttpClientT", "ProgressCallback", "_BaseClient"]

#: Called after each batch with the number of items it embedded (for progress bars).
ProgressCallback = Callable[[int], None]
HttpClientT = TypeVar("HttpClientT", httpx.Client, httpx.AsyncClient)

_USER_AGENT = (
    f"mixlayer-embeddings/{__version__} httpx/{httpx.__version__} "
    f"python/{platform.python_version()}"
)


class _BaseClient(Generic[HttpClientT]):
    _http: HttpClientT

    def __init__(self, http_client: object | None, settings: ClientKwargs) -> None:
        config = ClientConfig.from_kwargs(settings, owner=type(self).__name__)
        self._resolved: ResolvedSettings = config.resolve()
        check_client_config(config)
        if config.proxy is not None and http_client is not None:
            raise InvalidParameterError(
                "proxy applies to the http client this package creates; you passed your own "
                "http client, so give it the proxy instead",
                param="proxy",
            )
        self._config = config
        self.max_retries = config.max_retries
        self.batch_size = config.batch_size
        self.max_concurrency = config.max_concurrency
        self._clock: Clock = config.clock if config.clock is not None else SYSTEM_CLOCK
        #: Requests in flight: halves on 429, creeps back up on success (AIMD).
        self._limit = AdaptiveLimit(config.max_concurrency)
        #: When requests may start: unpaced until a 429, then at the rate the service allows.
        self._pacer: Pacer = (
            config.pacer
            if config.pacer is not None
            else RatePacer(config.rate, clock=self._clock.now)
        )
        #: What this client sent and the service counted (requests, retries, 429s, timeouts,
        #: tokens).
        self.usage = UsageTracker()
        #: None means: use the http client's own timeout (ours defaults to DEFAULT_TIMEOUT).
        self._timeout = to_timeout(config.timeout)
        self._embeddings_url = self._resolved.base_url.join("embeddings")
        # The key stays inside its Secret until a request is built (``Endpoint.request``).
        self._headers = {
            "User-Agent": _USER_AGENT,
            "Accept": "application/json",
            # Not zstd or brotli: recording tools (vcrpy) can only decode gzip.
            "Accept-Encoding": "gzip",
            **check_default_headers(config.default_headers),
        }
        #: The bytes-per-token ratio, learned from the service's usage, for sizing requests.
        self._estimator = TokenEstimator()
        read_timeout = (self._timeout or DEFAULT_TIMEOUT).read
        if self._timeout is None and isinstance(http_client, (httpx.Client, httpx.AsyncClient)):
            read_timeout = http_client.timeout.read
        #: How long one attempt may take in all, reading its answer included.
        self._attempt_seconds = ATTEMPT_DEADLINE_READS * (read_timeout or 60.0)
        #: The tokens in flight and the request size, fitted to the server's capacity.
        self._capacity = CapacityController(
            max_tokens_per_request=config.max_tokens_per_request,
            max_concurrency=config.max_concurrency,
            read_timeout=read_timeout,
        )
        register_for_fork(self)

    def _start_flows(self, http: httpx.Client | httpx.AsyncClient) -> None:
        """What every batch flow reads, once the http client is known (its headers and timeout
        are merged into the ``Endpoint`` the flows build their requests from)."""
        endpoint = Endpoint.of(
            http,
            url=self._embeddings_url,
            headers=self._headers,
            api_key=self._resolved.api_key,
            timeout=self._timeout,
            attempt_seconds=self._attempt_seconds,
        )
        self._flow_context = FlowContext(
            endpoint=endpoint,
            max_retries=self.max_retries,
            usage=self.usage,
            limit=self._limit,
            pacer=self._pacer,
            clock=self._clock,
            capacity=self._capacity,
            estimator=self._estimator,
        )

    @property
    def counters(self) -> UsageTracker:
        """The old name of ``usage`` (the adapters' name for the same tracker)."""
        warnings.warn("client.counters is now client.usage", DeprecationWarning, stacklevel=2)
        return self.usage

    @property
    def model(self) -> str:
        return self._resolved.model

    @property
    def base_url(self) -> httpx.URL:
        return self._resolved.base_url

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={str(self._resolved.base_url)!r}, "
            f"model={self._resolved.model!r}, api_key={self._resolved.api_key!r})"
        )

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError(f"{type(self).__name__} holds a connection pool and a key; not picklable")

    def _own_http_kwargs(self) -> dict[str, Any]:
        """Settings for an http client we create ourselves."""
        return {
            "timeout": self._timeout or DEFAULT_TIMEOUT,
            "limits": httpx.Limits(
                max_connections=max(self.max_concurrency, 10),
                max_keepalive_connections=max(self.max_concurrency, 10),
            ),
            "follow_redirects": False,
            "proxy": self._config.proxy,
            "trust_env": self._config.trust_env,
        }

    # -- pure steps -----------------------------------------------------------------------

    def _options(self, given: OptionKwargs, method: str, **fixed: Any) -> EmbedOptions:
        """A method's per-call options; a misspelled one is named, with the one meant."""
        owner = f"{type(self).__name__}.{method}()"
        return EmbedOptions.from_kwargs(given, owner=owner, **fixed)

    def _plan(
        self,
        input: EmbeddingInput,
        options: EmbedOptions,
        model: str | None,
        *,
        raw: bool = False,
        lazy: bool = False,
        deadline: float | None = None,
    ) -> Plan:
        """Validate a call. ``lazy``: the input is a stream, batched as it is read.
        ``deadline``: seconds the whole call may take, retries and pacing included."""
        if deadline is not None and not (
            isinstance(deadline, (int, float))
            and not isinstance(deadline, bool)
            and 0 < deadline < float("inf")
        ):
            raise InvalidParameterError(
                f"deadline must be seconds greater than 0, or None, got {deadline!r}",
                param="deadline",
            )
        limits: dict[str, Any] = {
            "trackers": active_trackers(),
            "width": VectorWidth(options.dimensions),
        }
        if deadline is not None:
            limits |= {"deadline": float(deadline), "deadline_at": self._clock.now() + deadline}
        chosen_model = self._resolved.model if model is None else model
        if not isinstance(chosen_model, str) or not chosen_model.strip():
            raise InvalidParameterError(
                f"model must be a non-empty string, got {chosen_model!r}", param="model"
            )
        spec = self._resolved.spec if model is None else lookup_model(chosen_model)
        options._validate(spec)
        body = options._body(chosen_model)
        # Opened once the call is valid (a call refused before any request has no span).
        telemetry = functools.partial(
            start_call,
            chosen_model,
            self._embeddings_url,
            options.dimensions,
            body["encoding_format"],
        )
        if lazy:
            # A stream's batches may hold copies: each request sends its distinct items once.
            limits["dedupe"] = self._config.dedupe
            return Plan(
                telemetry=telemetry(),
                body=body,
                batches=[],
                single=False,
                dimensions=options.dimensions,
                model=chosen_model,
                total=None,
                raw=raw,
                **limits,
            )
        normalized = normalize_input(input)
        items = [options._prepare(index, item) for index, item in enumerate(normalized.items)]
        # A call's repeated items are sent once, whichever batches they would fall in.
        copies = Copies.of(items) if self._config.dedupe and len(items) > 1 else None
        if copies is not None:
            items = copies.distinct
            limits |= {"fan": copies.fan, "copies": copies.counts()}
        # The batches hold distinct items already (or copies were asked for): nothing for the
        # requests to compact again.
        limits["dedupe"] = False
        tokens = [self._estimator.estimate(item) for item in items]
        slices = plan_token_batches(tokens, self.batch_size, self._capacity.request_budget())
        batches = [Batch(a, items[a:b], sum(tokens[a:b])) for a, b in slices]
        return Plan(
            telemetry=telemetry(),
            body=body,
            batches=batches,
            single=normalized.single,
            dimensions=options.dimensions,
            model=chosen_model,
            total=len(items),
            raw=raw,
            **limits,
        )

    def _after_fork(self) -> None:
        """In a forked child, before anything is sent: locks no parent's thread holds."""
        # (The counters renew their own lock: every UsageTracker is registered for forks.)
        for shared in (self._capacity, self._estimator, self._pacer):
            after_fork = getattr(shared, "after_fork", None)  # a user's Pacer may have none
            if after_fork is not None:
                after_fork()

    def _stream_sizing(
        self, options: EmbedOptions
    ) -> tuple[int, Callable[[Any], int], Callable[[int, Any], Any]]:
        """A stream's batches: at most the request budget of estimated tokens (an instruction
        counted in each item's estimate), and each item as it is sent."""
        estimate = self._estimator.estimate
        if options.instruction is not None:
            overhead = estimate(options._prepare(0, ""))

            def estimate(item: Any) -> int:
                return self._estimator.estimate(item) + overhead

        return self._capacity.request_budget(), estimate, options._prepare

    def _flow(self, plan: Plan, batch: Batch) -> Flow:
        return batch_flow(self._flow_context, plan, batch)
