"""Fine-tune a generating LM with LoRA to write the entities of each unit in an output format, select the
best epoch on the validation split, then generate, parse and score the validation and test splits
(seed 0's decoder; seed 4's instruction tuning; generative/main.py runs seed 1 through this script).

    python decoders/main.py --dataset_name ncbi_disease --output_dir results/decoders/bio/ncbi_disease
    python decoders/main.py --model_name mistralai/Mistral-7B-Instruct-v0.3 --isQLoRA True --output_format bio ...
    python decoders/main.py --model_name minilm2minilm --output_format typed ...      # an encoder-decoder
    python decoders/main.py ... --constrained True        # answers that always parse (data/llm/constraints.py)

The command line is three dataclasses, as trl's own scripts parse it: this script's ScriptArguments, trl's
SFTConfig (every TrainingArguments / SFTConfig option is a flag: --learning_rate, --optim, --bf16, ...) and
trl's ModelConfig (--model_name_or_path, --lora_r, --lora_target_modules, --load_in_4bit, ...), with this
script's defaults and the seeds' names kept as aliases (--model_name, --isQLoRA, --warmup_ratio).

The prompt is data/llm/prompts.prompt(instruction(types, format), unit text), the instruction in full (types,
format and an example) or, with --instruction brief, the types only; the target is the unit's
gold answer in --output_format (data/llm/formats), followed by EOS. Units are sentences, or with --level
document documents cut into windows of at most --max_sentences sentences (data/llm/units.py).

Causal LMs train with trl's SFTTrainer on prompt-completion pairs: loss on the answer tokens only
(completion_only_loss), padding masked, no packing or padding-free batches. Encoder-decoders (T5 family;
'minilm2minilm' here) train with transformers' Trainer, the prompt as encoder input and the answer as
labels (SFTTrainer has no seq2seq path). Both with peft LoRA (trl's get_peft_config); --isQLoRA True loads
the base weights in 4 bits (trl's get_quantization_config: bitsandbytes NF4, double quantisation). trl 1.16
computes the loss from lm_head.weight directly and refuses a LoRA adapter on lm_head: train it in full
with --lora_modules_to_save lm_head instead.

Model selection: after every epoch the model answers the validation units (greedy; the first
--max_selection_docs documents), scored with eval/semeval's strict F1 on the documents; the best epoch's
adapter is kept and training stops after --patience epochs without a better one. The test split is
generated once, at the end, with the selected adapter. --resume True continues from the last complete
checkpoint; generation resumes too (each split's outputs file keeps the units already answered, and is
refused if they were made with other settings).

Writes to --output_dir: `model/` (LoRA adapter, tokenizer, generation.json for decoders/inference.py),
`checkpoint-N/`, `selection/step-N.json` (the validation answers of the selection at step N),
`{dev,test}.outputs.jsonl` (raw answer per unit), `{dev,test}.predictions.jsonl`
(document-level character spans), `training.png` and `metrics.json` ({"method", "model", "dataset",
"format", "level", "constrained", "dev", "test": eval/semeval JSON, "diagnostics": {split: eval/diagnostics
per unit}, epochs, caps, generation budgets and times}).
"""
from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from datasets import Dataset
from peft import get_peft_model, prepare_model_for_kbit_training
from transformers import DataCollatorForSeq2Seq, EarlyStoppingCallback, Trainer, set_seed
from trl import ModelConfig, SFTConfig, SFTTrainer, get_peft_config, get_quantization_config

from data import registry
from data.corpus import Document, exit_on_format_error, nests, parse_dataclasses, write_jsonl
from data.llm.formats import FORMATS, get_format
from data.llm.generation import PredictionStore, answer_end_id, is_encoder_decoder, load_model, load_tokenizer
from data.llm.prompts import INSTRUCTIONS
from data.llm.units import LEVELS, BudgetRule, Unit, UnitSplit, make_units
from data.text import first_sentences
from eval.answers import score_answers
from eval.runs import (HardwareDefaults, claim_output_dir, epochs_summary, plot_training, print_scores,
                       resume_point, run_settings, timing, write_json, write_metrics)

EVAL_SPLITS = ("dev", "test")
SELECTION = "selection"  # in output_dir: the selection units' answers at each evaluation


@dataclass
class ScriptArguments:
    dataset_name: str = field(metadata={"help": f"a registry name ({', '.join(registry.DATASETS)}), or the name "
                                                "to report for --datasets_path"})
    datasets_path: Path | None = field(default=None, metadata={"help": "folder with train/dev/test.jsonl in the "
                                                                       "corpus format, instead of the registry"})
    output_format: str = field(default="bio", metadata={"choices": tuple(FORMATS), "help": "data/llm/formats"})
    level: str = field(default="sentence", metadata={"choices": LEVELS, "help": "unit of a prompt"})
    max_sentences: int = field(default=10, metadata={"help": "--level document: sentences per window"})
    instruction: str = field(default="full", metadata={
        "choices": INSTRUCTIONS, "help": "full: types, format and an example; brief: the types only (the "
                                         "format is learned from the targets; prompts about 3x shorter)"})
    method: str = field(default="decoder", metadata={"help": "the method's name in metrics.json"})
    patience: int = field(default=3, metadata={"help": "epochs without a better validation strict F1 before stopping"})
    generation_batch_size: int = 8
    max_new_tokens: int | None = field(default=None, metadata={
        "help": "answer budget in tokens (default, per unit: data/llm/units.BudgetRule, 1.2 x the longest gold "
                "answer of the training split and the split generated, and at most 1.2 x the unit's length times "
                "the largest answer/input length ratio of the training units)"})
    constrained: bool = field(default=False, metadata={"help": "constrained decoding (data/llm/constraints.py)"})
    max_train_docs: int | None = field(default=None, metadata={"help": "use only the first N training documents"})
    max_eval_docs: int | None = field(default=None, metadata={"help": "use only the first N dev and test documents"})
    max_eval_sentences: int | None = field(default=None, metadata={
        "help": "cut each evaluated document after its first N sentences (data.text.first_sentences)"})
    max_selection_docs: int | None = field(default=None, metadata={
        "help": "model selection generates on the first N dev documents (default: all of --max_eval_docs)"})
    resume: bool = field(default=False, metadata={"help": "continue from the last complete checkpoint in output_dir"})
    overwrite: bool = field(default=False, metadata={
        "help": "replace a finished run in output_dir (its metrics.json and checkpoints)"})
    eval_splits: list[str] = field(default_factory=lambda: list(EVAL_SPLITS), metadata={"choices": EVAL_SPLITS,
        "help": "the splits generated and scored after training (model selection still reads dev)"})


@dataclass
class DecoderSFTConfig(HardwareDefaults, SFTConfig):
    """trl's SFTConfig with this script's defaults: selection on validation strict F1 after every epoch,
    loss on the answer only, no packing, no cut (max_length None), fp32 and no activation checkpointing
    unless asked (trl defaults to bf16 and activation checkpointing)."""

    num_train_epochs: float = 3
    learning_rate: float = 2e-4
    per_device_train_batch_size: int = 4
    optim: str = field(default="adamw_torch", metadata={"help": "e.g. paged_adamw_8bit (seed 0, GPUs)"})
    warmup_steps: float = field(default=0.03, metadata={
        "aliases": ["--warmup_ratio"], "help": "warm-up steps, or below 1 a share of all steps"})
    weight_decay: float = 0.0
    train_sampling_strategy: str = field(default="group_by_length", metadata={
        "choices": ("group_by_length", "random"),
        "help": "transformers' batch order: similar lengths together (little padding, the longest batch first) "
                "or random"})
    eval_strategy: str = "epoch"
    save_strategy: str = "epoch"
    load_best_model_at_end: bool = True
    metric_for_best_model: str = "strict_f1"
    greater_is_better: bool = True
    save_total_limit: int = 2
    restore_callback_states_from_checkpoint: bool = True
    bf16: bool = field(default=False, metadata={"help": "bfloat16 mixed precision (GPUs, recent CPUs)"})
    gradient_checkpointing: bool | None = field(default=None, metadata={
        "help": "deprecated name of --activation_checkpointing (trl turns it on by default; this script does not)"})
    report_to: str = "none"
    completion_only_loss: bool = True
    max_length: int | None = field(default=None, metadata={
        "help": "causal LMs: cut training sequences (prompt + answer) to this many tokens; the number cut is "
                "reported (default: no cut)"})


@dataclass
class DecoderModelConfig(ModelConfig):
    """trl's ModelConfig with this script's defaults (LoRA on every linear layer, seed 0's double
    quantisation) and the seeds' names; comma-separated module lists are read too."""

    model_name_or_path: str = field(default="smollm2", metadata={
        "aliases": ["--model_name"], "help": "hub id or local path of a causal LM or an encoder-decoder; 'smollm2' "
                                             "and 'minilm2minilm' are the bundled offline checkpoints"})
    dtype: str | None = field(default=None, metadata={
        "choices": ["auto", "bfloat16", "float16", "float32"], "help": "weights' dtype (default: bfloat16 on a GPU, "
                                                                         "float32 on a CPU)"})
    use_peft: bool = field(default=True, metadata={"help": "LoRA (peft); this script trains adapters only"})
    lora_target_modules: list[str] | None = field(default_factory=lambda: ["all-linear"], metadata={
        "help": "module names (space- or comma-separated), or all-linear"})
    load_in_4bit: bool = field(default=False, metadata={
        "aliases": ["--isQLoRA"], "help": "4-bit NF4 base weights (bitsandbytes) under the LoRA (QLoRA)"})
    use_bnb_nested_quant: bool = field(default=True, metadata={"help": "double quantisation (seed 0)"})

    def __post_init__(self):
        self.lora_target_modules = comma_list(self.lora_target_modules)
        self.lora_modules_to_save = comma_list(self.lora_modules_to_save)
        super().__post_init__()
        if not self.use_peft:
            raise ValueError("decoders/main.py trains LoRA adapters: --use_peft False is not supported")


def comma_list(values: list[str] | str | None) -> list[str] | str | None:
    """["q_proj,v_proj"] or ["q_proj", "v_proj"] -> ["q_proj", "v_proj"]; "all-linear" stays a string."""
    if values is None:
        return None
    names = [n for v in ([values] if isinstance(values, str) else values) for n in v.split(",") if n]
    return names[0] if names == ["all-linear"] else names


def selection_answers(out: str | Path, step: int) -> Path:
    """Where the selection units' answers at a step's evaluation are kept: on disk, written before that
    step's checkpoint, so that a run killed and resumed after it reuses them (reuse_selection_answers) as
    the uninterrupted run does."""
    return Path(out) / SELECTION / f"step-{step}.json"


class SelectOnValidation:
    """Trainer mixin: an evaluation generates answers for the selection units and scores them on the
    documents, so that Trainer's best-checkpoint tracking and early stopping work on strict F1. The
    eval_dataset Trainer asks for is never read."""

    def __init__(self, *args, selection: UnitSplit, constrained: bool, generation_batch_size: int, **kwargs):
        self.selection, self.constrained, self.generation_batch_size = selection, constrained, generation_batch_size
        super().__init__(*args, **kwargs)

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        started = time.time()
        answers = self.selection.generate(self.model, self.processing_class, self.generation_batch_size,
                                          self.constrained)
        if self.is_world_process_zero():
            write_json(selection_answers(self.args.output_dir, self.state.global_step), answers)
        scored = score_answers(self.selection, answers)
        scores = {**scored.strict(), "parse_rate": scored.diagnostics["parse_rate"] or 0.0}
        metrics = {f"{metric_key_prefix}_{k}": v for k, v in scores.items()}
        metrics[f"{metric_key_prefix}_runtime"] = round(time.time() - started, 1)
        self.model.eval()  # SFTTrainer.log files metrics under the mode the model is in (training resumes it)
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics


class CausalSFTTrainer(SelectOnValidation, SFTTrainer):
    """The causal-LM path: trl's SFTTrainer on prompt-completion pairs, selected on validation strict F1."""


class Seq2SeqLoRATrainer(SelectOnValidation, Trainer):
    """The encoder-decoder path: the same selection, transformers' Trainer."""


def seq2seq_examples(units: list[Unit], tokenizer) -> list[dict]:
    """Encoder input = the prompt; labels = the answer and its end id (no start token: the decoder starts
    from decoder_start_token_id)."""
    end = answer_end_id(tokenizer)
    return [{"input_ids": tokenizer(u.source).input_ids,
             "labels": tokenizer(u.output, add_special_tokens=False).input_ids + [end]} for u in units]


def count_cut(units: list[Unit], tokenizer, max_length: int | None) -> int:
    """Training units longer than max_length tokens (prompt + answer + EOS), which get cut."""
    if max_length is None:
        return 0
    return sum(len(tokenizer(u.source + u.output).input_ids) + 1 > max_length for u in units)


def cut_split(name: str, docs: list[Document], types, fmt, script: ScriptArguments, tokenizer, rule: BudgetRule,
              changes: Counter | None = None) -> UnitSplit:
    """An evaluated split cut into units without looking at the gold, with its answer budgets."""
    units = make_units(docs, types, fmt, script.level, max_sentences=script.max_sentences, respect_entities=False,
                       changes=changes, instruction_style=script.instruction)
    return UnitSplit(name, docs, units, fmt, types, rule.budgets(tokenizer, units, script.max_new_tokens))


def build_trainer(script: ScriptArguments, config: DecoderSFTConfig, model_config: DecoderModelConfig, tokenizer,
                  train: list[Unit], selection: UnitSplit):
    """The model with its LoRA config and the trainer for the model's kind, selecting on `selection`."""
    set_seed(config.seed)  # LoRA's initial weights
    encoder_decoder = is_encoder_decoder(model_config.model_name_or_path)
    if encoder_decoder and config.max_length:
        raise SystemExit("error: --max_length cuts causal training sequences; encoder-decoders are not cut")
    model = load_model(model_config.model_name_or_path, get_quantization_config(model_config),
                       getattr(torch, model_config.dtype) if model_config.dtype not in (None, "auto") else None)
    if model_config.load_in_4bit:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=config.activation_checkpointing)
    print(f"train: {len(train):,} units ({count_cut(train, tokenizer, config.max_length):,} longer than "
          f"--max_length, cut); model selection on {len(selection.docs):,} dev documents, "
          f"{len(selection.units):,} units")
    common = dict(args=config, processing_class=tokenizer, callbacks=[EarlyStoppingCallback(script.patience)],
                  selection=selection, constrained=script.constrained,
                  generation_batch_size=script.generation_batch_size)
    if encoder_decoder:
        model = get_peft_model(model, get_peft_config(replace(model_config, lora_task_type="SEQ_2_SEQ_LM")))
        train_set, dev_set = (Dataset.from_list(seq2seq_examples(u, tokenizer)) for u in (train, selection.units))
        return Seq2SeqLoRATrainer(model=model, train_dataset=train_set, eval_dataset=dev_set,
                                  data_collator=DataCollatorForSeq2Seq(tokenizer, model), **common)

    def pairs(units: list[Unit]) -> Dataset:
        return Dataset.from_list([{"prompt": u.source, "completion": u.output} for u in units])

    return CausalSFTTrainer(model=model, train_dataset=pairs(train), eval_dataset=pairs(selection.units),
                            peft_config=get_peft_config(model_config), **common)


def generation_settings(script: ScriptArguments, model_config: DecoderModelConfig) -> dict:
    """What the answers stored for a split depend on besides the trained weights (PredictionStore)."""
    return {"model": model_config.model_name_or_path, "format": script.output_format, "level": script.level,
            "max_sentences": script.max_sentences, "instruction": script.instruction, "constrained": script.constrained,
            "max_new_tokens": script.max_new_tokens, "max_eval_sentences": script.max_eval_sentences}


def evaluate_split(split: UnitSplit, model, tokenizer, script: ScriptArguments, out: Path, settings: dict) -> dict:
    """Generate (resumably) into `{split}.outputs.jsonl`, write `{split}.predictions.jsonl`, print and return
    the scores, the diagnostics and what the generation took."""
    started = time.time()
    store = PredictionStore(out / f"{split.name}.outputs.jsonl", settings)
    stored = len(store)
    outputs = split.generate(model, tokenizer, script.generation_batch_size, script.constrained, store)
    seconds = time.time() - started
    scored = score_answers(split, outputs)
    write_jsonl(scored.predictions, out / f"{split.name}.predictions.jsonl", with_text=False)
    print_scores(split.name, scored.scores, f"parse rate {scored.diagnostics['parse_rate']}",
                 f"{len(split.units):,} units in {seconds:.0f} s")
    result = {"scores": scored.scores, "diagnostics": scored.diagnostics,
              "generation": {"units": len(split.units), "max_new_tokens": max(split.budgets, default=0),
                             "generation_seconds": round(seconds, 1)}}
    if not stored:  # a speed only when every answer was generated now
        result["timing"] = timing(seconds, split.docs)
    return result


def reuse_selection_answers(trainer, dev: UnitSplit, store: PredictionStore) -> None:
    """When model selection answered the whole evaluated dev split, the selected epoch's answers become
    dev.outputs.jsonl, so the final dev scores cost no second generation pass."""
    kept = selection_answers(trainer.args.output_dir, trainer.state.best_global_step)
    if not kept.exists() or len(trainer.selection.docs) < len(dev.docs) or len(store):
        return  # a resumed run's own answers stay
    answers = json.loads(kept.read_text())
    store.add([{"id": i, "output": answers[i], "max_new_tokens": n} for i, n in zip(dev.ids, dev.budgets)])
    print(f"dev: the answers of the selected step ({trainer.state.best_global_step}) reused")


def main(script: ScriptArguments, config: DecoderSFTConfig, model_config: DecoderModelConfig) -> dict:
    out = Path(config.output_dir)
    claim_output_dir(out, overwrite=script.overwrite, resume=script.resume,
                     settings=run_settings(script, model_config, config))
    resume_from = resume_point(config, script.resume)
    settings = generation_settings(script, model_config)
    if resume_from is None:  # a new model: answers of an earlier one must not be reused
        for split in EVAL_SPLITS:
            PredictionStore(out / f"{split}.outputs.jsonl", overwrite=True)
        shutil.rmtree(out / SELECTION, ignore_errors=True)
    docs, types = registry.load_splits(script.dataset_name, script.datasets_path, config.seed,
                                       script.max_train_docs, script.max_eval_docs)
    nested = nests(docs["train"])
    fmt = get_format(script.output_format, nested=nested)
    changes: Counter = Counter()
    for split in EVAL_SPLITS:
        docs[split] = first_sentences(docs[split], script.max_eval_sentences, changes)
    tokenizer = load_tokenizer(model_config.model_name_or_path, is_encoder_decoder(model_config.model_name_or_path))
    train = make_units(docs["train"], types, fmt, script.level, max_sentences=script.max_sentences, changes=changes,
                       instruction_style=script.instruction)
    rule = BudgetRule.from_training(tokenizer, train)
    selection = cut_split("validation", docs["dev"][:script.max_selection_docs], types, fmt, script, tokenizer, rule)
    trainer = build_trainer(script, config, model_config, tokenizer, train, selection)
    started = time.time()
    trainer.train(resume_from_checkpoint=resume_from)  # ends with the best epoch's adapter loaded
    train_seconds = time.time() - started
    trainer.save_state()
    model = trainer.model
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    write_generation_info(out / "model", {
        "base_model": model_config.model_name_or_path, "dataset": script.dataset_name, "types": list(types),
        "output_format": script.output_format, "nested": nested,
        "level": script.level, "max_sentences": script.max_sentences, "budget_rule": asdict(rule),
        "model_config": asdict(model_config), "script": asdict(script), "training": config.to_dict()})
    if not model_config.load_in_4bit:
        model = model.merge_and_unload()  # faster generation; 4-bit weights keep the adapter apart
    model.eval()
    results = {}
    for name in script.eval_splits:
        split = cut_split(name, docs[name], types, fmt, script, tokenizer, rule, changes)
        if name == "dev":
            reuse_selection_answers(trainer, split, PredictionStore(out / "dev.outputs.jsonl", settings))
        results[name] = evaluate_split(split, model, tokenizer, script, out, settings)
    return report(script, config, model_config, results, trainer.state.log_history, train_seconds, changes)


def report(script: ScriptArguments, config: DecoderSFTConfig, model_config: DecoderModelConfig,
           results: dict[str, dict], log_history: list[dict], train_seconds: float, changes: Counter) -> dict:
    """metrics.json and training.png."""
    out = Path(config.output_dir)
    epochs_run, best_epoch = epochs_summary(log_history)
    metrics = {"method": script.method, "model": model_config.model_name_or_path, "dataset": script.dataset_name,
               "format": script.output_format, "level": script.level, "instruction": script.instruction,
               "constrained": script.constrained,
               "isQLoRA": model_config.load_in_4bit,
               "lora": {k: getattr(model_config, f"lora_{k}") for k in
                        ("r", "alpha", "dropout", "target_modules", "modules_to_save")},
               "learning_rate": config.learning_rate, "epochs_run": epochs_run, "best_epoch": best_epoch,
               "train_seconds": round(train_seconds, 1), "seed": config.seed, "max_train_docs": script.max_train_docs,
               "max_eval_docs": script.max_eval_docs, "max_eval_sentences": script.max_eval_sentences,
               "max_selection_docs": script.max_selection_docs, "max_steps": config.max_steps,
               "units_changed": dict(sorted(changes.items()))}
    metrics.update({split: r["scores"] for split, r in results.items()})
    metrics["diagnostics"] = {split: r["diagnostics"] for split, r in results.items()}
    metrics["generation"] = {split: r["generation"] for split, r in results.items()}
    metrics["timing"] = {split: r["timing"] for split, r in results.items() if "timing" in r}
    write_metrics(out, metrics, settings=run_settings(script, model_config, config))
    plot_training(log_history, out / "training.png", f"{model_config.model_name_or_path} on {script.dataset_name}, "
                                                     f"{script.output_format} (best epoch {best_epoch} of {epochs_run})")
    return metrics


def write_generation_info(folder: Path, info: dict) -> None:
    """What inference needs to prompt a trained model as it was trained (decoders/inference.py reads it)."""
    (folder / "generation.json").write_text(json.dumps(info, indent=2, default=str))


def parse_args(argv: list[str] | None = None) -> tuple[ScriptArguments, DecoderSFTConfig, DecoderModelConfig]:
    """(ScriptArguments, SFTConfig, ModelConfig), as trl's own scripts parse them."""
    return parse_dataclasses((ScriptArguments, DecoderSFTConfig, DecoderModelConfig), __doc__, argv)


if __name__ == "__main__":
    exit_on_format_error(lambda: main(*parse_args()))
