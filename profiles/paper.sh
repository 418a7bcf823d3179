# The paper profile of run_all.sh (PROFILE=paper bash run_all.sh): the same answer table with seed 0's models
# at full size, on whole splits, then every paper's launcher in its own PROFILE=paper settings. It needs a
# GPU (about 24 GB for Mistral-7B in 4 bits) and the Hugging Face Hub; the budgets are hours on one H100-class
# GPU, estimated, not measured (this project's machines have no GPU).

ANSWER_DATASETS="ncbi_disease_iob bc5cdr"
declare -A TEST_DOCS=([ncbi_disease_iob]="" [bc5cdr]="")       # whole test splits
declare -A LLM_TEST_DOCS=([ncbi_disease_iob]="" [bc5cdr]="")

BF16=True
JOBS="${JOBS:-1}"  # one GPU: one run at a time

# Seed 0: bert-large-uncased, lr 2e-5, batch 8, up to 20 epochs with early stopping on validation strict F1.
ENCODER_ARGS=(--model_name google-bert/bert-large-uncased --learning_rate 2e-5 --batch_size 8
              --num_train_epochs 20 --patience 3 --seed 42 --bf16 True)

# Seed 0's decoder, Mistral-7B-Instruct-v0.3 with QLoRA, in the same answer format as the prompted runs.
SHOTS=3
LLM_LORA_ARGS=(--model_name mistralai/Mistral-7B-Instruct-v0.3 --output_format typed_short --isQLoRA True
               --lora_r 128 --lora_alpha 256 --lora_dropout 0.05 --learning_rate 4e-5
               --per_device_train_batch_size 4 --gradient_accumulation_steps 4 --num_train_epochs 20 --patience 3
               --optim paged_adamw_8bit --activation_checkpointing True --generation_batch_size 16 --seed 42
               --bf16 True)
PROMPT_ARGS=(--model_name mistralai/Mistral-7B-Instruct-v0.3 --output_format typed_short --batch_size 16 --seed 42)

# Every paper's launcher, each on its own paper's corpora and settings, writing under OUT/papers/.
PAPER_LAUNCHERS="encoders/run_seed0.sh decoders/run_seed0.sh encoders/run_seed1.sh continual/run_seed1.sh
                 generative/run_seed1.sh encoders/run_seed2.sh generative/run_seed2.sh rag_icl/run_seed3.sh
                 dfpo/run_seed3.sh decoders/run_seed4.sh generative/run_format_grid.sh"

declare -A BUDGET=([setup]=600 [data]=120 [dictionary]=60 [encoder]=7200 [llm_lora]=36000 [llm_prompting]=7200
                   [retrieval]=600 [papers]=172800 [report]=60)
STAGES="setup data dictionary encoder llm_lora llm_prompting retrieval papers report"
