"""The clients. ``_BaseClient`` holds every pure step; the two subclasses only send and sleep.

A call is planned once (validate, split into batches), then each batch is driven through
``_BaseClient._batch_flow``: a generator with no I/O in it that yields the request to send
(or a pause before retrying) and receives what came back. ``MixlayerClient`` drives it with
threads over one ``httpx.Client``; ``AsyncMixlayerClient`` with tasks over one
``httpx.AsyncClient``. Retries, parsing and checking therefore cannot drift between the two.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import platform
import queue
import threading
import time
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

from ._config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_TIMEOUT,
    Secret,
    Settings,
    TimeoutSetting,
    lookup_model,
    resolve_settings,
    to_timeout,
)
from ._exceptions import (
    APIConnectionError,
    APIError,
    BadRequestError,
    InputRejectedError,
    InvalidInputError,
    InvalidParameterError,
    make_status_error,
    translate_transport_error,
)
from ._models import EmbeddingResponse
from ._options import EmbedOptions, OptionKwargs
from ._pacing import Pacer, RatePacer
from ._response import ParsedBatch, parse_embedding_response
from ._results import (
    ArrayCollector,
    Collector,
    EmbeddedBatch,
    EmbeddingArray,
    ListCollector,
)
from ._retry import RetryState, decide, is_testing, parse_retry_after
from ._validation import (
    EmbeddingInput,
    Item,
    NormalizedInput,
    check_client_options,
    check_default_headers,
    normalize_input,
)
from ._version import __version__

if TYPE_CHECKING:  # typing_extensions is only needed by type checkers (Unpack, Python < 3.11)
    from typing_extensions import Unpack

__all__ = ["AsyncMixlayerClient", "MixlayerClient", "ProgressCallback"]

logger = logging.getLogger("mixlayer_embeddings")

#: Called after each batch with the number of items it embedded (for progress bars).
ProgressCallback = Callable[[int], None]
HttpClientT = TypeVar("HttpClientT", httpx.Client, httpx.AsyncClient)

_REDACTED = "Bearer [REDACTED]"
_USER_AGENT = (
    f"mixlayer-embeddings/{__version__} httpx/{httpx.__version__} "
    f"python/{platform.python_version()}"
)


@dataclass(frozen=True)
class _Sleep:
    """A step of a batch flow: wait this long before the next attempt."""

    seconds: float


@dataclass(frozen=True)
class _Batch:
    """Items of one request, and where the first of them stands in the caller's input."""

    start: int
    items: list[Item]

    @property
    def stop(self) -> int:
        return self.start + len(self.items)


@dataclass(frozen=True)
class _Plan:
    """One call, validated and split: the body every request shares, and the batches."""

    body: dict[str, Any]
    batches: list[_Batch]
    single: bool
    dimensions: int | None
    model: str
    total: int
    #: Vectors are kept as their float32 bytes (for the numpy path), never as floats.
    raw: bool = False


#: What the runner sends back into a flow: the response, or the httpx error that replaced it.
@dataclass(frozen=True)
class _Answer:
    """A successful response and its body, read by us: httpx keeps a response in a reference
    cycle until the garbage collector's next full pass, so a body it held would pile up at
    corpus scale (measured: +700 MB over 1M texts). Ours is freed as soon as it is parsed."""

    response: httpx.Response
    content: bytes


#: What the runner sends back into a flow: an answer, an error response, or the httpx error.
_Outcome = _Answer | httpx.Response | httpx.RequestError | None
_Flow = Generator[httpx.Request | _Sleep, _Outcome, ParsedBatch]


def plan_batches(count: int, batch_size: int) -> list[tuple[int, int]]:
    """Split ``count`` items into the fewest batches of at most ``batch_size``, evenly sized.

    Even sizes keep concurrent requests finishing together, so the last one is not a straggler.
    Returns ``(start, stop)`` slices in order.
    """
    if count == 0:
        return []
    n_batches = -(-count // batch_size)
    size, extra = divmod(count, n_batches)
    slices = []
    start = 0
    for i in range(n_batches):
        stop = start + size + (1 if i < extra else 0)
        slices.append((start, stop))
        start = stop
    return slices


class Counters:
    """What a client has sent so far, for summaries: requests, retries, 429s. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.rate_limited = 0

    def count(self, *, requests: int = 0, retries: int = 0, rate_limited: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.retries += retries
            self.rate_limited += rate_limited

    def __repr__(self) -> str:
        return (
            f"Counters(requests={self.requests}, retries={self.retries}, "
            f"rate_limited={self.rate_limited})"
        )


class AdaptiveLimit:
    """How many requests may be in flight: halved on a 429, +1/limit per success (AIMD).

    Pure arithmetic, shared by both clients' gates; it never goes below one or above the
    configured ``max_concurrency``.
    """

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.current = float(maximum)

    @property
    def allowed(self) -> int:
        return max(1, int(self.current))

    def on_throttle(self) -> None:
        self.current = max(1.0, self.current / 2)

    def on_success(self) -> None:
        self.current = min(float(self.maximum), self.current + 1.0 / self.current)


def _seconds(wanted: float) -> float:
    """The one place ``is_testing()`` is read: in test suites nothing really sleeps."""
    return 0.0 if is_testing() else wanted


class _ThreadGate:
    """At most ``limit.allowed`` requests in flight across threads, started at the pacer's
    pace."""

    def __init__(self, limit: AdaptiveLimit, pacer: Pacer) -> None:
        self._limit = limit
        self._pacer = pacer
        self._cond = threading.Condition()
        self._busy = 0

    def __enter__(self) -> None:
        # The start is booked before a slot is taken: a slot held while waiting for the pace
        # would add the request's own duration to the spacing.
        wait = _seconds(self._pacer.reserve())
        if wait:
            time.sleep(wait)
        with self._cond:
            self._cond.wait_for(lambda: self._busy < self._limit.allowed)
            self._busy += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._cond:
            self._busy -= 1
            self._cond.notify_all()


class _AsyncGate:
    """At most ``limit.allowed`` requests in flight across tasks of one event loop, started at
    the pacer's pace."""

    def __init__(self, limit: AdaptiveLimit, pacer: Pacer) -> None:
        self._limit = limit
        self._pacer = pacer
        self._cond = asyncio.Condition()
        self._busy = 0

    async def __aenter__(self) -> None:
        wait = _seconds(self._pacer.reserve())
        if wait:
            await asyncio.sleep(wait)
        async with self._cond:
            await self._cond.wait_for(lambda: self._busy < self._limit.allowed)
            self._busy += 1

    async def __aexit__(self, *exc_info: object) -> None:
        async with self._cond:
            self._busy -= 1
            self._cond.notify_all()


class _CallTally:
    """One ``embed`` call's bookkeeping, shared by the sync and async runners: each batch's
    outcome goes into the collector; refused items let the other batches go on, any other
    failure stops the call; at the end, what failed is raised carrying what succeeded."""

    def __init__(self, client: _BaseClient[Any], plan: _Plan) -> None:
        self.plan = plan
        self.collector = client._collector(plan)
        self._settle = client._settle
        self._settled: set[int] = set()
        self._rejected: list[InputRejectedError] = []
        self._fatal: BaseException | None = None

    def record(self, batch: _Batch, outcome: ParsedBatch | BaseException) -> bool:
        """Take one batch's outcome; True when the call must stop."""
        self._settled.add(batch.start)
        error = self._settle(self.collector, batch, outcome)
        if isinstance(error, InputRejectedError):
            self._rejected.append(error)
        elif error is not None:
            self._fatal = error
            return True
        return False

    def finish(self) -> ListCollector | ArrayCollector:
        """The collector when every batch succeeded; else raise, with ``partial`` attached."""
        fatal, rejected, plan, collector = self._fatal, self._rejected, self.plan, self.collector
        if fatal is None and not rejected:
            return collector
        if fatal is not None and not isinstance(fatal, APIError):
            raise fatal  # an interrupt, or a bug: nothing to attach
        for batch in plan.batches:
            if batch.start not in self._settled:
                collector.fail(batch.start, batch.stop, None)
        error: APIError
        if fatal is not None:
            error = fatal
        elif len(rejected) == 1 and len(plan.batches) == 1:
            error = rejected[0]  # its own message is exact: the batch is the whole call
        else:
            error = InputRejectedError.combine(rejected, plan.total)
        if len(plan.batches) > 1 or rejected:
            error.partial = collector.partial()
        raise error


class _Chunker:
    """Cuts a stream of texts into validated batches of ``batch_size``, numbering them."""

    def __init__(self, client: _BaseClient[Any]) -> None:
        self._client = client
        self._chunk: list[Any] = []
        self._start = 0

    def push(self, text: Any) -> _Batch | None:
        self._chunk.append(text)
        return self.flush() if len(self._chunk) == self._client.batch_size else None

    def flush(self) -> _Batch | None:
        if not self._chunk:
            return None
        batch = self._client._chunk(self._start, self._chunk)
        self._start += len(self._chunk)
        self._chunk = []
        return batch


class _BaseClient(Generic[HttpClientT]):
    _http: HttpClientT

    def __init__(
        self,
        *,
        api_key: str | Secret | None,
        base_url: str | httpx.URL | None,
        model: str | None,
        timeout: TimeoutSetting,
        max_retries: int,
        batch_size: int,
        max_concurrency: int,
        allow_insecure_http: bool,
        default_headers: Mapping[str, str] | None,
        proxy: str | httpx.URL | None,
        http_client: object | None,
        pacer: Pacer | None = None,
    ) -> None:
        self._settings: Settings = resolve_settings(
            api_key=api_key,
            base_url=base_url,
            model=model,
            allow_insecure_http=allow_insecure_http,
        )
        check_client_options(
            batch_size=batch_size, max_concurrency=max_concurrency, max_retries=max_retries
        )
        if proxy is not None and http_client is not None:
            raise InvalidParameterError(
                "proxy applies to the http client this package creates; you passed your own "
                "http client, so give it the proxy instead",
                param="proxy",
            )
        self._proxy = proxy
        self.max_retries = max_retries
        self.batch_size = batch_size
        self.max_concurrency = max_concurrency
        #: Requests in flight: halves on 429, creeps back up on success (AIMD).
        self._limit = AdaptiveLimit(max_concurrency)
        #: When requests may start: unpaced until a 429, then at the rate the service allows.
        self._pacer: Pacer = pacer if pacer is not None else RatePacer()
        #: Requests sent, retries and 429s over the client's life.
        self.counters = Counters()
        #: None means: use the http client's own timeout (ours defaults to DEFAULT_TIMEOUT).
        self._timeout = to_timeout(timeout)
        self._embeddings_url = self._settings.base_url.join("embeddings")
        # The key stays inside its Secret until a request is built (see _build_request).
        self._headers = {
            "User-Agent": _USER_AGENT,
            "Accept": "application/json",
            # Not zstd or brotli: recording tools (vcrpy) can only decode gzip.
            "Accept-Encoding": "gzip",
            **check_default_headers(default_headers),
        }

    @property
    def model(self) -> str:
        return self._settings.model

    @property
    def base_url(self) -> httpx.URL:
        return self._settings.base_url

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={str(self._settings.base_url)!r}, "
            f"model={self._settings.model!r}, api_key={self._settings.api_key!r})"
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
            "proxy": self._proxy,
        }

    # -- pure steps -----------------------------------------------------------------------

    def _plan(
        self,
        input: EmbeddingInput,
        options: EmbedOptions,
        model: str | None,
        *,
        raw: bool = False,
        lazy: bool = False,
    ) -> _Plan:
        """Validate a call. ``lazy``: the input is a stream, batched as it is read."""
        chosen_model = self._settings.model if model is None else model
        if not isinstance(chosen_model, str) or not chosen_model.strip():
            raise InvalidParameterError(
                f"model must be a non-empty string, got {chosen_model!r}", param="model"
            )
        spec = self._settings.spec if model is None else lookup_model(chosen_model)
        options.validate(spec)
        if lazy:
            return _Plan(
                options.body(chosen_model), [], False, options.dimensions, chosen_model, -1, raw
            )
        normalized: NormalizedInput = normalize_input(input)
        items = normalized.items
        return _Plan(
            body=options.body(chosen_model),
            batches=[_Batch(a, items[a:b]) for a, b in plan_batches(len(items), self.batch_size)],
            single=normalized.single,
            dimensions=options.dimensions,
            model=chosen_model,
            total=len(items),
            raw=raw,
        )

    def _chunk(self, start: int, texts: list[Any]) -> _Batch:
        """One batch of a streamed input, validated; bad items are named by input index."""
        try:
            normalized = normalize_input(texts)
        except InvalidInputError as exc:
            raise InvalidInputError(
                str(exc).split(" (input ind")[0], indexes=[start + i for i in exc.indexes]
            ) from None
        return _Batch(start, normalized.items)

    def _stream_batches(self, texts: Iterable[Any]) -> Iterator[_Batch]:
        chunker = _Chunker(self)
        for text in texts:
            batch = chunker.push(text)
            if batch is not None:
                yield batch
        last = chunker.flush()
        if last is not None:
            yield last

    def _collector(self, plan: _Plan, *, offset: int = 0) -> ListCollector | ArrayCollector:
        make = ArrayCollector if plan.raw else ListCollector
        return make(plan.total, plan.model, plan.dimensions, offset=offset)

    @staticmethod
    def _settle(
        collector: Collector, batch: _Batch, outcome: ParsedBatch | BaseException
    ) -> BaseException | None:
        """Record one batch's outcome; return its error, if it failed."""
        if isinstance(outcome, ParsedBatch):
            collector.add(batch.start, outcome)
            return None
        if isinstance(outcome, InputRejectedError):
            # The bisection's accepted halves are kept: only the refused items fail.
            for start, parsed in outcome.accepted:
                collector.add(start, parsed)
            for index in outcome.indexes:
                collector.fail(index, index + 1, outcome)
        elif isinstance(outcome, APIError):
            collector.fail(batch.start, batch.stop, outcome)
        return outcome

    def _streamed(
        self,
        plan: _Plan,
        batch: _Batch,
        outcome: ParsedBatch | BaseException,
        skip_rejected: bool = False,
    ) -> EmbeddedBatch[Any]:
        """A streamed batch's result, or its error raised with what the batch did embed."""
        collector = self._collector(replace(plan, total=len(batch.items)), offset=batch.start)
        error = self._settle(collector, batch, outcome)
        rejected: dict[int, str] = {}
        if skip_rejected and isinstance(error, InputRejectedError):
            rejected = {i: f"{error.code}: {error.detail}" for i in error.indexes}
            error = None
        if error is None:
            if isinstance(collector, ArrayCollector):
                vectors: Any = collector.array(gaps=bool(rejected)).vectors
            else:
                vectors = collector.response().embeddings
            return EmbeddedBatch(batch.start, vectors, collector.usage, rejected)
        if isinstance(error, APIError):
            error.partial = collector.partial()
        raise error

    def _build_request(self, plan: _Plan, batch: list[Item]) -> httpx.Request:
        body = dict(plan.body)
        body["input"] = batch[0] if plan.single else batch
        headers = {
            **self._headers,
            "Authorization": f"Bearer {self._settings.api_key.get_secret_value()}",
        }
        return self._http.build_request(
            "POST",
            self._embeddings_url,
            json=body,
            headers=headers,
            timeout=httpx.USE_CLIENT_DEFAULT if self._timeout is None else self._timeout,
        )

    def _batch_flow(self, plan: _Plan, batch: _Batch) -> _Flow:
        """Send one batch; if the service refuses some of its items, find which. No I/O here.

        A multi-item batch refused with ``invalid_input`` is bisected (each half re-sent) until
        the refused items are known, so the error names them instead of failing every item.
        """
        try:
            return (yield from self._send_flow(plan, batch.items))
        except BadRequestError as refused:
            if refused.code != "invalid_input":
                raise
            if len(batch.items) == 1:
                raise InputRejectedError.from_refusal(refused, [batch.start]) from refused
            logger.info("batch of %d refused as invalid_input; bisecting", len(batch.items))
            accepted: list[tuple[int, ParsedBatch]] = []
            culprits = yield from self._bisect_flow(plan, batch, accepted)
            error = InputRejectedError.from_refusal(refused, culprits, batch_size=len(batch.items))
            error.accepted = accepted
            raise error from refused

    def _bisect_flow(
        self, plan: _Plan, batch: _Batch, accepted: list[tuple[int, ParsedBatch]]
    ) -> Generator[httpx.Request | _Sleep, _Outcome, list[int]]:
        """Input indexes of the items the service refuses, found by halving the batch; the
        halves it accepts are appended to ``accepted``, so their vectors are not lost."""
        if len(batch.items) == 1:
            return [batch.start]
        middle = len(batch.items) // 2
        culprits: list[int] = []
        for half in (
            _Batch(batch.start, batch.items[:middle]),
            _Batch(batch.start + middle, batch.items[middle:]),
        ):
            try:
                parsed = yield from self._send_flow(plan, half.items)
            except BadRequestError as refused:
                if refused.code != "invalid_input":
                    raise
                culprits += yield from self._bisect_flow(plan, half, accepted)
            else:
                accepted.append((half.start, parsed))
        return culprits

    def _send_flow(self, plan: _Plan, batch: list[Item]) -> _Flow:
        """Send one request until it succeeds or the retry policy gives up."""
        state = RetryState(self.max_retries)
        attempts = 0
        first_sent = time.monotonic()
        while True:
            attempts += 1
            request = self._build_request(plan, batch)
            started = time.perf_counter()
            sent_at = time.monotonic()
            outcome = yield request
            elapsed_ms = (time.perf_counter() - started) * 1000
            self.counters.count(requests=1, retries=int(attempts > 1))
            # The request has been sent: blank the key so no exception or log can carry it.
            request.headers["Authorization"] = _REDACTED
            logger.debug(
                "POST %s -> %s (%d items, %.0f ms)",
                request.url,
                outcome.response.status_code
                if isinstance(outcome, _Answer)
                else outcome.status_code
                if isinstance(outcome, httpx.Response)
                else type(outcome).__name__,
                len(batch),
                elapsed_ms,
            )
            error: APIError
            cause: BaseException | None = None
            if isinstance(outcome, _Answer):
                self._limit.on_success()
                self._pacer.on_success()
                return parse_embedding_response(
                    outcome.response,
                    expected_count=len(batch),
                    dimensions=plan.dimensions,
                    raw=plan.raw,
                    content=outcome.content,
                )
            if isinstance(outcome, httpx.Response):
                error = make_status_error(outcome)
                if outcome.status_code == 429:
                    self.counters.count(rate_limited=1)
                    self._limit.on_throttle()
                    self._pacer.on_throttle(parse_retry_after(outcome.headers), sent_at)
                    logger.info("rate limited: concurrency now %d", self._limit.allowed)
            elif isinstance(outcome, httpx.RequestError):
                cause = outcome
                error = translate_transport_error(outcome)
            else:  # pragma: no cover - the runners always send an outcome
                raise RuntimeError("batch flow resumed without an outcome")
            decision = decide(error, state)
            if not decision.retry:
                if state.retries_done:
                    logger.info("giving up after %d retries: %s", state.retries_done, error.message)
                if isinstance(error, APIConnectionError):
                    error = error.after_attempts(attempts, time.monotonic() - first_sent)
                raise error from cause
            if decision.state.retries_done > state.retries_done:
                logger.info(
                    "retry %d/%d in %.2f s after %s",
                    decision.state.retries_done,
                    self.max_retries,
                    decision.delay,
                    error.message,
                )
            else:
                logger.info("paced by the server: again in %.2f s", decision.delay)
            state = decision.state
            # After a 429 the pacer holds this request with all the others, then lets them go
            # one by one; any other retry waits its own backoff.
            if decision.wait_here:
                yield _Sleep(_seconds(decision.delay))


def _answer(response: httpx.Response) -> _Answer | httpx.Response:
    """Read a streamed response: a success's body into an ``_Answer``, an error's in place."""
    try:
        if response.is_success:
            return _Answer(response, b"".join(response.iter_bytes()))
        response.read()
        return response
    finally:
        response.close()


async def _aanswer(response: httpx.Response) -> _Answer | httpx.Response:
    try:
        if response.is_success:
            return _Answer(response, b"".join([chunk async for chunk in response.aiter_bytes()]))
        await response.aread()
        return response
    finally:
        await response.aclose()


async def _aiter_batches(batches: Sequence[_Batch]) -> AsyncIterator[_Batch]:
    for batch in batches:
        yield batch


class _LoopPool:
    """An owned ``httpx.AsyncClient`` bound to one event loop, closed on that loop.

    Its sockets are transports of that loop and can only be closed while that loop runs. An
    event loop's shutdown (``asyncio.run``, pytest-asyncio, ``Runner.close``) closes every async
    generator still alive on it and waits for them, after it has cancelled the remaining tasks;
    so the guard, parked on its first ``yield`` and held alive in ``_POOLS``, closes the pool
    there, before the loop is gone. A pool given up earlier (its client dropped, released, or
    moved to another loop) is marked ``orphaned`` and closed by the next pool that starts on the
    same loop, inside that caller's task: a close task of our own could be cancelled by a
    shutdown half-way, leaving sockets that nothing can close any more.
    """

    def __init__(self, http: httpx.AsyncClient, loop: asyncio.AbstractEventLoop) -> None:
        self.http = http
        self.loop = loop
        self.orphaned = False
        self.guard = self._guard()

    async def _guard(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self.http.aclose()

    async def start(self) -> None:
        pools = _POOLS.setdefault(self.loop, set())
        for old in [pool for pool in pools if pool.orphaned]:
            pools.discard(old)
            await old.guard.aclose()
        await self.guard.__anext__()
        pools.add(self)

    def close_soon(self) -> None:
        """Give the pool up; safe from any thread and from a finalizer (it only sets a flag)."""
        self.orphaned = True

    async def aclose(self) -> None:
        _POOLS.get(self.loop, set()).discard(self)
        await self.guard.aclose()


#: The pools open on each live event loop.
_POOLS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, set[_LoopPool]] = (
    weakref.WeakKeyDictionary()
)


class MixlayerClient(_BaseClient[httpx.Client]):
    """Synchronous client. Long inputs are split and sent ``max_concurrency`` at a time.

    >>> with MixlayerClient() as client:  # doctest: +SKIP
    ...     client.embed(["a passage", "another"], input_type="document").embeddings
    """

    def __init__(
        self,
        *,
        api_key: str | Secret | None = None,
        base_url: str | httpx.URL | None = None,
        model: str | None = None,
        timeout: TimeoutSetting = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        http_client: httpx.Client | None = None,
        allow_insecure_http: bool = False,
        default_headers: Mapping[str, str] | None = None,
        proxy: str | httpx.URL | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            model=model,
            timeout=timeout,
            max_retries=max_retries,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            allow_insecure_http=allow_insecure_http,
            default_headers=default_headers,
            proxy=proxy,
            http_client=http_client,
            pacer=pacer,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(**self._own_http_kwargs())
        if self._owns_http:
            # Dropped without close(): still return the pooled sockets.
            weakref.finalize(self, self._http.close)
        # Per client, so calls from several threads share max_concurrency.
        self._gate = _ThreadGate(self._limit, self._pacer)

    def embed(
        self,
        input: EmbeddingInput,
        *,
        model: str | None = None,
        encoding_format: str | None = None,
        on_progress: ProgressCallback | None = None,
        **options_kw: Unpack[OptionKwargs],
    ) -> EmbeddingResponse:
        """Embed ``input``; ``embeddings[i]`` is the vector of item ``i``.

        Options (``input_type``, ``dimensions``, ``normalize``, ``truncate``, ``extra_body``)
        are ``EmbedOptions`` fields; ``extra_body`` adds request fields this package does not
        name (it may not set ``model``, ``input`` or a named option).
        """
        options = EmbedOptions(encoding_format=encoding_format, **options_kw)
        return self.embed_with_options(input, options, model=model, on_progress=on_progress)

    def embed_with_options(
        self,
        input: EmbeddingInput,
        options: EmbedOptions,
        *,
        model: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> EmbeddingResponse:
        """``embed`` with its options as one ``EmbedOptions`` value (what the adapters use)."""
        plan = self._plan(input, options, model)
        collector = self._run(plan, on_progress)
        assert isinstance(collector, ListCollector)
        return collector.response()

    def embed_array(
        self,
        input: EmbeddingInput,
        *,
        model: str | None = None,
        on_progress: ProgressCallback | None = None,
        **options_kw: Unpack[OptionKwargs],
    ) -> EmbeddingArray:
        """Embed into one C-contiguous float32 numpy array of shape (N, D) (the ``numpy``
        extra). Vectors go from the base64 bytes straight into the array: no Python float is
        made, so memory stays near the array's own size."""
        options = EmbedOptions(**options_kw)
        plan = self._plan(input, options, model, raw=True)
        collector = self._run(plan, on_progress)
        assert isinstance(collector, ArrayCollector)
        return collector.array()

    def _run(
        self, plan: _Plan, on_progress: ProgressCallback | None
    ) -> ListCollector | ArrayCollector:
        tally = _CallTally(self, plan)
        outcomes = self._outcomes(
            plan,
            iter(plan.batches),
            ordered=False,
            inline=len(plan.batches) <= 1 or self.max_concurrency == 1,
        )
        try:
            for batch, outcome in outcomes:
                if tally.record(batch, outcome):
                    break
                if on_progress is not None and isinstance(outcome, ParsedBatch):
                    on_progress(len(batch.items))
        finally:
            outcomes.close()  # drops the batches not started
        return tally.finish()

    def iter_embed(
        self,
        texts: Iterable[str] | Iterable[Sequence[int]],
        *,
        model: str | None = None,
        as_array: bool = False,
        skip_rejected: bool = False,
        **options_kw: Unpack[OptionKwargs],
    ) -> Iterator[EmbeddedBatch[Any]]:
        """Stream: read ``texts`` (any iterable, e.g. a generator over a huge file) in batches
        of ``batch_size`` and yield each batch's vectors in input order as they complete.

        At most ``max_concurrency`` batches are in flight or waiting to be consumed, so memory
        stays bounded and a slow consumer slows the reading. ``as_array=True`` yields float32
        numpy arrays. A batch that fails for good raises after everything before it was yielded;
        its error's ``partial`` holds what that batch did embed (``partial.start`` is the
        batch's first input index). ``skip_rejected=True``: items the service refuses as
        invalid do not stop the stream; their batch is yielded with ``rejected`` naming them.
        """
        options = EmbedOptions(**options_kw)
        plan = self._plan([], options, model, raw=as_array, lazy=True)
        outcomes = self._outcomes(plan, self._stream_batches(texts), ordered=True)
        try:
            for batch, outcome in outcomes:
                yield self._streamed(plan, batch, outcome, skip_rejected)
        finally:
            outcomes.close()

    def _drive(self, flow: _Flow) -> ParsedBatch:
        step = next(flow)
        while True:
            outcome: _Outcome = None
            if isinstance(step, _Sleep):
                time.sleep(step.seconds)
            else:
                try:
                    with self._gate:
                        outcome = _answer(self._http.send(step, stream=True))
                except httpx.RequestError as exc:
                    outcome = exc
            try:
                step = flow.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    def _outcomes(
        self, plan: _Plan, batches: Iterator[_Batch], *, ordered: bool, inline: bool = False
    ) -> Generator[tuple[_Batch, ParsedBatch | BaseException], None, None]:
        """Run batches on worker threads, at most ``max_concurrency`` in flight (``ordered``:
        in flight or done but not yet taken), and yield each with its outcome: in completion
        order, or in input order. Closing the generator drops the batches not yet started."""
        finished: queue.SimpleQueue[tuple[int, ParsedBatch | BaseException]] = queue.SimpleQueue()

        def work(position: int, batch: _Batch) -> None:
            try:
                finished.put((position, self._drive(self._batch_flow(plan, batch))))
            except BaseException as exc:
                finished.put((position, exc))

        pool = (
            None
            if inline
            else concurrent.futures.ThreadPoolExecutor(
                max_workers=self.max_concurrency, thread_name_prefix="mixlayer-embed"
            )
        )
        pending: dict[int, _Batch] = {}
        done: dict[int, tuple[_Batch, ParsedBatch | BaseException]] = {}
        submitted = taken = 0
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) + len(done) < self.max_concurrency:
                    batch = next(batches, None)
                    if batch is None:
                        exhausted = True
                        break
                    if pool is None:
                        work(submitted, batch)
                    else:
                        pool.submit(work, submitted, batch)
                    pending[submitted] = batch
                    submitted += 1
                if ordered and taken in done:
                    yield done.pop(taken)
                    taken += 1
                    continue
                if not pending:
                    return
                try:
                    # A timeout, so the caller's thread notices Ctrl-C within 0.1 s. A C-level
                    # SimpleQueue, not concurrent.futures.wait: an interrupt inside wait()'s
                    # Python-level locking can deadlock the worker completing a future.
                    position, outcome = finished.get(timeout=0.1)
                except queue.Empty:
                    continue
                result = (pending.pop(position), outcome)
                if ordered:
                    done[position] = result
                else:
                    yield result
        finally:
            # On an error, a close or Ctrl-C: drop the batches not yet started and return at
            # once; the ones in flight end with their request.
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> MixlayerClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncMixlayerClient(_BaseClient[httpx.AsyncClient]):
    """Asynchronous client. Long inputs are split and sent ``max_concurrency`` at a time."""

    def __init__(
        self,
        *,
        api_key: str | Secret | None = None,
        base_url: str | httpx.URL | None = None,
        model: str | None = None,
        timeout: TimeoutSetting = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        http_client: httpx.AsyncClient | None = None,
        allow_insecure_http: bool = False,
        default_headers: Mapping[str, str] | None = None,
        proxy: str | httpx.URL | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            model=model,
            timeout=timeout,
            max_retries=max_retries,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            allow_insecure_http=allow_insecure_http,
            default_headers=default_headers,
            proxy=proxy,
            http_client=http_client,
            pacer=pacer,
        )
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(**self._own_http_kwargs())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._gate = _AsyncGate(self._limit, self._pacer)
        #: The owned pool's binding to its loop (see _bind_loop and _LoopPool).
        self._pool: _LoopPool | None = None

    async def _bind_loop(self) -> _AsyncGate:
        """The gate (and an owned pool) belong to one event loop; a new loop gets new ones.

        Frameworks call async methods from whichever loop is running (``asyncio.run`` per call
        is common), and connections made on a closed loop cannot be reused. The gate is per
        client, so concurrent calls share ``max_concurrency`` instead of multiplying it.
        """
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                self._gate = _AsyncGate(self._limit, self._pacer)
                if self._owns_http:
                    self.release()
                    self._http = httpx.AsyncClient(**self._own_http_kwargs())
            self._loop = loop
            if self._owns_http:
                self._pool = pool = _LoopPool(self._http, loop)
                await pool.start()
                # Dropped without aclose(): close the pool on its loop.
                weakref.finalize(self, pool.close_soon)
        return self._gate

    async def embed(
        self,
        input: EmbeddingInput,
        *,
        model: str | None = None,
        encoding_format: str | None = None,
        on_progress: ProgressCallback | None = None,
        **options_kw: Unpack[OptionKwargs],
    ) -> EmbeddingResponse:
        """Embed ``input``; ``embeddings[i]`` is the vector of item ``i``.

        Options (``input_type``, ``dimensions``, ``normalize``, ``truncate``, ``extra_body``)
        are ``EmbedOptions`` fields; ``extra_body`` adds request fields this package does not
        name (it may not set ``model``, ``input`` or a named option).
        """
        options = EmbedOptions(encoding_format=encoding_format, **options_kw)
        return await self.embed_with_options(input, options, model=model, on_progress=on_progress)

    async def embed_with_options(
        self,
        input: EmbeddingInput,
        options: EmbedOptions,
        *,
        model: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> EmbeddingResponse:
        """``embed`` with its options as one ``EmbedOptions`` value (what the adapters use)."""
        plan = self._plan(input, options, model)
        collector = await self._run(plan, on_progress)
        assert isinstance(collector, ListCollector)
        return collector.response()

    async def embed_array(
        self,
        input: EmbeddingInput,
        *,
        model: str | None = None,
        on_progress: ProgressCallback | None = None,
        **options_kw: Unpack[OptionKwargs],
    ) -> EmbeddingArray:
        """``MixlayerClient.embed_array``, awaited."""
        options = EmbedOptions(**options_kw)
        plan = self._plan(input, options, model, raw=True)
        collector = await self._run(plan, on_progress)
        assert isinstance(collector, ArrayCollector)
        return collector.array()

    async def _run(
        self, plan: _Plan, on_progress: ProgressCallback | None
    ) -> ListCollector | ArrayCollector:
        tally = _CallTally(self, plan)
        outcomes = self._outcomes(plan, _aiter_batches(plan.batches), ordered=False)
        try:
            async for batch, outcome in outcomes:
                if tally.record(batch, outcome):
                    break
                if on_progress is not None and isinstance(outcome, ParsedBatch):
                    on_progress(len(batch.items))
        finally:
            await outcomes.aclose()  # cancels the requests still in flight
        return tally.finish()

    async def iter_embed(
        self,
        texts: Iterable[str] | Iterable[Sequence[int]] | AsyncIterable[Any],
        *,
        model: str | None = None,
        as_array: bool = False,
        skip_rejected: bool = False,
        **options_kw: Unpack[OptionKwargs],
    ) -> AsyncIterator[EmbeddedBatch[Any]]:
        """``MixlayerClient.iter_embed`` as an async iterator; ``texts`` may also be an async
        iterable."""
        options = EmbedOptions(**options_kw)
        plan = self._plan([], options, model, raw=as_array, lazy=True)
        outcomes = self._outcomes(plan, self._astream_batches(texts), ordered=True)
        try:
            async for batch, outcome in outcomes:
                yield self._streamed(plan, batch, outcome, skip_rejected)
        finally:
            await outcomes.aclose()

    async def _astream_batches(
        self, texts: Iterable[Any] | AsyncIterable[Any]
    ) -> AsyncIterator[_Batch]:
        if not isinstance(texts, AsyncIterable):
            for ready in self._stream_batches(texts):
                yield ready
            return
        chunker = _Chunker(self)
        async for text in texts:
            batch = chunker.push(text)
            if batch is not None:
                yield batch
        last = chunker.flush()
        if last is not None:
            yield last

    async def _outcomes(
        self, plan: _Plan, batches: AsyncIterator[_Batch], *, ordered: bool
    ) -> AsyncGenerator[tuple[_Batch, ParsedBatch | BaseException], None]:
        """``MixlayerClient._outcomes`` with tasks: at most ``max_concurrency`` in flight (or,
        ``ordered``, done but not yet taken). Closing it cancels the requests in flight."""
        gate = await self._bind_loop()

        async def work(batch: _Batch) -> ParsedBatch:
            return await self._drive(self._batch_flow(plan, batch), gate)

        tasks: dict[asyncio.Task[ParsedBatch], tuple[int, _Batch]] = {}
        done: dict[int, tuple[_Batch, ParsedBatch | BaseException]] = {}
        submitted = taken = 0
        exhausted = False
        try:
            while True:
                while not exhausted and len(tasks) + len(done) < self.max_concurrency:
                    try:
                        batch = await batches.__anext__()
                    except StopAsyncIteration:
                        exhausted = True
                        break
                    tasks[asyncio.ensure_future(work(batch))] = (submitted, batch)
                    submitted += 1
                if ordered and taken in done:
                    yield done.pop(taken)
                    taken += 1
                    continue
                if not tasks:
                    return
                finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    position, batch = tasks.pop(task)
                    failure = task.exception()
                    outcome = failure if failure is not None else task.result()
                    if ordered:
                        done[position] = (batch, outcome)
                    else:
                        yield batch, outcome
        finally:
            # One batch failed, the consumer stopped, or the caller was cancelled: stop every
            # request still in flight.
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _drive(self, flow: _Flow, gate: _AsyncGate) -> ParsedBatch:
        step = next(flow)
        while True:
            outcome: _Outcome = None
            if isinstance(step, _Sleep):
                await asyncio.sleep(step.seconds)
            else:
                try:
                    async with gate:
                        outcome = await _aanswer(await self._http.send(step, stream=True))
                except httpx.RequestError as exc:
                    outcome = exc
            try:
                step = flow.send(outcome)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        if self._owns_http:
            pool, self._pool = self._pool, None
            if pool is not None and pool.loop is asyncio.get_running_loop():
                await pool.aclose()
            else:
                if pool is not None:
                    pool.close_soon()
                await self._http.aclose()

    def release(self) -> None:
        """Give an owned pool up from synchronous code: it is closed on its own loop, by the
        next call on that loop or by the loop's shutdown (use ``aclose()`` to close it now)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close_soon()

    async def __aenter__(self) -> AsyncMixlayerClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
