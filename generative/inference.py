"""Run a model trained by generative/main.py on a registry split or a JSONL file of documents: the raw JSON
answer per document (or window), document-level character-offset predictions, and, with gold entities,
scores and seed 1's diagnostics.

    python generative/inference.py --model_dir results/generative/ncbi_disease/model --split test \
        --output_dir results/generative/ncbi_disease/inference

This is decoders/inference.py, run as a program (method folders never import each other): the format,
level, types and answer budget come from the model folder's generation.json (json, document level for
generative/main.py); every option of decoders/inference.py is accepted, and --help lists them.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

DECODERS_INFERENCE = Path(__file__).resolve().parent.parent / "decoders" / "inference.py"

if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__, flush=True)
    os.execv(sys.executable, [sys.executable, str(DECODERS_INFERENCE), *sys.argv[1:]])
