"""``mixlayer-embed``: embed a file of texts into a folder of Parquet (or .npy) parts,
resumably, and keep it up to date with ``--update``. One module per job:

    args       the flags, and the client settings they make
    rows       the input read as a stream of rows, each sendable or a reject with its reason
    ingest     each row sent, rejected or carried over; settled rows committed as parts
    parts      the folder's layout: parts, sidecars, manifest, lock, atomic writes
    update     ``--update``: the earlier output's ids and vectors
    swap       the new generation made the folder's output in one atomic exchange
    lifecycle  the folder's state, read from the disk, and the steps between states
    messages   what to do after a failure
    plan       ``--plan``: what a run would send, bill, take and write, with nothing sent
    command    one run: a step of the table below, then the summary

The folder as one state machine. A state is read from the disk (``lifecycle.state_of``):

    EMPTY      no manifest
    EMBEDDING  a manifest without a summary: a run began and did not finish
    COMPLETE   a manifest with its summary, and no ``_next/``
    UPDATING   COMPLETE, plus ``_next/`` not complete: an update embedding
    SWAPPING   ``_next/`` complete, or the sibling ``.OUT.mixlayer-swap/`` there: an update
               done, its swap begun (to exchange, or the old generation to delete)

What each event does in each state ("resume": continue at the first row no part holds; rows
read again are checked against the parts' digests; "run" ends COMPLETE, or stays where it was
on a failure; a test in ``tests/test_bulk_lifecycle.py`` covers each cell, named
``test_<state>_<event>``):

    state      | run             | --update             | --restart  | input changed | settings
    -----------+-----------------+----------------------+------------+---------------+------------
    EMPTY      | run             | run (a first update) | run        | (as run)      | (as run)
    EMBEDDING  | resume          | resume; its rows     | discard    | exit 5, names | exit 5; no
               |                 | changed: discard,run | all, run   | --update      | vector: new
    COMPLETE   | nothing to send | into _next/, swap    | discard    | exit 5, names | exit 5
               |                 |                      | all, run   | --update      | (--restart)
    UPDATING   | checks the top  | resume _next/        | discard    | --update:     | --update:
               | (as COMPLETE)   |                      | _next/ too | _next/ anew   | _next/ anew
    SWAPPING   | finish the swap | finish the swap,     | discard    | finish the    | finish the
               | (as COMPLETE)   | then update          | _next/ too | swap, then... | swap, then...

kill -9 at any step leaves one of these states: every file is written under a temporary name,
flushed and renamed (a part under its final name is whole), and the swap is one atomic
exchange of directories whose manifests carry their generation (``swap``). A discard (``--restart``,
or a stale folder started again) writes a ``_discarding`` mark first and deletes it last: one
killed part-way is finished by the next run, whatever its command.

Readers: open the folder (pyarrow, pandas, DuckDB; polars with ``OUT/*.parquet``). They skip
``_`` and ``.`` names, and see one generation at any moment: the old table or the new one.

Exit codes: 0 every row embedded; 4 done, with rejected rows in ``_rejects.jsonl``; 1 a batch
failed for good (the message says whether a rerun can help); 2 bad arguments or an unreadable
input; 3 a missing extra; 5 the output holds other rows' or settings' vectors; 6 another run is
writing there; 130 interrupted (rerun to resume).
"""

from __future__ import annotations

from .command import main, run
from .ingest import Ingest
from .parts import (
    EXIT_BUSY,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_MISMATCH,
    EXIT_OK,
    EXIT_REJECTS,
    committed_parts,
)

__all__ = [
    "EXIT_BUSY",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_MISMATCH",
    "EXIT_OK",
    "EXIT_REJECTS",
    "Ingest",
    "committed_parts",
    "main",
    "run",
]
