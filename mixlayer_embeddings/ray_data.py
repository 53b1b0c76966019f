"""Mixlayer embeddings on Ray Data: ``MixlayerEmbedder`` for ``map_batches``, ``embed_dataset``,
and ``SharedRateBudget``, one rate budget for every actor of a job.

Needs the ``ray`` extra (``pip install "mixlayer-embeddings[ray]"``); imported only when asked
for. The API key never travels in a pickled UDF, a task spec or the object store: each actor
reads it from its own environment, so give the workers the variable with
``ray.init(runtime_env={"env_vars": {"MIXLAYER_API_KEY": ...}})`` (or your cluster's secret
mechanism)::

    import ray
    from mixlayer_embeddings.ray_data import embed_dataset

    ds = ray.data.read_parquet("s3://bucket/chunks/")
    ds = embed_dataset(ds, text_column="text", dimensions=256, concurrency=4)
    ds.write_parquet("s3://bucket/embedded/")
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from ._config import (
    API_KEY_ENV,
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    MODEL_ENV,
    ClientConfig,
    ClientKwargs,
    environment_value,
    lookup_model,
)
from ._exceptions import ConfigurationError
from ._extras import require
from ._instruction import bulk_input_type
from ._keywords import unexpected_keyword
from ._models import Usage
from ._options import EmbedOptions, OptionKwargs
from ._pacing import RatePacer
from ._placement import VectorWidth
from ._usage import UsageTracker, tracking
from ._validation import check_client_config, problem_of

if TYPE_CHECKING:  # typing_extensions is only needed by type checkers (Unpack, Python < 3.11)
    from typing_extensions import Unpack

require("ray", "ray", "ray.data", "pyarrow", "numpy", feature="mixlayer_embeddings.ray_data")

import numpy as np  # noqa: E402 - after the extra is known present
import pyarrow as pa  # noqa: E402
import ray  # noqa: E402

from ._ray_resume import PROVENANCE, provenance, without_written_rows  # noqa: E402

__all__ = ["EmbedderKwargs", "MixlayerEmbedder", "SharedRateBudget", "UsageTally", "embed_dataset"]


class EmbedderKwargs(ClientKwargs, OptionKwargs, total=False):
    """Every client setting and per-call option, by the core's own names (``api_key`` is
    refused: the key is read in each actor, never shipped)."""


#: Names an embedder takes as client settings, and as per-call options.
_CLIENT_NAMES = frozenset(f.name for f in fields(ClientConfig)) - {"pacer", "clock"}
_OPTION_NAMES = frozenset(f.name for f in fields(EmbedOptions)) - {"encoding_format"}


#: MixlayerEmbedder's own arguments (the rest are the core's settings and options).
_EMBEDDER_OWN = frozenset(
    {"on_reject", "error_column", "id_columns", "rate_budget", "api_key_env", "usage_tally"}
)


def _split_settings(settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Client settings and per-call options, each by its core name; anything else refused."""
    if "api_key" in settings:
        raise TypeError(
            "MixlayerEmbedder takes no api_key: Ray would pickle it into the job. Give the "
            f"workers {API_KEY_ENV} in their environment (api_key_env names another variable)."
        )
    known = sorted((_CLIENT_NAMES | _OPTION_NAMES) - {"api_key"})
    for name in settings:
        if name not in _CLIENT_NAMES and name not in _OPTION_NAMES:
            raise unexpected_keyword(
                "MixlayerEmbedder", name, known, f"it takes: {', '.join(known)}"
            )
    client = {k: v for k, v in settings.items() if k in _CLIENT_NAMES}
    options = {k: v for k, v in settings.items() if k in _OPTION_NAMES}
    return client, options


#: Texts per Ray batch handed to one embedder call: eight full requests, sent at once by the
#: actor's client (one request per call would leave each actor waiting on one round trip).
DEFAULT_RAY_BATCH_SIZE = 16384


@ray.remote(num_cpus=0)
class UsageTally:
    """The service's usage over a whole job: every embedder given it (``usage_tally=``) adds
    each call's tokens, requests, retries and 429s; ``totals()`` reads them::

        tally = UsageTally.remote()
        embed_dataset(ds, usage_tally=tally).write_parquet(...)
        print(ray.get(tally.totals.remote()))
    """

    def __init__(self) -> None:
        self._usage = UsageTracker()

    def add(
        self, prompt_tokens: int, total_tokens: int, requests: int, retries: int, limited: int
    ) -> None:
        self._usage.add(
            Usage(prompt_tokens, total_tokens),
            requests=requests,
            retries=retries,
            rate_limited=limited,
        )

    def totals(self) -> dict[str, int]:
        usage = self._usage
        return {
            "prompt_tokens": usage.prompt_tokens,
            "total_tokens": usage.total_tokens,
            "requests": usage.requests,
            "retries": usage.retries,
            "rate_limited": usage.rate_limited,
        }


@ray.remote(num_cpus=0)
class SharedRateBudget:
    """One ``RatePacer`` for a whole job: every embedder books its request starts here, so N
    actors against one per-key limit share it instead of multiplying their rate by N.

    ``clock``: the budget's time (``time.monotonic``; a test passes a frozen one to read the
    bookings as exact offsets). ``bookings()``: how many starts each caller booked.
    """

    def __init__(self, rate: float | None = None, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._pacer = RatePacer(rate, clock=clock)
        self._bookings: dict[str, int] = {}

    def reserve(self, caller: str = "") -> float:
        self._bookings[caller] = self._bookings.get(caller, 0) + 1
        return self._pacer.reserve()

    def on_success(self) -> None:
        self._pacer.on_success()

    def on_throttle(
        self, retry_after: float | None, sent_at_age: float, rounded: bool = False
    ) -> None:
        # Clocks differ between machines: the caller sends how long ago it sent the request.
        self._pacer.on_throttle(retry_after, self._clock() - sent_at_age, rounded)

    def rate(self) -> float | None:
        return self._pacer.rate

    def bookings(self) -> dict[str, int]:
        return dict(self._bookings)


class _RemotePacer:
    """A ``Pacer`` whose state lives in a ``SharedRateBudget`` actor."""

    def __init__(self, budget: Any) -> None:
        self._budget = budget
        #: Which actor books (None outside one): the budget counts bookings per caller.
        self._caller = ray.get_runtime_context().get_actor_id() or ""

    def reserve(self) -> float:
        return float(ray.get(self._budget.reserve.remote(self._caller)))

    def on_success(self) -> None:
        self._budget.on_success.remote()

    def on_throttle(self, retry_after: float | None, sent_at: float, rounded: bool = False) -> None:
        self._budget.on_throttle.remote(retry_after, time.monotonic() - sent_at, rounded)


class MixlayerEmbedder:
    """A callable class for ``Dataset.map_batches``: reads ``text_column``, adds
    ``output_column`` as ``fixed_size_list<float32>``. Takes every client setting and per-call
    option by the core's names (``EmbedderKwargs``); ``input_type`` defaults to "document".

    ``on_reject="raise"`` (default): a row the service refuses fails the job with that row's
    ``id_columns`` and the service's message. ``on_reject="null"``: refused rows get a null
    vector and the reason in ``error_column``, and the job goes on.

    Holds no key: it reads ``MIXLAYER_API_KEY`` (``api_key_env``) in the actor, so pickling it
    (Ray does, to ship it) carries none.
    """

    def __init__(
        self,
        *,
        text_column: str = "text",
        output_column: str = "embedding",
        on_reject: str = "raise",
        error_column: str = "embedding_error",
        id_columns: Sequence[str] = (),
        rate_budget: Any = None,
        api_key_env: str = API_KEY_ENV,
        usage_tally: Any = None,
        **settings: Unpack[EmbedderKwargs],
    ) -> None:
        if on_reject not in ("raise", "null"):
            raise ValueError(f'on_reject must be "raise" or "null", got {on_reject!r}')
        from . import MixlayerClient

        client_settings, options = _split_settings(dict(settings))
        key = environment_value(api_key_env)
        if key is None:
            raise RuntimeError(
                f"{api_key_env} is not set in this Ray worker: pass it with "
                f'ray.init(runtime_env={{"env_vars": {{"{api_key_env}": ...}}}}) or your '
                "cluster's secret mechanism"
            )
        self.text_column = text_column
        self.output_column = output_column
        self.on_reject = on_reject
        self.error_column = error_column
        self.id_columns = tuple(id_columns)
        self.usage_tally = usage_tally
        #: The per-call options of every batch (``_job_options``).
        self.options: OptionKwargs = _job_options(options)
        if rate_budget is not None:
            client_settings["pacer"] = _RemotePacer(rate_budget)
        # Model and URL as everywhere else: the argument, else the worker's environment, else
        # the same ConfigurationError the clients raise (no silent default model).
        self._client = MixlayerClient(api_key=key, **client_settings)
        # Checked now, in the actor, rather than at the first batch.
        spec = lookup_model(self._client.model)
        EmbedOptions(**self.options)._validate(spec)
        self._made_by = json.dumps(
            provenance(self._client.model, self.options, text_column), sort_keys=True
        )
        #: The job's one vector width (dimensions=, else the first answer's).
        self._widths = VectorWidth(self.options.get("dimensions"))
        #: The width of a batch where no row could be embedded, before any answer.
        self._model_width: int | None = spec.max_dimensions if spec else None

    def __call__(self, batch: pa.Table | dict[str, Any]) -> pa.Table:
        from . import InputRejectedError

        table = batch if isinstance(batch, pa.Table) else pa.table(batch)
        texts = table.column(self.text_column).to_pylist()
        # Rows that cannot be sent (None, not a string, empty, not valid Unicode) are judged
        # here, by the same rule as mixlayer-embed, and never sent.
        errors: list[str | None] = [problem_of(text) for text in texts]
        bad = [i for i, e in enumerate(errors) if e is not None]
        if bad and self.on_reject == "raise":
            reason = f"{len(bad)} row(s) cannot be sent"
            raise RuntimeError(self._describe(bad, reason, table, errors))
        sendable = [i for i, e in enumerate(errors) if e is None]
        got: list[Any] = []
        if sendable:
            try:
                with tracking(UsageTracker()) as call:
                    try:
                        sent = self._client.embed_array(
                            [texts[i] for i in sendable], **self.options
                        )
                    finally:
                        self._report(call)
                got = list(sent.vectors)
            except InputRejectedError as exc:
                if self.on_reject == "raise":
                    rows = [sendable[i] for i in exc.indexes]
                    reason = f"the service refused {len(rows)} row(s) ({exc.code}: {exc.detail})"
                    raise RuntimeError(self._describe(rows, reason, table)) from None
                got = list(exc.partial.embeddings)
                for i, row in enumerate(got):
                    if row is None:
                        errors[sendable[i]] = f"{exc.code}: {exc.detail}"
        # One width for every batch of the job (a service that changes width mid-job, as in
        # a rolling deploy without dimensions=, is a ResponseValidationError naming both);
        # a batch with no vector takes the earlier batches' width, else the model's.
        self._widths.check(next((len(row) for row in got if row is not None), None))
        width = self._widths.known or self._model_width
        vectors = np.zeros((len(texts), width or 1), dtype=np.float32)
        for i, row in zip(sendable, got, strict=True):
            if row is not None:
                vectors[i] = row
        flat = pa.array(vectors.reshape(-1), type=pa.float32())
        mask = pa.array([e is not None for e in errors]) if any(errors) else None
        column = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1], mask=mask)
        # What made these vectors travels with them into the written Parquet: resume_from=
        # refuses to complete a folder made with other settings.
        field = pa.field(self.output_column, column.type, metadata={PROVENANCE: self._made_by})
        table = table.append_column(field, column)
        if self.on_reject == "null":
            table = table.append_column(self.error_column, pa.array(errors, type=pa.string()))
        return table

    def _report(self, call: UsageTracker) -> None:
        if self.usage_tally is not None:
            # Waited for (one round trip a batch), so totals() read after the job has them all.
            counts = (call.prompt_tokens, call.total_tokens, call.requests, call.retries)
            ray.get(self.usage_tally.add.remote(*counts, call.rate_limited))

    def _describe(
        self,
        indexes: Sequence[int],
        reason: str,
        table: pa.Table,
        why: Sequence[str | None] = (),
    ) -> str:
        """The failure's message: each bad row's id (its place in the batch without
        ``id_columns``) and, where known, what is wrong with it."""
        rows = []
        for index in indexes[:10]:
            ids = {c: table.column(c)[index].as_py() for c in self.id_columns}
            named = str(ids) if ids else f"batch row {index} (pass id_columns to name it)"
            rows.append(f"{named} ({why[index]})" if index < len(why) and why[index] else named)
        return (
            f"{reason}: {', '.join(rows)}. Pass on_reject='null' to give them a null vector "
            f"and go on."
        )

    def __reduce__(self) -> Any:  # pragma: no cover - Ray builds actors from the class
        raise TypeError("MixlayerEmbedder holds a live client; pass the class to map_batches")


def _worker_environment(name: str) -> str | None:
    """A variable as the workers will see it: this process's, else the job's runtime_env's."""
    value = environment_value(name)
    if value is None and ray.is_initialized():
        runtime_env = ray.get_runtime_context().runtime_env or {}
        value = (runtime_env.get("env_vars") or {}).get(name)
    return value


def _job_options(options: Mapping[str, Any]) -> OptionKwargs:
    """A job's per-call options: corpus text goes as "document" unless told (texts given an
    instruction, as queries)."""
    return {
        "input_type": bulk_input_type(options.get("instruction")),
        **options,  # type: ignore[typeddict-item]  # names checked by _split_settings
    }


def _check_on_driver(
    ds: ray.data.Dataset, text_column: str, embedder_options: dict[str, Any]
) -> dict[str, Any]:
    """Every option value, and the text and id columns, checked before any actor starts (a
    bad one failed in the workers, under pages of Ray tracebacks). Returns what the vectors
    will be made with (``_provenance``), the model as far as the driver can tell."""
    on_reject = embedder_options.get("on_reject", "raise")
    if on_reject not in ("raise", "null"):
        raise ValueError(f'on_reject must be "raise" or "null", got {on_reject!r}')
    client, options = _split_settings(
        {k: v for k, v in embedder_options.items() if k not in _EMBEDDER_OWN}
    )
    model = client.get("model") or _worker_environment(MODEL_ENV)
    job_options = _job_options(options)
    call = EmbedOptions(**job_options)
    call._validate(lookup_model(model) if isinstance(model, str) else None)
    check_client_config(ClientConfig(**client))
    schema = ds.schema(fetch_if_missing=False)
    if schema is not None:
        names = list(schema.names)
        for column in [text_column, *embedder_options.get("id_columns", ())]:
            if column not in names:
                raise ValueError(
                    f"the dataset has no column {column!r}; its columns are: "
                    + ", ".join(repr(n) for n in names)
                )
    return provenance(model or "", job_options, text_column)


def _check_key_reaches_workers(api_key_env: str) -> None:
    """Fail on the driver, at once, when no key can reach the workers: not in this process's
    environment nor in the job's ``runtime_env`` (otherwise every actor fails after Ray's
    retries, ~100 lines of traceback later)."""
    if _worker_environment(api_key_env) is not None:
        return
    raise ConfigurationError(
        f"{api_key_env} is set neither here nor in the job's runtime_env: the embedders read "
        f"the key from their own environment. Set {api_key_env} on the worker nodes (your "
        f"cluster's secret mechanism), or pass it with "
        f'ray.init(runtime_env={{"env_vars": {{"{api_key_env}": ...}}}}) (Ray then records it '
        "in its runtime_env logs; see the README)."
    )


def embed_dataset(
    ds: ray.data.Dataset,
    *,
    text_column: str = "text",
    output_column: str = "embedding",
    concurrency: int = 2,
    batch_size: int = DEFAULT_RAY_BATCH_SIZE,
    request_size: int = DEFAULT_BATCH_SIZE,
    shared_rate_limit: bool = True,
    rate: float | None = None,
    resume_from: str | None = None,
    **embedder_options: Any,
) -> ray.data.Dataset:
    """``ds`` with an ``output_column`` of float32 vectors, embedded by ``concurrency`` actors.

    Each actor gets ``batch_size`` rows at a time and sends them as requests of
    ``request_size`` texts, up to ``max_concurrency`` (an embedder option, default 8) at once.

    ``shared_rate_limit``: the actors book their requests in one ``SharedRateBudget`` (given a
    ``rate`` in requests/s, or learning it from the service's 429s), so the job as a whole
    keeps to the key's limit; without it, each actor's client paces itself at ``rate``.
    Every other keyword (a client setting or a per-call option: ``EmbedderKwargs``) goes to
    ``MixlayerEmbedder``, checked here, before any actor starts.

    ``resume_from``: the Parquet output (a folder, local or ``s3://``…) of an earlier run of
    the same job that failed part-way. Rows whose id (``id_columns``, one column of unique
    ids) is already there are dropped before embedding, so writing the result into that same
    folder (``write_parquet`` names its files per run) completes it: every row once, and no
    request for a row already written.
    """
    made_with = _check_on_driver(ds, text_column, embedder_options)
    _check_key_reaches_workers(embedder_options.get("api_key_env", API_KEY_ENV))
    if request_size > MAX_BATCH_SIZE:
        raise ValueError(f"request_size must be at most {MAX_BATCH_SIZE}, got {request_size}")
    budget = SharedRateBudget.remote(rate) if shared_rate_limit else None  # type: ignore[attr-defined]
    if not shared_rate_limit and rate is not None:
        embedder_options["rate"] = rate
    if resume_from is not None:
        id_columns = embedder_options.get("id_columns", ())
        ds = without_written_rows(ds, resume_from, id_columns, output_column, made_with)
    return ds.map_batches(
        MixlayerEmbedder,
        fn_constructor_kwargs={
            "text_column": text_column,
            "output_column": output_column,
            "rate_budget": budget,
            "batch_size": min(request_size, batch_size),
            **embedder_options,
        },
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=concurrency),
        num_cpus=0.5,
    )
