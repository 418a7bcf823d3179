"""Prompt an LLM zero- or few-shot for NER (seed 2), locally or through any OpenAI-compatible endpoint,
then score its answers like every other method.

    python generative/prompt.py --dataset_name ncbi_disease --output_dir results/prompt/ncbi_disease
    python generative/prompt.py --dataset_name bc5cdr --shots 3 --output_format json --constrained True \\
        --base-url http://127.0.0.1:8080/v1 --model_name smollm2 --concurrency 2 --output_dir ...
    python -m data.llm.llama_server --model <file.gguf> --host 127.0.0.1 --port 8080   # a local endpoint

The model. Without --base-url, --model_name is a local hub id or path ('smollm2' is the bundled
SmolLM2-135M-Instruct), loaded and run by data/llm/generation.py (greedy, batched). With --base-url, the
requests go to that endpoint through the `openai` client (chat completions, temperature 0, fixed seed)
and --model_name is sent as `model`; the key is read from OPENAI_API_KEY (never logged, never part of a
cache key or any file; data/llm/endpoint.py).

The prompt. One user message: the instruction of data/llm/prompts.py (every type in the registry's
order, the exact answer format with a tiny example, and with --type_definitions a sentence per type as
seed 2 gave), then --shots solved examples, then the unit's text (data/llm/prompts.few_shot). The
examples are drawn once per run (seed --seed) from the TRAINING split's units of the same level that
have at least one entity and are no longer than the median of those (short examples keep a small
model's context free), so every input sees the same examples: results do not depend on which input
drew which example, and a server's prompt cache can reuse the shared prefix. With --example_selection kate
(or rag, reranked by --rerank_model_path) each input is shown instead the training units with entities
nearest to it by embedding, best first (data/llm/examples.py: seed 2's retrieval-augmented prompts).
--input_style tokens shows every input (examples' too) one token per line, as seed 2 did; the bio answer
is still one `word TAG` line per word.

Units. `--level sentence` (default): one prompt per sentence; `--level document`: one per document or
window of --max_sentences sentences (data/llm/units.py). Evaluation units are split without looking at
the gold spans; a gold entity crossing a unit is counted ("crosses_unit_dropped" in metrics.json).

Answers are parsed by data/llm/formats (default "bio": one `word TAG` line per word, as seed 2), turned
into document spans and scored as the decoders' are (eval/answers.py). Budget: --max_new_tokens, by
default per unit as decoders/ size it, in --tokenizer tokens: at most the longest gold answer plus 20 %,
and at most the unit's length times the largest answer-to-text ratio of the training answers. --constrained
True makes every answer parse and never name a mention absent from the input (data/llm/constraints.py):
locally a logits processor per input, on an endpoint the JSON schema or grammar of
data.llm.constraints.server_options (llama.cpp's server takes both).

Requests. Retried by the openai client itself (at most --max_retries times: rate limits, time-outs,
connection errors and 5xx, exponential backoff or the server's Retry-After); at most --concurrency in
flight. Every endpoint answer is cached in --cache_dir, one file per request named by the sha256 of the
canonical JSON of the request (model, messages, every option, base URL), written atomically, so a crashed
or repeated run never pays twice. Clear the cache after changing the weights behind a model name. A request
that still fails ends the run with one line naming the URL, the API key cut out: status 2 for a wrong URL,
a refused connection or a rejected request (4xx), 1 for a failing server, a time-out or an unreadable answer.

Resume. Answers are stored unit by unit in `{split}.outputs.jsonl` (data/llm/generation.PredictionStore;
local models batch by batch, endpoints through the cache): a rerun with the same settings generates only
the units missing, and one with other settings (model, format, shots, budget...) is refused unless
--overwrite True.

Writes to --output_dir: `{split}.outputs.jsonl` (id, raw output, budget), `{split}.predictions.jsonl`
(document-level spans), `metrics.json` ({"method": "prompt", "model", "dataset", "format", "shots",
"constrained", SPLIT: eval/semeval scores, "diagnostics": {SPLIT: eval/diagnostics}, "caps", ...}).
"""
from __future__ import annotations

import hashlib
import json
import random
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence


from data import registry
from data.corpus import FormatError, exit_on_format_error, parse_dataclasses, write_jsonl
from data.llm.endpoint import ResponseCache, complete_all, endpoint_client, requests_for
from data.llm.formats import FORMATS, OutputFormat, get_format
from data.llm.generation import PredictionStore, load_generator, load_tokenizer
from data.llm.prompts import chat, few_shot, instruction
from data.llm.units import LEVELS, BudgetRule, Unit, UnitSplit, make_units
from data.text import first_sentences, tokenize
from eval.answers import score_answers
from eval.runs import claim_output_dir, print_scores, run_settings, timing, write_metrics

ROOT = Path(__file__).resolve().parent.parent
LOCAL = "local"  # the base URL metrics.json names for a local model


@dataclass
class Args:
    dataset_name: str = field(metadata={"help": f"a registry name ({', '.join(registry.DATASETS)})"})
    output_dir: Path = field(metadata={"help": "outputs, predictions and metrics.json go here"})
    model_name: str = field(default="smollm2", metadata={
        "help": "local hub id or path ('smollm2' = bundled SmolLM2-135M-Instruct); with --base-url, the model "
                "name sent to the endpoint"})
    base_url: str | None = field(default=None, metadata={
        "help": "an OpenAI-compatible endpoint (e.g. http://127.0.0.1:8080/v1); key from OPENAI_API_KEY"})
    split: str = field(default="test", metadata={"help": "the split to prompt on and score"})
    output_format: str = field(default="bio", metadata={"choices": list(FORMATS), "help": "data/llm/formats"})
    shots: int = field(default=0, metadata={"help": "solved training examples per prompt (0 = zero-shot)"})
    example_selection: str = field(default="random", metadata={
        "choices": ("random", "kate", "rag"),
        "help": "random: one set drawn for every input; kate: per input, the nearest training units by embedding; "
                "rag: kate's --k nearest reranked by --rerank_model_path (data/llm/examples.py; seed 2's RAG)"})
    embedding_model_path: str = field(default="minilm", metadata={"help": "kate and rag: the embedding model"})
    rerank_model_path: str | None = field(default=None, metadata={"help": "rag: a cross-encoder"})
    k: int = field(default=30, metadata={"help": "rag: units retrieved before reranking"})
    input_style: str = field(default="text", metadata={
        "choices": ("text", "tokens"),
        "help": "how inputs are shown: as text, or one token per line (seed 2's token-level prompts)"})
    type_definitions: Path | None = field(default=None, metadata={
        "help": "JSON file {type: one-sentence definition} for every type, added to the instruction"})
    level: str = field(default="sentence", metadata={"choices": LEVELS})
    max_sentences: int = field(default=10, metadata={"help": "document level: sentences per window"})
    max_eval_docs: int | None = field(default=None, metadata={"help": "prompt only the first N documents"})
    max_eval_sentences: int | None = field(default=None, metadata={
        "help": "cut each evaluated document after its first N sentences (data.text.first_sentences)"})
    max_new_tokens: int | None = field(default=None, metadata={
        "help": "answer budget of every unit (default: per unit, data/llm/units.BudgetRule)"})
    tokenizer: str | None = field(default=None, metadata={
        "help": "tokenizer that sizes the default budget (default: --model_name)"})
    constrained: bool = field(default=False, metadata={"help": "constrained decoding (data/llm/constraints.py)"})
    seed: int = 42
    batch_size: int = field(default=8, metadata={"help": "local model: prompts per generation batch"})
    concurrency: int = field(default=4, metadata={"help": "endpoint: requests in flight at most"})
    max_retries: int = field(default=5, metadata={"help": "endpoint: retries of one request at most (the openai "
                                                          "client's own policy)"})
    timeout: float = field(default=120.0, metadata={"help": "endpoint: seconds per request"})
    cache_dir: Path = field(default=ROOT / ".cache" / "prompts", metadata={"help": "one file per answered request"})
    overwrite: bool = field(default=False, metadata={"help": "answer afresh even if {split}.outputs.jsonl exists"})


def task_text(types: Sequence[str], fmt: OutputFormat, definitions: Path | None) -> str:
    """The instruction, plus one definition per type when a definitions file is given (seed 2)."""
    text = instruction(types, fmt)
    if definitions is None:
        return text
    try:
        defs = json.loads(definitions.read_text(encoding="utf-8"))
    except ValueError as err:
        raise FormatError(definitions, None, f"not JSON: {err}") from None
    if not isinstance(defs, dict) or set(defs) != set(types) or not all(isinstance(v, str) for v in defs.values()):
        raise FormatError(definitions, None, f"must map exactly the types {list(types)} to a sentence each, "
                                             f"got {sorted(defs) if isinstance(defs, dict) else type(defs).__name__}")
    return text + "\nThe entity types:\n" + "\n".join(f"- {t}: {defs[t]}" for t in types)


def pick_examples(train_units: Sequence[Unit], k: int, seed: int) -> list[Unit]:
    """k training units with entities, no longer than the median of those, drawn with a fixed seed."""
    with_entities = [u for u in train_units if u.entities]
    if not with_entities:
        raise SystemExit("error: no training unit has an entity to show as an example")
    median = statistics.median(len(u.input) for u in with_entities)
    short = [u for u in with_entities if len(u.input) <= median]
    if k > len(short):
        raise SystemExit(f"error: --shots {k} but only {len(short)} short training units have entities")
    return random.Random(seed).sample(short, k)


def choose_examples(args: Args, units: Sequence[Unit], train_units: Sequence[Unit]) -> dict[str, list[Unit]]:
    """The solved examples each unit is shown, best first: one random set for all (--example_selection random), or
    per unit the training units nearest by embedding (kate), reranked (rag)."""
    if not args.shots:
        return {u.id: [] for u in units}
    if args.example_selection == "random":
        fixed = pick_examples(train_units, args.shots, args.seed)
        return {u.id: fixed for u in units}
    from data.llm.examples import ExampleIndex, Reranker, fingerprint, retrieve_and_rerank

    pool = {t.id: t for t in train_units if t.entities}  # examples worth showing name something
    if not pool:
        raise SystemExit("error: no training unit has an entity to show as an example")
    texts = {i: t.input for i, t in pool.items()}
    made = fingerprint(texts, args.embedding_model_path, "flat")  # one saved index per pool and model
    key = hashlib.sha256(json.dumps(made, sort_keys=True).encode()).hexdigest()[:16]
    index = ExampleIndex(texts, args.embedding_model_path, ROOT / ".cache" / "prompt_index" / key)
    reranker = Reranker(args.rerank_model_path) if args.example_selection == "rag" else None
    if args.example_selection == "rag" and not args.rerank_model_path:
        raise SystemExit("error: --example_selection rag needs --rerank_model_path "
                         "(rag_icl/train_reranker.py makes one)")
    k = max(args.k, args.shots) if reranker else args.shots
    return {u.id: [pool[e.id] for e in retrieve_and_rerank(index, reranker, u.input, k, args.shots, None)]
            for u in units}


def shared_examples(args: Args, units: Sequence[Unit], chosen: dict[str, list[Unit]]) -> list[str]:
    """The ids of the examples every unit was shown (random selection), else none: each unit got its own."""
    return [e.id for e in chosen[units[0].id]] if args.example_selection == "random" and units else []


def render_tokens(text: str) -> str:
    """One token per line (data.text.tokenize), as seed 2 showed its inputs."""
    return "\n".join(text[s:e] for s, e in tokenize(text))


def sizing_tokenizer(args: Args, tokenizer):
    """The tokenizer that sizes answer budgets: the local model's, else --tokenizer or --model_name."""
    if tokenizer is not None or args.max_new_tokens:
        return tokenizer
    name = args.tokenizer or args.model_name
    try:
        return load_tokenizer(name, encoder_decoder=False)
    except OSError as err:
        raise SystemExit(f"error: no tokenizer {name!r} to size answers ({err}); give --tokenizer or "
                         "--max_new_tokens") from None


def answer_endpoint(args: Args, split: UnitSplit, store: PredictionStore) -> Counter:
    """The endpoint's answers to the units the store lacks (through the response cache), stored in unit
    order; the request counts."""
    client, stats = endpoint_client(args.base_url, args.timeout, args.max_retries)
    todo = [k for k, i in enumerate(split.ids) if i not in store]
    if len(todo) < len(split.units):
        print(f"{store.path}: {len(split.units) - len(todo):,} of {len(split.units):,} outputs already there, "
              f"asking for {len(todo):,}")
    requests = requests_for(split, args.model_name, args.seed, args.constrained, todo)
    answers = complete_all(client, args.base_url, requests, ResponseCache(args.cache_dir), args.concurrency, stats)
    store.add([{"id": split.ids[k], "output": a["content"], "max_new_tokens": split.budgets[k],
                "finish_reason": a["finish_reason"]} for k, a in zip(todo, answers)])
    return stats


def main(args: Args) -> dict:
    claim_output_dir(args.output_dir, finished=None)  # its answer store resumes
    ds = registry.get(args.dataset_name)
    fmt, types = get_format(args.output_format, nested=registry.nested(args.dataset_name)), ds.types
    changes: Counter = Counter()
    docs = first_sentences(registry.load(args.dataset_name, args.split)[:args.max_eval_docs],
                           args.max_eval_sentences, changes)
    units = make_units(docs, types, fmt, args.level, max_sentences=args.max_sentences, respect_entities=False,
                       changes=changes)
    train_units: list[Unit] = []  # the training split's units, gold answers included: examples and budgets
    if args.shots or not args.max_new_tokens:
        if "train" not in ds.splits:
            raise SystemExit(f"error: {args.dataset_name} has no train split to draw examples from or to size "
                             "answers with: use --shots 0 and --max_new_tokens")
        train_units = make_units(registry.load(args.dataset_name, "train"), types, fmt, args.level,
                                 max_sentences=args.max_sentences)
    chosen = choose_examples(args, units, train_units)
    task = task_text(types, fmt, args.type_definitions)
    shown = render_tokens if args.input_style == "tokens" else str
    prompts = [few_shot(task, [(shown(e.input), e.output) for e in chosen[u.id]], shown(u.input)) for u in units]
    print(f"{args.dataset_name} {args.split}: {len(docs)} documents, {len(units)} units; {args.shots}-shot, "
          f"format {fmt.name}, {'constrained' if args.constrained else 'unconstrained'}")
    model = tokenizer = None
    if not args.base_url:
        model, tokenizer = load_generator(args.model_name)
        prompts = [chat(tokenizer, p) for p in prompts]
    tokenizer = sizing_tokenizer(args, tokenizer)
    budgets = ([args.max_new_tokens] * len(units) if args.max_new_tokens else
               BudgetRule.from_training(tokenizer, train_units).budgets(tokenizer, units))
    split = UnitSplit(args.split, docs, units, fmt, types, budgets, prompts)
    settings = {**{k: v for k, v in asdict(args).items()
                   if k not in ("output_dir", "batch_size", "concurrency", "max_retries", "timeout", "cache_dir",
                                "overwrite")},
                "prompts_sha256": hashlib.sha256("\0".join(prompts).encode()).hexdigest()}
    store = PredictionStore(args.output_dir / f"{args.split}.outputs.jsonl", settings, args.overwrite)
    stored, started = len(store), time.time()
    if args.base_url:
        stats = answer_endpoint(args, split, store)
    else:
        todo = sum(i not in store for i in split.ids)
        split.generate(model, tokenizer, args.batch_size, args.constrained, store)
        stats = Counter(requests=todo, sent=todo)
    seconds = time.time() - started
    print(f"requests sent: {stats['sent']}, cache hits: {stats['cache_hits']}")
    outputs = store.outputs()
    scored = score_answers(split, outputs)
    write_jsonl(scored.predictions, args.output_dir / f"{args.split}.predictions.jsonl", with_text=False)
    metrics = {"method": "prompt", "model": args.model_name, "base_url": args.base_url or LOCAL,
               "dataset": args.dataset_name, "format": fmt.name, "shots": args.shots, "constrained": args.constrained,
               "level": args.level, "seed": args.seed, args.split: scored.scores,
               "diagnostics": {args.split: scored.diagnostics},
               "caps": {"max_eval_docs": args.max_eval_docs, "max_eval_sentences": args.max_eval_sentences,
                        "max_new_tokens": max(budgets, default=0)},
               "units": {"count": len(units), **changes}, "example_selection": args.example_selection,
               "input_style": args.input_style,
               "examples": shared_examples(args, units, chosen),
               "retrieved_examples": ({u.id: [e.id for e in chosen[u.id]] for u in units}
                                      if args.example_selection != "random" else None),
               "finish_reasons": dict(Counter(str(store.records[i].get("finish_reason")) for i in split.ids)),
               "requests": dict(stats),
               # a speed only when every answer was made now (not read from the store or the cache)
               "timing": {} if stored or stats["cache_hits"] else {args.split: timing(seconds, docs)}}
    write_metrics(args.output_dir, metrics, settings=run_settings(args))
    print_scores(args.split, scored.scores, f"parse rate {scored.diagnostics['parse_rate']}")
    return metrics


def parse_args(argv: list[str] | None = None) -> Args:
    return parse_dataclasses((Args,), __doc__, argv)[0]


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
