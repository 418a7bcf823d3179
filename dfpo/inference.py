"""Answer and score the test split with a finished DFPO stage, with other decoding settings than its own run
(e.g. seed 3's sampled evaluation of a greedy-trained stage).

    python dfpo/inference.py --stage_dir results/dfpo/ncbi_disease/stage3-dpop --one_dataset ncbi_disease \\
        --temperature 0.5 --repeats 5 --output_dir results/dfpo/ncbi_disease/stage3-dpop/sampled

The stage's model is its base with every adapter of its stack merged in (dfpo/stages.py); the test units,
prompts, answer budgets and scores are exactly those of the training scripts' own evaluation. Writes
OUTPUT_DIR/<task>/{greedy,r<K>}/ (answers, predictions, metrics.json) and OUTPUT_DIR/metrics.json with the
mean +- sd per task.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from data.corpus import exit_on_format_error, parse_dataclasses
from dfpo.stages import EvalArguments, evaluate_stage, load_finished_stage, read_stack, task_units
from eval.runs import claim_output_dir, run_settings, write_metrics


@dataclass
class Args:
    stage_dir: Path = field(metadata={"help": "OUTPUT_DIR of a finished finetune.py or prefer_optimize.py run"})
    one_dataset: str = field(metadata={"help": "the corpus or task to test on"})
    output_dir: Path = field(metadata={"help": "answers, predictions and metrics go here"})
    datasets_path: Path | None = field(default=None, metadata={
        "help": "a corpus as train/dev/test.jsonl (one task per entity type) instead of a registry corpus"})
    max_length: int | None = field(default=3000, metadata={
        "help": "windows of the training units whose answers size the test budgets (the stage's --max_length)"})
    seed: int = 42


def main(args: Args, evaluation: EvalArguments) -> dict:
    claim_output_dir(args.output_dir, finished=None)  # its answer stores resume
    stack = read_stack(args.stage_dir)
    model, tokenizer = load_finished_stage(args.stage_dir)
    train = task_units(args.one_dataset, "train", tokenizer, args.max_length, datasets_path=args.datasets_path)
    method = "dfpo:" + str(stack.get("stage", "stage"))
    tests = evaluate_stage(model, tokenizer, args.one_dataset, args.datasets_path, train, args.output_dir, method,
                           {"model": stack["base"], "adapters": stack["adapters"]}, evaluation, args.seed)
    metrics = {"method": method, "model": stack["base"], "dataset": args.one_dataset, "stack": stack["adapters"],
               "tasks": tests}
    write_metrics(args.output_dir, metrics, settings=run_settings(args, evaluation))
    return metrics


def parse_args(argv: list[str] | None = None) -> tuple[Args, EvalArguments]:
    return parse_dataclasses((Args, EvalArguments), __doc__, argv)


if __name__ == "__main__":
    exit_on_format_error(lambda: main(*parse_args()))
