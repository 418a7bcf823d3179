"""rag_icl/ and data/llm/examples.py on the committed fixture corpus: cosine scores that rank a near-duplicate first
(not LangChain's inverted relevance), an index reused only for the same units and model, the rerank threshold
applied, FERS one set for all and DERS one per input, best_example.json end to end and resumed, and in-context
NER whose scores equal eval/evaluate.py's on the written predictions."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import FIXTURE, ROOT, launched, needs_mirror, slow
from data.corpus import Document, Entity, FormatError, read_jsonl
from data.llm.examples import (Example, ExampleIndex, coverage, random_examples, read_selection, retrieve_and_rerank,
                               write_selection)

TEXTS = {"a": "Aspirin causes Reye syndrome in children.", "b": "The stock market fell sharply today.",
         "c": "Cisplatin induced acute kidney injury in two patients."}


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    return ExampleIndex(TEXTS, "minilm", tmp_path_factory.mktemp("index"))


def test_scores_are_cosines_and_a_near_duplicate_ranks_first(index):
    found = index.search("Aspirin use causes Reye syndrome in kids.", k=3)
    assert [e.id for e in found][0] == "a" and found[0].retrieval > 0.8 > found[-1].retrieval
    assert found[0].retrieval > found[1].retrieval > found[2].retrieval  # cosine: higher is nearer
    kept = index.search("Aspirin use causes Reye syndrome in kids.", 3, "similarity_score_threshold", 0.5)
    assert [e.id for e in kept] == ["a"]
    assert {e.id for e in index.search("kidney injury after cisplatin", 2, "mmr")} >= {"c"}


def test_the_index_is_reused_for_the_same_units_and_refused_for_others(index, tmp_path):
    folder = tmp_path / "idx"
    ExampleIndex(TEXTS, "minilm", folder)
    again = ExampleIndex(TEXTS, "minilm", folder)  # loaded, with the distance strategy given again
    (found,) = again.search("Reye syndrome", 1)
    assert found.id == "a" and found.retrieval > 0
    with pytest.raises(FormatError, match="units_sha256"):
        ExampleIndex({**TEXTS, "d": "One more unit."}, "minilm", folder)
    ExampleIndex({**TEXTS, "d": "One more unit."}, "minilm", folder, overwrite=True)


def test_an_hnsw_index_finds_what_the_exact_one_finds(tmp_path):
    texts = {d.id: d.text for d in read_jsonl(FIXTURE / "train.jsonl")}
    flat, hnsw = (ExampleIndex(texts, "minilm", kind=kind) for kind in ("flat", "hnsw"))
    for query in texts.values():
        assert [e.id for e in hnsw.search(query, 3)] == [e.id for e in flat.search(query, 3)]


class FixedReranker:
    """Scores each candidate by a table, to check what retrieve_and_rerank keeps."""

    def __init__(self, by_text: dict[str, float]):
        self.by_text = by_text

    def scores(self, query, candidates):
        return [self.by_text[c] for c in candidates]


def test_the_rerank_threshold_is_applied_after_top_n(index):
    reranker = FixedReranker({TEXTS["a"]: 0.9, TEXTS["b"]: 0.95, TEXTS["c"]: 0.5})
    chosen = retrieve_and_rerank(index, reranker, "Reye syndrome", k=3, top_n=2, threshold=0.79)
    assert [e.id for e in chosen] == ["b", "a"] and all(e.rerank >= 0.79 for e in chosen)
    assert [e.id for e in retrieve_and_rerank(index, reranker, "Reye syndrome", 3, 2, 0.92)] == ["b"]
    assert len(retrieve_and_rerank(index, reranker, "Reye syndrome", 3, 3, None)) == 3  # the seed: no threshold


def test_fers_shows_one_set_to_every_input_and_ders_one_per_input():
    pool, queries = [f"t{i}" for i in range(20)], [f"q{i}" for i in range(6)]
    fers = random_examples(pool, queries, 3, seed=7, per_query=False)
    ders = random_examples(pool, queries, 3, seed=7, per_query=True)
    assert len({tuple(e.id for e in v) for v in fers.values()}) == 1
    assert len({tuple(e.id for e in v) for v in ders.values()}) > 1
    assert ders == random_examples(pool, queries, 3, seed=7, per_query=True)  # fixed by the seed
    assert fers != random_examples(pool, queries, 3, seed=8, per_query=False)
    with pytest.raises(ValueError):
        random_examples(pool[:2], queries, 3, 7, False)


def test_coverage_is_the_share_of_the_inputs_mentions_the_examples_name():
    query = Document("q", "Aspirin and cisplatin.", [Entity.span(0, 7, "Chemical", "Aspirin"),
                                                     Entity.span(12, 21, "Chemical", "cisplatin")])
    example = Document("e", "aspirin again", [Entity.span(0, 7, "Chemical", "aspirin")])
    assert coverage(query, [example]) == 0.5 and coverage(query, []) == 0.0
    assert coverage(Document("n", "nothing"), [example]) is None


def test_a_selection_file_names_what_is_missing(tmp_path):
    path = tmp_path / "best_example.json"
    write_selection(path, {"q1": [Example("t1", 0.9, 0.8)]}, {"unit": "document"})
    assert read_selection(path, ["q1"], ["t1"]) == {"q1": [Example("t1", 0.9, 0.8)]}
    with pytest.raises(FormatError, match="q2"):
        read_selection(path, ["q1", "q2"], ["t1"])
    with pytest.raises(FormatError, match="not training units"):
        read_selection(path, ["q1"], ["t2"])


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True)


def test_best_examples_end_to_end_resumes_and_refuses_other_settings(tmp_path):
    from rag_icl import best_examples

    argv = ["--one_dataset", "fixture", "--datasets_path", str(FIXTURE), "--output_dir", str(tmp_path / "out"),
            "--index_dir", str(tmp_path / "idx"), "--k", "4", "--top_n", "2"]
    first = best_examples.main(best_examples.parse_args(argv))
    assert set(first) == {d.id for d in read_jsonl(FIXTURE / "test.jsonl")}
    assert all(len(v) == 2 and v[0].retrieval >= v[1].retrieval and v[0].rerank is None for v in first.values())
    body = json.loads((tmp_path / "out" / "best_example.json").read_text())
    assert body["settings"]["k"] == 4 and body["examples"].keys() == first.keys()
    # A killed run leaves some queries in the partial store: the rerun answers only the rest, the same way.
    partial = tmp_path / "out" / "best_example.partial.jsonl"
    partial.write_text("".join(partial.read_text().splitlines(keepends=True)[:1]))
    assert best_examples.main(best_examples.parse_args(argv)) == first
    with pytest.raises(FormatError, match="top_n"):
        best_examples.main(best_examples.parse_args([*argv[:-1], "3"]))


def test_seed3_datasets_that_are_not_ours_say_so_in_one_line():
    done = run("rag_icl/generate_data.py", "--one_dataset", "chemdner", "--data_dir", "/nonexistent")
    assert done.returncode != 0 and done.stderr.strip().count("\n") == 0 and "not in our corpora" in done.stderr


@needs_mirror
def test_generate_data_writes_the_seeds_layout(tmp_path):
    done = run("rag_icl/generate_data.py", "--one_dataset", "ncbi_disease", "--data_dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    test = json.loads((tmp_path / "collate/ner/ncbi_disease/ncbi_disease_test_processed.json").read_text())
    assert len(test) == 100 and sum(len(r["entities"]) for r in test) == 960  # SOURCES.md: NCBI test mentions
    assert {r["entity_type"] for r in test} == {"Disease"}
    first = test[0]
    assert all(first["text"][s:e] == m for (s, e), m in zip(first["spans"], first["entities"]))


@slow
@pytest.mark.parametrize("strategy", ["zero_shot", "ders", "kate"])
def test_in_context_ner_scores_what_eval_evaluate_scores(strategy, tmp_path):
    from rag_icl import best_examples, main

    examples = tmp_path / "sel"
    best_examples.main(best_examples.parse_args(["--one_dataset", "fixture", "--datasets_path", str(FIXTURE),
                                                 "--output_dir", str(examples), "--index_dir", str(tmp_path / "i"),
                                                 "--rerank_model_path", "", "--k", "4", "--top_n", "2"]))
    out = tmp_path / "run"
    summaries = main.main(main.parse_args([
        "--one_dataset", "fixture", "--datasets_path", str(FIXTURE), "--strategy", strategy, "--shots", "2",
        "--examples", str(examples / "best_example.json"), "--seeds", "1", "2", "--max_new_tokens", "12",
        "--constrained", "True", "--output_dir", str(out)]))
    assert set(summaries) == {"fixture_chemical", "fixture_disease"}
    seeds = [1, 2] if strategy == "ders" else [1]
    for task, summary in summaries.items():
        assert summary["seeds"] == seeds and len(summary["strict_f1"]["values"]) == len(seeds)
        metrics = json.loads((out / task / "seed1" / "metrics.json").read_text())
        assert metrics["diagnostics"]["test"]["parse_rate"] == 1.0  # constrained: every answer parses
        assert set(metrics["examples_per_unit"]) == ({"0"} if strategy == "zero_shot" else {"2"})
        gold = tmp_path / f"{task}.gold.jsonl"
        gold.write_text("".join(json.dumps(d.to_json()) + "\n" for d in main.NER_TASKS[task].documents("test")))
        predictions = out / task / "seed1" / "test.predictions.jsonl"
        scored = run("eval/evaluate.py", "--gold", str(gold), "--pred", str(predictions),
                     "--json", str(tmp_path / f"{task}.scores.json"))
        assert scored.returncode == 0, scored.stderr
        scores = json.loads((tmp_path / f"{task}.scores.json").read_text())
        assert scores.pop("duplicates") == {"gold_kept_once": 0, "predicted_scored_spurious": 0}
        assert scores == metrics["test"]


@slow
def test_dmcr_rewrites_only_the_answers_that_do_not_parse(smollm2, tmp_path):
    from data.llm.formats import get_format
    from data.llm.units import UnitSplit, make_units
    from rag_icl import main

    docs = [Document(d.id, d.text, [e for e in d.entities if e.type == "Disease"])
            for d in read_jsonl(FIXTURE / "test.jsonl")]
    fmt = get_format("list")
    units = make_units(docs, ("Disease",), fmt, "document", per_type=True, max_sentences=100, respect_entities=False)
    split = UnitSplit("test", docs, units, fmt, ("Disease",), [16] * len(units))
    outputs = {units[0].id: '["heart failure"]', units[1].id: "I cannot answer that.", units[2].id: '["Colon cancer"'}
    args = main.parse_args(["--one_dataset", "fixture", "--output_dir", str(tmp_path), "--repair_model", "smollm2"])
    assert args.repair_constrained and not args.constrained  # the rewrites are constrained by default
    repaired = main.repair(args, split, outputs, 1, {"test": True}, tmp_path, smollm2)
    rewritten = [json.loads(line)["id"] for line in (tmp_path / "test.repaired.jsonl").read_text().splitlines()]
    assert sorted(rewritten) == sorted([units[1].id, units[2].id])  # the well-formed answer is left alone
    assert repaired[units[0].id] == outputs[units[0].id]
    assert all(fmt.parse(repaired[u.id], u.input, ("Disease",)).well_formed for u in units)
    hallucinated = sum(fmt.parse(repaired[u.id], u.input, ("Disease",)).hallucinated for u in units)
    assert hallucinated == 0


def test_seed3_launcher_runs_every_strategy_with_the_papers_settings():
    runs = launched("rag_icl/run_seed3.sh", PROFILE="paper", DATASETS="bc5cdr")
    best = [r[0] for r in runs if hasattr(r[0], "rerank_model_path")]
    assert [(b.rerank_model_path, b.k, b.top_n, b.score_threshold) for b in best] == \
        [(None, 30, 10, 0.79), ("BAAI/bge-reranker-v2-m3", 30, 10, 0.79)]
    assert {b.embedding_model_path for b in best} == {"BAAI/bge-m3"}
    icl = [r[0] for r in runs if hasattr(r[0], "strategy")]
    assert {(a.strategy, a.shots) for a in icl} == {("zero_shot", 1)} | {
        (s, n) for s in ("fers", "ders", "rag") for n in (1, 2, 3, 4, 5, 10)}
    assert all(a.model_name == "google/gemma-2-9b-it" and a.seeds == list(range(42, 52)) for a in icl)
    assert all((a.temperature, a.repeats) == (0.5, 5) for a in icl)
    assert all(a.examples.name == "best_example.json" for a in icl if a.strategy == "rag")


@slow
@needs_mirror
def test_the_retrieval_bench_compares_strategies_on_a_corpus(tmp_path):
    done = run("bench/retrieval.py", "--parts", "quality", "--datasets", "ncbi_disease", "--max_eval_docs", "20",
               "--resamples", "200", "--json", str(tmp_path / "bench" / "retrieval.json"))
    assert done.returncode == 0, done.stderr[-2000:]
    quality = json.loads((tmp_path / "bench" / "retrieval.json").read_text())["quality"]["ncbi_disease"]
    assert set(quality["coverage"]) == {"fers", "ders", "kate"} and quality["documents"] <= 20
    difference = quality["kate_minus_ders"]
    assert difference["ci95"][0] <= difference["mean"] <= difference["ci95"][1]
    report = run("eval/report.py", str(tmp_path))
    kate_row = next(line for line in report.stdout.splitlines() if line.startswith("| ncbi_disease | kate | 5 |"))
    assert f"| {quality['coverage']['kate']:.3f} | {difference['mean']:+.3f} (" in kate_row
    assert "| retrieval | shots |" not in report.stdout  # settings are not benchmark figures


@slow
def test_a_killed_run_resumes_to_the_same_outputs(tmp_path):
    import signal
    import time

    argv = ["rag_icl/main.py", "--one_dataset", "fixture", "--datasets_path", str(FIXTURE), "--strategy", "ders",
            "--shots", "1", "--seeds", "1", "--batch_size", "1", "--max_new_tokens", "16"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    assert run(*argv, "--output_dir", str(whole)).returncode == 0
    outputs = parts / "fixture_chemical" / "seed1" / "test.outputs.jsonl"
    proc = subprocess.Popen([sys.executable, *argv, "--output_dir", str(parts)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (outputs.exists() and outputs.read_text().count("\n") >= 1) and proc.poll() is None:
        assert time.time() < deadline, "no answer stored within 5 minutes"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert outputs.read_text().count("\n") < 3  # killed before the task's three answers were all stored
    assert run(*argv, "--output_dir", str(parts)).returncode == 0
    for task in ("fixture_chemical", "fixture_disease"):
        stored = [(d / task / "seed1" / "test.outputs.jsonl").read_text().splitlines() for d in (whole, parts)]
        answers = [{json.loads(line)["id"]: json.loads(line)["output"] for line in lines} for lines in stored]
        assert answers[0] == answers[1]
        scores = [json.loads((d / task / "seed1" / "metrics.json").read_text())["test"] for d in (whole, parts)]
        assert scores[0] == scores[1]


@slow
def test_sampled_evaluation_runs_repeats_per_seed_and_reports_their_spread(tmp_path):
    from rag_icl import main

    argv = ["--one_dataset", "fixture", "--datasets_path", str(FIXTURE), "--strategy", "zero_shot", "--seeds", "5",
            "--max_new_tokens", "10", "--temperature", "1.0", "--repeats", "2", "--output_dir", str(tmp_path)]
    summaries = main.main(main.parse_args(argv))
    for task, summary in summaries.items():
        assert len(summary["strict_f1"]["values"]) == 2
        answers = [(tmp_path / task / f"seed5-r{r}" / "test.outputs.jsonl").read_text() for r in (0, 1)]
        assert answers[0] != answers[1]  # two samples
    again = main.main(main.parse_args([*argv[:-1], str(tmp_path / "again")]))
    assert again == summaries  # seeded: the same samples
