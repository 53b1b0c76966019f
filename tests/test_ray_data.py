"""Ray Data on a local cluster (2 CPUs) against an emulator this module starts and stops."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

ray = pytest.importorskip("ray")  # the ray extra is part of the dev install: CI runs these

from mixlayer_embeddings import InvalidParameterError, MixlayerClient  # noqa: E402
from mixlayer_embeddings.emulator import Emulator  # noqa: E402
from mixlayer_embeddings.ray_data import (  # noqa: E402
    MixlayerEmbedder,
    SharedRateBudget,
    embed_dataset,
)

# Ray's own modules warn about their own deprecated settings while starting; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

MODEL = "qwen/qwen3-embedding-8b"
POISON = "x " * 40_000


@pytest.fixture(scope="module")
def cluster():
    with Emulator() as emu:
        ray.init(
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            runtime_env={
                "env_vars": {
                    "MIXLAYER_API_KEY": emu.api_key,
                    "MIXLAYER_BASE_URL": emu.base_url,
                    "MIXLAYER_EMBEDDING_MODEL": MODEL,
                }
            },
        )
        ray.data.DataContext.get_current().enable_progress_bars = False
        try:
            yield emu
        finally:
            ray.shutdown()


def dataset(texts: list[str]):
    return ray.data.from_items([{"id": f"doc-{i}", "text": t} for i, t in enumerate(texts)])


def test_vectors_are_bit_identical_to_the_single_process_client(cluster) -> None:
    texts = [f"passage {i} about bees" for i in range(3000)]
    out = embed_dataset(dataset(texts), dimensions=64, concurrency=2, batch_size=500)
    table = out.to_arrow_refs()
    table = pa.concat_tables(ray.get(table)).sort_by("id")
    column = table.column("embedding").combine_chunks()
    assert pa.types.is_fixed_size_list(column.type) and column.type.value_type == pa.float32()
    vectors = column.flatten().to_numpy().reshape(-1, 64)
    order = sorted(range(len(texts)), key=lambda i: f"doc-{i}")
    with MixlayerClient(api_key=cluster.api_key, model=MODEL, base_url=cluster.base_url) as client:
        expected = client.embed_array([texts[i] for i in order], dimensions=64).vectors
    assert np.array_equal(vectors, expected)


def test_no_key_in_the_pickled_udf_or_the_plan(cluster) -> None:
    pickled = ray.cloudpickle.dumps(
        embed_dataset(dataset(["a", "b"]), dimensions=64, concurrency=1)
    )
    assert cluster.api_key.encode() not in pickled
    assert cluster.api_key.encode() not in ray.cloudpickle.dumps(MixlayerEmbedder)


def test_refused_rows_fail_the_job_naming_them(cluster) -> None:
    texts = ["fine"] * 10
    texts[3] = POISON
    with pytest.raises(Exception, match=r"refused 1 row\(s\) .*'id': 'doc-3'"):
        embed_dataset(dataset(texts), dimensions=64, concurrency=1, id_columns=["id"]).materialize()


def test_refused_rows_can_get_a_null_vector_instead(cluster) -> None:
    texts = [f"fine {i}" for i in range(10)]
    texts[3] = POISON
    rows = (
        embed_dataset(dataset(texts), dimensions=64, concurrency=1, on_reject="null")
        .sort("id")
        .take_all()
    )
    assert rows[3]["embedding"] is None and rows[3]["embedding_error"].startswith("invalid_input")
    assert all(len(r["embedding"]) == 64 for i, r in enumerate(rows) if i != 3)


@ray.remote
def _book(budget, count: int) -> list[float]:
    return [ray.get(budget.reserve.remote("task")) for _ in range(count)]


def test_a_shared_budget_spaces_bookings_from_many_callers_as_one() -> None:
    # A frozen clock: each booking's wait is exactly its offset in the one shared schedule.
    budget = SharedRateBudget.remote(10.0, clock=lambda: 0.0)
    waits = sorted(w for part in ray.get([_book.remote(budget, 5) for _ in range(4)]) for w in part)
    assert waits == pytest.approx([i / 10.0 for i in range(20)])


def test_every_actor_of_a_job_books_in_the_shared_budget(cluster) -> None:
    budget = SharedRateBudget.remote(1000.0)
    served_before = cluster.state.stats()["requests"]
    texts = [f"passage {i}" for i in range(200)]
    ds = dataset(texts).repartition(4)
    embedded = ds.map_batches(
        MixlayerEmbedder,
        fn_constructor_kwargs={"rate_budget": budget, "batch_size": 25, "dimensions": 32},
        batch_size=50,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=2),
        num_cpus=0.5,
    ).take_all()
    assert len(embedded) == 200
    bookings = ray.get(budget.bookings.remote())
    served = cluster.state.stats()["requests"] - served_before
    assert sum(bookings.values()) == served  # every request of every actor was booked...
    # ...by both actors themselves (two callers, each with bookings), not by the driver.
    assert len(bookings) == 2 and all(count > 0 for count in bookings.values()), bookings
    assert "" not in bookings


def test_an_unknown_or_key_argument_is_refused_before_any_actor_starts(cluster) -> None:
    with pytest.raises(TypeError, match=r"'dimension' .*did you mean 'dimensions'"):
        embed_dataset(dataset(["a"]), dimension=64)
    with pytest.raises(TypeError, match="takes no api_key"):
        embed_dataset(dataset(["a"]), api_key="sk-leak")


def test_every_option_and_setting_reaches_the_actor(cluster) -> None:
    cluster.state.reset()
    rows = embed_dataset(
        dataset(["a", "b"]),
        concurrency=1,
        dimensions=32,
        normalize=True,
        truncate=True,
        input_type="query",
        extra_body={"user": "ray"},
        max_retries=0,
        timeout=30.0,
    ).take_all()
    assert len(rows) == 2
    body = cluster.state.last_body
    assert {k: body[k] for k in ("dimensions", "normalize", "truncate", "input_type", "user")} == {
        "dimensions": 32,
        "normalize": True,
        "truncate": True,
        "input_type": "query",
        "user": "ray",
    }


def test_an_instruction_makes_every_row_a_query_and_is_refused_for_documents(cluster) -> None:
    task = "Given a question, retrieve the passage that answers it"
    with pytest.raises(InvalidParameterError, match="instruction is for queries"):
        embed_dataset(dataset(["a"]), instruction=task, input_type="document")
    cluster.state.reset()
    rows = embed_dataset(dataset(["a", "b"]), concurrency=1, instruction=task).take_all()
    assert len(rows) == 2
    body = cluster.state.last_body
    assert body["input"] == [f"Instruct: {task}\nQuery:a", f"Instruct: {task}\nQuery:b"]
    assert "input_type" not in body


@pytest.fixture
def in_process(mixlayer_emulator, monkeypatch):
    """An embedder built in this process (as an actor builds it), against the emulator."""
    monkeypatch.setenv("MIXLAYER_API_KEY", mixlayer_emulator.api_key)
    monkeypatch.setenv("MIXLAYER_BASE_URL", mixlayer_emulator.base_url)
    monkeypatch.setenv("MIXLAYER_EMBEDDING_MODEL", MODEL)
    return mixlayer_emulator


def test_every_kind_of_bad_row_gets_a_null_vector_and_its_reason(in_process) -> None:
    # (A lone surrogate cannot be in an Arrow string: Ray never sees one.)
    texts = ["fine", None, "", "  ", "also fine", POISON]
    embedder = MixlayerEmbedder(on_reject="null", dimensions=32)
    table = embedder(pa.table({"id": [f"doc-{i}" for i in range(6)], "text": texts}))
    vectors = table.column("embedding").to_pylist()
    errors = table.column("embedding_error").to_pylist()
    assert [v is None for v in vectors] == [False, True, True, False, False, True]
    assert errors[1].startswith("the text is NoneType") and errors[2] == "empty text (not sent)"
    assert errors[3] is None  # a text of spaces is a text, as in the core and mixlayer-embed
    assert errors[5].startswith("invalid_input")
    assert len(vectors[0]) == len(vectors[3]) == len(vectors[4]) == 32
    assert in_process.state.items <= 3 + 2  # the bad rows were never sent (the poison's bisect)


def test_a_batch_where_every_row_is_bad_is_all_nulls_not_a_stop_iteration(in_process) -> None:
    embedder = MixlayerEmbedder(on_reject="null")
    table = embedder(pa.table({"text": [None, "", POISON]}))
    column = table.column("embedding")
    assert column.null_count == 3
    assert column.type.list_size == 4096  # the model's own size, without dimensions=


def test_a_bad_row_fails_the_job_naming_its_id_not_its_place_in_the_batch(in_process) -> None:
    embedder = MixlayerEmbedder(dimensions=32, id_columns=["id"])
    with pytest.raises(RuntimeError, match=r"1 row\(s\) cannot be sent: \{'id': 'doc-1'\}"):
        embedder(pa.table({"id": ["doc-0", "doc-1"], "text": ["fine", None]}))


def test_no_key_anywhere_fails_on_the_driver_at_once(cluster) -> None:
    from mixlayer_embeddings import ConfigurationError

    # A variable neither this process nor the cluster's runtime_env has.
    with pytest.raises(ConfigurationError, match="MIXLAYER_KEY_NOWHERE is set neither here nor"):
        embed_dataset(dataset(["a"]), dimensions=32, api_key_env="MIXLAYER_KEY_NOWHERE")
    # The cluster's runtime_env holds MIXLAYER_API_KEY: the driver's own may be unset.
    embed_dataset(dataset(["a"]), dimensions=32)


def test_a_jobs_usage_is_tallied_across_its_actors(cluster) -> None:
    from mixlayer_embeddings.ray_data import UsageTally

    cluster.state.reset()
    tally = UsageTally.remote()  # type: ignore[attr-defined]
    texts = [f"text number {i} about bread" for i in range(300)]
    rows = embed_dataset(
        dataset(texts), dimensions=32, concurrency=2, batch_size=50, usage_tally=tally
    ).take_all()
    assert len(rows) == 300
    totals = ray.get(tally.totals.remote())
    served = cluster.state.stats()
    assert totals["total_tokens"] == served["tokens"] > 0
    assert totals["requests"] == served["requests"]


def test_a_failed_job_resumes_from_what_it_wrote(cluster, tmp_path) -> None:
    texts = [f"passage {i} about rye" for i in range(300)]
    out = str(tmp_path / "embedded")
    # What a job that failed half-way leaves behind: the parts it wrote.
    embed_dataset(dataset(texts[:150]), dimensions=32, concurrency=1).write_parquet(out)
    cluster.state.reset()
    full = dataset(texts)
    resumed = embed_dataset(full, dimensions=32, concurrency=1, id_columns=["id"], resume_from=out)
    resumed.write_parquet(out)
    assert cluster.state.stats()["items"] == 150  # only the rows not written
    import pyarrow.parquet as pq

    table = pq.read_table(out).sort_by("id")
    ids = table.column("id").to_pylist()
    assert sorted(ids) == sorted(f"doc-{i}" for i in range(300))  # every row, once
    order = [int(i.split("-")[1]) for i in ids]
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    with MixlayerClient(api_key=cluster.api_key, base_url=cluster.base_url, model=MODEL) as client:
        expected = client.embed_array([texts[i] for i in order], dimensions=32,
                                      input_type="document").vectors  # fmt: skip
    assert np.array_equal(vectors, expected)


def test_resume_needs_one_id_column(cluster) -> None:
    with pytest.raises(ValueError, match="resume_from needs id_columns"):
        embed_dataset(dataset(["a"]), dimensions=32, resume_from="/nowhere")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dimensions": 5}, "dimensions"),
        ({"input_type": "passage"}, "input_type"),
        ({"text_column": "body"}, "no column 'body'"),
        ({"id_columns": ["key"]}, "no column 'key'"),
        ({"on_reject": "skip"}, "on_reject"),
        ({"max_concurrency": 0}, "max_concurrency"),
    ],
)
def test_every_option_value_and_column_is_checked_on_the_driver(cluster, options, message) -> None:
    # They failed later, in the workers, under pages of Ray tracebacks.
    with pytest.raises(ValueError, match=message):
        embed_dataset(dataset(["a"]), concurrency=1, **options)


def test_a_bad_rows_failure_names_its_id_and_what_is_wrong(in_process) -> None:
    embedder = MixlayerEmbedder(dimensions=32, id_columns=["id"])
    with pytest.raises(RuntimeError, match=r"\{'id': 'doc-1'\} \(the text is NoneType"):
        embedder(pa.table({"id": ["doc-0", "doc-1"], "text": ["fine", None]}))


@pytest.fixture
def written(cluster, tmp_path) -> str:
    out = str(tmp_path / "embedded")
    embed_dataset(dataset(["a", "b", "c"]), dimensions=32, concurrency=1).write_parquet(out)
    return out


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"dimensions": 64}, "dimensions: 32 there, 64 now"),
        ({"dimensions": 32, "input_type": "query"}, "input_type: 'document' there, 'query' now"),
    ],
)
def test_resume_refuses_a_folder_made_with_other_settings(written, options, named) -> None:
    with pytest.raises(ValueError, match=named):
        embed_dataset(dataset(["a"]), concurrency=1, id_columns=["id"], resume_from=written,
                      **options)  # fmt: skip


def test_resume_refuses_duplicate_ids_in_the_input(written) -> None:
    rows = ray.data.from_items([{"id": "doc-9", "text": "x"}, {"id": "doc-9", "text": "y"}])
    with pytest.raises(ValueError, match="1 duplicate id"):
        embed_dataset(rows, dimensions=32, concurrency=1, id_columns=["id"], resume_from=written)


def test_resume_refuses_a_mixlayer_embed_folder_in_one_line(cluster, tmp_path) -> None:
    folder = tmp_path / "cli-output"
    folder.mkdir()
    (folder / "_manifest.json").write_text("{}")
    with pytest.raises(ValueError, match="is a mixlayer-embed folder"):
        embed_dataset(dataset(["a"]), dimensions=32, id_columns=["id"], resume_from=str(folder))


def test_a_width_change_between_batches_stops_the_job_naming_both_widths(
    in_process, monkeypatch
) -> None:
    from mixlayer_embeddings import ResponseValidationError

    embedder = MixlayerEmbedder()  # no dimensions: the service's own width
    first = embedder(pa.table({"text": ["a", "b"]}))
    assert first.column("embedding").type.list_size == 4096
    # The deploy behind the model id now answers 1024-wide vectors.
    real = embedder._client.embed_array
    monkeypatch.setattr(
        embedder._client,
        "embed_array",
        lambda texts, **kw: real(texts, **{**kw, "dimensions": 1024}),
    )
    with pytest.raises(ResponseValidationError, match="1024 where earlier answers had length 4096"):
        embedder(pa.table({"text": ["c"]}))
