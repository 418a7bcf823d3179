"""Shared test harness: the corpus mirror, a per-session data root, and a loader that reads each split once."""
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
