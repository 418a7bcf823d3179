"""Seed 3's collated NER data, written from our data layer (the seed downloaded BigBio's copies from the hub).

    python rag_icl/generate_data.py --all
    python rag_icl/generate_data.py --one_dataset bc5cdr --data_dir data_seed3

Writes the seed's layout, DATA_DIR/collate/ner/<task>/<task>_{train,test}_processed.json, one JSON list per
split with a record per document and task (data/per_type_tasks.py: bc5cdr_chemical, bc5cdr_disease,
ncbi_disease): {"id", "text", "entity_type", "entities": the mentions of that type as written, in text order,
each occurrence once, "spans": their [start, end] character offsets}. A discontinuous mention is written as
its fragments joined by a space, with the offsets of its first and last character. CHEMDNER and NLM-Gene,
the seed's other two NER datasets, are not in our corpora: --all says so and goes on; naming them is an
error. The relation extraction data is issue "relation extraction".
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

from data.corpus import exit_on_format_error, script_parser
from data.per_type_tasks import NER_TASKS, NOT_IN_CORPORA, tasks_of

SPLITS = ("train", "test")


def records(task: str, split: str, changes: Counter) -> list[dict]:
    t = NER_TASKS[task]
    return [{"id": doc.id, "text": doc.text, "entity_type": t.entity_type,
             "entities": [e.text or e.surface(doc.text) for e in sorted(doc.entities)],
             "spans": [[e.start, e.end] for e in sorted(doc.entities)]} for doc in t.documents(split, changes)]


def write(task: str, data_dir: Path) -> list[Path]:
    out = []
    for split in SPLITS:
        changes: Counter = Counter()
        recs = records(task, split, changes)
        path = data_dir / "collate" / "ner" / task / f"{task}_{split}_processed.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(recs, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        mentions = sum(len(r["entities"]) for r in recs)
        merged = f", {changes['types_merged']:,} of them merged into {NER_TASKS[task].entity_type}" \
            if changes["types_merged"] else ""
        print(f"{path}: {len(recs):,} documents, {mentions:,} mentions{merged}")
        out.append(path)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = script_parser(__doc__)
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every seed 3 NER dataset in our corpora")
    which.add_argument("--one_dataset", help="a corpus (bc5cdr, ncbi_disease) or one task (bc5cdr_chemical, ...)")
    parser.add_argument("--data_dir", type=Path, default=Path("data_seed3"),
                        help="the layout's root (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.all:
        for name in NOT_IN_CORPORA:
            print(f"{name}: not in our corpora (shared/datasets/SOURCES.md), skipped", file=sys.stderr)
    for task in NER_TASKS if args.all else tasks_of(args.one_dataset):
        write(task, args.data_dir)


if __name__ == "__main__":
    exit_on_format_error(main)
