"""SemEval-2013 scoring on hand-made cases, and the evaluate.py CLI end to end."""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from data.corpus import Document, Entity, exit_on_format_error
from eval import evaluate
from eval.semeval import CATEGORIES, SCHEMAS, difference_interval, score
from eval.views import iob, length_buckets, string_multisets, string_sets

ROOT = Path(__file__).resolve().parent.parent
E, X, Y = Entity.span, "X", "Y"


def counts(result, schema: str, type_: str | None = None) -> tuple[int, ...]:
    c = result.overall[schema] if type_ is None else result.per_type[type_][schema]
    return tuple(getattr(c, k) for k in CATEGORIES)


def one(gold: list[Entity], pred: list[Entity]):
    return score({"d": gold}, {"d": pred})


COR, INC, PAR, MIS_SPU = (1, 0, 0, 0, 0), (0, 1, 0, 0, 0), (0, 0, 1, 0, 0), (0, 0, 0, 1, 1)
# name: gold, pred, expected (COR, INC, PAR, MIS, SPU) under strict, exact, partial, type
CASES = {
    "identical": (E(0, 10, X), E(0, 10, X), (COR, COR, COR, COR)),
    "same span, other type": (E(0, 10, X), E(0, 10, Y), (INC, COR, COR, INC)),
    "overlap, same type": (E(0, 10, X), E(5, 15, X), (INC, INC, PAR, COR)),
    "overlap, other type": (E(0, 10, X), E(5, 15, Y), (INC, INC, PAR, INC)),
    "adjacent, no overlap": (E(0, 10, X), E(10, 15, X), (MIS_SPU,) * 4),
}


@pytest.mark.parametrize("name", CASES)
def test_every_category_and_schema(name):
    gold, pred, expected = CASES[name]
    result = one([gold], [pred])
    assert tuple(counts(result, s) for s in SCHEMAS) == expected


def test_missed_and_spurious_alone():
    assert counts(one([E(0, 3, X)], []), "strict") == (0, 0, 0, 1, 0)
    assert counts(one([], [E(0, 3, X)]), "type") == (0, 0, 0, 0, 1)
    empty = one([], [])
    assert counts(empty, "strict") == (0,) * 5 and empty.overall["strict"].f1 == 0.0


def test_scores_give_partial_matches_half_credit():
    # exact; overlapping; gold missed; same span but other type; spurious
    gold = [E(0, 5, X), E(10, 15, X), E(20, 25, X), E(30, 35, X)]
    pred = [E(0, 5, X), E(12, 18, X), E(40, 45, X), E(30, 35, Y)]
    r = one(gold, pred)
    assert counts(r, "partial") == (2, 0, 1, 1, 1)
    p = r.overall["partial"]
    assert (p.possible, p.actual) == (4, 4)
    assert p.precision == p.recall == pytest.approx(2.5 / 4)
    s = r.overall["strict"]
    assert counts(r, "strict") == (1, 2, 0, 1, 1)
    assert (s.precision, s.recall, s.f1) == (0.25, 0.25, 0.25)
    assert r.overall["type"].precision == pytest.approx(2 / 4)


def test_single_character_and_single_token_overlaps_count():
    # Seed 0 tested overlap with an inclusive end over range(start, end): a one-unit entity never overlapped.
    assert counts(one([E(3, 4, X)], [E(3, 9, X)]), "partial") == (0, 0, 1, 0, 0)
    assert counts(one([E(3, 9, X)], [E(8, 9, X)]), "type") == (1, 0, 0, 0, 0)
    assert counts(one([E(3, 4, X)], [E(2, 3, X)]), "partial") == (0, 0, 0, 1, 1)


def test_prediction_order_does_not_matter():
    # Greedy first-found matching pairs the gold with whichever prediction comes first.
    gold = [E(0, 10, X)]
    for pred in ([E(0, 4, X), E(0, 10, X)], [E(0, 10, X), E(0, 4, X)]):
        r = one(gold, pred)
        assert counts(r, "strict") == (1, 0, 0, 0, 1)
        assert [(m.gold, m.pred) for m in r.matches if m.gold] == [(E(0, 10, X), E(0, 10, X))]


def test_order_independence_on_a_random_tangle():
    rng = random.Random(7)

    def entity() -> Entity:
        s = rng.randrange(0, 40)
        return E(s, s + rng.randrange(1, 8), rng.choice("XYZ"))

    gold, pred = [entity() for _ in range(25)], [entity() for _ in range(25)]
    reference = one(gold, pred).to_json()
    for _ in range(10):
        rng.shuffle(gold)
        rng.shuffle(pred)
        assert one(gold, pred).to_json() == reference


def test_prediction_over_two_golds_pairs_with_one_and_the_other_is_missed():
    r = one([E(0, 5, X), E(6, 10, X)], [E(0, 10, X)])
    assert counts(r, "partial") == (0, 0, 1, 1, 0)
    assert [m.gold for m in r.matches if m.pred] == [E(0, 5, X)]  # the larger overlap wins


def test_exact_boundaries_outrank_the_number_of_pairs():
    # Pairing g1-p2 and g2-p1 would match everything, but only with inexact boundaries.
    g1, g2, p1, p2 = E(0, 10, X), E(9, 15, X), E(0, 10, X), E(0, 3, X)
    r = one([g1, g2], [p1, p2])
    assert counts(r, "strict") == (1, 0, 0, 1, 1)


def test_exact_boundaries_outrank_the_type_and_the_type_outranks_overlap_length():
    r = one([E(0, 10, X)], [E(0, 10, Y), E(0, 4, X)])
    assert [m.pred for m in r.matches if m.gold] == [E(0, 10, Y)]
    assert counts(r, "type") == (0, 1, 0, 0, 1)
    r = one([E(0, 10, X)], [E(0, 9, Y), E(0, 4, X)])
    assert [m.pred for m in r.matches if m.gold] == [E(0, 4, X)]
    r = one([E(0, 10, X)], [E(0, 6, X), E(5, 10, X)])
    assert [m.pred for m in r.matches if m.gold] == [E(0, 6, X)]


def test_discontinuous_entities_compare_fragment_sets():
    gold = Entity(((0, 3), (8, 12)), X)
    assert counts(one([gold], [Entity(((0, 3), (8, 12)), X)]), "strict") == (1, 0, 0, 0, 0)
    assert counts(one([gold], [E(0, 12, X)]), "partial") == (0, 0, 1, 0, 0)  # same extent, other fragments
    assert counts(one([gold], [E(0, 3, X)]), "partial") == (0, 0, 1, 0, 0)
    assert counts(one([gold], [E(4, 7, X)]), "partial") == (0, 0, 0, 1, 1)  # inside the gap


def test_duplicates_pair_one_to_one():
    assert counts(one([E(0, 3, X)] * 2, [E(0, 3, X)] * 3), "strict") == (2, 0, 0, 0, 1)


def test_per_type_counts_confusions_under_the_gold_type_and_add_up():
    gold = [E(0, 5, X), E(10, 15, X), E(20, 25, Y)]
    pred = [E(0, 5, Y), E(10, 15, X), E(30, 35, Y)]
    r = one(gold, pred)
    assert counts(r, "strict", X) == (1, 1, 0, 0, 0)
    assert counts(r, "strict", Y) == (0, 0, 0, 1, 1)
    for s in SCHEMAS:
        assert tuple(map(sum, zip(*(counts(r, s, t) for t in r.per_type)))) == counts(r, s)


def test_macro_averages_per_type_scores_micro_pools_counts():
    # X: 3 gold, all found. Y: 1 gold, missed, one spurious Y. Z: only predicted.
    gold = [E(0, 2, X), E(3, 5, X), E(6, 8, X), E(10, 12, Y)]
    pred = [E(0, 2, X), E(3, 5, X), E(6, 8, X), E(20, 22, Y), E(30, 32, "Z")]
    r = one(gold, pred)
    assert r.overall["strict"].precision == pytest.approx(3 / 5)
    assert r.overall["strict"].recall == pytest.approx(3 / 4)
    assert r.macro["strict"] == pytest.approx({"precision": 1 / 3, "recall": 1 / 3, "f1": 1 / 3})
    assert set(r.to_json()["per_type"]) == {X, Y, "Z"}


def test_documents_and_mappings_are_interchangeable():
    gold = [Document("a", "x" * 20, [E(0, 3, X)]), Document("b", "x" * 20, [E(5, 8, Y)])]
    pred = [Document("a", "", [E(0, 3, X)])]  # b missing: predicted empty
    as_mappings = score({"a": [E(0, 3, X)], "b": [E(5, 8, Y)]}, {"a": [E(0, 3, X)]})
    assert score(gold, pred).to_json() == as_mappings.to_json()
    assert counts(score(gold, pred), "strict") == (1, 0, 0, 1, 0)
    with pytest.raises(ValueError, match="unknown document"):
        score(gold, {"c": []})


def test_json_layout():
    out = one([E(0, 5, X)], [E(0, 5, X)]).to_json()
    keys = {"precision", "recall", "f1", *CATEGORIES, "possible", "actual"}
    assert set(out) == {*SCHEMAS, "per_type", "macro", "bootstrap"}
    assert all(set(out[s]) == keys for s in SCHEMAS)
    assert set(out["per_type"][X]) == set(SCHEMAS) and set(out["per_type"][X]["type"]) == keys
    assert set(out["macro"]["strict"]) == {"precision", "recall", "f1"}


def test_bootstrap_interval_equals_rescoring_each_resample_of_documents():
    """The interval's per-document sums give the F1 that scoring the resampled documents gives (partial
    credit included), and it holds the point estimate."""
    rng = random.Random(7)
    gold, pred = {}, {}
    for d in range(25):
        spans = [(s, s + rng.randint(1, 6)) for s in range(0, 200, rng.randint(15, 40))]
        gold[f"d{d}"] = [E(a, b, rng.choice((X, Y))) for a, b in spans]
        pred[f"d{d}"] = [E(a, b + rng.choice((0, 0, 0, 1, 30)), rng.choice((X, X, Y))) for a, b in spans
                         if rng.random() < 0.8]
    gold["empty"], pred["empty"] = [], []
    result = score(gold, pred)
    for schema in ("strict", "partial"):
        low, high = result.f1_interval(schema, resamples=300, seed=3)
        ids = sorted(gold)
        draws = __import__("numpy").random.default_rng(3).integers(0, len(ids), (300, len(ids)))
        rescored = []
        for draw in draws:  # each resample as a corpus of renamed copies, scored from scratch
            names = [f"{ids[i]}#{k}" for k, i in enumerate(draw)]
            rescored.append(score({n: gold[ids[i]] for n, i in zip(names, draw)},
                                  {n: pred[ids[i]] for n, i in zip(names, draw)}).overall[schema].f1)
        expected = __import__("numpy").percentile(rescored, [2.5, 97.5])
        assert (low, high) == pytest.approx(tuple(expected), abs=1e-6)
        assert low < result.overall[schema].f1 < high
    assert result.to_json()["bootstrap"]["documents"] == 26


def test_paired_interval_resamples_the_same_documents_for_both_systems():
    rng = random.Random(11)
    gold = {f"d{i}": [E(10 * k, 10 * k + 5, X) for k in range(rng.randint(1, 4))] for i in range(30)}
    pred = {d: [e for e in ents if rng.random() < 0.6] for d, ents in gold.items()}
    perfect, partial = score(gold, gold).to_json(), score(gold, pred).to_json()
    low, high = partial["bootstrap"]["strict_f1_ci95"]
    # the perfect system scores 1 in every resample, so each resample's difference is 1 - the other's F1
    assert difference_interval(perfect, partial) == pytest.approx([1 - high, 1 - low], abs=1e-6)
    assert difference_interval(partial, partial) == [0.0, 0.0]
    with pytest.raises(ValueError, match="same documents"):
        difference_interval(perfect, score({"other": []}, {}).to_json())


def test_bootstrap_interval_narrows_with_more_documents():
    gold = {f"d{i}": [E(0, 5, X), E(10, 15, X)] for i in range(20)}
    pred = {f"d{i}": [E(0, 5, X)] if i % 3 else [E(0, 4, X), E(10, 15, Y)] for i in range(20)}
    small = score(gold, pred).f1_interval()
    large = score({f"{k}{c}": v for c in range(10) for k, v in gold.items()},
                  {f"{k}{c}": v for c in range(10) for k, v in pred.items()}).f1_interval()
    assert large[1] - large[0] < (small[1] - small[0]) / 2


# ---------------------------------------------------------------- views

VIEW_TEXT = "Famotidine caused acute delirium. Famotidine again: liver cell injury."
VIEW_GOLD = [Document("a", VIEW_TEXT, [E(0, 10, "Chem"), E(18, 32, "Dis"), E(34, 44, "Chem"),
                                       E(52, 69, "Dis")])]


def test_string_views_compare_mentions_not_offsets():
    pred = {"a": [E(34, 44, "Dis"), E(24, 32, "Dis")]}  # the second Famotidine, typed wrong; "delirium"
    assert string_sets(VIEW_GOLD, pred) == {"precision": 0.5, "recall": 1 / 3, "f1": 0.4, "tp": 1,
                                            "gold": 3, "pred": 2}
    assert string_sets(VIEW_GOLD, pred, by_type=True)["tp"] == 0
    pred = {"a": [E(34, 44, "Chem"), E(18, 32, "Dis")]}
    multisets = string_multisets(VIEW_GOLD, pred)
    assert (multisets["tp"], multisets["gold"], multisets["pred"]) == (2, 4, 2)
    assert multisets["per_type"]["Chem"]["recall"] == 0.5


def test_length_buckets_count_words_on_each_side():
    pred = {"a": [E(0, 10, "Chem"), E(24, 32, "Dis"), E(52, 69, "Dis")]}
    buckets = length_buckets(VIEW_GOLD, score(VIEW_GOLD, pred))
    assert [(b["tp"], b["gold"], b["pred"]) for b in buckets.values()] == [(1, 2, 2), (0, 1, 0), (1, 1, 1)]


def test_iob_view_reports_flattening():
    pred = {"a": [E(0, 10, "Chem"), E(0, 4, "Dis"), Entity(((52, 57), (63, 69)), "Dis")]}
    view = iob(VIEW_GOLD, pred)
    assert view["flattening_changes"] == {"gold": {}, "pred": {
        "boundary_expanded": 1, "discontinuous_first_fragment": 1, "overlap_dropped": 1}}
    assert view["strict"] == view["lenient"] == pytest.approx({"precision": 0.5, "recall": 0.25, "f1": 1 / 3})
    assert iob(VIEW_GOLD, {})["strict"]["f1"] == 0.0


# ---------------------------------------------------------------- CLI

TEXT = "Famotidine caused delirium in two patients."


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def gold_file(tmp_path: Path) -> Path:
    ents = [{"start": 0, "end": 10, "type": "Chemical", "text": "Famotidine"},
            {"start": 18, "end": 26, "type": "Disease", "text": "delirium"}]
    return write_jsonl(tmp_path / "gold.jsonl", [{"id": "1", "text": TEXT, "entities": ents},
                                                 {"id": "2", "text": "No entity here.", "entities": []},
                                                 {"id": "3", "text": TEXT, "entities": ents[:1]}])


def cli(argv: list[str]) -> int:
    """eval/evaluate.py as its command line runs it: the status it ends with."""
    try:
        exit_on_format_error(lambda: evaluate.main(argv))
    except SystemExit as ended:
        return ended.code
    return 0


def test_cli_scores_and_writes_json(gold_file: Path, tmp_path: Path, capsys):
    pred = write_jsonl(tmp_path / "pred.jsonl", [
        {"id": "1", "entities": [{"start": 0, "end": 10, "type": "Chemical"},
                                 {"start": 18, "end": 29, "type": "Disease", "text": "delirium in"}]},
        {"id": "2", "text": "No entity here.", "entities": [{"start": 3, "end": 9, "type": "Disease"}]}])
    out = tmp_path / "scores" / "s.json"
    assert cli(["--gold", str(gold_file), "--pred", str(pred), "--json", str(out), "--views"]) == 0
    captured = capsys.readouterr()
    assert "1 of 3 gold documents have no predictions" in captured.err
    assert "| strict | 0.3333 | 0.3333 | 0.3333 | 1 | 1 | 0 | 1 | 1 |" in captured.out
    report = json.loads(out.read_text())
    assert report["partial"]["partial"] == 1 and report["type"]["correct"] == 2
    assert report["per_type"]["Chemical"]["strict"]["missed"] == 1
    assert {"iob", "string_sets", "string_sets_by_type", "string_multisets", "length_buckets"} <= set(report)


@pytest.mark.parametrize("entity, doc_id, doc_text, message", [
    ({"start": 0, "end": 10, "type": "Chemical"}, "9", None, "'9' is not in the gold file"),
    ({"start": 30, "end": 60, "type": "Chemical"}, "1", None, "ends past the gold text"),
    ({"start": 0, "end": 10, "type": "Chemical", "text": "famotidine"}, "1", None, "does not match the gold"),
    ({"start": 0, "end": 10, "type": "Chemical"}, "1", TEXT.upper(), "differs from the gold text"),
    ({"start": 0.9, "end": 10, "type": "Chemical"}, "1", None, "offset 0.9 is not an integer"),
    ({"start": "0", "end": 10, "type": "Chemical"}, "1", None, "offset '0' is not an integer"),
    ({"start": True, "end": 10, "type": "Chemical"}, "1", None, "offset True is not an integer"),
])
def test_cli_refuses_bad_predictions(gold_file, tmp_path, capsys, entity, doc_id, doc_text, message):
    bad = {"id": doc_id, "entities": [entity]} | ({"text": doc_text} if doc_text else {})
    pred = tmp_path / "pred.jsonl"
    pred.write_text(f'{{"id": "3", "entities": []}}\n\n{json.dumps(bad)}\n', encoding="utf-8")
    assert cli(["--gold", str(gold_file), "--pred", str(pred)]) == 2
    err = capsys.readouterr().err
    assert f"{pred}:3:" in err and message in err


def test_cli_keeps_a_repeated_gold_entity_once_and_scores_a_repeated_prediction_as_spurious(tmp_path, capsys):
    famotidine = {"start": 0, "end": 10, "type": "Chemical"}
    gold = write_jsonl(tmp_path / "gold.jsonl", [{"id": "1", "text": TEXT, "entities": [famotidine, famotidine]}])
    pred = write_jsonl(tmp_path / "pred.jsonl", [{"id": "1", "entities": [famotidine, famotidine, famotidine]}])
    out = tmp_path / "s.json"
    assert cli(["--gold", str(gold), "--pred", str(pred), "--json", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{gold}: 1 duplicate gold entities" in err and f"{pred}: 2 duplicate predictions" in err
    report = json.loads(out.read_text())
    assert report["duplicates"] == {"gold_kept_once": 1, "predicted_scored_spurious": 2}
    assert (report["strict"]["correct"], report["strict"]["missed"], report["strict"]["spurious"]) == (1, 0, 2)


@pytest.mark.parametrize("make, where, message", [
    (lambda d: (d / "p.jsonl").write_bytes(b'{"id": "3", "entities": []}\n{"id": "1\xe9", "entities": []}\n'),
     ":2", "not UTF-8 text: byte 0xe9 at column 10"),
    (lambda d: None, "", "no such file"),
    (lambda d: (d / "p.jsonl").mkdir(), "", "is a folder, not a file"),
])
def test_cli_names_an_unreadable_file_in_one_line(gold_file, tmp_path, capsys, make, where, message):
    make(tmp_path)
    pred = tmp_path / "p.jsonl"
    assert cli(["--gold", str(gold_file), "--pred", str(pred)]) == 2
    assert capsys.readouterr().err == f"error: {pred}{where}: {message}\n"


def test_cli_runs_as_a_script():
    done = subprocess.run([sys.executable, str(ROOT / "eval" / "evaluate.py"), "--help"],
                          capture_output=True, text=True, cwd="/", check=True)
    assert "--views" in done.stdout
