"""Convert a brat standoff folder (.txt + .ann pairs) to IOB, reporting what flattening changed.

    python data/brat2iob.py --ann-dir corpora/raredis/train --out raredis_train.iob

Seed 2's brat2iob kept only the first fragment of discontinuous entities and let the first type win
on overlaps, both silently. Here sentences never cut an entity, tokens are cut at every entity
boundary, and the flattening is a named policy (see data/bio.py) whose every change is counted.
Output layout as data/convert.py: `token<TAB>tag`, blank line between sentences, `-DOCSTART-<TAB>O`
before each document.
"""
from __future__ import annotations

import sys


from data.bio import add_policy_arguments, describe_changes, write_iob
from data.corpus import exit_on_format_error, script_parser
from data.readers import read_brat


def main(argv: list[str] | None = None) -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--ann-dir", required=True, help="folder of brat .txt/.ann pairs")
    parser.add_argument("--out", required=True, help="output IOB file")
    add_policy_arguments(parser)
    args = parser.parse_args(argv)
    docs = read_brat(args.ann_dir)
    changes = write_iob(docs, args.out, args.overlap_policy, args.discontinuous_policy)
    n_entities = sum(len(d.entities) for d in docs)
    print(f"wrote {len(docs)} documents ({n_entities} entities) to {args.out}", file=sys.stderr)
    print(describe_changes(changes), file=sys.stderr)


if __name__ == "__main__":
    exit_on_format_error(main)
