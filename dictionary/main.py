"""Dictionary baseline: a gazetteer of the training split's mentions, matched longest-first.

It is the floor every learned method has to clear, and it needs no model:

    python dictionary/main.py --dataset_name ncbi_disease --output_dir results/dictionary/ncbi_disease

A surface form (lower-cased word tokens) enters the gazetteer with its most frequent type when, in
the training texts, it is annotated as an entity at least `--min_precision` of the times it occurs.
Prediction scans each document left to right and takes the longest gazetteer match at each word.
Writes `{split}.predictions.jsonl` and `metrics.json` (eval/semeval's JSON per split) to --output_dir.
"""
from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path


from data import registry
from data.corpus import Document, Entity, exit_on_format_error, script_parser, write_jsonl
from data.text import tokenize
from eval.runs import claim_output_dir, print_scores, run_settings, timing, write_metrics
from eval.semeval import score

Key = tuple[str, ...]


@dataclass
class Args:
    dataset_name: str
    output_dir: Path
    train_split: str = "train"
    eval_splits: tuple[str, ...] = ("dev", "test")
    min_precision: float = 0.5  # keep a form only if it is an entity at least this often in training
    max_words: int = 12  # longest mention (in word tokens) the gazetteer holds
    max_eval_docs: int | None = None  # score only the first N documents of each split (a fixed test sample)
    overwrite: bool = False  # replace a finished run in output_dir


def words(doc: Document) -> tuple[list[tuple[int, int]], list[str]]:
    spans = tokenize(doc.text)
    return spans, [doc.text[s:e].lower() for s, e in spans]


def build_gazetteer(docs: list[Document], min_precision: float, max_words: int) -> dict[Key, str]:
    """Surface forms that are reliably entities in `docs`, each with its most frequent type."""
    types: dict[Key, Counter] = defaultdict(Counter)
    for doc in docs:
        for ent in doc.entities:
            key = tuple(doc.text[s:e].lower() for s, e in tokenize(doc.text, ent.start, ent.end))
            if 0 < len(key) <= max_words and not ent.discontinuous:
                types[key][ent.type] += 1
    occurrences: Counter = Counter()
    for doc in docs:
        _, toks = words(doc)
        for i in range(len(toks)):
            for n in range(1, min(max_words, len(toks) - i) + 1):
                key = tuple(toks[i:i + n])
                if key in types:
                    occurrences[key] += 1
    return {key: counts.most_common(1)[0][0] for key, counts in types.items()
            if sum(counts.values()) >= min_precision * max(occurrences[key], 1)}


def tag(doc: Document, gazetteer: dict[Key, str], max_words: int) -> Document:
    spans, toks = words(doc)
    found, i = [], 0
    while i < len(toks):
        for n in range(min(max_words, len(toks) - i), 0, -1):
            ent_type = gazetteer.get(tuple(toks[i:i + n]))
            if ent_type:
                start, end = spans[i][0], spans[i + n - 1][1]
                found.append(Entity.span(start, end, ent_type, doc.text[start:end]))
                i += n
                break
        else:
            i += 1
    return Document(doc.id, doc.text, found)


def main(args: Args) -> dict:
    claim_output_dir(args.output_dir, overwrite=args.overwrite)
    train = registry.load(args.dataset_name, args.train_split)
    started = time.perf_counter()
    gazetteer = build_gazetteer(train, args.min_precision, args.max_words)
    metrics = {"method": "dictionary", "dataset": args.dataset_name, "gazetteer_size": len(gazetteer),
               "train_seconds": round(time.perf_counter() - started, 2), "max_eval_docs": args.max_eval_docs,
               "min_precision": args.min_precision, "max_words": args.max_words, "timing": {}}
    print(f"{args.dataset_name}: {len(gazetteer):,} gazetteer entries from {len(train):,} training documents")
    for split in args.eval_splits:
        if split not in registry.get(args.dataset_name).splits:
            continue
        gold = registry.load(args.dataset_name, split)[:args.max_eval_docs]
        started = time.perf_counter()
        pred = [tag(doc, gazetteer, args.max_words) for doc in gold]
        metrics["timing"][split] = timing(time.perf_counter() - started, gold)
        write_jsonl(pred, args.output_dir / f"{split}.predictions.jsonl", with_text=False)
        metrics[split] = score(gold, pred).to_json()
        print_scores(split, metrics[split])
    write_metrics(args.output_dir, metrics, settings=run_settings(args))
    return metrics


def parse_args(argv: list[str] | None = None) -> Args:
    parser = script_parser(__doc__)
    parser.add_argument("--dataset_name", required=True, help=f"one of: {', '.join(registry.DATASETS)}")
    parser.add_argument("--output_dir", type=Path, required=True)
    parser.add_argument("--overwrite", type=lambda v: v.lower() in ("true", "1", "yes"), nargs="?", const=True,
                        default=False, help="replace a finished run in --output_dir (--overwrite True, as elsewhere)")
    parser.add_argument("--train_split", default=Args.train_split)
    parser.add_argument("--eval_splits", nargs="+", default=list(Args.eval_splits))
    parser.add_argument("--min_precision", type=float, default=Args.min_precision)
    parser.add_argument("--max_words", type=int, default=Args.max_words)
    parser.add_argument("--max_eval_docs", type=int, help="score only the first N documents of each split")
    ns = parser.parse_args(argv)
    return Args(**{**vars(ns), "eval_splits": tuple(ns.eval_splits)})


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
