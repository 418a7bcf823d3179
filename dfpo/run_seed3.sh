#!/usr/bin/env bash
# Seed 3's DFPO, three stages per corpus: (1) LoRA fine-tuning on the seed's framing (one entity type per
# document, the answer the list of its mentions), (2) DPOP preference optimisation of that model on pairs built
# from the training split (chosen: gold; rejected: the stage-1 model's own wrong answers and controlled
# corruptions), (3) the fine-tuning again, from the stage-2 model. The ablation beside it, on the same budget:
# plain DPO in stage 2 (--loss_type sigmoid), and stage 1 alone. Every stage is scored on the test split.
#
#   bash dfpo/run_seed3.sh                   # PROFILE=default without a GPU: bundled SmolLM2-135M, LoRA; stages 1
#                                            # and 3 30 steps of 2 of the first 200 training documents, pairs from
#                                            # the first 40, stage 2 20 steps of 2 pairs; greedy answers for the
#                                            # first 20 test documents
#   PROFILE=paper bash dfpo/run_seed3.sh     # Gemma-2-9B-it, QLoRA, the seed's settings; sampled test answers
#                                            # (temperature 0.5, 5 repeats)
#   MODEL=... DATASETS=... OUT=... LAUNCH=echo prints the commands
set -euo pipefail
cd "$(dirname "$0")/.."
source ./setup_env.sh

PROFILE="${PROFILE:-$(command -v nvidia-smi >/dev/null 2>&1 && echo paper || echo default)}"
case "$PROFILE" in
  paper)   MODEL="${MODEL:-google/gemma-2-9b-it}"
           STAGE1=(--isQLoRA True --epoch 5 --batchsize 1 --gradient_accumulation_steps 8
                   --lr_scheduler_type constant_with_warmup --learning_rate 2e-4 --bf16 True)
           STAGE2=(--isQLoRA True --beta 0.4 --dpop_lambda 2 --learning_rate 2e-7 --epoch 2 --lora_r 8 --bf16 True)
           PAIRS=(--samples 4 --temperature 1.0)
           EVAL=(--temperature 0.5 --repeats 5) ;;
  default) MODEL="${MODEL:-smollm2}"
           STAGE1=(--max_train_docs 200 --max_steps 30 --batchsize 2 --gradient_accumulation_steps 1
                   --max_length 1024 --learning_rate 5e-4 --lora_r 16)
           STAGE2=(--max_steps 20 --batchsize 2 --gradient_accumulation_steps 1 --max_length 1024
                   --learning_rate 5e-4 --beta 0.4 --dpop_lambda 2 --lora_r 8)
           PAIRS=(--max_train_docs 40 --samples 1 --max_length 1024)
           EVAL=(--max_eval_docs 20) ;;
  *) echo "PROFILE must be paper or default, not $PROFILE" >&2; exit 2 ;;
esac
DATASETS="${DATASETS:-ncbi_disease bc5cdr}"
OUT="${OUT:-results}/dfpo"
LAUNCH="${LAUNCH:-python}"

for ds in $DATASETS; do
  run="$OUT/$ds"
  $LAUNCH dfpo/finetune.py --one_dataset "$ds" --modelpath "$MODEL" --datapreprocess "${STAGE1[@]}" "${EVAL[@]}" \
    --resume True --output_dir "$run/stage1"
  $LAUNCH dfpo/make_pairs.py --one_dataset "$ds" --init_adapter "$run/stage1" "${PAIRS[@]}" --output_dir "$run/pairs"
  for loss in dpop sigmoid; do  # DPOP, and plain DPO on the same pairs and budget (the ablation)
    $LAUNCH dfpo/prefer_optimize.py --one_dataset "$ds" --modelpath "$MODEL" --init_adapter "$run/stage1" \
      --pairs "$run/pairs/pairs.jsonl" --loss_type "$loss" "${STAGE2[@]}" "${EVAL[@]}" --resume True \
      --output_dir "$run/stage2-$loss"
    $LAUNCH dfpo/finetune.py --one_dataset "$ds" --modelpath "$MODEL" --init_adapter "$run/stage2-$loss" \
      --datapreprocess "${STAGE1[@]}" "${EVAL[@]}" --resume True --output_dir "$run/stage3-$loss"
  done
  $LAUNCH dfpo/compare.py "$run"  # the ablation table and stage 2's log-probabilities, DPOP vs DPO
done
