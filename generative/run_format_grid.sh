#!/usr/bin/env bash
# One model, every output format, three ways to use it, each with and without constrained decoding:
#   zero-shot and few-shot prompting (generative/prompt.py, seed 2), and LoRA fine-tuning
#   (decoders/main.py, seeds 0/1/4), scored by eval/semeval and diagnosed by eval/diagnostics (parse
#   rate, hallucination, boundary accuracy, format compliance: seed 1's table, for every format).
#
#   bash generative/run_format_grid.sh                 # PROFILE=default: SmolLM2-135M on CPU, capped (below)
#   PROFILE=paper bash generative/run_format_grid.sh   # Mistral-7B-Instruct-v0.3, full splits (GPU, hub)
#   MODEL=... DATASET=... FORMATS="bio json" SHOTS=3 JOBS=1 OUT=... bash generative/run_format_grid.sh
# Outputs under $OUT/grid/<format>/{zero_shot,few_shot,lora}{,_constrained}/; eval/report.py tabulates them.
# The fine-tuned model is trained once per format (unconstrained, as the gold answers are plain text) and
# decoders/inference.py re-answers the test split with constraints on.
set -euo pipefail
cd "$(dirname "$0")/.."
source ./setup_env.sh

PROFILE="${PROFILE:-$(command -v nvidia-smi >/dev/null 2>&1 && echo paper || echo default)}"
DATASET="${DATASET:-ncbi_disease}"
FORMATS="${FORMATS:-bio json typed typed_short list}"
SHOTS="${SHOTS:-3}"
OUT="${OUT:-results}/grid"
case "$PROFILE" in
  paper)
    MODEL="${MODEL:-mistralai/Mistral-7B-Instruct-v0.3}"
    EVAL_CAPS=()
    JOBS="${JOBS:-1}"
    TRAIN=(--isQLoRA True --lora_r 16 --lora_alpha 32 --learning_rate 2e-4 --num_train_epochs 3
           --per_device_train_batch_size 4 --gradient_accumulation_steps 4 --bf16 True --resume True)
    START_OVER=false ;;
  default)
    # Caps for 2 CPU cores (they go into every metrics.json): prompting and testing on the first 2
    # sentences of the first test abstract; fine-tuning 2 optimizer steps of 2 random sentences from the
    # first 40 training abstracts at lr 5e-4 (random batches, as length grouping starts on the longest
    # one), validated once on the first 2 sentences of 1 dev abstract; one run per core, the fine-tuning
    # ones first. Scores this small show that every path works end to end and what constraints change (parse
    # rate, hallucination), not how good a fine-tuned 135M model gets: raise the caps (or use
    # PROFILE=paper on a GPU) for that.
    MODEL="${MODEL:-smollm2}"
    EVAL_CAPS=(--max_eval_docs 1 --max_eval_sentences 2)
    JOBS="${JOBS:-$(nproc)}"
    TRAIN=(--max_train_docs 40 --max_steps 2 --num_train_epochs 1 --learning_rate 5e-4 --lora_r 16
           --lora_alpha 32 --per_device_train_batch_size 2 --train_sampling_strategy random --max_selection_docs 1
           --generation_batch_size 32)
    START_OVER=true ;;
  *) echo "PROFILE must be paper or default, not $PROFILE" >&2; exit 2 ;;
esac

prompt_run() {  # one prompting run: format, shots, constrained (True/False), output folder
  echo "== $1: $2-shot prompting of $MODEL (constrained=$3)"
  python generative/prompt.py --model_name "$MODEL" --dataset_name "$DATASET" --output_format "$1" \
    --shots "$2" --constrained "$3" --batch_size 32 --cache_dir "$OUT/prompt_cache" "${EVAL_CAPS[@]}" \
    --output_dir "$4"
}

lora_runs() {  # fine-tune once in one format, then answer the test split again with constraints
  local fmt=$1
  echo "== $fmt: LoRA fine-tuning of $MODEL, then the test split again with constraints"
  if $START_OVER; then rm -rf "$OUT/$fmt/lora" "$OUT/$fmt/lora_constrained"; fi  # the paper profile resumes
  python decoders/main.py --model_name "$MODEL" --dataset_name "$DATASET" --output_format "$fmt" \
    "${TRAIN[@]}" "${EVAL_CAPS[@]}" --output_dir "$OUT/$fmt/lora"
  python decoders/inference.py --model_dir "$OUT/$fmt/lora/model" --split test --constrained True \
    "${EVAL_CAPS[@]}" --output_dir "$OUT/$fmt/lora_constrained"
}

# Every run of the grid as "<log name> <command...>", the long fine-tuning ones first, so that the
# short prompting runs fill the cores at the end.
tasks=()
for fmt in $FORMATS; do tasks+=("$fmt/lora lora_runs $fmt"); done
for fmt in $FORMATS; do
  for constrained in False True; do
    suffix=$([ "$constrained" = True ] && echo _constrained || true)
    tasks+=("$fmt/zero_shot$suffix prompt_run $fmt 0 $constrained $OUT/$fmt/zero_shot$suffix"
            "$fmt/few_shot$suffix prompt_run $fmt $SHOTS $constrained $OUT/$fmt/few_shot$suffix")
  done
done

if [ "$JOBS" -eq 1 ]; then
  for task in "${tasks[@]}"; do ${task#* }; done
  exit 0
fi
# $JOBS runs at a time, the cores shared out among them, each run's output in $OUT/<format>/<run>.log.
export OMP_NUM_THREADS=$(( $(nproc) / JOBS > 1 ? $(nproc) / JOBS : 1 ))
echo "== ${#tasks[@]} runs, $JOBS at a time on $OMP_NUM_THREADS thread(s) each, logs in $OUT/<format>/<run>.log"
pids=()
for task in "${tasks[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
  log="$OUT/${task%% *}.log"
  mkdir -p "$(dirname "$log")"
  ${task#* } > "$log" 2>&1 &
  pids+=($!)
done
for i in "${!tasks[@]}"; do
  log="$OUT/${tasks[$i]%% *}.log"
  if ! wait "${pids[$i]}"; then
    echo "error: ${tasks[$i]#* } failed; the end of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  grep -E "^(==|test:|dev:|  (dev|test):|strict P)" "$log" || true
done
