"""How close ``mixlayer-embed --plan``'s token estimate (``planned_tokens``) comes to the count.

    python benchmarks/bench_plan.py [--vocab /tmp/qwen/qwen.tiktoken]

Two counts to hold it against:

- Qwen's tokenizer (what the service bills), with ``--vocab`` (how to get the vocabulary:
  ``calibrate_tokens.py``'s docstring): the calibration samples, one by one, and the demo
  corpus (mixlayer_embeddings/demo/corpus.txt) in all.
- The emulator's count (a word or a mark is one token, a long word one per 32 characters): a
  real ``mixlayer-embed`` run of the demo corpus, whose manifest holds the estimate beside the
  tokens the emulator billed.

Prints a table; raw results in ``benchmarks/results/plan.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import save
from calibrate_tokens import SAMPLES, load_encoding

from mixlayer_embeddings._bulk.command import main as embed
from mixlayer_embeddings._tokens import planned_tokens
from mixlayer_embeddings.emulator import Emulator

CORPUS = Path(__file__).resolve().parent.parent / "mixlayer_embeddings" / "demo" / "corpus.txt"


def _row(name: str, counted: int, estimated: int) -> dict[str, object]:
    return {
        "sample": name,
        "counted": counted,
        "estimated": estimated,
        "error": round((estimated - counted) / counted, 4),
    }


def against_qwen(vocab: Path) -> list[dict[str, object]]:
    encoding = load_encoding(vocab)
    rows = [
        _row(name, len(encoding.encode_ordinary(text)), planned_tokens(text))
        for name, text in SAMPLES.items()
    ]
    rows.append(
        _row(
            "all samples",
            sum(int(r["counted"]) for r in rows),  # type: ignore[call-overload]
            sum(int(r["estimated"]) for r in rows),  # type: ignore[call-overload]
        )
    )
    lines = [line for line in CORPUS.read_text().splitlines() if line.strip()]
    counted = sum(len(encoding.encode_ordinary(line)) for line in lines)
    rows.append(_row("demo corpus", counted, sum(planned_tokens(line) for line in lines)))
    return rows


def against_the_emulator() -> dict[str, object]:
    with Emulator() as emulator, tempfile.TemporaryDirectory() as folder:
        os.environ.update(
            MIXLAYER_API_KEY=emulator.api_key,
            MIXLAYER_BASE_URL=emulator.base_url,
            MIXLAYER_EMBEDDING_MODEL="qwen/qwen3-embedding-8b",
        )
        out = Path(folder) / "out"
        assert embed([str(CORPUS), str(out), "--no-progress", "--dimensions", "32"]) in (0, 4)
        summary = json.loads((out / "_manifest.json").read_text())["completed"]
    return _row("demo corpus, emulator run", summary["tokens"], summary["estimated_tokens"])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vocab", type=Path, help="qwen.tiktoken (see calibrate_tokens.py)")
    args = parser.parse_args()
    rows = against_qwen(args.vocab) if args.vocab else []
    emulated = against_the_emulator()
    print("| against | sample | counted | estimated | error |")
    print("|---|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| Qwen | {row['sample']} | {row['counted']} | {row['estimated']} | "
            f"{float(row['error']):+.1%} |"  # type: ignore[arg-type]
        )
    print(
        f"| emulator | {emulated['sample']} | {emulated['counted']} | {emulated['estimated']} | "
        f"{float(emulated['error']):+.1%} |"  # type: ignore[arg-type]
    )
    save("plan", {"qwen": rows, "emulator": emulated})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
