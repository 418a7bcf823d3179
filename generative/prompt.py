"""Prompt an LLM zero- or few-shot for NER (seed 2), locally or through any OpenAI-compatible endpoint,
then score its answers like every other method.

    python generative/prompt.py --dataset_name ncbi_disease --output_dir results/prompt/ncbi_disease
    python generative/prompt.py --dataset_name bc5cdr --shots 3 --output_format json --constrained True \\
        --base-url http://127.0.0.1:8080/v1 --model_name smollm2 --concurrency 2 --output_dir ...
    python -m llama_cpp.server --model <file.gguf> --host 127.0.0.1 --port 8080   # a local endpoint

The model. Without --base-url, --model_name is a local hub id or path ('smollm2' is the bundled
SmolLM2-135M-Instruct), loaded and run by data/generation.py (greedy, batched). With --base-url, the
requests go to that endpoint through the `openai` client (chat completions, temperature 0, fixed seed)
and --model_name is sent as `model`; the key is read from OPENAI_API_KEY (never logged, never part of a
cache key or any file).

The prompt. One user message: the instruction of data/instructions.py (every type in the registry's
order, the exact answer format with a tiny example, and with --type_definitions a sentence per type as
seed 2 gave), then --shots solved examples, then the unit's text (data/instructions.few_shot). The
examples are drawn once per run (seed --seed) from the TRAINING split's units of the same level that
have at least one entity and are no longer than the median of those (short examples keep a small
model's context free), so every input sees the same examples: results do not depend on which input
drew which example, and a server's prompt cache can reuse the shared prefix.

Units. `--level sentence` (default): one prompt per sentence; `--level document`: one per document or
window of --max_sentences sentences (data/instructions.py). Evaluation units are split without looking at
the gold spans; a gold entity crossing a unit is counted ("crosses_unit_dropped" in metrics.json).

Answers are parsed by data/formats.py (default "bio": one `word TAG` line per word, as seed 2), turned
into document spans and scored as the decoders' are (decoders/units.py). Budget: --max_new_tokens, by
default per unit as decoders/ size it, in --tokenizer tokens: at most the longest gold answer plus 20 %,
and at most the unit's length times the largest answer-to-text ratio of the training answers. --constrained True makes every answer parse and never name a
mention absent from the input (data/constraints.py): locally a logits processor per input, on an endpoint
the JSON schema or grammar of data.constraints.server_options (llama.cpp's server takes both).

Requests. Retried with exponential backoff (and the server's Retry-After) on rate limits, time-outs,
connection errors and 5xx, at most --max_retries times; at most --concurrency in flight. Every answer is
cached in --cache_dir, one file per request named by the sha256 of the canonical JSON of the request
(model, messages, every option, base URL; "local" for local models), written atomically, so a crashed or
repeated run never pays twice: a rerun sends only what is missing. Clear the cache after changing the
weights behind a model name.

Writes to --output_dir: `{split}.outputs.jsonl` (id, doc_id, start, raw output), `{split}.predictions.jsonl`
(document-level spans), `metrics.json` ({"method": "prompt", "model", "dataset", "format", "shots",
"constrained", SPLIT: eval/semeval scores, "diagnostics": {SPLIT: eval/diagnostics}, "caps", ...}).
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence
from urllib.parse import urlsplit

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai
from tqdm import tqdm
from transformers import HfArgumentParser

from data import registry
from data.corpus import Document, FormatError, HelpFormatter, exit_on_format_error
from data.formats import FORMATS, OutputFormat, get_format
from data.instructions import LEVELS, few_shot, instruction, records
from data.text import first_sentences
from decoders.units import budget_rule, constraints_for, finish
from decoders.units import budgets as unit_budgets

ROOT = Path(__file__).resolve().parent.parent
LOCAL = "local"  # the base URL part of a local model's cache key
RETRY_STATUS = {408, 409, 429}  # plus every 5xx: the statuses worth another try (as openai's own policy)


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
    output_format: str = field(default="bio", metadata={"choices": list(FORMATS), "help": "data/formats.py"})
    shots: int = field(default=0, metadata={"help": "solved training examples per prompt (0 = zero-shot)"})
    type_definitions: Path | None = field(default=None, metadata={
        "help": "JSON file {type: one-sentence definition} for every type, added to the instruction"})
    level: str = field(default="sentence", metadata={"choices": LEVELS})
    max_sentences: int = field(default=10, metadata={"help": "document level: sentences per window"})
    max_eval_docs: int | None = field(default=None, metadata={"help": "prompt only the first N documents"})
    max_eval_sentences: int | None = field(default=None, metadata={
        "help": "cut each evaluated document after its first N sentences (data.text.first_sentences)"})
    max_new_tokens: int | None = field(default=None, metadata={
        "help": "answer budget of every unit (default: per unit, decoders/units.budgets)"})
    tokenizer: str | None = field(default=None, metadata={
        "help": "tokenizer that sizes the default budget (default: --model_name)"})
    constrained: bool = field(default=False, metadata={"help": "constrained decoding (data/constraints.py)"})
    seed: int = 42
    batch_size: int = field(default=8, metadata={"help": "local model: prompts per generation batch"})
    concurrency: int = field(default=4, metadata={"help": "endpoint: requests in flight at most"})
    max_retries: int = field(default=5, metadata={"help": "endpoint: retries of one request at most"})
    backoff: float = field(default=1.0, metadata={"help": "endpoint: first retry delay in s, doubled each time"})
    timeout: float = field(default=120.0, metadata={"help": "endpoint: seconds per request"})
    cache_dir: Path = field(default=ROOT / ".cache" / "prompts", metadata={"help": "one file per answered request"})


# --------------------------------------------------------------------------- cache
class ResponseCache:
    """Answers on disk, one JSON file per request named by the sha256 of its canonical JSON. A file is
    written to a temporary name and renamed, so a crash leaves either the whole entry or none."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    @staticmethod
    def key(request: dict) -> str:
        canonical = json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, request: dict) -> dict | None:
        path = self.path(self.key(request))
        try:
            return json.loads(path.read_text(encoding="utf-8"))["response"]
        except FileNotFoundError:
            return None
        except (ValueError, KeyError) as err:  # only a hand-edited file can get here: writes are atomic
            raise FormatError(path, None, f"unreadable cache entry ({err}); delete it to ask again") from None

    def put(self, request: dict, response: dict) -> None:
        path = self.path(self.key(request))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"request": request, "response": response}, fh, ensure_ascii=False)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# --------------------------------------------------------------------------- endpoint requests
def retryable(err: Exception) -> bool:
    """Rate limits, time-outs, lost connections and server errors: worth another try."""
    if isinstance(err, openai.APIConnectionError):  # includes APITimeoutError
        return True
    return isinstance(err, openai.APIStatusError) and (err.status_code in RETRY_STATUS or err.status_code >= 500)


def retry_delay(err: Exception, attempt: int, backoff: float, rng: random.Random) -> float:
    """The server's Retry-After when it gives one (capped at a minute), else backoff * 2^attempt with
    jitter in [0.5, 1) so that concurrent workers do not retry in lock step."""
    response = getattr(err, "response", None)
    after = response.headers.get("retry-after") if response is not None else None
    try:
        return min(60.0, float(after))
    except (TypeError, ValueError):
        return backoff * 2 ** attempt * rng.uniform(0.5, 1.0)


def call_with_retries(client, request: dict, max_retries: int, backoff: float,
                      sleep: Callable[[float], None] = time.sleep, stats: Counter | None = None) -> dict:
    """One chat completion, retried on transient errors; returns {"content", "finish_reason"}."""
    stats = Counter() if stats is None else stats
    rng = random.Random(ResponseCache.key(request))
    attempt = 0
    while True:
        try:
            stats["sent"] += 1
            completion = client.chat.completions.create(**request)
            choice = completion.choices[0]
            return {"content": choice.message.content or "", "finish_reason": choice.finish_reason}
        except openai.APIError as err:
            if attempt >= max_retries or not retryable(err):
                raise
            stats["retries"] += 1
            sleep(retry_delay(err, attempt, backoff, rng))
            attempt += 1


def complete_all(client, base_url: str, requests: Sequence[dict], cache: ResponseCache, concurrency: int,
                 max_retries: int, backoff: float, sleep: Callable[[float], None] = time.sleep) -> tuple[list[dict], Counter]:
    """Answers to all requests, in order: cached ones from disk, the others from the endpoint with at most
    `concurrency` in flight, each cached as soon as it arrives. Identical requests are sent once.
    Stats: requests (distinct), cache_hits, sent (API calls, retries included), retries."""
    keyed = [{"base_url": base_url, **r} for r in requests]  # what the cache key covers; never the API key
    answers: dict[str, dict] = {}
    todo: dict[str, tuple[dict, dict]] = {}
    for request, full in zip(requests, keyed):
        key = ResponseCache.key(full)
        if key in answers or key in todo:
            continue
        hit = cache.get(full)
        if hit is None:
            todo[key] = (request, full)
        else:
            answers[key] = hit
    stats = Counter(requests=len(answers) + len(todo), cache_hits=len(answers))
    lock = threading.Lock()

    def one(key: str, request: dict, full: dict) -> None:
        local: Counter = Counter()
        try:
            response = call_with_retries(client, request, max_retries, backoff, sleep, local)
        finally:
            with lock:
                stats.update(local)
        cache.put(full, response)
        with lock:
            answers[key] = response

    failed: list[BaseException] = []
    if todo:
        with ThreadPoolExecutor(max_workers=concurrency) as pool, tqdm(total=len(todo), desc="requests") as bar:
            futures = [pool.submit(one, key, *pair) for key, pair in todo.items()]
            for future in futures:
                future.add_done_callback(lambda _: bar.update())
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:  # stop sending; requests already in flight finish and are cached
                future.cancel()
            failed = [f.exception() for f in done if f.exception() is not None]
    if failed:
        raise SystemExit(f"error: a request failed ({type(failed[0]).__name__}: {failed[0]}); "
                         f"{len(answers)} answers are cached in {cache.folder}: rerun to continue")
    return [answers[ResponseCache.key(full)] for full in keyed], stats


def endpoint_requests(args: Args, prompts: Sequence[str], units: Sequence[dict], fmt: OutputFormat,
                      types: Sequence[str], max_new_tokens: Sequence[int]) -> list[dict]:
    """One chat-completion request (the keyword arguments of `create`) per unit."""
    out = []
    for text, unit, budget in zip(prompts, units, max_new_tokens):
        request = {"model": args.model_name, "messages": [{"role": "user", "content": text}],
                   "temperature": 0, "seed": args.seed, "max_tokens": budget}
        if args.constrained:
            from data.constraints import server_options
            request.update(server_options(fmt, unit["input"], types))
        out.append(request)
    return out


def check_base_url(base_url: str) -> None:
    """A key inside the URL would end up in cache files and logs: it belongs in OPENAI_API_KEY."""
    parts = urlsplit(base_url)
    if parts.password or parts.username:
        raise SystemExit("error: --base-url must not hold credentials; set OPENAI_API_KEY instead")


def run_endpoint(args: Args, prompts: Sequence[str], units: Sequence[dict], fmt: OutputFormat,
                 types: Sequence[str], max_new_tokens: Sequence[int], cache: ResponseCache) -> tuple[list[dict], Counter]:
    check_base_url(args.base_url)
    client = openai.OpenAI(base_url=args.base_url, api_key=os.environ.get("OPENAI_API_KEY", "none"),
                           max_retries=0, timeout=args.timeout)  # one retry policy: ours
    requests = endpoint_requests(args, prompts, units, fmt, types, max_new_tokens)
    return complete_all(client, args.base_url, requests, cache, args.concurrency, args.max_retries, args.backoff)


# --------------------------------------------------------------------------- local model
def run_local(args: Args, model, tokenizer, prompts: Sequence[str], units: Sequence[dict], fmt: OutputFormat,
              types: Sequence[str], max_new_tokens: Sequence[int], cache: ResponseCache) -> tuple[list[dict], Counter]:
    """Answers from a local model (data.generation), cached like endpoint answers batch by batch, so a
    crash loses at most the batch being generated."""
    from data.generation import chat, generate

    texts = [chat(tokenizer, p) for p in prompts]
    keyed = [{"base_url": LOCAL, "model": args.model_name, "prompt": t, "max_new_tokens": n,
              "constrained": args.constrained} for t, n in zip(texts, max_new_tokens)]
    answers = [cache.get(k) for k in keyed]
    todo = [i for i, a in enumerate(answers) if a is None]
    stats = Counter(requests=len(keyed), cache_hits=len(keyed) - len(todo), sent=len(todo))
    constraints = None
    if args.constrained:
        constraints = constraints_for([units[i] for i in todo], fmt, types, tokenizer, [max_new_tokens[i] for i in todo])

    def save(rows: list[int], outputs: list[str]) -> None:
        for row, text in zip(rows, outputs):
            answers[todo[row]] = {"content": text, "finish_reason": None}
            cache.put(keyed[todo[row]], answers[todo[row]])

    generate(model, tokenizer, [texts[i] for i in todo], [max_new_tokens[i] for i in todo], args.batch_size, constraints,
             desc="generate", on_batch=save)
    return answers, stats  # type: ignore[return-value]


# --------------------------------------------------------------------------- prompts, units, results
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


def pick_examples(train_units: Sequence[dict], k: int, seed: int) -> list[dict]:
    """k training units with entities, no longer than the median of those, drawn with a fixed seed."""
    with_entities = [u for u in train_units if u["entities"]]
    if not with_entities:
        raise SystemExit("error: no training unit has an entity to show as an example")
    median = statistics.median(len(u["input"]) for u in with_entities)
    short = [u for u in with_entities if len(u["input"]) <= median]
    if k > len(short):
        raise SystemExit(f"error: --shots {k} but only {len(short)} short training units have entities")
    return random.Random(seed).sample(short, k)


def budgets(args: Args, tokenizer, train_units: Sequence[dict], units: Sequence[dict]) -> list[int]:
    """--max_new_tokens for every unit, else per unit as decoders/ size them (decoders/units.budgets: the
    longest gold answer, and the training answers' answer-to-text length ratio)."""
    if args.max_new_tokens:
        return [args.max_new_tokens] * len(units)
    if tokenizer is None:
        from transformers import AutoTokenizer
        from data.models import resolve
        name = args.tokenizer or args.model_name
        try:
            tokenizer = AutoTokenizer.from_pretrained(resolve(name))
        except OSError as err:
            raise SystemExit(f"error: no tokenizer {name!r} to size answers ({err}); give --tokenizer or "
                             "--max_new_tokens") from None
    return unit_budgets(tokenizer, budget_rule(tokenizer, train_units), units)


def write_results(args: Args, docs: Sequence[Document], units: Sequence[dict], answers: Sequence[dict],
                  fmt: OutputFormat, types: Sequence[str], extra: dict) -> dict:
    args.output_dir.mkdir(parents=True, exist_ok=True)
    outputs = [a["content"] for a in answers]
    with open(args.output_dir / f"{args.split}.outputs.jsonl", "w", encoding="utf-8") as fh:
        for unit, output in zip(units, outputs):
            fh.write(json.dumps({"id": unit["id"], "doc_id": unit["doc_id"], "start": unit["start"],
                                 "output": output}, ensure_ascii=False) + "\n")
    result = finish(args.split, docs, units, {u["id"]: o for u, o in zip(units, outputs)}, fmt, types,
                    args.output_dir)
    metrics = {"method": "prompt", "model": args.model_name, "base_url": args.base_url or LOCAL,
               "dataset": args.dataset_name, "format": fmt.name, "shots": args.shots, "constrained": args.constrained,
               "level": args.level, args.split: result["scores"], "diagnostics": {args.split: result["diagnostics"]},
               **extra}
    (args.output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    s = metrics[args.split]["strict"]
    print(f"{args.split}: strict P {s['precision']:.4f} R {s['recall']:.4f} F1 {s['f1']:.4f}; "
          f"parse rate {result['diagnostics']['parse_rate']}")
    return metrics


def main(args: Args) -> dict:
    fmt, ds = get_format(args.output_format), registry.get(args.dataset_name)
    types = ds.types
    changes: Counter = Counter()
    docs = first_sentences(registry.load(args.dataset_name, args.split)[:args.max_eval_docs],
                           args.max_eval_sentences, changes)
    units = list(records(docs, types, fmt, args.level, max_sentences=args.max_sentences, respect_entities=False,
                         changes=changes))
    train_units = None  # the training split's units, gold answers included: examples and the answer budget
    if args.shots or not args.max_new_tokens:
        if "train" not in ds.splits:
            raise SystemExit(f"error: {args.dataset_name} has no train split to draw examples from or to size "
                             "answers with: use --shots 0 and --max_new_tokens")
        train_units = list(records(registry.load(args.dataset_name, "train"), types, fmt, args.level,
                                   max_sentences=args.max_sentences))
    examples = pick_examples(train_units, args.shots, args.seed) if args.shots else []
    task = task_text(types, fmt, args.type_definitions)
    prompts = [few_shot(task, [(e["input"], e["output"]) for e in examples], u["input"]) for u in units]
    cache = ResponseCache(args.cache_dir)
    print(f"{args.dataset_name} {args.split}: {len(docs)} documents, {len(units)} units; {args.shots}-shot, "
          f"format {fmt.name}, {'constrained' if args.constrained else 'unconstrained'}")
    if args.base_url:
        max_new_tokens = budgets(args, None, train_units, units)
        answers, stats = run_endpoint(args, prompts, units, fmt, types, max_new_tokens, cache)
    else:
        from data.generation import load_generator
        model, tokenizer = load_generator(args.model_name)
        max_new_tokens = budgets(args, tokenizer, train_units, units)
        answers, stats = run_local(args, model, tokenizer, prompts, units, fmt, types, max_new_tokens, cache)
    print(f"requests sent: {stats['sent']}, cache hits: {stats['cache_hits']} (retries: {stats['retries']})")
    extra = {"caps": {"max_eval_docs": args.max_eval_docs, "max_eval_sentences": args.max_eval_sentences,
                      "max_new_tokens": max(max_new_tokens, default=0)},
             "units": {"count": len(units), **changes}, "examples": [e["id"] for e in examples],
             "finish_reasons": dict(Counter(str(a["finish_reason"]) for a in answers)),
             "requests": dict(stats)}
    return write_results(args, docs, units, answers, fmt, types, extra)


def parse_args(argv: list[str] | None = None) -> Args:
    parser = HfArgumentParser(Args, description=__doc__, formatter_class=HelpFormatter)
    (args,) = parser.parse_args_into_dataclasses(args=argv)
    return args


if __name__ == "__main__":
    exit_on_format_error(lambda: main(parse_args()))
