"""Shared test harness: the corpus mirror, a per-session data root, a loader that reads each split once, a
counter of the prompts data/llm/generation.py decodes, the arguments a launcher resolves to, and a training
script killed with SIGKILL and resumed."""
from __future__ import annotations

import importlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
MIRROR = Path(os.environ.get("NER_MIRROR", ROOT.parent / "shared" / "datasets"))
os.environ.setdefault("NER_MIRROR", str(MIRROR))
os.environ.setdefault("NER_DATA", str(ROOT / ".cache" / "corpora"))

FIXTURE = ROOT / "tests" / "fixtures" / "corpus"  # a corpus written for the tests: train/dev/test.jsonl

needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"no corpus mirror at {MIRROR}")
slow = pytest.mark.slow  # trains or generates with a real model: -m "not slow" leaves these out


@lru_cache(maxsize=None)
def load_split(name: str, split: str):
    """A registry split, read once per test session (callers must not mutate it)."""
    from data.registry import load
    return load(name, split)


@pytest.fixture
def decoded_rows(monkeypatch) -> list[int]:
    """The number of prompts (rows) of every batch data.llm.generation.decode_batch is asked to complete."""
    import data.llm.generation as generation

    rows: list[int] = []
    original = generation.decode_batch

    def counted(model, input_ids, *args, **kwargs):
        rows.append(input_ids.shape[0])
        return original(model, input_ids, *args, **kwargs)

    monkeypatch.setattr(generation, "decode_batch", counted)
    return rows


def launched(launcher: str, **env: str) -> list[tuple]:
    """The parsed arguments (each script's own parse_args: its dataclasses) of every command a launcher runs,
    read with LAUNCH=echo. A script that hands over to another program (generative/main.py) is followed."""
    done = subprocess.run(["bash", launcher], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**os.environ, "LAUNCH": "echo", **env})
    resolved = []
    for line in done.stdout.splitlines():
        script, *argv = shlex.split(line)
        if not script.endswith(".py"):
            continue
        module = importlib.import_module(script.removesuffix(".py").replace("/", "."))
        if hasattr(module, "command"):  # runs another script with its settings first
            _, script, *argv = module.command(argv)
            module = importlib.import_module(str(Path(script).relative_to(ROOT)).removesuffix(".py").replace("/", "."))
        parsed = module.parse_args(argv)
        resolved.append(parsed if isinstance(parsed, tuple) else (parsed,))
    return resolved


# --------------------------------------------------------------------------- kill -9 and resume
class KilledAndResumed(NamedTuple):
    """Two runs of one command: `whole` uninterrupted, `resumed` killed and resumed; `weights` their final
    weights, whole first."""

    whole: Path
    resumed: Path
    weights: list[dict]


def killed_and_resumed(argv: list[str], tmp_path: Path, weights: str = "model/adapter_model.safetensors",
                       torn: bool = False) -> KilledAndResumed:
    """One whole run of `python *argv`, and the same run killed (SIGKILL: no handler, no cleanup) once its
    first checkpoint is complete, then run again with --resume True, which must continue from its newest
    complete checkpoint. `weights` is the final weights file, relative to the output folder. With `torn`,
    the killed run also leaves what a kill in the middle of its next save would (that checkpoint's folder
    without trainer_state.json, the last file a save writes), which a resumed run must pass over.

    The whole run goes alongside the other two, every run on one thread: about half the wall time on two cores,
    and the same arithmetic in each run, so that their weights can be compared bit for bit. Each run's
    output is in tmp_path/{whole,killed,resumed}.log."""
    from safetensors.torch import load_file

    from eval.runs import complete, last_checkpoint

    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    running: list[subprocess.Popen] = []

    def start(name: str, folder: Path, *extra: str) -> subprocess.Popen:
        with open(tmp_path / f"{name}.log", "w") as log:
            running.append(subprocess.Popen([sys.executable, *argv, *extra, "--output_dir", str(folder)], cwd=ROOT,
                                            env=env, stdout=log, stderr=subprocess.STDOUT))
        return running[-1]

    def finish(name: str, proc: subprocess.Popen, status: int = 0) -> str:
        ended = proc.wait()
        log = (tmp_path / f"{name}.log").read_text()
        assert ended == status, log[-3000:]
        return log

    try:
        uninterrupted, killed = start("whole", whole), start("killed", resumed)
        deadline = time.time() + 600
        while not complete(resumed / "checkpoint-1") and killed.poll() is None:
            assert time.time() < deadline, "no checkpoint within 10 minutes"
            time.sleep(0.02)
        killed.send_signal(signal.SIGKILL)
        finish("killed", killed, -signal.SIGKILL)
        assert not (resumed / weights).exists(), "the run ended before the kill"
        checkpoint = Path(last_checkpoint(resumed))
        if torn:
            step = int(checkpoint.name.rsplit("-", 1)[1]) + 1
            shutil.copytree(checkpoint, resumed / f"checkpoint-{step}", dirs_exist_ok=True)
            (resumed / f"checkpoint-{step}" / "trainer_state.json").unlink()
        assert f"resuming from {checkpoint}" in finish("resumed", start("resumed", resumed, "--resume", "True"))
        finish("whole", uninterrupted)
    finally:
        for proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return KilledAndResumed(whole, resumed, [load_file(d / weights) for d in (whole, resumed)])


# --------------------------------------------------------------------------- the bundled models, loaded once
@pytest.fixture(scope="session")
def minilm_tokenizer():
    from transformers import AutoTokenizer

    from data.llm.models import resolve
    return AutoTokenizer.from_pretrained(resolve("minilm"))


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    from transformers import AutoTokenizer

    from data.llm.models import resolve
    return AutoTokenizer.from_pretrained(resolve("smollm2"))


@pytest.fixture(scope="session")
def smollm2():
    """(model, tokenizer) of SmolLM2-135M-Instruct for generation, in eval mode (tests must not train it)."""
    from data.llm.generation import load_generator
    return load_generator("smollm2")
