"""Shared test harness: the corpus mirror, a per-session data root, a loader that reads each split once, a
counter of the prompts data/llm/generation.py decodes, and the arguments a launcher resolves to."""
from __future__ import annotations

import importlib
import os
import shlex
import subprocess
from functools import lru_cache
from pathlib import Path

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
