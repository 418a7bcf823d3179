r"""Mix corpora in given proportions into one pre-training text file (seed 1's mixData, done right).

    python continual/mix_data.py --sources bc5cdr:0.5 ncbi_disease:0.3 labels.txt:0.2 \
        --total_tokens 200000 --seed 1 --out mix.jsonl
    python continual/main.py --text_files mix.jsonl --output_dir ...

A source is a registry dataset (its --split, by default train: dev and test stay held out) or a text
file / folder as continual/main.py reads them. Proportions are shares of --total_tokens, counted with
--tokenizer; they are normalised when they do not sum to 1.

Each source contributes whole documents, drawn in a seeded random order until its token budget is
met as closely as whole documents allow (the same --seed gives the same file). No source is ever
dropped: each gives at least one document, and a source smaller than its budget is repeated (whole
passes over its shuffled documents) and reported as repeated. The mixture is shuffled and written as
JSONL ({"id", "source", "text"}) or, for any other suffix, as plain text with blank lines between
documents. The achieved proportions (tokens and characters per source) are printed and written to
FILE.report.json.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from continual.texts import RawDoc, file_docs, registry_docs
from data import registry
from data.corpus import exit_on_format_error, script_parser
from data.llm.models import resolve


@dataclass
class Args:
    sources: list[tuple[str, float]]  # (registry name or path, proportion)
    total_tokens: int
    out: Path
    seed: int = 0
    split: str = "train"  # the registry split a dataset source contributes
    tokenizer: str = "smollm2"  # counts tokens; hub id, local path or a bundled short name


def parse_source(spec: str) -> tuple[str, float]:
    name, sep, share = spec.rpartition(":")
    try:
        proportion = float(share)
    except ValueError:
        proportion = -1.0
    if not sep or not name or not proportion > 0:
        raise argparse.ArgumentTypeError(f"{spec!r}: expected NAME:PROPORTION with a proportion > 0")
    return name, proportion


def source_docs(name: str, split: str) -> list[RawDoc]:
    """A registry dataset's split, or the documents of a file or folder; an empty source is an error."""
    if name in registry.DATASETS:
        if split not in registry.get(name).splits:
            raise ValueError(f"dataset {name!r} has no split {split!r} (it has {', '.join(registry.get(name).splits)})")
        docs = registry_docs(name, split)
    elif Path(name).exists():
        docs = file_docs(name)
    else:
        raise ValueError(f"source {name!r} is neither a registry dataset nor an existing file or folder")
    if not docs:
        raise ValueError(f"source {name!r} holds no non-empty document")
    return docs


def draw(lengths: list[int], budget: float, rng: random.Random) -> tuple[list[int], int]:
    """Indices of whole documents, in random order, whose lengths sum as close to budget as whole documents allow.

    A document is taken while taking it brings the total closer to the budget, and at least one
    always is. The source is shuffled again and repeated when one pass is not enough. Returns the
    indices and the number of passes started.
    """
    taken, total, passes, order = [], 0, 0, []
    while True:
        if not order:
            order = list(range(len(lengths)))
            rng.shuffle(order)
            passes += 1
        n = lengths[order[0]]
        if taken and abs(total + n - budget) >= abs(total - budget):
            return taken, passes
        taken.append(order.pop(0))
        total += n


def mix(args: Args) -> dict:
    """Write the mixture to args.out and return the report."""
    from transformers import AutoTokenizer

    sources = {name: source_docs(name, args.split) for name, _ in args.sources}  # fail before the slow part
    tokenizer = AutoTokenizer.from_pretrained(resolve(args.tokenizer))
    weight = sum(p for _, p in args.sources)
    mixture: list[dict] = []
    report: dict = {"total_tokens_requested": args.total_tokens, "seed": args.seed, "split": args.split,
                    "tokenizer": args.tokenizer, "sources": {}}
    for name, proportion in args.sources:
        docs = sources[name]
        lengths = [len(ids) for ids in tokenizer([d.text for d in docs], add_special_tokens=False)["input_ids"]]
        budget = args.total_tokens * proportion / weight
        taken, passes = draw(lengths, budget, random.Random(f"{args.seed}/{name}"))
        repeats: dict[int, int] = {}
        for i in taken:
            repeats[i] = repeats.get(i, 0) + 1
            suffix = f"#{repeats[i]}" if repeats[i] > 1 else ""
            mixture.append({"id": f"{docs[i].id}{suffix}", "source": name, "text": docs[i].text})
        report["sources"][name] = {
            "proportion_given": proportion, "proportion_target": round(proportion / weight, 4),
            "budget_tokens": round(budget), "documents": len(taken), "distinct_documents": len(set(taken)),
            "available_documents": len(docs), "tokens": sum(lengths[i] for i in taken),
            "characters": sum(len(docs[i].text) for i in taken), "passes": passes, "repeated": passes > 1}
    tokens = sum(s["tokens"] for s in report["sources"].values())
    chars = sum(s["characters"] for s in report["sources"].values())
    for s in report["sources"].values():
        s["share_tokens"], s["share_characters"] = round(s["tokens"] / tokens, 4), round(s["characters"] / chars, 4)
    report.update(documents=len(mixture), tokens=tokens, characters=chars)

    random.Random(args.seed).shuffle(mixture)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        for doc in mixture:
            if args.out.suffix == ".jsonl":
                fh.write(json.dumps(doc, ensure_ascii=False) + "\n")
            else:  # one block per document: blank lines inside a text would split it when read back
                fh.write("\n".join(line for line in doc["text"].splitlines() if line.strip()) + "\n\n")
    Path(f"{args.out}.report.json").write_text(json.dumps(report, indent=2))
    return report


def print_report(report: dict, out: Path) -> None:
    print(f"{out}: {report['documents']:,} documents, {report['tokens']:,} tokens "
          f"(requested {report['total_tokens_requested']:,}), {report['characters']:,} characters")
    print(f"{'source':<30} {'target':>7} {'tokens':>7} {'chars':>7} {'docs':>6}  note")
    for name, s in report["sources"].items():
        note = f"repeated: {s['passes']} passes over {s['available_documents']} documents" if s["repeated"] else ""
        print(f"{name:<30} {s['proportion_target']:>7.1%} {s['share_tokens']:>7.1%} {s['share_characters']:>7.1%} "
              f"{s['documents']:>6}  {note}")


def parse_args() -> Args:
    parser = script_parser(__doc__)
    parser.add_argument("--sources", nargs="+", type=parse_source, required=True, metavar="NAME:PROPORTION",
                        help="registry dataset or text file/folder, with its share")
    parser.add_argument("--total_tokens", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help=".jsonl, or any other suffix for plain text")
    parser.add_argument("--seed", type=int, default=Args.seed)
    parser.add_argument("--split", default=Args.split, help="registry split of dataset sources")
    parser.add_argument("--tokenizer", default=Args.tokenizer, help="counts tokens: hub id, path or 'smollm2'")
    ns = parser.parse_args()
    names = [n for n, _ in ns.sources]
    if len(set(names)) < len(names):
        parser.error("a source is named twice")
    if ns.total_tokens <= 0:
        parser.error("--total_tokens must be positive")
    return Args(**vars(ns))


def main() -> None:
    args = parse_args()
    try:
        report = mix(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print_report(report, args.out)


if __name__ == "__main__":
    exit_on_format_error(main)
