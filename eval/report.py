"""Collect every `metrics.json` under a results folder into one Markdown table.

    python eval/report.py results > results/RESULTS.md

Each method writes `metrics.json` as `{"method": str, "dataset": str, SPLIT: <eval/semeval JSON>, ...}`;
this prints one row per (method, dataset, split) with the four SemEval schemas.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

SCHEMAS = ("strict", "exact", "partial", "type")


def rows(results: Path) -> list[list[str]]:
    out = []
    for path in sorted(results.rglob("metrics.json")):
        m = json.loads(path.read_text())
        for split, res in m.items():
            if isinstance(res, dict) and "strict" in res:
                s = res["strict"]
                out.append([m.get("method", path.parent.parent.name), m.get("dataset", path.parent.name), split,
                            f"{100 * s['precision']:.2f}", f"{100 * s['recall']:.2f}",
                            *(f"{100 * res[k]['f1']:.2f}" for k in SCHEMAS),
                            str(s["possible"]), str(path.relative_to(results))])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, nargs="?", default=Path("results"))
    args = parser.parse_args()
    head = ["method", "dataset", "split", "strict P", "strict R", *(f"{k} F1" for k in SCHEMAS), "gold", "file"]
    print("SemEval-2013 span scores (%) from eval/semeval.py; `gold` = number of gold entities.\n")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows(args.results):
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
