"""The run_ner-style baseline and the encoder accuracy bench: word tags read at first sub-words map
back to the exact gold spans, words past the length limit are O, prediction never sees the gold
entities, and the bench runs end to end on a handful of documents and writes its JSON."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from conftest import ROOT, needs_mirror, slow


@pytest.fixture
def tokenizer(minilm_tokenizer):
    return minilm_tokenizer


def fresh(name: str, split: str, n: int):
    """The first n documents, read anew: the session cache's copies may have been segmented in place."""
    from data.registry import load

    return load(name, split)[:n]


@needs_mirror
@pytest.mark.parametrize("name, n", [("bc5cdr", 5), ("ncbi_disease_iob", 40)])
def test_word_tags_at_first_subwords_give_back_the_exact_gold_spans(tokenizer, name, n):
    from bench.run_ner_baseline import IGNORE, encode, to_documents, training_sentences, word_tags
    from eval.semeval import score

    docs = fresh(name, "test", n)
    flattening: Counter = Counter()
    sentences = training_sentences(docs, flattening)
    label2id = {t: i for i, t in enumerate(sorted({t for s in sentences for t in s.tags}))}
    id2label = {i: t for t, i in label2id.items()}
    dataset, word_ids = encode(tokenizer, sentences, 512, label2id)
    # A perfect model: the arg-max at every labelled sub-word is its label.
    tags = [word_tags(w, [0 if x == IGNORE else x for x in labels], len(s.words), id2label)
            for w, labels, s in zip(word_ids, dataset["labels"], sentences)]
    assert tags == [s.tags for s in sentences]
    changes: Counter = Counter()
    pred = to_documents(docs, sentences, tags, changes)
    assert not flattening and not changes
    assert [sorted(d.entities) for d in pred] == [sorted(d.entities) for d in docs]
    assert score(docs, pred).overall["strict"].f1 == 1.0


def test_words_past_the_length_limit_are_predicted_outside(tokenizer):
    from bench.run_ner_baseline import Sentence, encode, word_tags

    sentence = Sentence(0, [(0, 1)] * 6, ["a", "b", "c", "d", "e", "f"], ["B-X"] * 6)
    dataset, word_ids = encode(tokenizer, [sentence], 5, {"B-X": 0})  # [CLS] a b c [SEP]
    assert dataset["labels"][0] == [-100, 0, 0, 0, -100]
    assert word_tags(word_ids[0], [0] * 5, 6, {0: "B-X"}) == ["B-X"] * 3 + ["O"] * 3


@needs_mirror
def test_prediction_segments_without_the_gold_entities():
    from bench.run_ner_baseline import prediction_sentences
    from data.corpus import Document

    docs = fresh("bc5cdr", "test", 3)
    blank = [Document(d.id, d.text) for d in docs]
    assert [s.tokens for s in prediction_sentences(docs)] == [s.tokens for s in prediction_sentences(blank)]
    assert not any(d.tokens for d in docs)  # the caller's documents are left unsegmented


@slow
@needs_mirror
def test_bench_runs_two_seeds_side_by_side_end_to_end_and_writes_its_json(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "bench/encoder_accuracy.py", "--datasets", "ncbi_disease_iob",
                           "--max_train_docs", "8", "--max_eval_docs", "8", "--max_epochs", "1", "--seeds", "1", "2",
                           "--jobs", "2", "--output_dir", str(tmp_path / "results"), "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    entry = report["datasets"]["ncbi_disease_iob"]
    assert report["seeds"] == [1, 2] and [r["seed"] for r in entry["runs"]] == [1, 2]
    assert isinstance(report["ours_not_lower"], bool)
    by_seed = [r["ours"]["strict_f1"] - r["run_ner_baseline"]["strict_f1"] for r in entry["runs"]]
    assert entry["difference_by_seed"] == by_seed
    assert entry["difference"] == pytest.approx(sum(by_seed) / 2)
    assert entry["ours"]["strict_f1"] == pytest.approx(sum(r["ours"]["strict_f1"] for r in entry["runs"]) / 2)
    assert entry["difference_95ci"][0] <= entry["difference_95ci"][1]
    assert entry["caps"] == {"max_train_docs": 8, "max_eval_docs": 8, "max_epochs": 1, "max_length": 512}
    assert entry["ours"]["test_entities"] == entry["run_ner_baseline"]["test_entities"]  # the same test documents
    for system in ("ours", "run_ner_baseline"):
        assert entry[system]["epochs"] == [1, 1] and 0 <= entry[system]["strict_f1"] <= 1
    metrics = [json.loads(p.read_text()) for p in (tmp_path / "results").rglob("metrics.json")]
    assert sorted(m["method"] for m in metrics) == ["encoder"] * 2 + ["run_ner_baseline"] * 2
    assert "| ncbi_disease_iob | run_ner baseline |" in done.stdout and "PubMedBERT" in done.stdout
    for seed in (1, 2):  # each run's output went to its own log, its result to the bench's output
        assert "test: strict P" in (tmp_path / "results" / "logs" / f"ncbi_disease_iob_seed{seed}.log").read_text()
        assert f"ncbi_disease_iob seed {seed}: test strict F1 ours" in done.stdout


def test_the_interval_pools_seeds_and_resamples_documents_once_for_both_systems():
    import numpy as np
    from bench.encoder_accuracy import difference_interval

    rng = np.random.default_rng(1)
    gold = rng.integers(1, 6, (2, 30)).astype(float)
    counts = np.stack([gold // 2, gold, gold // 2], axis=-1)  # correct, gold, predicted per document
    assert difference_interval(counts, counts) == [0.0, 0.0]  # the same documents on both sides, every time
    better = counts.copy()
    better[..., 0] = better[..., 1]  # every predicted entity correct
    better[..., 2] = better[..., 1]
    low, high = difference_interval(better, counts)
    assert 0 < low <= high
    # One seed far better, one the same: the mean difference lies between the two seeds' own differences.
    mixed = np.stack([better[0], counts[1]])
    low_mixed, high_mixed = difference_interval(mixed, counts)
    assert 0 < low_mixed and high_mixed < high
