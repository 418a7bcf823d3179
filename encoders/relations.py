"""Relation classification over entity pairs, the BLURB recipe for ChemProt and DDI: the one core shared by
encoders/relation_main.py and encoders/relation_inference.py.

    document --candidates--> entity pairs, each labelled with its gold type or NEGATIVE ("no relation")
             --encode--> the pair's sentence with both arguments marked, as sub-words around the marks
             --model--> one label per pair (AutoModelForSequenceClassification over [CLS])
             --decode--> the document's predicted Relations (NEGATIVE pairs left out)

Candidates are every pair of a document's entities whose types the corpus allows as arguments and whose
sentences lie within `window` sentences of each other (0: the same sentence), ordered or not as the corpus
relates them, each labelled with the gold relation between its arguments or NEGATIVE: for ChemProt every
chemical-gene pair of a sentence, unannotated ones NEGATIVE, as BLURB builds it. DDI lists its candidate pairs
(every unordered pair of a sentence's mentions, in text order; ddi="false" ones NEGATIVE): a document that lists
any is classified on exactly those, 27,791 train and 5,716 test_ddi pairs, also from a JSONL file, which keeps no
sentence boundaries (data/text's sentences would give 46,942 train pairs); a document without (new text,
predicted entities) gets the sentence rule, which on the XML's sentences gives the same pairs (and the one
positive the reader drops for lacking a type). A gold relation that is no candidate (arguments in sentences
too far apart, a type not allowed) is counted (`relation_not_candidate`), never dropped unseen.
A discontinuous argument is marked over its outer extent.

Marking (`marking`):
    dummy    (default) each argument replaced by a token of its type, `@DRUG$`, `@CHEMICAL$`, `@GENE$`; two
             arguments that overlap (nested ChemProt mentions, a span that is both a chemical and a gene)
             are replaced together by one token naming both, `@CHEMICAL-GENE$`.
    markers  each argument kept and enclosed in `[E1]...[/E1]`, `[E2]...[/E2]`; nested or crossing
             arguments nest or cross their markers (at one position closing marks come before opening ones).
Both kinds of tokens are added to the tokenizer as special tokens (never split, never lower-cased) and get
embeddings of their own. Dummy replacement is the default because it is BLURB's preprocessing, under which
the anchors were measured (PubMedBERT: ChemProt 77.24, DDI 82.36 micro F1), so a paper-profile run is
comparable to them; it hides the arguments' names, so the classifier must read the statement between them
instead of memorising drug and gene names that recur across splits; and a long chemical name becomes one
token, which matters at BLURB's 128 sub-words.

An input longer than `max_length` keeps the window of sub-words around its marks (centred on the span from
the first mark to the last), so no argument is cut off as plain truncation would cut it; counted as `cut`.
"""
from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass
from itertools import combinations, permutations
from typing import Sequence

import numpy as np
import torch

from data.corpus import NEGATIVE, Document, Entity, InputError, Relation, Span
from data.registry import DDI_TYPES
from data.text import split_sentences
from encoders.tagging import MAX_BATCH_SIZE, MAX_BATCH_TOKENS, batches, special_tokens

MARKINGS = ("dummy", "markers")
MARKING = "dummy"
MARKERS = ("[E1]", "[/E1]", "[E2]", "[/E2]")
PROVENANCE = "relations.json"  # in a saved model folder: the scheme, marking and window it was trained with


@dataclass(frozen=True)
class Scheme:
    """What a corpus's relation classifier reads and predicts: its labels (NEGATIVE first), the entity types
    each argument may have (None: any), whether the order of the arguments counts, each entity type's dummy
    token, the eval/relations view its official score uses and whether its documents list their pairs."""

    labels: tuple[str, ...]
    arg1_types: tuple[str, ...] | None
    arg2_types: tuple[str, ...] | None
    ordered: bool
    dummies: dict[str, str]
    view: str
    pairs_given: bool = False  # the corpus lists its candidate pairs, unrelated ones as NEGATIVE (DDI)

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_json(cls, obj: dict) -> "Scheme":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in obj.items()})


def dummy(type_: str) -> str:
    return f"@{type_.upper()}$"


def dummy_of(scheme: Scheme, type_: str) -> str:
    """The scheme's dummy for an entity type; for a type its training data never showed, the generic one."""
    return scheme.dummies.get(type_, dummy(type_))


SCHEMES = {  # the BLURB corpora; other corpora get generic_scheme
    "ddi": Scheme((NEGATIVE, "mechanism", "effect", "advise", "int"), None, None, False,
                  {t: "@DRUG$" for t in DDI_TYPES}, "ddi", pairs_given=True),
    "ddi_brat": Scheme((NEGATIVE, "MECHANISM", "EFFECT", "ADVISE", "INT"), None, None, False,
                       {t.upper(): "@DRUG$" for t in DDI_TYPES}, "ddi"),
    "chemprot": Scheme((NEGATIVE, "CPR:3", "CPR:4", "CPR:5", "CPR:6", "CPR:9"), ("CHEMICAL",), ("GENE",), True,
                       {"CHEMICAL": "@CHEMICAL$", "GENE": "@GENE$"}, "chemprot"),
}


def generic_scheme(relation_types: Sequence[str], entity_types: Sequence[str]) -> Scheme:
    """Any other corpus (NEREL-BIO, RareDis, a --datasets_path folder): every ordered pair of any types, each
    type its own dummy, scored strictly (the mention view)."""
    return Scheme((NEGATIVE, *relation_types), None, None, True, {t: dummy(t) for t in entity_types}, "mention")


def scheme_for(name: str, relation_types: Sequence[str], entity_types: Sequence[str]) -> Scheme:
    if name in SCHEMES:
        return SCHEMES[name]
    if not relation_types:
        raise InputError(f"{name} has no relation types: nothing to classify")
    return generic_scheme(relation_types, entity_types)


def special_words(scheme: Scheme, marking: str) -> list[str]:
    """The tokens a marking adds to the tokenizer."""
    if marking == "markers":
        return list(MARKERS)
    singles = sorted(set(scheme.dummies.values()))
    return singles + [joined(a, b) for a in singles for b in singles]


def joined(first: str, second: str) -> str:
    """The one dummy of two overlapping arguments: @CHEMICAL$ and @GENE$ -> @CHEMICAL-GENE$."""
    return f"{first[:-1]}-{second[1:]}"


# --------------------------------------------------------------------------- candidate pairs
@dataclass(frozen=True)
class Candidate:
    """One entity pair of a document, the characters the model reads (`window`) and its gold label."""

    doc: int  # index of the document in the list the candidates were built from
    arg1: Entity
    arg2: Entity
    window: Span
    label: str


def sentence_spans(doc: Document) -> list[Span]:
    """The reader's sentences, else data/text's (never cutting an entity)."""
    return doc.sentences or split_sentences(doc.text, doc.entities) or [(0, len(doc.text))]


def allowed(scheme: Scheme, a: Entity, b: Entity) -> bool:
    return ((scheme.arg1_types is None or a.type in scheme.arg1_types)
            and (scheme.arg2_types is None or b.type in scheme.arg2_types))


def document_candidates(i: int, doc: Document, scheme: Scheme, window: int = 0,
                        counts: Counter | None = None) -> list[Candidate]:
    """The pairs of `doc`'s entities the model classifies, labelled from its relations (see the module
    docstring); `counts` gets the gold relations that are no candidate."""
    spans = sentence_spans(doc)
    starts = [s for s, _ in spans]
    first = {e: max(bisect.bisect_right(starts, e.start) - 1, 0) for e in doc.entities}
    last = {e: max(bisect.bisect_right(starts, e.end - 1) - 1, 0) for e in doc.entities}
    gold = {(r.arg1, r.arg2): r.type for r in doc.relations if isinstance(r.arg1, Entity)}
    out = []
    for a, b in pairs(doc, scheme, window, first, last):
        lo, hi = min(first[a], first[b]), max(last[a], last[b])
        label = gold.pop((a, b), None) or (None if scheme.ordered else gold.pop((b, a), None))
        out.append(Candidate(i, a, b, (spans[lo][0], spans[hi][1]), label or NEGATIVE))
    if counts is not None:
        counts["relation_not_candidate"] += sum(t != NEGATIVE for t in gold.values())
    return out


def pairs(doc: Document, scheme: Scheme, window: int, first: dict[Entity, int],
          last: dict[Entity, int]) -> list[tuple[Entity, Entity]]:
    """The pairs a document lists (a corpus whose pairs are given, when the document has any: then sentence
    boundaries do not matter, and a JSONL file, which keeps none, gives the same pairs), else every pair of
    allowed types within `window` sentences; in text order where the order does not count."""
    def order(e: Entity) -> tuple:
        return e.start, e.end, e.type

    if scheme.pairs_given and doc.relations:
        listed = {(a, b) if scheme.ordered or order(a) <= order(b) else (b, a) for a, b in
                  (r.arguments for r in doc.relations)}
        return sorted(listed, key=lambda p: (order(p[0]), order(p[1])))
    entities = sorted(set(doc.entities), key=order)
    return [(a, b) for a, b in (permutations(entities, 2) if scheme.ordered else combinations(entities, 2))
            if (allowed(scheme, a, b) or (not scheme.ordered and allowed(scheme, b, a)))
            and max(first[a], first[b]) - min(last[a], last[b]) <= window]


def candidates(docs: Sequence[Document], scheme: Scheme, window: int = 0,
               counts: Counter | None = None) -> list[Candidate]:
    return [c for i, doc in enumerate(docs) for c in document_candidates(i, doc, scheme, window, counts)]


# --------------------------------------------------------------------------- marking and encoding
def marked_text(text: str, cand: Candidate, scheme: Scheme, marking: str = MARKING) -> str:
    """The text the model reads for one pair: its window with both arguments marked."""
    (s1, e1), (s2, e2) = (cand.arg1.start, cand.arg1.end), (cand.arg2.start, cand.arg2.end)
    if marking == "markers":
        inserts = sorted([(e1, 0, -s1, 0, "[/E1]"), (e2, 0, -s2, -1, "[/E2]"),  # closing before opening,
                          (s1, 1, -e1, 0, "[E1]"), (s2, 1, -e2, 1, "[E2]")])  # inner closes first
        edits = [(pos, pos, token) for pos, *_, token in inserts]
    elif s1 < e2 and s2 < e1:
        both = joined(dummy_of(scheme, cand.arg1.type), dummy_of(scheme, cand.arg2.type))
        edits = [(min(s1, s2), max(e1, e2), both)]
    else:
        edits = sorted([(s1, e1, dummy_of(scheme, cand.arg1.type)), (s2, e2, dummy_of(scheme, cand.arg2.type))])
    out, pos = [], cand.window[0]
    for start, end, token in edits:
        out += [text[pos:start], token]
        pos = end
    out.append(text[pos:cand.window[1]])
    return "".join(out)


@dataclass
class Encoded:
    """Model inputs (special tokens included) of the candidates of `docs`, in candidate order."""

    docs: Sequence[Document]
    candidates: list[Candidate]
    input_ids: list[list[int]]
    cut: int  # inputs longer than max_length, cut to the window around their marks

    def examples(self, label2id: dict[str, int]) -> list[dict]:
        """The dicts transformers' collators and Trainer take."""
        return [{"input_ids": ids, "labels": label2id[c.label]} for c, ids in zip(self.candidates, self.input_ids)]


def around_marks(ids: list[int], marks: set[int], budget: int) -> list[int]:
    """At most `budget` ids: all of them, or the window centred on the span from the first mark to the last."""
    if len(ids) <= budget:
        return ids
    at = [i for i, t in enumerate(ids) if t in marks] or [0]
    lo, hi = at[0], at[-1] + 1
    start = max(0, min(lo - (budget - (hi - lo)) // 2, len(ids) - budget))
    return ids[start:start + budget]


def encode(docs: Sequence[Document], tokenizer, scheme: Scheme, marking: str = MARKING, max_length: int = 128,
           window: int = 0, counts: Counter | None = None) -> Encoded:
    """Candidates of `docs` and their inputs; the tokenizer must know the marking's tokens (add_tokens)."""
    cands = candidates(docs, scheme, window, counts)
    texts = [marked_text(docs[c.doc].text, c, scheme, marking) for c in cands]
    prefix, suffix = special_tokens(tokenizer)
    marks = set(tokenizer.convert_tokens_to_ids(special_words(scheme, marking)))
    budget = max_length - len(prefix) - len(suffix)
    bare = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
    ids = [prefix + around_marks(x, marks, budget) + suffix for x in bare]
    return Encoded(docs, cands, ids, sum(len(x) > budget for x in bare))


def add_tokens(tokenizer, model, scheme: Scheme, marking: str) -> None:
    """The marking's tokens into the tokenizer and, with embeddings of their own, the model."""
    if tokenizer.add_tokens(special_words(scheme, marking), special_tokens=True):
        model.resize_token_embeddings(len(tokenizer))


# --------------------------------------------------------------------------- prediction and decoding
@torch.inference_mode()
def predict_logits(model, encoded: Encoded, pad_id: int, max_tokens: int | None = None,
                   max_size: int = MAX_BATCH_SIZE) -> np.ndarray:
    """Label logits (pairs x labels): length-sorted batches padded to their longest input."""
    model.eval()
    device = next(model.parameters()).device
    max_tokens = max_tokens or MAX_BATCH_TOKENS["cpu" if device.type == "cpu" else "accelerator"]
    lengths = [len(x) for x in encoded.input_ids]
    out = np.zeros((len(lengths), model.config.num_labels), dtype=np.float32)
    for group in batches(lengths, max_tokens, max_size):
        ids = torch.full((len(group), lengths[group[0]]), pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, i in enumerate(group):
            ids[row, :lengths[i]] = torch.tensor(encoded.input_ids[i])
            mask[row, :lengths[i]] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        out[group] = logits.float().cpu().numpy()
    return out


def decode(encoded: Encoded, label_ids: Sequence[int], labels: Sequence[str]) -> list[Document]:
    """Copies of the documents (entities kept, sentences dropped) with the predicted relations, NEGATIVE
    pairs left out, arguments in candidate order."""
    out = [Document(d.id, d.text, list(d.entities)) for d in encoded.docs]
    for cand, label in zip(encoded.candidates, label_ids):
        if labels[label] != NEGATIVE:
            out[cand.doc].relations.append(Relation(labels[label], cand.arg1, cand.arg2))
    return out


def predict(model, tokenizer, docs: Sequence[Document], scheme: Scheme, marking: str = MARKING,
            max_length: int = 128, window: int = 0, max_tokens: int | None = None) -> list[Document]:
    """`docs` with the relations the model predicts between their entities (their gold relations, if any,
    are not looked at)."""
    encoded = encode(docs, tokenizer, scheme, marking, max_length, window)
    logits = predict_logits(model, encoded, tokenizer.pad_token_id, max_tokens)
    return decode(encoded, logits.argmax(-1), [model.config.id2label[i] for i in range(model.config.num_labels)])


def score_line(label: str, scores: dict) -> str:
    """"  LABEL: ddi micro P .. R .. F1 .. (95 % ..-..)" from eval/relations JSON."""
    m, (low, high) = scores["micro"], scores["bootstrap"]["f1_ci95"]
    return (f"  {label}: {scores['view']} micro P {m['precision']:.4f} R {m['recall']:.4f} F1 {m['f1']:.4f} "
            f"(95 % {low:.4f}-{high:.4f})")
