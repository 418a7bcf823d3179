"""run_all.sh's profiles (every stage budgeted, every command parses) and the answer table it ends with."""
from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import sys

import pytest

from conftest import ROOT, load_split, needs_mirror
from data.corpus import Document
from eval.runs import timing, write_json
from eval.semeval import score


def dry_run(profile: str, out) -> str:
    return subprocess.run(["bash", "run_all.sh"], cwd=ROOT, capture_output=True, text=True, check=True,
                          env={**os.environ, "DRY_RUN": "1", "PROFILE": profile, "OUT": str(out)}).stdout


@pytest.mark.parametrize("profile", ["default", "paper"])
def test_every_stage_is_budgeted_and_every_command_parses(profile, tmp_path):
    printed = dry_run(profile, tmp_path)
    stages = re.search(r'^STAGES="(.*)"', (ROOT / "profiles" / f"{profile}.sh").read_text(), re.M).group(1).split()
    assert re.findall(r"^== (\w+): \d+ s \(budget \d+ s\)$", printed, re.M) == stages
    commands = [shlex.split(line[2:]) for line in printed.splitlines() if line.startswith("+ python ")]
    assert len(commands) >= 10
    for _, script, *argv in commands:
        assert (ROOT / script).is_file(), script
        if "> " in " ".join(argv) or script in ("data/download.py", "data/stats.py", "bench/retrieval.py"):
            continue
        module = importlib.import_module(script.removesuffix(".py").replace("/", "."))
        module.parse_args(argv)  # the script's own parser: an unknown or misspelt flag fails here
    assert not list(tmp_path.rglob("*.json")), "a dry run must not write results"


def test_an_unknown_profile_is_refused_in_one_line(tmp_path):
    done = subprocess.run(["bash", "run_all.sh"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PROFILE": "fast", "OUT": str(tmp_path)})
    assert done.returncode == 2 and done.stderr.strip() == "error: no profile profiles/fast.sh"


def keep_every(docs: list[Document], step: int) -> list[Document]:
    """Predictions that find every `step`-th gold mention (0: none)."""
    return [Document(d.id, d.text, d.entities[::step] if step else []) for d in docs]


def run_metrics(folder, method: str, gold: list[Document], pred: list[Document], seconds: float, **extra) -> dict:
    metrics = {"method": method, "dataset": "ncbi_disease", "test": score(gold, pred).to_json(),
               "timing": {"test": timing(seconds, gold)}, **extra}
    write_json(folder / "metrics.json", metrics)
    return metrics


@needs_mirror
def test_the_answer_table_opens_the_report_with_intervals_speeds_and_a_sentence_from_the_numbers(tmp_path):
    gold = load_split("ncbi_disease", "test")
    answer = tmp_path / "answer" / "ncbi_disease"
    # the large sample: a perfect "encoder" and a "gazetteer" that finds every other mention
    encoder = run_metrics(answer / "encoder", "encoder", gold[:60], gold[:60], 2.0, model="minilm",
                          train_seconds=300.0)
    run_metrics(answer / "dictionary", "dictionary", gold[:60], keep_every(gold[:60], 2), 0.5, train_seconds=0.1)
    # the LLMs' sample: the first 10 documents, where the zero-shot LLM finds nothing
    run_metrics(answer / "encoder_llm_sample", "encoder", gold[:10], gold[:10], 0.4, model="minilm")
    run_metrics(answer / "llm_0_shot", "prompt", gold[:10], keep_every(gold[:10], 0), 40.0, model="smollm2", shots=0)
    (tmp_path / "stage_times.tsv").write_text("encoder\t700\t720\nllm_lora\t500\t480\n")

    report = subprocess.run([sys.executable, "eval/report.py", str(tmp_path)], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout
    assert report.index("## Encoder or LLM?") < report.index("## Every run")
    assert "### ncbi_disease, 60 test documents" in report and "### ncbi_disease, 10 test documents" in report
    mentions = sum(len(d.entities) for d in gold[:60])
    assert (f"On ncbi_disease ({60} test documents, {mentions:,} mentions), the fine-tuned encoder scores highest "
            f"(100.0 strict F1); then the gazetteer ") in report
    gazetteer = encoder["test"]["strict"]["f1"] - json.loads((answer / "dictionary/metrics.json").read_text())[
        "test"]["strict"]["f1"]
    assert re.search(rf"the gazetteer {100 * gazetteer:.1f} \(\d+\.\d to \d+\.\d\) below the fine-tuned "
                     r"encoder\.", report)
    assert "the zero-shot prompted LLM 100.0 (100.0 to 100.0) below the fine-tuned encoder." in report
    zero_shot_row = next(line for line in report.splitlines() if line.startswith("| zero-shot prompted LLM |"))
    assert "| 0.00 (0.0-0.0) |" in zero_shot_row and "| - |" in zero_shot_row  # no training time
    sentences = encoder["timing"]["test"]["sentences"]
    assert f"| 300 s | {sentences / 2:,.1f} |" in report
    assert "| encoder | 700 | 720 | yes |" in report and "| llm_lora | 500 | 480 | no |" in report
