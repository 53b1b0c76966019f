"""``_flow`` driven directly, without HTTP: a batch's flow is fed scripted outcomes and the
steps it takes (sends, sleeps) and how it ends are read from a table: retry, split, bisect,
deadline, give up."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from conftest import MODEL, FakeClock, encode, vector_for

from mixlayer_embeddings import APITimeoutError, InputRejectedError, InternalServerError
from mixlayer_embeddings._batching import Batch, Plan
from mixlayer_embeddings._body import Answer
from mixlayer_embeddings._capacity import CapacityController
from mixlayer_embeddings._concurrency import AdaptiveLimit
from mixlayer_embeddings._config import Secret
from mixlayer_embeddings._endpoint import Endpoint
from mixlayer_embeddings._flow import (
    DEADLINE_PASSED,
    RESIZE,
    FlowContext,
    Send,
    Sleep,
    batch_flow,
)
from mixlayer_embeddings._pacing import RatePacer
from mixlayer_embeddings._response import ParsedBatch
from mixlayer_embeddings._tokens import TokenEstimator
from mixlayer_embeddings._usage import UsageTracker

URL = "http://service.test/v1/embeddings"


ENDPOINT = Endpoint(
    url=httpx.URL(URL),
    headers=httpx.Headers(),
    api_key=Secret("sk-table"),
    timeout=httpx.Timeout(60.0),
    attempt_seconds=240.0,
)


def context(clock: FakeClock, max_retries: int = 2) -> FlowContext:
    return FlowContext(
        endpoint=ENDPOINT,
        max_retries=max_retries,
        usage=UsageTracker(),
        limit=AdaptiveLimit(8),
        pacer=RatePacer(clock=clock.now),
        clock=clock,
        capacity=CapacityController(
            max_tokens_per_request=32_768, max_concurrency=8, read_timeout=60.0
        ),
        estimator=TokenEstimator(),
    )


def ok(request: httpx.Request) -> Answer:
    items = json.loads(request.content)["input"]
    data = [
        {"index": i, "embedding": encode(vector_for(item)), "object": "embedding"}
        for i, item in enumerate(items)
    ]
    body = json.dumps({"data": data, "model": MODEL, "usage": {"prompt_tokens": len(items)}})
    response = httpx.Response(200, content=body.encode(), request=request)
    return Answer(response, body.encode())


def status(code: int, error_code: str | None = None) -> Any:
    def respond(request: httpx.Request) -> httpx.Response:
        envelope = {"error": {"message": "no", "type": "x", "code": error_code}}
        return httpx.Response(code, json=envelope, request=request)

    return respond


def timeout(request: httpx.Request) -> httpx.ReadTimeout:
    return httpx.ReadTimeout("no answer in time", request=request)


def refuse(text: str) -> Any:
    """invalid_input for any request holding ``text``; the others answered."""

    def respond(request: httpx.Request) -> Any:
        if text in json.loads(request.content)["input"]:
            return status(400, "invalid_input")(request)
        return ok(request)

    return respond


def plan_of(items: list[str], clock: FakeClock, deadline: float | None = None) -> Plan:
    return Plan(
        body={"model": MODEL},
        batches=[],
        single=False,
        dimensions=None,
        model=MODEL,
        total=len(items),
        deadline=deadline,
        deadline_at=None if deadline is None else clock.now() + deadline,
        dedupe=False,
    )


def drive(
    script: list[Any],
    items: list[str],
    *,
    max_retries: int = 2,
    deadline: float | None = None,
    clock: FakeClock | None = None,
) -> tuple[list[str], ParsedBatch | BaseException]:
    """Run a batch's flow, answering each send with the script's next outcome (the last one
    repeats); the steps taken, and the result or the error it ended with."""
    clock = clock or FakeClock()
    flow = batch_flow(context(clock, max_retries), plan_of(items, clock, deadline),
                      Batch(0, items, len(items) * 10))  # fmt: skip
    steps: list[str] = []
    try:
        step = next(flow)
        while True:
            if isinstance(step, Sleep):
                steps.append("sleep")
                clock.sleep(step.seconds)
                step = flow.send(None)
                continue
            assert isinstance(step, Send)
            sent = json.loads(step.request.content)["input"]
            steps.append(f"send {len(sent)}")
            answer = script.pop(0) if len(script) > 1 else script[0]
            outcome = answer(step.request) if callable(answer) else answer
            step = flow.send(outcome)
    except StopIteration as done:
        return steps, done.value
    except Exception as error:
        return steps, error


TWO = ["a", "b"]
FOUR = ["a", "b", "c", "d"]


@pytest.mark.parametrize(
    ("script", "items", "max_retries", "steps", "ends"),
    [
        ([ok], TWO, 2, ["send 2"], ParsedBatch),
        # A 500 is retried after a backoff, within the budget, then given up.
        ([status(500), ok], TWO, 2, ["send 2", "sleep", "send 2"], ParsedBatch),
        ([status(500)], TWO, 2, ["send 2", "sleep", "send 2", "sleep", "send 2"],
         InternalServerError),
        ([status(500)], TWO, 0, ["send 2"], InternalServerError),
        # A timeout on several items splits them: the halves are the retry (no drain yet:
        # the server's throughput is not measured).
        ([timeout, ok], TWO, 2, ["send 2", "send 1", "send 1"], ParsedBatch),
        # A server never answering in time: one budget for the batch, halves included.
        ([timeout], FOUR, 2, ["send 4", "send 2", "send 1"], APITimeoutError),
        # A 413 splits without spending the budget.
        ([status(413), ok], FOUR, 0, ["send 4", "send 2", "send 2"], ParsedBatch),
        # invalid_input is bisected to the refused item; the others keep their vectors.
        ([refuse("c")], FOUR, 2, ["send 4", "send 2", "send 2", "send 1", "send 1"],
         InputRejectedError),
    ],
)  # fmt: skip
def test_a_batch_flow_from_a_table(script, items, max_retries, steps, ends) -> None:
    taken, result = drive(list(script), items, max_retries=max_retries)
    assert taken == steps
    assert isinstance(result, ends)


def test_a_bisected_batch_keeps_the_accepted_vectors_by_index() -> None:
    _, error = drive([refuse("c")], FOUR)
    assert isinstance(error, InputRejectedError)
    assert error.indexes == [2]
    accepted = {start + i: v for start, parsed in error.accepted for i, v in
                enumerate(parsed.embeddings)}  # fmt: skip
    assert sorted(accepted) == [0, 1, 3]
    assert accepted[3] == pytest.approx(vector_for("d"))


def test_a_timeout_at_the_deadline_ends_the_call_without_splitting() -> None:
    clock = FakeClock()

    def late(request: httpx.Request) -> httpx.ReadTimeout:
        clock.advance(1.0)  # the attempt's timeout, cut to the call's deadline, fires
        return timeout(request)

    taken, result = drive([late], FOUR, deadline=1.0, clock=clock)
    assert taken == ["send 4"]  # no split, no drain
    assert isinstance(result, APITimeoutError)
    assert "1 attempt over 1.0 s" in str(result)


def test_a_turn_that_came_after_the_deadline_is_not_sent_and_ends_the_call() -> None:
    taken, result = drive([DEADLINE_PASSED], TWO, deadline=1.0)
    assert taken == ["send 2"]  # offered to the runner, which did not send it
    assert isinstance(result, APITimeoutError)
    assert "0 attempts" in str(result)


def first_send(items: list[str], *, deadline: float | None = None) -> tuple[Send, Any]:
    clock = FakeClock()
    ctx = context(clock)
    flow = batch_flow(ctx, plan_of(items, clock, deadline), Batch(0, items, len(items) * 10))
    step = next(flow)
    assert isinstance(step, Send)
    return step, (flow, clock, ctx)


def test_the_flow_builds_its_request_from_the_endpoint_and_blanks_the_key_when_it_ends() -> None:
    step, (flow, _, _) = first_send(TWO, deadline=5.0)
    request = step.request
    assert str(request.url) == URL
    assert request.headers["authorization"] == "Bearer sk-table"
    assert json.loads(request.content) == {"model": MODEL, "input": TWO}
    assert request.extensions["timeout"]["read"] == pytest.approx(5.0)  # cut to the deadline
    flow.send(timeout(request))  # whatever the attempt ended with, the key is gone after it
    assert request.headers["authorization"] == "Bearer [REDACTED]"


@pytest.mark.parametrize(
    ("advance", "window_shrinks", "withdrawn"),
    [
        (0.0, False, None),
        (2.0, False, DEADLINE_PASSED),  # the turn came after the call's deadline
        (0.0, True, RESIZE),  # the window shrank while it waited: split, not sent
    ],
)
def test_whether_a_request_whose_turn_came_is_sent_is_the_flows_decision(
    advance: float, window_shrinks: bool, withdrawn: Any
) -> None:
    step, (_, clock, ctx) = first_send(FOUR * 50, deadline=1.0)
    clock.advance(advance)
    if window_shrinks:
        ctx.capacity.on_too_large(step.size // 2, lasting=True)
    assert step.withdrawn() is withdrawn


@pytest.mark.parametrize(
    ("deadline", "bound", "what"),
    [(None, 240.0, "the attempt's deadline"), (3.0, 3.0, "the call's deadline")],
)
def test_an_answer_is_read_by_the_attempts_bound_or_the_calls_deadline_whichever_is_first(
    deadline: float | None, bound: float, what: str
) -> None:
    step, (_, clock, _) = first_send(TWO, deadline=deadline)
    step.sent_at = clock.now()
    answer_by = step.answer_deadline()
    assert answer_by is not None
    assert (answer_by.at - clock.now(), answer_by.what) == (pytest.approx(bound), what)


def test_a_flow_closed_while_its_request_is_out_blanks_the_key() -> None:
    # The call was abandoned or cancelled with the attempt in flight: the driver closes the
    # flow, and the request it still holds no longer carries the key.
    step, (flow, _, _) = first_send(TWO)
    assert step.request.headers["authorization"] == "Bearer sk-table"
    flow.close()
    assert step.request.headers["authorization"] == "Bearer [REDACTED]"
