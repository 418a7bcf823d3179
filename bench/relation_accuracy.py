"""Do marked arguments pay? encoders/relation_main.py (each pair's arguments replaced by @DRUG$, BLURB's
recipe) against a plain AutoModelForSequenceClassification + Trainer that reads each pair as a text pair
(its sentence, then "ARG1 ; ARG2" as written, nothing marked), on DDI (issue 19):

    python bench/relation_accuracy.py [--seeds 42 43 44] [--train_sentences 400] [--max_steps 100] [--json OUT]

The sample: DDI sentences with at most three mentions and at least one interacting pair, one document each (the
first --train_sentences of the training split, every one of test_ddi). On the whole corpus 86 % of the training pairs
are negatives, and a capped CPU run predicts none of the others: MiniLM after 200 steps of 16 pairs at lr 1e-4 on
the first 80 training documents still scored 0.0 test F1 (training loss 0.47, near the 0.53 of answering the
class frequencies). In the sample 38 % of the training pairs are negatives.
Both fine-tune the bundled MiniLM on the same pairs for the same optimizer steps, batch size, learning rate,
warm-up and seeds, keep the last step (no selection) and classify the same test pairs; both are scored by
eval/relations in the ddi view (micro F1 over mechanism, effect, advise and int, negatives excluded). The
verdict is the mean over seeds of ours minus the baseline's F1, with a 95 % paired bootstrap interval over test
documents (one resample of documents scores every seed of both systems); the spread over seeds is printed
beside it, and each run's wall time (training and test). Writes under --output_dir the sample (data/), ours'
runs (ours/SEED/) and the table (relation_accuracy.md); with --json the numbers.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from data import registry
from data.corpus import (NEGATIVE, Document, Entity, Relation, exit_on_format_error, read_jsonl, script_parser,
                         write_jsonl)
from data.llm.models import resolve
from eval.relations import score as relation_score
from eval.runs import write_json
from eval.semeval import percentiles, resampled_f1

ROOT = Path(__file__).resolve().parent.parent
LABELS = (NEGATIVE, "mechanism", "effect", "advise", "int")
SHARED = {"learning_rate": 1e-4, "batch_size": 16, "warmup_ratio": 0.1, "max_length": 128}  # both systems
DEV_DOCS = 5  # ours encodes a validation split even when it does not evaluate


def sentences(docs: list[Document], n: int | None) -> list[Document]:
    """The first `n` sentences of `docs` with at most three mentions and an interacting pair, one document each."""
    out = []
    for doc in docs:
        for k, (start, end) in enumerate(doc.sentences):
            def moved(e: Entity) -> Entity:
                return Entity(tuple((s - start, t - start) for s, t in e.fragments), e.type, e.text)
            entities = [moved(e) for e in doc.entities if start <= e.start and e.end <= end]
            rels = [Relation(r.type, moved(r.arg1), moved(r.arg2)) for r in doc.relations
                    if start <= r.arg1.start < end]
            if len(entities) <= 3 and any(r.type != NEGATIVE for r in rels):
                out.append(Document(f"{doc.id}.s{k}", doc.text[start:end], entities, [(0, end - start)],
                                    relations=rels))
    return out[:n]


def sample(train_sentences: int, out: Path) -> dict[str, list[Document]]:
    """The documents both systems read, written as ours' --datasets_path folder."""
    train = sentences(registry.load("ddi", "train"), train_sentences + DEV_DOCS)
    docs = {"train": train[:train_sentences], "dev": train[train_sentences:],
            "test": sentences(registry.load("ddi", "test_ddi"), None)}
    for split, split_docs in docs.items():
        write_jsonl(split_docs, out / f"{split}.jsonl")
    return docs


def ours(data: Path, out: Path, seed: int, max_steps: int) -> list[Document]:
    """encoders/relation_main.py, run as a program: its test predictions."""
    command = [sys.executable, str(ROOT / "encoders" / "relation_main.py"), "--dataset_name", "ddi",
               "--datasets_path", str(data), "--output_dir", str(out), "--overwrite", "True", "--seed", str(seed),
               "--max_steps", str(max_steps), "--eval_strategy", "no", "--save_strategy", "no",
               "--load_best_model_at_end", "False", "--disable_tqdm", "True", "--logging_steps", "50",
               *(x for k, v in SHARED.items() for x in (f"--{k}", str(v)))]
    subprocess.run(command, check=True, cwd=ROOT)
    return read_jsonl(out / "test.predictions.jsonl", require_text=False)


def pair_inputs(docs: list[Document]) -> list[tuple[int, Relation, str, str]]:
    """(document, listed pair, its sentence, "ARG1 ; ARG2") of every pair the documents list."""
    out = []
    for i, doc in enumerate(docs):
        for rel in doc.relations:
            start, end = next((s, e) for s, e in doc.sentences if s <= rel.arg1.start < e)
            out.append((i, rel, doc.text[start:end], f"{rel.arg1.surface(doc.text)} ; {rel.arg2.surface(doc.text)}"))
    return out


def baseline(docs: dict[str, list[Document]], out: Path, seed: int, max_steps: int) -> list[Document]:
    """The plain classifier: text pairs, truncation of the sentence, transformers' Trainer."""
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer,
                              TrainingArguments, set_seed)

    set_seed(seed)
    path = resolve("minilm")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(LABELS),
                                                               id2label=dict(enumerate(LABELS)))

    def examples(pairs: list) -> list[dict]:
        enc = tokenizer([p[2] for p in pairs], [p[3] for p in pairs], truncation="only_first",
                        max_length=SHARED["max_length"])
        return [{"input_ids": ids, "token_type_ids": types, "labels": LABELS.index(p[1].type)}
                for ids, types, p in zip(enc["input_ids"], enc["token_type_ids"], pairs)]

    args = TrainingArguments(output_dir=str(out), max_steps=max_steps, seed=seed, report_to="none",
                             learning_rate=SHARED["learning_rate"], per_device_train_batch_size=SHARED["batch_size"],
                             warmup_steps=SHARED["warmup_ratio"], eval_strategy="no", save_strategy="no",
                             logging_steps=50, disable_tqdm=True, per_device_eval_batch_size=64)
    trainer = Trainer(model=model, args=args, train_dataset=examples(pair_inputs(docs["train"])),
                      data_collator=DataCollatorWithPadding(tokenizer))
    trainer.train()
    test_pairs = pair_inputs(docs["test"])
    labels = trainer.predict(examples(test_pairs)).predictions.argmax(-1)
    pred = [Document(d.id, d.text, list(d.entities)) for d in docs["test"]]
    for (i, rel, _, _), label in zip(test_pairs, labels):
        if LABELS[label] != NEGATIVE:
            pred[i].relations.append(Relation(LABELS[label], rel.arg1, rel.arg2))
    return pred


def main(argv: list[str] | None = None) -> dict:
    parser = script_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--train_sentences", type=int, default=400, help="the first N sample sentences of train")
    parser.add_argument("--max_steps", type=int, default=100, help="optimizer steps of each run")
    parser.add_argument("--output_dir", type=Path, default=Path("results/relation_accuracy"))
    parser.add_argument("--json", type=Path, help="write the numbers to this JSON file")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    docs = sample(args.train_sentences, args.output_dir / "data")
    runs = []
    for seed in args.seeds:
        for system in ("ours", "baseline"):
            started, folder = time.time(), args.output_dir / system / str(seed)
            pred = (ours(args.output_dir / "data", folder, seed, args.max_steps) if system == "ours"
                    else baseline(docs, folder, seed, args.max_steps))
            result = relation_score(docs["test"], pred, "ddi")
            runs.append({"system": system, "seed": seed, "seconds": round(time.time() - started, 1),
                         "f1": result.micro.f1, "precision": result.micro.precision, "recall": result.micro.recall,
                         "f1_ci95": result.f1_interval(), "parts": [result.parts[d] for d in sorted(result.parts)]})
            print(f"{system} seed {seed}: F1 {result.micro.f1:.4f} P {result.micro.precision:.4f} "
                  f"R {result.micro.recall:.4f} ({runs[-1]['seconds']} s)", flush=True)
    report = summary(runs, args, docs)
    (args.output_dir / "relation_accuracy.md").write_text(report["table"] + "\n", encoding="utf-8")
    print(report["table"])
    if args.json:
        write_json(args.json, report)
    return report


def summary(runs: list[dict], args, docs: dict[str, list[Document]]) -> dict:
    """Seed means, their paired bootstrap difference and the table."""
    f1 = {s: np.array([r["f1"] for r in runs if r["system"] == s]) for s in ("ours", "baseline")}
    boot = {s: np.mean([resampled_f1(np.array(r["parts"], dtype=float)) for r in runs if r["system"] == s], axis=0)
            for s in ("ours", "baseline")}
    difference = float(f1["ours"].mean() - f1["baseline"].mean())
    interval = percentiles(boot["ours"] - boot["baseline"])
    train_pairs, test_pairs = (sum(len(d.relations) for d in docs[s]) for s in ("train", "test"))
    seconds = {s: [r["seconds"] for r in runs if r["system"] == s] for s in f1}
    rows = [f"| {s} | {100 * f1[s].mean():.2f} ({', '.join(f'{100 * x:.2f}' for x in f1[s])}) | "
            f"{100 * percentiles(boot[s])[0]:.2f}-{100 * percentiles(boot[s])[1]:.2f} | "
            f"{min(seconds[s]):.0f}-{max(seconds[s]):.0f} |" for s in f1]
    table = "\n".join([
        f"DDI ddi-view micro F1, MiniLM, {len(args.seeds)} seeds ({', '.join(map(str, args.seeds))}), {args.max_steps} "
        f"steps of {SHARED['batch_size']} pairs at lr {SHARED['learning_rate']}; {len(docs['train'])} training "
        f"sentences ({train_pairs} pairs), {len(docs['test'])} test_ddi sentences ({test_pairs} pairs)",
        "", "| system | F1, seed mean (per seed) | 95 % interval of the seed mean | wall s per run |",
        "|---|---|---|---|", *rows, "",
        f"ours - baseline: {100 * difference:+.2f} F1 points, 95 % paired bootstrap {100 * interval[0]:+.2f} to "
        f"{100 * interval[1]:+.2f} (test documents resampled; seed spread ours {100 * f1['ours'].std():.2f}, "
        f"baseline {100 * f1['baseline'].std():.2f})"])
    return {"runs": runs, "ours": float(f1["ours"].mean()), "baseline": float(f1["baseline"].mean()),
            "difference": difference, "difference_ci95": interval, "settings": {**SHARED, **vars(args)},
            "table": table}


if __name__ == "__main__":
    exit_on_format_error(main)
