"""The command-line scripts end to end: --help everywhere, stats JSON, JSONL conversion, the dictionary
baseline and the results table."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT, load_split, needs_mirror
from data.corpus import read_jsonl

SCRIPTS = ["data/download.py", "data/stats.py", "data/convert.py", "data/brat2iob.py", "eval/evaluate.py",
           "eval/report.py", "dictionary/main.py", "data/instructions.py"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=True)


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script):
    assert "usage:" in run(script, "--help").stdout


@needs_mirror
def test_stats_json_has_the_documented_shape():
    stats = json.loads(run("data/stats.py", "s800", "--json").stdout)
    assert set(stats) == {"train", "dev", "test"}
    assert stats["test"] == {"documents": 1630, "sentences": 1630, "entities": 767, "types": {"Species": 767}}


@needs_mirror
def test_convert_to_jsonl_keeps_every_entity(tmp_path):
    out = tmp_path / "ddi.test.jsonl"
    run("data/convert.py", "ddi", "--split", "test", "--to", "jsonl", "--out", str(out))
    docs = read_jsonl(out)
    original = load_split("ddi", "test")
    assert [d.id for d in docs] == [d.id for d in original]
    assert [sorted(d.entities) for d in docs] == [sorted(d.entities) for d in original]
    assert any(e.discontinuous for d in docs for e in d.entities)  # fragments survive the round trip


@needs_mirror
def test_dictionary_baseline_and_report(tmp_path):
    from dictionary.main import build_gazetteer, tag
    from eval.semeval import score

    train = load_split("ncbi_disease", "train")
    gazetteer = build_gazetteer(train, min_precision=0.5, max_words=12)
    # On its own training data a precision-filtered gazetteer finds most mentions, and more than on test.
    train_recall = score(train, [tag(d, gazetteer, 12) for d in train]).overall["strict"].recall
    test = load_split("ncbi_disease", "test")
    test_recall = score(test, [tag(d, gazetteer, 12) for d in test]).overall["strict"].recall
    assert train_recall > 0.7 and test_recall < train_recall

    out = tmp_path / "results"
    run("dictionary/main.py", "--dataset_name", "ncbi_disease", "--output_dir", str(out / "dictionary/ncbi"),
        "--eval_splits", "test")
    metrics = json.loads((out / "dictionary/ncbi/metrics.json").read_text())
    assert set(metrics["test"]) >= {"strict", "exact", "partial", "type", "per_type"}
    preds = read_jsonl(out / "dictionary/ncbi/test.predictions.jsonl", require_text=False)
    assert len(preds) == 100
    table = run("eval/report.py", str(out)).stdout
    assert f"| dictionary | ncbi_disease | test | {100 * metrics['test']['strict']['precision']:.2f} |" in table


@needs_mirror
def test_bad_input_ends_a_script_with_a_one_line_error(tmp_path):
    done = subprocess.run([sys.executable, "data/convert.py", "raredis", "--split", "dev", "--to", "iob",
                           "--out", str(tmp_path / "r.iob")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and ".ann" in done.stderr and "Traceback" not in done.stderr


def test_model_names_resolve_to_bundled_weights_and_pass_other_ids_through():
    from data.models import minilm_path, resolve

    assert (minilm_path() / "config.json").exists()
    assert resolve("minilm") == str(minilm_path())
    assert resolve("mistralai/Mistral-7B-Instruct-v0.3") == "mistralai/Mistral-7B-Instruct-v0.3"
