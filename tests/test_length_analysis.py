"""generative/length_analysis.py: the percentiles it reports are the lengths of the corpus, and it writes
its JSON and plot."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, load_split, needs_mirror
from data.text import tokenize
from generative.length_analysis import summary


def test_summary_percentiles():
    s = summary(list(range(1, 101)))
    assert (s["n"], s["mean"], s["p50"], s["p90"], s["max"]) == (100, 50.5, 50.5, 90.1, 100)
    assert summary([])["p50"] is None


@needs_mirror
def test_lengths_of_a_corpus_with_json_and_plot(tmp_path):
    out, png = tmp_path / "lengths.json", tmp_path / "lengths.png"
    done = subprocess.run([sys.executable, "generative/length_analysis.py", "--datasets", "ncbi_disease",
                           "--splits", "test", "--max_docs", "5", "--tokenizer", "minilm", "--formats", "bio", "json",
                           "--json", str(out), "--plot", str(png)], cwd=ROOT, capture_output=True, text=True, check=True)
    stats = json.loads(out.read_text())["ncbi_disease"]["test"]
    docs = load_split("ncbi_disease", "test")[:5]
    assert stats["document characters"]["n"] == 5
    assert stats["document characters"]["max"] == max(len(d.text) for d in docs)
    entity_words = [len(tokenize(e.surface(d.text))) for d in docs for e in d.entities]
    assert stats["entity words"]["n"] == len(entity_words) and stats["entity words"]["max"] == max(entity_words)
    # A bio answer has one line per word, so it is never shorter in characters than its unit.
    assert stats["answer characters (bio)"]["p50"] > stats["unit characters"]["p50"]
    assert stats["answer tokens (json)"]["n"] == stats["unit words"]["n"] > 5
    assert "| ncbi_disease | test | entity words |" in done.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
