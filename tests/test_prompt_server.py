"""data/llm/endpoint.py and generative/prompt.py: the request machinery (the openai client's own retries and
backoff against a stand-in transport, the on-disk cache, the concurrency limit), the one line a failed endpoint
ends a run with (never holding the key), data/llm/llama_server.py (llama.cpp's weight repacking off on request),
then the whole script against a real llama.cpp server on 127.0.0.1 serving the bundled SmolLM2 GGUF, started by
that launcher (zero- and few-shot, with and without constrained decoding), and a small soak: the server killed
mid-run, the run resumed, every unit stored exactly once (bench/soak_prompting.py)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import httpx2
import openai
import pytest

from bench.soak_prompting import bundled_gguf, free_port, soak
from conftest import ROOT, launched, load_split, needs_mirror, slow
from data.corpus import InputError
from data.llm import llama_server
from data.llm.endpoint import ResponseCache, complete, complete_all, endpoint_client
from data.llm.prompts import few_shot, prompt
from generative.prompt import main, parse_args

NCBI_TYPES = ("SpecificDisease", "DiseaseClass", "Modifier", "CompositeMention")
URL = "http://127.0.0.1:9/v1"  # never contacted: the fake clients and transports answer
SECRET = "sk-test-SECRET-0123456789"  # an API key that must never be printed or written
SERVER_WAIT = 90  # s; the server answers about 6 s after start on an idle machine
COMPLETION = {"id": "c", "object": "chat.completion", "created": 0, "model": "m",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "an answer"},
                           "finish_reason": "stop"}]}


def completion(text: str) -> SimpleNamespace:
    return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=text), finish_reason="stop")])


def status_error(cls, status: int, headers: dict | None = None):
    request = httpx2.Request("POST", f"{URL}/chat/completions")
    return cls("simulated", response=httpx2.Response(status, request=request, headers=headers or {}), body=None)


class FakeClient:
    """`client.chat.completions.create(**request)`: answers with the last message's text (a 400 for
    `fail_on`); records every call and the most calls in flight at once."""

    def __init__(self, delay: float = 0.0, fail_on: str | None = None):
        self.delay, self.fail_on = delay, fail_on
        self.calls, self.in_flight, self.most_in_flight = [], 0, 0
        self.lock = threading.Lock()
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self.create))

    def create(self, **request):
        with self.lock:
            self.calls.append(request)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)
            content = request["messages"][-1]["content"]
            if content == self.fail_on:
                raise status_error(openai.BadRequestError, 400)
            return completion(f"answer to {content}")
        finally:
            with self.lock:
                self.in_flight -= 1


def requests_for(*texts: str) -> list[dict]:
    return [{"model": "m", "messages": [{"role": "user", "content": t}], "temperature": 0, "seed": 1,
             "max_tokens": 8} for t in texts]


def scripted_client(statuses: list[tuple[int, dict]], max_retries: int, monkeypatch) -> tuple:
    """A real openai client over a stand-in transport that answers with the given (status, headers) in turn,
    then 200; its retry sleeps are recorded instead of slept."""
    replies = list(statuses)

    def handler(request):
        status, headers = replies.pop(0) if replies else (200, {})
        body = COMPLETION if status == 200 else {"error": {"message": "simulated", "type": "x"}}
        return httpx2.Response(status, headers=headers, json=body)

    sleeps: list[float] = []
    monkeypatch.setattr(openai._base_client.time, "sleep", sleeps.append)
    client, stats = endpoint_client(URL, timeout=5, max_retries=max_retries, transport=httpx2.MockTransport(handler))
    return client, stats, sleeps


def test_rate_limits_are_retried_by_the_client_with_growing_backoff_then_answered(monkeypatch):
    client, stats, sleeps = scripted_client([(429, {}), (429, {})], 3, monkeypatch)
    assert complete(client, requests_for("x")[0]) == {"content": "an answer", "finish_reason": "stop"}
    assert stats["sent"] == 3  # the first try and two retries, counted on the wire
    assert 0.375 <= sleeps[0] <= 0.5 and 0.75 <= sleeps[1] <= 1.0  # 0.5 s * 2^attempt, jittered down by <= 25 %


def test_retry_after_is_honoured_and_errors_that_cannot_heal_are_not_retried(monkeypatch):
    client, _, sleeps = scripted_client([(429, {"retry-after": "0.25"})], 3, monkeypatch)
    complete(client, requests_for("x")[0])
    assert sleeps == [0.25]
    client, stats, sleeps = scripted_client([(400, {})], 3, monkeypatch)
    with pytest.raises(openai.BadRequestError):
        complete(client, requests_for("x")[0])
    assert stats["sent"] == 1 and sleeps == []


def test_server_errors_give_up_after_max_retries(monkeypatch):
    client, stats, _ = scripted_client([(503, {})] * 5, 2, monkeypatch)
    with pytest.raises(openai.InternalServerError):
        complete(client, requests_for("x")[0])
    assert stats["sent"] == 3


def test_a_key_in_the_url_is_refused():
    with pytest.raises(SystemExit, match="OPENAI_API_KEY"):
        endpoint_client("http://user:sk-secret@127.0.0.1:9/v1", timeout=5, max_retries=0)


def test_a_repeated_run_sends_nothing_and_the_key_is_in_no_file(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123")
    cache = ResponseCache(tmp_path)
    reqs = requests_for("a", "b", "a", "c")  # "a" twice: sent once
    client, stats = FakeClient(), Counter()
    answers = complete_all(client, URL, reqs, cache, 2, stats)
    assert [a["content"] for a in answers] == ["answer to a", "answer to b", "answer to a", "answer to c"]
    assert (stats["requests"], len(client.calls), stats["cache_hits"]) == (3, 3, 0)
    client, stats = FakeClient(), Counter()
    again = complete_all(client, URL, reqs, cache, 2, stats)
    assert again == answers and client.calls == [] and stats["cache_hits"] == 3
    # Another endpoint is another request.
    client = FakeClient()
    complete_all(client, "http://127.0.0.1:8/v1", reqs[:1], cache, 1)
    assert len(client.calls) == 1
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == 4 and all("secret" not in f.read_text() for f in files)
    entry = json.loads(files[0].read_text())
    assert entry["request"]["base_url"] in (URL, "http://127.0.0.1:8/v1") and "content" in entry["response"]


def test_cache_entries_are_written_atomically(tmp_path, monkeypatch):
    cache = ResponseCache(tmp_path)
    request = {"base_url": URL, **requests_for("x")[0]}
    assert cache.key(request) == cache.key(dict(reversed(list(request.items()))))  # canonical: key order
    real_dump = json.dump

    def crash(obj, fh, **kw):  # half an entry reaches the disk, then the process "dies"
        fh.write(json.dumps(obj)[:10])
        raise KeyboardInterrupt

    monkeypatch.setattr(json, "dump", crash)
    with pytest.raises(KeyboardInterrupt):
        cache.put(request, {"content": "x", "finish_reason": "stop"})
    monkeypatch.setattr(json, "dump", real_dump)
    assert cache.get(request) is None and not [p for p in tmp_path.rglob("*") if p.is_file()]
    cache.put(request, {"content": "x", "finish_reason": "stop"})
    assert cache.get(request) == {"content": "x", "finish_reason": "stop"}


@pytest.mark.parametrize("concurrency", [1, 3])
def test_no_more_than_concurrency_requests_are_in_flight(tmp_path, concurrency):
    client = FakeClient(delay=0.05)
    complete_all(client, URL, requests_for(*map(str, range(9))), ResponseCache(tmp_path), concurrency)
    assert len(client.calls) == 9 and client.most_in_flight == concurrency


def test_a_failed_request_stops_the_run_and_keeps_the_finished_ones(tmp_path):
    cache = ResponseCache(tmp_path)
    reqs = requests_for("a", "bad", "c", "d", "e", "f")
    first = FakeClient(delay=0.05, fail_on="bad")
    with pytest.raises(InputError, match=r"HTTP 400; \d answers are cached .* rerun to continue"):
        complete_all(first, URL, reqs, cache, 1)
    assert len(first.calls) <= 3  # a, bad and at most the one request already taken up when bad failed
    client, stats = FakeClient(), Counter()
    answers = complete_all(client, URL, reqs, cache, 1, stats)
    sent = [c["messages"][0]["content"] for c in client.calls]
    assert stats["cache_hits"] == len(first.calls) - 1 and "a" not in sent and sent[0] == "bad"
    assert [a["content"] for a in answers] == [f"answer to {t}" for t in ("a", "bad", "c", "d", "e", "f")]


def test_few_shot_prompts_hold_the_examples_before_the_query():
    assert few_shot("Find.", [], "q") == prompt("Find.", "q")
    text = few_shot("Find.", [("a b", "a O\nb B-X"), ("c", "c O")], "q")
    assert text.index("Find.") < text.index("a b") < text.index("b B-X") < text.index("c O") < text.index("q")
    assert text.endswith(prompt("Find.", "q").split("\n\n", 1)[1])


# --------------------------------------------------------------------------- endpoint errors, one line each
class Echo(BaseHTTPRequestHandler):
    """POST /<status>/v1/chat/completions answers that status with the request's headers echoed back, as a
    careless proxy's error page does; /garbage/... answers 200 with text that is no chat completion."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        kind = self.path.split("/")[1]
        body = "".join(f"{k}: {v}\n" for k, v in self.headers.items()).encode()
        self.send_response(200 if kind == "garbage" else int(kind))
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def echo():
    """The Echo server on 127.0.0.1: its root URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def fail_once(url: str, tmp_path: Path, transport=None) -> BaseException:
    """The exception complete_all ends with against `url` (one retry, its sleep skipped)."""
    client, _ = endpoint_client(url, timeout=5, max_retries=1, transport=transport)
    with pytest.raises((InputError, SystemExit)) as info:
        complete_all(client, url, requests_for("x"), ResponseCache(tmp_path), 1)
    return info.value


@pytest.mark.parametrize("kind, status, said", [
    ("401", InputError, "HTTP 401: Host: 127.0.0.1"), ("404", InputError, "HTTP 404"),
    ("500", SystemExit, "HTTP 500"), ("garbage", SystemExit, "no chat completion")])
def test_endpoint_errors_end_in_one_line_naming_the_url_and_never_the_key(echo, kind, status, said, tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setattr(openai._base_client.time, "sleep", lambda s: None)
    url = f"{echo}/{kind}/v1"
    err = fail_once(url, tmp_path)
    line = str(err)
    assert type(err) is status and line.count("\n") == 0 and url in line and "rerun to continue" in line
    assert said in line and SECRET not in line and "SECRET" not in line
    if kind != "404":  # the echoed headers reached the line, the key did not
        assert "Bearer [" in line


def test_refused_connections_time_outs_and_unreadable_json_are_one_line_too(tmp_path, monkeypatch):
    monkeypatch.setattr(openai._base_client.time, "sleep", lambda s: None)
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    err = fail_once(url, tmp_path)
    assert type(err) is InputError and str(err).startswith(f"{url}: cannot connect (") and "refused" in str(err)

    def timeout(request):
        raise httpx2.ReadTimeout("slow", request=request)

    err = fail_once(URL, tmp_path, httpx2.MockTransport(timeout))
    assert type(err) is SystemExit and "no answer within the time-out" in str(err)
    bad_json = httpx2.MockTransport(lambda r: httpx2.Response(200, content=b"{oops",
                                                              headers={"content-type": "application/json"}))
    err = fail_once(URL, tmp_path, bad_json)
    assert type(err) is SystemExit and f"{URL}: invalid JSON" in str(err)


def test_a_key_echoed_anywhere_is_redacted_and_a_bearer_token_too(monkeypatch):
    from data.llm.endpoint import redact

    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    assert redact(f"x-api-key={SECRET}, Authorization: Bearer {SECRET}") == \
        "x-api-key=[OPENAI_API_KEY], Authorization: Bearer [redacted]"
    assert redact("{'authorization': 'bearer sk-other'}") == "{'authorization': 'bearer [redacted]'}"


@needs_mirror
@pytest.mark.parametrize("where, code", [("refused", 2), ("500", 1)])
def test_the_script_ends_with_one_error_line_and_writes_no_key(echo, where, code, tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1" if where == "refused" else f"{echo}/{where}/v1"
    done = subprocess.run([sys.executable, "generative/prompt.py", "--dataset_name", "ncbi_disease_iob",
                           "--max_eval_docs", "2", "--base-url", url, "--max_new_tokens", "4", "--max_retries", "0",
                           "--output_dir", str(tmp_path / "out"), "--cache_dir", str(tmp_path / "cache")],
                          cwd=ROOT, capture_output=True, text=True, check=False,
                          env={**os.environ, "OPENAI_API_KEY": SECRET})
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert done.returncode == code and len(errors) == 1 and errors[0].startswith(f"error: {url}: "), done.stderr
    assert "Traceback" not in done.stderr and SECRET not in done.stdout + done.stderr
    assert not [f for f in tmp_path.rglob("*") if f.is_file() and SECRET in f.read_text()]


# --------------------------------------------------------------------------- the launcher
def test_amx_is_read_from_the_cpu_flags_and_only_on_linux(tmp_path, monkeypatch):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f amx_bf16 amx_tile amx_int8\n")
    monkeypatch.setattr(sys, "platform", "linux")
    assert llama_server.has_amx(cpuinfo)
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\nbugs\t\t: amx_tile\n")
    assert not llama_server.has_amx(cpuinfo) and not llama_server.has_amx(tmp_path / "missing")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert not llama_server.has_amx(Path("/proc/cpuinfo")) and llama_server.resolve("auto") is False
    assert llama_server.resolve("true") is True and llama_server.resolve("false") is False


def test_no_repack_true_loads_the_servers_model_without_extra_buffer_types(monkeypatch, capsys):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (setup_env.sh installs it)")
    import llama_cpp
    import uvicorn
    from llama_cpp.server import app

    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: None)  # the server built, its model loaded, not served
    found = {}
    for choice in ("true", "false", "auto"):
        llama_server.main(["--no_repack", choice, "--model", str(bundled_gguf()), "--n_ctx", "256",
                           "--verbose", "False"])
        found[choice] = app._llama_proxy._current_model.model_params.use_extra_bufts
        assert f"(--no_repack {choice}" in capsys.readouterr().err
    assert found == {"true": False, "false": True, "auto": not llama_server.has_amx()}
    assert llama_cpp.llama_model_default_params().use_extra_bufts  # the library's defaults are back
    assert llama_cpp.llama_cpp.llama_model_default_params().use_extra_bufts
    model = llama_server.load_llama(bundled_gguf(), "true", n_ctx=256, verbose=False)
    assert model.model_params.use_extra_bufts is False
    assert model.create_completion("Hi", max_tokens=2)["choices"][0]["text"] is not None


# --------------------------------------------------------------------------- the real server
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A llama.cpp server on 127.0.0.1 serving the bundled GGUF, started by data/llm/llama_server.py (repacking
    off where the CPU has AMX, where llama.cpp would crash); killed at the end whatever happens."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (setup_env.sh installs it)")
    port, started = free_port(), time.time()
    try:
        proc = llama_server.launch(bundled_gguf(), port, tmp_path_factory.mktemp("server") / "server.log",
                                   "--n_ctx", "4096", "--n_threads", "2", "--verbose", "False",
                                   no_repack="auto", wait_s=SERVER_WAIT)
    except RuntimeError as err:
        pytest.fail(str(err))
    print(f"llama.cpp server answered after {time.time() - started:.1f} s")
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_prompt(url: str, out: Path, cache: Path, capsys, *extra: str, sentences: int = 3) -> str:
    """generative/prompt.py in this process (the import of torch and transformers is paid once) on the
    first test sentences of NCBI-disease; returns what it printed."""
    args = parse_args(["--dataset_name", "ncbi_disease_iob", "--split", "test", "--max_eval_docs", str(sentences),
                       "--base-url", url, "--model_name", "smollm2", "--output_dir", str(out),
                       "--cache_dir", str(cache), "--concurrency", "2", *extra])
    capsys.readouterr()
    main(args)
    return capsys.readouterr().out


@slow
@needs_mirror
def test_prompting_a_llama_cpp_server_writes_outputs_and_metrics_and_caches(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-456")
    out, cache = tmp_path / "out", tmp_path / "cache"
    log = run_prompt(server, out, cache, capsys, "--max_new_tokens", "16")
    assert "requests sent: 3, cache hits: 0" in log
    outputs = [json.loads(line) for line in (out / "test.outputs.jsonl").read_text().splitlines()]
    assert [o["id"] for o in outputs] == ["test-1/0", "test-2/0", "test-3/0"] and all(o["output"] for o in outputs)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "prompt" and metrics["shots"] == 0 and metrics["examples"] == []
    assert set(metrics["test"]) >= {"strict", "exact", "partial", "type", "per_type"}
    assert metrics["diagnostics"]["test"]["documents"] == 3 and metrics["caps"]["max_new_tokens"] == 16
    assert len((out / "test.predictions.jsonl").read_text().splitlines()) == 3
    again = run_prompt(server, out, cache, capsys, "--max_new_tokens", "16")  # the stored outputs are reused
    assert "requests sent: 0" in again and "3 of 3 outputs already there" in again
    elsewhere = run_prompt(server, tmp_path / "out2", cache, capsys, "--max_new_tokens", "16")  # the cache answers
    assert "requests sent: 0, cache hits: 3" in elsewhere
    assert "secret" not in log and not [f for f in [*out.iterdir(), *cache.rglob("*.json")] if "secret" in f.read_text()]
    table = subprocess.run([sys.executable, "eval/report.py", str(tmp_path)], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout
    assert any(row.startswith("| prompt | smollm2 |") and "| ncbi_disease_iob | test |" in row
               for row in table.splitlines())


@slow
@needs_mirror
def test_a_sentence_cap_prompts_and_scores_only_the_documents_first_sentences(server, tmp_path):
    from data import registry
    from data.text import split_sentences

    out = tmp_path / "out"
    main(parse_args(["--dataset_name", "ncbi_disease", "--split", "test", "--max_eval_docs", "1",
                     "--max_eval_sentences", "2", "--base-url", server, "--model_name", "smollm2",
                     "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"), "--max_new_tokens", "8"]))
    doc = registry.load("ncbi_disease", "test")[0]
    end = split_sentences(doc.text)[1][1]
    outputs = [json.loads(line) for line in (out / "test.outputs.jsonl").read_text().splitlines()]
    assert [o["id"] for o in outputs] == [f"{doc.id}/0", f"{doc.id}/1"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["caps"]["max_eval_sentences"] == 2 and metrics["units"]["count"] == 2
    assert metrics["test"]["strict"]["possible"] == sum(e.end <= end for e in doc.entities) < len(doc.entities)


@slow
@needs_mirror
def test_constrained_few_shot_answers_from_the_server_always_parse(server, tmp_path, capsys):
    out = tmp_path / "out"
    log = run_prompt(server, out, tmp_path / "cache", capsys, "--shots", "1", "--constrained", "True", sentences=1)
    metrics = json.loads((out / "metrics.json").read_text())
    diag = metrics["diagnostics"]["test"]
    assert diag["parse_rate"] == 1.0 and diag["hallucination_rate"] in (0.0, None), log
    assert len(metrics["examples"]) == 1 and metrics["examples"][0].startswith("train-")
    assert metrics["caps"]["max_new_tokens"] > 100  # the default budget: the longest gold training answer
    assert metrics["finish_reasons"] == {"stop": 1}


def test_seed2_launcher_prompts_token_level_with_definitions_and_retrieved_examples():
    runs = [r[0] for r in launched("generative/run_seed2.sh", PROFILE="paper")]
    assert {(a.example_selection, a.shots) for a in runs} == {(s, n) for s in ("random", "kate") for n in range(1, 6)}
    assert all((a.model_name, a.base_url, a.output_format, a.input_style) ==
               ("gpt-4", "https://api.openai.com/v1", "bio", "tokens") for a in runs)
    assert {a.type_definitions.name for a in runs} == {"ncbi_disease.json"}
    assert {a.embedding_model_path for a in runs} == {"BAAI/bge-large-en-v1.5"}


@needs_mirror
def test_retrieved_examples_differ_per_input_and_inputs_can_be_shown_token_per_line(tmp_path):
    from data.llm.formats import get_format
    from data.llm.units import make_units
    from generative.prompt import choose_examples, render_tokens

    assert render_tokens("Breast cancer, rare.") == "Breast\ncancer\n,\nrare\n."
    fmt, docs = get_format("bio"), load_split("ncbi_disease", "test")[:2]
    units = make_units(docs, NCBI_TYPES, fmt, respect_entities=False)[:4]
    train = make_units(load_split("ncbi_disease", "train")[:40], NCBI_TYPES, fmt)
    args = parse_args(["--dataset_name", "ncbi_disease", "--output_dir", str(tmp_path), "--shots", "2",
                       "--example_selection", "kate"])
    chosen = choose_examples(args, units, train)
    assert all(len(v) == 2 and all(e.entities for e in v) for v in chosen.values())
    assert len({tuple(e.id for e in v) for v in chosen.values()}) > 1  # per input, unlike random
    args.example_selection = "random"
    assert len({tuple(e.id for e in v) for v in choose_examples(args, units, train).values()}) == 1


@slow
@needs_mirror
def test_a_server_killed_mid_run_loses_and_repeats_nothing_once_the_run_is_resumed(tmp_path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (setup_env.sh installs it)")
    counts = soak(units=40, concurrency=4, kill_at=0.4, work=tmp_path)
    assert counts["sound"], counts
    assert counts["units"] >= 40 and counts["stored"] == counts["units"] and counts["first_run_error"]
    assert "cannot connect" in counts["first_run_error"] and counts["retried"] >= counts["failed_before_restart"] > 0
    assert counts["cache_hits_on_resume"] == counts["answered_first_run"] >= counts["killed_when_answered"]
    assert counts["answered_first_run"] + counts["answered_after_resume"] == counts["distinct_requests"]
