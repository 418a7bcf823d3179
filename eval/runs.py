"""A run's output folder, the same for every script: its lock, metrics.json, the score line printed, the
training plot, the checkpoints a resumed run continues from, and the hardware defaults of its
TrainingArguments.

Shared because eval/report.py reads every method's metrics.json the same way, and a resumed training run
(encoders/, decoders/, continual/) must find its last complete checkpoint and whether it had already
stopped the same way whichever method wrote it.
"""
from __future__ import annotations

import atexit
import fcntl
import json
import os
import shutil
import socket
import time
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import IO, Sequence

from data.corpus import Document, InputError
from data.text import count_sentences

LOCK = ".lock"  # in every output folder a run has claimed; its text names the run holding it
SETTINGS = "settings.json"  # the settings a training run's folder was started with
RESUMABLE = {"resume", "overwrite", "resume_from_checkpoint", "logging_dir", "disable_tqdm", "report_to"}
_held: dict[Path, IO] = {}  # this process's locks: the OS releases them when it exits, kill -9 included
atexit.register(lambda: [lock.close() for lock in _held.values()])  # a clean exit closes them itself


# --------------------------------------------------------------------------- the output folder
def claim_output_dir(folder: str | Path, *, overwrite: bool = False, resume: bool = False,
                     finished: str | None = "metrics.json", settings: dict | None = None) -> Path:
    """Make `folder` this run's own. A run already writing there (another process holding its lock) is
    refused, so two runs never mix checkpoints or outputs; the lock is an OS file lock, so a killed run
    leaves none behind. A folder holding a finished run (its `finished` file) is refused too, unless
    `resume` (a resumed run takes up its own folder) or `overwrite` (which removes the finished file and the
    checkpoints first). `settings` (run_settings of the command line) are kept in SETTINGS: a resumed run
    must have the same, or its checkpoints would continue another run. Under torchrun / accelerate only rank
    0 locks and writes; every rank checks."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if int(os.environ.get("RANK", "0")) == 0 and key not in _held:  # this process may claim it again
        lock = open(folder / LOCK, "a+", encoding="utf-8")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another run"
            lock.close()
            raise InputError(f"{folder} is in use by {holder}: wait for it to end, or use another output "
                             "folder") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        lock.flush()
        _held[key] = lock
    done = finished is not None and (folder / finished).exists()
    if overwrite:
        for checkpoint in folder.glob("checkpoint-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)  # every rank clears; whichever comes first
        if done:
            (folder / finished).unlink(missing_ok=True)
    elif done and not resume:
        raise InputError(f"{folder} holds a finished run ({finished}): pass --overwrite True to replace it, or "
                         "use another output folder")
    if settings is not None:
        check_settings(folder / SETTINGS, settings, resume and not overwrite)
    return folder


def check_settings(path: Path, settings: dict, resume: bool) -> None:
    """A resumed run's settings against those its folder was started with (all but RESUMABLE); a new run
    records its own."""
    if resume and path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
        differ = sorted(k for k in {*stored, *settings} - RESUMABLE if stored.get(k) != settings.get(k))
        if differ:
            said = "; ".join(f"{k}: {stored.get(k, 'not recorded')!r} there, {settings.get(k, 'not given')!r} now"
                             for k in differ)
            raise InputError(f"{path.parent} was started with other settings ({said}): resume with the same, "
                             "or use another output folder")
    if int(os.environ.get("RANK", "0")) == 0:
        write_json(path, settings)


# --------------------------------------------------------------------------- metrics and scores
def write_json(path: str | Path, value) -> Path:
    """A JSON file (bench results, statistics), its folder made if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def run_settings(*configs) -> dict:
    """Every setting that shaped a run, seed included: the fields of each parsed configuration (the script's
    own dataclass, TrainingArguments, SFTConfig, ModelConfig, an argparse Namespace), merged into one flat
    dict, JSON-safe. TrainingArguments' own to_dict masks hub tokens; API keys never reach a configuration
    (they are read from the environment)."""
    merged: dict = {}
    for config in configs:
        if hasattr(config, "to_dict"):
            merged.update(config.to_dict())
        elif is_dataclass(config):
            merged.update(asdict(config))
        else:
            merged.update(vars(config))
    return json.loads(json.dumps(merged, default=str))


def write_metrics(folder: str | Path, metrics: dict, *, settings: dict, name: str = "metrics.json") -> Path:
    """metrics.json ({"method", "model", "dataset", SPLIT: eval/semeval JSON, ..., "settings": run_settings(...)};
    eval/report.py reads it). `settings` is required: a number is reported with everything that made it."""
    return write_json(Path(folder) / name, {**metrics, "settings": settings})


def timing(seconds: float, docs: Sequence[Document]) -> dict:
    """How long predicting a split took, as every method's metrics.json records it ("timing": {SPLIT: ...}):
    sentences per second counts the same sentences for every method (data/text.count_sentences), whatever
    unit the method reads."""
    sentences = count_sentences(docs)
    return {"seconds": round(seconds, 2), "documents": len(docs), "sentences": sentences,
            "sentences_per_second": round(sentences / max(seconds, 1e-6), 2)}


def score_line(scores: dict) -> str:
    """"strict P 0.5000 R 0.2500 F1 0.3333" from eval/semeval JSON."""
    s = scores["strict"]
    return f"strict P {s['precision']:.4f} R {s['recall']:.4f} F1 {s['f1']:.4f}"


def print_scores(label: str, scores: dict, *notes: str) -> None:
    """One line per evaluated split: "  LABEL: strict P .. R .. F1 ..; NOTE; NOTE"."""
    print("; ".join([f"  {label}: {score_line(scores)}", *notes]), flush=True)


# --------------------------------------------------------------------------- training runs
@dataclass
class HardwareDefaults:
    """A mixin for a script's TrainingArguments subclass (put it first): --output_dir is required, and the
    CPU / pinned-memory settings follow the machine unless given (CPU ranks then talk over gloo)."""

    output_dir: str = field(default=None, metadata={"help": "everything the run writes goes here (required)"})
    use_cpu: bool | None = field(default=None, metadata={"help": "default: when there is no accelerator"})
    dataloader_pin_memory: bool | None = field(default=None, metadata={"help": "default: with an accelerator"})

    def __post_init__(self):
        import torch

        if self.output_dir is None:
            raise ValueError("--output_dir is required")
        accelerated = torch.accelerator.is_available()
        self.use_cpu = not accelerated if self.use_cpu is None else self.use_cpu
        self.dataloader_pin_memory = accelerated if self.dataloader_pin_memory is None else self.dataloader_pin_memory
        super().__post_init__()


def bf16_is_fast() -> bool:
    """Whether bfloat16 runs natively here: a CUDA device with bf16, or a CPU with AVX-512 bf16 or AMX, where
    a bf16 matmul runs several times faster than fp32. Elsewhere it is emulated and slower than fp32."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def peak_memory_mb() -> float:
    """The process's peak memory so far: the accelerator's allocations where there is one, else the peak
    resident set (Linux reports KiB)."""
    import resource

    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def complete(checkpoint: Path) -> bool:
    """Whether a save finished: its trainer state, the last file written, reads back."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
        return True
    except (OSError, ValueError):
        return False


def last_checkpoint(folder: Path) -> str | None:
    """The newest complete checkpoint (a run killed while saving leaves an incomplete one behind)."""
    done = [p for p in folder.glob("checkpoint-*") if complete(p)]
    return str(max(done, key=lambda p: int(p.name.rsplit("-", 1)[1]))) if done else None


def steps_if_finished(checkpoint: str | None) -> int | None:
    """The step a checkpoint's run had stopped at (early stopping or its last epoch), or None if it was
    still running. Resuming a stopped run must not train on: Trainer would start the next epoch."""
    if checkpoint is None:
        return None
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text())
    control = state.get("stateful_callbacks", {}).get("TrainerControl", {}).get("args", {})
    return state["global_step"] if control.get("should_training_stop") else None


def resume_point(training, resume: bool) -> str | None:
    """The checkpoint a run continues from (None: a fresh run). Refuses a fresh start over checkpoints (two
    runs' checkpoints would mix), and keeps a finished run from training on (TrainingArguments.max_steps)."""
    out = Path(training.output_dir)
    checkpoint = last_checkpoint(out)
    if checkpoint and not resume:
        raise SystemExit(f"error: {out} holds checkpoints: pass --resume True to continue that run, "
                         "or remove them to start over")
    if checkpoint and resume:
        training.max_steps = steps_if_finished(checkpoint) or training.max_steps
        print(f"resuming from {checkpoint}")
    return checkpoint if resume else None


def epochs_summary(log_history: list[dict]) -> tuple[int, int]:
    """(epochs evaluated, the epoch with the best validation strict F1; the earliest on ties)."""
    evals = [h for h in log_history if "eval_strict_f1" in h]
    best = max(evals, key=lambda h: (h["eval_strict_f1"], -h["epoch"]))
    return len(evals), round(best["epoch"])


def plot_training(log_history: list[dict], path: Path, title: str) -> None:
    """Training loss and, where the run validated, validation strict F1 against the epoch, side by side."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = [(h["epoch"], h["loss"]) for h in log_history if "loss" in h]
    f1s = [(h["epoch"], h["eval_strict_f1"]) for h in log_history if "eval_strict_f1" in h]
    fig, axes = plt.subplots(1, 2 if f1s else 1, figsize=(10 if f1s else 5, 4), sharex=True, squeeze=False)
    left = axes[0][0]
    left.plot(*zip(*losses), marker=".")
    left.set(xlabel="epoch", ylabel="training loss", title="training loss")
    left.set_xlim(left=0)
    if f1s:
        right = axes[0][1]
        right.plot(*zip(*f1s), marker="o", color="tab:green")
        right.set(xlabel="epoch", ylabel="strict F1", title="validation strict F1 (SemEval)", ylim=(0, 1))
    for ax in axes[0]:
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
