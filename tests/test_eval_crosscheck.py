"""Our scorer against nervaluate 1.2.1 and seqeval 1.2.2 on real corpora with perturbed predictions.

Predictions are made from the gold entities by a seeded generator: boundaries shifted, types swapped,
entities dropped, spurious ones added, some doubled by a shifted copy, and the list shuffled. Where
the pairing of gold and predicted entities is forced (no entity overlaps two of the other side),
nervaluate's greedy matching must give exactly our counts; elsewhere ours must be at least as good.
"""
from __future__ import annotations

import dataclasses
import random
from collections import Counter
from functools import lru_cache

import pytest
from nervaluate import Evaluator
from seqeval.metrics import f1_score
from seqeval.scheme import IOB2

from conftest import MIRROR, needs_mirror
from data.bio import sentence_tokens, to_bio
from data.corpus import Document, Entity, Span
from data.readers.standoff import read_pubtator
from eval.semeval import CATEGORIES, SCHEMAS, Match, Result, overlap, score

CORPORA = {"ncbi_disease": "ncbi_disease/original_pubtator/NCBItestset_corpus.txt",
           "bc5cdr": "bc5cdr/original/CDR_TestSet.PubTator.txt"}
NERVALUATE_SCHEMA = {"strict": "strict", "exact": "exact", "partial": "partial", "type": "ent_type"}
X = "X"

pytestmark = needs_mirror


@lru_cache(maxsize=None)
def corpus(name: str) -> tuple[Document, ...]:
    return tuple(read_pubtator(MIRROR / CORPORA[name]))


def perturb(doc: Document, sentences: list[list[Span]], types: list[str], rng: random.Random,
            max_shift: int, copies: bool) -> list[Entity]:
    """Predictions made from `doc`'s entities by moving their boundaries over the given units
    (tokens or characters, per sentence). With `copies`, some entities also get a shifted copy that
    competes for the same gold entity; without, no two predictions overlap."""
    unit_of = {}
    for si, units in enumerate(sentences):
        for k, (s, e) in enumerate(units):
            unit_of[s, "start"], unit_of[e, "end"] = (si, k), (si, k)
    taken: set[tuple[int, int]] = set()
    pred: list[Entity] = []

    def put(si: int, i: int, j: int, type_: str) -> None:
        units = {(si, k) for k in range(i, j + 1)}
        if copies or not units & taken:
            taken.update(units)
            pred.append(Entity.span(sentences[si][i][0], sentences[si][j][1], type_))

    def shifted(si: int, i: int, j: int) -> tuple[int, int]:
        last = len(sentences[si]) - 1
        i = min(max(i + rng.randint(-max_shift, max_shift), 0), last)
        j = min(max(j + rng.randint(-max_shift, max_shift), 0), last)
        return min(i, j), max(i, j)

    for ent in doc.entities:
        (si, i), (sj, j) = unit_of[ent.start, "start"], unit_of[ent.end, "end"]
        assert si == sj
        other = rng.choice([t for t in types if t != ent.type])
        r = rng.random()
        if r < 0.45:
            put(si, i, j, ent.type)
        elif r < 0.60:
            put(si, *shifted(si, i, j), ent.type)
        elif r < 0.70:
            put(si, i, j, other)
        elif r < 0.78:
            put(si, *shifted(si, i, j), other)
        elif r < 0.90:
            continue  # dropped
        else:
            put(si, i, j, ent.type)
            if copies:
                put(si, *shifted(si, i, j), ent.type)
    for _ in range(len(doc.entities) // 5 + 1):
        si = rng.randrange(len(sentences))
        i = rng.randrange(len(sentences[si]))
        put(si, i, min(i + rng.randrange(4 * max_shift), len(sentences[si]) - 1), rng.choice(types))
    rng.shuffle(pred)
    return pred


def char_predictions(name: str, seed: int, copies: bool) -> dict[str, list[Entity]]:
    """Character-level perturbations (a unit is one character; one 'sentence' per document)."""
    docs, rng = corpus(name), random.Random(seed)
    types = sorted({e.type for d in docs for e in d.entities})
    return {d.id: perturb(d, [[(k, k + 1) for k in range(len(d.text))]], types, rng, 3, copies)
            for d in docs}


def nervaluate(gold: list[Document], pred: dict[str, list[Entity]]) -> dict:
    """nervaluate's results for the same spans: dict loader, inclusive ends, entities in list order."""
    def dicts(ents) -> list[dict]:
        return [{"label": e.type, "start": e.start, "end": e.end - 1} for e in ents]
    tags = sorted({e.type for d in gold for e in d.entities} | {e.type for v in pred.values() for e in v})
    return Evaluator([dicts(d.entities) for d in gold], [dicts(pred.get(d.id, [])) for d in gold],
                     tags, loader="dict").evaluate()


def forced(gold: list[Entity], pred: list[Entity]) -> bool:
    """Whether the pairing is forced, so that greedy and optimal matching agree: no entity overlaps
    two of the other side, and every overlap reaches nervaluate's default 1 % of the gold length."""
    links = [(g, p) for g in gold for p in pred if g.overlaps(p)]
    degrees = Counter(id(g) for g, _ in links) + Counter(id(p) for _, p in links)
    return all(n == 1 for n in degrees.values()) and all(100 * overlap(g, p) >= g.end - g.start
                                                         for g, p in links)


def pred_subset(pred: dict[str, list[Entity]], docs: list[Document]) -> dict[str, list[Entity]]:
    return {d.id: pred[d.id] for d in docs}


def ours(result: Result, schema: str, type_: str | None = None) -> tuple[int, ...]:
    c = result.overall[schema] if type_ is None else result.per_type[type_][schema]
    return tuple(getattr(c, k) for k in CATEGORIES)


def theirs(c) -> tuple[int, ...]:
    return tuple(getattr(c, k) for k in CATEGORIES)


def nervaluate_per_type(result: Result) -> Result:
    """Our alignment re-counted with nervaluate's per-type convention: a pair of two different types
    becomes a missed gold entity plus a spurious prediction."""
    split = []
    for m in result.matches:
        if m.gold and m.pred and m.gold.type != m.pred.type:
            split += [Match(m.doc_id, m.gold, None), Match(m.doc_id, None, m.pred)]
        else:
            split.append(m)
    return Result(split)


@pytest.mark.parametrize("name", CORPORA)
def test_counts_equal_nervaluate_where_the_pairing_is_forced(name):
    gold, pred = list(corpus(name)), char_predictions(name, seed=13, copies=False)
    easy = [d for d in gold if forced(d.entities, pred[d.id])]
    assert len(easy) >= 0.5 * len(gold)  # the comparison covers most of the corpus
    mine, other = score(easy, pred_subset(pred, easy)), nervaluate(easy, pred)
    for s in SCHEMAS:
        assert ours(mine, s) == theirs(other["overall"][NERVALUATE_SCHEMA[s]]), s
    assert sum(ours(mine, "strict")) > 0.5 * sum(len(d.entities) for d in easy)
    as_theirs = nervaluate_per_type(mine)
    for t, by_schema in other["entities"].items():
        for s in SCHEMAS:
            assert ours(as_theirs, s, t) == theirs(by_schema[NERVALUATE_SCHEMA[s]]), (t, s)


@pytest.mark.parametrize("name", CORPORA)
def test_optimal_pairing_never_finds_fewer_exact_matches_than_greedy(name):
    gold, pred = list(corpus(name)), char_predictions(name, seed=17, copies=True)
    mine, other = score(gold, pred), nervaluate(gold, pred)["overall"]
    for s in ("strict", "exact"):
        assert mine.overall[s].correct >= other[s].correct
    for s in SCHEMAS:  # every gold entity and every prediction is counted once either way
        c = other[NERVALUATE_SCHEMA[s]]
        assert (mine.overall[s].possible, mine.overall[s].actual) == (c.possible, c.actual)


def test_nervaluate_greedy_depends_on_list_order():
    gold = [Entity.span(0, 10, X)]
    shifted_first = [Entity.span(0, 4, X), Entity.span(0, 10, X)]
    doc = [Document("d", "x" * 10, gold)]
    assert theirs(nervaluate(doc, {"d": shifted_first})["overall"]["strict"]) == (0, 1, 0, 0, 1)
    assert theirs(nervaluate(doc, {"d": shifted_first[::-1]})["overall"]["strict"]) == (1, 0, 0, 0, 1)
    assert ours(score({"d": gold}, {"d": shifted_first}), "strict") == (1, 0, 0, 0, 1)
    # a prediction spanning two gold entities takes the first one in the gold list
    golds = [Entity.span(6, 10, X), Entity.span(0, 5, X)]
    preds = [Entity.span(0, 10, X), Entity.span(6, 10, X)]
    other = nervaluate([Document("d", "x" * 10, golds)], {"d": preds})["overall"]
    assert theirs(other["strict"]) == (0, 1, 0, 1, 1)
    assert ours(score({"d": golds}, {"d": preds}), "strict") == (1, 1, 0, 0, 0)


def test_nervaluate_per_type_turns_a_confusion_into_missed_and_spurious():
    doc = Document("d", "x" * 10, [Entity.span(0, 5, X)])
    pred = {"d": [Entity.span(0, 5, "Y")]}
    other, mine = nervaluate([doc], pred), score([doc], pred)
    assert theirs(other["overall"]["strict"]) == ours(mine, "strict") == (0, 1, 0, 0, 0)
    assert theirs(other["entities"][X]["strict"]) == (0, 0, 0, 1, 0)
    assert theirs(other["entities"]["Y"]["strict"]) == (0, 0, 0, 0, 1)
    assert ours(mine, "strict", X) == (0, 1, 0, 0, 0) and "Y" not in mine.per_type


@pytest.mark.parametrize("name", CORPORA)
def test_seqeval_strict_f1_equals_ours_on_token_aligned_spans(name):
    rng = random.Random(29)
    docs = [dataclasses.replace(d, sentences=[], tokens=[]) for d in corpus(name)]
    types = sorted({e.type for d in docs for e in d.entities})
    pred, y_true, y_pred, changes = {}, [], [], Counter()
    for doc in docs:
        entities = perturb(doc, sentence_tokens(doc), types, rng, 1, copies=False)
        guess = dataclasses.replace(doc, entities=entities)
        pred[doc.id] = guess.entities
        y_true += to_bio(doc, changes=changes)
        y_pred += to_bio(guess, changes=changes)
    assert not changes  # neither corpus nests entities, so the tags hold every span unchanged
    strict = score(docs, pred).overall["strict"]
    assert f1_score(y_true, y_pred, mode="strict", scheme=IOB2) == pytest.approx(strict.f1, abs=1e-12)
    assert f1_score(y_true, y_pred) == pytest.approx(strict.f1, abs=1e-12)  # lenient = strict on valid IOB2
    assert 0.3 < strict.f1 < 0.9
