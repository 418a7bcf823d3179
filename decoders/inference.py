"""Generate entities with a model trained by decoders/main.py (or generative/main.py): raw answers, then
document-level character-offset predictions, for a registry split or a JSONL file of documents (gold
entities, if present, are only used to score and to size the answer budget).

    python decoders/inference.py --model_dir results/decoders/bio/ncbi_disease/model --split test \
        --output_dir results/decoders/bio/ncbi_disease/inference
    python decoders/inference.py --model_dir MODEL --input docs.jsonl --output_dir OUT
    python decoders/inference.py --model_dir MODEL --split test --output_dir OUT --backend vllm   # GPUs

The model is prompted exactly as it was trained (format, unit level, entity types and answer budget come
from MODEL/generation.json). Generation is batched and greedy (decoders/units.py, data/generation.py):
prompts sorted by length, left padding, the KV cache. Writes to --output_dir `NAME.outputs.jsonl` (the raw
answer per unit), `NAME.predictions.jsonl` (document spans) and, when the input has gold entities,
`NAME.metrics.json` (eval/semeval scores and eval/diagnostics); NAME is the split or the input file's
stem. Resumable: a rerun skips the units whose answers are already in NAME.outputs.jsonl.

--backend vllm hands generation to vLLM (offline LLM.generate, the adapter through LoRARequest) for GPU
users who outgrow one process; it takes causal LMs, without --constrained, and adapters without fully
trained modules (vLLM loads only LoRA weights: merge an adapter with modules_to_save into its base first).
"""
from __future__ import annotations

import json
import os
from collections import Counter
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as in decoders/main.py

from transformers import HfArgumentParser

from data import registry
from data.corpus import Document, HelpFormatter, exit_on_format_error, read_jsonl
from data.formats import get_format
from data.generation import PredictionStore, is_encoder_decoder, load_generator
from data.models import resolve
from data.text import first_sentences
from decoders import units

VLLM_CHUNK = 512  # prompts per vLLM call: the outputs file is written after each


@dataclass
class Args:
    model_dir: Path = field(metadata={"help": "a model/ folder written by decoders/main.py (adapter, tokenizer, "
                                              "generation.json)"})
    output_dir: Path = field(metadata={"help": "outputs, predictions and metrics go here"})
    dataset_name: str | None = field(default=None, metadata={"help": "registry dataset (default: the training one)"})
    split: str = "test"
    input: Path | None = field(default=None, metadata={"help": "a JSONL file of documents, not a registry split"})
    max_eval_docs: int | None = field(default=None, metadata={"help": "only the first N documents"})
    max_eval_sentences: int | None = field(default=None, metadata={
        "help": "cut each evaluated document after its first N sentences (data.text.first_sentences)"})
    generation_batch_size: int = 8
    max_new_tokens: int | None = field(default=None, metadata={
        "help": "answer budget in tokens (default: per unit, from the training answers and the input's gold, "
                "decoders/units.budgets)"})
    constrained: bool = field(default=False, metadata={"help": "constrained decoding (data/constraints.py)"})
    isQLoRA: bool | None = field(default=None, metadata={"help": "4-bit base weights (default: as trained)"})
    backend: str = field(default="hf", metadata={"choices": ("hf", "vllm"), "help": "who generates"})
    seed: int = 42


def load_documents(args: Args, info: dict, changes: Counter) -> tuple[str, list[Document]]:
    """(NAME, documents) of the split or input file, capped."""
    if args.input:
        docs = read_jsonl(args.input)
        name = args.input.stem
    else:
        docs = registry.load(args.dataset_name or info["dataset"], args.split)
        name = args.split
    return name, first_sentences(docs[:args.max_eval_docs], args.max_eval_sentences, changes)


def vllm_generate(info: dict, model_dir: Path, store: PredictionStore, recs: Sequence[dict],
                  max_new_tokens: Sequence[int], load_in_4bit: bool, seed: int) -> dict[str, str]:
    """Greedy answers from vLLM for the units the store lacks, stored chunk by chunk."""
    adapter = json.loads((model_dir / "adapter_config.json").read_text())
    if adapter.get("modules_to_save"):
        raise SystemExit(f"error: {model_dir} trains {adapter['modules_to_save']} in full, which vLLM's LoRA "
                         "cannot load: merge the adapter into its base model and serve that, or use --backend hf")
    todo = [(r, n) for r, n in zip(recs, max_new_tokens) if r["id"] not in store]
    if todo:
        print(f"{store.path}: {len(recs) - len(todo):,} of {len(recs):,} outputs already there, generating "
              f"{len(todo):,} with vLLM", file=sys.stderr)
        from vllm import LLM, SamplingParams
        from vllm.lora.request import LoRARequest

        extra = {"quantization": "bitsandbytes"} if load_in_4bit else {}
        llm = LLM(model=resolve(info["base_model"]), tokenizer=str(model_dir), enable_lora=True,
                  max_lora_rank=adapter["r"], seed=seed, **extra)
        lora = LoRARequest("ner", 1, str(model_dir))
    for k in range(0, len(todo), VLLM_CHUNK):
        chunk = todo[k:k + VLLM_CHUNK]
        params = [SamplingParams(temperature=0.0, max_tokens=n) for _, n in chunk]  # temperature 0: greedy
        results = llm.generate([r["source"] for r, _ in chunk], params, lora_request=lora)
        store.add([{"id": r["id"], "output": res.outputs[0].text, "max_new_tokens": n}
                   for (r, n), res in zip(chunk, results)])
    done = store.outputs()
    return {r["id"]: done[r["id"]] for r in recs}


def main(args: Args) -> dict:
    info = units.read_generation_info(args.model_dir)
    changes: Counter = Counter()
    name, docs = load_documents(args, info, changes)
    fmt, types = get_format(info["output_format"]), info["types"]
    recs = units.unit_records(docs, types, fmt, info["level"], info["max_sentences"], False, changes)
    load_in_4bit = info["isQLoRA"] if args.isQLoRA is None else args.isQLoRA
    store_path = args.output_dir / f"{name}.outputs.jsonl"
    started = time.time()
    if args.backend == "vllm":
        if args.constrained or is_encoder_decoder(info["base_model"]):
            raise SystemExit("error: --backend vllm takes causal LMs without --constrained")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
        budgets = [args.max_new_tokens] * len(recs) if args.max_new_tokens else \
            units.budgets(tokenizer, info["budget_rule"], recs)
        outputs = vllm_generate(info, args.model_dir, PredictionStore(store_path), recs, budgets, load_in_4bit,
                                args.seed)
    else:
        model, tokenizer = load_generator(info["base_model"], str(args.model_dir), load_in_4bit)
        budgets = [args.max_new_tokens] * len(recs) if args.max_new_tokens else \
            units.budgets(tokenizer, info["budget_rule"], recs)
        outputs = units.generate_split(model, tokenizer, recs, fmt, types, store_path, budgets,
                                       args.generation_batch_size, args.constrained, desc=name)
    seconds = time.time() - started
    result = units.finish(name, docs, recs, outputs, fmt, types, args.output_dir)
    print(f"{len(docs):,} documents, {len(recs):,} units in {seconds:.0f} s -> "
          f"{args.output_dir / f'{name}.predictions.jsonl'}")
    if any(d.entities for d in docs):
        s = result["scores"]["strict"]
        print(f"strict P {s['precision']:.4f} R {s['recall']:.4f} F1 {s['f1']:.4f}")
        dataset = args.input.stem if args.input else args.dataset_name or info["dataset"]
        metrics = {"method": info["training"].get("method", "decoder"), "model": info["base_model"],
                   "adapter": str(args.model_dir), "dataset": dataset, "format": fmt.name,
                   "constrained": args.constrained, "backend": args.backend, name: result["scores"],
                   "diagnostics": {name: result["diagnostics"]}, "generation_seconds": round(seconds, 1),
                   "caps": {"max_eval_docs": args.max_eval_docs, "max_eval_sentences": args.max_eval_sentences},
                   "units_changed": dict(sorted(changes.items()))}
        (args.output_dir / f"{name}.metrics.json").write_text(json.dumps(metrics, indent=2))
    return result


def parse_args(argv: list[str] | None = None, doc: str | None = None) -> Args:
    """Arguments; generative/inference.py passes its own usage text."""
    (args,) = HfArgumentParser(Args, description=doc or __doc__, formatter_class=HelpFormatter) \
        .parse_args_into_dataclasses(args=argv)
    return args


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
