"""Fine-tune a token classifier (BERT-family encoder, or a decoder LM such as Llama with LoRA) for NER,
then predict and score the validation and test splits (seeds 0, 1 and 2).

    python encoders/main.py --dataset_name ncbi_disease --output_dir results/encoder/ncbi_disease
    python encoders/main.py --model_name smollm2 --lora True --learning_rate 1e-4 ...   # Llama + LoRA
    torchrun --standalone --nproc_per_node 2 encoders/main.py ...                         # several devices
    accelerate launch --config_file encoders/accelerate/ddp.yaml encoders/main.py ...

Training is transformers' Trainer: length-grouped batches in shuffled order with dynamic padding, AdamW with linear
warm-up and decay, an evaluation per epoch scored with eval/semeval's strict F1 on character spans,
early stopping on it (--patience epochs without improvement) and the best epoch kept; a checkpoint
every --save_steps optimizer steps and at each epoch end; --resume True continues from the last
complete checkpoint exactly as if the run had not stopped (same batches, dropout and optimizer state).
Validation and test predictions are decoded as the most probable valid BIO sequence (encoders/tagging).

Writes to --output_dir: `model/` (the best model, LoRA merged in), `checkpoints/`, `metrics.json`
({"method": "encoder", "model", "dataset", "epochs_run", "best_epoch", "dev", "test"}),
`{dev,test}.predictions.jsonl` and `training.png` (training loss and validation strict F1 per epoch).
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# Idle OpenMP threads sleep instead of spinning (set before torch loads). On shared or busy CPUs spinning
# threads steal each other's time: inference ran 1.4x and training steps up to 4x faster with it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
import torch.nn.functional as F
from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,
                          EarlyStoppingCallback, HfArgumentParser, Trainer, TrainerCallback, TrainingArguments,
                          set_seed)
from transformers.trainer_pt_utils import get_length_grouped_indices

from data import registry
from data.bio import DISCONTINUOUS_POLICIES, OVERLAP_POLICIES, describe_changes
from data.corpus import Document, HelpFormatter, exit_on_format_error, read_jsonl, write_jsonl
from data.models import resolve
from encoders import tagging
from eval.semeval import score

SPLITS = ("train", "dev", "test")
HELD_OUT_DEV = 0.1  # share of the training documents held out for validation when a corpus has no dev split


@dataclass
class Args:
    dataset_name: str = field(metadata={"help": f"a registry name ({', '.join(registry.DATASETS)}), or the name "
                                                "to report for --datasets_path"})
    output_dir: Path = field(metadata={"help": "model, checkpoints, metrics.json, predictions and plot go here"})
    model_name: str = field(default="minilm", metadata={"help": "hub id or local path; 'minilm' and 'smollm2' are "
                                                                "the bundled offline checkpoints"})
    datasets_path: Path | None = field(default=None, metadata={"help": "folder with train/dev/test.jsonl in the "
                                                                       "corpus format, instead of the registry"})
    num_train_epochs: float = 20
    learning_rate: float = 2e-5
    batch_size: int = field(default=8, metadata={"help": "per device"})
    gradient_accumulation_steps: int = 1
    eval_batch_size: int = 32
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    group_by_length: bool = field(default=True, metadata={
        "help": "batches of similar length (less padding), in shuffled order; False: random batches (on "
                "450 NCBI-disease sentences, 3 epochs, MiniLM: 1.3 test F1 points better over seeds 42 and 43)"})
    seed: int = 42
    patience: int = field(default=3, metadata={"help": "epochs without a better validation strict F1 before stopping"})
    max_length: int = field(default=512, metadata={"help": "sub-words per model input, special tokens included; "
                                                           "longer sentences are cut into overlapping windows"})
    stride: int | None = field(default=None, metadata={"help": "sub-words between window starts (default: half)"})
    save_steps: int = field(default=500, metadata={"help": "a checkpoint every this many optimizer steps"})
    save_total_limit: int = 2
    logging_steps: int = 50
    resume: bool = field(default=False, metadata={"help": "continue from the last complete checkpoint in output_dir"})
    lora: bool = field(default=False, metadata={"help": "train LoRA adapters (peft) and the classifier head only"})
    lora_r: int = 12
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lora_target_modules: str = field(default="all-linear", metadata={"help": "comma-separated module names"})
    bf16: bool = field(default=False, metadata={"help": "bfloat16 mixed precision (GPUs, recent CPUs)"})
    max_train_docs: int | None = field(default=None, metadata={"help": "use only the first N training documents"})
    max_eval_docs: int | None = field(default=None, metadata={"help": "use only the first N dev and test documents"})
    overlap_policy: str = field(default="longest_first", metadata={"choices": OVERLAP_POLICIES})
    discontinuous_policy: str = field(default="first_fragment", metadata={"choices": DISCONTINUOUS_POLICIES})
    decode_mode: str = field(default=tagging.DECODE_MODE, metadata={
        "choices": tagging.DECODE_MODES, "help": "viterbi: the most probable valid BIO sequence; lenient / strict: "
                                              "each word's arg-max, read by data/bio.from_bio's modes"})


def load_splits(args: Args) -> tuple[dict[str, list[Document]], tuple[str, ...]]:
    """train/dev/test documents and the entity types, from the registry or a folder of JSONL files."""
    if args.datasets_path:
        docs = {s: read_jsonl(args.datasets_path / f"{s}.jsonl") for s in SPLITS}
        types = tuple(sorted({e.type for d in docs["train"] for e in d.entities}))
    else:
        ds = registry.get(args.dataset_name)
        docs = {s: registry.load(args.dataset_name, s) for s in SPLITS if s in ds.splits}
        types = ds.types
        if "dev" not in docs:
            train = docs["train"][:]
            random.Random(args.seed).shuffle(train)
            n = max(1, int(HELD_OUT_DEV * len(train)))
            docs["dev"], docs["train"] = train[:n], train[n:]
            print(f"{args.dataset_name} has no dev split: {n} training documents held out for validation")
    docs["train"] = docs["train"][:args.max_train_docs]
    for split in ("dev", "test"):
        docs[split] = docs[split][:args.max_eval_docs]
    return docs, types


def token_loss(outputs, labels: torch.Tensor, num_items_in_batch: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy summed over labelled sub-words and divided by their number in the whole optimizer
    step (all accumulation steps and devices, as Trainer counts them): so gradient accumulation and
    several devices give the same update as one big batch."""
    logits = outputs["logits"].float()
    total = F.cross_entropy(logits.flatten(0, 1), labels.flatten().to(logits.device),
                            ignore_index=tagging.IGNORE, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else (labels != tagging.IGNORE).sum()
    return total / count


class EpochSeededLengthSampler(torch.utils.data.Sampler):
    """transformers' length grouping (random mega-batches, sorted inside), then the batches shuffled, with an
    order drawn from (seed, epoch) alone and grouped by the global batch: a resumed run and every rank of a
    distributed run see exactly the batches of one uninterrupted single-process run.

    Why shuffle, and why small mega-batches: transformers sorts each mega-batch (by default up to 50 batches)
    longest first, so every epoch walks from long sentences to short ones in a fixed rhythm, and each batch
    holds near-identical lengths. 450 NCBI-disease sentences, MiniLM, 3 epochs, lr 1e-4, strict F1
    (arg-max lenient decoding, the default then):
                                              seed 42 dev / test   seed 43 dev / test
        transformers' order                          - / 52.2             - / 53.6
        shuffled, mega-batches of 14 batches      59.6 / 57.0          53.1 / 52.7
        8 batches                                 56.1 / 54.8          56.4 / 54.1
        4 batches (kept: the best mean dev F1)    58.7 / 57.9          58.6 / 55.3
        2 batches                                 59.6 / 57.8          54.2 / 52.2
        random batches (--group_by_length False)     - / 58.1             - / 54.3
        run_ner-style baseline (random batches)      - / 57.8             - / 56.3
    Batches still hold similar lengths (little padding); the longest batch comes first (an OOM shows at
    once) and a short last batch stays last."""

    MEGA_BATCH = 4  # batches per length-sorted group

    def __init__(self, lengths: list[int], global_batch: int, seed: int, grouped: bool = True):
        self.lengths, self.global_batch, self.seed, self.epoch, self.grouped = lengths, global_batch, seed, 0, grouped

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        if not self.grouped:
            return iter(torch.randperm(len(self.lengths), generator=generator).tolist())
        grouped = get_length_grouped_indices(self.lengths, self.global_batch, self.MEGA_BATCH, generator)
        batches = [grouped[i:i + self.global_batch] for i in range(0, len(grouped), self.global_batch)]
        movable = len(batches) - 1 - (len(batches) > 1 and len(batches[-1]) < self.global_batch)
        order = [0] + [1 + int(b) for b in torch.randperm(max(movable, 0), generator=generator)]
        order += range(len(order), len(batches))
        return iter([i for b in order for i in batches[b]])


class NerTrainer(Trainer):
    """Trainer with our training sampler (not TrainingArguments' group_by_length strategy: that one also
    reorders the evaluation set, which SpanMetrics reads in its own order)."""

    def __init__(self, *args, group_by_length: bool = True, **kwargs):
        self.group_by_length = group_by_length
        super().__init__(*args, **kwargs)

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        a = self.args
        return EpochSeededLengthSampler([len(x["input_ids"]) for x in dataset],
                                        a.per_device_train_batch_size * a.gradient_accumulation_steps * a.world_size,
                                        a.seed, self.group_by_length)


class SaveEverySteps(TrainerCallback):
    """A checkpoint every `steps` optimizer steps, besides the per-epoch ones that best-model selection
    needs. Not on an epoch's last step: that one is saved after the epoch's evaluation, and a copy from
    before it would resume without the evaluation and with the random state it consumes."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_step_end(self, args, state, control, **kwargs):
        if self.steps > 0 and state.global_step % self.steps == 0 and not float(state.epoch).is_integer():
            control.should_save = True


class SpanMetrics(TrainerCallback):
    """Trainer's compute_metrics (label scores per feature -> character spans -> eval/semeval strict scores)
    and a callback that keeps each validation pass's decoded documents by step, so the best epoch's dev
    predictions are written as they were scored instead of predicted once more."""

    def __init__(self, encoded: tagging.Encoded, gold: list[Document], id2label: dict[int, str], mode: str):
        self.encoded, self.gold, self.id2label, self.mode = encoded, gold, id2label, mode
        self.last: list[Document] = []
        self.by_step: dict[int, list[Document]] = {}

    def __call__(self, prediction) -> dict[str, float]:
        self.last = tagging.decode(self.encoded, prediction.predictions, self.id2label, self.mode)
        strict = score(self.gold, self.last).overall["strict"]
        return {"strict_f1": strict.f1, "strict_precision": strict.precision, "strict_recall": strict.recall}

    def on_evaluate(self, args, state, control, **kwargs):
        self.by_step[state.global_step] = self.last

    def predictions_at(self, checkpoint: str | None) -> list[Document] | None:
        """The dev documents decoded at `checkpoint`'s step, if this process scored it (not before a resume)."""
        return self.by_step.get(int(checkpoint.rsplit("-", 1)[1])) if checkpoint else None


def complete(checkpoint: Path) -> bool:
    """Whether a save finished: its trainer state, the last file written, reads back."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
        return True
    except (OSError, ValueError):
        return False


def last_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint (a run killed while saving leaves an incomplete one behind)."""
    done = [p for p in folder.glob("checkpoint-*") if complete(p)]
    return str(max(done, key=lambda p: int(p.name.rsplit("-", 1)[1]))) if done else None


def steps_if_finished(checkpoint: str | None) -> int | None:
    """The step a checkpoint's run had stopped at (early stopping or its last epoch), or None if it was
    still running. Resuming a stopped run must not train on: Trainer would start the next epoch."""
    if checkpoint is None:
        return None
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    control = state.get("stateful_callbacks", {}).get("TrainerControl", {}).get("args", {})
    return state["global_step"] if control.get("should_training_stop") else None


def build_model(args: Args, labels: list[str]):
    path = resolve(args.model_name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tagging.pad_token_id(tokenizer)
    model = AutoModelForTokenClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)},
        attn_implementation=tagging.attention_implementation())
    if args.lora:
        from peft import LoraConfig, TaskType, get_peft_model

        targets = args.lora_target_modules
        heads = ["classifier", "score"]  # TOKEN_CLS trains these in full (modules_to_save), without LoRA
        model = get_peft_model(model, LoraConfig(
            task_type=TaskType.TOKEN_CLS, r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
            target_modules=targets if targets == "all-linear" else targets.split(","), exclude_modules=heads))
        model.print_trainable_parameters()
    return model, tokenizer


def training_arguments(args: Args, max_steps: int | None = None) -> TrainingArguments:
    return TrainingArguments(
        output_dir=str(args.output_dir / "checkpoints"), num_train_epochs=args.num_train_epochs,
        max_steps=max_steps or -1,
        learning_rate=args.learning_rate, per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.eval_batch_size, gradient_accumulation_steps=args.gradient_accumulation_steps,
        warmup_steps=args.warmup_ratio, weight_decay=args.weight_decay, lr_scheduler_type="linear",
        eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True,
        metric_for_best_model="strict_f1", greater_is_better=True, save_total_limit=args.save_total_limit,
        restore_callback_states_from_checkpoint=True, logging_steps=args.logging_steps, seed=args.seed,
        bf16=args.bf16, optim="adamw_torch_fused", use_cpu=not torch.accelerator.is_available(),  # CPU ranks: gloo
        dataloader_pin_memory=torch.accelerator.is_available(),
        report_to="none", ddp_find_unused_parameters=False)


def epochs_summary(log_history: list[dict]) -> tuple[int, int]:
    """(epochs evaluated, the epoch with the best validation strict F1; the earliest on ties)."""
    evals = [h for h in log_history if "eval_strict_f1" in h]
    best = max(evals, key=lambda h: (h["eval_strict_f1"], -h["epoch"]))
    return len(evals), round(best["epoch"])


def plot_training(log_history: list[dict], path: Path, title: str) -> None:
    """Training loss and validation strict F1 against the epoch, side by side."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = [(h["epoch"], h["loss"]) for h in log_history if "loss" in h]
    f1s = [(h["epoch"], h["eval_strict_f1"]) for h in log_history if "eval_strict_f1" in h]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    left.plot(*zip(*losses), marker=".")
    left.set(xlabel="epoch", ylabel="training loss", title="training loss")
    right.plot(*zip(*f1s), marker="o", color="tab:green")
    right.set(xlabel="epoch", ylabel="strict F1", title="validation strict F1 (SemEval)", ylim=(0, 1))
    left.set_xlim(left=0)
    for ax in (left, right):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def make_trainer(args: Args, model, tokenizer, docs: dict[str, list[Document]], labels: list[str],
                 resume_from: str | None) -> NerTrainer:
    """Features for training (labels from the gold spans, flattened by data/bio's policies) and for
    validation (segmented without the gold spans, as for prediction), and the Trainer over them."""
    label2id = {l: i for i, l in enumerate(labels)}
    changes: Counter = Counter()
    train = tagging.encode(docs["train"], tokenizer, args.max_length, args.stride, label2id, gold_aware=True,
                           overlap_policy=args.overlap_policy, discontinuous_policy=args.discontinuous_policy,
                           changes=changes)
    dev = tagging.encode(docs["dev"], tokenizer, args.max_length, args.stride, label2id)
    dev.features.sort(key=lambda f: len(f.input_ids))  # evaluation batches of similar lengths
    for split, enc in (("train", train), ("dev", dev)):
        n_sent, n_cut = tagging.window_count(enc)
        print(f"{split}: {len(enc.docs):,} documents, {n_sent:,} sentences, {len(enc.features):,} inputs "
              f"({n_cut:,} sentences longer than {args.max_length} sub-words, windowed)")
    print(f"train labels: {describe_changes(changes)}")
    span_metrics = SpanMetrics(dev, docs["dev"], model.config.id2label, args.decode_mode)
    return NerTrainer(
        model=model, args=training_arguments(args, steps_if_finished(resume_from)),
        train_dataset=train.training_examples(), eval_dataset=dev.training_examples(), processing_class=tokenizer,
        data_collator=DataCollatorForTokenClassification(tokenizer), compute_loss_func=token_loss,
        compute_metrics=span_metrics,
        preprocess_logits_for_metrics=lambda logits, _: tagging.label_scores(logits),
        callbacks=[EarlyStoppingCallback(args.patience), SaveEverySteps(args.save_steps), span_metrics],
        group_by_length=args.group_by_length)


def write_results(args: Args, model, tokenizer, docs: dict[str, list[Document]], log_history: list[dict],
                  train_seconds: float, scored_dev: list[Document] | None = None) -> dict:
    """The best model, dev/test predictions and their scores, metrics.json and the training plot.
    `scored_dev`: the best epoch's dev documents as validation decoded them (else dev is predicted)."""
    model.save_pretrained(args.output_dir / "model")
    tokenizer.save_pretrained(args.output_dir / "model")
    epochs_run, best_epoch = epochs_summary(log_history)
    metrics = {"method": "encoder", "model": args.model_name, "dataset": args.dataset_name, "lora": args.lora,
               "epochs_run": epochs_run, "best_epoch": best_epoch, "train_seconds": round(train_seconds, 1)}
    for split in ("dev", "test"):
        pred = scored_dev if split == "dev" and scored_dev is not None else tagging.predict(
            model, tokenizer, docs[split], args.max_length, args.stride, mode=args.decode_mode)
        write_jsonl(pred, args.output_dir / f"{split}.predictions.jsonl", with_text=False)
        metrics[split] = score(docs[split], pred).to_json()
        s = metrics[split]["strict"]
        print(f"  {split}: strict P {s['precision']:.4f} R {s['recall']:.4f} F1 {s['f1']:.4f}")
    (args.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    plot_training(log_history, args.output_dir / "training.png",
                  f"{args.model_name} on {args.dataset_name} (best epoch {best_epoch} of {epochs_run})")
    return metrics


def main(args: Args) -> dict | None:
    checkpoints = args.output_dir / "checkpoints"
    if last_checkpoint(checkpoints) and not args.resume:
        raise SystemExit(f"error: {checkpoints} holds checkpoints: pass --resume True to continue that run, "
                         "or remove them to start over")
    resume_from = last_checkpoint(checkpoints) if args.resume else None
    set_seed(args.seed)
    docs, types = load_splits(args)
    labels = tagging.label_names(types)
    model, tokenizer = build_model(args, labels)
    trainer = make_trainer(args, model, tokenizer, docs, labels, resume_from)
    if resume_from:
        print(f"resuming from {resume_from}")
    started = time.time()
    trainer.train(resume_from_checkpoint=resume_from)  # ends with the best epoch's weights loaded
    train_seconds = time.time() - started
    trainer.save_state()
    if not trainer.is_world_process_zero():
        return None
    best = trainer.model.merge_and_unload() if args.lora else trainer.model
    scored_dev = trainer.compute_metrics.predictions_at(trainer.state.best_model_checkpoint)
    return write_results(args, best, tokenizer, docs, trainer.state.log_history, train_seconds, scored_dev)


def parse_args(argv: list[str] | None = None) -> Args:
    parser = HfArgumentParser(Args, description=__doc__, formatter_class=HelpFormatter)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
