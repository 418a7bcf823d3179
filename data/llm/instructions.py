"""Instruction records for LLMs that write entities: any registry dataset, split and output format.

    python data/llm/instructions.py ncbi_disease --split train --format typed --out ncbi.train.jsonl
    python data/llm/instructions.py bc5cdr --split dev --format list --per-type --level document --out dev.jsonl

One JSON object per line, seed 4's record plus what is needed to map answers back to the documents:
  instruction   the task in plain English: the entity types (the registry's order, spelled as in the gold
                labels) and the exact answer format with a tiny example (data/llm/formats `explain`)
  input         the unit's text: a sentence, a whole document, or a window of sentences
  output        the gold answer in the format (data/llm/formats `serialise`)
  source        the full prompt: PROMPT filled with instruction and input (the answer follows it)
  raw_entities  {type: [mention, ...]} for every type asked for, as the output encodes them
  id            "<doc_id>/<unit number>" (plus "/<type>" with --per-type)
  doc_id, start the document and the character offset of `input` in it
  entities      the unit's gold entities, offsets relative to `input`, before any flattening

Units (data/llm/units.py). `--level sentence` (default): one record per sentence. `--level document`: one
per document, or, for a document of more than --max-sentences sentences, one per window of that many
sentences, a new window every --stride sentences. Sentences are split so that no gold entity is cut; with
--no-respect-entities they ignore the gold (inputs a model will predict on), and an entity that then
crosses a unit is left out of that unit's output and counted ("crosses_unit_dropped"). Blank units are
skipped and counted. Corpora that nest mentions (data.registry.nested) place string
mentions with nesting allowed (data.llm.align.place).

Every gold type must be among the dataset's types (seed 4's instruction omitted a type its targets used);
anything else is an error. What the format flattened is counted and printed (see data/llm/formats).
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from data.corpus import exit_on_format_error, script_parser
from data.llm.formats import FORMATS, get_format
from data.llm.units import LEVELS, make_units
from data.registry import get, load, nested


def main(argv: list[str] | None = None) -> None:
    parser = script_parser(__doc__)
    parser.add_argument("name", help="registry dataset name")
    parser.add_argument("--split", required=True, help="a split the registry names (train, dev, test, ...)")
    parser.add_argument("--format", required=True, choices=list(FORMATS), help="answer format (data/llm/formats)")
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
    ds = get(args.name)
    fmt = get_format(args.format, nested=nested(args.name))
    changes: Counter = Counter()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(out, "w", encoding="utf-8") as fh:
        for unit in make_units(load(args.name, args.split), ds.types, fmt, args.level, args.per_type,
                               args.max_sentences, args.stride, args.respect_entities, changes):
            fh.write(json.dumps(unit.to_json(), ensure_ascii=False) + "\n")
            n += 1
    print(f"wrote {n} records to {out}", file=sys.stderr)
    print(f"changed by the {fmt.name} format and the units: "
          + (", ".join(f"{k}={v}" for k, v in sorted(changes.items())) or "nothing"), file=sys.stderr)


if __name__ == "__main__":
    exit_on_format_error(main)
