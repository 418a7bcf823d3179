# The default profile of run_all.sh: the few numbers that answer "encoder or LLM?" on a CPU, each with its
# 95 % bootstrap interval, in under 30 minutes on 2 cores. Methods are compared on fixed test samples
# (below); the settings reach each run's metrics.json through its own flags.
#
# Left out here (they run in tests/ and in PROFILE=paper): continual pre-training, the format grid, seed 3's
# RAG-ICL prompting and DFPO, and the speed benches. At the sizes this CPU allows in 30 minutes their
# intervals are wider than the effects they show (format grid: 2 test sentences; continual: taggers trained
# on 4 documents; DFPO: 20 test documents, its stages 0.1 to 2.2 points apart with sampled runs' sd 5-6).

# NCBI-disease as its published numbers score it (one Disease type; the MTL IOB release, a document per
# sentence) and BC5CDR (chemicals and diseases, PubTator abstracts).
ANSWER_DATASETS="ncbi_disease_iob bc5cdr"
# Two fixed test samples per corpus, the first N documents of its test split (empty: all of it):
# - TEST_DOCS, for the gazetteer and the encoder: large enough that the encoder's interval is +-3 points or
#   less. NCBI: the whole test split, 940 sentences (960 mentions; encoder 79.1-84.0, gazetteer 62.6-69.1);
#   BC5CDR: 100 of 500 abstracts (1,955 mentions; encoder 80.3-85.8, gazetteer 67.3-75.0). The gazetteer's
#   interval is wider (+-3.2 and +-3.9); on BC5CDR it reaches +-3.0 at 200 abstracts.
# - LLM_TEST_DOCS, for every method, the LLMs included: what SmolLM2 can answer three times over (zero-shot,
#   few-shot, LoRA-tuned) within the budget, 0.1 to 1 s per sentence here. The gazetteer and the encoder
#   are scored on it too, so each of its rows compares methods on the same documents.
declare -A TEST_DOCS=([ncbi_disease_iob]="" [bc5cdr]=100)
declare -A LLM_TEST_DOCS=([ncbi_disease_iob]=200 [bc5cdr]=20)

# Corpora trained and scored side by side, the cores shared out: on 2 cores, 2 one-thread runs finish sooner
# than the same runs one after the other on 2 threads (tokenising, decoding and Python fill the gaps).
JOBS="${JOBS:-2}"

# bf16 where it is native (AVX-512 bf16 / AMX CPUs, CUDA): the encoder trains about 2x faster here.
BF16="$(python -c 'from eval.runs import bf16_is_fast; print(bf16_is_fast())')"

# The encoder: the bundled MiniLM (all-MiniLM-L6-v2) on every training document, validated on the dev
# split's first N documents (as many as the test sample), the best of 3 epochs kept.
ENCODER_ARGS=(--model_name minilm --learning_rate 1e-4 --batch_size 16 --num_train_epochs 3 --seed 42
              --bf16 "$BF16")

# The LLM: the bundled SmolLM2-135M-Instruct writing a `TYPE: mention, mention` line for every type per
# sentence (typed), prompted zero-shot and with SHOTS random training examples (the full instruction: types,
# format, an example), and LoRA-tuned on 320 training sentences (40 steps of 8, lr 1e-3) with the brief
# instruction (types only: prompts 3.5x shorter, so 3.5x the training sentences in the same time).
# Measured on the LLM samples (strict F1, 40 steps unless said): typed_short, which writes nothing for a
# sentence without mentions, learnt to write nothing on NCBI (1.5; 4.3 after 100 steps), where most sentences
# have none; typed, whose answer always starts with the type, 54.6 there. BC5CDR: typed 54.0, typed_short
# 37.1 (173 s), typed_short with the full instruction 38.1 after 20 steps (271 s).
SHOTS=3
LLM_LORA_ARGS=(--model_name smollm2 --output_format typed --instruction brief --lora_r 16 --lora_alpha 32
               --learning_rate 1e-3 --num_train_epochs 1 --max_steps 40 --per_device_train_batch_size 8
               --max_selection_docs 2 --generation_batch_size 32 --seed 42 --bf16 "$BF16")
PROMPT_ARGS=(--model_name smollm2 --output_format typed --batch_size 32 --seed 42)

# Stage budgets in seconds on this machine (2 cores, fresh clone); run_all prints each stage's time
# against its budget and eval/report.py puts both into RESULTS.md.
declare -A BUDGET=([setup]=150 [data]=60 [dictionary]=30 [encoder]=600 [llm_lora]=420 [llm_prompting]=480
                   [retrieval]=100 [report]=20)
STAGES="setup data dictionary encoder llm_lora llm_prompting retrieval report"
