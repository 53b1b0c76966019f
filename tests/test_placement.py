"""The placement rule (``_placement``): a vector is returned, yielded or written only for the
input it answers, in every path: lists, arrays, streams, the adapters and ``mixlayer-embed``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import KEY, MODEL, FakeService

import mixlayer_embeddings
import mixlayer_embeddings._bulk as bulk
from mixlayer_embeddings import MixlayerClient, ResponseValidationError
from mixlayer_embeddings.emulator import embed_items

LONG = "word " * 40_000  # over Qwen3 Embedding 8B's context window, as the emulator counts


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    return path


def rows_of(out: Path, fmt: str) -> tuple[list[int], np.ndarray]:
    if fmt == "parquet":
        table = pq.read_table(out).sort_by("row")
        vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
        return table.column("row").to_pylist(), vectors
    parts = sorted(out.glob("part-*[0-9].npy"))
    rows = np.concatenate([np.load(p.with_name(p.name[:-4] + ".rows.npy")) for p in parts])
    return rows.tolist(), np.concatenate([np.load(p) for p in parts])


@pytest.mark.parametrize("fmt", ["parquet", "npy"])
@pytest.mark.parametrize("at", [0, 5, 19])
def test_an_over_long_row_is_a_reject_and_every_other_row_keeps_its_own_vector(
    env, tmp_path, capsys, fmt, at
) -> None:
    # Without --dimensions: a request refused as a whole gave an empty array, the refused row
    # stayed on the queue, and every later row took the next row's vector (exit 0).
    texts = [f"short text {i}" for i in range(20)]
    texts[at] = LONG
    source = write_jsonl(tmp_path / "corpus.jsonl", texts)
    out = tmp_path / "out"
    args = [str(source), str(out), "--batch-size", "8", "--no-progress", "--format", fmt]
    assert bulk.main(args) == bulk.EXIT_REJECTS
    rows, vectors = rows_of(out, fmt)
    kept = [i for i in range(20) if i != at]
    assert rows == kept
    assert np.array_equal(vectors, embed_items([texts[i] for i in kept], input_type="document"))
    rejects = [json.loads(line) for line in (out / "_rejects.jsonl").read_text().splitlines()]
    assert [r["row"] for r in rejects] == [at]
    assert "context window" in rejects[0]["error"]
    assert "1 rejected row" in capsys.readouterr().err
    # A rerun finds the folder whole and sends nothing again.
    items = env.state.items
    assert bulk.main(args) == bulk.EXIT_REJECTS
    assert env.state.items == items


def test_a_stream_of_arrays_gives_a_refused_request_one_row_per_item(env) -> None:
    texts = ["one", LONG, "three"]
    with MixlayerClient(batch_size=1) as client:
        batches = list(client.iter_embed(texts, as_array=True, skip_rejected=True))
    assert [(b.start, b.stop) for b in batches] == [(0, 1), (1, 2), (2, 3)]
    assert list(batches[1].rejected) == [1]
    assert batches[1].embeddings.shape[0] == 1
    assert np.isnan(batches[1].embeddings).all()


class RollingDeploy(FakeService):
    """A service whose vectors change width after ``switch_after`` requests (no
    ``dimensions`` asked: a rolling deploy behind one model id)."""

    def __init__(self, switch_after: int, widths: tuple[int, int] = (8, 16)) -> None:
        super().__init__(dims=widths[0])
        self.switch_after = switch_after
        self.widths = widths

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.dims = self.widths[len(self.requests) >= self.switch_after]
        return super().__call__(request)


def rolling_client(switch_after: int, **settings: Any) -> MixlayerClient:
    transport = httpx.MockTransport(RollingDeploy(switch_after))
    settings = {"batch_size": 2, "max_concurrency": 1, **settings}
    return MixlayerClient(
        api_key=KEY, model=MODEL, http_client=httpx.Client(transport=transport), **settings
    )


CALLS = {
    "embed": lambda client, texts: client.embed(texts),
    "embed_array": lambda client, texts: client.embed_array(texts),
    "iter_embed": lambda client, texts: list(client.iter_embed(texts)),
    "iter_embed_array": lambda client, texts: list(client.iter_embed(texts, as_array=True)),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_a_width_change_between_requests_is_refused_naming_both_widths(call) -> None:
    texts = [f"t{i}" for i in range(6)]
    with rolling_client(switch_after=1) as client, pytest.raises(ResponseValidationError) as info:
        CALLS[call](client, texts)
    assert "length 16" in str(info.value)
    assert "length 8" in str(info.value)


def test_the_halves_of_a_split_request_must_agree_on_width() -> None:
    from mixlayer_embeddings._models import Usage
    from mixlayer_embeddings._response import ParsedBatch

    left = ParsedBatch([[0.0] * 8], "m", Usage())
    right = ParsedBatch([[0.0] * 16], "m", Usage())
    with pytest.raises(ResponseValidationError, match="16 after vectors of length 8"):
        left.joined(right)


def test_the_langchain_adapter_never_returns_mixed_widths(monkeypatch) -> None:
    from langchain_mixlayer import MixlayerEmbeddings

    transport = httpx.MockTransport(RollingDeploy(switch_after=1))
    embeddings = MixlayerEmbeddings(
        api_key=KEY,
        model=MODEL,
        batch_size=2,
        max_concurrency=1,
        http_client=httpx.Client(transport=transport),
    )
    with pytest.raises(ResponseValidationError):
        embeddings.embed_documents([f"t{i}" for i in range(6)])


@pytest.mark.parametrize("fmt", ["parquet", "npy"])
def test_mixlayer_embed_never_reshapes_a_wider_answer_into_rows(
    env, tmp_path, monkeypatch, capsys, fmt
) -> None:
    # --format npy wrote 9 vectors for 6 rows: a 16-wide answer reshaped into two 8-wide rows.
    real = mixlayer_embeddings.MixlayerClient

    class OnRollingDeploy(real):  # type: ignore[misc, valid-type]
        def __init__(self, **settings: Any) -> None:
            transport = httpx.MockTransport(RollingDeploy(switch_after=1))
            super().__init__(http_client=httpx.Client(transport=transport), **settings)

    monkeypatch.setattr(mixlayer_embeddings, "MixlayerClient", OnRollingDeploy)
    source = write_jsonl(tmp_path / "corpus.jsonl", [f"text {i}" for i in range(6)])
    out = tmp_path / "out"
    args = [str(source), str(out), "--batch-size", "3", "--max-concurrency", "1"]
    code = bulk.main([*args, "--no-progress", "--format", fmt])
    assert code == bulk.EXIT_FAILED
    assert "length 16" in capsys.readouterr().err
    rows, vectors = rows_of(out, fmt)
    assert rows == [0, 1, 2]
    assert vectors.shape == (3, 8)


def refusing_bad(service: FakeService) -> Any:
    """``service``, but a request holding the text "bad" is refused as invalid_input."""

    def handle(request: httpx.Request) -> httpx.Response:
        if "bad" in json.loads(request.content)["input"]:
            return httpx.Response(
                400, json={"error": {"message": "no", "type": "x", "code": "invalid_input"}}
            )
        return service(request)

    return handle


def test_copies_in_a_stream_with_a_refused_item_own_their_vectors() -> None:
    transport = httpx.MockTransport(refusing_bad(FakeService()))
    texts = ["same", "same", "bad", "other", "same"]
    with MixlayerClient(
        api_key=KEY, model=MODEL, http_client=httpx.Client(transport=transport), batch_size=8
    ) as client:
        (batch,) = client.iter_embed(texts, skip_rejected=True)
    assert list(batch.rejected) == [2]
    same = [batch.embeddings[i] for i in (0, 1, 4)]
    assert same[0] == same[1] == same[2]
    assert len({id(v) for v in same}) == 3  # each input owns its list
    same[0][0] = 99.0
    assert batch.embeddings[1][0] != 99.0
