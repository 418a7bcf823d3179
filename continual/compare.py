r"""Seed 1's comparison: token classification from a continued decoder vs from the original one.

    python continual/compare.py --pretrain_dir results/continual/pretrain/smollm2 \
        --with_dir results/continual/with_continual --without_dir results/continual/without_continual \
        --datasets ncbi_disease bc5cdr --caps max_train_docs=40 max_eval_docs=40

Reads continual/main.py's metrics.json (validation perplexity before and after) and the
encoders/main.py metrics.json of each dataset under --with_dir and --without_dir, prints a Markdown
table of test strict P/R/F1 with and without continual pre-training, and writes it with the caps
the runs used to comparison.json beside them (the parent of --with_dir).
"""
from __future__ import annotations

import json
from pathlib import Path

from data.corpus import exit_on_format_error, script_parser


def strict(metrics_file: Path, split: str) -> dict:
    s = json.loads(metrics_file.read_text())[split]["strict"]
    return {k: round(s[k], 4) for k in ("precision", "recall", "f1")}


def compare(pretrain_dir: Path, with_dir: Path, without_dir: Path, datasets: list[str], split: str,
            caps: dict[str, str]) -> dict:
    pretrain = json.loads((pretrain_dir / "metrics.json").read_text())
    return {
        "split": split, "schema": "SemEval-2013 strict, character spans", "tagger_caps": caps,
        "continual": {"model_name": pretrain["model_name"], "validation": pretrain["validation"],
                      "caps": pretrain["caps"], "train_tokens": pretrain["text"]["train_tokens"],
                      "tokens_per_second": pretrain["training"]["tokens_per_second"]},
        "datasets": {ds: {"without_continual": strict(without_dir / ds / "metrics.json", split),
                          "with_continual": strict(with_dir / ds / "metrics.json", split)} for ds in datasets},
    }


def table(result: dict) -> str:
    v = result["continual"]["validation"]
    lines = [f"Continual pre-training of {result['continual']['model_name']} on "
             f"{result['continual']['train_tokens']:,} tokens: validation perplexity "
             f"{v['before']['perplexity']:.2f} -> {v['after']['perplexity']:.2f}. "
             f"Token classification caps: {', '.join(f'{k}={v}' for k, v in result['tagger_caps'].items()) or 'none'}.",
             "",
             f"| dataset | {result['split']} strict P / R / F1 without | with continual | F1 change |",
             "|---|---|---|---|"]
    for ds, r in result["datasets"].items():
        a, b = r["without_continual"], r["with_continual"]
        lines.append(f"| {ds} | {100 * a['precision']:.2f} / {100 * a['recall']:.2f} / {100 * a['f1']:.2f} | "
                     f"{100 * b['precision']:.2f} / {100 * b['recall']:.2f} / {100 * b['f1']:.2f} | "
                     f"{100 * (b['f1'] - a['f1']):+.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--pretrain_dir", type=Path, required=True, help="continual/main.py's --output_dir")
    parser.add_argument("--with_dir", type=Path, required=True, help="DATASET/metrics.json from the continued model")
    parser.add_argument("--without_dir", type=Path, required=True, help="DATASET/metrics.json from the original model")
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--caps", nargs="*", default=[], metavar="KEY=VALUE", help="caps the taggers ran with")
    args = parser.parse_args()
    caps = {key: int(value) if value.isdigit() else value for key, _, value in (c.partition("=") for c in args.caps)}
    result = compare(args.pretrain_dir, args.with_dir, args.without_dir, args.datasets, args.split, caps)
    (args.with_dir.parent / "comparison.json").write_text(json.dumps(result, indent=2))
    print(table(result))


if __name__ == "__main__":
    exit_on_format_error(main)
