"""bench/generation_speed.py end to end on two sentences: it writes the keys run_all's report reads, and
with constraints the untrained model's answers parse and name only text of the input."""
from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT, needs_mirror, slow


@slow
@needs_mirror
def test_generation_bench_writes_its_json(tmp_path):
    out = tmp_path / "generation_speed.json"
    subprocess.run([sys.executable, "bench/generation_speed.py", "--json", str(out), "--sentences", "2",
                    "--formats", "typed", "list", "--sequential_format", "typed", "--sequential_sentences", "2",
                    "--batch_size", "2"], cwd=ROOT, check=True, capture_output=True, text=True)
    result = json.loads(out.read_text())
    assert result["batched_vs_sequential"] > 0
    assert result["constrained_parse_rate"] == 1.0 and result["constrained_hallucination_rate"] == 0.0
    for name in ("typed", "list"):
        row = result["formats"][name]
        assert row["sentences_per_s"] > 0 and row["constrained_sentences_per_s"] > 0
        assert row["constrained_tokens_per_sentence"] > 0
