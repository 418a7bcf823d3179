"""Instruction records for LLMs that write entities: any registry dataset, split and output format.

    python data/instructions.py ncbi_disease --split train --format typed --out ncbi.train.jsonl
    python data/instructions.py bc5cdr --split dev --format list --per-type --level document --out dev.jsonl

One JSON object per line, seed 4's record plus what is needed to map answers back to the documents:
  instruction   the task in plain English: the entity types (the registry's order, spelled as in the gold
                labels) and the exact answer format with a tiny example (data/formats.py `explain`)
  input         the unit's text: a sentence, a whole document, or a window of sentences
  output        the gold answer in the format (data/formats.py `serialise`)
  source        the full prompt: PROMPT filled with instruction and input (the answer follows it)
  raw_entities  {type: [mention, ...]} for every type asked for, as the output encodes them
  id            "<doc_id>/<unit number>" (plus "/<type>" with --per-type)
  doc_id, start the document and the character offset of `input` in it
  entities      the unit's gold entities, offsets relative to `input`, before any flattening

Units. `--level sentence` (default): one record per sentence. `--level document`: one per document, or,
for a document of more than --max-sentences sentences, one per window of that many sentences, a new
window every --stride sentences (data.text.windows; the last window is aligned to the end, so windows
may overlap and nothing is cut). Sentences are the source's where it marks them, else data.text's,
split so that no gold entity is cut (a training target must not lose mentions). With
--no-respect-entities the sentences ignore the gold (for inputs a model will predict on: gold-aware
splitting would leak where mentions are); an entity that then crosses a unit is left out of that
unit's output and counted ("crosses_unit_dropped"). Blank units are skipped and counted.

Every gold type must be among the dataset's types (seed 4's instruction omitted a type its targets used);
anything else is an error. What the format flattened is counted and printed (see data/formats.py).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Iterator, Sequence

if __package__ in (None, ""):  # run as `python data/instructions.py`: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.corpus import Document, Entity, Span, exit_on_format_error
from data.formats import FORMATS, OutputFormat, get_format
from data.registry import get, load
from data.text import split_sentences, windows

TASK = "### Instruction:\n{instruction}\n\n"
EXAMPLE = "### Text:\n{input}\n\n### Answer:\n"  # one input and the place of its answer
PROMPT = TASK + EXAMPLE
LEVELS = ("sentence", "document")


def instruction(types: Sequence[str], fmt: OutputFormat) -> str:
    """The task for one prompt: which types to find, and how to write the answer."""
    kinds = "this entity type" if len(types) == 1 else "these entity types"
    return (f"Find every mention of {kinds} in the text: {', '.join(types)}. Use the type names exactly as "
            f"written here, and copy every mention exactly as it is written in the text.\n"
            f"{fmt.explain(types)}")


def prompt(instruction_text: str, input_text: str) -> str:
    """The full prompt a model is given (its answer follows)."""
    return PROMPT.format(instruction=instruction_text, input=input_text)


def few_shot(instruction_text: str, examples: Sequence[tuple[str, str]], input_text: str) -> str:
    """A few-shot prompt: the instruction, k solved examples (input, answer) in PROMPT's sections, then the
    query; with no examples it is exactly prompt(). Each example repeats PROMPT's Text/Answer sections, so
    the query reads as one more of them and the model's answer follows it."""
    solved = "".join(EXAMPLE.format(input=text) + answer + "\n\n" for text, answer in examples)
    return TASK.format(instruction=instruction_text) + solved + EXAMPLE.format(input=input_text)


def unit_spans(doc: Document, level: str = "sentence", max_sentences: int = 10, stride: int | None = None,
               respect_entities: bool = True) -> list[Span]:
    """The character spans of the units a document is cut into (module docstring)."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    sentences = doc.sentences or split_sentences(doc.text, doc.entities if respect_entities else ())
    if level == "sentence":
        return list(sentences)
    return [(sentences[a][0], sentences[b - 1][1])
            for a, b in windows(len(sentences), max_sentences, stride or max_sentences)]


def unit_entities(doc: Document, span: Span, changes: Counter) -> list[Entity]:
    """The document's entities inside `span`, with offsets relative to its start; entities crossing its
    edge are counted ("crosses_unit_dropped")."""
    start, end = span
    out = []
    for ent in doc.entities:
        if start <= ent.start and ent.end <= end:
            out.append(Entity(tuple((s - start, e - start) for s, e in ent.fragments), ent.type, ent.text))
        elif ent.start < end and start < ent.end:
            changes["crosses_unit_dropped"] += 1
    return out


def records(docs: Sequence[Document], types: Sequence[str], fmt: OutputFormat, level: str = "sentence",
            per_type: bool = False, max_sentences: int = 10, stride: int | None = None,
            respect_entities: bool = True, changes: Counter | None = None) -> Iterator[dict]:
    """Instruction records for every unit of every document (per type with `per_type`)."""
    changes = Counter() if changes is None else changes
    unknown = sorted({e.type for doc in docs for e in doc.entities} - set(types))
    if unknown:
        raise ValueError(f"gold entity types {unknown} are not among the types {list(types)}")
    groups = [(t,) for t in types] if per_type else [tuple(types)]
    for doc in docs:
        spans = unit_spans(doc, level, max_sentences, stride, respect_entities)
        for k, span in enumerate(spans):
            text = doc.text[span[0]:span[1]]
            if not text.strip():
                changes["empty_units_skipped"] += 1
                continue
            entities = unit_entities(doc, span, changes)
            for group in groups:
                yield _record(doc.id, k, span[0], text, [e for e in entities if e.type in group],
                              group, fmt, changes, per_type)


def _record(doc_id: str, k: int, start: int, text: str, entities: list[Entity], types: tuple[str, ...],
            fmt: OutputFormat, changes: Counter, per_type: bool) -> dict:
    flat = fmt.flatten((text, entities), types, changes)
    task = instruction(types, fmt)
    return {"instruction": task, "input": text, "output": fmt.serialise((text, entities), types),
            "source": prompt(task, text),
            "raw_entities": {t: [e.text for e in flat if e.type == t] for t in types},
            "id": f"{doc_id}/{k}" + (f"/{types[0]}" if per_type else ""),
            "doc_id": doc_id, "start": start, "entities": [e.to_json() for e in sorted(entities)]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="registry dataset name")
    parser.add_argument("--split", required=True, help="a split the registry names (train, dev, test, ...)")
    parser.add_argument("--format", required=True, choices=list(FORMATS), help="answer format (data/formats.py)")
    parser.add_argument("--out", required=True, help="output JSONL file")
    parser.add_argument("--level", choices=LEVELS, default="sentence",
                        help="unit of a record (default: %(default)s)")
    parser.add_argument("--max-sentences", type=int, default=10,
                        help="document level: longest window, in sentences (default: %(default)s)")
    parser.add_argument("--stride", type=int, default=None,
                        help="document level: sentences between window starts (default: --max-sentences)")
    parser.add_argument("--per-type", action="store_true", help="one record per unit and entity type (seed 3)")
    parser.add_argument("--no-respect-entities", dest="respect_entities", action="store_false",
                        help="split sentences without looking at the gold (inputs to predict on)")
    args = parser.parse_args(argv)
    fmt, types = get_format(args.format), get(args.name).types
    changes: Counter = Counter()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(out, "w", encoding="utf-8") as fh:
        for rec in records(load(args.name, args.split), types, fmt, args.level, args.per_type,
                           args.max_sentences, args.stride, args.respect_entities, changes):
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    print(f"wrote {n} records to {out}", file=sys.stderr)
    print(f"changed by the {fmt.name} format and the units: "
          + (", ".join(f"{k}={v}" for k, v in sorted(changes.items())) or "nothing"), file=sys.stderr)


if __name__ == "__main__":
    exit_on_format_error(main)
