"""Seed 3's in-context NER: for each document and entity type, a prompt showing solved training examples chosen by
a strategy, the model's list of mentions of that type, and the mentions placed back in the text and scored.

    python rag_icl/main.py --one_dataset bc5cdr --strategy rag --examples results/rag_icl/bc5cdr/best_example.json \\
        --shots 5 --output_dir results/rag_icl/bc5cdr/rag-5
    python rag_icl/main.py --one_dataset ncbi_disease --strategy ders --shots 3 --seeds 42 43 44 --output_dir ...
    python rag_icl/main.py ... --base-url http://127.0.0.1:8080/v1 --model_name smollm2      # any endpoint

Strategies (data/llm/examples.py), the prompts otherwise the same: zero_shot; fers (one random set of
training units for every input, per seed); ders (random per input, per seed); kate and rag (the examples
best_examples.py wrote to --examples: kate from a run without a reranker, rag with one; checked against the
file's settings). Examples are shown best first, at most --shots of them (the threshold of rag may leave
fewer).

The task as seed 3 frames it: units are whole documents (or, with --unit sentence, sentences), one prompt per
unit and entity type (data/per_type_tasks.py), the answer a Python list of the mentions of that type in the list
format of data/llm/formats (with --constrained True an answer that always parses and names only text of
the unit, data/llm/constraints.py). The prompt is data/llm/prompts.few_shot: the instruction, the examples'
texts and gold answers, the input; local instruct models get it in their chat template. Answers are placed
back occurrence by occurrence (data/llm/align.py) and scored by eval/ on character spans (SemEval strict,
exact, partial, type) beside seed 3's own view, the lower-cased string sets per document
(`string_sets`). Local generation is greedy and batched (data/llm/generation.py); an endpoint gets the
same requests as generative/prompt.py (data/llm/endpoint.py: cache, the client's retries).

DMCR (--repair_model): only the answers that do not parse in the list format go to the repair model, with the
text and a rewrite instruction (data/llm/prompts.repair), constrained unless --repair_constrained False; the
raw answers stay in test.outputs.jsonl, the rewrites go to test.repaired.jsonl, the scores are of the
repaired answers, and metrics.json's "dmcr" gives parse rate, strict F1 and hallucinated mentions before and
after.

Sampling: greedy by default; --temperature 0.5 --repeats 5 reproduces the seed's sampled evaluation (each
prompt's own random stream, from the seed and the repeat, so a resumed run samples what an uninterrupted one
does; an endpoint gets the temperature and the seed in its request), the spread then over seeds x repeats.

Writes to --output_dir/<task>/seed<N>/ (seed<N>-r<R>/ when sampling), per task and run: test.outputs.jsonl (raw
answers, resumable, refused if made with other settings), test.predictions.jsonl and metrics.json
(eval/report.py reads it); and --output_dir/<task>/summary.json with the mean and standard deviation over runs
of strict and string-set F1 (strategies without randomness run the first seed only: greedy decoding gives the
same answers).
"""
from __future__ import annotations

import hashlib
import json
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from data.corpus import exit_on_format_error, parse_dataclasses, write_jsonl
from data.llm.endpoint import ResponseCache, complete_all, endpoint_client, requests_for
from data.llm.examples import STRATEGIES, Example, random_examples, read_selection
from data.llm.formats import get_format
from data.llm.generation import PredictionStore, load_generator, load_tokenizer
from data.llm.prompts import chat, few_shot, instruction
from data.llm.prompts import repair as repair_prompt
from data.llm.units import BudgetRule, Unit, UnitSplit, make_units
from data.text import first_sentences
from eval.answers import score_answers
from eval.runs import claim_output_dir, print_scores, run_settings, write_json, write_metrics
from eval.views import string_sets
from data.per_type_tasks import NER_TASKS, UNITS, tasks_of

ROOT = Path(__file__).resolve().parent.parent
WHOLE = 10_000  # sentences per window at --unit document: a document is one unit, as the seed prompts it


@dataclass
class Args:
    one_dataset: str = field(metadata={"help": "a corpus (bc5cdr, ncbi_disease) or one task (bc5cdr_chemical, ...)"})
    output_dir: Path = field(metadata={"help": "outputs, predictions and metrics.json go here"})
    datasets_path: Path | None = field(default=None, metadata={
        "help": "a corpus as train/dev/test.jsonl (one task per entity type) instead of a registry corpus"})
    strategy: str = field(default="rag", metadata={"choices": STRATEGIES, "help": "how examples are chosen"})
    examples: Path | None = field(default=None, metadata={
        "help": "best_example.json of rag_icl/best_examples.py (strategies kate and rag)"})
    shots: int = field(default=5, metadata={"help": "examples per prompt at most"})
    seeds: list[int] = field(default_factory=lambda: [42, 43, 44], metadata={
        "help": "one run per seed for fers and ders (their random draws); the others run the first only"})
    model_name: str = field(default="smollm2", metadata={
        "help": "local hub id or path ('smollm2' = bundled); with --base-url, the model name sent to the endpoint"})
    base_url: str | None = field(default=None, metadata={
        "help": "an OpenAI-compatible endpoint; key from OPENAI_API_KEY"})
    unit: str = field(default="document", metadata={"choices": UNITS})
    split: str = "test"
    constrained: bool = field(default=False, metadata={"help": "answers that always parse (data/llm/constraints.py)"})
    max_new_tokens: int | None = field(default=None, metadata={
        "help": "answer budget (default: data/llm/units.BudgetRule)"})
    max_train_docs: int | None = field(default=None, metadata={
        "help": "draw examples from the first N training documents"})
    max_eval_docs: int | None = field(default=None, metadata={"help": "prompt on the first N documents only"})
    max_eval_sentences: int | None = field(default=None, metadata={"help": "cut each document after N sentences"})
    batch_size: int = field(default=8, metadata={"help": "local model: prompts per generation batch"})
    concurrency: int = field(default=4, metadata={"help": "endpoint: requests in flight at most"})
    max_retries: int = field(default=5, metadata={"help": "endpoint: retries of one request (the openai client's)"})
    timeout: float = field(default=120.0, metadata={"help": "endpoint: seconds per request"})
    cache_dir: Path = field(default=ROOT / ".cache" / "prompts", metadata={"help": "endpoint answers, one file each"})
    temperature: float = field(default=0.0, metadata={
        "help": "0: greedy; above 0, sampled answers (seed 3 sampled at 0.5), --repeats per seed"})
    repeats: int = field(default=1, metadata={"help": "with --temperature > 0: sampled runs per seed"})
    repair_model: str | None = field(default=None, metadata={
        "help": "DMCR: answers that do not parse go to this model (local, or the endpoint's model name with "
                "--base-url), with the text and a rewrite instruction; the same as --model_name reuses it"})
    repair_constrained: bool = field(default=True, metadata={
        "help": "DMCR's rewrites go through the format's constraint (data/llm/constraints.py), so they parse"})
    overwrite: bool = field(default=False, metadata={"help": "answer afresh even if outputs exist"})


def selections(args: Args, units: list[Unit], train: list[Unit], seed: int) -> dict[str, list[Example]]:
    """The examples (training units, best first) each unit is shown, keyed by unit id."""
    if args.strategy == "zero_shot":
        return {u.id: [] for u in units}
    key = {u.id: (u.doc_id if args.unit == "document" else u.id.rsplit("/", 1)[0]) for u in units}  # best_examples' ids
    pool = sorted({t.doc_id if args.unit == "document" else t.id.rsplit("/", 1)[0] for t in train})
    if args.strategy in ("fers", "ders"):
        drawn = random_examples(pool, sorted(set(key.values())), args.shots, seed, per_query=args.strategy == "ders")
    else:
        drawn = read_selection(args.examples, sorted(set(key.values())), pool)
    return {u.id: drawn[key[u.id]][:args.shots] for u in units}


def check_examples_file(args: Args) -> None:
    """kate and rag need best_example.json, made without (kate) or with (rag) a reranker, on the same units."""
    if args.strategy not in ("kate", "rag"):
        return
    if args.examples is None:
        raise SystemExit(f"error: --strategy {args.strategy} reads the examples of rag_icl/best_examples.py: "
                         "pass --examples")
    try:
        made = json.loads(args.examples.read_text(encoding="utf-8")).get("settings", {})
    except (OSError, ValueError) as err:
        raise SystemExit(f"error: --examples {args.examples}: {err}") from None
    if bool(made.get("rerank_model_path")) != (args.strategy == "rag") or made.get("unit") != args.unit:
        raise SystemExit(f"error: {args.examples} was made with rerank_model_path={made.get('rerank_model_path')!r}, "
                         f"unit={made.get('unit')!r}: not --strategy {args.strategy} --unit {args.unit}")


def training_unit(args: Args, example: Example, entity_type: str) -> str:
    """The id of an example's per-type training unit (data/llm/units: "<doc>/<k>/<type>")."""
    return f"{example.id}/0/{entity_type}" if args.unit == "document" else f"{example.id}/{entity_type}"


def answer(args: Args, split: UnitSplit, model_name: str, model, tokenizer, store: PredictionStore, seed: int,
           constrained: bool, temperature: float = 0.0) -> dict[str, str]:
    """Every unit's raw answer: from the local model (batched; greedy, or sampled with `seed`) or the endpoint,
    through the store."""
    if not args.base_url:
        return split.generate(model, tokenizer, args.batch_size, constrained, store, temperature, seed)
    client, stats = endpoint_client(args.base_url, args.timeout, args.max_retries)
    todo = [k for k, i in enumerate(split.ids) if i not in store]
    requests = requests_for(split, model_name, seed, constrained, todo, temperature)
    answers = complete_all(client, args.base_url, requests, ResponseCache(args.cache_dir), args.concurrency, stats)
    store.add([{"id": split.ids[k], "output": a["content"], "max_new_tokens": split.budgets[k]}
               for k, a in zip(todo, answers)])
    done = store.outputs()
    return {i: done[i] for i in split.ids}


def repair(args: Args, split: UnitSplit, outputs: dict[str, str], seed: int, settings: dict, out: Path,
           repairer: tuple) -> dict[str, str]:
    """DMCR: the answers that do not parse, rewritten by the repair model (data/llm/prompts.repair); the raw
    answers stay in the outputs file, the rewrites go to `{split}.repaired.jsonl`."""
    model, tokenizer = repairer
    broken = [k for k, u in enumerate(split.units)
              if not split.fmt.parse(outputs[u.id], u.input, split.types).well_formed]
    prompts = [repair_prompt(split.types, split.fmt, split.units[k].input, outputs[split.units[k].id]) for k in broken]
    if model is not None:
        prompts = [chat(tokenizer, p) for p in prompts]
    units = [split.units[k] for k in broken]
    to_repair = UnitSplit(split.name, split.docs, units, split.fmt, split.types, [split.budgets[k] for k in broken],
                          prompts)
    store = PredictionStore(out / f"{args.split}.repaired.jsonl", {**settings, "repair_model": args.repair_model},
                            args.overwrite)
    repaired = answer(args, to_repair, args.repair_model, model, tokenizer, store, seed,
                      args.repair_constrained) if units else {}
    print(f"  DMCR: {len(units):,} of {len(split.units):,} answers did not parse and were rewritten by "
          f"{args.repair_model}")
    return {**outputs, **repaired}


def dmcr_report(repair_model: str, before, after) -> dict:
    """Parse rate, strict F1 and hallucinated mentions before and after the repair."""
    def numbers(scored) -> dict:
        d = scored.diagnostics
        return {"parse_rate": d["parse_rate"], "strict_f1": scored.scores["strict"]["f1"],
                "hallucinated": d["counts"].get("hallucinated", 0), "mentions": d["mentions"]}

    return {"repair_model": repair_model, "before": numbers(before), "after": numbers(after)}


def run_seed(args: Args, task: str, seed: int, repeat: int, split: UnitSplit, train: list[Unit], model, tokenizer,
             repairer: tuple) -> dict:
    """Prompt every unit with its examples, store, place and score the answers of one seed."""
    out = args.output_dir / task / (f"seed{seed}" if args.temperature == 0 else f"seed{seed}-r{repeat}")
    by_id = {t.id: t for t in train}
    examples = selections(args, split.units, train, seed)
    shown = {u.id: [by_id[training_unit(args, e, split.types[0])] for e in examples[u.id]] for u in split.units}
    split.prompts = [few_shot(instruction(split.types, split.fmt), [(t.input, t.output) for t in shown[u.id]], u.input)
                     for u in split.units]
    if model is not None:
        split.prompts = [chat(tokenizer, p) for p in split.prompts]
    settings = {**{k: v for k, v in asdict(args).items() if k not in (
        "output_dir", "seeds", "batch_size", "concurrency", "max_retries", "timeout", "cache_dir", "overwrite")},
                "task": task, "seed": seed, "repeat": repeat,
                "prompts_sha256": hashlib.sha256("\0".join(split.prompts).encode()).hexdigest()}
    store = PredictionStore(out / f"{args.split}.outputs.jsonl", settings, args.overwrite)
    outputs = answer(args, split, args.model_name, model, tokenizer, store, seed * 1000 + repeat, args.constrained,
                     args.temperature)
    scored = score_answers(split, outputs)
    before = None
    if args.repair_model:
        before = scored
        outputs = repair(args, split, outputs, seed, settings, out, repairer)
        scored = score_answers(split, outputs)
    write_jsonl(scored.predictions, out / f"{args.split}.predictions.jsonl", with_text=False)
    metrics = {"method": f"rag_icl:{args.strategy}", "model": args.model_name, "dataset": task, "format": "list",
               "shots": 0 if args.strategy == "zero_shot" else args.shots, "constrained": args.constrained,
               "unit": args.unit, "seed": seed, "temperature": args.temperature, "repeat": repeat,
               args.split: scored.scores,
               "string_sets": string_sets(split.docs, scored.predictions),
               "diagnostics": {args.split: scored.diagnostics},
               "examples_per_unit": dict(sorted(Counter(len(v) for v in examples.values()).items())),
               "examples": {u: [e.id for e in v] for u, v in examples.items()}}
    if before is not None:
        metrics["dmcr"] = dmcr_report(args.repair_model, before, scored)
    write_metrics(out, metrics, settings=run_settings(args))
    label = f"{task} seed {seed}" + (f" repeat {repeat}" if args.temperature else "")
    print_scores(f"{label} {args.split}", scored.scores,
                 f"seed 3's string-set F1 {metrics['string_sets']['f1']:.4f}",
                 f"parse rate {scored.diagnostics['parse_rate']}")
    return metrics


def main(args: Args) -> dict[str, dict]:
    claim_output_dir(args.output_dir, finished=None)  # its answer stores resume
    check_examples_file(args)
    fmt = get_format("list")
    level = "document" if args.unit == "document" else "sentence"
    model = tokenizer = None
    if not args.base_url:
        model, tokenizer = load_generator(args.model_name)
    sizing = tokenizer or load_tokenizer(args.model_name, encoder_decoder=False)
    repairer = (None, None)
    if args.repair_model and not args.base_url:
        repairer = (model, tokenizer) if args.repair_model == args.model_name else load_generator(args.repair_model)
    seeds = args.seeds if args.strategy in ("fers", "ders") else args.seeds[:1]
    shots = 0 if args.strategy == "zero_shot" else args.shots
    summaries = {}
    for task in tasks_of(args.one_dataset, args.datasets_path):
        t, changes = NER_TASKS[task], Counter()
        docs = first_sentences(t.documents(args.split)[:args.max_eval_docs], args.max_eval_sentences, changes)
        types = (t.entity_type,)
        units = make_units(docs, types, fmt, level, per_type=True, max_sentences=WHOLE, respect_entities=False,
                           changes=changes)
        train = make_units(t.documents("train")[:args.max_train_docs], types, fmt, level, per_type=True,
                           max_sentences=WHOLE)
        if not train:
            raise SystemExit(f"error: {task} has no training units to draw examples from")
        rule = BudgetRule.from_training(sizing, train)
        split = UnitSplit(args.split, docs, units, fmt, types, rule.budgets(sizing, units, args.max_new_tokens))
        print(f"{task} {args.split}: {len(docs):,} documents, {len(units):,} prompts; {args.strategy}, "
              f"{shots} shots, seeds {seeds}")
        repeats = range(args.repeats if args.temperature > 0 else 1)
        runs = [run_seed(args, task, seed, repeat, split, train, model, tokenizer, repairer)
                for seed in seeds for repeat in repeats]
        summaries[task] = {"method": f"rag_icl:{args.strategy}", "model": args.model_name, "dataset": task,
                           "shots": shots, "seeds": seeds, "units_changed": dict(changes),
                           "strict_f1": spread([r[args.split]["strict"]["f1"] for r in runs]),
                           "string_set_f1": spread([r["string_sets"]["f1"] for r in runs])}
        write_json(args.output_dir / task / "summary.json", summaries[task])
        strict, strings = summaries[task]["strict_f1"], summaries[task]["string_set_f1"]
        print(f"{task}: strict F1 {strict['mean']:.4f} +- {strict['sd']:.4f}, seed 3's string-set F1 "
              f"{strings['mean']:.4f} +- {strings['sd']:.4f} over {len(runs)} seed(s)")
    return summaries


def spread(values: list[float]) -> dict:
    """Mean and sample standard deviation over seeds (0 for one seed)."""
    return {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def parse_args(argv: list[str] | None = None) -> Args:
    return parse_dataclasses((Args,), __doc__, argv)[0]


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
