#!/usr/bin/env bash
# Seed 0 ("Do LLMs surpass encoders for biomedical NER?", ICHI 2025), decoder side: Mistral-7B-Instruct-v0.3
# with QLoRA (4-bit NF4 base, double quantisation, bf16 compute), LoRA r=128 alpha=256 dropout 0.05 on
# q,k,v,o,gate,up,down and lm_head, lr 4e-5, paged_adamw_8bit, batch 4 x gradient accumulation 4, up to 20
# epochs, early stopping (patience 3) on validation strict F1 computed by generating, greedy decoding, one
# `word TAG` line per input word (bio), seed 42. trl 1.16 computes the loss from lm_head.weight and refuses
# a LoRA adapter there, so lm_head is trained in full (--lora_modules_to_save lm_head) instead.
#
#   bash decoders/run_seed0.sh                    # PROFILE=default without a GPU: SmolLM2-135M (no 4-bit),
#                                                 # batch 4 without accumulation, 1 epoch on the first 4
#                                                 # training documents, scored on the first 4 dev and test
#                                                 # documents: a smoke run (strict F1 stays near 0)
#   PROFILE=paper bash decoders/run_seed0.sh      # the paper's model and settings (GPU, Hugging Face Hub)
#   MODEL=... DATASET=... EPOCHS=... MAX_TRAIN_DOCS=... MAX_EVAL_DOCS=... OUT=... bash decoders/run_seed0.sh
#   [extra decoders/main.py arguments, e.g. --constrained True]; LAUNCH=echo prints the command
set -euo pipefail
cd "$(dirname "$0")/.."
source ./setup_env.sh

PROFILE="${PROFILE:-$(command -v nvidia-smi >/dev/null 2>&1 && echo paper || echo default)}"
case "$PROFILE" in
  paper)   MODEL="${MODEL:-mistralai/Mistral-7B-Instruct-v0.3}"; EPOCHS="${EPOCHS:-20}"
           HARDWARE=(--isQLoRA True --bf16 True --activation_checkpointing True --optim paged_adamw_8bit
                     --gradient_accumulation_steps 4 --generation_batch_size 16)
           CAPS=() ;;
  default) MODEL="${MODEL:-smollm2}"; EPOCHS="${EPOCHS:-1}"
           HARDWARE=(--gradient_accumulation_steps 1 --generation_batch_size 8)
           CAPS=(--max_train_docs "${MAX_TRAIN_DOCS:-4}" --max_eval_docs "${MAX_EVAL_DOCS:-4}"
                 --max_selection_docs "${MAX_SELECTION_DOCS:-2}") ;;
  *) echo "PROFILE must be paper or default, not $PROFILE" >&2; exit 2 ;;
esac
DATASET="${DATASET:-bc5cdr}"
OUT="${OUT:-results}"
LAUNCH="${LAUNCH:-python}"

$LAUNCH decoders/main.py --model_name "$MODEL" --dataset_name "$DATASET" \
  --output_dir "$OUT/decoders/seed0-$(basename "$MODEL")/$DATASET" --output_format bio \
  --lora_r 128 --lora_alpha 256 --lora_dropout 0.05 \
  --lora_target_modules q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj --lora_modules_to_save lm_head \
  --learning_rate 4e-5 --per_device_train_batch_size 4 --num_train_epochs "$EPOCHS" --patience 3 --seed 42 \
  --resume True "${HARDWARE[@]}" "${CAPS[@]}" "$@"
