"""``mixlayer-embed --plan``: what a run would send, bill, take and write, before it sends
anything.

The input is read as a run reads it (the same rows, rejects and duplicate ids), nothing is
sent, no key is needed and the output folder is only read (``--update --plan`` reads the
earlier output's ids and text hashes to count what an update would send). Tokens are
``planned_tokens`` (``_tokens``), fitted on Qwen's own vocabulary; requests are cut as a run
cuts them (``--batch-size`` texts, ``--max-tokens-per-request`` tokens), each sending its
distinct texts once. The plan is printed to stderr and written as JSON to stdout.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from .._config import DEFAULT_MAX_TOKENS_PER_REQUEST, MODEL_ENV, environment_value, lookup_model
from .._instruction import instructed
from .._tokens import planned_tokens
from .args import input_type_of, settings_fingerprint
from .lifecycle import State, state_of
from .parts import MANIFEST
from .rows import id_type_of, read_rows, refuse_repeated_ids, text_key
from .update import EarlierOutput

__all__ = ["ACCELERATOR_TOKENS_PER_SECOND", "RunPlan", "plan_run"]

#: The default of ``--tokens-per-second``: one accelerator (an H100) running a
#: Qwen3-8B-shaped encoder, about 30k tokens/s (``benchmarks/bench_capacity.py``'s grid).
ACCELERATOR_TOKENS_PER_SECOND = 30_000.0
_DEFAULT_MODEL = "qwen/qwen3-embedding-8b"
#: Values inside a reject's reason (an id, a row number, a JSON value), collapsed so that
#: reasons group by kind.
_VALUES = re.compile(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]|\b\d+(?:\.\d+)?\b')


@dataclass
class RunPlan:
    """A run's estimate: every field is written in the plan's JSON."""

    input: str
    model: str
    rows: int = 0
    rejects: dict[str, int] = field(default_factory=dict)
    #: Rows an ``--update`` would carry over (their id known, their text unchanged).
    carried: int = 0
    texts: int = 0
    distinct_texts: int = 0
    texts_sent: int = 0
    requests: int = 0
    estimated_tokens: int = 0
    dimensions: int | None = None
    output_bytes: int = 0
    price_per_million_tokens: float | None = None
    estimated_cost: float | None = None
    tokens_per_second: float = ACCELERATOR_TOKENS_PER_SECOND
    tokens_per_second_source: str = ""
    estimated_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    estimator: str = (
        "planned_tokens: Qwen's pre-tokenizer pieces, fitted on its vocabulary "
        "(benchmarks/bench_plan.py states its error)"
    )


def _kind(reason: str) -> str:
    return _VALUES.sub("…", reason)


class _Requests:
    """Texts cut into requests as a run cuts them; each request's distinct texts counted."""

    def __init__(self, batch_size: int, budget: int) -> None:
        self.batch_size = batch_size
        self.budget = budget
        self.requests = 0
        self.texts_sent = 0
        self.tokens = 0
        self._batch: dict[str, int] = {}
        self._items = 0
        self._batch_tokens = 0

    def add(self, text: str, tokens: int) -> None:
        if self._items and self._batch_tokens + tokens > self.budget:
            self.close()
        self._items += 1
        self._batch_tokens += tokens
        self._batch[text] = tokens
        if self._items == self.batch_size:
            self.close()

    def close(self) -> None:
        if not self._items:
            return
        self.requests += 1
        self.texts_sent += len(self._batch)
        self.tokens += sum(self._batch.values())
        self._batch, self._items, self._batch_tokens = {}, 0, 0


def _earlier_index(args: argparse.Namespace, model: str, plan: RunPlan) -> dict[Any, str] | None:
    """Each earlier id's text hash, when an ``--update`` would carry rows over; else None,
    and a note saying why every row would be sent."""
    if state_of(args.output) is not State.COMPLETE:
        plan.notes.append(f"{args.output} holds no completed run: an update embeds every row")
        return None
    manifest = json.loads((args.output / MANIFEST).read_text(encoding="utf-8"))
    before = manifest["settings"]
    now = {
        **before,
        "model": model,
        "dimensions": args.dimensions,
        "input_type": input_type_of(args),
        "instruction": args.instruction,
        "normalize": args.normalize,
        "truncate": args.truncate,
    }
    if settings_fingerprint(before) != settings_fingerprint(now):
        plan.notes.append(
            f"{args.output} was made with other settings: --update refuses them, and "
            "--restart embeds every row (counted here)"
        )
        return None
    return EarlierOutput(args.output, before).read_index()


def plan_run(args: argparse.Namespace) -> RunPlan:
    """Read the input as a run would and estimate what it sends, bills, takes and writes."""
    model = args.model or environment_value(MODEL_ENV) or _DEFAULT_MODEL
    spec = lookup_model(model)
    id_type = id_type_of(args.input, args.id_field) or "string"
    plan = RunPlan(input=str(args.input), model=model)
    earlier = _earlier_index(args, model, plan) if args.update else None
    budget = args.max_tokens_per_request or DEFAULT_MAX_TOKENS_PER_REQUEST
    requests = _Requests(args.batch_size, budget)
    rejects: Counter[str] = Counter()
    distinct: set[str] = set()
    first_at: dict[Any, int] | None = {} if args.id_field is not None else None
    id_bytes = 0
    every = read_rows(args.input, args.text_field, args.id_field, id_type)
    for row in refuse_repeated_ids(every, first_at):
        plan.rows += 1
        if row.problem is not None:
            rejects[_kind(row.problem)] += 1
            continue
        id_bytes += 8 if not isinstance(row.id, str) else len(row.id.encode("utf-8")) + 4
        if earlier is not None and earlier.get(row.id) == text_key(row.text):
            plan.carried += 1
            continue
        text = row.text if args.instruction is None else instructed(args.instruction, row.text)
        tokens = planned_tokens(text)
        if spec is not None and tokens > spec.context_window and not args.truncate:
            rejects["over the model's context window (estimated)"] += 1
            continue
        plan.texts += 1
        distinct.add(text)
        requests.add(text, tokens)
    requests.close()
    plan.rejects = dict(rejects.most_common())
    plan.distinct_texts = len(distinct)
    plan.texts_sent, plan.requests, plan.estimated_tokens = (
        requests.texts_sent,
        requests.requests,
        requests.tokens,
    )
    plan.dimensions = args.dimensions or (spec.full_dimensions if spec is not None else None)
    written = plan.texts + plan.carried
    plan.output_bytes = written * 4 * (plan.dimensions or 0) + id_bytes
    if args.price_per_million_tokens is not None:
        plan.price_per_million_tokens = args.price_per_million_tokens
        plan.estimated_cost = plan.estimated_tokens / 1e6 * args.price_per_million_tokens
    if args.tokens_per_second is not None:
        plan.tokens_per_second = args.tokens_per_second
        plan.tokens_per_second_source = "given (--tokens-per-second)"
    else:
        plan.tokens_per_second_source = (
            "default: about one accelerator (an H100) running a Qwen3-8B-shaped encoder, "
            "measured; pass --tokens-per-second for your service's rate"
        )
    plan.estimated_seconds = round(plan.estimated_tokens / plan.tokens_per_second, 3)
    return plan


def print_plan(plan: RunPlan, args: argparse.Namespace) -> None:
    """The plan for a person (stderr) and as JSON (stdout)."""
    saved = plan.texts - plan.texts_sent
    lines = [
        f"mixlayer-embed --plan: {plan.input} ({plan.model}, input_type "
        f"{input_type_of(args)}{', instructed' if args.instruction else ''})",
        f"  rows {plan.rows:,}: {plan.texts:,} to embed, {plan.carried:,} carried over, "
        f"{sum(plan.rejects.values()):,} rejects",
        *(f"    {count:,}: {reason}" for reason, count in plan.rejects.items()),
        f"  texts sent {plan.texts_sent:,} in {plan.requests:,} requests (dedupe saves "
        f"{saved:,}; {plan.distinct_texts:,} distinct in all)",
        f"  estimated tokens {plan.estimated_tokens:,}",
        f"  output about {plan.output_bytes / 1e6:,.1f} MB at {plan.dimensions} dimensions",
        f"  time about {plan.estimated_seconds:,.1f} s at {plan.tokens_per_second:,.0f} tokens/s "
        f"({plan.tokens_per_second_source})",
    ]
    lines += [f"  note: {note}" for note in plan.notes]
    if plan.estimated_cost is not None:
        lines.append(
            f"  cost about {plan.estimated_cost:,.4f} at {plan.price_per_million_tokens} per "
            "million tokens"
        )
    print("\n".join(lines), file=sys.stderr)
    print(json.dumps(asdict(plan), indent=2))
