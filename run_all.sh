#!/usr/bin/env bash
# The whole pipeline on the embedded default: set up .venv, fetch the corpora, describe them,
# run every method stage, and collect all scores into results/RESULTS.md.
#   DATASETS="ncbi_disease bc5cdr" OUT=results bash run_all.sh
# Corpora come from NER_MIRROR (default ../shared/datasets when present) or their original repositories.
set -euo pipefail
cd "$(dirname "$0")"
source ./setup_env.sh

DATASETS="${DATASETS:-ncbi_disease bc5cdr}"   # the default corpora of every stage
OUT="${OUT:-results}"
mkdir -p "$OUT"

echo "== data: fetch (sha256-checked) and describe"
python data/download.py $DATASETS ${NER_MIRROR:+--mirror "$NER_MIRROR"}
python data/stats.py $DATASETS > "$OUT/stats.md"
cat "$OUT/stats.md"

echo "== dictionary baseline (gazetteer from the training split)"
for ds in $DATASETS; do
  python dictionary/main.py --dataset_name "$ds" --output_dir "$OUT/dictionary/$ds"
done

echo "== encoders: inference and training speed (ratios measured in one run)"
mkdir -p "$OUT/bench"
python bench/encoder_speed.py --pad512_sentences 64 --train_batches 12 --pad512_train_batches 2 \
  --json "$OUT/bench/encoder_speed.json" | tee "$OUT/bench/encoder_speed.txt"

echo "== encoders: accuracy, our recipe vs a run_ner-style Trainer (same model, epochs, lr, seeds 42 and 43; capped)"
# two (dataset, seed) runs at a time, a core each: 520 s instead of 666 s one at a time here, same scores
python bench/encoder_accuracy.py --jobs 2 --output_dir "$OUT/encoder_accuracy" --json "$OUT/bench/encoder_accuracy.json"

echo "== continual pre-training, then SmolLM2 + LoRA token classification with and without it (seed 1, capped)"
OUT="$OUT" DATASETS="$DATASETS" bash continual/run_seed1.sh

echo "== generation: batched vs one prompt at a time, constraints off and on (untrained SmolLM2, every format)"
python bench/generation_speed.py --sentences 2 --json "$OUT/bench/generation_speed.json" | tee "$OUT/bench/generation_speed.txt"

echo "== SmolLM2 zero-shot, few-shot and LoRA-tuned in every output format, constraints off and on (capped)"
OUT="$OUT" DATASET="${DATASETS%% *}" bash generative/run_format_grid.sh

echo "== in-context examples chosen by retrieval vs at random (seed 3's RAG-ICL selection, measured without an LLM)"
python bench/retrieval.py --parts quality --datasets $DATASETS --json "$OUT/bench/retrieval.json"

echo "== results"
python eval/report.py "$OUT" > "$OUT/RESULTS.md"
cat "$OUT/RESULTS.md"
