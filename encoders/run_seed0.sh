#!/usr/bin/env bash
# Seed 0 ("Do LLMs surpass encoders for biomedical NER?", ICHI 2025), encoder side: bert-large-uncased,
# lr 2e-5, batch 8, up to 20 epochs, early stopping on validation strict F1 (patience 3), seed 42.
#
#   bash encoders/run_seed0.sh                    # PROFILE=default without a GPU: bundled MiniLM, 3 epochs
#   PROFILE=paper bash encoders/run_seed0.sh      # the paper's model and epochs (GPU, Hugging Face Hub)
#   MODEL=... DATASET=... EPOCHS=... OUT=... bash encoders/run_seed0.sh [extra encoders/main.py arguments]
#   LAUNCH="torchrun --standalone --nproc_per_node 2" or
#   LAUNCH="accelerate launch --config_file encoders/accelerate/ddp.yaml" for several devices
set -euo pipefail
cd "$(dirname "$0")/.."
source ./setup_env.sh

PROFILE="${PROFILE:-$(command -v nvidia-smi >/dev/null 2>&1 && echo paper || echo default)}"
case "$PROFILE" in
  paper)   MODEL="${MODEL:-google-bert/bert-large-uncased}"; EPOCHS="${EPOCHS:-20}"; PRECISION="--bf16 True" ;;
  default) MODEL="${MODEL:-minilm}"; EPOCHS="${EPOCHS:-3}"; PRECISION="" ;;
  *) echo "PROFILE must be paper or default, not $PROFILE" >&2; exit 2 ;;
esac
DATASET="${DATASET:-bc5cdr}"
OUT="${OUT:-results}"
LAUNCH="${LAUNCH:-python}"

$LAUNCH encoders/main.py --model_name "$MODEL" --dataset_name "$DATASET" \
  --output_dir "$OUT/encoders/seed0-$(basename "$MODEL")/$DATASET" \
  --learning_rate 2e-5 --batch_size 8 --num_train_epochs "$EPOCHS" --patience 3 --seed 42 \
  --resume True $PRECISION "$@"
