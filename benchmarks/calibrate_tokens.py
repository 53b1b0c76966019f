"""Calibrate the token estimator's starting ratio (UTF-8 bytes per token) on Qwen's tokenizer.

    pip download --no-deps dashscope            # its wheel carries Qwen's BPE vocabulary
    unzip -j dashscope-*.whl dashscope/resources/qwen.tiktoken -d /tmp/qwen
    python benchmarks/calibrate_tokens.py --vocab /tmp/qwen/qwen.tiktoken --save

Qwen3 Embedding 8B uses the Qwen2/Qwen3 tokenizer: a byte-level BPE of 151,643 tokens with the
split pattern below, the same vocabulary dashscope ships as ``qwen.tiktoken``. The samples are
short passages of the kinds RAG corpora hold, in several languages and scripts; the client
starts from a ratio at the low end (more tokens estimated than there are), then learns the
corpus's own ratio from the ``usage.prompt_tokens`` the service returns.
"""

# RUF001: the samples are real text in their own scripts, full-width punctuation included.
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import base64
import statistics
import sys
from pathlib import Path

PAT_STR = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)

SAMPLES = {
    "english prose": (
        "Bread rises because yeast ferments the sugars in the dough and releases carbon "
        "dioxide. The gas is trapped by a network of gluten proteins, which stretch as the "
        "bubbles grow, so the loaf expands before the heat of the oven sets its structure."
    ),
    "english technical": (
        "To configure the retry policy, pass max_retries=5 and a timeout of 30 seconds. "
        "Connection errors, HTTP 429 and 5xx responses are retried with exponential backoff; "
        "the Retry-After header, when present, takes precedence over the computed delay."
    ),
    "german": (
        "Die Bundesregierung hat am Mittwoch einen Gesetzentwurf zur Modernisierung der "
        "Verwaltungsdigitalisierung beschlossen. Bürgerinnen und Bürger sollen künftig die "
        "meisten Behördengänge online erledigen können, ohne persönlich zu erscheinen."
    ),
    "french": (
        "La photosynthèse permet aux plantes vertes de convertir l'énergie lumineuse en "
        "énergie chimique. Elle se déroule principalement dans les chloroplastes des feuilles, "
        "où le dioxyde de carbone et l'eau sont transformés en glucose et en oxygène."
    ),
    "spanish": (
        "El río Amazonas es el más caudaloso del mundo y atraviesa varios países de América "
        "del Sur. Su cuenca alberga una enorme diversidad de especies, muchas de las cuales "
        "todavía no han sido descritas por la ciencia."
    ),
    "russian": (
        "Московский метрополитен был открыт в 1935 году и сегодня является одним из самых "
        "загруженных в мире. Многие станции украшены мозаиками, скульптурами и мрамором."
    ),
    "chinese": (
        "长城是中国古代的军事防御工程，历史可以追溯到两千多年前。它沿着北方边境延伸，"
        "由城墙、关隘和烽火台组成，是世界上最著名的建筑之一。"
    ),
    "japanese": (
        "富士山は日本で最も高い山であり、標高は三千七百七十六メートルです。"
        "夏の登山シーズンには多くの人々が山頂を目指し、日の出を眺めます。"
    ),
    "arabic": (
        "تعد القاهرة أكبر مدينة في العالم العربي، وتقع على ضفاف نهر النيل. "
        "تضم المدينة العديد من المعالم التاريخية والمساجد والمتاحف."
    ),
    "python code": (
        "def plan_batches(count: int, batch_size: int) -> list[tuple[int, int]]:\n"
        "    if count == 0:\n        return []\n"
        "    n_batches = -(-count // batch_size)\n"
        "    size, extra = divmod(count, n_batches)\n"
    ),
    "numbers and ids": (
        "Order 2024-11-26 #A7731: 3 x SKU-49213 at 12.99 EUR, 1 x SKU-00817 at 149.00 EUR; "
        "invoice 8841230097, IBAN DE89370400440532013000, total 187.97 EUR."
    ),
}


def load_encoding(vocab: Path):  # type: ignore[no-untyped-def]
    import tiktoken

    ranks = {}
    for line in vocab.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return tiktoken.Encoding("qwen", pat_str=PAT_STR, mergeable_ranks=ranks, special_tokens={})


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vocab", type=Path, required=True, help="qwen.tiktoken")
    parser.add_argument(
        "--save", action="store_true", help="keep them in benchmarks/results/tokens.json"
    )
    args = parser.parse_args()
    encoding = load_encoding(args.vocab)
    rows = []
    for name, text in SAMPLES.items():
        tokens = len(encoding.encode_ordinary(text))
        size = len(text.encode("utf-8"))
        rows.append({"sample": name, "bytes": size, "tokens": tokens, "ratio": size / tokens})
    print("| sample | UTF-8 bytes | Qwen tokens | bytes / token |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['sample']} | {row['bytes']} | {row['tokens']} | {row['ratio']:.2f} |")
    ratios = [row["ratio"] for row in rows]
    print(f"\nmin {min(ratios):.2f}, median {statistics.median(ratios):.2f}, max {max(ratios):.2f}")
    if args.save:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _report import save

        save("tokens", {"rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
