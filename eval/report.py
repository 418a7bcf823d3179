"""Collect every `metrics.json` and benchmark JSON under a results folder into one Markdown report.

    python eval/report.py results > results/RESULTS.md

Each method writes `metrics.json` (inference scripts `SPLIT.metrics.json`) as `{"method": str, "model": str, "dataset": str, SPLIT: <eval/semeval
JSON>, ...}`; generating methods add "format", "shots", "constrained" and `"diagnostics": {SPLIT: <eval/
diagnostics JSON>}`. The report has one row per (method, model, variant, dataset, split) with the four
SemEval schemas, a table of the generation diagnostics, and the headline numbers of each `bench/*.json`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

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
                scores.append([*key, split, percent(s["precision"]), percent(s["recall"]),
                               *(percent(res[k]["f1"]) for k in SCHEMAS), str(s["possible"]), where])
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


def table(head: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                      *("| " + " | ".join(r) + " |" for r in rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, nargs="?", default=Path("results"))
    args = parser.parse_args()
    scores, diagnostics = score_rows(args.results)
    key = ["method", "model", "variant", "dataset", "split"]
    print("SemEval-2013 span scores (%) from eval/semeval.py; `gold` = number of gold entities.\n")
    print(table([*key, "strict P", "strict R", *(f"{k} F1" for k in SCHEMAS), "gold", "file"], scores))
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
    main()
