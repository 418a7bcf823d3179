"""DFPO stages 1 and 3 (seed 3): supervised LoRA / QLoRA fine-tuning on seed 3's framing, then the test split.

    python dfpo/finetune.py --one_dataset ncbi_disease --modelpath google/gemma-2-9b-it --datapreprocess \\
        --epoch 5 --batchsize 1 --gradient_accumulation_steps 8 --lr_scheduler_type constant_with_warmup \\
        --learning_rate 2e-4 --isQLoRA True --output_dir results/dfpo/ncbi_disease/stage1
    python dfpo/finetune.py ... --init_adapter results/dfpo/ncbi_disease/stage2 --output_dir .../stage3

One record per training document and entity type (dfpo/stages.py): the user turn asks for the mentions of
the type in the document, the assistant turn is their Python list; the model's own chat template, the loss
on the answer only (trl's SFTTrainer, completion_only_loss). Seed 3's LoRA: r 32, alpha 16, dropout 0.1 on
q, k, v, o, gate, up and down projections; --isQLoRA True puts 4-bit NF4 base weights under it
(bitsandbytes). Documents longer than --max_length (3,000 tokens, the seed's cap) are cut into windows of
sentences, counted, never dropped. --init_adapter starts from the model a finished stage left (its adapters
merged), so stage 3 fine-tunes the stage-2 model again.

--datapreprocess writes the chat records to OUTPUT_DIR/data/train.jsonl first (the seed's preprocessing
step; here from our registry, never the hub); without it they are read from there, so a stage can be rerun
on the exact records. --resume True continues from the last checkpoint in OUTPUT_DIR.

Writes OUTPUT_DIR/model (adapter, tokenizer, stack.json), OUTPUT_DIR/test/<task>/ (answers, predictions),
metrics.json (strict F1, parse rate, hallucination rate and seed 3's string-set F1 on the test units: greedy,
or --temperature 0.5 --repeats 5 as the seed sampled) and training.png.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from datasets import Dataset
from peft import prepare_model_for_kbit_training
from transformers import set_seed
from trl import SFTConfig, SFTTrainer, get_peft_config, get_quantization_config

from data.corpus import FormatError, exit_on_format_error, iter_jsonl, parse_dataclasses
from data.llm.generation import load_tokenizer
from dfpo.stages import (EvalArguments, StageModelConfig, StageTrainingDefaults, chat_record,
                         evaluate_stage, load_stage_model, save_stage, task_units)
from eval.runs import (HardwareDefaults, claim_output_dir, peak_memory_mb, plot_training, resume_point,
                       run_settings, write_metrics)

@dataclass
class ScriptArguments:
    one_dataset: str = field(metadata={"help": "a corpus (bc5cdr, ncbi_disease) or one task (bc5cdr_chemical, ...)"})
    datasets_path: Path | None = field(default=None, metadata={
        "help": "a corpus as train/dev/test.jsonl (one task per entity type) instead of a registry corpus"})
    init_adapter: Path | None = field(default=None, metadata={
        "help": "OUTPUT_DIR of a finished DFPO stage: train on top of its model (stage 3 after stage 2)"})
    datapreprocess: bool = field(default=False, metadata={
        "help": "write the chat records to OUTPUT_DIR/data/train.jsonl before training (else read them there)"})
    max_train_docs: int | None = field(default=None, metadata={"help": "the first N training documents only"})
    resume: bool = field(default=False, metadata={"help": "continue from the last checkpoint in output_dir"})
    overwrite: bool = field(default=False, metadata={
        "help": "replace a finished run in output_dir (its metrics.json and checkpoints)"})


@dataclass
class FinetuneConfig(HardwareDefaults, StageTrainingDefaults, SFTConfig):
    """trl's SFTConfig with seed 3's stage-1 settings as defaults and its flag names as aliases."""

    num_train_epochs: float = field(default=5, metadata={"aliases": ["--epoch"]})
    learning_rate: float = 2e-4
    lr_scheduler_type: str = "constant_with_warmup"
    warmup_steps: float = 0.03
    max_length: int | None = field(default=3000, metadata={
        "help": "tokens of prompt + answer; longer documents are cut into windows of sentences (counted)"})
    completion_only_loss: bool = True


def training_records(script: ScriptArguments, config: FinetuneConfig, tokenizer, changes: Counter) -> list[dict]:
    """The chat records of the training split: built (--datapreprocess) or read back from OUTPUT_DIR/data."""
    path = Path(config.output_dir) / "data" / "train.jsonl"
    if script.datapreprocess:
        units = task_units(script.one_dataset, "train", tokenizer, config.max_length, script.max_train_docs,
                           changes, script.datasets_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps({"id": u.id, **chat_record(u)}) + "\n" for u in units), encoding="utf-8")
        print(f"train: {len(units):,} records written to {path}")
    if not path.exists():
        raise SystemExit(f"error: {path} not found: pass --datapreprocess to build the training records")
    records = []
    for line, record in iter_jsonl(path):
        if not isinstance(record, dict) or not {"prompt", "completion"} <= record.keys():
            raise FormatError(path, line, "a training record needs 'prompt' and 'completion'")
        records.append({"prompt": record["prompt"], "completion": record["completion"]})
    return records


def main(script: ScriptArguments, evaluation: EvalArguments, config: FinetuneConfig,
         model_config: StageModelConfig) -> dict:
    out = Path(config.output_dir)
    configured = run_settings(script, evaluation, model_config, config)  # before resume_point may set max_steps
    claim_output_dir(out, overwrite=script.overwrite, resume=script.resume, settings=configured)
    resume_from = resume_point(config, script.resume)
    tokenizer = load_tokenizer(script.init_adapter / "model" if script.init_adapter else
                               model_config.model_name_or_path, encoder_decoder=False)
    changes: Counter = Counter()
    records = training_records(script, config, tokenizer, changes)
    set_seed(config.seed)
    model, stack = load_stage_model(model_config.model_name_or_path, script.init_adapter,
                                    get_quantization_config(model_config))
    if model_config.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.activation_checkpointing)
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(records),
                         processing_class=tokenizer, peft_config=get_peft_config(model_config))
    started = time.time()
    trainer.train(resume_from_checkpoint=resume_from)
    train_seconds = time.time() - started
    train_memory = peak_memory_mb()
    trainer.save_state()
    method = "dfpo:" + ("post-finetune" if script.init_adapter else "finetune")
    save_stage(trainer.model, tokenizer, out, stack, {"stage": method.removeprefix("dfpo:"),
                                                      "dataset": script.one_dataset})
    model = trainer.model.merge_and_unload() if not model_config.load_in_4bit else trainer.model
    model.eval()
    train_units = task_units(script.one_dataset, "train", tokenizer, config.max_length, script.max_train_docs,
                             datasets_path=script.datasets_path)
    settings = {"model": stack["base"], "adapters": [*stack["adapters"], str((out / "model").resolve())],
                "trained_at": json.loads((out / "trainer_state.json").read_text())["global_step"]}
    tests = evaluate_stage(model, tokenizer, script.one_dataset, script.datasets_path, train_units, out / "test",
                           method, settings, evaluation, config.seed)
    metrics = {"method": method,
               "model": model_config.model_name_or_path, "dataset": script.one_dataset, "format": "list",
               "stack": settings["adapters"], "records": len(records), "units_changed": dict(changes),
               "train_seconds": round(train_seconds, 1), "peak_memory_mb": train_memory,
               "lora": {k: getattr(model_config, f"lora_{k}") for k in ("r", "alpha", "dropout", "target_modules")},
               "isQLoRA": model_config.load_in_4bit, "tasks": tests}
    write_metrics(out, metrics, settings=configured)
    plot_training(trainer.state.log_history, out / "training.png",
                  f"{model_config.model_name_or_path} on {script.one_dataset}: DFPO fine-tuning")
    return metrics


def parse_args(argv: list[str] | None = None) -> tuple[ScriptArguments, EvalArguments, FinetuneConfig,
                                                       StageModelConfig]:
    """(ScriptArguments, EvalArguments, SFTConfig, ModelConfig), as trl's own scripts parse them."""
    return parse_dataclasses((ScriptArguments, EvalArguments, FinetuneConfig, StageModelConfig), __doc__, argv)


if __name__ == "__main__":
    exit_on_format_error(lambda: main(*parse_args()))
