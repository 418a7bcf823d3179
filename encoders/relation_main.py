"""Fine-tune a relation classifier over entity pairs (encoders/relations.py: the BLURB recipe for ChemProt and
DDI, gold entities given), select the epoch on the dev micro F1 of the corpus's official view, then predict
and score the dev and test splits (issue 19).

    python encoders/relation_main.py --dataset_name ddi --output_dir results/relations/ddi
    python encoders/relation_main.py --dataset_name ddi --marking markers --output_dir results/relations/ddi-mark
    python encoders/relation_main.py --dataset_name chemprot --datasets_path FOLDER --output_dir OUT

Training is transformers' Trainer over one input per candidate pair (cross-entropy over NEGATIVE and the
corpus's relation types; random batches with dynamic padding; AdamW with linear warm-up and decay), an
evaluation per epoch scored with eval/relations (DDI: the `ddi` view, ChemProt: `chemprot`, other corpora:
`mention`), the best epoch kept; --resume True continues from the last complete checkpoint.
Splits: DDI trains on its train split with a tenth of its documents held out for validation (as
data/registry.load_splits holds one out for every corpus without dev) and is tested on `test_ddi`, the DDI
extraction task's test set. The registry's ChemProt (the PURE snapshot) has dev and test only: give a
--datasets_path folder with train/dev/test.jsonl (documents with entities and relations).

Writes to --output_dir: `model/` (the best epoch, its tokenizer with the marking's tokens, relations.json),
`checkpoint-N/`, `metrics.json` ({"method": "relation_encoder", "model", "dataset", "marking", "view",
"epochs_run", "best_epoch", "pairs", "dev", "test", "timing", "settings"}) and `{dev,test}.predictions.jsonl`
(the documents with their entities and predicted relations).
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                          TrainingArguments, set_seed)

from data import registry
from data.corpus import NEGATIVE, Document, Entity, InputError, exit_on_format_error, parse_dataclasses, write_jsonl
from data.llm.models import resolve
from encoders import relations
from encoders.tagging import attention_implementation, pad_token_id
from eval.relations import score as relation_score
from eval.runs import (HardwareDefaults, claim_output_dir, resume_point, run_settings, timing, write_json,
                       write_metrics)

TEST_SPLITS = {"ddi": "test_ddi"}  # a registry corpus whose relation test set is not its `test` split


@dataclass
class ScriptArguments:
    dataset_name: str = field(metadata={"help": "a registry corpus whose relations join mentions (ddi, ddi_brat, "
                                                "nerel_bio, raredis), or chemprot / any name with --datasets_path"})
    model_name: str = field(default="minilm", metadata={"help": "hub id or local path; 'minilm' is the bundled "
                                                                "offline checkpoint"})
    datasets_path: Path | None = field(default=None, metadata={
        "help": "folder with train/dev/test.jsonl (documents with entities and relations), instead of the registry"})
    marking: str = field(default=relations.MARKING, metadata={
        "choices": relations.MARKINGS, "help": "dummy: arguments replaced by @TYPE$ (BLURB); markers: kept inside "
                                               "[E1]...[/E1] and [E2]...[/E2]"})
    window: int = field(default=0, metadata={"help": "sentences allowed between a pair's arguments (0: one sentence)"})
    max_length: int = field(default=128, metadata={"help": "sub-words per input, special tokens included; a longer "
                                                           "one keeps the window around its arguments"})
    max_train_docs: int | None = field(default=None, metadata={"help": "use only the first N training documents"})
    max_eval_docs: int | None = field(default=None, metadata={"help": "use only the first N dev and test documents"})
    resume: bool = field(default=False, metadata={"help": "continue from the last complete checkpoint in output_dir"})
    overwrite: bool = field(default=False, metadata={
        "help": "replace a finished run in output_dir (its metrics.json and checkpoints)"})


@dataclass
class RelationTrainingArguments(HardwareDefaults, TrainingArguments):
    """transformers' TrainingArguments with BLURB's settings as defaults (see encoders/run_relations.sh), an
    evaluation and a checkpoint per epoch, the best epoch by dev micro F1 kept, and the seeds' names
    (--batch_size, --eval_batch_size, --warmup_ratio)."""

    num_train_epochs: float = 3
    learning_rate: float = 2e-5
    per_device_train_batch_size: int = field(default=32, metadata={"aliases": ["--batch_size"]})
    per_device_eval_batch_size: int = field(default=64, metadata={"aliases": ["--eval_batch_size"]})
    warmup_steps: float = field(default=0.1, metadata={
        "aliases": ["--warmup_ratio"], "help": "warm-up steps, or below 1 a share of all steps"})
    eval_strategy: str = "epoch"
    save_strategy: str = "epoch"
    load_best_model_at_end: bool = True
    metric_for_best_model: str = "f1"
    greater_is_better: bool = True
    save_total_limit: int = 2
    logging_steps: float = 50
    report_to: str = "none"


def load_splits(args: ScriptArguments, seed: int) -> tuple[dict[str, list[Document]], relations.Scheme]:
    """train/dev/test documents and the corpus's scheme; a corpus that cannot train this classifier (no train
    split, no relations, relations between concept ids) is an InputError saying so."""
    name = args.dataset_name
    if args.datasets_path is None and "train" not in registry.get(name).splits:
        raise InputError(f"{name} has no train split in the registry (it has {', '.join(registry.get(name).splits)}):"
                         f" give --datasets_path FOLDER with train/dev/test.jsonl")
    docs, types = registry.load_splits(name, args.datasets_path, seed, args.max_train_docs, args.max_eval_docs)
    if args.datasets_path is None:
        relation_types = registry.get(name).relations
        if name in TEST_SPLITS:
            docs["test"] = registry.load(name, TEST_SPLITS[name])[:args.max_eval_docs]
    else:
        relation_types = tuple(sorted({r.type for d in docs["train"] for r in d.relations} - {NEGATIVE}))
    if any(not isinstance(arg, Entity) for d in docs["train"] for r in d.relations for arg in r.arguments):
        raise InputError(f"{name} relates concept ids, not mentions: this classifier reads pairs of entities")
    return docs, relations.scheme_for(name, relation_types, types)


def build_model(args: ScriptArguments, scheme: relations.Scheme):
    path = resolve(args.model_name)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(scheme.labels), id2label=dict(enumerate(scheme.labels)),
        label2id={l: i for i, l in enumerate(scheme.labels)}, attn_implementation=attention_implementation())
    model.config.pad_token_id = pad_token_id(tokenizer)
    relations.add_tokens(tokenizer, model, scheme, args.marking)
    return model, tokenizer


class RelationMetrics:
    """Trainer's compute_metrics: each pair's arg-max label -> the documents' relations -> eval/relations'
    micro scores in the corpus's view."""

    def __init__(self, encoded: relations.Encoded, gold: list[Document], scheme: relations.Scheme):
        self.encoded, self.gold, self.scheme = encoded, gold, scheme

    def __call__(self, prediction) -> dict[str, float]:
        pred = relations.decode(self.encoded, prediction.predictions.argmax(-1), self.scheme.labels)
        micro = relation_score(self.gold, pred, self.scheme.view).micro
        return {"f1": micro.f1, "precision": micro.precision, "recall": micro.recall}


def pair_counts(encoded: relations.Encoded, counts: Counter) -> dict:
    return {"pairs": len(encoded.candidates), "labels": dict(Counter(c.label for c in encoded.candidates)),
            "cut": encoded.cut, **counts}


def main(args: ScriptArguments, training: RelationTrainingArguments) -> dict | None:
    out = Path(training.output_dir)
    settings = run_settings(args, training)  # before resume_point, which may set max_steps
    claim_output_dir(out, overwrite=args.overwrite, resume=args.resume, settings=settings)
    resume_from = resume_point(training, args.resume)
    set_seed(training.seed)
    docs, scheme = load_splits(args, training.seed)
    model, tokenizer = build_model(args, scheme)
    counts = {s: Counter() for s in docs}
    encoded = {s: relations.encode(d, tokenizer, scheme, args.marking, args.max_length, args.window, counts[s])
               for s, d in docs.items()}
    pairs = {s: pair_counts(encoded[s], counts[s]) for s in docs}
    for split, n in pairs.items():
        print(f"{split}: {len(docs[split]):,} documents, {n['pairs']:,} pairs {n['labels']}, {n['cut']:,} cut "
              f"to {args.max_length} sub-words, {n['relation_not_candidate']:,} relations no candidate")
    label2id = {l: i for i, l in enumerate(scheme.labels)}
    trainer = Trainer(model=model, args=training, train_dataset=encoded["train"].examples(label2id),
                      eval_dataset=encoded["dev"].examples(label2id), processing_class=tokenizer,
                      data_collator=DataCollatorWithPadding(tokenizer),
                      compute_metrics=RelationMetrics(encoded["dev"], docs["dev"], scheme))
    started = time.time()
    trainer.train(resume_from_checkpoint=resume_from)  # ends with the best epoch's weights loaded
    train_seconds = time.time() - started
    trainer.save_state()
    if not trainer.is_world_process_zero():
        return None
    evals = [h for h in trainer.state.log_history if "eval_f1" in h]
    best = max(evals, key=lambda h: (h["eval_f1"], -h["epoch"]))["epoch"] if evals else None  # None: the last step
    metrics = {"method": "relation_encoder", "model": args.model_name, "dataset": args.dataset_name,
               "marking": args.marking, "view": scheme.view, "epochs_run": len(evals),
               "best_epoch": round(best) if best else None,
               "train_seconds": round(train_seconds, 1), "max_train_docs": args.max_train_docs,
               "max_eval_docs": args.max_eval_docs, "pairs": pairs, "timing": {}}
    for split in ("dev", "test"):
        started = time.time()
        logits = relations.predict_logits(trainer.model, encoded[split], tokenizer.pad_token_id)
        pred = relations.decode(encoded[split], logits.argmax(-1), scheme.labels)
        metrics["timing"][split] = timing(time.time() - started, docs[split])
        write_jsonl(pred, out / f"{split}.predictions.jsonl", with_text=False)
        metrics[split] = relation_score(docs[split], pred, scheme.view).to_json()
        print(relations.score_line(split, metrics[split]), flush=True)
    trainer.model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    write_json(out / "model" / relations.PROVENANCE, {
        "base_model": args.model_name, "dataset": args.dataset_name, "scheme": scheme.to_json(),
        "marking": args.marking, "window": args.window, "max_length": args.max_length,
        "max_train_docs": args.max_train_docs})
    write_metrics(out, metrics, settings=settings)
    return metrics


def parse_args(argv: list[str] | None = None) -> tuple[ScriptArguments, RelationTrainingArguments]:
    """(ScriptArguments, TrainingArguments): every Trainer option is a flag."""
    return parse_dataclasses((ScriptArguments, RelationTrainingArguments), __doc__, argv)


if __name__ == "__main__":
    exit_on_format_error(lambda: main(*parse_args()))
