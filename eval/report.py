"""Collect every `metrics.json` and benchmark JSON under a results folder into one Markdown report.

    python eval/report.py results > results/RESULTS.md

Each method writes `metrics.json` (inference scripts `SPLIT.metrics.json`) as `{"method": str, "model": str,
"dataset": str, SPLIT: <eval/semeval JSON>, "timing": {SPLIT: eval/runs.timing}, ...}`; generating methods add "format", "shots", "constrained" and `"diagnostics": {SPLIT: <eval/
diagnostics JSON>}`. The report has one row per (method, model, variant, dataset, split) with the four
SemEval schemas, a table of the generation diagnostics, and the headline numbers of each `bench/*.json`.

It opens with the answer to "encoder or LLM?" when run_all.sh made one (OUT/answer/DATASET/RUN/metrics.json):
per corpus a sentence generated from the numbers, strict F1 with its bootstrap interval, training time and
sentences per second of every method on the same test sample, and the published numbers (eval/published.tsv)
beside it; then run_all.sh's stage times against its profile's budgets (OUT/stage_times.tsv).
"""
from __future__ import annotations

import json
from pathlib import Path

from data.corpus import exit_on_format_error, script_parser
from eval.semeval import difference_interval

SCHEMAS = ("strict", "exact", "partial", "type")
DIAGNOSTICS = ("parse_rate", "hallucination_rate", "boundary_accuracy", "format_compliance")


def variant(m: dict) -> str:
    """What distinguishes runs of one method and model: output format, shots, constraints."""
    parts = [str(m["format"])] if m.get("format") else []
    if m.get("shots") is not None:
        parts.append(f"{m['shots']}-shot")
    if m.get("constrained"):
        parts.append("constrained")
    return " ".join(parts) or "-"


def percent(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def score_rows(results: Path) -> tuple[list[list[str]], list[list[str]]]:
    scores, diagnostics = [], []
    for path in sorted(results.rglob("*metrics.json")):
        m = json.loads(path.read_text())
        model = Path(str(m.get("model", "-"))).name  # a local checkpoint path shows as its folder
        key = [m.get("method", path.parent.parent.name), model, variant(m), m.get("dataset", path.parent.name)]
        where = str(path.relative_to(results))
        for split, res in m.items():
            if isinstance(res, dict) and "strict" in res:
                s = res["strict"]
                low_high = res.get("bootstrap", {}).get("strict_f1_ci95")
                ci = f"{100 * low_high[0]:.1f}-{100 * low_high[1]:.1f}" if low_high else "-"
                scores.append([*key, split, percent(s["precision"]), percent(s["recall"]), percent(s["f1"]), ci,
                               *(percent(res[k]["f1"]) for k in SCHEMAS[1:]), str(s["possible"]), where])
        for split, diag in (m.get("diagnostics") or {}).items():
            f1 = m.get(split, {}).get("strict", {}).get("f1")
            diagnostics.append([*key, split, percent(f1), *(percent(diag.get(k)) for k in DIAGNOSTICS),
                                str(diag.get("documents", "-")), where])
    return scores, diagnostics


def bench_rows(results: Path) -> list[list[str]]:
    """Every top-level number (or true/false) of each bench/*.json."""
    rows = []
    for path in sorted(results.glob("bench/*.json")):
        for key, value in json.loads(path.read_text()).items():
            if isinstance(value, (int, float)):
                rows.append([path.stem, key, f"{value:.3g}" if isinstance(value, float) else str(value)])
    return rows


def selection_rows(results: Path) -> list[list[str]]:
    """bench/retrieval.py's quality part: coverage of the chosen examples per strategy, with the bootstrap
    interval of each retrieval strategy's difference to random examples per input (DERS)."""
    path = results / "bench" / "retrieval.json"
    if not path.exists():
        return []
    bench = json.loads(path.read_text())
    rows = []
    for dataset, q in bench.get("quality", {}).items():
        for strategy, value in q["coverage"].items():
            diff = q.get(f"{strategy}_minus_ders")
            interval = (f"{diff['mean']:+.3f} ({diff['ci95'][0]:+.3f} to {diff['ci95'][1]:+.3f})" if diff else "-")
            rows.append([dataset, strategy, str(bench["settings"]["shots"]), f"{value:.3f}", interval,
                         str(q["documents"])])
    return rows


# --------------------------------------------------------------------------- the answer table
ANSWER = "answer"  # run_all.sh writes the default profile's comparison to OUT/answer/DATASET/RUN/
PUBLISHED = Path(__file__).with_name("published.tsv")


def method_label(m: dict) -> str:
    """What a run is, in a reader's words."""
    if m["method"] == "prompt":
        return f"{m['shots']}-shot prompted LLM" if m.get("shots") else "zero-shot prompted LLM"
    return {"dictionary": "gazetteer", "encoder": "fine-tuned encoder", "decoder": "LoRA-tuned LLM"}.get(
        m["method"], m["method"])


def interval(scores: dict) -> str:
    f1, (low, high) = scores["strict"]["f1"], scores["bootstrap"]["strict_f1_ci95"]
    return f"{100 * f1:.2f} ({100 * low:.1f}-{100 * high:.1f})"


def answer_runs(results: Path) -> dict[tuple[str, int], list[dict]]:
    """Per dataset and test sample (its number of documents, largest first), the test metrics of every run
    under OUT/answer/, best strict F1 first."""
    runs: dict[tuple[str, int], list[dict]] = {}
    for path in sorted((results / ANSWER).glob("*/*/metrics.json")):
        m = json.loads(path.read_text())
        if "test" in m:
            runs.setdefault((m["dataset"], m["test"]["bootstrap"]["documents"]), []).append(m)
    return {k: sorted(r, key=lambda m: -m["test"]["strict"]["f1"])
            for k, r in sorted(runs.items(), key=lambda kv: (kv[0][0], -kv[0][1]))}


def answer_rows(runs: list[dict]) -> list[list[str]]:
    rows = []
    for m in runs:
        test, speed = m["test"], m.get("timing", {}).get("test", {})
        per_type = ", ".join(f"{t} {100 * s['strict']['f1']:.1f}" for t, s in test["per_type"].items())
        train = m.get("train_seconds")
        rows.append([method_label(m), Path(str(m.get("model", "-"))).name, interval(test), per_type,
                     "-" if train is None else f"{train:,.0f} s",
                     f"{speed['sentences_per_second']:,.1f}" if speed else "-"])
    return rows


def verdict(dataset: str, runs: list[dict]) -> str:
    """One sentence from the numbers: the best run, then every other in order, each with its gap to the one
    above it and the 95 % paired bootstrap interval of that gap (an interval reaching 0: the sample cannot
    order the two)."""
    test = runs[0]["test"]
    head = (f"On {dataset} ({test['bootstrap']['documents']:,} test documents, {test['strict']['possible']:,} "
            f"mentions), the {method_label(runs[0])} scores highest ({100 * test['strict']['f1']:.1f} strict F1)")
    parts = []
    for above, m in zip(runs, runs[1:]):
        gap = f"{100 * (above['test']['strict']['f1'] - m['test']['strict']['f1']):.1f}"
        if all("strict_parts" in r["test"]["bootstrap"] for r in (above, m)):  # not in older metrics.json
            low, high = (100 * x for x in difference_interval(above["test"], m["test"]))
            gap += f" ({low:.1f} to {high:.1f}{', not told apart' if low <= 0 else ''})"
        parts.append(f"the {method_label(m)} {gap} below the {method_label(above)}")
    return head + ("; then " + ", ".join(parts) if parts else "") + "."


def published_rows(dataset: str) -> list[list[str]]:
    if not PUBLISHED.exists():
        return []
    lines = [line.split("\t") for line in PUBLISHED.read_text().splitlines() if line and not line.startswith("#")]
    head, *body = lines
    return [[r["system"], r["type"], r["f1"], r["regime"], r["source"]]
            for r in (dict(zip(head, line)) for line in body) if r["dataset"] == dataset]


def answer_section(results: Path) -> str:
    runs = answer_runs(results)
    if not runs:
        return ""
    out = ["## Encoder or LLM? The answer on this machine\n",
           "Strict F1 (%) on fixed test samples (the first documents of each test split), with its 95 % bootstrap "
           "interval over documents (eval/semeval.py); training time and inference speed as measured in the same "
           "run (sentences per second of the test sample). Each sentence orders the methods, every gap to the one "
           "above with its 95 % paired bootstrap interval (the same resampled documents for both). The published numbers at the "
           "end are larger models on GPUs, scored per entity type.\n"]
    for (dataset, documents), sample in runs.items():
        out += [f"### {dataset}, {documents:,} test documents\n", verdict(dataset, sample) + "\n",
                table(["method", "model", "strict F1 (95 % CI)", "per type strict F1", "training", "sentences/s"],
                      answer_rows(sample)) + "\n"]
    for dataset in dict.fromkeys(dataset for dataset, _ in runs):
        if published := published_rows(dataset):
            out += [f"Published on {dataset}:\n", table(["system", "type", "F1", "regime", "source"], published) + "\n"]
    return "\n".join(out)


def stage_rows(results: Path) -> list[list[str]]:
    """run_all.sh's stage times (OUT/stage_times.tsv: stage, seconds, budget)."""
    path = results / "stage_times.tsv"
    if not path.exists():
        return []
    rows = [line.split("\t") for line in path.read_text().splitlines() if line]
    return [[name, seconds, budget, "yes" if int(seconds) <= int(budget) else "no"] for name, seconds, budget in rows]


def table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *("| " + " | ".join(r) + " |" for r in rows)])


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("results", type=Path, nargs="?", default=Path("results"))
    args = parser.parse_args()
    scores, diagnostics = score_rows(args.results)
    key = ["method", "model", "variant", "dataset", "split"]
    if answer := answer_section(args.results):
        print(answer)
    if stages := stage_rows(args.results):
        print("Stage times of run_all.sh (seconds) against the budgets of its profile.\n")
        print(table(["stage", "seconds", "budget", "within"], stages) + "\n")
    print("## Every run\n")
    print("SemEval-2013 span scores (%) from eval/semeval.py; `gold` = number of gold entities.\n")
    print(table([*key, "strict P", "strict R", "strict F1", "strict F1 95 % CI", *(f"{k} F1" for k in SCHEMAS[1:]),
                 "gold", "file"], scores))
    if diagnostics:
        print("\nGeneration diagnostics (%) from eval/diagnostics.py, micro over mentions; `units` = model inputs.\n")
        print(table([*key, "strict F1", *DIAGNOSTICS, "units", "file"], diagnostics))
    if selection := selection_rows(args.results):
        print("\nExample selection without an LLM (bench/retrieval.py): the share of each test document's gold "
              "mentions that its chosen examples name (coverage), and the difference to random examples per "
              "document (DERS) with its 95 % bootstrap interval.\n")
        print(table(["dataset", "strategy", "shots", "coverage", "minus ders (95 % CI)", "documents"], selection))
    if bench := bench_rows(args.results):
        print("\nBenchmarks (ratios of two things measured in the same run; see each bench script).\n")
        print(table(["bench", "measure", "value"], bench))


if __name__ == "__main__":
    exit_on_format_error(main)
