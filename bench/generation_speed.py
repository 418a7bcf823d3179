"""How fast is data/llm/generation.py, and what do constraints cost and buy? One run, the untrained bundled
SmolLM2-135M-Instruct, the same test sentences for every contender:

    python bench/generation_speed.py [--json OUT] [--dataset_name ncbi_disease] [--sentences 16]

Per output format (data/llm/formats), zero-shot on the first --sentences test sentences, batched greedy
generation (data.llm.generation.generate, --batch_size prompts at a time) without and with constraints
(data/llm/constraints.py): sentences/s, generated tokens per sentence, and the parse and hallucination rates
of eval/diagnostics.py. Answer budgets per sentence as decoders/ size them (data/llm/units.BudgetRule: the
longest gold answer, and the training answers' largest answer-to-text length ratio).
  batched_vs_sequential   our batched generation over one prompt at a time through model.generate() (the
                          same greedy settings and budget), in the --sequential_format format, on the same
                          prompts, timed as a sandwich (theirs on the first half, ours on all, theirs on the
                          second half) so both meet the same machine load: CPU speed here swings
                          several-fold from minute to minute.
  constrained_parse_rate, constrained_hallucination_rate   over every format run with constraints (units
                          and mentions pooled): the untrained model's answers must still parse, and name
                          nothing that is not in the input.
The target is batched_vs_sequential >= 4. Untrained, the model writes poor answers (and, unconstrained,
often runs to its budget): this measures the machinery, not the model.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from data.corpus import exit_on_format_error, script_parser
from data.llm.formats import FORMATS, get_format
from data.llm.generation import generate, greedy_config, load_generator
from data.llm.prompts import chat
from data.llm.units import BudgetRule, UnitSplit, make_units
from data.registry import get, load
from eval.diagnostics import summarise
from eval.runs import write_json

MODEL = "smollm2"
TARGET = 4.0
TRAIN_DOCS_FOR_BUDGET = 200  # training documents whose gold answers size max_new_tokens


def tokens_generated(tokenizer, outputs: list[str]) -> float:
    """Mean tokens per answer (the answer text re-tokenised; the stop token not counted)."""
    return sum(len(tokenizer(o, add_special_tokens=False).input_ids) for o in outputs) / max(1, len(outputs))


def sequential(model, tokenizer, prompts: list[str], max_new_tokens: list[int]) -> list[str]:
    """The plain way: one prompt at a time through model.generate(), greedy, same budgets and stop ids."""
    out = []
    with torch.inference_mode():
        for p, n in zip(prompts, max_new_tokens):
            config = greedy_config(model, tokenizer, n)
            batch = tokenizer(p, return_tensors="pt")
            ids = model.generate(**batch, generation_config=config)[0, batch["input_ids"].shape[1]:]
            out.append(tokenizer.decode(ids, skip_special_tokens=True))
    return out


def run(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    model, tokenizer = load_generator(MODEL)
    types = get(args.dataset_name).types
    test, train = load(args.dataset_name, "test"), load(args.dataset_name, "train")[:TRAIN_DOCS_FOR_BUDGET]
    out: dict = {"model": MODEL, "dataset": args.dataset_name, "sentences": args.sentences,
                 "batch_size": args.batch_size, "threads": torch.get_num_threads(),
                 "load_average_1min": round(os.getloadavg()[0], 2), "formats": {}}
    pooled = {"units": 0, "well_formed": 0.0, "mentions": 0, "hallucinated": 0.0}
    prompts_of: dict[str, tuple[list[str], list[int]]] = {}
    for name in args.formats:
        fmt = get_format(name)
        every = make_units(test, types, fmt, respect_entities=False)
        every = every[:max(args.sentences, args.sequential_sentences if name == args.sequential_format else 0)]
        rule = BudgetRule.from_training(tokenizer, make_units(train, types, fmt))
        prompts_of[name] = ([chat(tokenizer, u.source) for u in every], rule.budgets(tokenizer, every))
        units = every[:args.sentences]
        split = UnitSplit(name, test, units, fmt, types, prompts_of[name][1][:len(units)],
                          prompts_of[name][0][:len(units)])
        row: dict = {"max_new_tokens_mean": sum(split.budgets) / len(split.budgets)}
        for constrained in (False, True):
            tag = "constrained_" if constrained else ""
            started = time.perf_counter()
            constraints = split.constraints(tokenizer, range(len(units))) if constrained else None
            texts = generate(model, tokenizer, split.prompts, split.budgets, args.batch_size, constraints,
                             desc=f"{name}{' constrained' if constrained else ''}")
            seconds = time.perf_counter() - started  # building the constraints is part of their cost
            parsed = {u.id: fmt.parse(t, u.input, types) for u, t in zip(units, texts)}
            diag = summarise([u.gold() for u in units], parsed)
            row.update({f"{tag}sentences_per_s": len(units) / seconds,
                        f"{tag}tokens_per_sentence": tokens_generated(tokenizer, texts),
                        f"{tag}parse_rate": diag["parse_rate"], f"{tag}hallucination_rate": diag["hallucination_rate"],
                        f"{tag}mentions": diag["mentions"]})
            if constrained:
                pooled["units"] += len(units)
                pooled["well_formed"] += diag["parse_rate"] * len(units)
                pooled["mentions"] += diag["mentions"]
                pooled["hallucinated"] += (diag["hallucination_rate"] or 0.0) * diag["mentions"]
        out["formats"][name] = row
        print(f"{name:12s} {row['sentences_per_s']:6.2f} sent/s {row['tokens_per_sentence']:6.1f} tok/sent "
              f"parse {row['parse_rate']:.2f} | constrained {row['constrained_sentences_per_s']:6.2f} sent/s "
              f"{row['constrained_tokens_per_sentence']:6.1f} tok/sent parse {row['constrained_parse_rate']:.2f} "
              f"halluc {row['constrained_hallucination_rate']}", flush=True)
    out["constrained_parse_rate"] = pooled["well_formed"] / pooled["units"]
    out["constrained_hallucination_rate"] = pooled["hallucinated"] / pooled["mentions"] if pooled["mentions"] else 0.0
    out["constrained_mentions"] = pooled["mentions"]

    prompts, max_new = prompts_of[args.sequential_format]
    prompts, max_new = prompts[:args.sequential_sentences], max_new[:args.sequential_sentences]
    half = len(prompts) // 2
    started = time.perf_counter()
    sequential(model, tokenizer, prompts[:half], max_new[:half])
    t_theirs = time.perf_counter() - started
    started = time.perf_counter()
    generate(model, tokenizer, prompts, max_new, args.batch_size, desc="batched")
    t_ours = time.perf_counter() - started
    started = time.perf_counter()
    sequential(model, tokenizer, prompts[half:], max_new[half:])
    t_theirs += time.perf_counter() - started
    out["batched_vs_sequential"] = t_theirs / t_ours
    out["sequential_format"], out["sequential_sentences"] = args.sequential_format, len(prompts)
    met = "met" if out["batched_vs_sequential"] >= TARGET else "NOT met"
    print(f"batched_vs_sequential {out['batched_vs_sequential']:.2f} (target >= {TARGET}: {met}); "
          f"constrained parse rate {out['constrained_parse_rate']:.4f}, hallucination rate "
          f"{out['constrained_hallucination_rate']:.4f} over {pooled['mentions']} mentions", flush=True)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = script_parser(__doc__)
    parser.add_argument("--json", type=Path, help="write the ratios and per-format figures here")
    parser.add_argument("--dataset_name", default="ncbi_disease")
    parser.add_argument("--sentences", type=int, default=16, help="test sentences per format")
    parser.add_argument("--batch_size", type=int, default=32,
                        help="a decode step streams every weight once, so wider batches pay on a CPU")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    parser.add_argument("--sequential_format", default="typed", choices=list(FORMATS))
    parser.add_argument("--sequential_sentences", type=int, default=32,
                        help="prompts for the one-at-a-time comparison (ours on the same ones)")
    args = parser.parse_args(argv)
    if args.sequential_format not in args.formats:
        parser.error("--sequential_format must be one of --formats")
    return args


def main(args: argparse.Namespace) -> None:
    out = run(args)
    if args.json:
        write_json(args.json, out)


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
