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
from mixlayer_embeddings._flow import DEADLINE_PASSED, FlowContext, Send, Sleep, batch_flow
from mixlayer_embeddings._pacing import RatePacer
from mixlayer_embeddings._response import ParsedBatch
from mixlayer_embeddings._tokens import TokenEstimator
from mixlayer_embeddings._usage import UsageTracker

URL = "http://service.test/v1/embeddings"


def build_request(plan: Plan, items: list[Any]) -> httpx.Request:
    return httpx.Request("POST", URL, json={**plan.body, "input": items})


def context(clock: FakeClock, max_retries: int = 2) -> FlowContext:
    return FlowContext(
        build_request=build_request,
        max_retries=max_retries,
        counters=UsageTracker(),
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
    plan = Plan(
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
    flow = batch_flow(context(clock, max_retries), plan, Batch(0, items, len(items) * 10))
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
