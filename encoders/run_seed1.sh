#!/usr/bin/env bash
# Seed 1 (token classification vs seq2seq Llama, PharmaCoNER), token-classification side: a Llama with a
# linear head on its hidden states, LoRA r=12 alpha=32 dropout 0.1 (head trained in full), lr 1e-4,
# 2 epochs, batch 8 x gradient accumulation 2, labels on the first sub-word, best epoch by validation
# strict F1. (The paper continues pre-training first: that is continual/.)
#
#   bash encoders/run_seed1.sh                    # PROFILE=default without a GPU: SmolLM2-135M, 1 epoch on
#                                                 # the first 150 NCBI training documents: about 20 minutes
#                                                 # on 2 CPU cores, a smoke run (strict F1 stays near 0)
#   PROFILE=paper bash encoders/run_seed1.sh      # Llama-2-7B on PharmaCoNER, 2 epochs (GPU, Hub access)
#   MODEL=... DATASET=... EPOCHS=... MAX_TRAIN_DOCS=... OUT=... LAUNCH=... as in run_seed0.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source ./setup_env.sh

PROFILE="${PROFILE:-$(command -v nvidia-smi >/dev/null 2>&1 && echo paper || echo default)}"
case "$PROFILE" in
  paper)   MODEL="${MODEL:-meta-llama/Llama-2-7b-hf}"; DATASET="${DATASET:-pharmaconer}"; EPOCHS="${EPOCHS:-2}"
           MAX_TRAIN_DOCS="${MAX_TRAIN_DOCS:-}"; PRECISION="--bf16 True" ;;
  default) MODEL="${MODEL:-smollm2}"; DATASET="${DATASET:-ncbi_disease}"; EPOCHS="${EPOCHS:-1}"
           MAX_TRAIN_DOCS="${MAX_TRAIN_DOCS:-150}"; PRECISION="" ;;
  *) echo "PROFILE must be paper or default, not $PROFILE" >&2; exit 2 ;;
esac
OUT="${OUT:-results}"
LAUNCH="${LAUNCH:-python}"

$LAUNCH encoders/main.py --model_name "$MODEL" --dataset_name "$DATASET" \
  --output_dir "$OUT/encoders/seed1-$(basename "$MODEL")-lora/$DATASET" \
  --lora True --lora_r 12 --lora_alpha 32 --lora_dropout 0.1 \
  --learning_rate 1e-4 --batch_size 8 --gradient_accumulation_steps 2 --num_train_epochs "$EPOCHS" \
  --patience 2 --seed 42 --resume True $PRECISION ${MAX_TRAIN_DOCS:+--max_train_docs "$MAX_TRAIN_DOCS"} \
  "$@"
