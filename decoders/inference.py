"""Generate entities with a model trained by decoders/main.py (or generative/main.py): raw answers, then
document-level character-offset predictions, for a registry split or a JSONL file of documents (gold
entities, if present, are only used to score and to size the answer budget).

    python decoders/inference.py --model_dir results/decoders/bio/ncbi_disease/model --split test \
        --output_dir results/decoders/bio/ncbi_disease/inference
    python decoders/inference.py --model_dir MODEL --input docs.jsonl --output_dir OUT
    python decoders/inference.py --model_dir MODEL --split test --output_dir OUT --backend vllm   # GPUs

The model is prompted exactly as it was trained (format, unit level, entity types and answer budget come
from MODEL/generation.json). Generation is batched and greedy (data/llm/units.py, data/llm/generation.py):
prompts sorted by length, left padding, the KV cache. Writes to --output_dir `NAME.outputs.jsonl` (the raw
answer per unit), `NAME.predictions.jsonl` (document spans) and, when the input has gold entities,
`NAME.metrics.json` (eval/semeval scores and eval/diagnostics); NAME is the split or the input file's
stem. Resumable: a rerun skips the units whose answers are already in NAME.outputs.jsonl, when they were made
with the same settings (model, constraints, budget, backend; otherwise it is refused, or --overwrite True).

--backend vllm hands generation to vLLM (offline LLM.generate, the adapter through LoRARequest) for GPU
users who outgrow one process; it takes causal LMs, without --constrained, and adapters without fully
trained modules (vLLM loads only LoRA weights: merge an adapter with modules_to_save into its base first).
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from trl import ModelConfig, get_quantization_config

from data import registry
from data.corpus import Document, exit_on_format_error, parse_dataclasses, read_jsonl, write_jsonl
from data.llm.formats import get_format
from data.llm.generation import PredictionStore, is_encoder_decoder, load_generator
from data.llm.models import resolve
from data.llm.units import BudgetRule, UnitSplit, make_units
from data.text import first_sentences
from eval.answers import score_answers
from eval.runs import claim_output_dir, print_scores, run_settings, timing, write_metrics

VLLM_CHUNK = 512  # prompts per vLLM call: the outputs file is written after each


@dataclass
class Args:
    model_dir: Path = field(metadata={"help": "a model/ folder written by decoders/main.py (adapter, tokenizer, "
                                              "generation.json)"})
    output_dir: Path = field(metadata={"help": "outputs, predictions and metrics go here"})
    dataset_name: str | None = field(default=None, metadata={
        "help": "registry dataset (default: the training one, or the split's file of its --datasets_path)"})
    split: str = "test"
    input: Path | None = field(default=None, metadata={"help": "a JSONL file of documents, not a registry split"})
    max_eval_docs: int | None = field(default=None, metadata={"help": "only the first N documents"})
    max_eval_sentences: int | None = field(default=None, metadata={
        "help": "cut each evaluated document after its first N sentences (data.text.first_sentences)"})
    generation_batch_size: int = 8
    max_new_tokens: int | None = field(default=None, metadata={
        "help": "answer budget in tokens (default: per unit, from the training answers and the input's gold, "
                "data/llm/units.BudgetRule)"})
    constrained: bool = field(default=False, metadata={"help": "constrained decoding (data/llm/constraints.py)"})
    isQLoRA: bool | None = field(default=None, metadata={"help": "4-bit base weights (default: as trained)"})
    backend: str = field(default="hf", metadata={"choices": ("hf", "vllm"), "help": "who generates"})
    overwrite: bool = field(default=False, metadata={"help": "generate afresh even if NAME.outputs.jsonl exists"})
    seed: int = 42


def read_generation_info(folder: Path) -> dict:
    path = folder / "generation.json"
    if not path.exists():
        raise SystemExit(f"error: {path} not found: --model_dir must be the model/ folder decoders/main.py wrote")
    return json.loads(path.read_text())


def sha256(model_dir: Path) -> str:
    """The adapter weights' checksum: outputs of an adapter trained again into the same folder are not reused."""
    digest = hashlib.sha256()
    for path in sorted(model_dir.glob("*.safetensors")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def load_documents(args: Args, info: dict, changes: Counter) -> tuple[str, list[Document]]:
    """(NAME, documents) of the split or input file, capped."""
    folder = info["script"]["datasets_path"]  # trained on a folder of JSONL files, not a registry corpus
    if args.input:
        docs, name = read_jsonl(args.input), args.input.stem
    elif args.dataset_name is None and folder:
        docs, name = read_jsonl(Path(folder) / f"{args.split}.jsonl"), args.split
    else:
        docs, name = registry.load(args.dataset_name or info["dataset"], args.split), args.split
    return name, first_sentences(docs[:args.max_eval_docs], args.max_eval_sentences, changes)


def vllm_generate(info: dict, model_config: ModelConfig, model_dir: Path, split: UnitSplit, store: PredictionStore,
                  seed: int) -> dict[str, str]:
    """Greedy answers from vLLM for the units the store lacks, stored chunk by chunk."""
    adapter = json.loads((model_dir / "adapter_config.json").read_text())
    if adapter.get("modules_to_save"):
        raise SystemExit(f"error: {model_dir} trains {adapter['modules_to_save']} in full, which vLLM's LoRA "
                         "cannot load: merge the adapter into its base model and serve that, or use --backend hf")
    todo = [k for k, i in enumerate(split.ids) if i not in store]
    if todo:
        print(f"{store.path}: {len(split.units) - len(todo):,} of {len(split.units):,} outputs already there, "
              f"generating {len(todo):,} with vLLM", file=sys.stderr)
        from vllm import LLM, SamplingParams
        from vllm.lora.request import LoRARequest

        extra = {"quantization": "bitsandbytes"} if model_config.load_in_4bit else {}
        llm = LLM(model=resolve(info["base_model"]), tokenizer=str(model_dir), enable_lora=True,
                  max_lora_rank=adapter["r"], seed=seed, **extra)
        lora = LoRARequest("ner", 1, str(model_dir))
    for k in range(0, len(todo), VLLM_CHUNK):
        chunk = todo[k:k + VLLM_CHUNK]
        params = [SamplingParams(temperature=0.0, max_tokens=split.budgets[i]) for i in chunk]  # temperature 0: greedy
        results = llm.generate([split.prompts[i] for i in chunk], params, lora_request=lora)
        store.add([{"id": split.ids[i], "output": res.outputs[0].text, "max_new_tokens": split.budgets[i]}
                   for i, res in zip(chunk, results)])
    done = store.outputs()
    return {i: done[i] for i in split.ids}


def main(args: Args) -> dict:
    claim_output_dir(args.output_dir, finished=None)  # its answer store resumes
    info = read_generation_info(args.model_dir)
    model_config = ModelConfig(**info["model_config"])
    if args.isQLoRA is not None:
        model_config = replace(model_config, load_in_4bit=args.isQLoRA)
    changes: Counter = Counter()
    name, docs = load_documents(args, info, changes)
    fmt, types = get_format(info["output_format"], nested=info["nested"]), tuple(info["types"])
    units = make_units(docs, types, fmt, info["level"], max_sentences=info["max_sentences"], respect_entities=False,
                       changes=changes, instruction_style=info["script"].get("instruction", "full"))  # older models: full
    rule = BudgetRule(**info["budget_rule"])
    settings = {"model_dir": str(args.model_dir.resolve()), "adapter_sha256": sha256(args.model_dir),
                "constrained": args.constrained,
                "max_new_tokens": args.max_new_tokens, "load_in_4bit": model_config.load_in_4bit,
                "backend": args.backend, "max_eval_sentences": args.max_eval_sentences}
    store = PredictionStore(args.output_dir / f"{name}.outputs.jsonl", settings, args.overwrite)
    stored, started = len(store), time.time()
    if args.backend == "vllm":
        if args.constrained or is_encoder_decoder(info["base_model"]):
            raise SystemExit("error: --backend vllm takes causal LMs without --constrained")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
        split = UnitSplit(name, docs, units, fmt, types, rule.budgets(tokenizer, units, args.max_new_tokens))
        outputs = vllm_generate(info, model_config, args.model_dir, split, store, args.seed)
    else:
        model, tokenizer = load_generator(info["base_model"], str(args.model_dir),
                                          get_quantization_config(model_config))
        split = UnitSplit(name, docs, units, fmt, types, rule.budgets(tokenizer, units, args.max_new_tokens))
        outputs = split.generate(model, tokenizer, args.generation_batch_size, args.constrained, store)
    seconds = time.time() - started
    scored = score_answers(split, outputs)
    write_jsonl(scored.predictions, args.output_dir / f"{name}.predictions.jsonl", with_text=False)
    print(f"{len(docs):,} documents, {len(units):,} units in {seconds:.0f} s -> "
          f"{args.output_dir / f'{name}.predictions.jsonl'}")
    result = {"scores": scored.scores, "diagnostics": scored.diagnostics}
    if any(d.entities for d in docs):
        print_scores(name, scored.scores)
        dataset = args.input.stem if args.input else args.dataset_name or info["dataset"]
        write_metrics(args.output_dir, {
            "method": info["script"]["method"], "model": info["base_model"], "adapter": str(args.model_dir),
            "dataset": dataset, "format": fmt.name, "constrained": args.constrained, "backend": args.backend,
            name: scored.scores, "diagnostics": {name: scored.diagnostics}, "generation_seconds": round(seconds, 1),
            "timing": {} if stored else {name: timing(seconds, docs)},
            "caps": {"max_eval_docs": args.max_eval_docs, "max_eval_sentences": args.max_eval_sentences},
            "units_changed": dict(sorted(changes.items()))}, settings=run_settings(args), name=f"{name}.metrics.json")
    return result


def parse_args(argv: list[str] | None = None) -> Args:
    return parse_dataclasses((Args,), __doc__, argv)[0]


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
