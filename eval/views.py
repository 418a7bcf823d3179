"""The other scoring views the source papers used, all derived from the same character spans.

- `iob`: token-level IOB tags over the gold document's word tokens, scored by seqeval in its lenient
  default mode (seed 2) and in strict IOB2 mode (seed 1). Tagging flattens nested, overlapping and
  discontinuous entities, so the view reports how many entities that changed.
- `string_sets`: per document, the set of lower-cased mention strings, optionally paired with the type;
  micro over documents (seed 3).
- `string_multisets`: per document and type, the multiset of mention strings; micro over types (seed 4).
- `length_buckets`: strict scores of entities of 1, 2 and >= 3 words (seed 0).
Predicted mentions are read off the gold text at their offsets, so every view sees the same mentions.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Sequence

from seqeval.metrics import f1_score, precision_score, recall_score
from seqeval.scheme import IOB2

from data.bio import describe_changes, to_bio
from data.corpus import Document, Entity
from data.text import segment, tokenize
from eval.semeval import Corpus, Result, by_document, harmonic_mean, ratio

BUCKETS = ("1", "2", ">=3")


def prf(tp: int, n_gold: int, n_pred: int) -> dict:
    p, r = ratio(tp, n_pred), ratio(tp, n_gold)
    return {"precision": p, "recall": r, "f1": harmonic_mean(p, r), "tp": tp, "gold": n_gold, "pred": n_pred}


def iob(gold: Sequence[Document], pred: Corpus) -> dict:
    """seqeval scores of gold and predicted IOB2 tags (data.bio's default flattening) over the gold
    document's tokens, sentence by sentence. Documents without tokens are segmented as for training
    (data.text.segment), so every gold span is a token span; predictions are widened to tokens."""
    preds = by_document(pred)
    y_true: list[list[str]] = []
    y_pred: list[list[str]] = []
    changed = {"gold": Counter(), "pred": Counter()}
    for doc in gold:
        doc = segment(dataclasses.replace(doc, sentences=list(doc.sentences), tokens=list(doc.tokens)))
        guess = dataclasses.replace(doc, entities=preds.get(doc.id, []))
        y_true += to_bio(doc, changes=changed["gold"])
        y_pred += to_bio(guess, changes=changed["pred"])
    modes = {"lenient": {}, "strict": {"mode": "strict", "scheme": IOB2}}
    out: dict = {name: {"precision": float(precision_score(y_true, y_pred, zero_division=0, **kw)),
                        "recall": float(recall_score(y_true, y_pred, zero_division=0, **kw)),
                        "f1": float(f1_score(y_true, y_pred, zero_division=0, **kw))}
                 for name, kw in modes.items()}
    out["flattening_changes"] = {side: dict(sorted(c.items())) for side, c in changed.items()}
    return out


def string_sets(gold: Sequence[Document], pred: Corpus, by_type: bool = False) -> dict:
    """Micro P/R/F1 over documents of the sets of lower-cased mention strings (with types if by_type)."""
    preds = by_document(pred)
    tp = n_gold = n_pred = 0
    for doc in gold:
        g, p = (_lowered(doc.text, ents, by_type) for ents in (doc.entities, preds.get(doc.id, [])))
        tp, n_gold, n_pred = tp + len(g & p), n_gold + len(g), n_pred + len(p)
    return prf(tp, n_gold, n_pred)


def _lowered(text: str, ents: Sequence[Entity], by_type: bool) -> set[tuple[str, str]]:
    return {(e.type if by_type else "", e.surface(text).lower()) for e in ents}


def string_multisets(gold: Sequence[Document], pred: Corpus) -> dict:
    """Per document and type, multisets of mention strings: micro over types, and each type."""
    preds = by_document(pred)
    per_type: dict[str, list[int]] = {}
    for doc in gold:
        g = Counter((e.type, e.surface(doc.text)) for e in doc.entities)
        p = Counter((e.type, e.surface(doc.text)) for e in preds.get(doc.id, []))
        for counter, col in ((g & p, 0), (g, 1), (p, 2)):
            for (t, _), n in counter.items():
                per_type.setdefault(t, [0, 0, 0])[col] += n
    totals = [sum(v[i] for v in per_type.values()) for i in range(3)]
    return {**prf(*totals), "per_type": {t: prf(*v) for t, v in sorted(per_type.items())}}


def length_buckets(gold: Sequence[Document], result: Result) -> dict:
    """Strict scores by mention length in words (data.text tokens): recall counts gold entities of a
    bucket, precision the predictions of that bucket; a strict match has one length on both sides."""
    texts = {d.id: d.text for d in gold}
    counts = {b: [0, 0, 0] for b in BUCKETS}  # tp, gold, pred
    for m in result.matches:
        text = texts[m.doc_id]
        if m.gold is not None:
            counts[_bucket(m.gold, text)][1] += 1
        if m.pred is not None:
            counts[_bucket(m.pred, text)][2] += 1
        if m.category("strict") == "correct":
            counts[_bucket(m.gold, text)][0] += 1
    return {b: prf(*v) for b, v in counts.items()}


def _bucket(ent: Entity, text: str) -> str:
    """Words are data.text tokens; a mention without any (only spaces) goes with the one-word ones."""
    words = sum(len(tokenize(text, s, e)) for s, e in ent.fragments)
    return BUCKETS[min(max(words, 1), 3) - 1]


def all_views(gold: Sequence[Document], pred: Corpus, result: Result) -> dict:
    return {"iob": iob(gold, pred),
            "string_sets": string_sets(gold, pred),
            "string_sets_by_type": string_sets(gold, pred, by_type=True),
            "string_multisets": string_multisets(gold, pred),
            "length_buckets": length_buckets(gold, result)}


def views_markdown(views: dict) -> str:
    rows = [("iob lenient (seqeval default)", views["iob"]["lenient"]),
            ("iob strict (seqeval IOB2)", views["iob"]["strict"]),
            ("lower-cased string sets per document", views["string_sets"]),
            ("lower-cased (type, string) sets per document", views["string_sets_by_type"]),
            ("string multisets per document and type", views["string_multisets"])]
    rows += [(f"strict, mentions of {b} word(s)", v) for b, v in views["length_buckets"].items()]
    out = ["| view | P | R | F1 |", "|---|---|---|---|"]
    out += [f"| {name} | {v['precision']:.4f} | {v['recall']:.4f} | {v['f1']:.4f} |" for name, v in rows]
    for side, changes in views["iob"]["flattening_changes"].items():
        out.append(f"\n{side}: {describe_changes(Counter(changes))}")
    return "\n".join(out)
