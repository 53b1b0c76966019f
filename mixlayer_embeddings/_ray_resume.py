"""``embed_dataset(resume_from=...)``: what an earlier run of a Ray job wrote, checked before
it is completed. Vectors carry what made them (``PROVENANCE``, in the output column's field
metadata, so it reaches every Parquet file the job writes); a folder made with another model,
``dimensions``, ``input_type`` or text column is refused in one line, and so are duplicate ids
on either side (resuming drops every row whose id was written). Imported by ``ray_data``
only."""

from __future__ import annotations

import json
import os
from typing import Any

import pyarrow as pa
import ray

from ._fingerprint import fingerprint, vector_recipe
from ._options import EmbedOptions

__all__ = ["PROVENANCE", "provenance", "without_written_rows"]


#: The output column's field metadata key holding what made its vectors (JSON).
PROVENANCE = b"mixlayer.provenance"


def provenance(model: str, options: Any, text_column: str) -> dict[str, Any]:
    """What makes a vector differ: the model, the per-call options, the text column; and
    their ``fingerprint`` (``_fingerprint``), the same as an adapter's made the same way."""
    made_with = {
        "model": model,
        "text_column": text_column,
        **{k: v for k, v in dict(options).items() if k != "extra_body"},
        "extra_body": dict(options).get("extra_body") or {},
    }
    if isinstance(model, str) and model:  # the driver may not know the workers' model
        made_with["fingerprint"] = fingerprint(vector_recipe(model, EmbedOptions(**options)))
    return made_with


def without_written_rows(
    ds: ray.data.Dataset,
    folder: str,
    id_columns: Any,
    output_column: str,
    made_with: dict[str, Any],
) -> ray.data.Dataset:
    """``ds`` without the rows whose id an earlier run wrote to ``folder`` (read here, on the
    driver, once: only the id column). The folder must hold vectors made as this job makes
    them, and ids must be unique on both sides (or a copy never embedded would be dropped)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    if len(id_columns) != 1:
        raise ValueError(
            "resume_from needs id_columns=[...] naming one column of unique ids, "
            f"got {list(id_columns)!r}"
        )
    (column,) = id_columns
    if os.path.exists(os.path.join(folder, "_manifest.json")):
        raise ValueError(
            f"resume_from={folder!r} is a mixlayer-embed folder: resume it with "
            "mixlayer-embed, or pass the folder an earlier Ray job wrote"
        )
    try:
        written_set = pads.dataset(folder, format="parquet")
    except FileNotFoundError:
        return ds  # nothing written yet: the whole job runs
    _check_written_with(written_set.schema, folder, output_column, made_with)
    written = written_set.to_table(columns=[column])[column]
    if len(written) == 0:
        return ds
    done = written.combine_chunks()
    copies = len(done) - pc.count_distinct(done, mode="all").as_py()
    if copies:
        raise ValueError(
            f"resume_from={folder!r} holds {copies} duplicate id(s) in {column!r}: resuming "
            "needs ids that name one row each"
        )
    refs = ds.select_columns([column]).to_arrow_refs()
    wanted = pa.concat_tables(ray.get(refs))[column] if refs else pa.array([])
    copies = len(wanted) - pc.count_distinct(wanted, mode="all").as_py()
    if copies:
        raise ValueError(
            f"the dataset has {copies} duplicate id(s) in {column!r}: resume_from drops every "
            "row whose id was written, so a copy never embedded would be lost; make the ids "
            "unique"
        )

    def drop_written(batch: pa.Table) -> pa.Table:
        return batch.filter(pc.invert(pc.is_in(batch[column], value_set=done)))

    return ds.map_batches(drop_written, batch_format="pyarrow")


def _check_written_with(
    schema: pa.Schema, folder: str, output_column: str, made_with: dict[str, Any]
) -> None:
    """Refuse, in one line, a folder whose vectors another model, ``dimensions``,
    ``input_type`` or column layout made."""
    if output_column not in schema.names:
        raise ValueError(
            f"resume_from={folder!r} has no column {output_column!r} (its columns: "
            f"{', '.join(schema.names)}): it was not written by this job"
        )
    field = schema.field(output_column)
    saved = (field.metadata or {}).get(PROVENANCE)
    if saved is None:
        return  # written before vectors carried their provenance: the ids alone are checked
    before = json.loads(saved)
    # The fingerprint is derived from the rest (and absent from an older job's output).
    changed = sorted(
        k
        for k in {*before, *made_with} - {"fingerprint"}
        if before.get(k) != made_with.get(k) and made_with.get(k)
    )
    if changed:
        shown = ", ".join(
            f"{k}: {before.get(k)!r} there, {made_with.get(k)!r} now" for k in changed
        )
        raise ValueError(
            f"resume_from={folder!r} holds vectors made with other settings ({shown}); "
            "write into another folder"
        )
