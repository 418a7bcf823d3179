"""Run a model trained by generative/main.py on a registry split or a JSONL file of documents: the raw JSON
answer per document (or window), document-level character-offset predictions, and, with gold entities,
scores and seed 1's diagnostics.

    python generative/inference.py --model_dir results/generative/ncbi_disease/model --split test \
        --output_dir results/generative/ncbi_disease/inference

This is decoders/inference.py: the format, level, types and answer budget come from the model folder's
generation.json (json, document level for generative/main.py); every option of it is accepted (below).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.corpus import exit_on_format_error
from decoders import inference


def parse_args(argv: list[str] | None = None):
    return inference.parse_args(argv, doc=__doc__)


if __name__ == "__main__":
    exit_on_format_error(lambda: inference.main(parse_args()))
