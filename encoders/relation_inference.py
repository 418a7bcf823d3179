"""Predict relations with a trained relation classifier (encoders/relation_main.py) between the entities of
documents: a registry split or a JSONL file (corpus format). The documents' own (gold) entities are the
arguments unless --entities names a predictions JSONL (e.g. of encoders/inference.py), whose entities are
then paired instead: an end-to-end run. Gold relations, where the documents have them, are only used to score
(eval/relations, in the view the model was selected on unless --view).

    python encoders/relation_inference.py --model_dir results/relations/ddi/model --dataset_name ddi \
        --split test_ddi --output ddi.test.relations.jsonl
    python encoders/relation_inference.py --model_dir MODEL --input docs.jsonl --entities ner.jsonl --output rel.jsonl

Pairs, marking, window and input length are the ones the model was trained with (its relations.json). A JSONL
file holds no sentence boundaries: they come from data/text.split_sentences, which may differ from a reader's
(the DDI XML's), and with them the candidate pairs.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from data import registry
from data.corpus import Document, InputError, exit_on_format_error, parse_dataclasses, read_jsonl, write_jsonl
from data.llm.models import resolve
from encoders import relations
from eval.relations import VIEWS
from eval.relations import score as relation_score
from eval.runs import timing, write_json


@dataclass
class Args:
    model_dir: str = field(metadata={"help": "a trained model folder (relation_main.py writes OUTPUT_DIR/model)"})
    output: Path = field(metadata={"help": "predictions JSONL to write (documents with entities and relations)"})
    dataset_name: str | None = field(default=None, metadata={"help": "a registry dataset (with --split)"})
    split: str = "test"
    input: Path | None = field(default=None, metadata={"help": "a JSONL file of documents, not a registry split"})
    entities: Path | None = field(default=None, metadata={
        "help": "an entity predictions JSONL: pair its entities instead of the documents' own"})
    view: str | None = field(default=None, metadata={"choices": tuple(VIEWS), "help": "eval/relations view to score "
                                                                                      "(default: the model's)"})
    max_batch_tokens: int | None = field(default=None, metadata={"help": "padded tokens per batch (default by device)"})
    max_eval_docs: int | None = field(default=None, metadata={"help": "predict only the first N documents"})
    metrics: Path | None = field(default=None, metadata={"help": "also write the scores and the speed as JSON"})


def load_documents(args: Args) -> tuple[list[Document], list[Document]]:
    """(the documents as given, the documents whose entities are paired: the same, or with --entities')."""
    if (args.input is None) == (args.dataset_name is None):
        raise InputError("give either --input FILE or --dataset_name NAME [--split SPLIT]")
    docs = (read_jsonl(args.input) if args.input else registry.load(args.dataset_name, args.split))[:args.max_eval_docs]
    if args.entities is None:
        return docs, docs
    found = {d.id: d.entities for d in read_jsonl(args.entities, require_text=False)}
    return docs, [Document(d.id, d.text, found.get(d.id, []), d.sentences) for d in docs]


def load_model(model_dir: str):
    """The model (eval mode, on the accelerator if there is one), its tokenizer and its training settings."""
    path = Path(resolve(model_dir))
    if not (path / relations.PROVENANCE).exists():
        raise InputError(f"{path} has no {relations.PROVENANCE}: not a model encoders/relation_main.py wrote")
    trained = json.loads((path / relations.PROVENANCE).read_text())
    device = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else torch.device("cpu")
    model = AutoModelForSequenceClassification.from_pretrained(path).to(device).eval()
    return model, AutoTokenizer.from_pretrained(path), trained


def main(args: Args) -> list[Document]:
    gold, docs = load_documents(args)
    model, tokenizer, trained = load_model(args.model_dir)
    scheme = relations.Scheme.from_json(trained["scheme"])
    started = time.perf_counter()
    pred = relations.predict(model, tokenizer, docs, scheme, trained["marking"], trained["max_length"],
                             trained["window"], args.max_batch_tokens)
    seconds = time.perf_counter() - started
    write_jsonl(pred, args.output, with_text=False)
    print(f"{len(docs):,} documents, {sum(len(d.relations) for d in pred):,} relations predicted in {seconds:.1f} s "
          f"-> {args.output}")
    if not any(d.relations for d in gold):
        return pred
    name = args.split if args.input is None else args.input.stem
    scores = relation_score(gold, pred, args.view or scheme.view).to_json()
    print(relations.score_line(name, scores))
    if args.metrics:
        write_json(args.metrics, {"method": "relation_encoder", "model": trained["base_model"],
                                  "model_dir": args.model_dir, "dataset": args.dataset_name or args.input.stem,
                                  "entities": str(args.entities or "gold"), "max_eval_docs": args.max_eval_docs,
                                  name: scores, "timing": {name: timing(seconds, docs)}})
    return pred


def parse_args(argv: list[str] | None = None) -> Args:
    return parse_dataclasses((Args,), __doc__, argv)[0]


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
