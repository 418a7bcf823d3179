"""Shared test harness: the corpus mirror, a per-session data root, a loader that reads each split once, and a
counter of the prompts data/llm/generation.py decodes."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MIRROR = Path(os.environ.get("NER_MIRROR", ROOT.parent / "shared" / "datasets"))
os.environ.setdefault("NER_MIRROR", str(MIRROR))
os.environ.setdefault("NER_DATA", str(ROOT / ".cache" / "corpora"))

needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"no corpus mirror at {MIRROR}")


@lru_cache(maxsize=None)
def load_split(name: str, split: str):
    """A registry split, read once per test session (callers must not mutate it)."""
    from data.registry import load
    return load(name, split)


@pytest.fixture
def decoded_rows(monkeypatch) -> list[int]:
    """The number of prompts (rows) of every batch data.llm.generation.greedy_decode is asked to complete."""
    import data.llm.generation as generation

    rows: list[int] = []
    original = generation.greedy_decode

    def counted(model, input_ids, *args, **kwargs):
        rows.append(input_ids.shape[0])
        return original(model, input_ids, *args, **kwargs)

    monkeypatch.setattr(generation, "greedy_decode", counted)
    return rows
