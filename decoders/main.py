"""Fine-tune a generating LM with LoRA to write the entities of each unit in an output format, select the
best epoch on the validation split, then generate, parse and score the validation and test splits
(seed 0's decoder; seed 4's instruction tuning; generative/main.py runs seed 1 through this script).

    python decoders/main.py --dataset_name ncbi_disease --output_dir results/decoders/bio/ncbi_disease
    python decoders/main.py --model_name mistralai/Mistral-7B-Instruct-v0.3 --isQLoRA True --output_format bio ...
    python decoders/main.py --model_name minilm2minilm --output_format typed ...      # an encoder-decoder
    python decoders/main.py ... --constrained True        # answers that always parse (data/constraints.py)

The prompt is data/instructions.prompt(instruction(types, format), unit text); the target is the unit's
gold answer in --output_format (data/formats.py), followed by EOS. Units are sentences, or with --level
document documents cut into windows of at most --max_sentences sentences.

Causal LMs train with trl's SFTTrainer on prompt-completion pairs: loss on the answer tokens only
(completion_only_loss), padding masked, no packing or padding-free batches. Encoder-decoders (T5 family;
'minilm2minilm' here) train with transformers' Trainer, the prompt as encoder input and the answer as
labels (SFTTrainer has no seq2seq path). Both with peft LoRA; --isQLoRA True loads the base weights in
4 bits (bitsandbytes NF4, double quantisation). trl 1.16 computes the loss from lm_head.weight directly
and refuses a LoRA adapter on lm_head: train it in full with --lora_modules_to_save lm_head instead.

Model selection: after every epoch the model answers the validation units (greedy; the first
--max_selection_docs documents), scored with eval/semeval's strict F1 on the documents; the best epoch's
adapter is kept and training stops after --patience epochs without a better one. The test split is
generated once, at the end, with the selected adapter. --resume True continues from the last complete
checkpoint; generation resumes too (each split's outputs file keeps the units already answered).

Writes to --output_dir: `model/` (LoRA adapter, tokenizer, generation.json for decoders/inference.py),
`checkpoints/`, `{dev,test}.outputs.jsonl` (raw answer per unit), `{dev,test}.predictions.jsonl`
(document-level character spans), `training.png` and `metrics.json` ({"method", "model", "dataset",
"format", "level", "constrained", "dev", "test": eval/semeval JSON, "diagnostics": {split: eval/diagnostics
per unit}, epochs, caps, generation budgets and times}).
"""
from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# Idle OpenMP threads sleep instead of spinning (set before torch loads): on shared CPUs spinning threads
# steal each other's time (generation ran 3x faster with it on a busy machine).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from datasets import Dataset
from peft import LoraConfig, TaskType, get_peft_model, prepare_model_for_kbit_training
from transformers import (DataCollatorForSeq2Seq, EarlyStoppingCallback, HfArgumentParser, Trainer, TrainingArguments,
                          set_seed)
from trl import SFTConfig, SFTTrainer

from data import registry
from data.corpus import Document, HelpFormatter, exit_on_format_error
from data.formats import FORMATS, OutputFormat, get_format
from data.generation import PredictionStore, is_encoder_decoder, load_model, load_tokenizer
from data.instructions import LEVELS
from data.text import first_sentences
from decoders import units
from encoders.main import (epochs_summary, last_checkpoint, load_splits, plot_training,
                           steps_if_finished)

EVAL_SPLITS = ("dev", "test")


@dataclass
class Args:
    dataset_name: str = field(metadata={"help": f"a registry name ({', '.join(registry.DATASETS)}), or the name "
                                                "to report for --datasets_path"})
    output_dir: Path = field(metadata={"help": "model, checkpoints, outputs, predictions and metrics.json go here"})
    model_name: str = field(default="smollm2", metadata={
        "help": "hub id or local path of a causal LM or an encoder-decoder; 'smollm2' and 'minilm2minilm' are "
                "the bundled offline checkpoints"})
    datasets_path: Path | None = field(default=None, metadata={"help": "folder with train/dev/test.jsonl in the "
                                                                       "corpus format, instead of the registry"})
    output_format: str = field(default="bio", metadata={"choices": tuple(FORMATS), "help": "data/formats.py"})
    level: str = field(default="sentence", metadata={"choices": LEVELS, "help": "unit of a prompt"})
    max_sentences: int = field(default=10, metadata={"help": "--level document: sentences per window"})
    method: str = field(default="decoder", metadata={"help": "the method's name in metrics.json"})
    num_train_epochs: float = 3
    max_steps: int = field(default=-1, metadata={"help": "stop after this many optimizer steps (-1: the epochs)"})
    learning_rate: float = 2e-4
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    optim: str = field(default="adamw_torch", metadata={"help": "e.g. paged_adamw_8bit (seed 0, GPUs)"})
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    seed: int = 42
    patience: int = field(default=3, metadata={"help": "epochs without a better validation strict F1 before stopping"})
    isQLoRA: bool = field(default=False, metadata={"help": "4-bit NF4 base weights (bitsandbytes) under the LoRA"})
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str = field(default="all-linear", metadata={"help": "comma-separated module names"})
    lora_modules_to_save: str | None = field(default=None, metadata={
        "help": "comma-separated modules trained in full beside the adapter (e.g. lm_head)"})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 mixed precision (GPUs, recent CPUs)"})
    gradient_checkpointing: bool = False
    train_sampling_strategy: str = field(default="group_by_length", metadata={
        "choices": ("group_by_length", "random"),
        "help": "transformers' batch order: similar lengths together (little padding, the longest batch first) "
                "or random"})
    max_length: int | None = field(default=None, metadata={
        "help": "causal LMs: cut training sequences (prompt + answer) to this many tokens; the number cut is "
                "reported (default: no cut)"})
    generation_batch_size: int = 8
    max_new_tokens: int | None = field(default=None, metadata={
        "help": "answer budget in tokens (default, per unit: 1.2 x the longest gold answer of the training "
                "split and the split generated, and at most 1.2 x the unit's length times the largest "
                "answer/input length ratio of the training units)"})
    constrained: bool = field(default=False, metadata={"help": "constrained decoding (data/constraints.py)"})
    max_train_docs: int | None = field(default=None, metadata={"help": "use only the first N training documents"})
    max_eval_docs: int | None = field(default=None, metadata={"help": "use only the first N dev and test documents"})
    max_eval_sentences: int | None = field(default=None, metadata={
        "help": "cut each evaluated document after its first N sentences (data.text.first_sentences)"})
    max_selection_docs: int | None = field(default=None, metadata={
        "help": "model selection generates on the first N dev documents (default: all of --max_eval_docs)"})
    save_total_limit: int = 2
    logging_steps: int = 10
    resume: bool = field(default=False, metadata={"help": "continue from the last complete checkpoint in output_dir"})


class SelectOnValidation:
    """Trainer mixin: an evaluation generates answers for the selection units and scores them on the
    documents (decoders/units.selection_score), so that Trainer's best-checkpoint tracking and early
    stopping work on strict F1. The eval_dataset Trainer asks for is never read."""

    def __init__(self, *args, selection: dict, **kwargs):
        self.selection = selection
        self.answers: dict[int, list[str]] = {}  # global step -> the selection units' answers then
        super().__init__(*args, **kwargs)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        started = time.time()
        scores, self.answers[self.state.global_step] = units.selection_score(self.model, self.processing_class,
                                                                             **self.selection)
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in scores.items()}
        metrics[f"{metric_key_prefix}_runtime"] = round(time.time() - started, 1)
        self.model.eval()  # SFTTrainer.log files metrics under the mode the model is in (training resumes it)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


class CausalSFTTrainer(SelectOnValidation, SFTTrainer):
    """The causal-LM path: trl's SFTTrainer on prompt-completion pairs, selected on validation strict F1."""


class Seq2SeqLoRATrainer(SelectOnValidation, Trainer):
    """The encoder-decoder path: the same selection, transformers' Trainer."""


def lora_config(args: Args, encoder_decoder: bool) -> LoraConfig:
    targets = args.lora_target_modules
    return LoraConfig(task_type=TaskType.SEQ_2_SEQ_LM if encoder_decoder else TaskType.CAUSAL_LM, r=args.lora_r,
                      lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                      target_modules=targets if targets == "all-linear" else targets.split(","),
                      modules_to_save=args.lora_modules_to_save.split(",") if args.lora_modules_to_save else None)


def training_kwargs(args: Args, max_steps: int | None) -> dict:
    """TrainingArguments shared by both paths."""
    return dict(
        output_dir=str(args.output_dir / "checkpoints"), num_train_epochs=args.num_train_epochs,
        max_steps=max_steps or args.max_steps, learning_rate=args.learning_rate,
        per_device_train_batch_size=args.per_device_train_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps, optim=args.optim,
        lr_scheduler_type=args.lr_scheduler_type, warmup_steps=args.warmup_ratio, weight_decay=args.weight_decay,
        train_sampling_strategy=args.train_sampling_strategy,
        eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True, metric_for_best_model="strict_f1",
        greater_is_better=True, save_total_limit=args.save_total_limit, restore_callback_states_from_checkpoint=True,
        logging_steps=args.logging_steps, seed=args.seed, bf16=args.bf16,
        activation_checkpointing=args.gradient_checkpointing, use_cpu=not torch.accelerator.is_available(),
        dataloader_pin_memory=torch.accelerator.is_available(), report_to="none")


def answer_end_id(model, tokenizer) -> int:
    """The id that ends a target: the tokenizer's EOS, else the model's (BERT decoders: [SEP])."""
    if tokenizer.eos_token_id is not None:
        return tokenizer.eos_token_id
    eos = model.generation_config.eos_token_id
    return eos if isinstance(eos, int) else eos[0]


def seq2seq_examples(recs: Sequence[dict], tokenizer, end_id: int) -> list[dict]:
    """Encoder input = the prompt; labels = the answer and the end id (no start token: the decoder starts
    from decoder_start_token_id)."""
    return [{"input_ids": tokenizer(r["source"]).input_ids,
             "labels": tokenizer(r["output"], add_special_tokens=False).input_ids + [end_id]} for r in recs]


def count_cut(recs: Sequence[dict], tokenizer, max_length: int | None) -> int:
    """Training records longer than max_length tokens (prompt + answer + EOS), which get cut."""
    if max_length is None:
        return 0
    return sum(len(tokenizer(r["source"] + r["output"]).input_ids) + 1 > max_length for r in recs)


def budgets(args: Args, tokenizer, rule: dict, recs: Sequence[dict]) -> list[int]:
    """max_new_tokens per unit: --max_new_tokens for all, else decoders/units.budgets."""
    return [args.max_new_tokens] * len(recs) if args.max_new_tokens else units.budgets(tokenizer, rule, recs)


def build_trainer(args: Args, tokenizer, train: Sequence[dict], dev_docs: Sequence[Document], types: Sequence[str],
                  fmt: OutputFormat, rule: dict, resume_from: str | None):
    """The model with its LoRA config and the trainer for the model's kind, selecting on dev_docs."""
    set_seed(args.seed)  # LoRA's initial weights
    encoder_decoder = is_encoder_decoder(args.model_name)
    if encoder_decoder and args.max_length:
        raise SystemExit("error: --max_length cuts causal training sequences; encoder-decoders are not cut")
    model = load_model(args.model_name, args.isQLoRA)
    if args.isQLoRA:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=args.gradient_checkpointing)
    dev = units.unit_records(dev_docs, types, fmt, args.level, args.max_sentences, False)
    cut = count_cut(train, tokenizer, args.max_length)
    print(f"train: {len(train):,} units ({cut:,} longer than --max_length, cut); "
          f"model selection on {len(dev_docs):,} dev documents, {len(dev):,} units")
    selection = dict(docs=dev_docs, recs=dev, fmt=fmt, types=types, batch_size=args.generation_batch_size,
                     max_new_tokens=budgets(args, tokenizer, rule, dev), constrained=args.constrained)
    callbacks = [EarlyStoppingCallback(args.patience)]
    max_steps = steps_if_finished(resume_from)
    if encoder_decoder:
        model = get_peft_model(model, lora_config(args, True))
        end_id = answer_end_id(model, tokenizer)
        train_set, dev_set = (Dataset.from_list(seq2seq_examples(r, tokenizer, end_id)) for r in (train, dev))
        return Seq2SeqLoRATrainer(
            model=model, args=TrainingArguments(**training_kwargs(args, max_steps)), train_dataset=train_set,
            eval_dataset=dev_set, processing_class=tokenizer, data_collator=DataCollatorForSeq2Seq(tokenizer, model),
            callbacks=callbacks, selection=selection)

    def pairs(recs):
        return Dataset.from_list([{"prompt": r["source"], "completion": r["output"]} for r in recs])

    config = SFTConfig(**training_kwargs(args, max_steps), completion_only_loss=True, padding_free=False,
                       packing=False, max_length=args.max_length)
    return CausalSFTTrainer(model=model, args=config, train_dataset=pairs(train), eval_dataset=pairs(dev),
                            processing_class=tokenizer, peft_config=lora_config(args, False), callbacks=callbacks,
                            selection=selection)


def evaluate_splits(args: Args, model, tokenizer, docs: dict[str, list[Document]], types: Sequence[str],
                    fmt: OutputFormat, rule: dict, changes: Counter) -> dict[str, dict]:
    """Generate, parse and score every evaluation split with the selected model."""
    results = {}
    for split in EVAL_SPLITS:
        if split not in docs:
            continue
        recs = units.unit_records(docs[split], types, fmt, args.level, args.max_sentences, False, changes)
        budget = budgets(args, tokenizer, rule, recs)
        results[split] = units.evaluate_split(model, tokenizer, split, docs[split], recs, fmt, types,
                                              args.output_dir, budget, args.generation_batch_size, args.constrained)
    return results


def write_metrics(args: Args, results: dict[str, dict], log_history: list[dict], train_seconds: float,
                  changes: Counter) -> dict:
    epochs_run, best_epoch = epochs_summary(log_history)
    metrics = {"method": args.method, "model": args.model_name, "dataset": args.dataset_name,
               "format": args.output_format, "level": args.level, "constrained": args.constrained,
               "isQLoRA": args.isQLoRA, "lora": {k: getattr(args, f"lora_{k}") for k in
                                                 ("r", "alpha", "dropout", "target_modules", "modules_to_save")},
               "learning_rate": args.learning_rate, "epochs_run": epochs_run, "best_epoch": best_epoch,
               "train_seconds": round(train_seconds, 1), "max_train_docs": args.max_train_docs,
               "max_eval_docs": args.max_eval_docs, "max_eval_sentences": args.max_eval_sentences,
               "max_selection_docs": args.max_selection_docs,
               "max_steps": args.max_steps, "units_changed": dict(sorted(changes.items()))}
    metrics.update({split: r["scores"] for split, r in results.items()})
    metrics["diagnostics"] = {split: r["diagnostics"] for split, r in results.items()}
    metrics["generation"] = {split: {k: r[k] for k in ("units", "max_new_tokens", "generation_seconds")}
                             for split, r in results.items()}
    (args.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_training(log_history, args.output_dir / "training.png",
                  f"{args.model_name} on {args.dataset_name}, {args.output_format} (best epoch {best_epoch} of "
                  f"{epochs_run})")
    return metrics


def reuse_selection_answers(args: Args, trainer, dev_docs: Sequence[Document]) -> None:
    """When model selection answered the whole evaluated dev split, the selected epoch's answers become
    dev.outputs.jsonl, so the final dev scores cost no second generation pass (a resumed run that did not
    see that epoch's evaluation generates them again)."""
    answers, selection = trainer.answers.get(trainer.state.best_global_step), trainer.selection
    if answers is None or len(selection["docs"]) < len(dev_docs):
        return
    store = PredictionStore(args.output_dir / "dev.outputs.jsonl")
    if len(store):  # a resumed run's own answers stay
        return
    store.add([{"id": r["id"], "output": text, "max_new_tokens": n}
               for r, text, n in zip(selection["recs"], answers, selection["max_new_tokens"])])
    print(f"dev: the answers of the selected step ({trainer.state.best_global_step}) reused")


def main(args: Args) -> dict:
    checkpoints = args.output_dir / "checkpoints"
    if last_checkpoint(checkpoints) and not args.resume:
        raise SystemExit(f"error: {checkpoints} holds checkpoints: pass --resume True to continue that run, "
                         "or remove them to start over")
    resume_from = last_checkpoint(checkpoints) if args.resume else None
    if resume_from is None:  # a new model: answers of an earlier one must not be reused
        for split in EVAL_SPLITS:
            stale = args.output_dir / f"{split}.outputs.jsonl"
            if stale.exists():
                print(f"removing {stale} (a new training run)")
                stale.unlink()
    docs, types = load_splits(args)
    fmt = get_format(args.output_format)
    changes: Counter = Counter()
    for split in EVAL_SPLITS:
        docs[split] = first_sentences(docs[split], args.max_eval_sentences, changes)
    tokenizer = load_tokenizer(args.model_name, is_encoder_decoder(args.model_name))
    train = units.unit_records(docs["train"], types, fmt, args.level, args.max_sentences, True, changes)
    rule = units.budget_rule(tokenizer, train)
    trainer = build_trainer(args, tokenizer, train, docs["dev"][:args.max_selection_docs], types, fmt, rule,
                            resume_from)
    if resume_from:
        print(f"resuming from {resume_from}")
    started = time.time()
    trainer.train(resume_from_checkpoint=resume_from)  # ends with the best epoch's adapter loaded
    train_seconds = time.time() - started
    trainer.save_state()
    model = trainer.model
    model.save_pretrained(args.output_dir / "model")
    tokenizer.save_pretrained(args.output_dir / "model")
    units.write_generation_info(args.output_dir / "model", {
        "base_model": args.model_name, "isQLoRA": args.isQLoRA, "dataset": args.dataset_name, "types": list(types),
        "output_format": args.output_format, "level": args.level, "max_sentences": args.max_sentences,
        "lora_r": args.lora_r, "budget_rule": rule, "training": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(args).items()}})
    reuse_selection_answers(args, trainer, docs["dev"])
    if not args.isQLoRA:
        model = model.merge_and_unload()  # faster generation; 4-bit weights keep the adapter apart
    results = evaluate_splits(args, model.eval(), tokenizer, docs, types, fmt, rule, changes)
    return write_metrics(args, results, trainer.state.log_history, train_seconds, changes)


def parse_args(argv: list[str] | None = None, defaults: dict | None = None, doc: str | None = None) -> Args:
    """Arguments; generative/main.py passes its own defaults and usage text."""
    parser = HfArgumentParser(Args, description=doc or __doc__, formatter_class=HelpFormatter)
    parser.set_defaults(**(defaults or {}))
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
