r"""Continued causal-LM pre-training of a decoder on raw domain text (seed 1's continual step, done right).

    python continual/main.py --output_dir results/continual/pretrain/smollm2 --max_train_tokens 20000
    accelerate launch --config_file continual/accelerate/fsdp.yaml continual/main.py \
        --model_name meta-llama/Llama-2-7b-hf --block_size 8000 --overlap 512 --output_dir ...   # seed 1, on GPUs

Text. By default the training splits of the registry corpora named by --datasets, and as validation
text their dev splits. --text_files (plain text, JSONL or folders, e.g. continual/mix_data.py's output)
replaces the training text, --validation_files the validation text. A training document whose text
is also in any other split of --datasets (dev, test) or in the validation text is dropped, as is a
repeated one; metrics.json counts both.

Training. Documents are shuffled (seeded), tokenised, joined with EOS into one stream, capped at
--max_train_tokens and cut into windows of --block_size tokens overlapping by --overlap (`pack` says
how the one label shift and the overlap are handled). Full-parameter training with the transformers
Trainer (AdamW, linear decay); a checkpoint every --save_steps in output_dir/checkpoint-N, and
--resume True continues from the newest one. Under `accelerate launch` with continual/accelerate/fsdp.yaml
the same script shards the model with FSDP (seed 1 used Lightning Fabric + FSDP).

Output. output_dir is an ordinary Hugging Face checkpoint (model and tokenizer via save_pretrained),
which AutoModelForTokenClassification loads as a backbone (encoders/main.py --model_name output_dir).
metrics.json holds the validation perplexity before and after, throughput and the caps; loss.png
the training and validation loss curves.
"""
from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence


import torch
from transformers import (AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerBase, Trainer, TrainingArguments,
                          default_data_collator, set_seed)

from continual.texts import RawDoc, file_docs, normalise, registry_docs
from data import registry
from data.corpus import exit_on_format_error, parse_dataclasses
from data.llm.models import resolve
from eval.runs import HardwareDefaults, claim_output_dir, last_checkpoint, run_settings, write_metrics

DEFAULT_DATASETS = ["ncbi_disease", "bc5cdr"]  # the default corpora of run_all.sh: English PubMed abstracts
IGNORE_INDEX = -100  # label the loss skips
Window = dict[str, torch.Tensor]


@dataclass
class ScriptArguments:
    model_name: str = field(default="smollm2", metadata={"help": "hub id, local path, or 'smollm2' (bundled)"})
    datasets: list[str] = field(default_factory=lambda: list(DEFAULT_DATASETS), metadata={
        "help": "registry corpora: train split = training text, dev split = validation text; none of "
                "their dev/test texts is ever trained on"})
    text_files: list[str] = field(default_factory=list, metadata={
        "help": "train on these files or folders instead (.jsonl with a 'text' field, or plain text "
                "with documents separated by blank lines)"})
    validation_files: list[str] = field(default_factory=list, metadata={
        "help": "validate on these files instead of the dev splits of --datasets"})
    block_size: int = field(default=256, metadata={"help": "tokens per window (seed 1: 8000)"})
    overlap: int = field(default=32, metadata={"help": "tokens a window repeats from the previous one, as context"})
    max_train_tokens: int | None = field(default=None, metadata={"help": "cap on the training stream (quick runs)"})
    max_eval_tokens: int | None = field(default=None, metadata={"help": "cap on the validation stream"})
    resume: bool = field(default=False, metadata={"help": "continue from the newest checkpoint in output_dir"})
    overwrite: bool = field(default=False, metadata={
        "help": "replace a finished run in output_dir (its metrics.json and checkpoints)"})

    def __post_init__(self) -> None:
        if self.block_size < 2 or not 0 <= self.overlap < self.block_size:
            raise ValueError("need --block_size >= 2 and 0 <= --overlap < --block_size")
        unknown = [n for n in self.datasets if n not in registry.DATASETS]
        if unknown:
            raise ValueError(f"unknown dataset(s) {', '.join(unknown)}; known: {', '.join(registry.DATASETS)}")
        if not self.text_files and any("train" not in registry.get(n).splits for n in self.datasets):
            raise ValueError("every dataset in --datasets needs a train split unless --text_files is given")
        if not self.text_files and not self.datasets:
            raise ValueError("nothing to train on: give --datasets or --text_files")
        if not self.validation_files and not any("dev" in registry.get(n).splits for n in self.datasets):
            raise ValueError("no validation text: give --validation_files or a dataset with a dev split")



@dataclass
class PretrainingArguments(HardwareDefaults, TrainingArguments):
    """transformers' TrainingArguments with seed 1's defaults and the seed's names: --batch_size (windows per
    device and step, for evaluation too), --eval_steps 0 (validate only before and after), --save_steps 0
    (never checkpoint)."""

    learning_rate: float = field(default=2e-5, metadata={"help": "seed 1: 2e-5"})
    num_train_epochs: float = field(default=2.0, metadata={"help": "seed 1: 2"})
    per_device_train_batch_size: int = field(default=1, metadata={"aliases": ["--batch_size"],
                                                                  "help": "windows per device and step"})
    per_device_eval_batch_size: int | None = field(default=None, metadata={"help": "default: --batch_size"})
    eval_steps: float | None = field(default=0, metadata={"help": "validate every N steps (0: only before and after)"})
    save_steps: float = field(default=200, metadata={"help": "checkpoint every N steps and at the end (0: never)"})
    save_total_limit: int = field(default=2, metadata={
        "help": "the newest checkpoint and the one before it, in case a kill interrupts a save"})
    logging_steps: float = 10
    logging_first_step: bool = True
    report_to: str = "none"

    def __post_init__(self):
        self.per_device_eval_batch_size = self.per_device_eval_batch_size or self.per_device_train_batch_size
        if self.eval_steps and self.eval_strategy == "no":
            self.eval_strategy = "steps"
        self.eval_steps = self.eval_steps or None
        if not self.save_steps:
            self.save_strategy, self.save_steps = "no", 1
        super().__post_init__()

# --------------------------------------------------------------------------- text
def load_texts(args: ScriptArguments) -> tuple[list[RawDoc], list[RawDoc], dict]:
    """Training and validation documents; training never contains a held-out or repeated text."""
    if args.text_files:
        train = [d for f in args.text_files for d in file_docs(f)]
    else:
        train = [d for name in args.datasets for d in registry_docs(name, "train")]
    if args.validation_files:
        validation = [d for f in args.validation_files for d in file_docs(f)]
    else:
        validation = [d for name in args.datasets if "dev" in registry.get(name).splits
                      for d in registry_docs(name, "dev")]
    held_out = {normalise(d.text) for d in validation}
    held_out |= {normalise(d.text) for name in args.datasets for split in registry.get(name).splits
                 if split != "train" for d in registry_docs(name, split)}
    kept, seen, dropped_held_out, dropped_repeats = [], set(), 0, 0
    for doc in train:
        key = normalise(doc.text)
        if key in held_out:
            dropped_held_out += 1
        elif key in seen:
            dropped_repeats += 1
        else:
            seen.add(key)
            kept.append(doc)
    report = {"train_source": args.text_files or [f"{n}:train" for n in args.datasets],
              "validation_source": args.validation_files or [f"{n}:dev" for n in args.datasets
                                                             if "dev" in registry.get(n).splits],
              "languages": {n: registry.get(n).language for n in args.datasets},
              "train_documents": len(kept), "validation_documents": len(validation),
              "dropped_held_out_texts": dropped_held_out, "dropped_repeated_texts": dropped_repeats}
    return kept, validation, report


def token_stream(tokenizer: PreTrainedTokenizerBase, docs: Sequence[RawDoc], seed: int,
                 max_tokens: int | None) -> list[int]:
    """The documents in a seeded random order as one stream, each ending in EOS, cut at max_tokens.

    The tokenizer adds its own special tokens (Llama 2 starts a document with BOS, SmolLM2 adds
    nothing); EOS is appended unless the tokenizer already ends with it.
    """
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no EOS token to separate documents with")
    order = list(docs)
    random.Random(seed).shuffle(order)
    stream: list[int] = []
    for doc in order:
        ids = tokenizer(doc.text)["input_ids"]
        stream += ids if ids and ids[-1] == tokenizer.eos_token_id else ids + [tokenizer.eos_token_id]
        if max_tokens is not None and len(stream) >= max_tokens:
            break
    return stream[:max_tokens]


def pack(stream: Sequence[int], block_size: int, overlap: int) -> list[Window]:
    """Cut a token stream into windows of block_size tokens, each starting block_size - overlap after the last.

    One label shift, done by the model: `labels` is a copy of `input_ids` and the model's loss compares
    the logits at position i with labels[i + 1] (a second, manual shift would teach it token t+2, seed
    1's bug). So a window can train every token but its first, which has no context inside it.

    Overlap gives the first targets of a window context; it must not train tokens twice. The repeated
    prefix (`overlap` tokens, which the previous window already trained) is labelled -100 and serves
    only as context. The last window is moved back to end at the stream's last token (its longer
    repeated prefix masked the same way) rather than padded or dropped. With overlap >= 1 every token
    of the stream except the very first is a target exactly once; with overlap 0 the first token of
    each window is not a target (standard non-overlapping packing). labels[0] is always -100 so that
    the number of targets is simply the count of labels != -100.
    """
    block = min(block_size, len(stream))
    if block < 2:
        raise ValueError(f"a stream of {len(stream)} token(s) holds nothing to predict")
    stride = block_size - overlap
    starts = list(range(0, len(stream) - block + 1, stride))
    if starts[-1] + block < len(stream):
        starts.append(len(stream) - block)
    windows, trained_upto = [], 0  # stream positions <= trained_upto are already targets (0 never is)
    for start in starts:
        input_ids = torch.tensor(stream[start:start + block])
        labels = input_ids.clone()
        labels[:max(1, trained_upto + 1 - start)] = IGNORE_INDEX
        windows.append({"input_ids": input_ids, "labels": labels})
        trained_upto = start + block - 1
    return windows


def validation_windows(stream: Sequence[int], block_size: int) -> list[Window]:
    """Whole, non-overlapping windows, the tail shorter than a window left out.

    Every window then has block_size - 1 targets, so the Trainer's mean of per-window losses is the
    exact per-token mean and exp() of it the perplexity.
    """
    whole = len(stream) // block_size * block_size
    if whole == 0:
        raise ValueError(f"the validation text ({len(stream)} tokens) is shorter than one window ({block_size})")
    return pack(stream[:whole], block_size, 0)


# --------------------------------------------------------------------------- training
def build_trainer(training: PretrainingArguments, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase,
                  train: list[Window], validation: list[Window]) -> Trainer:
    return Trainer(model=model, args=training, train_dataset=train, eval_dataset=validation,
                   processing_class=tokenizer, data_collator=default_data_collator)  # equal lengths: no padding


def perplexity(trainer: Trainer) -> dict:
    loss = trainer.evaluate()["eval_loss"]
    return {"loss": round(loss, 4), "perplexity": round(math.exp(loss), 3)}


def plot_losses(log_history: list[dict], loss_before: float, path: Path, title: str) -> None:
    """Training loss per logging step; validation loss before training (step 0, which train() does not keep
    in its log) and at every evaluation after."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e]
    validation = [(0, loss_before)] + [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    fig, ax = plt.subplots(figsize=(6, 4))
    for points, label, style in [(train, "training", "-"), (validation, "validation", "o--")]:
        if points:
            ax.plot(*zip(*points), style, label=label)
    ax.set(xlabel="optimizer step", ylabel="loss (nats per token)", title=title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: ScriptArguments, training: PretrainingArguments) -> dict:
    """Train, evaluate before and after, save the model, metrics.json and loss.png; return the metrics."""
    out = claim_output_dir(training.output_dir, overwrite=args.overwrite, resume=args.resume,
                           settings=run_settings(args, training))
    checkpoint = last_checkpoint(out)  # a kill while saving leaves a newer, incomplete one
    if checkpoint and not args.resume:
        raise ValueError(f"{out} already holds {Path(checkpoint).name}: pass --resume True or another --output_dir")
    if checkpoint:
        print(f"resuming from {checkpoint}")
    set_seed(training.seed)
    path = resolve(args.model_name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)  # fp32 master weights

    train_docs, validation_docs, text_report = load_texts(args)
    train_stream = token_stream(tokenizer, train_docs, training.seed, args.max_train_tokens)
    validation_stream = token_stream(tokenizer, validation_docs, training.seed, args.max_eval_tokens)
    train, validation = pack(train_stream, args.block_size, args.overlap), validation_windows(validation_stream,
                                                                                               args.block_size)
    targets = sum(int((w["labels"] != IGNORE_INDEX).sum()) for w in train)
    print(f"training: {len(train_stream):,} tokens in {len(train):,} windows ({targets:,} targets) from "
          f"{text_report['train_documents']:,} documents; validation: {len(validation) * args.block_size:,} tokens")

    trainer = build_trainer(training, model, tokenizer, train, validation)
    before = perplexity(trainer)
    print(f"validation before: loss {before['loss']:.4f} perplexity {before['perplexity']:.2f}")
    first_step = int(Path(checkpoint).name.split("-")[-1]) if checkpoint else 0
    result = trainer.train(resume_from_checkpoint=checkpoint)
    after = perplexity(trainer)
    print(f"validation after: loss {after['loss']:.4f} perplexity {after['perplexity']:.2f}")
    trainer.save_model(str(out))

    steps = result.global_step - first_step
    batch_tokens = (training.per_device_train_batch_size * training.gradient_accumulation_steps
                    * trainer.args.world_size * args.block_size)
    processed = steps * batch_tokens  # input tokens seen in this run's optimizer steps
    metrics = {
        "method": "continual_pretraining", "model_name": args.model_name,
        "training_args": training.to_dict(),
        "text": {**text_report, "train_tokens": len(train_stream), "train_windows": len(train),
                 "train_targets_per_epoch": targets, "validation_tokens": len(validation) * args.block_size},
        "caps": {"max_train_tokens": args.max_train_tokens, "max_eval_tokens": args.max_eval_tokens},
        "validation": {"before": before, "after": after},
        "training": {"steps": result.global_step, "steps_this_run": steps, "resumed_from": checkpoint,
                     "runtime_s": round(result.metrics["train_runtime"], 1),
                     "tokens_per_second": round(processed / max(result.metrics["train_runtime"], 1e-9), 1),
                     "final_training_loss": next((e["loss"] for e in reversed(trainer.state.log_history)
                                                  if "loss" in e), None)},
    }
    if trainer.is_world_process_zero():
        write_metrics(out, metrics, settings=run_settings(args, training))
        plot_losses(trainer.state.log_history, before["loss"], out / "loss.png",
                    f"{Path(args.model_name).name}: perplexity {before['perplexity']:.1f} -> {after['perplexity']:.1f}")
    return metrics


def parse_args(argv: list[str] | None = None) -> tuple[ScriptArguments, PretrainingArguments]:
    """(ScriptArguments, TrainingArguments): every Trainer option is a flag."""
    try:
        return parse_dataclasses((ScriptArguments, PretrainingArguments), __doc__, argv)
    except ValueError as err:  # __post_init__: inconsistent options
        raise SystemExit(f"error: {err}") from None


def main() -> None:
    args, training = parse_args()
    try:
        run(args, training)
    except ValueError as err:  # e.g. checkpoints without --resume, a text shorter than one window
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    exit_on_format_error(main)
