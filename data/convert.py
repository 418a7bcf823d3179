"""Write a registry dataset split as JSONL (lossless) or IOB (flattened, reporting what changed).

    python data/convert.py ncbi_disease --split train --to iob --out out/ncbi_train.iob
    python data/convert.py nerel_bio --split dev --to iob --out dev.iob --overlap-policy first

IOB is `token<TAB>tag` per line, a blank line between sentences, `-DOCSTART-<TAB>O` before each
document; sentences and tokens come from the source where it marks them, else from data/text.py.
The flattening policies (see data/bio.py) apply to IOB only; their counts go to stderr.
"""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path


from data.bio import add_policy_arguments, describe_changes, write_iob
from data.corpus import Document, exit_on_format_error, script_parser, write_jsonl
from data.registry import load


def convert(docs: list[Document], to: str, out: str | Path, overlap_policy: str = "longest_first",
            discontinuous_policy: str = "first_fragment") -> Counter:
    """Write `docs` in format `to` ("jsonl" or "iob"); returns what BIO flattening changed."""
    if to == "jsonl":
        write_jsonl(docs, out)
        return Counter()
    if to == "iob":
        return write_iob(docs, out, overlap_policy, discontinuous_policy)
    raise ValueError(f"unknown output format {to!r}")


def main(argv: list[str] | None = None) -> None:
    parser = script_parser(__doc__)
    parser.add_argument("name", help="registry dataset name")
    parser.add_argument("--split", required=True, help="train, dev or test (as the registry names them)")
    parser.add_argument("--to", choices=("jsonl", "iob"), required=True)
    parser.add_argument("--out", required=True, help="output file")
    add_policy_arguments(parser)
    args = parser.parse_args(argv)
    docs = load(args.name, args.split)
    changes = convert(docs, args.to, args.out, args.overlap_policy, args.discontinuous_policy)
    n_entities = sum(len(d.entities) for d in docs)
    print(f"wrote {len(docs)} documents ({n_entities} entities) to {args.out}", file=sys.stderr)
    if args.to == "iob":
        print(describe_changes(changes), file=sys.stderr)


if __name__ == "__main__":
    exit_on_format_error(main)
