"""What DFPO's three stages share: seed 3's task framing as chat records, the stage models (a base with the
earlier stages' adapters merged in), and the evaluation every stage ends with.

Framing: one prompt per document and entity type (data/per_type_tasks.py), the answer the Python list of the
type's mentions (data/llm/formats "list"), the user turn data/llm/prompts' prompt and the assistant turn the
answer, in the model's own chat template (trl applies it; the seed hard-coded Gemma-2's). A document whose
prompt and answer exceed --max_length tokens is cut into windows of consecutive sentences that fit, never
dropped; how many were cut is counted, per document and entity type ("documents_windowed").

Stage models: each stage saves its LoRA adapter in OUTPUT_DIR/model with `stack.json`, the base model and
the earlier adapters in order. A later stage (--init_adapter OUTPUT_DIR of the stage before) loads the base,
merges every adapter of the stack into it and trains a new adapter on top: DPOP's reference is then the
stage-1 model itself (the new adapter disabled), and no second copy of the model is held.
"""
from __future__ import annotations

import ast
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from trl import ModelConfig

from data.corpus import Document, write_jsonl
from data.llm.formats import get_format
from data.llm.generation import PredictionStore, load_model, load_tokenizer
from data.llm.prompts import chat
from data.llm.units import BudgetRule, Unit, UnitSplit, make_units, unit_spans
from data.per_type_tasks import NER_TASKS, tasks_of
from data.text import first_sentences
from eval.answers import score_answers
from eval.runs import print_scores, write_metrics
from eval.views import string_sets

FORMAT = get_format("list")
LORA_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]  # seed 3's
WHOLE = 10_000  # sentences per window: a document is one unit, as the seed prompts it


def task_units(dataset: str, split: str, tokenizer, max_length: int | None, max_docs: int | None = None,
               changes: Counter | None = None, datasets_path: Path | None = None) -> list[Unit]:
    """Every (document, entity type) unit of a split, windowed where prompt + answer exceed max_length."""
    changes = Counter() if changes is None else changes
    units = []
    for task in tasks_of(dataset, datasets_path):
        entity_type = NER_TASKS[task].entity_type
        for doc in NER_TASKS[task].documents(split, changes, max_docs):
            units.extend(fitting_units(doc, entity_type, tokenizer, max_length, changes))
    return units


def fitting_units(doc: Document, entity_type: str, tokenizer, max_length: int | None, changes: Counter) -> list[Unit]:
    """The document as one unit, or in the largest windows of sentences (halved until they fit) whose records
    fit max_length; a single sentence still longer is kept and counted (trl cuts it)."""
    size = len(unit_spans(doc, "sentence"))
    while True:
        units = make_units([doc], (entity_type,), FORMAT, "document", per_type=True, max_sentences=size,
                           changes=changes)
        lengths = [record_length(tokenizer, u) for u in units]
        if max_length is None or max(lengths, default=0) <= max_length or size == 1:
            break
        size = (size + 1) // 2
    changes["documents_windowed"] += len(units) > 1
    changes["units_over_max_length_cut"] += max_length is not None and sum(n > max_length for n in lengths)
    return units


def record_length(tokenizer, unit: Unit) -> int:
    """Tokens of the unit's chat record (prompt and answer) as trl tokenizes it."""
    record = chat_record(unit)
    return len(tokenizer.apply_chat_template(record["prompt"] + record["completion"], tokenize=True))


def mentions(answer: str) -> list[str] | None:
    """The mention strings of a list answer, or None if it is not a list of strings."""
    try:
        value = ast.literal_eval(answer.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, list) and all(isinstance(m, str) for m in value) else None


def chat_record(unit: Unit) -> dict:
    """trl's conversational prompt-completion record of a unit."""
    return {"prompt": [{"role": "user", "content": unit.source}],
            "completion": [{"role": "assistant", "content": unit.output}]}


# --------------------------------------------------------------------------- stage models
@dataclass
class StageTrainingDefaults:
    """A mixin for every stage's trl config (after HardwareDefaults): seed 3's batch of 1 x 8 (its --batchsize
    name), a checkpoint per epoch, a log line per step, fp32 and no activation checkpointing unless asked
    (trl defaults to bf16 and activation checkpointing)."""

    per_device_train_batch_size: int = field(default=1, metadata={"aliases": ["--batchsize"]})
    gradient_accumulation_steps: int = 8
    save_strategy: str = "epoch"
    logging_steps: float = 1
    bf16: bool = False
    gradient_checkpointing: bool | None = field(default=None, metadata={
        "help": "deprecated name of --activation_checkpointing (trl turns it on by default; this script does not)"})
    report_to: str = "none"


@dataclass
class StageModelConfig(ModelConfig):
    """trl's ModelConfig with seed 3's LoRA (stages 1 and 3: r 32, alpha 16, dropout 0.1 on the seven
    projections) and its --modelpath name."""

    model_name_or_path: str = field(default="smollm2", metadata={
        "aliases": ["--modelpath"], "help": "hub id or local path of a causal LM ('smollm2' = bundled)"})
    use_peft: bool = True
    lora_r: int = 32
    lora_alpha: int = 16
    lora_dropout: float = 0.1
    lora_target_modules: list[str] | None = field(default_factory=lambda: list(LORA_MODULES))
    load_in_4bit: bool = field(default=False, metadata={"aliases": ["--isQLoRA"], "help": "4-bit NF4 base (QLoRA)"})
    use_bnb_nested_quant: bool = True


def read_stack(stage_dir: Path) -> dict:
    """{"base": model, "adapters": [adapter folders, oldest first]} of a finished stage's OUTPUT_DIR."""
    path = Path(stage_dir) / "model" / "stack.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise SystemExit(f"error: {path} not found: --init_adapter takes the OUTPUT_DIR of a finished DFPO stage")
    except ValueError as err:
        raise SystemExit(f"error: {path}: {err}")


def merged_model(stack: dict, quantization_config=None):
    """The stack's base with each of its adapters merged in, oldest first."""
    from peft import PeftModel

    model = load_model(stack["base"], quantization_config)
    for adapter in stack["adapters"]:
        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return model


def load_stage_model(base: str, init_adapter: Path | None, quantization_config=None):
    """The model a stage trains on (the base, or the stack of `init_adapter`'s stage merged) and its stack."""
    stack = read_stack(init_adapter) if init_adapter else {"base": base, "adapters": []}
    if stack["base"] != base:
        raise SystemExit(f"error: {init_adapter} was trained on {stack['base']}, not --modelpath {base}")
    return merged_model(stack, quantization_config), stack


def save_stage(model, tokenizer, out: Path, stack: dict, info: dict) -> None:
    """The stage's adapter and tokenizer in out/model, with the stack a later stage or evaluation loads."""
    folder = Path(out) / "model"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    body = {"base": stack["base"], "adapters": [*stack["adapters"], str(folder.resolve())], **info}
    (folder / "stack.json").write_text(json.dumps(body, indent=2, default=str))


def load_finished_stage(stage_dir: Path, quantization_config=None):
    """(model in eval mode, tokenizer) of a finished stage, its whole stack merged: for generation."""
    model = merged_model(read_stack(stage_dir), quantization_config)
    return model.eval(), load_tokenizer(str(Path(stage_dir) / "model"), encoder_decoder=False)


# --------------------------------------------------------------------------- evaluation
@dataclass
class EvalArguments:
    """How every stage's model is tested (seed 3 sampled at temperature 0.5 and reported mean +- sd)."""

    max_eval_docs: int | None = field(default=None, metadata={"help": "test on the first N documents only"})
    max_eval_sentences: int | None = field(default=None, metadata={"help": "cut each test document after N sentences"})
    constrained: bool = field(default=False, metadata={"help": "constrained decoding of the test answers"})
    temperature: float = field(default=0.0, metadata={"help": "0: greedy test answers; seed 3 sampled at 0.5"})
    repeats: int = field(default=1, metadata={"help": "with --temperature > 0: sampled test runs"})
    generation_batch_size: int = 8


def evaluate_stage(model, tokenizer, dataset: str, datasets_path: Path | None, train: list[Unit], out: Path,
                   method: str, settings: dict, evaluation: EvalArguments, seed: int) -> dict:
    """Answer every test unit (greedy, or `repeats` samples at `temperature`), score each run on spans and as
    seed 3's string sets (a metrics.json per run, for eval/report.py); per task, the mean +- sd over runs."""
    e = evaluation
    rule = BudgetRule.from_training(tokenizer, train)
    results = {}
    for task in tasks_of(dataset, datasets_path):
        changes = Counter()
        t = NER_TASKS[task]
        docs = first_sentences(t.documents("test")[:e.max_eval_docs], e.max_eval_sentences, changes)
        units = make_units(docs, (t.entity_type,), FORMAT, "document", per_type=True, max_sentences=WHOLE,
                           respect_entities=False, changes=changes)
        split = UnitSplit("test", docs, units, FORMAT, (t.entity_type,), rule.budgets(tokenizer, units),
                          [chat(tokenizer, u.source) for u in units])
        runs = []
        for repeat in range(e.repeats if e.temperature > 0 else 1):
            folder = out / task / (f"r{repeat}" if e.temperature > 0 else "greedy")
            made = {**settings, **asdict(e), "task": task, "repeat": repeat, "seed": seed}
            made.pop("generation_batch_size")
            store = PredictionStore(folder / "test.outputs.jsonl", made)
            started = time.time()
            outputs = split.generate(model, tokenizer, e.generation_batch_size, e.constrained, store, e.temperature,
                                     seed * 1000 + repeat)
            scored = score_answers(split, outputs)
            write_jsonl(scored.predictions, folder / "test.predictions.jsonl", with_text=False)
            d, strings = scored.diagnostics, string_sets(docs, scored.predictions)
            run = {"strict_f1": scored.scores["strict"]["f1"], "parse_rate": d["parse_rate"],
                   "hallucination_rate": d["hallucination_rate"], "string_set_f1": strings["f1"],
                   "seconds": round(time.time() - started, 1)}
            write_metrics(folder, {"method": method, "model": settings["model"], "dataset": task, "format": "list",
                                   "constrained": e.constrained, "temperature": e.temperature, "repeat": repeat,
                                   "test": scored.scores, "string_sets": strings,
                                   "diagnostics": {"test": d}}, settings=made)
            runs.append(run)
            print_scores(f"  {task} test" + (f" repeat {repeat}" if e.temperature > 0 else ""), scored.scores,
                         f"string-set F1 {run['string_set_f1']:.4f}", f"parse rate {d['parse_rate']}")
        results[task] = {"units": len(units), "units_changed": dict(changes), "runs": runs,
                         **{k: spread([r[k] for r in runs]) for k in
                            ("strict_f1", "parse_rate", "hallucination_rate", "string_set_f1")}}
    return results


def spread(values: list[float | None]) -> dict:
    """Mean and sample standard deviation (0 for one value); None values (nothing to rate) are left out."""
    import statistics

    present = [v for v in values if v is not None]
    if not present:
        return {"mean": None, "sd": None}
    return {"mean": statistics.mean(present), "sd": statistics.stdev(present) if len(present) > 1 else 0.0}
