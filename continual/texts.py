"""Raw documents for continued pre-training: registry corpora and text files, read one way.

Shared by continual/main.py (what it trains and validates on) and continual/mix_data.py (what it
mixes). A document is an id and a text; entities are irrelevant here. Text files come in two kinds:

- `.jsonl`: one JSON object per line with a `text` field (our corpus format, and mix_data's output);
  the `id` field is used when present.
- anything else: plain text, one document per block of lines separated by blank lines.

A folder stands for every `.jsonl` and `.txt` file under it, in sorted order.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from data import registry
from data.corpus import FormatError, iter_jsonl

TEXT_SUFFIXES = (".jsonl", ".txt")


class RawDoc(NamedTuple):
    id: str
    text: str


def registry_docs(name: str, split: str) -> list[RawDoc]:
    """The non-empty texts of one registry split (e.g. DDI has empty sentences: nothing to learn from)."""
    return [RawDoc(f"{name}:{d.id}", d.text) for d in registry.load(name, split) if d.text.strip()]


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)
        if not files:
            raise FormatError(path, None, f"folder holds no {' or '.join(TEXT_SUFFIXES)} files")
        return files
    if not path.is_file():
        raise FormatError(path, None, "no such file or folder")
    return [path]


def _read_jsonl(path: Path) -> list[RawDoc]:
    docs = []
    for line_no, obj in iter_jsonl(path):
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise FormatError(path, line_no, "expected an object with a string 'text'")
        if obj["text"].strip():
            docs.append(RawDoc(f"{path}:{obj.get('id', line_no)}", obj["text"]))
    return docs


def _read_text(path: Path) -> list[RawDoc]:
    blocks = re.split(r"\n[ \t]*\n", path.read_text(encoding="utf-8"))
    return [RawDoc(f"{path}:{i}", b.strip()) for i, b in enumerate(blocks, 1) if b.strip()]


def file_docs(path: str | Path) -> list[RawDoc]:
    """Documents of a text file, a JSONL file or a folder of them."""
    return [doc for f in _files(Path(path)) for doc in (_read_jsonl(f) if f.suffix == ".jsonl" else _read_text(f))]


def normalise(text: str) -> str:
    """The key two texts share when they are the same document up to case and whitespace."""
    return re.sub(r"\s+", " ", text).strip().lower()
