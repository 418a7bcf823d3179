#!/usr/bin/env bash
# Seed 2 (LLMs in token-level clinical NER, RareDis), encoder baselines: bert-base-cased and
# emilyalsentzer/Bio_ClinicalBERT, lr 2e-5, 20 epochs; one run per model. RareDis texts are not public,
# so the default corpus is NCBI-disease. Labels sit on the first sub-word and scoring is on character
# spans (the seed relabelled sub-words by label-id arithmetic and scored sub-words).
#
#   bash encoders/run_seed2.sh                    # PROFILE=default without a GPU: bundled MiniLM, 3 epochs
#   PROFILE=paper bash encoders/run_seed2.sh      # both paper models, 20 epochs (GPU, Hugging Face Hub)
#   MODELS="m1 m2" (or MODEL=m) DATASET=... EPOCHS=... OUT=... LAUNCH=... as in run_seed0.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source ./setup_env.sh

PROFILE="${PROFILE:-$(command -v nvidia-smi >/dev/null 2>&1 && echo paper || echo default)}"
case "$PROFILE" in
  paper)   MODELS="${MODELS:-${MODEL:-google-bert/bert-base-cased emilyalsentzer/Bio_ClinicalBERT}}"
           EPOCHS="${EPOCHS:-20}"; PRECISION="--bf16 True" ;;
  default) MODELS="${MODELS:-${MODEL:-minilm}}"; EPOCHS="${EPOCHS:-3}"; PRECISION="" ;;
  *) echo "PROFILE must be paper or default, not $PROFILE" >&2; exit 2 ;;
esac
DATASET="${DATASET:-ncbi_disease}"
OUT="${OUT:-results}"
LAUNCH="${LAUNCH:-python}"

for model in $MODELS; do
  # No early stopping in the seed: patience as long as the run.
  $LAUNCH encoders/main.py --model_name "$model" --dataset_name "$DATASET" \
    --output_dir "$OUT/encoders/seed2-$(basename "$model")/$DATASET" \
    --learning_rate 2e-5 --batch_size 8 --num_train_epochs "$EPOCHS" --patience "$EPOCHS" --seed 42 \
    --resume True $PRECISION "$@"
done
