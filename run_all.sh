#!/usr/bin/env bash
# The whole pipeline: set up .venv, fetch the corpora, run the stages of a profile, and collect every score
# into OUT/RESULTS.md, which opens with the answer to "encoder or LLM?".
#   bash run_all.sh                    # PROFILE=default (profiles/default.sh): the answer in small, on a CPU
#   PROFILE=paper bash run_all.sh      # profiles/paper.sh: the papers' models and settings (GPU, hub access)
#   OUT=results DATASETS="ncbi_disease bc5cdr" DRY_RUN=1 bash run_all.sh   # DRY_RUN: print the commands only
# Corpora come from NER_MIRROR (default ../shared/datasets when present) or their original repositories.
# Each stage starts its runs afresh; its time is printed against the profile's budget and kept in
# OUT/stage_times.tsv for the report.
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

stage_dictionary() {  # on both samples: it costs seconds
  for ds in $ANSWER_DATASETS; do
    run python dictionary/main.py --dataset_name "$ds" --eval_splits test $(cap "${TEST_DOCS[$ds]}") \
      --output_dir "$(fresh "$ANSWER/$ds/dictionary")"
    run python dictionary/main.py --dataset_name "$ds" --eval_splits test $(cap "${LLM_TEST_DOCS[$ds]}") \
      --output_dir "$(fresh "$ANSWER/$ds/dictionary_llm_sample")"
  done
}

stage_encoder() {  # trained once, scored on the large sample, then on the LLMs' sample
  for ds in $ANSWER_DATASETS; do
    run python encoders/main.py --dataset_name "$ds" "${ENCODER_ARGS[@]}" $(cap "${TEST_DOCS[$ds]}") \
      --output_dir "$(fresh "$ANSWER/$ds/encoder")"
    local sample
    sample="$(fresh "$ANSWER/$ds/encoder_llm_sample")"
    run python encoders/inference.py --model_dir "$ANSWER/$ds/encoder/model" --dataset_name "$ds" --split test \
      $(cap "${LLM_TEST_DOCS[$ds]}") --bf16 "$BF16" --output "$sample/test.predictions.jsonl" \
      --metrics "$sample/metrics.json"
  done
}

stage_llm_lora() {
  for ds in $ANSWER_DATASETS; do
    run python decoders/main.py --dataset_name "$ds" "${LLM_LORA_ARGS[@]}" $(cap "${LLM_TEST_DOCS[$ds]}") \
      --eval_splits test --output_dir "$(fresh "$ANSWER/$ds/llm_lora")"
  done
}

stage_llm_prompting() {
  for ds in $ANSWER_DATASETS; do
    for shots in 0 "$SHOTS"; do
      run python generative/prompt.py --dataset_name "$ds" "${PROMPT_ARGS[@]}" --shots "$shots" \
        $(cap "${LLM_TEST_DOCS[$ds]}") --cache_dir "$OUT/prompt_cache" \
        --output_dir "$(fresh "$ANSWER/$ds/llm_${shots}_shot")"
    done
  done
}

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
