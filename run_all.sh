#!/usr/bin/env bash
# The whole pipeline: set up .venv, fetch the corpora, run the stages of a profile, and collect every score
# into OUT/RESULTS.md, which opens with the answer to "encoder or LLM?".
#   bash run_all.sh                    # PROFILE=default (profiles/default.sh): the answer in small, on a CPU
#   PROFILE=paper bash run_all.sh      # profiles/paper.sh: the papers' models and settings (GPU, hub access)
#   OUT=results DATASETS="ncbi_disease bc5cdr" DRY_RUN=1 bash run_all.sh   # DRY_RUN: print the commands only
# Corpora come from NER_MIRROR (default ../shared/datasets when present) or their original repositories.
# Each stage starts its runs afresh, the answer corpora side by side (JOBS of them, the profile's default;
# their logs in OUT/logs/); its time is printed against the profile's budget and kept in OUT/stage_times.tsv
# for the report.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS=0
source ./setup_env.sh

PROFILE="${PROFILE:-default}"
[ -f "profiles/$PROFILE.sh" ] || { echo "error: no profile profiles/$PROFILE.sh" >&2; exit 2; }
source "profiles/$PROFILE.sh"
DATASETS="${DATASETS:-ncbi_disease bc5cdr}"   # the corpora of the retrieval bench and the statistics
OUT="${OUT:-results}"
ANSWER="$OUT/answer"                          # eval/report.py reads the answer table from here
mkdir -p "$OUT"

run() {  # a command, echoed (shell-quoted); DRY_RUN=1 only echoes it
  echo "+ $(printf '%q ' "$@")"
  [ -n "${DRY_RUN:-}" ] || "$@"
}

fresh() {  # a run's output folder, emptied: a stage's numbers come from this run only
  [ -n "${DRY_RUN:-}" ] || rm -rf "$1"
  echo "$1"
}

cap() {  # a sample size as a flag (nothing: the whole split)
  [ -z "$1" ] || echo "--max_eval_docs $1"
}

stage_data() {
  local corpora
  corpora="$(printf '%s\n' $DATASETS $ANSWER_DATASETS | awk '!seen[$0]++' | xargs)"
  run python data/download.py $corpora ${NER_MIRROR:+--mirror "$NER_MIRROR"}
  echo "+ python data/stats.py $corpora > $OUT/stats.md"
  [ -n "${DRY_RUN:-}" ] || python data/stats.py $corpora > "$OUT/stats.md"
}

per_corpus() {  # STAGE: STAGE_for DATASET for every answer corpus, JOBS side by side (a share of the cores each)
  local fn="$1_for" ds i
  if [ "$JOBS" -le 1 ] || [ -n "${DRY_RUN:-}" ]; then
    for ds in $ANSWER_DATASETS; do "$fn" "$ds"; done
    return
  fi
  local pids=() logs=() threads=$(( $(nproc) / JOBS > 1 ? $(nproc) / JOBS : 1 ))
  mkdir -p "$OUT/logs"
  for ds in $ANSWER_DATASETS; do
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
    logs+=("$OUT/logs/$1.$ds.log")
    echo "   $ds: log in ${logs[-1]} ($threads thread(s))"
    OMP_NUM_THREADS=$threads "$fn" "$ds" > "${logs[-1]}" 2>&1 &
    pids+=($!)
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      echo "error: stage $1 failed; the end of ${logs[$i]}:" >&2
      tail -n 30 "${logs[$i]}" >&2
      exit 1
    fi
    grep -E "^\+ |^  (dev|test): " "${logs[$i]}" || true  # its commands and score lines
  done
}

dictionary_for() {  # on both samples: it costs seconds
  run python dictionary/main.py --dataset_name "$1" --eval_splits test $(cap "${TEST_DOCS[$1]}") \
    --output_dir "$(fresh "$ANSWER/$1/dictionary")"
  run python dictionary/main.py --dataset_name "$1" --eval_splits test $(cap "${LLM_TEST_DOCS[$1]}") \
    --output_dir "$(fresh "$ANSWER/$1/dictionary_llm_sample")"
}

encoder_for() {  # trained once, scored on the large sample, then on the LLMs' sample
  run python encoders/main.py --dataset_name "$1" "${ENCODER_ARGS[@]}" $(cap "${TEST_DOCS[$1]}") \
    --output_dir "$(fresh "$ANSWER/$1/encoder")"
  local sample
  sample="$(fresh "$ANSWER/$1/encoder_llm_sample")"
  run python encoders/inference.py --model_dir "$ANSWER/$1/encoder/model" --dataset_name "$1" --split test \
    $(cap "${LLM_TEST_DOCS[$1]}") --bf16 "$BF16" --output "$sample/test.predictions.jsonl" \
    --metrics "$sample/metrics.json"
}

llm_lora_for() {
  run python decoders/main.py --dataset_name "$1" "${LLM_LORA_ARGS[@]}" $(cap "${LLM_TEST_DOCS[$1]}") \
    --eval_splits test --output_dir "$(fresh "$ANSWER/$1/llm_lora")"
}

llm_prompting_for() {
  local shots
  for shots in 0 "$SHOTS"; do
    run python generative/prompt.py --dataset_name "$1" "${PROMPT_ARGS[@]}" --shots "$shots" \
      $(cap "${LLM_TEST_DOCS[$1]}") --cache_dir "$OUT/prompt_cache" \
      --output_dir "$(fresh "$ANSWER/$1/llm_${shots}_shot")"
  done
}

stage_dictionary() { per_corpus dictionary; }
stage_encoder() { per_corpus encoder; }
stage_llm_lora() { per_corpus llm_lora; }
stage_llm_prompting() { per_corpus llm_prompting; }

stage_retrieval() {
  run python bench/retrieval.py --parts quality --datasets $DATASETS --json "$OUT/bench/retrieval.json"
}

stage_papers() {  # every paper's launcher in its own PROFILE=paper settings and corpora (profiles/paper.sh)
  for launcher in $PAPER_LAUNCHERS; do
    echo "+ PROFILE=paper OUT=$OUT/papers bash $launcher"
    [ -n "${DRY_RUN:-}" ] || PROFILE=paper OUT="$OUT/papers" bash "$launcher"
  done
}

stage_report() {
  echo "+ python eval/report.py $OUT > $OUT/RESULTS.md"
  [ -n "${DRY_RUN:-}" ] || python eval/report.py "$OUT" > "$OUT/RESULTS.md"
}

record() {  # stage, seconds: printed against the budget and kept for the report
  echo "== $1: $2 s (budget ${BUDGET[$1]} s)"
  [ -n "${DRY_RUN:-}" ] || printf '%s\t%s\t%s\n' "$1" "$2" "${BUDGET[$1]}" >> "$OUT/stage_times.tsv"
}

[ -n "${DRY_RUN:-}" ] || : > "$OUT/stage_times.tsv"
for name in $STAGES; do
  [ -n "${BUDGET[$name]:-}" ] || { echo "error: profiles/$PROFILE.sh gives stage $name no budget" >&2; exit 2; }
  if [ "$name" = setup ]; then record setup "$SECONDS"; continue; fi
  echo "== $name"
  start=$SECONDS
  "stage_$name"
  record "$name" $((SECONDS - start))
done
echo "== total: $SECONDS s"
[ -n "${DRY_RUN:-}" ] || cat "$OUT/RESULTS.md"
