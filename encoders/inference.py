"""Predict entities with a trained token classifier: character-offset predictions JSONL for a registry
split or a JSONL file of documents (corpus format; gold entities, if present, are only used to score).

    python encoders/inference.py --model_dir results/encoder/bc5cdr/model --dataset_name bc5cdr --split test \
        --output bc5cdr.test.predictions.jsonl
    python encoders/inference.py --model_dir MODEL --input docs.jsonl --output predictions.jsonl

Fast on CPU as well as GPU: inputs sorted by length and batched up to a padded-token budget (so almost
nothing is padding), torch.inference_mode, one batched call to the Rust tokenizer. The model reads
sentences; longer ones are cut into overlapping windows and merged back, never truncated.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path


import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from data import registry
from data.corpus import Document, exit_on_format_error, parse_dataclasses, read_jsonl, write_jsonl
from data.llm.models import resolve
from encoders import tagging
from eval.runs import print_scores, run_settings, timing, write_metrics
from eval.semeval import score


@dataclass
class Args:
    model_dir: str = field(metadata={"help": "a trained model folder (encoders/main.py writes OUTPUT_DIR/model)"})
    output: Path = field(metadata={"help": "predictions JSONL to write"})
    dataset_name: str | None = field(default=None, metadata={"help": "a registry dataset (with --split)"})
    split: str = "test"
    input: Path | None = field(default=None, metadata={"help": "a JSONL file of documents, not a registry split"})
    max_length: int = field(default=512, metadata={"help": "sub-words per model input, special tokens included"})
    stride: int | None = field(default=None, metadata={"help": "sub-words between window starts (default: half)"})
    max_batch_tokens: int | None = field(default=None, metadata={
        "help": f"padded tokens per batch (default {tagging.MAX_BATCH_TOKENS['cpu']} on CPU, "
                f"{tagging.MAX_BATCH_TOKENS['accelerator']} on GPU)"})
    max_batch_size: int = field(default=tagging.MAX_BATCH_SIZE, metadata={"help": "inputs per batch"})
    decode_mode: str = field(default=tagging.DECODE_MODE, metadata={"choices": tagging.DECODE_MODES})
    bf16: bool = field(default=False, metadata={"help": "run the model in bfloat16 (GPUs; CPUs with AMX)"})
    max_eval_docs: int | None = field(default=None, metadata={"help": "predict only the first N documents"})
    metrics: Path | None = field(default=None, metadata={
        "help": "also write the scores and the speed as a metrics JSON (eval/report.py reads it)"})


def load_documents(args: Args) -> list[Document]:
    if (args.input is None) == (args.dataset_name is None):
        raise SystemExit("error: give either --input FILE or --dataset_name NAME [--split SPLIT]")
    docs = read_jsonl(args.input) if args.input else registry.load(args.dataset_name, args.split)
    return docs[:args.max_eval_docs]


def load_model(model_dir: str, bf16: bool = False):
    """The model (in eval mode, on the GPU if there is one) and its tokenizer."""
    path = resolve(model_dir)
    device = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else torch.device("cpu")
    model = AutoModelForTokenClassification.from_pretrained(
        path, dtype=torch.bfloat16 if bf16 else torch.float32,
        attn_implementation=tagging.attention_implementation()).to(device).eval()
    return model, AutoTokenizer.from_pretrained(path)


def main(args: Args) -> list[Document]:
    docs = load_documents(args)
    model, tokenizer = load_model(args.model_dir, args.bf16)
    started = time.perf_counter()
    pred = tagging.predict(model, tokenizer, docs, args.max_length, args.stride, args.max_batch_tokens,
                           args.max_batch_size, args.decode_mode, progress=True)
    seconds = time.perf_counter() - started
    write_jsonl(pred, args.output, with_text=False)
    print(f"{len(docs):,} documents, {sum(len(d.entities) for d in pred):,} entities predicted in {seconds:.1f} s "
          f"-> {args.output}")
    if not any(d.entities for d in docs):
        return pred
    name = args.split if args.input is None else args.input.stem
    scores = score(docs, pred).to_json()
    print_scores(name, scores)
    if args.metrics:
        provenance = Path(args.model_dir) / tagging.PROVENANCE
        base = json.loads(provenance.read_text())["base_model"] if provenance.exists() else args.model_dir
        metrics = {"method": "encoder", "model": base, "model_dir": args.model_dir,
                   "dataset": args.dataset_name or args.input.stem, "bf16": args.bf16,
                   "max_eval_docs": args.max_eval_docs, name: scores, "timing": {name: timing(seconds, docs)}}
        write_metrics(args.metrics.parent, metrics, settings=run_settings(args), name=args.metrics.name)
    return pred


def parse_args(argv: list[str] | None = None) -> Args:
    return parse_dataclasses((Args,), __doc__, argv)[0]


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
