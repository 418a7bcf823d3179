"""Train the cross-encoder that reranks retrieved examples (RAG-ICL's second stage), for machines where no
trained reranker can be downloaded (on a GPU machine pass a hub reranker such as BAAI/bge-reranker-v2-m3 to
best_examples.py and skip this).

    python rag_icl/train_reranker.py --one_dataset bc5cdr --output_dir results/rag_icl/reranker/bc5cdr

What it learns: for a query unit q and a candidate example c (both from the training split), the share of q's
gold mentions ((type, lower-cased text)) that also occur among c's gold mentions
(data.llm.examples.coverage). An example whose answer already names what the input asks about is the
most useful thing a prompt can show a small model (it copies), and this label needs no LLM and no
annotation beyond the corpus's own; it is also what bench/retrieval.py measures, so a reranker is judged
on what it was built for. Pairs: every training unit as a query against its --candidates nearest other
training units by embedding (the hard cases a reranker must order) and --random_candidates random ones
(mostly zero). Soft labels in [0, 1] with binary cross-entropy (sentence-transformers' CrossEncoder,
one output, sigmoid) on top of --base_model (bundled MiniLM).

The command line is this script's arguments and sentence-transformers' CrossEncoderTrainingArguments (every
Trainer option is a flag). Validation: the dev units against the training pool, the mean coverage of the
--top_n examples in retrieval order and after reranking (in metrics.json and printed). Writes the model
(a CrossEncoder folder best_examples.py loads), reranker.json and pairs.jsonl to --output_dir.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean

from data.corpus import Document, exit_on_format_error, parse_dataclasses
from data.llm.examples import ExampleIndex, Reranker, coverage, retrieve_and_rerank
from data.llm.models import resolve
from eval.runs import HardwareDefaults, claim_output_dir, run_settings, write_json
from data.per_type_tasks import UNITS, corpus_documents, units_of


@dataclass
class ScriptArguments:
    one_dataset: str = field(metadata={"help": "a corpus of seed 3's (bc5cdr, ncbi_disease; data/per_type_tasks.py)"})
    datasets_path: Path | None = field(default=None, metadata={
        "help": "a corpus as train/dev/test.jsonl (one task per entity type) instead of a registry corpus"})
    base_model: str = field(default="minilm", metadata={"help": "the encoder under the cross-encoder head"})
    embedding_model_path: str = field(default="minilm", metadata={"help": "retrieves the candidates"})
    candidates: int = field(default=10, metadata={"help": "nearest training units paired with each query"})
    random_candidates: int = field(default=2, metadata={"help": "random training units paired with each query"})
    unit: str = field(default="document", metadata={"choices": UNITS})
    max_length: int = field(default=256, metadata={"help": "sub-words of a (query, candidate) pair"})
    top_n: int = field(default=5, metadata={"help": "examples scored in the validation"})
    max_train_docs: int | None = field(default=None, metadata={"help": "use only the first N training documents"})
    max_eval_docs: int | None = field(default=None, metadata={"help": "validate on the first N dev documents"})
    overwrite: bool = field(default=False, metadata={"help": "replace a finished run in output_dir"})


def _training_arguments():
    from sentence_transformers.cross_encoder import CrossEncoderTrainingArguments

    @dataclass
    class RerankerTrainingArguments(HardwareDefaults, CrossEncoderTrainingArguments):
        """sentence-transformers' CrossEncoderTrainingArguments with this script's defaults."""

        num_train_epochs: float = 1
        per_device_train_batch_size: int = 16
        learning_rate: float = 2e-5
        warmup_ratio: float = 0.1
        save_strategy: str = "no"
        logging_steps: float = 20
        report_to: str = "none"

    return RerankerTrainingArguments


def pairs(index: ExampleIndex, units: dict[str, Document], candidates: int, random_candidates: int,
          seed: int) -> list[dict]:
    """(query, candidate, coverage label) for every training unit: its nearest other units and random ones."""
    rng, ids, out = random.Random(seed), sorted(units), []
    for q in ids:
        near = [e.id for e in index.search(units[q].text, candidates + 1) if e.id != q][:candidates]
        far = rng.sample([i for i in ids if i != q and i not in near], min(random_candidates, len(ids) - 1 - len(near)))
        for c in near + far:
            label = coverage(units[q], [units[c]])
            if label is not None:  # a query without gold mentions teaches nothing
                out.append({"query": q, "candidate": c, "label": label})
    return out


def validate(index: ExampleIndex, reranker: Reranker | None, train: dict[str, Document], dev: dict[str, Document],
             k: int, top_n: int) -> float:
    """Mean coverage of the top_n examples chosen for each dev unit with gold mentions."""
    scores = []
    for unit in dev.values():
        chosen = retrieve_and_rerank(index, reranker, unit.text, k, top_n, None)
        value = coverage(unit, [train[e.id] for e in chosen])
        if value is not None:
            scores.append(value)
    return mean(scores)


def main(args: ScriptArguments, training) -> dict:
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    out = claim_output_dir(training.output_dir, overwrite=args.overwrite, settings=run_settings(args, training))
    docs = {split: corpus_documents(args.one_dataset, split, args.datasets_path) for split in ("train", "dev")}
    train = units_of(docs["train"][:args.max_train_docs], args.unit, True)
    dev = units_of(docs["dev"][:args.max_eval_docs], args.unit, False)
    index = ExampleIndex({i: u.text for i, u in train.items()}, args.embedding_model_path)
    labelled = pairs(index, train, args.candidates, args.random_candidates, training.seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in labelled), encoding="utf-8")
    print(f"{len(labelled):,} pairs from {len(train):,} training {args.unit}s; mean label "
          f"{mean(p['label'] for p in labelled):.3f}, {sum(p['label'] > 0 for p in labelled):,} above 0")
    model = CrossEncoder(resolve(args.base_model), num_labels=1, max_length=args.max_length)
    data = Dataset.from_list([{"query": train[p["query"]].text, "candidate": train[p["candidate"]].text,
                               "label": float(p["label"])} for p in labelled])
    started = time.perf_counter()
    CrossEncoderTrainer(model=model, args=training, train_dataset=data, loss=BinaryCrossEntropyLoss(model)).train()
    seconds = time.perf_counter() - started
    model.save_pretrained(str(out))
    k = args.candidates
    before = validate(index, None, train, dev, k, args.top_n)
    after = validate(index, Reranker(str(out), args.max_length), train, dev, k, args.top_n)
    print(f"dev: mean coverage of the top {args.top_n} examples {before:.4f} in retrieval order, {after:.4f} reranked")
    metrics = {"method": "reranker", "model": args.base_model, "dataset": args.one_dataset, "args": asdict(args),
               "pairs": len(labelled), "train_seconds": round(seconds, 1), "seed": training.seed,
               "dev_coverage": {"retrieval": before, "reranked": after, "top_n": args.top_n, "k": k}}
    write_json(out / "reranker.json", metrics)
    return metrics


def parse_args(argv: list[str] | None = None) -> tuple:
    return parse_dataclasses((ScriptArguments, _training_arguments()), __doc__, argv)


if __name__ == "__main__":
    exit_on_format_error(lambda: main(*parse_args()))
