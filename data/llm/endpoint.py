"""Prompting an OpenAI-compatible endpoint (an API, or llama.cpp's server on loopback): the client, the
requests of one split, and an on-disk cache of every answer.

    client, stats = endpoint_client("http://127.0.0.1:8080/v1", timeout=120, max_retries=5)
    answers = complete_all(client, base_url, requests_for(split, "smollm2", seed=42), cache, concurrency=2, stats)

The key comes from OPENAI_API_KEY and never enters a request, a cache key, a file or a log. Retries are the
openai client's own (`max_retries`): rate limits (429), time-outs (408), conflicts (409), server errors
(5xx) and lost connections, with exponential backoff from 0.5 s (jittered, at most 8 s) or the server's
Retry-After. Every answer is cached in one file per request, named by the sha256 of the canonical JSON of
the request (model, messages, every option, base URL), written atomically: a crashed or repeated run never
pays twice. The cache sits under data/llm/generation.PredictionStore: a script stores each unit's answer
there, and asks the endpoint (through the cache) only for the units the store lacks.

A request that fails for good (its retries spent) ends the run with one line naming the URL and what is
cached: no server there, a refused connection or a rejected request (HTTP 4xx other than 408, 409, 429)
are the user's everyday mistakes, an InputError (status 2); a server that keeps failing (5xx, 429), times
out or answers something that is no chat completion is a SystemExit (status 1). Servers' error texts may
echo the request's headers: the key, and any bearer token, are cut from every line before it is printed
(`redact`).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from collections import Counter
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Sequence
from urllib.parse import urlsplit

import openai
from tqdm import tqdm

from data.corpus import FormatError, InputError
from data.llm.units import UnitSplit

KEY_VARIABLE = "OPENAI_API_KEY"
BEARER = re.compile(r"(?i)(bearer\s+)[^\s'\",}]+")
RETRYABLE = frozenset({408, 409, 429})  # the 4xx the openai client retries: not the user's mistake


class UnreadableResponse(Exception):
    """An answer that is no chat completion (not JSON, or without choices): the openai client would hand back
    the text, or a model missing its fields."""


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


def check_base_url(base_url: str) -> None:
    """A key inside the URL would end up in cache files and logs: it belongs in OPENAI_API_KEY."""
    parts = urlsplit(base_url)
    if parts.password or parts.username:
        raise SystemExit("error: --base-url must not hold credentials; set OPENAI_API_KEY instead")


def endpoint_client(base_url: str, timeout: float, max_retries: int, transport=None) -> tuple[openai.OpenAI, Counter]:
    """The openai client (its own retry policy, module docstring) and a counter of the HTTP requests it
    sends, retries included ("sent"), and of the retries ("retried": the client numbers each try in a
    header). `transport` replaces the network (tests)."""
    check_base_url(base_url)
    stats: Counter = Counter()
    lock = threading.Lock()

    def count(request) -> None:
        with lock:
            stats["sent"] += 1
            stats["retried"] += request.headers.get("x-stainless-retry-count", "0") != "0"

    http = openai.DefaultHttpx2Client(event_hooks={"request": [count]}, transport=transport, timeout=timeout)
    client = openai.OpenAI(base_url=base_url, api_key=os.environ.get(KEY_VARIABLE, "none"),
                           max_retries=max_retries, timeout=timeout, http_client=http)
    return client, stats


def requests_for(split: UnitSplit, model: str, seed: int, constrained: bool, rows: Sequence[int],
                 temperature: float = 0) -> list[dict]:
    """One chat-completion request (the keyword arguments of `create`) per unit in `rows`: the unit's prompt
    as the user message, greedy (temperature 0) unless asked, the seed, its budget as max_tokens, and with
    `constrained` the format's JSON schema or GBNF grammar (llama.cpp's server takes both)."""
    out = []
    for k in rows:
        request = {"model": model, "messages": [{"role": "user", "content": split.prompts[k]}],
                   "temperature": temperature, "seed": seed, "max_tokens": split.budgets[k]}
        if constrained:
            if not split.types:
                raise ValueError("a constraint needs at least one entity type")
            request.update(split.fmt.server_options(split.units[k].input, split.types))
        out.append(request)
    return out


def complete(client: openai.OpenAI, request: dict) -> dict:
    """One chat completion: {"content", "finish_reason"}."""
    try:
        response = client.chat.completions.create(**request)
    except json.JSONDecodeError as err:  # declared JSON, was not
        raise UnreadableResponse(f"invalid JSON ({err})") from None
    try:
        choice = response.choices[0]
        return {"content": choice.message.content or "", "finish_reason": choice.finish_reason}
    except (AttributeError, IndexError, TypeError):
        raise UnreadableResponse(f"no chat completion: {redact(str(response))[:200]!r}") from None


def redact(text: str) -> str:
    """`text` without the API key or any bearer token: a server's error may echo the request's headers."""
    key = os.environ.get(KEY_VARIABLE)
    if key:
        text = text.replace(key, f"[{KEY_VARIABLE}]")
    return BEARER.sub(r"\1[redacted]", text)


def failure(base_url: str, err: BaseException, saved: str) -> Exception:
    """The one line a request that failed for good ends the run with (module docstring): the URL, what went
    wrong, what is saved; an InputError for the user's mistakes, else a SystemExit. Anything else is a bug
    and keeps its traceback."""
    if isinstance(err, openai.APITimeoutError):
        what, mistake = "no answer within the time-out (--timeout)", False
    elif isinstance(err, openai.APIConnectionError):
        what, mistake = f"cannot connect ({err.__cause__ or err})", True
    elif isinstance(err, openai.APIStatusError):
        body = " ".join(redact(err.response.text).split())[:300]  # redacted before it is cut: no key half
        what = f"HTTP {err.status_code}{': ' + body if body else ''}"
        mistake = err.status_code < 500 and err.status_code not in RETRYABLE
    elif isinstance(err, UnreadableResponse):
        what, mistake = str(err), False
    else:
        return err
    line = redact(f"{base_url}: {what}; {saved}")
    return InputError(line) if mistake else SystemExit(f"error: {line}")


def complete_all(client: openai.OpenAI, base_url: str, requests: Sequence[dict], cache: ResponseCache,
                 concurrency: int, stats: Counter | None = None) -> list[dict]:
    """Answers to all requests, in order: cached ones from disk, the others from the endpoint with at most
    `concurrency` in flight, each cached as soon as it arrives. Identical requests are sent once. `stats`
    gains "requests" (distinct) and "cache_hits"."""
    stats = Counter() if stats is None else stats
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
    stats.update(requests=len(answers) + len(todo), cache_hits=len(answers))
    lock = threading.Lock()

    def one(key: str, request: dict, full: dict) -> None:
        response = complete(client, request)
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
        raise failure(base_url, failed[0], f"{len(answers)} answers are cached in {cache.folder}: "
                                           "rerun to continue") from None
    return [answers[ResponseCache.key(full)] for full in keyed]
