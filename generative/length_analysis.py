"""How long the texts, entities and gold answers of registry corpora are (seed 1's length analysis): the
numbers that size windows, context lengths and answer budgets (max_new_tokens) of generating methods.

    python generative/length_analysis.py --datasets ncbi_disease bc5cdr
    python generative/length_analysis.py --datasets bc5cdr --splits train test --tokenizer smollm2 \\
        --level document --json lengths.json --plot lengths.png

For every dataset and split: documents and units (sentences, or with --level document the windows of
data/llm/units.py) in characters, words (data.text.tokenize: the words of the bio format) and, with
--tokenizer, model tokens; entities in words and characters; and the gold answer of every unit in every
output format of data/llm/formats (--formats), in characters and, with --tokenizer, tokens (what
data.llm.units.BudgetRule sizes max_new_tokens from). Units are split where the gold allows
(data/llm/units.py), as for training targets.

Prints a Markdown table of percentiles (n, mean, p50, p90, p95, p99, max) per measure; --json writes
{dataset: {split: {measure: {...}}}}; --plot writes a PNG of histograms, one panel per measure (answers
in tokens when counted), one line per dataset and split.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence


import numpy as np

from data import registry
from data.corpus import Document, exit_on_format_error, parse_dataclasses
from data.llm.formats import FORMATS, get_format
from data.llm.units import LEVELS, make_units
from data.text import tokenize
from eval.runs import write_json

PERCENTILES = (50, 90, 95, 99)


@dataclass
class Args:
    datasets: list[str] = field(default_factory=lambda: ["ncbi_disease", "bc5cdr"],
                                metadata={"help": f"registry names ({', '.join(registry.DATASETS)})"})
    splits: list[str] | None = field(default=None, metadata={"help": "splits to measure (default: every split "
                                                                     "of each dataset)"})
    formats: list[str] = field(default_factory=lambda: list(FORMATS), metadata={"help": "answer formats"})
    tokenizer: str | None = field(default=None, metadata={
        "help": "hub id, local path, 'smollm2' or 'minilm': also count model tokens"})
    level: str = field(default="sentence", metadata={"choices": LEVELS, "help": "the unit of a prompt"})
    max_sentences: int = field(default=10, metadata={"help": "document level: sentences per window"})
    max_docs: int | None = field(default=None, metadata={"help": "measure only the first N documents per split"})
    json: Path | None = field(default=None, metadata={"help": "write the statistics to this JSON file"})
    plot: Path | None = field(default=None, metadata={"help": "write the histograms to this PNG file"})


def summary(values: Sequence[int]) -> dict:
    """n, mean, percentiles and max of a list of lengths (None when it is empty)."""
    if not values:
        return {"n": 0, "mean": None, **{f"p{p}": None for p in PERCENTILES}, "max": None}
    arr = np.asarray(values)
    return {"n": len(values), "mean": round(float(arr.mean()), 2),
            **{f"p{p}": round(float(np.percentile(arr, p)), 1) for p in PERCENTILES}, "max": int(arr.max())}


def measure(docs: Sequence[Document], types: Sequence[str], args: Args, tokenizer,
            nested: bool = False) -> dict[str, list[int]]:
    """Every length of one split, by measure name (module docstring)."""
    def tokens(texts: list[str]) -> list[int]:
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []

    lengths: dict[str, list[int]] = {}
    answers = {name: make_units(docs, types, get_format(name, nested=nested), args.level,
                                max_sentences=args.max_sentences) for name in args.formats}
    units = [u.input for u in answers[args.formats[0]]]  # the same units in every format
    for name, texts in (("document", [d.text for d in docs]), ("unit", units)):
        lengths[f"{name} characters"] = [len(t) for t in texts]
        lengths[f"{name} words"] = [len(tokenize(t)) for t in texts]
        if tokenizer is not None:
            lengths[f"{name} tokens"] = tokens(texts)
    surfaces = [e.surface(d.text) for d in docs for e in d.entities]
    lengths["entity words"] = [len(tokenize(s)) for s in surfaces]
    lengths["entity characters"] = [len(s) for s in surfaces]
    for name, recs in answers.items():
        outputs = [u.output for u in recs]
        lengths[f"answer characters ({name})"] = [len(a) for a in outputs]
        if tokenizer is not None:
            lengths[f"answer tokens ({name})"] = tokens(outputs)
    return lengths


def markdown(stats: dict) -> str:
    head = ["dataset", "split", "measure", "n", "mean", *(f"p{p}" for p in PERCENTILES), "max"]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for dataset, splits in stats.items():
        for split, measures in splits.items():
            for name, s in measures.items():
                cells = [dataset, split, name, *("-" if v is None else str(v) for v in s.values())]
                rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot(lengths: dict[tuple[str, str], dict[str, list[int]]], path: Path) -> None:
    """One panel per measure (answers in tokens when counted, else in characters), one step histogram
    per (dataset, split) on shared bins, as a share of the split's items so that splits compare."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(m for by in lengths.values() for m in by))
    names = [m for m in names if not (m.startswith("answer characters")
                                      and m.replace("characters", "tokens") in names)]
    cols = 4
    fig, axes = plt.subplots(-(-len(names) // cols), cols, figsize=(4.2 * cols, 3.2 * -(-len(names) // cols)),
                             squeeze=False)
    for ax, name in zip(axes.flat, names):
        series = {f"{d} {s}": by[name] for (d, s), by in lengths.items() if by.get(name)}
        top = max((max(v) for v in series.values()), default=1)
        bins = np.linspace(0, top + 1, 41)
        for label, values in series.items():
            ax.hist(values, bins=bins, histtype="step", weights=np.full(len(values), 1 / len(values)), label=label)
        ax.set(title=name, xlabel="length", ylabel="share")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(args: Args) -> dict:
    unknown = sorted(set(args.formats) - set(FORMATS))
    if unknown:
        raise SystemExit(f"error: unknown formats {unknown}; known: {', '.join(FORMATS)}")
    tokenizer = None
    if args.tokenizer:
        from transformers import AutoTokenizer
        from data.llm.models import resolve
        tokenizer = AutoTokenizer.from_pretrained(resolve(args.tokenizer))
    lengths: dict[tuple[str, str], dict[str, list[int]]] = {}
    stats: dict = {}
    for name in args.datasets:
        ds = registry.get(name)
        for split in args.splits or list(ds.splits):
            if split not in ds.splits:
                print(f"{name} has no split {split!r}: skipped", file=sys.stderr)
                continue
            docs = registry.load(name, split)[:args.max_docs]
            lengths[name, split] = measure(docs, ds.types, args, tokenizer, registry.nested(name))
            stats.setdefault(name, {})[split] = {m: summary(v) for m, v in lengths[name, split].items()}
    print(markdown(stats))
    if args.json:
        write_json(args.json, stats)
    if args.plot:
        plot(lengths, args.plot)
    return stats


def parse_args(argv: list[str] | None = None) -> Args:
    return parse_dataclasses((Args,), __doc__, argv)[0]


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
