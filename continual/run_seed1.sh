#!/usr/bin/env bash
# Seed 1 in small: continual causal-LM pre-training of a decoder on domain text, then token
# classification (LoRA, seed 1's settings) from the continued model and from the original one, on
# the default corpora's test sets; continual/compare.py puts the two side by side.
#   bash continual/run_seed1.sh                 # PROFILE=default: SmolLM2-135M on 2 CPU cores, capped (below)
#   PROFILE=paper bash continual/run_seed1.sh   # seed 1's setting: Llama-2-7B, FSDP, on GPUs with hub access
# Outputs under $OUT/continual: pretrain/<model>/ (checkpoint, metrics.json, loss.png),
# {with,without}_continual/<dataset>/ (encoders/main.py outputs), comparison.json. The default profile
# starts over each time (it removes those folders first); the paper profile resumes an interrupted run.
set -euo pipefail
cd "$(dirname "$0")/.."
source ./setup_env.sh

DATASETS="${DATASETS:-ncbi_disease bc5cdr}"
OUT="${OUT:-results}/continual"
# Seed 1's token classification: LoRA r=12, alpha=32, dropout 0.1, lr 1e-4, 2 epochs, on every linear
# layer of the decoder (named: peft's "all-linear" would also wrap the new classification head).
TAGGER=(--lora True --lora_r 12 --lora_alpha 32 --lora_dropout 0.1 --learning_rate 1e-4 --num_train_epochs 2
        --lora_target_modules q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)

case "${PROFILE:-default}" in
  default)
    # Caps that keep the whole launcher under ~8 minutes on 2 idle CPU cores (recorded in metrics.json and
    # comparison.json): continual pre-training on the first 2,048 tokens of the shuffled training texts
    # (2 epochs of 256-token windows), validated on 1,024 dev tokens; each tagger trains on the first 4
    # training documents and is scored on the first 4 dev and test documents. The F1 of so small a run
    # shows that the pipeline works, not which variant is better.
    MODEL="${MODEL:-smollm2}"
    PRETRAIN=(python continual/main.py --block_size 256 --overlap 32 --batch_size 1
              --max_train_tokens 2048 --max_eval_tokens 1024 --save_steps 0 --logging_steps 2)
    CAPS=(max_train_docs=4 max_eval_docs=4)
    TAGGER+=(--batch_size 4 --max_train_docs 4 --max_eval_docs 4)
    SIDE_BY_SIDE=true  # the two taggers of a dataset at once, a core each (more work done than one by one)
    rm -rf "$OUT/pretrain/$(basename "$MODEL")" "$OUT/with_continual" "$OUT/without_continual" ;;
  paper)
    # Seed 1: Llama-2-7B full-parameter, lr 2e-5, 2 epochs, 8000-token windows (FSDP over the GPUs of
    # continual/accelerate/fsdp.yaml); tagger batch 8 x accumulation 2. No caps.
    MODEL="${MODEL:-meta-llama/Llama-2-7b-hf}"
    PRETRAIN=(accelerate launch --config_file continual/accelerate/fsdp.yaml continual/main.py
              --block_size 8000 --overlap 512 --batch_size 1 --gradient_accumulation_steps 8
              --save_steps 200 --eval_steps 200 --resume True)
    CAPS=()
    TAGGER+=(--batch_size 8 --gradient_accumulation_steps 2 --bf16 True --resume True)
    SIDE_BY_SIDE=false ;;
  *) echo "unknown PROFILE=$PROFILE (default or paper)" >&2; exit 2 ;;
esac

PRETRAINED="$OUT/pretrain/$(basename "$MODEL")"
echo "== continual pre-training of $MODEL (lr 2e-5, 2 epochs) on the training texts of $DATASETS"
"${PRETRAIN[@]}" --model_name "$MODEL" --datasets $DATASETS --output_dir "$PRETRAINED" \
  --learning_rate 2e-5 --num_train_epochs 2

tagger() {  # tagger BACKBONE DATASET OUTPUT_DIR
  python encoders/main.py --model_name "$1" --dataset_name "$2" --output_dir "$3" "${TAGGER[@]}"
}
for ds in $DATASETS; do
  if $SIDE_BY_SIDE; then
    echo "== token classification on $ds: from the continued model and from the original $MODEL, side by side," \
         "a core each (logs: $OUT/{with,without}_continual/$ds.log)"
    mkdir -p "$OUT/with_continual" "$OUT/without_continual"
    OMP_NUM_THREADS=1 tagger "$PRETRAINED" "$ds" "$OUT/with_continual/$ds" > "$OUT/with_continual/$ds.log" 2>&1 &
    with=$!
    OMP_NUM_THREADS=1 tagger "$MODEL" "$ds" "$OUT/without_continual/$ds" > "$OUT/without_continual/$ds.log" 2>&1 &
    without=$!
    for side in with without; do
      pid=$([ $side = with ] && echo $with || echo $without)
      if ! wait "$pid"; then
        echo "error: the tagger ${side} continual pre-training failed; the end of its log:" >&2
        tail -n 30 "$OUT/${side}_continual/$ds.log" >&2
        exit 1
      fi
      echo "-- $side continual pre-training:"; grep -E "^(train|dev|test)[: ]|  (dev|test): strict" "$OUT/${side}_continual/$ds.log" || true
    done
  else
    echo "== token classification on $ds: from the continued model, then from the original $MODEL"
    tagger "$PRETRAINED" "$ds" "$OUT/with_continual/$ds"
    tagger "$MODEL" "$ds" "$OUT/without_continual/$ds"
  fi
done

echo "== with vs without continual pre-training"
python continual/compare.py --pretrain_dir "$PRETRAINED" --with_dir "$OUT/with_continual" \
  --without_dir "$OUT/without_continual" --datasets $DATASETS --caps "${CAPS[@]}"
