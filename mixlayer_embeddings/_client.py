"""The clients. ``_BaseClient`` (``_base_client``) holds every pure step; the two here only
send and sleep.

A call is planned once (``_batching``: validate, split into batches), then each batch is driven
through its sans-I/O flow (``_flow``), which yields the request to send (or a pause before
retrying) and receives what came back. ``MixlayerClient`` drives flows with threads over one
``httpx.Client``; ``AsyncMixlayerClient`` with tasks over one ``httpx.AsyncClient``, both
through a windowed pipeline (``_pipeline``). What they share lives in the rooms named for it:
the concurrency limit and gates (``_concurrency``), the capacity controller (``_capacity``), a
call's bookkeeping (``_results``), the pool bound to an event loop (``_loop_pool``), forks
(``_fork``) and time (``_clock``).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterable,
    Iterator,
    Sequence,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from ._base_client import ProgressCallback, _BaseClient
from ._batching import Batch, Plan, aiter_batches, astream_batches, stream_batches
from ._body import aread_answer, read_answer
from ._clock import SYSTEM_CLOCK
from ._concurrency import AsyncGate, ThreadGate
from ._config import ClientKwargs
from ._exceptions import ResponseValidationError
from ._flow import DEADLINE_PASSED, Flow, Outcome, Sleep
from ._loop_pool import LoopBinding
from ._models import EmbeddingResponse
from ._options import EmbedOptions, OptionKwargs
from ._pipeline import PipelineOutcome, task_outcomes, thread_outcomes
from ._response import ParsedBatch
from ._results import (
    ArrayCollector,
    CallTally,
    EmbeddedBatch,
    EmbeddingArray,
    ListCollector,
    spread_array,
    spread_response,
    streamed_batch,
)
from ._validation import EmbeddingInput

if TYPE_CHECKING:  # typing_extensions is only needed by type checkers (Unpack, Python < 3.11)
    from typing_extensions import Unpack

__all__ = ["AsyncMixlayerClient", "MixlayerClient", "ProgressCallback"]


class _Abandoned(Exception):
    """Ends the flow of a batch whose call was abandoned; nobody reads it."""


def _check_not_abandoned(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise _Abandoned


class MixlayerClient(_BaseClient[httpx.Client]):
    """Synchronous client. Long inputs are split and sent ``max_concurrency`` at a time (for
    the whole client: calls from several threads share it).

    Settings (``ClientKwargs``): ``api_key``, ``base_url``, ``model`` (each from the
    environment when not given), ``timeout``, ``max_retries``, ``batch_size``,
    ``max_concurrency``, ``max_tokens_per_request``, ``allow_insecure_http``,
    ``default_headers``, ``proxy``, ``trust_env``, ``dedupe``, ``rate``, ``pacer`` (a shared
    ``RatePacer``) and ``clock``; ``http_client`` is your own ``httpx.Client``.

    >>> with MixlayerClient() as client:  # doctest: +SKIP
    ...     client.embed(["a passage", "another"], input_type="document").embeddings
    """

    def __init__(
        self, *, http_client: httpx.Client | None = None, **settings: Unpack[ClientKwargs]
    ) -> None:
        super().__init__(http_client, settings)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(**self._own_http_kwargs())
        if self._owns_http:
            # Dropped without close(): still return the pooled sockets.
            weakref.finalize(self, self._http.close)
        # Per client, so calls from several threads share max_concurrency.
        self._gate = ThreadGate(self._limit, self._pacer, self._clock, self._capacity)
        self._start_flows(self._http)

    def _after_fork(self) -> None:
        super()._after_fork()
        self._gate = ThreadGate(self._limit, self._pacer, self._clock, self._capacity)
        if self._owns_http:
            # The parent's pool is dropped, not closed: its sockets are still the parent's.
            self._http = httpx.Client(**self._own_http_kwargs())

    def embed(
        self,
        input: EmbeddingInput,
        *,
        model: str | None = None,
        encoding_format: str | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
        **options_kw: Unpack[OptionKwargs],
    ) -> EmbeddingResponse:
        """Embed ``input``; ``embeddings[i]`` is the vector of item ``i``.

        Options (``input_type``, ``dimensions``, ``normalize``, ``truncate``, ``extra_body``)
        are ``EmbedOptions`` fields; ``extra_body`` adds request fields this package does not
        name (it may not set ``model``, ``input`` or a named option). ``deadline``: seconds
        the whole call may take, retries and pacing included (``APITimeoutError`` after).
        """
        options = self._options(options_kw, "embed", encoding_format=encoding_format)
        return self.embed_with_options(
            input, options, model=model, on_progress=on_progress, deadline=deadline
        )

    def embed_with_options(
        self,
        input: EmbeddingInput,
        options: EmbedOptions,
        *,
        model: str | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
    ) -> EmbeddingResponse:
        """``embed`` with its options as one ``EmbedOptions`` value (what the adapters use)."""
        plan = self._plan(input, options, model, deadline=deadline)
        collector = self._run(plan, on_progress)
        assert isinstance(collector, ListCollector)
        return spread_response(collector.response(), plan.fan)

    def embed_array(
        self,
        input: EmbeddingInput,
        *,
        model: str | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
        **options_kw: Unpack[OptionKwargs],
    ) -> EmbeddingArray:
        """Embed into one C-contiguous float32 numpy array of shape (N, D) (the ``numpy``
        extra). Vectors go from the base64 bytes straight into the array: no Python float is
        made, so memory stays near the array's own size."""
        options = self._options(options_kw, "embed_array")
        plan = self._plan(input, options, model, raw=True, deadline=deadline)
        collector = self._run(plan, on_progress)
        assert isinstance(collector, ArrayCollector)
        return spread_array(collector.array(), plan.fan)

    def _run(
        self, plan: Plan, on_progress: ProgressCallback | None
    ) -> ListCollector | ArrayCollector:
        tally = CallTally(plan)
        stop = threading.Event()
        outcomes = thread_outcomes(
            lambda batch: self._drive(self._flow(plan, batch), stop),
            iter(plan.batches),
            window=self.max_concurrency,
            ordered=False,
            inline=len(plan.batches) <= 1 or self.max_concurrency == 1,
        )
        with plan.telemetry.observed():
            try:
                for batch, outcome in outcomes:
                    if tally.record(batch, outcome):
                        break
                    if on_progress is not None and isinstance(outcome, ParsedBatch):
                        on_progress(plan.inputs_in(batch))
            finally:
                stop.set()  # the batches in flight send nothing more
                outcomes.close()  # drops the batches not started
            return tally.finish()

    def iter_embed(
        self,
        texts: Iterable[str] | Iterable[Sequence[int]],
        *,
        model: str | None = None,
        as_array: bool = False,
        skip_rejected: bool = False,
        deadline: float | None = None,
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
        options = self._options(options_kw, "iter_embed")
        plan = self._plan(
            [],
            options,
            model,
            raw=as_array,
            lazy=True,
            deadline=deadline,
        )
        stop = threading.Event()
        outcomes = thread_outcomes(
            lambda batch: self._drive(self._flow(plan, batch), stop),
            stream_batches(texts, self.batch_size, *self._stream_sizing(options)),
            window=self.max_concurrency,
            ordered=True,
        )
        with plan.telemetry.observed():
            try:
                for batch, outcome in outcomes:
                    yield streamed_batch(plan, batch, outcome, skip_rejected)
            finally:
                stop.set()  # the consumer stopped, or a batch failed: nothing more is sent
                outcomes.close()

    def _drive(self, flow: Flow, stop: threading.Event | None = None) -> ParsedBatch:
        """Run ``flow``: gate, send, read, hand the outcome back. ``stop``: set when the call
        is abandoned (it raised, or its consumer stopped): no further attempt is sent."""
        outcome: Outcome = None
        try:
            step = next(flow)
            while True:
                _check_not_abandoned(stop)
                if isinstance(step, Sleep):
                    if stop is not None and self._clock is SYSTEM_CLOCK:
                        stop.wait(step.seconds)  # an abandoned call stops sleeping at once
                    else:
                        self._clock.sleep(step.seconds)
                    step = flow.send(None)
                    continue
                tokens = step.tokens
                if not self._gate.enter(tokens, step.deadline_at):
                    step = flow.send(DEADLINE_PASSED)  # the call's deadline came first
                    continue
                step.sent_at = self._clock.now()
                try:
                    _check_not_abandoned(stop)  # it may have been, while the gate held it
                    try:
                        outcome = step.withdrawn() or read_answer(
                            self._http.send(step.request, stream=True),
                            step.answer_limit,
                            step.answer_deadline(),
                        )
                    except (httpx.RequestError, ResponseValidationError) as exc:
                        outcome = exc  # every way an attempt ends goes into the flow
                    # Answered, but in flight until the flow has read the answer: what it
                    # learns (a wider window) is in place before the next request looks.
                    step = flow.send(outcome)
                finally:
                    self._gate.exit(tokens)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            flow.close()  # as httpx's auth flow: the driver ends the flow, whatever happened

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
    """Asynchronous client (the settings of ``MixlayerClient``; ``http_client`` is your own
    ``httpx.AsyncClient``). Long inputs are split and sent ``max_concurrency`` at a time."""

    def __init__(
        self, *, http_client: httpx.AsyncClient | None = None, **settings: Unpack[ClientKwargs]
    ) -> None:
        super().__init__(http_client, settings)
        kwargs = self._own_http_kwargs()
        self._binding = LoopBinding(
            http_client or httpx.AsyncClient(**kwargs),
            owned=http_client is None,
            http_kwargs=kwargs,
            new_gate=lambda: AsyncGate(self._limit, self._pacer, self._clock, self._capacity),
        )
        if http_client is None:
            # Dropped without aclose(): its pool is closed on its own loop.
            weakref.finalize(self, self._binding.release)
        self._start_flows(self._binding.http)

    @property
    def _http(self) -> httpx.AsyncClient:  # type: ignore[override]
        return self._binding.http

    def _after_fork(self) -> None:
        super()._after_fork()
        self._binding.after_fork()

    def _bound_to_running_loop(self) -> bool:
        """True when the client is unused or last used on the running loop (``aclose()`` then
        closes its pool at once; from another loop use ``_release()``)."""
        return self._binding.on_running_loop()

    async def embed(
        self,
        input: EmbeddingInput,
        *,
        model: str | None = None,
        encoding_format: str | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
        **options_kw: Unpack[OptionKwargs],
    ) -> EmbeddingResponse:
        """``MixlayerClient.embed``, awaited."""
        options = self._options(options_kw, "embed", encoding_format=encoding_format)
        return await self.embed_with_options(
            input, options, model=model, on_progress=on_progress, deadline=deadline
        )

    async def embed_with_options(
        self,
        input: EmbeddingInput,
        options: EmbedOptions,
        *,
        model: str | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
    ) -> EmbeddingResponse:
        """``embed`` with its options as one ``EmbedOptions`` value (what the adapters use)."""
        plan = self._plan(input, options, model, deadline=deadline)
        collector = await self._run(plan, on_progress)
        assert isinstance(collector, ListCollector)
        return spread_response(collector.response(), plan.fan)

    async def embed_array(
        self,
        input: EmbeddingInput,
        *,
        model: str | None = None,
        on_progress: ProgressCallback | None = None,
        deadline: float | None = None,
        **options_kw: Unpack[OptionKwargs],
    ) -> EmbeddingArray:
        """``MixlayerClient.embed_array``, awaited."""
        options = self._options(options_kw, "embed_array")
        plan = self._plan(input, options, model, raw=True, deadline=deadline)
        collector = await self._run(plan, on_progress)
        assert isinstance(collector, ArrayCollector)
        return spread_array(collector.array(), plan.fan)

    async def _run(
        self, plan: Plan, on_progress: ProgressCallback | None
    ) -> ListCollector | ArrayCollector:
        tally = CallTally(plan)
        outcomes = await self._pipeline(plan, aiter_batches(plan.batches), ordered=False)
        with plan.telemetry.observed():
            try:
                async for batch, outcome in outcomes:
                    if tally.record(batch, outcome):
                        break
                    if on_progress is not None and isinstance(outcome, ParsedBatch):
                        on_progress(plan.inputs_in(batch))
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
        deadline: float | None = None,
        **options_kw: Unpack[OptionKwargs],
    ) -> AsyncIterator[EmbeddedBatch[Any]]:
        """``MixlayerClient.iter_embed`` as an async iterator; ``texts`` may also be an async
        iterable."""
        options = self._options(options_kw, "iter_embed")
        plan = self._plan(
            [],
            options,
            model,
            raw=as_array,
            lazy=True,
            deadline=deadline,
        )
        outcomes = await self._pipeline(
            plan,
            astream_batches(texts, self.batch_size, *self._stream_sizing(options)),
            ordered=True,
        )
        with plan.telemetry.observed():
            try:
                async for batch, outcome in outcomes:
                    yield streamed_batch(plan, batch, outcome, skip_rejected)
            finally:
                await outcomes.aclose()

    async def _pipeline(
        self, plan: Plan, batches: AsyncIterator[Batch], *, ordered: bool
    ) -> AsyncGenerator[PipelineOutcome, None]:
        gate = await self._binding.bind()
        return task_outcomes(
            lambda batch: self._drive(self._flow(plan, batch), gate),
            batches,
            window=self.max_concurrency,
            ordered=ordered,
        )

    async def _drive(self, flow: Flow, gate: AsyncGate) -> ParsedBatch:
        outcome: Outcome = None
        try:
            step = next(flow)
            while True:
                if isinstance(step, Sleep):
                    await self._clock.asleep(step.seconds)
                    step = flow.send(None)
                    continue
                tokens = step.tokens
                if not await gate.enter(tokens, step.deadline_at):
                    step = flow.send(DEADLINE_PASSED)  # the call's deadline came first
                    continue
                step.sent_at = self._clock.now()
                try:
                    try:
                        outcome = step.withdrawn()
                        if outcome is None:
                            response = await self._http.send(step.request, stream=True)
                            outcome = await aread_answer(
                                response, step.answer_limit, step.answer_deadline()
                            )
                    except (httpx.RequestError, ResponseValidationError) as exc:
                        outcome = exc  # every way an attempt ends goes into the flow
                    step = flow.send(outcome)
                finally:
                    await gate.exit(tokens)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        finally:
            flow.close()  # cancelled, failed or done: the driver ends the flow, as the sync one

    async def aclose(self) -> None:
        await self._binding.aclose()

    def _release(self) -> None:
        """Give an owned pool up from synchronous code: it is closed on its own loop, by the
        next call on that loop or by the loop's shutdown (use ``aclose()`` to close it now)."""
        self._binding.release()

    async def __aenter__(self) -> AsyncMixlayerClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
