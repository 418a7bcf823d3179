"""SemEval-2013 task 9.1 scoring of character spans: one optimal alignment, four schemas.

Every method in the project is scored here, from the same `(document, fragments, type)` spans.

Alignment. Within each document, gold and predicted entities are paired one-to-one: a gold entity
is matched by at most one prediction and a prediction matches at most one gold entity; only
overlapping entities (sharing at least one character of a fragment) can be paired. Among all such
pairings we take the best one, comparing lexicographically the number of pairs with identical
fragments and type, then with identical fragments, then overlapping with the same type, then
overlapping at all; remaining ties go to the larger total overlap in characters, then to a fixed
order of the entities. The result does not depend on the order of the input lists. A prediction
that overlaps two gold entities is paired with (at most) one of them; the other is missed unless
another prediction pairs with it. Unpaired gold entities are missed, unpaired predictions spurious.

Schemas, for a pair (gold, pred); "exact" boundaries means identical fragment sets, so a
discontinuous entity must get every fragment right:
    strict   correct if exact boundaries and same type, else incorrect
    exact    correct if exact boundaries, else incorrect
    partial  correct if exact boundaries, else partial (half credit)
    type     correct if same type, else incorrect
Precision = (COR + 0.5 PAR) / actual and recall = (COR + 0.5 PAR) / possible, with
possible = COR + INC + PAR + MIS (the gold entities) and actual = COR + INC + PAR + SPU (the predictions).

Uncertainty. `to_json` carries a 95 % percentile bootstrap interval of the strict F1 over documents
(resampled with replacement, a fixed seed): how far the score could move on another sample of documents
like these, the test set being a sample of the corpus. Documents, not entities, are resampled because the
mentions of one abstract are not independent.

Per type, COR / INC / PAR / MIS are counted under the gold entity's type and SPU under the predicted
type, so the per-type counts add up to the overall counts; a type confusion is INC for the gold type
(nervaluate instead re-scores each type on its own, turning a confusion into MIS + SPU). Macro scores
average the per-type precision, recall and F1 over every type seen in the gold or the predictions.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from data.corpus import Document, Entity

SCHEMAS = ("strict", "exact", "partial", "type")
CATEGORIES = ("correct", "incorrect", "partial", "missed", "spurious")
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0

Corpus = Mapping[str, Sequence[Entity]] | Sequence[Document]


@dataclass
class Counts:
    """The five SemEval categories for one schema, and the scores they give."""

    correct: int = 0
    incorrect: int = 0
    partial: int = 0
    missed: int = 0
    spurious: int = 0

    @property
    def possible(self) -> int:
        return self.correct + self.incorrect + self.partial + self.missed

    @property
    def actual(self) -> int:
        return self.correct + self.incorrect + self.partial + self.spurious

    @property
    def precision(self) -> float:
        return ratio(self.correct + 0.5 * self.partial, self.actual)

    @property
    def recall(self) -> float:
        return ratio(self.correct + 0.5 * self.partial, self.possible)

    @property
    def f1(self) -> float:
        return harmonic_mean(self.precision, self.recall)

    def add(self, category: str) -> None:
        setattr(self, category, getattr(self, category) + 1)

    def to_json(self) -> dict:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1,
                **{c: getattr(self, c) for c in CATEGORIES},
                "possible": self.possible, "actual": self.actual}


@dataclass(frozen=True)
class Match:
    """One line of the alignment: a gold entity and its prediction, either of them possibly absent."""

    doc_id: str
    gold: Entity | None
    pred: Entity | None

    @property
    def type(self) -> str:
        """The type this line is counted under: the gold type, or the predicted type if spurious."""
        return (self.gold or self.pred).type

    def category(self, schema: str) -> str:
        if self.pred is None:
            return "missed"
        if self.gold is None:
            return "spurious"
        exact = self.gold.fragments == self.pred.fragments
        same_type = self.gold.type == self.pred.type
        good = {"strict": exact and same_type, "exact": exact, "partial": exact, "type": same_type}[schema]
        if good:
            return "correct"
        return "partial" if schema == "partial" else "incorrect"


@dataclass
class Result:
    """The alignment and its counts: overall and per type, for every schema."""

    matches: list[Match]
    documents: list[str] = field(default_factory=list)  # every scored document, with entities or not
    overall: dict[str, Counts] = field(init=False)
    per_type: dict[str, dict[str, Counts]] = field(init=False)

    def __post_init__(self) -> None:
        self.overall = {s: Counts() for s in SCHEMAS}
        per_type: dict[str, dict[str, Counts]] = {}
        for m in self.matches:
            by_type = per_type.setdefault(m.type, {s: Counts() for s in SCHEMAS})
            for s in SCHEMAS:
                category = m.category(s)
                self.overall[s].add(category)
                by_type[s].add(category)
        self.per_type = dict(sorted(per_type.items()))

    @property
    def macro(self) -> dict[str, dict[str, float]]:
        """Unweighted means over types of the per-type precision, recall and F1."""
        out = {}
        for s in SCHEMAS:
            rows = [t[s] for t in self.per_type.values()]
            out[s] = {k: float(np.mean([getattr(r, k) for r in rows])) if rows else 0.0
                      for k in ("precision", "recall", "f1")}
        return out

    def document_parts(self, schema: str = "strict") -> dict[str, list[float]]:
        """Per document (every scored one, sorted by id), the parts its F1 adds up from: [COR + PAR / 2,
        possible, actual]; F1 = 2 (COR + PAR / 2) / (possible + actual) over any set of documents."""
        parts = {d: [0.0, 0, 0] for d in sorted(set(self.documents) | {m.doc_id for m in self.matches})}
        credit = {"correct": 1.0, "partial": 0.5}
        for m in self.matches:
            part = parts[m.doc_id]
            part[0] += credit.get(m.category(schema), 0.0)
            part[1] += m.gold is not None
            part[2] += m.pred is not None
        return parts

    def f1_interval(self, schema: str = "strict", resamples: int = BOOTSTRAP_RESAMPLES,
                    seed: int = BOOTSTRAP_SEED) -> list[float]:
        """95 % percentile bootstrap interval of the F1 of `schema`, documents resampled with replacement."""
        return percentiles(resampled_f1(np.array(list(self.document_parts(schema).values())), resamples, seed))

    def to_json(self) -> dict:
        strict = self.document_parts()  # once: the interval and the stored parts both read it
        return {**{s: self.overall[s].to_json() for s in SCHEMAS},
                "per_type": {t: {s: c.to_json() for s, c in by.items()} for t, by in self.per_type.items()},
                "macro": self.macro,
                "bootstrap": {"strict_f1_ci95": percentiles(resampled_f1(np.array(list(strict.values())))),
                              "documents": len(strict),
                              "resamples": BOOTSTRAP_RESAMPLES, "seed": BOOTSTRAP_SEED,
                              "strict_parts": strict}}


def resampled_f1(parts: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """The F1 of each bootstrap resample of documents. parts: (documents, 3) as Result.document_parts gives
    them; the draws depend only on the number of documents and the seed, so two systems scored on the same
    documents are resampled alike (a paired bootstrap)."""
    if not len(parts):
        return np.zeros(1)
    draws = np.random.default_rng(seed).integers(0, len(parts), (resamples, len(parts)))
    sums = parts[draws].sum(axis=1)
    return 2 * sums[:, 0] / np.maximum(sums[:, 1] + sums[:, 2], 1)


def percentiles(values: np.ndarray) -> list[float]:
    return [round(float(x), 6) for x in np.percentile(values, [2.5, 97.5])]


def difference_interval(first: dict, second: dict) -> list[float]:
    """95 % paired bootstrap interval of the strict F1 of `first` minus that of `second`: two scorer JSONs
    (Result.to_json) of the same documents, each resample drawing the same documents for both."""
    a, b = first["bootstrap"]["strict_parts"], second["bootstrap"]["strict_parts"]
    if a.keys() != b.keys():
        raise ValueError("a paired interval needs two scores of the same documents")
    return percentiles(resampled_f1(np.array(list(a.values()))) - resampled_f1(np.array([b[d] for d in a])))


def score(gold: Corpus, pred: Corpus) -> Result:
    """Align and count. Documents absent from `pred` are predicted empty; unknown ids are an error."""
    gold_map, pred_map = by_document(gold), by_document(pred)
    unknown = sorted(pred_map.keys() - gold_map.keys())
    if unknown:
        raise ValueError(f"predictions for {len(unknown)} unknown document(s), e.g. {unknown[:3]}")
    return Result([Match(doc_id, g, p) for doc_id in sorted(gold_map)
                   for g, p in align(gold_map[doc_id], pred_map.get(doc_id, ()))], sorted(gold_map))


def by_document(corpus: Corpus) -> dict[str, list[Entity]]:
    if isinstance(corpus, Mapping):
        return {str(k): list(v) for k, v in corpus.items()}
    out: dict[str, list[Entity]] = {}
    for doc in corpus:
        if doc.id in out:
            raise ValueError(f"duplicate document id {doc.id!r}")
        out[doc.id] = list(doc.entities)
    return out


def align(gold: Sequence[Entity], pred: Sequence[Entity]) -> list[tuple[Entity | None, Entity | None]]:
    """The best one-to-one pairing of one document's entities (see the module docstring)."""
    pairs: list[tuple[Entity | None, Entity | None]] = []
    for golds, preds in _clusters(gold, pred):
        pairs.extend(_align_cluster(golds, preds))
    return pairs


def overlap(a: Entity, b: Entity) -> int:
    """Number of characters two entities share, fragment by fragment."""
    return sum(max(0, min(e1, e2) - max(s1, s2)) for s1, e1 in a.fragments for s2, e2 in b.fragments)


def harmonic_mean(p: float, r: float) -> float:
    return ratio(2 * p * r, p + r)


def ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _clusters(gold: Sequence[Entity], pred: Sequence[Entity]) -> Iterator[tuple[list[Entity], list[Entity]]]:
    """Groups of entities whose extents chain together; no pair across groups can overlap.

    Sorting makes both the grouping and the order inside a group independent of the input order,
    which is what makes the tie-breaks of the assignment deterministic.
    """
    items = sorted([(e, False) for e in gold] + [(e, True) for e in pred])  # entities sort by fragments, type
    group: list[tuple[Entity, bool]] = []
    reach = 0
    for item in items:
        if group and item[0].start >= reach:
            yield _split(group)
            group = []
        reach = max(reach, item[0].end) if group else item[0].end
        group.append(item)
    if group:
        yield _split(group)


def _split(group: list[tuple[Entity, bool]]) -> tuple[list[Entity], list[Entity]]:
    return [e for e, is_pred in group if not is_pred], [e for e, is_pred in group if is_pred]


def _align_cluster(golds: list[Entity], preds: list[Entity]) -> list[tuple[Entity | None, Entity | None]]:
    """Maximum-weight assignment whose weights encode the lexicographic priority.

    A pair of level L (3 = same fragments and type, 2 = same fragments, 1 = overlap with the same
    type, 0 = overlap) weighs base**L with base = 1 + the most pairs possible, so one pair of a level
    outweighs any number of pairs of lower levels; the overlap length is added as a fraction whose
    total stays below 1, so it only breaks ties.
    """
    weights = np.zeros((len(golds), len(preds)))
    base = min(len(golds), len(preds)) + 1
    scale = 1 + sum(e - s for g in golds for s, e in g.fragments)
    for i, g in enumerate(golds):
        for j, p in enumerate(preds):
            shared = overlap(g, p)
            if shared:
                level = 2 * (g.fragments == p.fragments) + (g.type == p.type)
                weights[i, j] = base ** level + shared / scale
    rows, cols = linear_sum_assignment(weights, maximize=True)
    paired = [(i, j) for i, j in zip(rows, cols) if weights[i, j] > 0]
    used_g, used_p = {i for i, _ in paired}, {j for _, j in paired}
    return ([(golds[i], preds[j]) for i, j in paired]
            + [(g, None) for i, g in enumerate(golds) if i not in used_g]
            + [(None, p) for j, p in enumerate(preds) if j not in used_p])
