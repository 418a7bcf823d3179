#!/usr/bin/env bash
# Seed 2 (LLMs in token-level clinical NER): prompting GPT-4 with one token per line in and a `token TAG` line
# per token out (bio format), every type defined in a sentence, 1 to 5 solved examples drawn at random, and
# the RAG variant, examples retrieved by a bge embedding model. Seed 2's corpus, RareDis, ships annotations
# only (its texts are not public), so the default corpus is NCBI-disease, with generative/definitions/.
#
#   bash generative/run_seed2.sh                # PROFILE=default without a GPU: SmolLM2-135M locally, 1 and 3
#                                               # shots, the first 5 test documents (3 sentences each),
#                                               # constrained: a smoke run of every path
#   PROFILE=paper bash generative/run_seed2.sh  # gpt-4 at BASE_URL (default the OpenAI API, key from
#                                               # OPENAI_API_KEY), BAAI/bge-large-en-v1.5, 1-5 shots
#   MODEL=... BASE_URL=... EMBEDDER=... DATASET=... SHOTS=... OUT=... LAUNCH=echo prints the commands
set -euo pipefail
cd "$(dirname "$0")/.."
source ./setup_env.sh

PROFILE="${PROFILE:-$(command -v nvidia-smi >/dev/null 2>&1 && echo paper || echo default)}"
case "$PROFILE" in
  paper)   MODEL="${MODEL:-gpt-4}"; BASE_URL="${BASE_URL:-https://api.openai.com/v1}"
           EMBEDDER="${EMBEDDER:-BAAI/bge-large-en-v1.5}"; SHOTS="${SHOTS:-1 2 3 4 5}"
           SERVING=(--base-url "$BASE_URL" --concurrency 4); CAPS=() ;;
  default) MODEL="${MODEL:-smollm2}"; EMBEDDER="${EMBEDDER:-minilm}"; SHOTS="${SHOTS:-1 3}"
           SERVING=(); CAPS=(--max_eval_docs 5 --max_eval_sentences 3 --constrained True) ;;
  *) echo "PROFILE must be paper or default, not $PROFILE" >&2; exit 2 ;;
esac
DATASET="${DATASET:-ncbi_disease}"
OUT="${OUT:-results}/prompt/seed2-$(basename "$MODEL")/$DATASET"
LAUNCH="${LAUNCH:-python}"
DEFINITIONS="generative/definitions/$DATASET.json"

for selection in random kate; do
  for shots in $SHOTS; do
    $LAUNCH generative/prompt.py --model_name "$MODEL" --dataset_name "$DATASET" --output_format bio \
      --input_style tokens --type_definitions "$DEFINITIONS" --shots "$shots" --example_selection "$selection" \
      --embedding_model_path "$EMBEDDER" "${SERVING[@]}" "${CAPS[@]}" --output_dir "$OUT/$selection-$shots" "$@"
  done
done
