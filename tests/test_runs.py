"""The output folder a run claims (eval/runs.claim_output_dir): one run at a time, nothing finished
clobbered, and no lock left behind by a killed run."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, needs_mirror
from data.corpus import InputError
from eval import runs

HOLD = ("import sys, time; from eval.runs import claim_output_dir; claim_output_dir(sys.argv[1]); "
        "print('held', flush=True); time.sleep(600)")


def test_a_folder_in_use_is_refused_naming_the_run_and_a_killed_run_leaves_no_lock(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(InputError, match=rf"{folder} is in use by pid {holder.pid} on .* since "):
            runs.claim_output_dir(folder)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (folder / runs.LOCK).exists()  # the file stays; the OS dropped the lock with the process
    assert runs.claim_output_dir(folder) == folder
    assert runs.claim_output_dir(folder) == folder  # this process may claim its own folder again


def test_a_finished_run_is_kept_unless_resumed_or_overwritten(tmp_path):
    folder = tmp_path / "run"
    (folder / "checkpoint-4").mkdir(parents=True)
    (folder / "metrics.json").write_text("{}")
    with pytest.raises(InputError, match="holds a finished run \\(metrics.json\\): pass --overwrite True"):
        runs.claim_output_dir(folder)
    runs.claim_output_dir(folder, resume=True)
    assert (folder / "metrics.json").exists() and (folder / "checkpoint-4").exists()
    runs.claim_output_dir(folder, finished=None)  # a resumable answer store: the store checks its settings
    runs.claim_output_dir(folder, overwrite=True)
    assert not (folder / "metrics.json").exists() and not (folder / "checkpoint-4").exists()


@needs_mirror
def test_a_second_script_run_into_a_finished_folder_ends_in_one_line_and_overwrite_replaces_it(tmp_path):
    """The dictionary baseline, the quickest script with an --output_dir, as a user runs it twice."""
    argv = [sys.executable, "dictionary/main.py", "--dataset_name", "ncbi_disease", "--output_dir", str(tmp_path),
            "--max_eval_docs", "2"]
    assert subprocess.run(argv, cwd=ROOT, capture_output=True).returncode == 0
    started = time.time()
    second = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    assert second.returncode == 2 and second.stderr == (f"error: {tmp_path} holds a finished run (metrics.json): pass "
                                                         "--overwrite True to replace it, or use another output folder\n")
    assert (tmp_path / "metrics.json").stat().st_mtime < started
    again = subprocess.run(argv + ["--overwrite", "True"], cwd=ROOT, capture_output=True, text=True)
    assert again.returncode == 0 and (tmp_path / "metrics.json").stat().st_mtime >= started
    settings = json.loads((tmp_path / "metrics.json").read_text())["settings"]
    assert settings["max_eval_docs"] == 2 and settings["min_precision"] == 0.5 and settings["overwrite"] is True


def test_a_resumed_run_must_have_the_settings_its_folder_was_started_with(tmp_path):
    folder = tmp_path / "run"
    started = {"seed": 42, "learning_rate": 0.001, "resume": False}
    runs.claim_output_dir(folder, settings=started)
    assert json.loads((folder / runs.SETTINGS).read_text()) == started
    runs.claim_output_dir(folder, resume=True, settings={**started, "resume": True})  # only the flag differs
    with pytest.raises(InputError, match=r"started with other settings \(learning_rate: 0.001 there, 0.002 now; "
                                         r"seed: 42 there, 'not given' now\)"):
        runs.claim_output_dir(folder, resume=True, settings={"learning_rate": 0.002, "resume": True})
    runs.claim_output_dir(folder, overwrite=True, resume=True, settings={"learning_rate": 0.002})  # starts over
    assert json.loads((folder / runs.SETTINGS).read_text()) == {"learning_rate": 0.002}
