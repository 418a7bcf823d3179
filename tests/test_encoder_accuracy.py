"""The run_ner-style baseline and the encoder accuracy bench: word tags read at first sub-words map
back to the exact gold spans, words past the length limit are O, prediction never sees the gold
entities, and the bench runs end to end on a handful of documents and writes its JSON."""
from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from conftest import ROOT, needs_mirror


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer
    from data.models import resolve

    return AutoTokenizer.from_pretrained(resolve("minilm"))


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


@needs_mirror
def test_bench_runs_end_to_end_and_writes_its_json(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run([sys.executable, "bench/encoder_accuracy.py", "--datasets", "ncbi_disease_iob",
                           "--max_train_docs", "8", "--max_eval_docs", "8", "--max_epochs", "1",
                           "--output_dir", str(tmp_path / "results"), "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(out.read_text())
    entry = report["datasets"]["ncbi_disease_iob"]
    assert isinstance(report["ours_not_lower"], bool)
    assert entry["difference"] == entry["ours"]["strict_f1"] - entry["run_ner_baseline"]["strict_f1"]
    assert entry["difference_95ci"][0] <= entry["difference_95ci"][1]
    assert entry["caps"] == {"max_train_docs": 8, "max_eval_docs": 8, "max_epochs": 1, "max_length": 512}
    assert entry["ours"]["test_entities"] == entry["run_ner_baseline"]["test_entities"]  # the same test documents
    for system in ("ours", "run_ner_baseline"):
        assert entry[system]["epochs"] == 1 and 0 <= entry[system]["strict_f1"] <= 1
    methods = {json.loads(p.read_text())["method"] for p in (tmp_path / "results").rglob("metrics.json")}
    assert methods == {"encoder", "run_ner_baseline"}
    assert "| ncbi_disease_iob | run_ner baseline |" in done.stdout and "PubMedBERT" in done.stdout


@pytest.mark.parametrize("script", ["bench/encoder_accuracy.py", "bench/run_ner_baseline.py"])
def test_help(script):
    done = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "usage:" in done.stdout
