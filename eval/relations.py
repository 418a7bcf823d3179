"""Score predicted relations against gold documents, in the views the literature uses, from the same data.

    python eval/relations.py --gold test.jsonl --pred predictions.jsonl [--view concept ddi] [--json scores.json]

Both files are the documents JSONL with `relations` (data/corpus.py); predictions are checked against the
gold file as for eval/evaluate.py (unknown document ids, spans past the gold text). A view turns every
relation of a document into keys (its type and what it says about its two arguments); per document the
gold and predicted keys are sets, so a relation stated twice counts once (counted under `set_aside`), and
true positives are the keys in both. Counts add up over documents per relation type, then micro (summed
counts) and macro (mean of the per-type precision, recall and F1). Views:

    mention   both argument spans and types and the relation type, in the order given (Arg1, Arg2):
              the strict end-to-end measure (NEREL-BIO, RareDis)
    concept   unordered pairs of concept ids per document, an entity argument standing for each of its
              concept ids (a composite mention for several): BC5CDR CID's official measure (unique
              (chemical id, disease id) pairs per abstract) and BioRED's pair-and-type measure
    ddi       the mention view over DDI 2013's four types (mechanism, effect, advise, int; compared in
              lower case, so the brat conversion's MECHANISM counts), unordered, as the official micro F1
    chemprot  the mention view over the five evaluated groups CPR:3, 4, 5, 6 and 9 (chemical first)
    strings   seed 3: per document, unordered pairs of the arguments' lower-cased strings, with the type
              (predicted mentions are read off the gold text at their offsets)

Candidate pairs annotated as unrelated (type "negative", DDI's ddi="false") are never scored; relations of a
type the view leaves out (a CPR group other than the five), and entity arguments without a concept id in
the concept view, are counted under `set_aside`, never dropped unseen. The mention, ddi, chemprot and
strings views need entity arguments: a gold file that relates concept ids (BC5CDR, BioRED) is scored with
the concept view. Default: mention if the gold relations have entity arguments, else concept.
Every result carries the 95 % bootstrap interval of its micro F1 (documents resampled, as eval/semeval.py).
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Hashable, Sequence

import numpy as np

from data.corpus import (NEGATIVE, Argument, Document, Entity, InputError, Relation, exit_on_format_error,
                         read_jsonl, script_parser)
from eval.evaluate import load_predictions
from eval.semeval import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, harmonic_mean, percentiles, ratio, resampled_f1

DDI_TYPES = ("mechanism", "effect", "advise", "int")
CPR_TYPES = ("CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9")


@dataclass(frozen=True)
class View:
    """How a relation becomes keys: what each argument stands for, whether the order of the arguments
    counts, and which types are scored (None: every type but NEGATIVE)."""

    name: str
    argument: Callable[[Argument, Document], list[Hashable]]  # (argument, gold document) -> its keys
    ordered: bool
    types: tuple[str, ...] | None = None
    type_of: Callable[[str], str] = str  # how a relation's type is compared


def _mention(arg: Argument, doc: Document) -> list[Hashable]:
    if not isinstance(arg, Entity):
        raise InputError(f"document {doc.id!r} relates concept ids ({arg!r}), not mentions: score it with "
                         f"--view concept")
    return [(arg.fragments, arg.type)]


def _concept(arg: Argument, doc: Document) -> list[Hashable]:
    return list(arg.concepts) if isinstance(arg, Entity) else [arg]


def _string(arg: Argument, doc: Document) -> list[Hashable]:
    if not isinstance(arg, Entity):
        raise InputError(f"document {doc.id!r} relates concept ids ({arg!r}), which have no string: score it "
                         f"with --view concept")
    return [arg.surface(doc.text).lower()]


VIEWS: dict[str, View] = {v.name: v for v in [
    View("mention", _mention, ordered=True),
    View("concept", _concept, ordered=False),
    View("ddi", _mention, ordered=False, types=DDI_TYPES, type_of=str.lower),
    View("chemprot", _mention, ordered=True, types=CPR_TYPES),
    View("strings", _string, ordered=False),
]}


@dataclass
class Counts:
    """True positives, false positives and false negatives of one type (or of all: micro)."""

    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return harmonic_mean(self.precision, self.recall)

    def to_json(self) -> dict:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "tp": self.tp, "fp": self.fp,
                "fn": self.fn, "gold": self.tp + self.fn, "pred": self.tp + self.fp}


@dataclass
class Result:
    """One view's counts per relation type, and per document the parts its F1 adds up from."""

    view: str
    per_type: dict[str, Counts]
    parts: dict[str, list[int]]  # document -> [tp, gold keys, predicted keys]
    macro_types: tuple[str, ...]  # the types macro averages over
    set_aside: dict[str, dict[str, int]] = field(default_factory=dict)  # what was not scored, gold and pred

    @property
    def micro(self) -> Counts:
        return Counts(*(sum(getattr(c, k) for c in self.per_type.values()) for k in ("tp", "fp", "fn")))

    @property
    def macro(self) -> dict[str, float]:
        rows = [self.per_type.get(t, Counts()) for t in self.macro_types]
        return {k: float(np.mean([getattr(r, k) for r in rows])) if rows else 0.0
                for k in ("precision", "recall", "f1")}

    def f1_interval(self, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> list[float]:
        """95 % percentile bootstrap interval of the micro F1, documents resampled with replacement."""
        return percentiles(resampled_f1(np.array(list(self.parts.values()), dtype=float), resamples, seed))

    def to_json(self) -> dict:
        return {"view": self.view, "micro": self.micro.to_json(),
                "per_type": {t: c.to_json() for t, c in self.per_type.items()}, "macro": self.macro,
                "macro_types": list(self.macro_types), "set_aside": self.set_aside,
                "bootstrap": {"f1_ci95": self.f1_interval(), "documents": len(self.parts),
                              "resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED, "parts": self.parts}}


def relation_keys(rel: Relation, doc: Document, view: View, set_aside: Counter) -> set[tuple]:
    """The keys one relation stands for in `view` (several for composite concepts); `doc` is the gold
    document, whose text predicted mentions are read from. What is not scored is counted in `set_aside`."""
    if rel.type == NEGATIVE:
        set_aside["negative"] += 1
        return set()
    type_ = view.type_of(rel.type)
    if view.types is not None and type_ not in view.types:
        set_aside["type_not_scored"] += 1
        return set()
    first, second = (view.argument(arg, doc) for arg in rel.arguments)
    if not first or not second:
        set_aside["argument_without_concept"] += 1
    return {(type_, a, b) if view.ordered else (type_, *sorted((a, b))) for a in first for b in second}


def document_keys(relations: Sequence[Relation], doc: Document, view: View, set_aside: Counter) -> set[tuple]:
    keys: set[tuple] = set()
    for rel in relations:
        found = relation_keys(rel, doc, view, set_aside)
        set_aside["repeated"] += bool(found) and found <= keys
        keys |= found
    return keys


def score(gold: Sequence[Document], pred: Sequence[Document], view: str = "mention") -> Result:
    """Count one view over every gold document; documents absent from `pred` are predicted empty, unknown
    ids are an error."""
    chosen = VIEWS[view]
    predicted = {d.id: d.relations for d in pred}
    unknown = sorted(predicted.keys() - {d.id for d in gold})
    if unknown:
        raise ValueError(f"predictions for {len(unknown)} unknown document(s), e.g. {unknown[:3]}")
    per_type: dict[str, Counts] = {}
    parts: dict[str, list[int]] = {}
    set_aside = {"gold": Counter(), "pred": Counter()}
    for doc in sorted(gold, key=lambda d: d.id):
        g = document_keys(doc.relations, doc, chosen, set_aside["gold"])
        p = document_keys(predicted.get(doc.id, []), doc, chosen, set_aside["pred"])
        for key in g | p:
            counts = per_type.setdefault(key[0], Counts())
            counts.tp += key in g and key in p
            counts.fp += key not in g
            counts.fn += key not in p
        parts[doc.id] = [len(g & p), len(g), len(p)]
    macro_types = chosen.types or tuple(sorted(per_type))
    return Result(view, dict(sorted(per_type.items())), parts, macro_types,
                  {side: dict(sorted((+c).items())) for side, c in set_aside.items()})


def default_view(gold: Sequence[Document]) -> str:
    entity_arguments = any(isinstance(arg, Entity) for d in gold for r in d.relations for arg in r.arguments)
    return "mention" if entity_arguments else "concept"


def markdown(result: Result) -> str:
    out = [f"view: {result.view}", "", "| type | P | R | F1 | TP | FP | FN |", "|---" * 7 + "|"]
    rows = [*result.per_type.items(), ("micro", result.micro)]
    out += [f"| {t} | {c.precision:.4f} | {c.recall:.4f} | {c.f1:.4f} | {c.tp} | {c.fp} | {c.fn} |" for t, c in rows]
    macro = result.macro
    out.append(f"| macro | {macro['precision']:.4f} | {macro['recall']:.4f} | {macro['f1']:.4f} | | | |")
    low, high = result.f1_interval()
    out.append(f"\nmicro F1 95 % interval {low:.4f}-{high:.4f} over {len(result.parts)} documents")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--gold", required=True, help="gold documents JSONL (with text and relations)")
    parser.add_argument("--pred", required=True, help="predictions JSONL (text optional)")
    parser.add_argument("--view", nargs="+", choices=tuple(VIEWS),
                        help="the views to score (default: mention for entity arguments, else concept)")
    parser.add_argument("--json", help="write the scores, one object per view, to this JSON file")
    args = parser.parse_args(argv)
    gold = read_jsonl(args.gold)
    pred = load_predictions(args.pred, gold)
    report = {}
    for view in args.view or [default_view(gold)]:
        result = score(gold, pred, view)
        for side, counts in result.set_aside.items():
            if counts:
                print(f"{view}: {side} relations not scored: {counts}", file=sys.stderr)
        report[view] = result.to_json()
        print(markdown(result) + "\n")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    exit_on_format_error(main)
