"""Seed 1's seq2seq NER: a decoder LM fine-tuned with LoRA to write, for a whole document, a JSON array of
{"text", "type", "start", "end"} (character offsets, end exclusive), then run on the validation and test
splits and scored on the documents, with seed 1's diagnostics (parse rate, hallucination rate, boundary
accuracy, format compliance; eval/diagnostics.py).

    python generative/main.py --dataset_name ncbi_disease --output_dir results/generative/ncbi_disease
    python generative/main.py --model_name meta-llama/Llama-3.1-8B-Instruct --bf16 True ...   # seed 1's bases
    bash generative/run_seed1.sh

This is decoders/main.py (training, model selection on validation strict F1, resumable generation, the
same outputs and metrics.json) with seed 1's defaults: --output_format json, --level document (documents
longer than --max_sentences sentences are cut into windows), LoRA r=64 alpha=128 on every linear layer,
completion-only loss, lr 8e-5, 6 epochs; metrics.json says "method": "generative". Every option of
decoders/main.py is accepted (below).
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from data.corpus import exit_on_format_error
from decoders import main as decoder

SEED1 = {"method": "generative", "output_format": "json", "level": "document", "lora_r": 64, "lora_alpha": 128,
         "learning_rate": 8e-5, "num_train_epochs": 6}


def parse_args(argv: list[str] | None = None):
    return decoder.parse_args(argv, defaults=SEED1, doc=__doc__)


if __name__ == "__main__":
    exit_on_format_error(lambda: decoder.main(parse_args()))
