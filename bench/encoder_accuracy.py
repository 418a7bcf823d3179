"""Is our encoder recipe at least as accurate as a plain run_ner-style Trainer? Both fine-tune the same
model (the default profile's MiniLM, all-MiniLM-L6-v2) with the same learning rate, batch size, seeds,
sequence length and training documents, in the same run, and both are scored by eval/semeval (strict
F1 on character spans) on the same test documents:

    python bench/encoder_accuracy.py [--json OUT] [--output_dir results/encoder_accuracy] [--full]

  ours              encoders/main.py (windows, length-grouped batches, warm-up, the most probable
                    valid BIO sequence as the decoding, early stopping on dev strict F1, best epoch
                    kept), at most `max_epochs` epochs;
  run_ner_baseline  bench/run_ner_baseline.py (transformers' run_ner recipe, truncation, each word's
                    arg-max tag, no early stopping, last epoch kept), trained for as many epochs as
                    ours ran.

Datasets: BC5CDR (`bc5cdr`, PubTator, Chemical and Disease in one model) and NCBI-disease as
`ncbi_disease_iob`: one Disease type, the MTL IOB files that BioBERT and BLURB train and test on,
so the published numbers beside ours are on the same task. `ncbi_disease` keeps the PubTator
corpus's four classes (SpecificDisease, DiseaseClass, Modifier, CompositeMention), a harder task no
published number uses.

By default both systems run under the caps below (the bench is one stage of run_all.sh, which has
30 minutes on 2 CPU cores); --full lifts them (all documents, ours' own epoch limit). The caps, the
settings and each system's epochs and times go into the printed table and the JSON. The published
numbers come from full-data GPU runs of larger, domain-pretrained encoders: they show where the task
tops out, not what MiniLM under caps should reach.
Each system runs once per training seed (--seeds, the same seeds for both); the verdict reads the
mean over seeds, because under the caps both models are early in training and one seed moves the
difference by a few points. The difference (ours' seed-mean minus the baseline's) comes with a 95 %
paired bootstrap interval over test documents (one resample of documents scores every seed of both
systems): it covers test sampling; the spread over seeds is printed beside it.
Writes metrics.json per system, dataset and seed under --output_dir (methods "encoder",
"run_ner_baseline") for eval/report.py, the table as encoder_accuracy.md there, and with --json
`{"datasets": {name: {"ours", "run_ner_baseline", "runs", "caps", "difference", ...}}, "ours_not_lower": bool}`
("ours" and "run_ner_baseline" are seed means, "runs" each seed's numbers).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path


import numpy as np

from bench import run_ner_baseline
from data import registry
from data.corpus import Document, exit_on_format_error, read_jsonl, script_parser
from eval.semeval import score

ROOT = Path(__file__).resolve().parent.parent
ENCODER_MAIN = ROOT / "encoders" / "main.py"
MODEL = "minilm"
DATASETS = ("bc5cdr", "ncbi_disease_iob")
OUTPUT_DIR = Path("results/encoder_accuracy")
MAX_LENGTH = 512  # sub-words per input: MiniLM's limit; no sentence of either corpus is longer
SHARED_SETTINGS = ("learning_rate", "batch_size", "patience")  # encoders/main.py's defaults
SEEDS = (42, 43)  # training seeds of both systems; the first is encoders/main.py's default
# Seed 0's 2e-5 suits bert-large over 20 epochs; MiniLM (22 M parameters) under a 3-epoch cap barely
# moves at it (BC5CDR test strict F1 0.33 ours / 0.38 baseline, Disease F1 under 0.1), so the capped
# bench trains both systems at 1e-4 (0.60 / 0.60). --learning_rate and --full restore the choice.
CAPPED_LEARNING_RATE = 1e-4
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class Caps:
    """What both systems are limited to (None: no limit). Documents are the first N of each split."""

    max_train_docs: int | None
    max_eval_docs: int | None  # dev and test alike (encoders/main.py caps them together)
    max_epochs: int


# Sized by timing the whole bench. On a quiet 2-core machine MiniLM (batch 8) trains at roughly
# 700-1,000 sub-words/s and predicts about 6,000/s; the baseline's random (not length-grouped) batches
# make it train 1.5-1.8x slower than ours, and ours scores dev after every epoch. With 60 BC5CDR
# abstracts (100 scored) and 600 NCBI sentences the bench took an estimated 9-11 minutes; these caps
# are about three quarters of that: 11k and 16k training sub-words per epoch, BC5CDR scored on 80
# abstracts (1,581 test entities), NCBI on its whole dev and test (960 test entities).
# NCBI's IOB "documents" are single sentences. Other corpora get the abstract-level caps of BC5CDR.
ABSTRACT_CAPS = Caps(max_train_docs=45, max_eval_docs=80, max_epochs=3)
CAPS = {"bc5cdr": ABSTRACT_CAPS, "ncbi_disease_iob": Caps(max_train_docs=450, max_eval_docs=None, max_epochs=3)}

# Published test F1 (%) from /work/shared/reference/anchors.md: (system, F1 by type, regime).
BLURB = "BLURB protocol, one model per type, mean of 5 runs, full data, GPU"
ANCHORS = {
    "bc5cdr": [("PubMedBERT base", {"Chemical": 93.33, "Disease": 85.62}, BLURB),
               ("BioBERT", {"Chemical": 92.85, "Disease": 84.70}, BLURB),
               ("scispaCy en_ner_bc5cdr_md", {"all": 84.28}, "one model for both types, scispaCy docs v0.5.4")],
    "ncbi_disease_iob": [("PubMedBERT base", {"Disease": 87.82}, BLURB),
                         ("BioBERT", {"Disease": 89.13}, BLURB),
                         ("BioLinkBERT-large", {"Disease": 88.76}, "LinkBERT paper (ACL 2022), full data, GPU")],
}


def encoder_defaults() -> dict:
    """encoders/main.py's own defaults (learning rate, batch size, patience, epochs), as its parser resolves
    them (the script this bench times, through its public parse_args)."""
    from encoders.main import parse_args

    script, training = parse_args(["--dataset_name", "-", "--output_dir", "-"])
    return {"learning_rate": training.learning_rate, "batch_size": training.per_device_train_batch_size,
            "patience": script.patience, "num_train_epochs": training.num_train_epochs}


def run_ours(dataset: str, caps: Caps, settings: dict, seed: int, output_dir: Path) -> dict:
    """encoders/main.py through its command line; its metrics.json, plus the wall time."""
    shutil.rmtree(output_dir, ignore_errors=True)  # a fresh run: main.py refuses old checkpoints
    command = [sys.executable, str(ENCODER_MAIN), "--dataset_name", dataset, "--output_dir", str(output_dir),
               "--model_name", MODEL, "--num_train_epochs", str(caps.max_epochs),
               "--learning_rate", str(settings["learning_rate"]), "--batch_size", str(settings["batch_size"]),
               "--patience", str(settings["patience"]), "--seed", str(seed),
               "--max_length", str(MAX_LENGTH)]
    for flag, value in (("--max_train_docs", caps.max_train_docs), ("--max_eval_docs", caps.max_eval_docs)):
        if value is not None:
            command += [flag, str(value)]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    wall = time.perf_counter() - start
    for checkpoint in output_dir.glob("checkpoint-*"):  # only needed to resume; the best model stays
        shutil.rmtree(checkpoint, ignore_errors=True)
    metrics = json.loads((output_dir / "metrics.json").read_text())
    return {**metrics, "wall_seconds": wall}


def run_baseline(dataset: str, caps: Caps, settings: dict, seed: int, epochs: int, output_dir: Path) -> dict:
    """bench/run_ner_baseline.py in process, on the same documents; its metrics, plus the wall time."""
    config = run_ner_baseline.Config(model_name=MODEL, num_train_epochs=epochs,
                                     learning_rate=settings["learning_rate"], batch_size=settings["batch_size"],
                                     max_seq_length=MAX_LENGTH, seed=seed)
    train = registry.load(dataset, "train")[:caps.max_train_docs]
    evaluate = {"test": registry.load(dataset, "test")[:caps.max_eval_docs]}  # it selects nothing on dev
    start = time.perf_counter()
    metrics = run_ner_baseline.run(config, dataset, train, evaluate, output_dir)
    return {**metrics, "wall_seconds": time.perf_counter() - start}


def summary(metrics: dict, epochs: int) -> dict:
    """The numbers the comparison reads off one system's metrics.json."""
    test = metrics["test"]
    return {"strict_f1": test["strict"]["f1"], "precision": test["strict"]["precision"],
            "recall": test["strict"]["recall"], "epochs": epochs,
            "per_type_f1": {t: s["strict"]["f1"] for t, s in test["per_type"].items()},
            "test_entities": test["strict"]["possible"],
            "train_seconds": round(metrics["train_seconds"], 1), "wall_seconds": round(metrics["wall_seconds"], 1)}


def document_counts(gold: list[Document], predictions: Path) -> np.ndarray:
    """Per test document: strict correct, gold and predicted entities (F1 = 2 correct / (gold + predicted))."""
    row = {d.id: i for i, d in enumerate(gold)}
    counts = np.zeros((len(gold), 3))
    for m in score(gold, read_jsonl(predictions, require_text=False)).matches:
        counts[row[m.doc_id]] += (m.category("strict") == "correct", m.gold is not None, m.pred is not None)
    return counts


def difference_interval(ours: np.ndarray, baseline: np.ndarray) -> list[float]:
    """95 % paired bootstrap interval of ours' minus the baseline's seed-mean strict F1. Arrays are
    (seeds, test documents, 3); each resample draws test documents once for every seed of both systems."""
    n_docs = ours.shape[1]
    rows = np.random.default_rng(BOOTSTRAP_SEED).integers(0, n_docs, (BOOTSTRAP_SAMPLES, n_docs))

    def mean_f1(counts: np.ndarray) -> np.ndarray:
        sums = counts[:, rows].sum(axis=2)  # (seeds, samples, 3)
        return (2 * sums[..., 0] / np.maximum(sums[..., 1] + sums[..., 2], 1)).mean(axis=0)

    return [float(x) for x in np.percentile(mean_f1(ours) - mean_f1(baseline), [2.5, 97.5])]


def seed_mean(summaries: list[dict]) -> dict:
    """One system's summaries over seeds: the numbers averaged, each seed's strict F1 kept beside them."""
    first = summaries[0]
    mean = {k: float(np.mean([s[k] for s in summaries])) for k in ("strict_f1", "precision", "recall",
                                                                   "dev_strict_f1") if k in first}
    return {**mean, "strict_f1_by_seed": [s["strict_f1"] for s in summaries],
            "epochs": [s["epochs"] for s in summaries],
            "per_type_f1": {t: float(np.mean([s["per_type_f1"][t] for s in summaries])) for t in first["per_type_f1"]},
            "test_entities": first["test_entities"],
            "train_seconds": round(sum(s["train_seconds"] for s in summaries), 1),
            "wall_seconds": round(sum(s["wall_seconds"] for s in summaries), 1)}


def run_dir(output_dir: Path, system: str, dataset: str, seed: int) -> Path:
    """Where one system's run writes (its metrics.json's method names the folder)."""
    return output_dir / {"ours": "encoder", "run_ner_baseline": "run_ner_baseline"}[system] / dataset / f"seed{seed}"


def run_pair(dataset: str, caps: Caps, settings: dict, seed: int, output_dir: Path) -> dict:
    """One dataset and seed: ours, then the baseline for as many epochs as ours ran; each one's summary."""
    ours = run_ours(dataset, caps, settings, seed, run_dir(output_dir, "ours", dataset, seed))
    baseline = run_baseline(dataset, caps, settings, seed, ours["epochs_run"],
                            run_dir(output_dir, "run_ner_baseline", dataset, seed))
    return {"seed": seed, "ours": {**summary(ours, ours["epochs_run"]), "best_epoch": ours["best_epoch"],
                                   "dev_strict_f1": ours["dev"]["strict"]["f1"]},
            "run_ner_baseline": {**summary(baseline, baseline["epochs"]),
                                 "words_cut_off": baseline["test_decoding"].get("words_cut_off", 0)}}


def run_pair_in_worker(threads: int, log: Path, *pair: object) -> dict:
    """run_pair in a pool process on `threads` threads, its output and its children's in `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ["OMP_NUM_THREADS"] = str(threads)  # read by torch here and in encoders/main.py's process
    return run_pair(*pair)


def run_pairs(pairs: list[tuple[str, Caps, int]], settings: dict, output_dir: Path, jobs: int) -> dict:
    """run_pair for every (dataset, caps, seed), `jobs` at a time; {(dataset, seed): its summaries}."""
    if jobs == 1:
        return {(d, seed): run_pair(d, caps, settings, seed, output_dir) for d, caps, seed in pairs}
    threads = max(1, (os.cpu_count() or 1) // jobs)
    logs = {(d, seed): output_dir / "logs" / f"{d}_seed{seed}.log" for d, _, seed in pairs}
    print(f"{len(pairs)} runs of both systems, {jobs} at a time on {threads} thread(s) each; logs in "
          f"{output_dir / 'logs'}", flush=True)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(run_pair_in_worker, threads, logs[d, seed], d, caps, settings, seed, output_dir):
                   (d, seed) for d, caps, seed in pairs}
        results = {}
        for future in as_completed(futures):
            d, seed = futures[future]
            try:
                results[d, seed] = r = future.result()
            except Exception as error:
                tail = "".join(logs[d, seed].read_text(errors="replace").splitlines(True)[-30:])
                raise SystemExit(f"error: {d} seed {seed} failed ({error}); the end of {logs[d, seed]}:\n{tail}")
            print(f"{d} seed {seed}: test strict F1 ours {percent(r['ours']['strict_f1'])}, baseline "
                  f"{percent(r['run_ner_baseline']['strict_f1'])}", flush=True)
    return results


def compare(dataset: str, caps: Caps, runs: list[dict], output_dir: Path) -> dict:
    """One dataset's entry of the JSON from its runs (one per seed): seed means, differences, bootstrap."""
    test = registry.load(dataset, "test")[:caps.max_eval_docs]
    counts = {system: np.stack([document_counts(test, run_dir(output_dir, system, dataset, r["seed"])
                                                / "test.predictions.jsonl") for r in runs])
              for system in ("ours", "run_ner_baseline")}
    differences = [r["ours"]["strict_f1"] - r["run_ner_baseline"]["strict_f1"] for r in runs]
    return {"ours": seed_mean([r["ours"] for r in runs]),
            "run_ner_baseline": seed_mean([r["run_ner_baseline"] for r in runs]),
            "runs": runs,
            "difference": float(np.mean(differences)),
            "difference_by_seed": differences,
            "difference_95ci": difference_interval(counts["ours"], counts["run_ner_baseline"]),
            "caps": {**asdict(caps), "max_length": MAX_LENGTH},
            "anchors": [{"system": s, "f1": f1, "regime": r} for s, f1, r in ANCHORS.get(dataset, [])]}


def percent(x: float) -> str:
    return f"{100 * x:.2f}"


def table(report: dict) -> str:
    """The Markdown comparison: ours and the baseline per dataset (seed means), the published numbers beside them."""
    s = report["settings"]
    lines = [f"## Encoder accuracy: ours vs a run_ner-style Trainer ({MODEL}, all-MiniLM-L6-v2)", "",
             f"Test strict F1 (%), SemEval-2013 on character spans (eval/semeval), mean over training seeds "
             f"{', '.join(map(str, report['seeds']))} (each seed's F1 beside it). Both systems: learning rate "
             f"{s['learning_rate']}, batch {s['batch_size']}, max length {MAX_LENGTH} sub-words, the first N "
             f"documents of each split. Ours keeps its best dev epoch (patience {s['patience']}); the baseline "
             f"trains as many epochs as ours ran and keeps the last. `train s` (all seeds; noisy on a shared CPU): "
             f"ours includes its per-epoch dev scoring. Published rows: other models, full data, their own "
             f"regime.", "",
             "| dataset | system | regime | strict F1 | by seed | P | R | per type | epochs | train s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, entry in report["datasets"].items():
        c = entry["caps"]
        capped = (f"MiniLM; train docs {c['max_train_docs'] or 'all'}, eval docs {c['max_eval_docs'] or 'all'}, "
                  f"<= {c['max_epochs']} epochs")
        for system, label, how in (("ours", "ours (encoders/main.py)", "best dev epoch"),
                                   ("run_ner_baseline", "run_ner baseline", "last epoch")):
            r = entry[system]
            per_type = ", ".join(f"{t} {percent(f)}" for t, f in r["per_type_f1"].items())
            by_seed = ", ".join(percent(f) for f in r["strict_f1_by_seed"])
            epochs = ", ".join(map(str, r["epochs"]))
            if system == "ours":
                epochs += f" (best {', '.join(str(run['ours']['best_epoch']) for run in entry['runs'])})"
            lines.append(f"| {name} | {label} | {capped}; {how} | **{percent(r['strict_f1'])}** | {by_seed} | "
                         f"{percent(r['precision'])} | {percent(r['recall'])} | {per_type} | {epochs} | "
                         f"{r['train_seconds']:.0f} |")
        for a in entry["anchors"]:
            per_type = ", ".join(f"{t} {f:.2f}" for t, f in a["f1"].items())
            lines.append(f"| {name} | {a['system']} (published) | {a['regime']} | - | - | - | - | {per_type} | - | - |")
    verdicts = [f"{n} {percent(e['difference'])} points (95 % CI {percent(e['difference_95ci'][0])} to "
                f"{percent(e['difference_95ci'][1])}; by seed {', '.join(percent(d) for d in e['difference_by_seed'])})"
                for n, e in report["datasets"].items()]
    lines += ["", f"Ours minus baseline, seed-mean test strict F1, with a paired bootstrap over test documents "
                  f"(test sampling only; the seeds show the training noise): {'; '.join(verdicts)}. "
                  f"Ours not lower: **{'yes' if report['ours_not_lower'] else 'no'}**. "
                  f"Bench wall time {report['wall_seconds']:.0f} s (load average {report['load_average'][0]:.1f} "
                  f"at the start, {report['load_average'][1]:.1f} at the end, on {os.cpu_count()} CPUs)."]
    return "\n".join(lines)


def main() -> None:
    parser = script_parser(__doc__)
    parser.add_argument("--json", type=Path, help="write the comparison here")
    parser.add_argument("--output_dir", type=Path, default=OUTPUT_DIR, help="default: %(default)s")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), help="default: %(default)s")
    parser.add_argument("--full", action="store_true", help="no caps: all documents, ours' own epoch limit")
    parser.add_argument("--max_train_docs", type=int, help="override the training-document cap")
    parser.add_argument("--max_eval_docs", type=int, help="override the dev/test-document cap")
    parser.add_argument("--max_epochs", type=int, help="override the epoch cap")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                        help="training seeds of both systems; the verdict reads their mean (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs (dataset and seed, both systems) at a time, the CPU cores shared out among "
                             "them, each one's output in OUTPUT_DIR/logs; scores may differ from --jobs 1 in "
                             "the last digits, as fewer threads sum in another order (default: %(default)s)")
    parser.add_argument("--learning_rate", type=float,
                        help=f"learning rate of both systems (default: {CAPPED_LEARNING_RATE} under the caps, "
                             "encoders/main.py's 2e-5 with --full)")
    args = parser.parse_args()

    settings = encoder_defaults()
    if args.learning_rate is not None:
        settings["learning_rate"] = args.learning_rate
    elif not args.full:
        settings["learning_rate"] = CAPPED_LEARNING_RATE
    overrides = {k: v for k in ("max_train_docs", "max_eval_docs", "max_epochs") if (v := getattr(args, k))}
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    caps = {name: replace(Caps(None, None, int(settings["num_train_epochs"])) if args.full
                          else CAPS.get(name, ABSTRACT_CAPS), **overrides) for name in args.datasets}
    runs = run_pairs([(name, caps[name], seed) for name in args.datasets for seed in args.seeds], settings,
                     args.output_dir, args.jobs)
    datasets = {name: compare(name, caps[name], [runs[name, seed] for seed in args.seeds], args.output_dir)
                for name in args.datasets}
    report = {"model": MODEL, "settings": {k: settings[k] for k in SHARED_SETTINGS}, "seeds": args.seeds,
              "datasets": datasets,
              "ours_not_lower": all(e["difference"] >= 0 for e in datasets.values()),
              "wall_seconds": round(time.perf_counter() - started, 1),
              "load_average": [load_before, os.getloadavg()[0]]}  # one-minute averages: was the CPU shared?
    markdown = table(report)
    print(markdown)
    (args.output_dir / "encoder_accuracy.md").write_text(markdown + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    exit_on_format_error(main)
