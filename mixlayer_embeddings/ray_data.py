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

import os
import time
from collections.abc import Sequence
from typing import Any

from ._config import API_KEY_ENV, BASE_URL_ENV, MODEL_ENV, QWEN3_EMBEDDING_8B
from ._extras import require
from ._pacing import RatePacer

require("ray", "ray", "ray.data", "pyarrow", "numpy", feature="mixlayer_embeddings.ray_data")

import numpy as np  # noqa: E402 - after the extra is known present
import pyarrow as pa  # noqa: E402
import ray  # noqa: E402

__all__ = ["MixlayerEmbedder", "SharedRateBudget", "embed_dataset"]

#: Texts per Ray batch handed to one embedder call: eight full requests, sent at once by the
#: actor's client (one request per call would leave each actor waiting on one round trip).
DEFAULT_RAY_BATCH_SIZE = 16384


@ray.remote(num_cpus=0)
class SharedRateBudget:
    """One ``RatePacer`` for a whole job: every embedder books its request starts here, so N
    actors against one per-key limit share it instead of multiplying their rate by N."""

    def __init__(self, rate: float | None = None) -> None:
        self._pacer = RatePacer(rate)

    def reserve(self) -> float:
        return self._pacer.reserve()

    def on_success(self) -> None:
        self._pacer.on_success()

    def on_throttle(self, retry_after: float | None, sent_at_age: float) -> None:
        # Clocks differ between machines: the caller sends how long ago it sent the request.
        self._pacer.on_throttle(retry_after, sent_at=time.monotonic() - sent_at_age)

    def rate(self) -> float | None:
        return self._pacer.rate


class _RemotePacer:
    """A ``Pacer`` whose state lives in a ``SharedRateBudget`` actor."""

    def __init__(self, budget: Any) -> None:
        self._budget = budget

    def reserve(self) -> float:
        return float(ray.get(self._budget.reserve.remote()))

    def on_success(self) -> None:
        self._budget.on_success.remote()

    def on_throttle(self, retry_after: float | None, sent_at: float) -> None:
        self._budget.on_throttle.remote(retry_after, time.monotonic() - sent_at)


class MixlayerEmbedder:
    """A callable class for ``Dataset.map_batches``: reads ``text_column``, adds
    ``output_column`` as ``fixed_size_list<float32>``.

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
        model: str | None = None,
        base_url: str | None = None,
        dimensions: int | None = None,
        input_type: str | None = "document",
        batch_size: int = 2048,
        max_concurrency: int = 8,
        max_retries: int = 3,
        on_reject: str = "raise",
        error_column: str = "embedding_error",
        id_columns: Sequence[str] = (),
        rate_budget: Any = None,
        api_key_env: str = API_KEY_ENV,
    ) -> None:
        if on_reject not in ("raise", "null"):
            raise ValueError(f'on_reject must be "raise" or "null", got {on_reject!r}')
        from . import MixlayerClient

        key = os.environ.get(api_key_env, "").strip()
        if not key:
            raise RuntimeError(
                f"{api_key_env} is not set in this Ray worker: pass it with "
                f'ray.init(runtime_env={{"env_vars": {{"{api_key_env}": ...}}}}) or your '
                "cluster's secret mechanism"
            )
        self.text_column = text_column
        self.output_column = output_column
        self.dimensions = dimensions
        self.input_type = input_type
        self.on_reject = on_reject
        self.error_column = error_column
        self.id_columns = tuple(id_columns)
        self._client = MixlayerClient(
            api_key=key,
            model=model or os.environ.get(MODEL_ENV) or QWEN3_EMBEDDING_8B.model_id,
            base_url=base_url or os.environ.get(BASE_URL_ENV) or None,
            batch_size=batch_size,
            max_concurrency=max_concurrency,
            max_retries=max_retries,
            pacer=_RemotePacer(rate_budget) if rate_budget is not None else None,
        )

    def __call__(self, batch: pa.Table | dict[str, Any]) -> pa.Table:
        from . import InputRejectedError

        table = batch if isinstance(batch, pa.Table) else pa.table(batch)
        texts = table.column(self.text_column).to_pylist()
        errors: list[str | None] = [None] * len(texts)
        try:
            result = self._client.embed_array(
                texts, dimensions=self.dimensions, input_type=self.input_type
            )
            vectors = result.vectors
        except InputRejectedError as exc:
            if self.on_reject == "raise":
                raise RuntimeError(self._describe(exc, table)) from None
            rows = exc.partial.embeddings
            width = next(len(r) for r in rows if r is not None)
            vectors = np.zeros((len(texts), width), dtype=np.float32)
            for i, row in enumerate(rows):
                if row is None:
                    errors[i] = f"{exc.code}: {exc.detail}"
                else:
                    vectors[i] = row
        flat = pa.array(vectors.reshape(-1), type=pa.float32())
        mask = pa.array([e is not None for e in errors]) if any(errors) else None
        column = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1], mask=mask)
        table = table.append_column(self.output_column, column)
        if self.on_reject == "null":
            table = table.append_column(self.error_column, pa.array(errors, type=pa.string()))
        return table

    def _describe(self, exc: Any, table: pa.Table) -> str:
        rows = []
        for index in exc.indexes[:10]:
            ids = {c: table.column(c)[index].as_py() for c in self.id_columns}
            rows.append(str(ids) if ids else f"batch row {index}")
        return (
            f"the service refused {len(exc.indexes)} row(s) ({exc.code}: {exc.detail}): "
            f"{', '.join(rows)}. Pass on_reject='null' to give them a null vector and go on."
        )

    def __reduce__(self) -> Any:  # pragma: no cover - Ray builds actors from the class
        raise TypeError("MixlayerEmbedder holds a live client; pass the class to map_batches")


def embed_dataset(
    ds: ray.data.Dataset,
    *,
    text_column: str = "text",
    output_column: str = "embedding",
    concurrency: int = 2,
    batch_size: int = DEFAULT_RAY_BATCH_SIZE,
    request_size: int = 2048,
    shared_rate_limit: bool = True,
    rate: float | None = None,
    **embedder_options: Any,
) -> ray.data.Dataset:
    """``ds`` with an ``output_column`` of float32 vectors, embedded by ``concurrency`` actors.

    Each actor gets ``batch_size`` rows at a time and sends them as requests of
    ``request_size`` texts, up to ``max_concurrency`` (an embedder option, default 8) at once.

    ``shared_rate_limit``: the actors book their requests in one ``SharedRateBudget`` (given a
    ``rate`` in requests/s, or learning it from the service's 429s), so the job as a whole
    keeps to the key's limit. Options go to ``MixlayerEmbedder``.
    """
    budget = SharedRateBudget.remote(rate) if shared_rate_limit else None  # type: ignore[attr-defined]
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
