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

Writes to --output_dir: `model/` (the best model, LoRA merged in), `checkpoint-N/`, `metrics.json`
({"method": "encoder", "model", "dataset", "epochs_run", "best_epoch", "dev", "test"}),
`{dev,test}.predictions.jsonl` and `training.png` (training loss and validation strict F1 per epoch).
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


import torch
import torch.nn.functional as F
from transformers import (AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification,
                          EarlyStoppingCallback, Trainer, TrainerCallback, TrainingArguments,
                          set_seed)
from transformers.trainer_pt_utils import get_length_grouped_indices

from data import registry
from data.bio import DISCONTINUOUS_POLICIES, OVERLAP_POLICIES, describe_changes
from data.corpus import Document, exit_on_format_error, parse_dataclasses, write_jsonl
from data.llm.models import resolve
from encoders import tagging
from eval.runs import (HardwareDefaults, claim_output_dir, epochs_summary, plot_training, print_scores,
                       resume_point, run_settings, timing, write_json, write_metrics)
from eval.semeval import score

@dataclass
class ScriptArguments:
    dataset_name: str = field(metadata={"help": f"a registry name ({', '.join(registry.DATASETS)}), or the name "
                                                "to report for --datasets_path"})
    model_name: str = field(default="minilm", metadata={"help": "hub id or local path; 'minilm' and 'smollm2' are "
                                                                "the bundled offline checkpoints"})
    datasets_path: Path | None = field(default=None, metadata={"help": "folder with train/dev/test.jsonl in the "
                                                                       "corpus format, instead of the registry"})
    group_by_length: bool = field(default=True, metadata={
        "help": "batches of similar length (less padding), in shuffled order; False: random batches (on "
                "450 NCBI-disease sentences, 3 epochs, MiniLM: 1.3 test F1 points better over seeds 42 and 43)"})
    patience: int = field(default=3, metadata={"help": "epochs without a better validation strict F1 before stopping"})
    max_length: int = field(default=512, metadata={"help": "sub-words per model input, special tokens included; "
                                                           "longer sentences are cut into overlapping windows"})
    stride: int | None = field(default=None, metadata={"help": "sub-words between window starts (default: half)"})
    resume: bool = field(default=False, metadata={"help": "continue from the last complete checkpoint in output_dir"})
    overwrite: bool = field(default=False, metadata={
        "help": "replace a finished run in output_dir (its metrics.json and checkpoints)"})
    lora: bool = field(default=False, metadata={"help": "train LoRA adapters (peft) and the classifier head only"})
    lora_r: int = 12
    lora_alpha: int = 32
    lora_dropout: float = 0.1
    lora_target_modules: str = field(default="all-linear", metadata={"help": "comma-separated module names"})
    max_train_docs: int | None = field(default=None, metadata={"help": "use only the first N training documents"})
    max_eval_docs: int | None = field(default=None, metadata={"help": "use only the first N dev and test documents"})
    overlap_policy: str = field(default="longest_first", metadata={"choices": OVERLAP_POLICIES})
    discontinuous_policy: str = field(default="first_fragment", metadata={"choices": DISCONTINUOUS_POLICIES})
    decode_mode: str = field(default=tagging.DECODE_MODE, metadata={
        "choices": tagging.DECODE_MODES, "help": "viterbi: the most probable valid BIO sequence; lenient / strict: "
                                              "each word's arg-max, read by data/bio.from_bio's modes"})


@dataclass
class EncoderTrainingArguments(HardwareDefaults, TrainingArguments):
    """transformers' TrainingArguments with this script's defaults (an evaluation and a checkpoint per epoch,
    the best epoch by validation strict F1 kept) and the seeds' names (--batch_size, --eval_batch_size,
    --warmup_ratio)."""

    num_train_epochs: float = 20
    learning_rate: float = 2e-5
    per_device_train_batch_size: int = field(default=8, metadata={"aliases": ["--batch_size"]})
    per_device_eval_batch_size: int = field(default=32, metadata={"aliases": ["--eval_batch_size"]})
    warmup_steps: float = field(default=0.1, metadata={
        "aliases": ["--warmup_ratio"], "help": "warm-up steps, or below 1 a share of all steps"})
    weight_decay: float = 0.01
    eval_strategy: str = "epoch"
    save_strategy: str = "epoch"
    save_steps: float = field(default=500, metadata={
        "help": "also a checkpoint every this many optimizer steps (SaveEverySteps), besides each epoch's"})
    load_best_model_at_end: bool = True
    metric_for_best_model: str = "strict_f1"
    greater_is_better: bool = True
    save_total_limit: int = 2
    restore_callback_states_from_checkpoint: bool = True
    logging_steps: float = 50
    optim: str = "adamw_torch_fused"
    report_to: str = "none"
    ddp_find_unused_parameters: bool = False


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


def build_model(args: ScriptArguments, labels: list[str]):
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


def make_trainer(args: ScriptArguments, training: EncoderTrainingArguments, model, tokenizer,
                 docs: dict[str, list[Document]], labels: list[str]) -> NerTrainer:
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
        model=model, args=training,
        train_dataset=train.training_examples(), eval_dataset=dev.training_examples(), processing_class=tokenizer,
        data_collator=DataCollatorForTokenClassification(tokenizer), compute_loss_func=token_loss,
        compute_metrics=span_metrics,
        preprocess_logits_for_metrics=lambda logits, _: tagging.label_scores(logits),
        callbacks=[EarlyStoppingCallback(args.patience), SaveEverySteps(int(training.save_steps)), span_metrics],
        group_by_length=args.group_by_length)


def write_results(args: ScriptArguments, out: Path, model, tokenizer, docs: dict[str, list[Document]],
                  log_history: list[dict], train_seconds: float, settings: dict,
                  scored_dev: list[Document] | None = None) -> dict:
    """The best model, dev/test predictions and their scores, metrics.json and the training plot.
    `scored_dev`: the best epoch's dev documents as validation decoded them (else dev is predicted)."""
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    write_json(out / "model" / tagging.PROVENANCE, {"base_model": args.model_name, "dataset": args.dataset_name,
                                                    "max_train_docs": args.max_train_docs, "lora": args.lora})
    epochs_run, best_epoch = epochs_summary(log_history)
    metrics = {"method": "encoder", "model": args.model_name, "dataset": args.dataset_name, "lora": args.lora,
               "epochs_run": epochs_run, "best_epoch": best_epoch, "train_seconds": round(train_seconds, 1),
               "max_train_docs": args.max_train_docs, "max_eval_docs": args.max_eval_docs, "timing": {}}
    for split in ("dev", "test"):
        if split == "dev" and scored_dev is not None:
            pred = scored_dev
        else:
            started = time.time()
            pred = tagging.predict(model, tokenizer, docs[split], args.max_length, args.stride, mode=args.decode_mode)
            metrics["timing"][split] = timing(time.time() - started, docs[split])
        write_jsonl(pred, out / f"{split}.predictions.jsonl", with_text=False)
        metrics[split] = score(docs[split], pred).to_json()
        print_scores(split, metrics[split])
    write_metrics(out, metrics, settings=settings)
    plot_training(log_history, out / "training.png",
                  f"{args.model_name} on {args.dataset_name} (best epoch {best_epoch} of {epochs_run})")
    return metrics


def main(args: ScriptArguments, training: EncoderTrainingArguments) -> dict | None:
    out = Path(training.output_dir)
    settings = run_settings(args, training)  # before resume_point, which may set max_steps
    claim_output_dir(out, overwrite=args.overwrite, resume=args.resume, settings=settings)
    resume_from = resume_point(training, args.resume)
    set_seed(training.seed)
    docs, types = registry.load_splits(args.dataset_name, args.datasets_path, training.seed, args.max_train_docs,
                                       args.max_eval_docs)
    labels = tagging.label_names(types)
    model, tokenizer = build_model(args, labels)
    trainer = make_trainer(args, training, model, tokenizer, docs, labels)
    started = time.time()
    trainer.train(resume_from_checkpoint=resume_from)  # ends with the best epoch's weights loaded
    train_seconds = time.time() - started
    trainer.save_state()
    if not trainer.is_world_process_zero():
        return None
    best = trainer.model.merge_and_unload() if args.lora else trainer.model
    scored_dev = trainer.compute_metrics.predictions_at(trainer.state.best_model_checkpoint)
    return write_results(args, out, best, tokenizer, docs, trainer.state.log_history, train_seconds,
                         settings, scored_dev)


def parse_args(argv: list[str] | None = None) -> tuple[ScriptArguments, EncoderTrainingArguments]:
    """(ScriptArguments, TrainingArguments): every Trainer option is a flag."""
    return parse_dataclasses((ScriptArguments, EncoderTrainingArguments), __doc__, argv)


if __name__ == "__main__":
    exit_on_format_error(lambda: main(*parse_args()))
