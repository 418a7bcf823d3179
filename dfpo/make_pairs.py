"""DFPO's preference pairs (seed 3's stage 2 data), built from our training split: the seed's pairs came
pre-built (its MFPEA sets on the hub) and the code that made them is not public.

    python dfpo/make_pairs.py --one_dataset ncbi_disease --init_adapter results/dfpo/ncbi_disease/stage1 \\
        --samples 4 --temperature 1.0 --output_dir results/dfpo/ncbi_disease/pairs

For every training unit (one document and entity type, dfpo/stages.py) the chosen answer is the gold list.
The rejected answers are of two origins:
  sampled_wrong / sampled_malformed  the stage-1 model's own answers (--samples per unit at --temperature,
                                     each sample its own seeded stream), kept when they differ from the gold
  boundary_shifted   one gold mention a word longer or shorter (as the text has it)
  wrong_type         one gold mention replaced by a mention of another type in the same text
  entity_missed      one gold mention left out
  spurious_span      a span of the text that is no gold mention added
  not_in_text        a mention of this type from another document, absent from this text, added
  malformed          the gold list without its closing bracket
A corruption that a unit cannot have (no gold mention to shift, no other type in the corpus) is counted as
unavailable; a rejected answer whose mentions equal the gold's is dropped and counted. Every count is
printed and written to pairs.summary.json.

Writes OUTPUT_DIR/pairs.jsonl: {"id", "kind", "prompt", "chosen", "rejected"} in trl's conversational
preference layout, the layout of the seed's released pairs (prefer_optimize.py reads either). The samples
are stored per sample (OUTPUT_DIR/samples/), so a killed run resumes.
"""
from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from data.corpus import exit_on_format_error, parse_dataclasses
from data.llm.generation import PredictionStore, load_tokenizer
from data.llm.prompts import chat
from data.llm.units import BudgetRule, Unit, UnitSplit
from dfpo.stages import FORMAT, chat_record, load_finished_stage, mentions, task_units
from eval.runs import write_json

CORRUPTIONS = ("boundary_shifted", "wrong_type", "entity_missed", "spurious_span", "not_in_text", "malformed")
WORD = re.compile(r"\w[\w\-]*")


@dataclass
class Args:
    one_dataset: str = field(metadata={"help": "a corpus (bc5cdr, ncbi_disease) or one task (bc5cdr_chemical, ...)"})
    output_dir: Path = field(metadata={"help": "pairs.jsonl, pairs.summary.json and the stored samples"})
    init_adapter: Path | None = field(default=None, metadata={
        "help": "OUTPUT_DIR of DFPO stage 1, whose own wrong answers become rejected ones (without it: "
                "corruptions only)"})
    datasets_path: Path | None = field(default=None, metadata={
        "help": "a corpus as train/dev/test.jsonl (one task per entity type) instead of a registry corpus"})
    modelpath: str = field(default="smollm2", metadata={
        "help": "without --init_adapter: the model whose chat template measures --max_length"})
    samples: int = field(default=4, metadata={"help": "sampled answers of the stage-1 model per unit"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature of those answers"})
    corruptions: list[str] = field(default_factory=lambda: list(CORRUPTIONS), metadata={
        "help": f"controlled corruptions to add, of {', '.join(CORRUPTIONS)}"})
    max_length: int | None = field(default=3000, metadata={"help": "windows as in finetune.py's --max_length"})
    max_train_docs: int | None = field(default=None, metadata={"help": "the first N training documents only"})
    batch_size: int = 8
    seed: int = 42


def shifted(mention: str, text: str, rng: random.Random) -> str | None:
    """The mention one word longer (the next or previous word of the text) or shorter, or None."""
    at = text.find(mention)
    options = []
    if len(WORD.findall(mention)) > 1:
        words = mention.split()
        options += [" ".join(words[1:]), " ".join(words[:-1])]
    if at >= 0:
        after = WORD.search(text, at + len(mention))
        if after:
            options.append(text[at:after.end()])
        before = [m for m in WORD.finditer(text[:at])]
        if before:
            options.append(text[before[-1].start():at + len(mention)])
    options = [o for o in options if o and o != mention]
    return rng.choice(options) if options else None


def corrupt(kind: str, unit: Unit, gold: list[str], others: dict[str, list[str]], pool: list[str],
            rng: random.Random) -> str | None:
    """One corrupted answer of `kind` for the unit, or None when the unit cannot have it."""
    text = unit.input
    if kind == "malformed":
        return json.dumps(gold, ensure_ascii=False)[:-1]
    if kind == "spurious_span":
        taken = set(gold) | {m for ms in others.values() for m in ms}  # another type's mention is wrong_type
        words = list(WORD.finditer(text))
        if not words:
            return None
        start = rng.randrange(len(words))
        span = text[words[start].start():words[min(start + rng.randrange(3), len(words) - 1)].end()]
        return json.dumps(gold + [span], ensure_ascii=False) if span not in taken else None
    if kind == "not_in_text":
        absent = [m for m in pool if m not in text]
        return json.dumps(gold + [rng.choice(absent)], ensure_ascii=False) if absent else None
    if not gold:
        return None
    k = rng.randrange(len(gold))
    if kind == "entity_missed":
        return json.dumps(gold[:k] + gold[k + 1:], ensure_ascii=False)
    if kind == "boundary_shifted":
        new = shifted(gold[k], text, rng)
    else:  # wrong_type
        candidates = [m for t, ms in others.items() for m in ms if m not in gold]
        new = rng.choice(candidates) if candidates else None
    return None if new is None else json.dumps(gold[:k] + [new] + gold[k + 1:], ensure_ascii=False)


def sampled_answers(args: Args, units: list[Unit]) -> list[dict[str, str]]:
    """--samples answers per unit from the stage-1 model, stored per sample (resumable)."""
    if args.init_adapter is None or args.samples == 0:
        return []
    model, tokenizer = load_finished_stage(args.init_adapter)
    rule = BudgetRule.from_training(tokenizer, units)
    split = UnitSplit("train", [], units, FORMAT, (), rule.budgets(tokenizer, units),
                      [chat(tokenizer, u.source) for u in units])
    runs = []
    for k in range(args.samples):
        settings = {"stage": str(args.init_adapter.resolve()), "temperature": args.temperature, "sample": k,
                    "seed": args.seed, "units": len(units), "max_train_docs": args.max_train_docs}
        store = PredictionStore(args.output_dir / "samples" / f"s{k}.outputs.jsonl", settings)
        runs.append(split.generate(model, tokenizer, args.batch_size, False, store, args.temperature,
                                   args.seed * 1000 + k))
    return runs


def main(args: Args) -> Counter:
    tokenizer = load_tokenizer(str(args.init_adapter / "model") if args.init_adapter else args.modelpath,
                               encoder_decoder=False)
    changes: Counter = Counter()
    units = task_units(args.one_dataset, "train", tokenizer, args.max_length, args.max_train_docs, changes,
                       args.datasets_path)
    if not units:
        raise SystemExit(f"error: {args.one_dataset} has no training units to make pairs of")
    unknown = sorted(set(args.corruptions) - set(CORRUPTIONS))
    if unknown:
        raise SystemExit(f"error: unknown corruptions {unknown}; choose from {', '.join(CORRUPTIONS)}")
    by_window: dict[str, dict[str, list[str]]] = defaultdict(dict)  # "<doc>/<k>" -> type -> gold mentions
    by_type: dict[str, list[str]] = defaultdict(list)
    for u in units:
        entity_type = u.id.rsplit("/", 1)[1]
        by_window[u.id.rsplit("/", 1)[0]][entity_type] = mentions(u.output)
        by_type[entity_type].extend(mentions(u.output))
    samples = sampled_answers(args, units)
    rng = random.Random(args.seed)
    counts: Counter = Counter()
    pairs = []
    for u in units:
        window, entity_type = u.id.rsplit("/", 1)
        gold = by_window[window][entity_type]
        others = {t: ms for t, ms in by_window[window].items() if t != entity_type}
        rejected = []
        for run in samples:
            found = mentions(run[u.id])
            rejected.append(("sampled_malformed" if found is None else "sampled_wrong", run[u.id]))
        for kind in args.corruptions:
            answer = corrupt(kind, u, gold, others, sorted(set(by_type[entity_type])), rng)
            if answer is None:
                counts[f"{kind}_unavailable"] += 1
            else:
                rejected.append((kind, answer))
        seen = set()
        for kind, answer in rejected:
            found = mentions(answer)
            if found is not None and sorted(found) == sorted(gold):
                counts["rejected_equal_to_chosen_dropped"] += 1
            elif answer in seen:
                counts["rejected_repeated_dropped"] += 1
            else:
                seen.add(answer)
                counts[kind] += 1
                record = chat_record(u)
                pairs.append({"id": u.id, "kind": kind, "prompt": record["prompt"], "chosen": record["completion"],
                              "rejected": [{"role": "assistant", "content": answer}]})
    path = args.output_dir / "pairs.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs), encoding="utf-8")
    summary = {"units": len(units), "pairs": len(pairs), "counts": dict(sorted(counts.items())),
               "units_changed": dict(changes), "samples": args.samples, "temperature": args.temperature,
               "stage": str(args.init_adapter) if args.init_adapter else None}
    write_json(args.output_dir / "pairs.summary.json", summary)
    print(f"{len(pairs):,} pairs from {len(units):,} units in {path}: " +
          ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())))
    return counts


def parse_args(argv: list[str] | None = None) -> Args:
    return parse_dataclasses((Args,), __doc__, argv)[0]


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
