"""Documents, sentences and entities per split and per type of a registry dataset.

    python data/stats.py ncbi_disease            # Markdown table
    python data/stats.py ncbi_disease --json     # {split: {"documents", "sentences", "entities", "types"}}

Sentences are those the source marks (IOB blocks, XML <sentence> elements, RuDReC lines); for
sources that mark none (PubTator, brat, BioC, LINNAEUS) they come from data/text.split_sentences.
"""
from __future__ import annotations

import json
from collections import Counter


from data import registry
from data.corpus import Document, exit_on_format_error, script_parser
from data.text import count_sentences


def split_stats(docs: list[Document]) -> dict:
    types = Counter(e.type for d in docs for e in d.entities)
    return {
        "documents": len(docs),
        "sentences": count_sentences(docs),
        "entities": sum(types.values()),
        "types": dict(sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))),
    }


def dataset_stats(name: str) -> dict:
    return {split: split_stats(registry.load(name, split)) for split in registry.get(name).splits}


def markdown(name: str, stats: dict) -> str:
    types = sorted({t for s in stats.values() for t in s["types"]})
    head = ["split", "documents", "sentences", "entities", *types]
    rows = [[split, s["documents"], s["sentences"], s["entities"], *(s["types"].get(t, 0) for t in types)]
            for split, s in stats.items()]
    lines = [f"### {name}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(f"{v:,}" if isinstance(v, int) else v for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("names", nargs="+", help=f"datasets: {', '.join(registry.DATASETS)}")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    args = parser.parse_args()
    out = {name: dataset_stats(name) for name in args.names}
    if args.json:
        print(json.dumps(out[args.names[0]] if len(args.names) == 1 else out, indent=2, ensure_ascii=False))
    else:
        print("\n".join(markdown(name, stats) for name, stats in out.items()))


if __name__ == "__main__":
    exit_on_format_error(main)
