"""``mixlayer-embed``'s folder as a state machine (``mixlayer_embeddings._bulk``'s table): one
test per cell, named ``test_<state>_<event>``, each ending with the folder holding exactly one
vector per current id, equal to a fresh embedding of its current text."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

import mixlayer_embeddings._bulk as bulk
from mixlayer_embeddings._bulk import swap as swap_module
from mixlayer_embeddings._bulk.lifecycle import State, state_of
from mixlayer_embeddings.emulator import embed_items

ARGS = ["--id-field", "doc_id", "--dimensions", "32", "--batch-size", "8", "--no-progress"]
BEFORE = {i: f"document {i} about topic {i % 7}" for i in range(40)}
AFTER = {
    **{k: v for k, v in BEFORE.items() if k not in (10, 25)},
    3: "document 3, rewritten",
    **{k: f"new document {k}" for k in range(40, 44)},
}


class Crash(BaseException):
    """Stands for kill -9 (no cleanup of ours runs: it is not an Exception)."""


def write(path: Path, corpus: dict[int, str]) -> Path:
    lines = "".join(json.dumps({"doc_id": k, "text": v}) + "\n" for k, v in corpus.items())
    path.write_text(lines, encoding="utf-8")
    return path


def embed(source: Path, out: Path, *extra: str, args: list[str] = ARGS) -> int:
    return bulk.main([str(source), str(out), *args, *extra])


def assert_holds(out: Path, corpus: dict[int, str], dimensions: int = 32) -> None:
    """One vector per current id, each a fresh embedding of its current text, in input order."""
    table = pq.read_table(out).sort_by("row")
    ids = table.column("id").to_pylist()
    assert ids == list(corpus)
    vectors = np.stack(table.column("embedding").to_numpy(zero_copy_only=False))
    fresh = embed_items(list(corpus.values()), dimensions=dimensions, input_type="document")
    assert np.array_equal(vectors, fresh)


def crash_when(monkeypatch: pytest.MonkeyPatch, should_crash: Any) -> None:
    """``os.replace`` raises ``Crash`` at the first call ``should_crash(src, dst, n)`` picks."""
    real = os.replace
    calls = 0

    def replace(src: Any, dst: Any) -> None:
        nonlocal calls
        calls += 1
        if should_crash(str(src), str(dst), calls):
            monkeypatch.setattr(os, "replace", real)
            raise Crash
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)


def into_state(state: State, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A folder in ``state``, made by real runs (and a crash), with the input at BEFORE
    (AFTER for the update states, whose update is of AFTER)."""
    source = write(tmp_path / "corpus.jsonl", BEFORE)
    out = tmp_path / "out"
    if state is State.EMPTY:
        return source, out
    if state is State.EMBEDDING:
        crash_when(monkeypatch, lambda src, dst, n: dst.endswith(".parquet") and n > 8)
    with pytest.raises(Crash) if state is State.EMBEDDING else _no_crash():
        embed(source, out)
    if state in (State.UPDATING, State.SWAPPING):
        write(source, AFTER)
        if state is State.UPDATING:
            crash_when(monkeypatch, lambda s, d, n: "_next/part" in d and n > 6)
        else:
            monkeypatch.setattr(swap_module, "exchange", crash)  # killed before the exchange
        with pytest.raises(Crash):
            embed(source, out, "--update")
    monkeypatch.setattr(swap_module, "exchange", real_exchange)
    assert state_of(out) is state
    return source, out


real_exchange = swap_module.exchange


def crash(*args: object) -> None:
    raise Crash


def assert_no_generation_left(out: Path) -> None:
    assert not (out / "_next").exists()
    assert not swap_module.staged_folder(out).exists()


class _no_crash:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


# -- EMPTY -------------------------------------------------------------------------------------


def test_empty_run(env, tmp_path, monkeypatch) -> None:
    source, out = into_state(State.EMPTY, tmp_path, monkeypatch)
    assert embed(source, out) == 0
    assert_holds(out, BEFORE)


def test_empty_update(env, tmp_path, monkeypatch) -> None:
    source, out = into_state(State.EMPTY, tmp_path, monkeypatch)
    assert embed(source, out, "--update") == 0  # a scheduled job's first night
    assert_holds(out, BEFORE)


def test_empty_restart(env, tmp_path, monkeypatch) -> None:
    source, out = into_state(State.EMPTY, tmp_path, monkeypatch)
    assert embed(source, out, "--restart") == 0
    assert_holds(out, BEFORE)


def test_empty_input_changed_and_settings_changed_are_a_first_run(
    env, tmp_path, monkeypatch
) -> None:
    source, out = into_state(State.EMPTY, tmp_path, monkeypatch)
    write(source, AFTER)
    other = [*ARGS[:3], "64", *ARGS[4:]]
    assert embed(source, out, args=other) == 0
    assert_holds(out, AFTER, dimensions=64)


# -- EMBEDDING ---------------------------------------------------------------------------------


def test_embedding_run_resumes_without_resending(env, tmp_path, monkeypatch) -> None:
    source, out = into_state(State.EMBEDDING, tmp_path, monkeypatch)
    written = sum(p.rows for p in bulk.committed_parts(out))
    items = env.state.items
    assert embed(source, out) == 0
    assert env.state.items - items == len(BEFORE) - written
    assert_holds(out, BEFORE)


def test_embedding_update_resumes_or_starts_again_when_the_rows_changed(
    env, tmp_path, monkeypatch
) -> None:
    source, out = into_state(State.EMBEDDING, tmp_path, monkeypatch)
    write(source, AFTER)  # row 3 (already written) changed
    assert embed(source, out, "--update") == 0
    assert_holds(out, AFTER)


def test_embedding_restart(env, tmp_path, monkeypatch) -> None:
    source, out = into_state(State.EMBEDDING, tmp_path, monkeypatch)
    assert embed(source, out, "--restart") == 0
    assert_holds(out, BEFORE)


def test_embedding_input_changed_is_refused_naming_update(
    env, tmp_path, monkeypatch, capsys
) -> None:
    source, out = into_state(State.EMBEDDING, tmp_path, monkeypatch)
    write(source, AFTER)
    assert embed(source, out) == bulk.EXIT_MISMATCH
    assert "--update" in capsys.readouterr().err


def test_embedding_settings_changed_is_refused_while_vectors_are_there(
    env, tmp_path, monkeypatch, capsys
) -> None:
    source, out = into_state(State.EMBEDDING, tmp_path, monkeypatch)
    other = [*ARGS[:3], "64", *ARGS[4:]]
    assert embed(source, out, args=other) == bulk.EXIT_MISMATCH
    assert "other settings (dimensions)" in capsys.readouterr().err


def test_embedding_with_no_vector_takes_any_settings(env, tmp_path, capsys) -> None:
    # A first run that failed before any vector (here: every row a reject) never blocks the
    # corrected command.
    source = tmp_path / "corpus.jsonl"
    source.write_text("".join(json.dumps({"doc_id": i, "body": "x"}) + "\n" for i in range(3)))
    out = tmp_path / "out"
    assert embed(source, out) == bulk.EXIT_REJECTS  # no field "text"
    assert embed(source, out, "--text-field", "body") == 0
    table = pq.read_table(out)
    assert table.column("id").to_pylist() == [0, 1, 2]


# -- COMPLETE ----------------------------------------------------------------------------------


def test_complete_run_sends_nothing(env, tmp_path, monkeypatch) -> None:
    source, out = into_state(State.COMPLETE, tmp_path, monkeypatch)
    items = env.state.items
    assert embed(source, out) == 0
    assert env.state.items == items
    assert_holds(out, BEFORE)


def test_complete_update(env, tmp_path, monkeypatch) -> None:
    source, out = into_state(State.COMPLETE, tmp_path, monkeypatch)
    write(source, AFTER)
    items = env.state.items
    assert embed(source, out, "--update") == 0
    assert env.state.items - items == 5  # row 3 and the 4 new ones
    assert_holds(out, AFTER)
    assert state_of(out) is State.COMPLETE


def test_complete_restart(env, tmp_path, monkeypatch) -> None:
    source, out = into_state(State.COMPLETE, tmp_path, monkeypatch)
    write(source, AFTER)
    assert embed(source, out, "--restart") == 0
    assert_holds(out, AFTER)


def test_complete_input_changed_is_refused_naming_update(
    env, tmp_path, monkeypatch, capsys
) -> None:
    source, out = into_state(State.COMPLETE, tmp_path, monkeypatch)
    write(source, AFTER)
    assert embed(source, out) == bulk.EXIT_MISMATCH
    assert "Use --update" in capsys.readouterr().err
    assert_holds(out, BEFORE)  # untouched


def test_complete_settings_changed_is_refused(env, tmp_path, monkeypatch, capsys) -> None:
    source, out = into_state(State.COMPLETE, tmp_path, monkeypatch)
    other = [*ARGS[:3], "64", *ARGS[4:]]
    assert embed(source, out, "--update", args=other) == bulk.EXIT_MISMATCH
    assert "other settings (dimensions)" in capsys.readouterr().err
    assert_holds(out, BEFORE)


# -- UPDATING ----------------------------------------------------------------------------------


def test_updating_run_checks_the_complete_output(env, tmp_path, monkeypatch, capsys) -> None:
    source, out = into_state(State.UPDATING, tmp_path, monkeypatch)
    assert embed(source, out) == bulk.EXIT_MISMATCH  # the top holds BEFORE; the input is AFTER
    assert "Use --update" in capsys.readouterr().err
    assert_holds(out, BEFORE)


def test_updating_update_resumes(env, tmp_path, monkeypatch) -> None:
    source, out = into_state(State.UPDATING, tmp_path, monkeypatch)
    assert embed(source, out, "--update") == 0
    assert_holds(out, AFTER)
    assert_no_generation_left(out)


def test_updating_restart_discards_next_too(env, tmp_path, monkeypatch) -> None:
    # --restart left an interrupted update's _next/, which a later --update swapped in.
    source, out = into_state(State.UPDATING, tmp_path, monkeypatch)
    write(source, BEFORE)
    assert embed(source, out, "--restart") == 0
    assert_no_generation_left(out)
    assert embed(source, out, "--update") == 0
    assert_holds(out, BEFORE)


def test_updating_input_changed_begins_next_anew(env, tmp_path, monkeypatch) -> None:
    # Every later run exited 5, and --update --restart was refused: stuck for good.
    source, out = into_state(State.UPDATING, tmp_path, monkeypatch)
    newer = {**AFTER, 0: "document 0, rewritten today"}  # a row _next/ had written
    write(source, newer)
    assert embed(source, out, "--update") == 0
    assert_holds(out, newer)
    assert embed(source, out, "--update", "--restart") == 0  # and that is allowed too
    assert_holds(out, newer)


def test_updating_settings_changed_is_refused_as_complete(env, tmp_path, monkeypatch) -> None:
    source, out = into_state(State.UPDATING, tmp_path, monkeypatch)
    other = [*ARGS[:3], "64", *ARGS[4:]]
    assert embed(source, out, "--update", args=other) == bulk.EXIT_MISMATCH
    assert embed(source, out, "--update") == 0
    assert_holds(out, AFTER)


# -- SWAPPING ----------------------------------------------------------------------------------


def test_swapping_run_finishes_the_swap(env, tmp_path, monkeypatch) -> None:
    source, out = into_state(State.SWAPPING, tmp_path, monkeypatch)
    assert embed(source, out) == 0  # the input is AFTER, as the swapped output
    assert_holds(out, AFTER)


def test_swapping_update_finishes_the_swap_then_embeds_todays_changes(
    env, tmp_path, monkeypatch
) -> None:
    # It only finished the old swap and exited 0: the day's changes were never embedded.
    source, out = into_state(State.SWAPPING, tmp_path, monkeypatch)
    today = {**AFTER, 7: "document 7, changed today"}
    write(source, today)
    assert embed(source, out, "--update") == 0
    assert_holds(out, today)


def test_swapping_restart(env, tmp_path, monkeypatch) -> None:
    source, out = into_state(State.SWAPPING, tmp_path, monkeypatch)
    assert embed(source, out, "--restart") == 0
    assert_no_generation_left(out)
    assert_holds(out, AFTER)


def test_swapping_settings_changed_finishes_the_swap_then_refuses(
    env, tmp_path, monkeypatch
) -> None:
    source, out = into_state(State.SWAPPING, tmp_path, monkeypatch)
    other = [*ARGS[:3], "64", *ARGS[4:]]
    assert embed(source, out, "--update", args=other) == bulk.EXIT_MISMATCH
    assert state_of(out) is State.COMPLETE
    assert_holds(out, AFTER)


@pytest.mark.parametrize("kill_at", [2, 3, 4])
def test_a_discard_killed_part_way_is_finished_by_the_next_run_whatever_its_command(
    env, tmp_path, monkeypatch, kill_at
) -> None:
    # It left parts without a manifest, refused by every command but --restart.
    source, out = into_state(State.COMPLETE, tmp_path, monkeypatch)
    calls = 0
    real = os.unlink

    def unlink(path: object, *args: object, **kw: object) -> None:
        nonlocal calls
        calls += 1
        if calls == kill_at:
            raise Crash
        real(path, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "unlink", unlink)
    with pytest.raises(Crash):
        embed(source, out, "--restart")
    monkeypatch.setattr(os, "unlink", real)
    assert embed(source, out) == 0  # a plain run, not --restart
    assert_holds(out, BEFORE)
