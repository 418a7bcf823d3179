"""DFPO's ablation on one corpus, from the stage folders dfpo/run_seed3.sh writes under RUN_DIR:

    python dfpo/compare.py results/dfpo/ncbi_disease

    stage1                  SFT only
    stage2-dpop, stage3-dpop        SFT -> DPOP, then SFT -> DPOP -> SFT (DFPO)
    stage2-sigmoid, stage3-sigmoid  the same with plain DPO in stage 2

Prints a Markdown table (per task: test strict F1, parse rate, hallucination rate, seed 3's string-set F1,
each mean +- sd over sampled repeats where there are several; training seconds and peak memory per stage),
writes it with every number to RUN_DIR/comparison.json, and plots, step by step through stage 2 under DPOP
and under DPO (the same pairs in the same order), the chosen and the rejected answers' log-probability
relative to the reference (the stage-1 model): log pi(answer) - log ref(answer), trl's rewards / beta, from
each run's trainer_state.json, to RUN_DIR/preference_comparison.png. DPOP exists to keep the chosen answers'
ratio from falling below 0 where DPO lets it fall; the raw log-probabilities are in each metrics.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from data.corpus import exit_on_format_error, script_parser
from eval.runs import write_json

STAGES = ("stage1", "stage2-dpop", "stage3-dpop", "stage2-sigmoid", "stage3-sigmoid")
MEASURES = ("strict_f1", "parse_rate", "hallucination_rate", "string_set_f1")


def cell(value: dict) -> str:
    if value["mean"] is None:
        return "-"
    return f"{100 * value['mean']:.2f}" + (f" +- {100 * value['sd']:.2f}" if value["sd"] else "")


def compare(run_dir: Path) -> dict:
    stages = {}
    for stage in STAGES:
        path = run_dir / stage / "metrics.json"
        if path.exists():
            m = json.loads(path.read_text())
            stages[stage] = {"train_seconds": m["train_seconds"], "peak_memory_mb": m.get("peak_memory_mb"),
                             "tasks": {t: {k: r[k] for k in MEASURES} for t, r in m["tasks"].items()}}
            if "beta" in m:  # a preference stage: its answers' log-ratios to the reference, per step
                history = json.loads((run_dir / stage / "trainer_state.json").read_text())["log_history"]
                stages[stage]["logratios"] = {
                    answer: [(h["step"], h[f"rewards/{answer}"] / m["beta"]) for h in history
                             if f"rewards/{answer}" in h] for answer in ("chosen", "rejected")}
    if not stages:
        raise SystemExit(f"error: no DFPO stage under {run_dir} (expected {', '.join(STAGES)})")
    return {"run_dir": str(run_dir), "stages": stages}


def table(result: dict) -> str:
    lines = ["| stage | task | " + " | ".join(MEASURES) + " | train s | peak MB |",
             "|" + "---|" * (len(MEASURES) + 4)]
    for stage, s in result["stages"].items():
        for task, r in s["tasks"].items():
            lines.append(f"| {stage} | {task} | " + " | ".join(cell(r[k]) for k in MEASURES) +
                         f" | {s['train_seconds']:.0f} | {s['peak_memory_mb'] or '-'} |")
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for stage, style in (("stage2-dpop", "-"), ("stage2-sigmoid", "--")):
        ratios = (result["stages"].get(stage) or {}).get("logratios") or {}
        for answer, colour in (("chosen", "tab:green"), ("rejected", "tab:red")):
            if ratios.get(answer):
                ax.plot(*zip(*ratios[answer]), style, color=colour, marker=".",
                        label=f"{'DPOP' if 'dpop' in stage else 'DPO'}: {answer}")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(xlabel="stage-2 step", ylabel="log pi(answer) - log ref(answer)",
           title="Stage 2: the answers' log-probability relative to the stage-1 model")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = script_parser(__doc__)
    parser.add_argument("run_dir", type=Path, help="dfpo/run_seed3.sh's OUT/dfpo/<corpus>")
    return parser.parse_args(argv)


def main(args: argparse.Namespace) -> None:
    result = compare(args.run_dir)
    write_json(args.run_dir / "comparison.json", result)
    plot(result, args.run_dir / "preference_comparison.png")
    print(table(result))


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
