"""Units in, spans out: the part of decoders/main.py and decoders/inference.py that is not training.

A generating model reads one unit at a time (a sentence by default; with level "document" a document or a
window of sentences, data/instructions.py) and writes its entities in an output format (data/formats.py).
Here the units become prompts (data/instructions.prompt) and the answers become character spans in the
documents: each unit's parsed entities are shifted by the unit's `start`. Overlapping document windows
can find an entity twice; it is kept once. Everything is scored on the documents (eval/semeval.py);
the format diagnostics (eval/diagnostics.py) are computed per unit, since a unit is what the model saw.

Units for prediction are cut without looking at the gold (data/instructions: respect_entities=False), so
a gold entity that crosses a sentence boundary cannot be found and counts as missed; `changes` counts
those ("crosses_unit_dropped"). Training units are cut so that no gold entity is lost.
"""
from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Sequence

from data.corpus import Document, Entity, entity_from_json, write_jsonl
from data.formats import OutputFormat, ParseResult
from data.generation import PredictionStore, answer_budget, generate, generate_stored
from data.instructions import records
from eval.diagnostics import summarise
from eval.semeval import score


def unit_records(docs: Sequence[Document], types: Sequence[str], fmt: OutputFormat, level: str,
                 max_sentences: int, for_training: bool, changes: Counter | None = None) -> list[dict]:
    """data/instructions records: the unit's prompt ("source"), gold answer ("output"), doc_id and start."""
    return list(records(docs, types, fmt, level, max_sentences=max_sentences, respect_entities=for_training,
                        changes=changes))


def budget_rule(tokenizer, train: Sequence[dict], slack: float = 1.2) -> dict:
    """What the answer budgets are made from (saved with a trained model, so inference needs no training
    data): the budget of the longest training answer (data.generation.answer_budget) and the largest
    answer-to-text length ratio, in tokens, of the training units."""
    ratio = max(((length(tokenizer, r["output"]) + 1) / length(tokenizer, r["input"])
                 for r in train if r["input"].strip()), default=None)
    return {"cap": answer_budget(tokenizer, [r["output"] for r in train], slack), "ratio": ratio, "slack": slack}


def budgets(tokenizer, rule: dict, recs: Sequence[dict]) -> list[int]:
    """max_new_tokens per unit: at most the budget of the longest gold answer, of the training units or of
    these, and at most the unit's text length times the rule's ratio, times its slack. The second bound
    reads no gold of the unit: it keeps a model that never stops from running far past what a short
    sentence could need (bio answers grow with the words of the unit)."""
    slack = rule["slack"]
    cap = max(rule["cap"], answer_budget(tokenizer, [r["output"] for r in recs], slack))
    if rule["ratio"] is None:
        return [cap] * len(recs)
    return [min(cap, int(slack * rule["ratio"] * length(tokenizer, r["input"])) + 1) for r in recs]


def length(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False).input_ids)


def constraints_for(recs: Sequence[dict], fmt: OutputFormat, types: Sequence[str], tokenizer,
                    max_new_tokens: Sequence[int]):
    """One data/constraints constraint per unit: its answer must parse and may only name text of the unit.
    It ends with EOS, or [SEP] for BERT-style decoders, which have no EOS token."""
    from data.constraints import build

    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    return [build(fmt, r["input"], types, tokenizer, n, eos_token_id=eos) for r, n in zip(recs, max_new_tokens)]


def to_documents(docs: Sequence[Document], recs: Sequence[dict], outputs: dict[str, str], fmt: OutputFormat,
                 types: Sequence[str]) -> tuple[list[Document], dict[str, ParseResult]]:
    """Document-level predictions (each unit's entities moved by its start offset; an entity found by two
    overlapping windows kept once) and every unit's ParseResult. A unit without output reads as ""."""
    found: dict[str, set[Entity]] = {d.id: set() for d in docs}
    parsed = {}
    for r in recs:
        result = fmt.parse(outputs.get(r["id"], ""), r["input"], types)
        parsed[r["id"]] = result
        shift = r["start"]
        found[r["doc_id"]].update(Entity(tuple((s + shift, e + shift) for s, e in ent.fragments), ent.type, ent.text)
                                  for ent in result.entities)
    return [Document(d.id, d.text, sorted(found[d.id])) for d in docs], parsed


def unit_gold(recs: Sequence[dict]) -> list[Document]:
    """Each unit as a gold document of its own (for the per-unit diagnostics)."""
    return [Document(r["id"], r["input"], [entity_from_json(e, "<unit>", r["id"]) for e in r["entities"]])
            for r in recs]


def strict(result) -> dict[str, float]:
    s = result.overall["strict"]
    return {"strict_f1": s.f1, "strict_precision": s.precision, "strict_recall": s.recall}


def selection_score(model, tokenizer, docs: Sequence[Document], recs: Sequence[dict], fmt: OutputFormat,
                    types: Sequence[str], max_new_tokens: Sequence[int], batch_size: int,
                    constrained: bool) -> tuple[dict[str, float], list[str]]:
    """Strict P/R/F1 and the parse rate of the model's answers on the selection units, and the answers
    (nothing written)."""
    prompts = [r["source"] for r in recs]
    constraints = constraints_for(recs, fmt, types, tokenizer, max_new_tokens) if constrained else None
    texts = generate(model, tokenizer, prompts, max_new_tokens, batch_size, constraints, desc="validation")
    pred, parsed = to_documents(docs, recs, dict(zip((r["id"] for r in recs), texts)), fmt, types)
    well_formed = sum(p.well_formed for p in parsed.values())
    return {**strict(score(docs, pred)), "parse_rate": well_formed / len(parsed) if parsed else 0.0}, texts


def generate_split(model, tokenizer, recs: Sequence[dict], fmt: OutputFormat, types: Sequence[str], store_path: Path,
                   max_new_tokens: Sequence[int], batch_size: int, constrained: bool, desc: str) -> dict[str, str]:
    """Every unit's raw answer, generated into (and resumed from) the outputs JSONL."""
    ids, prompts = [r["id"] for r in recs], [r["source"] for r in recs]
    store = PredictionStore(store_path)
    constraints = None
    if constrained:  # built for the units still to do only; the others stay None
        todo = [k for k, i in enumerate(ids) if i not in store]
        built = constraints_for([recs[k] for k in todo], fmt, types, tokenizer, [max_new_tokens[k] for k in todo])
        constraints = [None] * len(ids)
        for k, c in zip(todo, built):
            constraints[k] = c
    return generate_stored(model, tokenizer, store, ids, prompts, max_new_tokens, batch_size, constraints, desc)


def finish(split: str, docs: Sequence[Document], recs: Sequence[dict], outputs: dict[str, str], fmt: OutputFormat,
           types: Sequence[str], out_dir: Path) -> dict:
    """Parse the answers, write `{split}.predictions.jsonl` (document-level spans) and return the scores
    and the per-unit diagnostics."""
    pred, parsed = to_documents(docs, recs, outputs, fmt, types)
    write_jsonl(pred, out_dir / f"{split}.predictions.jsonl", with_text=False)
    diagnostics = {"level": "unit", **summarise(unit_gold(recs), parsed)}
    return {"scores": score(docs, pred).to_json(), "diagnostics": diagnostics}


def evaluate_split(model, tokenizer, split: str, docs: Sequence[Document], recs: Sequence[dict], fmt: OutputFormat,
                   types: Sequence[str], out_dir: Path, max_new_tokens: Sequence[int], batch_size: int,
                   constrained: bool) -> dict:
    """Generate (resumably) into `{split}.outputs.jsonl`, then finish(); adds units, budget and seconds."""
    started = time.time()
    outputs = generate_split(model, tokenizer, recs, fmt, types, out_dir / f"{split}.outputs.jsonl",
                             max_new_tokens, batch_size, constrained, desc=split)
    seconds = time.time() - started
    result = finish(split, docs, recs, outputs, fmt, types, out_dir)
    s = result["scores"]["strict"]
    print(f"  {split}: strict P {s['precision']:.4f} R {s['recall']:.4f} F1 {s['f1']:.4f}; parse rate "
          f"{result['diagnostics']['parse_rate']}; {len(recs):,} units in {seconds:.0f} s")
    return {**result, "units": len(recs), "max_new_tokens": max(max_new_tokens, default=0),
            "generation_seconds": round(seconds, 1)}


def write_generation_info(folder: Path, info: dict) -> None:
    """What inference needs to prompt a trained model as it was trained (decoders/inference.py reads it)."""
    (folder / "generation.json").write_text(json.dumps(info, indent=2))


def read_generation_info(folder: str | Path) -> dict:
    path = Path(folder) / "generation.json"
    if not path.exists():
        raise SystemExit(f"error: {path} not found: --model_dir must be the model/ folder decoders/main.py wrote")
    return json.loads(path.read_text())
