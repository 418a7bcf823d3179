"""DFPO stage 2 (seed 3): preference optimisation of the stage-1 model with DPOP, then the test split.

    python dfpo/prefer_optimize.py --one_dataset ncbi_disease --init_adapter results/dfpo/ncbi_disease/stage1 \\
        --pairs results/dfpo/ncbi_disease/pairs/pairs.jsonl --beta 0.4 --dpop_lambda 2 --learning_rate 2e-7 \\
        --epoch 2 --lora_r 8 --output_dir results/dfpo/ncbi_disease/stage2

The policy is the stage-1 model (its adapters merged, dfpo/stages.py) with a new LoRA adapter; the reference
is the same model with that adapter disabled, so the model is held once. The loss is DPOP's (dfpo/dpop.py;
trl 1.16 has none); `--loss_type sigmoid` trains plain DPO on the same pairs and budget, the ablation.

Pairs: dfpo/make_pairs.py's pairs.jsonl, or the seed's released preference records, one JSON object per line
with "prompt", "chosen" and "rejected", each a string or a list of chat messages (the answer being the last
message). A record without one of them, or whose chosen answer is not a list of strings, stops the run with
its file and line; a record with an empty rejected answer is skipped and counted.

Writes OUTPUT_DIR/model (the new adapter and stack.json), OUTPUT_DIR/test/<task>/ (answers, predictions),
metrics.json (test scores as finetune.py; the chosen and rejected log-probabilities at every logged step;
peak memory) and preference.png (those log-probabilities against the step).
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset
from peft import prepare_model_for_kbit_training
from transformers import set_seed
from trl import get_peft_config, get_quantization_config

from data.corpus import FormatError, exit_on_format_error, iter_jsonl, parse_dataclasses
from data.llm.generation import load_tokenizer
from dfpo.dpop import DPOPConfig, DPOPTrainer
from dfpo.stages import (EvalArguments, StageModelConfig, StageTrainingDefaults, evaluate_stage,
                         load_stage_model, mentions, save_stage, task_units)
from eval.runs import HardwareDefaults, claim_output_dir, peak_memory_mb, resume_point, run_settings, write_metrics

@dataclass
class ScriptArguments:
    one_dataset: str = field(metadata={"help": "the corpus or task the pairs and the test split are of"})
    init_adapter: Path = field(metadata={"help": "OUTPUT_DIR of DFPO stage 1 (finetune.py): the policy to optimise"})
    pairs: Path = field(metadata={"help": "preference pairs (make_pairs.py's pairs.jsonl, or the seed's records)"})
    datasets_path: Path | None = field(default=None, metadata={
        "help": "a corpus as train/dev/test.jsonl (one task per entity type) instead of a registry corpus"})
    max_length_units: int | None = field(default=3000, metadata={
        "help": "windows of the training units whose answers size the test budgets (finetune.py's --max_length)"})
    resume: bool = field(default=False, metadata={"help": "continue from the last checkpoint in output_dir"})
    overwrite: bool = field(default=False, metadata={
        "help": "replace a finished run in output_dir (its metrics.json and checkpoints)"})


@dataclass
class PreferenceConfig(HardwareDefaults, StageTrainingDefaults, DPOPConfig):
    """DPOPConfig with seed 3's stage-2 settings and flag names. --loss_type dpop (default) or sigmoid (plain
    DPO: lambda 0)."""

    loss_type: list[str] = field(default_factory=lambda: ["dpop"], metadata={"help": "dpop, or sigmoid (DPO)"})
    learning_rate: float = 2e-7
    num_train_epochs: float = field(default=2, metadata={"aliases": ["--epoch"]})
    max_length: int | None = 2048

    def __post_init__(self):
        names = [self.loss_type] if isinstance(self.loss_type, str) else list(self.loss_type)
        if names not in (["dpop"], ["sigmoid"]):
            raise ValueError(f"--loss_type must be dpop or sigmoid, not {' '.join(names)}")
        if names == ["sigmoid"]:
            self.dpop_lambda = 0.0  # plain DPO
        self.loss_type = ["sigmoid"]  # trl's name for the loss DPOPTrainer extends
        super().__post_init__()


@dataclass
class PreferenceModelConfig(StageModelConfig):
    """Seed 3's stage-2 LoRA: r 8 (the rest as stages 1 and 3)."""

    lora_r: int = 8


def answer_text(value, path: Path, line: int, name: str) -> str:
    """A record's answer: a string, or the content of the last of a list of chat messages."""
    if isinstance(value, list) and value and isinstance(value[-1], dict) and "content" in value[-1]:
        value = value[-1]["content"]
    if not isinstance(value, str):
        raise FormatError(path, line, f"'{name}' must be a string or a list of chat messages")
    return value


def read_pairs(path: Path, skipped: Counter) -> list[dict]:
    """trl's conversational preference records of a pairs file (module docstring for what is refused)."""
    pairs = []
    for line, record in iter_jsonl(path):
        missing = [k for k in ("prompt", "chosen", "rejected") if not isinstance(record, dict) or k not in record]
        if missing:
            raise FormatError(path, line, f"a preference pair needs {', '.join(missing)}")
        prompt = record["prompt"]
        if isinstance(prompt, str):
            prompt = [{"role": "user", "content": prompt}]
        chosen, rejected = (answer_text(record[k], path, line, k) for k in ("chosen", "rejected"))
        if mentions(chosen) is None:
            raise FormatError(path, line, f"the chosen answer is not a list of strings: {chosen[:80]!r}")
        if not rejected.strip():
            skipped["empty_rejected_skipped"] += 1
            continue
        pairs.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": chosen}],
                      "rejected": [{"role": "assistant", "content": rejected}]})
    if not pairs:
        raise FormatError(path, None, "no preference pairs")
    return pairs


def plot_preference(log_history: list[dict], path: Path, title: str) -> None:
    """The chosen and rejected answers' log-probabilities under the policy against the step."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for key, colour in (("logps/chosen", "tab:green"), ("logps/rejected", "tab:red")):
        points = [(h["step"], h[key]) for h in log_history if key in h]
        if points:
            ax.plot(*zip(*points), marker=".", color=colour, label=key.split("/")[1])
    ax.set(xlabel="step", ylabel="summed log-probability of the answer", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(script: ScriptArguments, evaluation: EvalArguments, config: PreferenceConfig,
         model_config: PreferenceModelConfig) -> dict:
    out = Path(config.output_dir)
    configured = run_settings(script, evaluation, model_config, config)  # before resume_point may set max_steps
    claim_output_dir(out, overwrite=script.overwrite, resume=script.resume, settings=configured)
    resume_from = resume_point(config, script.resume)
    tokenizer = load_tokenizer(str(script.init_adapter / "model"), encoder_decoder=False)
    skipped: Counter = Counter()
    pairs = read_pairs(script.pairs, skipped)
    print(f"pairs: {len(pairs):,} from {script.pairs}" + "".join(f", {k} {v:,}" for k, v in skipped.items()))
    set_seed(config.seed)
    model, stack = load_stage_model(model_config.model_name_or_path, script.init_adapter,
                                    get_quantization_config(model_config))
    if model_config.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.activation_checkpointing)
    trainer = DPOPTrainer(model=model, args=config, train_dataset=Dataset.from_list(pairs), processing_class=tokenizer,
                          peft_config=get_peft_config(model_config))
    started = time.time()
    trainer.train(resume_from_checkpoint=resume_from)
    train_seconds = time.time() - started
    train_memory = peak_memory_mb()
    trainer.save_state()
    method = "dfpo:dpop" if config.dpop_lambda else "dfpo:dpo"
    save_stage(trainer.model, tokenizer, out, stack, {"stage": method.removeprefix("dfpo:"),
                                                      "dataset": script.one_dataset})
    model = trainer.model.merge_and_unload() if not model_config.load_in_4bit else trainer.model
    model.eval()
    train_units = task_units(script.one_dataset, "train", tokenizer, script.max_length_units,
                             datasets_path=script.datasets_path)
    settings = {"model": stack["base"], "adapters": [*stack["adapters"], str((out / "model").resolve())],
                "trained_steps": trainer.state.global_step}
    tests = evaluate_stage(model, tokenizer, script.one_dataset, script.datasets_path, train_units, out / "test",
                           method, settings, evaluation, config.seed)
    history = trainer.state.log_history
    metrics = {"method": method, "model": model_config.model_name_or_path, "dataset": script.one_dataset,
               "format": "list", "stack": settings["adapters"], "pairs": len(pairs), "pairs_skipped": dict(skipped),
               "beta": config.beta, "dpop_lambda": config.dpop_lambda, "train_seconds": round(train_seconds, 1),
               "peak_memory_mb": train_memory,
               "logps": {k: [(h["step"], h[f"logps/{k}"]) for h in history if f"logps/{k}" in h]
                         for k in ("chosen", "rejected")},
               "lora": {k: getattr(model_config, f"lora_{k}") for k in ("r", "alpha", "dropout", "target_modules")},
               "isQLoRA": model_config.load_in_4bit, "tasks": tests}
    write_metrics(out, metrics, settings=configured)
    plot_preference(history, out / "preference.png", f"{method} on {script.one_dataset}: answers' log-probability")
    return metrics


def parse_args(argv: list[str] | None = None) -> tuple[ScriptArguments, EvalArguments, PreferenceConfig,
                                                       PreferenceModelConfig]:
    """(ScriptArguments, EvalArguments, DPOPConfig, ModelConfig), as trl's own scripts parse them."""
    return parse_dataclasses((ScriptArguments, EvalArguments, PreferenceConfig, PreferenceModelConfig), __doc__,
                             argv)


if __name__ == "__main__":
    exit_on_format_error(lambda: main(*parse_args()))
