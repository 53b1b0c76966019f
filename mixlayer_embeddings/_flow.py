"""The sans-I/O flow of one batch: send, retry, and bisect a refused batch.

A flow is a generator with no I/O in it. It builds each request itself, from plain data
(``Endpoint``), and yields a ``Send`` (that request, with what the runner needs to gate and
read it) or a ``Sleep`` before the next attempt. It receives how the attempt ended
(``Outcome``): an ``Answer``, an error ``httpx.Response``, the ``httpx.RequestError`` that
replaced it, the error reading the body raised, or why it was not sent. Whether a request
whose turn came is still sent (``Send.withdrawn``) and when its answer must be in
(``Send.answer_deadline``) are the flow's decisions too. It returns the parsed batch or raises
the error the call ends with. ``MixlayerClient`` drives flows with threads,
``AsyncMixlayerClient`` with tasks, so retries, parsing and checking cannot drift between them.
"""

from __future__ import annotations

import logging
from collections.abc import Generator
from dataclasses import dataclass, field, replace

import httpx

from ._batching import Batch, Plan
from ._body import Answer, Deadline, body_limit
from ._capacity import BIG_BODY_SIZE, CapacityController
from ._clock import Clock
from ._concurrency import AdaptiveLimit
from ._dedupe import Copies
from ._endpoint import Endpoint
from ._exceptions import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    BadRequestError,
    InputRejectedError,
    ResponseValidationError,
    make_status_error,
    translate_transport_error,
)
from ._models import Usage
from ._pacing import Pacer
from ._response import ParsedBatch, parse_embedding_response
from ._retry import RetryState, decide, parse_retry_after, retry_after_is_rounded
from ._tokens import TokenEstimator
from ._usage import UsageTracker
from ._validation import Item

__all__ = [
    "DEADLINE_PASSED",
    "RESIZE",
    "Answer",
    "Budget",
    "DeadlinePassed",
    "Flow",
    "FlowContext",
    "Outcome",
    "Resize",
    "Send",
    "Sleep",
    "batch_flow",
    "send_flow",
]

logger = logging.getLogger("mixlayer_embeddings")

_REDACTED = "Bearer [REDACTED]"


@dataclass(frozen=True)
class Sleep:
    """A step of a batch flow: wait this long before the next attempt."""

    seconds: float


@dataclass
class Send:
    """A step of a batch flow: send this request, holding ``tokens`` of the window. The
    runner notes ``sent_at`` (on the client's clock) when the gates let it go, then asks
    ``withdrawn()`` whether to send it after all and reads its answer by ``answer_deadline()``.
    """

    request: httpx.Request
    tokens: int
    #: The request's body size, and whether it may be split (more than one item).
    size: int = 0
    splittable: bool = False
    #: The largest answer body it can need (read no further).
    answer_limit: int = 1 << 30
    #: The call's deadline (seconds, and when on the client's clock), if it has one.
    deadline: float | None = None
    deadline_at: float | None = None
    sent_at: float | None = None
    #: The flow's context, for the two decisions the runner asks of the step.
    context: FlowContext | None = field(default=None, repr=False)

    def withdrawn(self) -> Resize | DeadlinePassed | None:
        """Why a request whose turn came is not sent after all, if it is not: the call's
        deadline passed while it waited, or the server's window shrank (the flow splits it)."""
        if self.context is None:
            return None
        if self.deadline_at is not None and self.context.clock.now() >= self.deadline_at:
            return DEADLINE_PASSED
        if self.splittable and not self.context.capacity.fits(self.tokens, self.size):
            return RESIZE
        return None

    def answer_deadline(self) -> Deadline | None:
        """When the whole answer must be in: the attempt's own bound, or the call's."""
        if self.context is None or self.sent_at is None:
            return None
        clock = self.context.clock
        return self.context.endpoint.answer_deadline(
            self.sent_at, self.deadline, self.deadline_at, clock.now
        )


class Resize:
    """What a runner answers a ``Send`` whose turn came when it no longer fits the server
    (the window shrank while it waited): not sent; the flow splits it."""


RESIZE = Resize()


class DeadlinePassed:
    """What a runner answers a ``Send`` whose turn came after the call's deadline: not sent."""


DEADLINE_PASSED = DeadlinePassed()


#: What the runner sends back into a flow, whatever the attempt ended with: an answer, an
#: error response, the httpx error, or the error reading the body raised (too large, an
#: encoding not asked for, corrupt gzip). The flow redacts and counts before it decides.
Outcome = (
    Answer
    | httpx.Response
    | httpx.RequestError
    | ResponseValidationError
    | Resize
    | DeadlinePassed
    | None
)
Flow = Generator[Send | Sleep, Outcome, ParsedBatch]


@dataclass
class Budget:
    """One batch's attempts, whatever requests it became (split halves, bisected parts share
    it): a timeout that splits a request spends a retry like one that resends it, so a server
    that never answers in time costs ``max_retries + 1`` attempts, not a fresh budget per half.
    """

    max_retries: int
    first_sent: float
    attempts: int = 0
    retries_done: int = 0


@dataclass(frozen=True)
class FlowContext:
    """What a flow reads of its client: where and how to send (``Endpoint``, plain data), the
    retry budget, and the shared state it reports to (usage, the concurrency limit, the
    pacer, the capacity controller, the token estimator), on one clock."""

    endpoint: Endpoint
    max_retries: int
    usage: UsageTracker
    limit: AdaptiveLimit
    pacer: Pacer
    clock: Clock
    capacity: CapacityController
    estimator: TokenEstimator
    #: The batch's attempts (``batch_flow`` gives each batch its own).
    budget: Budget | None = None


class _TooBig(Exception):
    """Inside a flow: the request was too large for the server now (refused for its size, or
    not answered in time); it is split, after ``drain`` seconds."""

    def __init__(self, drain: float) -> None:
        super().__init__(drain)
        self.drain = drain


def batch_flow(ctx: FlowContext, plan: Plan, batch: Batch) -> Flow:
    """Send one batch; if the service refuses some of its items, find which.

    Identical items are sent once (``plan.dedupe``) and their vector given to each copy. A
    multi-item batch refused with ``invalid_input`` is bisected (each half re-sent) until the
    refused items are known, so the error names them instead of failing every item.
    """
    ctx = replace(ctx, budget=Budget(ctx.max_retries, ctx.clock.now()))
    copies = Copies.of(batch.items) if plan.dedupe and len(batch.items) > 1 else None
    sent = copies.compact(batch) if copies is not None else batch
    try:
        parsed = yield from _fitted_flow(ctx, plan, sent)
    except BadRequestError as refused:
        if refused.code != "invalid_input":
            raise
        accepted: list[tuple[int, ParsedBatch]] = []
        culprits = [sent.start]
        if len(sent.items) > 1:
            logger.info("batch of %d refused as invalid_input; bisecting", len(sent.items))
            culprits = yield from _bisect_flow(ctx, plan, sent, accepted)
        if copies is not None:
            culprits, accepted = copies.positions(culprits, accepted, batch.start)
        if len(batch.items) == 1:
            raise InputRejectedError.from_refusal(refused, culprits) from refused
        error = InputRejectedError.from_refusal(refused, culprits, batch_size=len(batch.items))
        error.accepted = accepted
        raise error from refused
    return copies.spread(parsed) if copies is not None else parsed


def _fitted_flow(ctx: FlowContext, plan: Plan, batch: Batch) -> Flow:
    """Send a batch as one request, or as halves when it is larger than the server takes now
    (the size cap or window of ``ctx.capacity``, or learned from this very request)."""
    if len(batch.items) > 1 and not ctx.capacity.fits(batch.tokens, batch.size):
        return (yield from _split_flow(ctx, plan, batch, 0.0))
    try:
        return (yield from send_flow(ctx, plan, batch))
    except _TooBig as too_big:
        return (yield from _split_flow(ctx, plan, batch, too_big.drain))


def _split_flow(ctx: FlowContext, plan: Plan, batch: Batch, drain: float) -> Flow:
    """A batch sent as two halves (each fitted again), one after the other, after waiting
    ``drain`` seconds for the server to get through work it was given and nobody waits for."""
    drain = _within_deadline(ctx, plan, drain)
    if drain > 0:
        yield Sleep(drain)
    logger.info("request of %d items split in two, to fit the server", len(batch.items))
    left, right = _halves(batch)
    first = yield from _fitted_flow(ctx, plan, left)
    second = yield from _fitted_flow(ctx, plan, right)
    return first.joined(second)


def _halves(batch: Batch) -> tuple[Batch, Batch]:
    """The two halves of a batch, each with its share of the estimated tokens."""
    middle = len(batch.items) // 2
    share = batch.tokens * middle // len(batch.items)
    return (
        Batch(batch.start, batch.items[:middle], share),
        Batch(batch.start + middle, batch.items[middle:], batch.tokens - share),
    )


def _bisect_flow(
    ctx: FlowContext, plan: Plan, batch: Batch, accepted: list[tuple[int, ParsedBatch]]
) -> Generator[Send | Sleep, Outcome, list[int]]:
    """Input indexes of the items the service refuses, found by halving the batch; the
    halves it accepts are appended to ``accepted``, so their vectors are not lost."""
    if len(batch.items) == 1:
        return [batch.start]
    culprits: list[int] = []
    for half in _halves(batch):
        try:
            parsed = yield from _fitted_flow(ctx, plan, half)
        except BadRequestError as refused:
            if refused.code != "invalid_input":
                raise
            culprits += yield from _bisect_flow(ctx, plan, half, accepted)
        else:
            accepted.append((half.start, parsed))
    return culprits


def _http_status(outcome: Outcome) -> int | None:
    if isinstance(outcome, Answer):
        return outcome.response.status_code
    if isinstance(outcome, httpx.Response):
        return outcome.status_code
    return None


def _status_of(outcome: Outcome) -> object:
    status = _http_status(outcome)
    return status if status is not None else type(outcome).__name__


def _call_deadline_passed(plan: Plan, attempts: int, elapsed: float) -> APITimeoutError:
    noun = "attempt" if attempts == 1 else "attempts"
    return APITimeoutError(
        f"The call's deadline of {plan.deadline:g} s passed before an answer came "
        f"({attempts} {noun} over {elapsed:.1f} s); pass a longer deadline= or none"
    )


#: A timeout this close to the call's deadline is the deadline's (timers fire a little late
#: or, rounded, a little early).
_DEADLINE_SLACK = 0.05


def _within_deadline(ctx: FlowContext, plan: Plan, wait: float) -> float:
    """``wait``, cut so that no wait outlasts the call's deadline."""
    if plan.deadline_at is None:
        return wait
    return min(wait, max(0.0, plan.deadline_at - ctx.clock.now()))


def _deadline_reached(ctx: FlowContext, plan: Plan) -> bool:
    return plan.deadline_at is not None and ctx.clock.now() >= plan.deadline_at - _DEADLINE_SLACK


def _refused_for_size(status: int, error: APIError, size: int) -> bool:
    """A 413, a "request too large" refusal, or a gateway error on a big body."""
    if status == 413:
        return True
    if status in (502, 504):
        return size >= BIG_BODY_SIZE
    detail = f"{getattr(error, 'code', '') or ''} {getattr(error, 'detail', '')}".lower()
    return status == 400 and ("too large" in detail or "too_large" in detail)


def _count(
    ctx: FlowContext,
    plan: Plan,
    *,
    usage: Usage | None = None,
    requests: int = 0,
    retries: int = 0,
    rate_limited: int = 0,
    timeouts: int = 0,
) -> None:
    """What a request did, told once: to the client's usage and to every ``track_usage``
    block the call was made in."""
    if usage is not None:
        plan.telemetry.add_usage(usage.prompt_tokens)
    for tracker in (ctx.usage, *plan.trackers):
        tracker.add(
            usage,
            requests=requests,
            retries=retries,
            rate_limited=rate_limited,
            timeouts=timeouts,
        )


def _request(ctx: FlowContext, plan: Plan, items: list[Item]) -> httpx.Request:
    body = dict(plan.body)
    body["input"] = items[0] if plan.single else items
    left = None if plan.deadline_at is None else plan.deadline_at - ctx.clock.now()
    return ctx.endpoint.request(body, seconds_left=left)


def send_flow(ctx: FlowContext, plan: Plan, sent: Batch) -> Flow:
    """Send one request until it succeeds or the retry policy gives up.

    A request of several items that the server refuses for its size, or does not answer in
    time, is not sent again as it was: ``_TooBig`` asks the caller to split it.
    """
    batch, tokens = sent.items, sent.tokens
    budget = ctx.budget or Budget(ctx.max_retries, ctx.clock.now())
    state = RetryState(ctx.max_retries, retries_done=budget.retries_done)
    first_sent = budget.first_sent
    sent_here = 0  # this request's attempts (the counters' retries); the batch's: budget
    while True:
        if plan.deadline_at is not None and ctx.clock.now() >= plan.deadline_at:
            raise _call_deadline_passed(plan, budget.attempts, ctx.clock.now() - first_sent)
        budget.attempts += 1
        sent_here += 1
        attempts = budget.attempts
        request = _request(ctx, plan, batch)
        step = Send(
            request,
            tokens,
            size=sent.size,
            splittable=len(batch) > 1,
            answer_limit=body_limit(len(batch), plan.dimensions),
            deadline=plan.deadline,
            deadline_at=plan.deadline_at,
            context=ctx,
        )
        try:
            outcome = yield step
        finally:
            # Whatever ended the attempt (an answer, an error, the call abandoned or cancelled
            # while it was out), the key is blanked before anything can carry the request on.
            request.headers["Authorization"] = _REDACTED
        if isinstance(outcome, Resize | DeadlinePassed):
            budget.attempts -= 1  # not sent
            if isinstance(outcome, Resize):
                raise _TooBig(0.0)
            raise _call_deadline_passed(plan, budget.attempts, ctx.clock.now() - first_sent)
        # Timed from when the gates let it go: waiting for our own window is not the server's.
        sent_at = step.sent_at if step.sent_at is not None else ctx.clock.now()
        elapsed_ms = (ctx.clock.now() - sent_at) * 1000
        _count(ctx, plan, requests=1, retries=int(sent_here > 1))
        status = _http_status(outcome)
        plan.telemetry.attempt(
            sent_at,
            ctx.clock.now(),
            items=len(batch),
            resend_count=sent_here - 1,
            batch_attempt=budget.attempts,
            status=status,
            error=None if status is not None else type(outcome).__name__,
        )
        logger.debug(
            "POST %s -> %s (%d items, ~%d tokens%s, %.0f ms)",
            request.url,
            _status_of(outcome),
            len(batch),
            tokens,
            plan.shown_options,
            elapsed_ms,
        )
        error: APIError
        cause: BaseException | None = None
        drain = 0.0
        if isinstance(outcome, Answer):
            ctx.limit.on_success()
            ctx.pacer.on_success()
            parsed = parse_embedding_response(
                outcome.response,
                expected_count=len(batch),
                dimensions=plan.dimensions,
                raw=plan.raw,
                content=outcome.content,
            )
            ctx.capacity.on_success(tokens, sent_at, ctx.clock.now())
            if isinstance(batch[0], str):
                ctx.estimator.observe(sent.size, parsed.usage.prompt_tokens)
            _count(ctx, plan, usage=parsed.usage)
            return parsed
        if isinstance(outcome, httpx.Response):
            error = make_status_error(outcome)
            status = outcome.status_code
            if status == 429:
                _count(ctx, plan, rate_limited=1)
                ctx.limit.on_throttle()
                ctx.pacer.on_throttle(
                    parse_retry_after(outcome.headers),
                    sent_at,
                    retry_after_is_rounded(outcome.headers),
                )
                logger.info("rate limited: concurrency now %d", ctx.limit.allowed)
            elif status == 503:
                # Overloaded: fewer requests and fewer tokens in flight, as after a 429.
                ctx.limit.on_throttle()
                ctx.capacity.on_overload()
            elif _refused_for_size(status, error, sent.size):
                ctx.capacity.on_too_large(sent.size, lasting=status not in (502, 504))
                if len(batch) > 1:
                    raise _TooBig(0.0)
        elif isinstance(outcome, httpx.RequestError):
            cause = outcome
            error = translate_transport_error(outcome)
            if isinstance(outcome, httpx.TimeoutException) and _deadline_reached(ctx, plan):
                # The call's deadline cut this attempt short: the call is over, and it says
                # nothing of the server's capacity (no split, no smaller window, no drain).
                _count(ctx, plan, timeouts=1)
                elapsed = ctx.clock.now() - first_sent
                raise _call_deadline_passed(plan, attempts, elapsed) from outcome
            if isinstance(outcome, httpx.ReadTimeout):
                _count(ctx, plan, timeouts=1)
                drain = ctx.capacity.on_timeout(tokens, ctx.capacity.in_flight, ctx.clock.now())
                if len(batch) > 1 and budget.retries_done < ctx.max_retries:
                    budget.retries_done += 1  # the halves are this request's retry
                    raise _TooBig(drain)
        elif isinstance(outcome, ResponseValidationError):
            raise outcome  # an answer whose body cannot be read is not trusted, nor retried
        else:  # pragma: no cover - the runners always send an outcome
            raise RuntimeError("batch flow resumed without an outcome")
        # The batch's budget is the one count (a split spends it too).
        state = replace(state, retries_done=budget.retries_done)
        decision = decide(error, state)
        if not decision.retry:
            if state.retries_done:
                logger.info("giving up after %d retries: %s", state.retries_done, error.message)
            if isinstance(error, APIConnectionError):
                error = error.after_attempts(attempts, ctx.clock.now() - first_sent)
            raise error from cause
        if decision.state.retries_done > state.retries_done:
            logger.info(
                "retry %d/%d in %.2f s after %s",
                decision.state.retries_done,
                ctx.max_retries,
                max(decision.delay, drain),
                error.message,
            )
        else:
            logger.info("paced by the server: again in %.2f s", decision.delay)
        state = decision.state
        budget.retries_done = state.retries_done
        # After a 429 the pacer holds this request with all the others, then lets them go
        # one by one; any other retry waits its own backoff (and, after a timeout, for the
        # server to get through the work it was left with).
        if decision.wait_here:
            yield Sleep(_within_deadline(ctx, plan, max(decision.delay, drain)))
