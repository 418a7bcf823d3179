"""Seed 1's seq2seq NER: a decoder LM fine-tuned with LoRA to write, for a whole document, a JSON array of
{"text", "type", "start", "end"} (character offsets, end exclusive), then run on the validation and test
splits and scored on the documents, with seed 1's diagnostics (parse rate, hallucination rate, boundary
accuracy, format compliance; eval/diagnostics.py).

    python generative/main.py --dataset_name ncbi_disease --output_dir results/generative/ncbi_disease
    python generative/main.py --model_name meta-llama/Llama-3.1-8B-Instruct --bf16 True ...   # seed 1's bases
    bash generative/run_seed1.sh

This is decoders/main.py (training, model selection on validation strict F1, resumable generation, the
same outputs and metrics.json) started with seed 1's settings in front of yours, so any of them can be
overridden: --output_format json, --level document (documents longer than --max_sentences sentences are
cut into windows), LoRA r=64 alpha=128 on every linear layer, completion-only loss, lr 8e-5, 6 epochs;
metrics.json says "method": "generative". It runs that script as a program (not an import: method
folders never import each other), so every option of decoders/main.py is accepted; --help lists them.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

DECODERS_MAIN = Path(__file__).resolve().parent.parent / "decoders" / "main.py"
SEED1 = ["--method", "generative", "--output_format", "json", "--level", "document", "--lora_r", "64",
         "--lora_alpha", "128", "--learning_rate", "8e-5", "--num_train_epochs", "6"]


def command(argv: list[str]) -> list[str]:
    """The decoders/main.py command line: seed 1's settings, then the caller's (the last one given wins)."""
    return [sys.executable, str(DECODERS_MAIN), *SEED1, *argv]


if __name__ == "__main__":
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__, flush=True)
    os.execv(sys.executable, command(sys.argv[1:]))
