"""The command-line scripts end to end: stats JSON, JSONL conversion, the dictionary baseline and the results
table (every script's --help: tests/test_layout.py)."""
from __future__ import annotations

import json
import subprocess
import sys


from conftest import ROOT, load_split, needs_mirror
from data.corpus import read_jsonl

def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, check=True)


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
    assert f"| dictionary | - | - | ncbi_disease | test | {100 * metrics['test']['strict']['precision']:.2f} |" in table
    low, high = metrics["test"]["bootstrap"]["strict_f1_ci95"]
    assert low < metrics["test"]["strict"]["f1"] < high
    assert f"| {100 * metrics['test']['strict']['f1']:.2f} | {100 * low:.1f}-{100 * high:.1f} |" in table


@needs_mirror
def test_bad_input_ends_a_script_with_a_one_line_error(tmp_path):
    done = subprocess.run([sys.executable, "data/convert.py", "raredis", "--split", "dev", "--to", "iob",
                           "--out", str(tmp_path / "r.iob")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and ".ann" in done.stderr and "Traceback" not in done.stderr


def test_an_unknown_corpus_or_split_ends_a_script_in_one_line(tmp_path):
    for argv, message in ((["dictionary/main.py", "--dataset_name", "nosuch", "--output_dir", str(tmp_path)],
                           "error: unknown dataset 'nosuch'; known: "),
                          (["dictionary/main.py", "--dataset_name", "ncbi_disease", "--train_split", "training",
                            "--output_dir", str(tmp_path)],
                           "error: dataset 'ncbi_disease' has no split 'training'; it has train, dev, test")):
        done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 2 and done.stderr.startswith(message) and "Traceback" not in done.stderr


def test_everyday_mistakes_end_every_kind_of_script_in_one_line_and_debug_shows_the_traceback(tmp_path):
    """A binary or empty input, a missing model folder, a missing or empty brat folder: one line naming it,
    status 2; --debug (anywhere) gives the traceback instead, and every --help says so."""
    binary, empty, no_ann = tmp_path / "gold.jsonl", tmp_path / "empty.jsonl", tmp_path / "no_ann"
    binary.write_bytes(b'{"id": "d1", "text": "ok", "entities": []}\n\xff\xfe\x00binary\n')
    empty.write_text("\n\n")
    no_ann.mkdir()
    docs = tmp_path / "docs.jsonl"
    docs.write_text('{"id": "d1", "text": "ok", "entities": []}\n')
    cases = ((["eval/evaluate.py", "--gold", str(binary), "--pred", str(binary)],
              f"error: {binary}:2: not UTF-8 text: byte 0xff at column 1"),
             (["eval/evaluate.py", "--gold", str(empty), "--pred", str(empty)], f"error: {empty}: is empty: no records"),
             (["encoders/inference.py", "--model_dir", str(tmp_path / "model"), "--input", str(docs), "--output",
               str(tmp_path / "p.jsonl")], f"error: no model folder {tmp_path / 'model'} (and not a hub id, which reads NAME or OWNER/NAME)"),
             (["data/brat2iob.py", "--ann-dir", str(tmp_path / "nosuch"), "--out", str(tmp_path / "o.iob")],
              f"error: {tmp_path / 'nosuch'}: no such file or folder"),
             (["data/brat2iob.py", "--ann-dir", str(no_ann), "--out", str(tmp_path / "o.iob")],
              f"error: {no_ann}: holds no .ann file"))
    for argv, message in cases:
        done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True)
        assert (done.returncode, done.stderr) == (2, message + "\n"), argv
    script, *rest = cases[0][0]
    debug = subprocess.run([sys.executable, script, "--debug", *rest], cwd=ROOT, capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "FormatError" in debug.stderr
    for script in ("eval/evaluate.py", "data/brat2iob.py", "dictionary/main.py"):
        shown = subprocess.run([sys.executable, script, "--help"], cwd=ROOT, capture_output=True, text=True)
        assert "--debug" in shown.stdout, script


def test_model_names_resolve_to_bundled_weights_and_pass_other_ids_through():
    from data.llm.models import minilm_path, resolve

    assert (minilm_path() / "config.json").exists()
    assert resolve("minilm") == str(minilm_path())
    assert resolve("mistralai/Mistral-7B-Instruct-v0.3") == "mistralai/Mistral-7B-Instruct-v0.3"


def test_report_shows_variants_diagnostics_and_bench_numbers(tmp_path):
    scores = {"strict": {"precision": 0.5, "recall": 0.25, "f1": 1 / 3, "possible": 8},
              **{k: {"f1": 0.4} for k in ("exact", "partial", "type")}}
    metrics = {"method": "prompt", "model": "/cache/SmolLM2-135M-Instruct", "dataset": "ncbi_disease",
               "format": "json", "shots": 2, "constrained": True, "test": scores,
               "diagnostics": {"test": {"parse_rate": 1.0, "hallucination_rate": 0.0, "boundary_accuracy": None,
                                        "format_compliance": 0.75, "documents": 12}}}
    (tmp_path / "prompt/ncbi").mkdir(parents=True)
    (tmp_path / "prompt/ncbi/metrics.json").write_text(json.dumps(metrics))
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench/generation_speed.json").write_text(json.dumps({"batched_vs_sequential": 5.25, "formats": {}}))
    report = run("eval/report.py", str(tmp_path)).stdout
    assert "| prompt | SmolLM2-135M-Instruct | json 2-shot constrained | ncbi_disease | test | 50.00 | 25.00 | 33.33 |" in report
    assert "| json 2-shot constrained | ncbi_disease | test | 33.33 | 100.00 | 0.00 | - | 75.00 | 12 |" in report
    assert "| generation_speed | batched_vs_sequential | 5.25 |" in report
