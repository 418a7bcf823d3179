"""decoders/ and generative/: answers mapped back to document offsets, completion-only masking, a tiny SmolLM2 +
LoRA SFT run end to end (selection on validation, outputs, predictions, metrics.json), a killed run resumed to the
same adapter and outputs, the inference CLI and its resume, the encoder-decoder path, a 4-bit (QLoRA) training
step on CPU, the vLLM backend against a stand-in module, --constrained, --help and the launchers. Tiny caps (4
training sentences, budgets of a few tokens)."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import FIXTURE, ROOT, killed_and_resumed, launched, slow
from data import registry
from data.corpus import Document, Entity, read_jsonl
from data.llm.formats import get_format
from data.llm.units import BudgetRule, UnitSplit, make_units, token_length

# 2 one-sentence documents of the test corpus to train on (one step of 2 per epoch), 2 to validate and test on.
TINY = ["--dataset_name", "fixture", "--datasets_path", str(FIXTURE), "--max_train_docs", "2", "--max_eval_docs", "2",
        "--max_selection_docs", "1", "--output_format", "typed_short", "--per_device_train_batch_size", "2",
        "--max_new_tokens", "6", "--logging_steps", "1", "--warmup_ratio", "0", "--lora_r", "4", "--lora_alpha", "8",
        "--lora_target_modules", "q_proj,v_proj"]


def run_main(*argv: str) -> dict:
    from decoders import main
    return main.main(*main.parse_args(list(argv)))


def run_inference(*argv: str) -> dict:
    from decoders import inference
    return inference.main(inference.parse_args(list(argv)))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny SFT run: 2 epochs of 1 step, a selection after each."""
    out = tmp_path_factory.mktemp("runs") / "decoder"
    metrics = run_main(*TINY, "--output_dir", str(out), "--max_steps", "2")
    return out, metrics


# --------------------------------------------------------------------------- units <-> documents
def test_unit_answers_land_at_their_offsets_in_the_document():
    text = "BRCA1 causes breast cancer. Ataxia is rare. Cancer again."
    doc = Document("d", text, [Entity.span(13, 26, "Disease", "breast cancer"), Entity.span(28, 34, "Disease", "Ataxia"),
                               Entity.span(44, 50, "Disease", "Cancer")])
    fmt = get_format("typed")
    recs = make_units([doc], ["Disease"], fmt, respect_entities=False)
    assert [r.start for r in recs] == [0, 28, 44]
    outputs = {recs[0].id: "Disease: breast cancer", recs[1].id: "Disease: Ataxia, rare",
               recs[2].id: "Disease: Cancer"}
    (pred,), parsed = UnitSplit("test", [doc], recs, fmt, ["Disease"], [8] * 3).documents(outputs)
    assert [(e.start, e.end, text[e.start:e.end]) for e in pred.entities] == \
        [(13, 26, "breast cancer"), (28, 34, "Ataxia"), (38, 42, "rare"), (44, 50, "Cancer")]
    # Overlapping windows find an entity twice: it is kept once.
    windows = make_units([doc], ["Disease"], fmt, "document", max_sentences=2, respect_entities=False)
    split = UnitSplit("test", [doc], windows, fmt, ["Disease"], [8] * len(windows))
    both = split.documents({r.id: "Disease: Ataxia" for r in windows})[0]
    assert [(e.start, e.end) for e in both[0].entities] == [(28, 34)]


def test_budgets_follow_the_longest_gold_answer_and_the_unit_length(tmp_path):
    from data.llm.generation import load_tokenizer

    tokenizer = load_tokenizer("smollm2", False)
    fmt = get_format("bio")
    train = make_units([Document("t", "Breast cancer runs in families.", [Entity.span(0, 13, "Disease")])],
                       ["Disease"], fmt)
    rule = BudgetRule.from_training(tokenizer, train)
    long = " ".join(["word"] * 40) + "."
    recs = make_units([Document("a", "Short."), Document("b", long)], ["Disease"], fmt, respect_entities=False)
    short_budget, long_budget = rule.budgets(tokenizer, recs)
    assert short_budget < rule.cap < long_budget  # a short unit needs less; a longer one's own answer counts
    assert long_budget >= token_length(tokenizer, recs[1].output) + 1
    assert rule.budgets(tokenizer, recs, fixed=7) == [7, 7]


# --------------------------------------------------------------------------- training
@slow
def test_the_loss_covers_the_answer_and_its_eos_only(tmp_path):
    trainer = build([*TINY, "--output_dir", str(tmp_path)])
    batch = next(iter(trainer.get_train_dataloader()))
    tokenizer = trainer.processing_class
    docs, types = registry.load_splits("fixture", FIXTURE, max_train_docs=2, max_eval_docs=2)
    answers = {u.output for u in make_units(docs["train"], types, get_format("typed_short"))}
    assert (batch["attention_mask"] == 0).any(), "the batch should hold padding"
    for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"]):
        assert (labels[mask == 0] == -100).all()  # padding
        trained = (labels != -100).nonzero().flatten()
        first, last = int(trained[0]), int(trained[-1])
        assert (labels[:first] == -100).all() and (labels[first:last + 1] == ids[first:last + 1]).all()
        assert tokenizer.decode(ids[:first]).endswith("### Answer:\n")  # the whole prompt is masked
        assert ids[last] == tokenizer.eos_token_id and tokenizer.decode(ids[first:last]) in answers


def build(argv: list[str]):
    """decoders/main.py's trainer for these arguments, selecting on the first dev document."""
    from data.llm.generation import is_encoder_decoder, load_tokenizer
    from decoders import main

    script, config, model_config = main.parse_args(argv)
    docs, types = registry.load_splits(script.dataset_name, script.datasets_path, config.seed,
                                       script.max_train_docs, script.max_eval_docs)
    fmt = get_format(script.output_format)
    name = model_config.model_name_or_path
    tokenizer = load_tokenizer(name, is_encoder_decoder(name))
    train = make_units(docs["train"], types, fmt, script.level, max_sentences=script.max_sentences)
    rule = BudgetRule.from_training(tokenizer, train)
    selection = main.cut_split("validation", docs["dev"][:1], types, fmt, script, tokenizer, rule)
    return main.build_trainer(script, config, model_config, tokenizer, train, selection)


@slow
def test_a_tiny_sft_run_selects_on_validation_and_writes_every_output(trained):
    out, metrics = trained
    assert metrics["method"] == "decoder" and metrics["format"] == "typed_short" and not metrics["constrained"]
    assert metrics["epochs_run"] == 2 and metrics["best_epoch"] in (1, 2) and metrics["max_train_docs"] == 2
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert [h["epoch"] for h in history if "eval_strict_f1" in h] == [1.0, 2.0]
    on_disk = json.loads((out / "metrics.json").read_text())
    for split in ("dev", "test"):
        assert set(on_disk[split]) >= {"strict", "exact", "partial", "type"}
        assert set(on_disk["diagnostics"][split]) >= {"parse_rate", "hallucination_rate", "format_compliance"}
        outputs = [json.loads(line) for line in (out / f"{split}.outputs.jsonl").read_text().splitlines()]
        assert len(outputs) == 2 == on_disk["generation"][split]["units"]
        assert {p.id for p in read_jsonl(out / f"{split}.predictions.jsonl", require_text=False)} == \
            {o["id"].split("/")[0] for o in outputs}
    info = json.loads((out / "model" / "generation.json").read_text())
    assert info["output_format"] == "typed_short" and info["budget_rule"]["cap"] > 0
    assert info["nested"] is True  # the corpus nests mentions: string answers are placed accordingly
    assert (out / "model" / "adapter_config.json").exists() and (out / "training.png").exists()
    table = subprocess.run([sys.executable, "eval/report.py", str(out.parent)], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout
    assert "| decoder | smollm2 | typed_short | fixture | test |" in table


@slow
def test_selection_on_the_whole_dev_split_is_not_generated_twice(tmp_path, decoded_rows):
    """With --max_selection_docs covering dev, the selected step's validation answers are the final dev
    outputs: the model generates dev once (the selection) and test once, and a fresh dev pass by the saved
    model gives the same answers."""
    out = tmp_path / "run"
    run_main(*TINY, "--max_selection_docs", "2", "--max_steps", "1", "--output_dir", str(out))
    assert sum(decoded_rows) == 2 + 2  # 2 dev units for the selection, 2 test units; dev not again
    run_inference("--model_dir", str(out / "model"), "--split", "dev", "--output_dir", str(tmp_path / "again"),
                  "--max_eval_docs", "2", "--max_new_tokens", "6")
    reused = {json.loads(line)["id"]: json.loads(line)["output"] for line in (out / "dev.outputs.jsonl").open()}
    fresh = {json.loads(line)["id"]: json.loads(line)["output"] for line in (tmp_path / "again" / "dev.outputs.jsonl").open()}
    assert reused == fresh and len(reused) == 2


@slow
def test_inference_reproduces_the_runs_test_outputs_and_resumes(trained, tmp_path, capsys):
    out, metrics = trained
    run_inference("--model_dir", str(out / "model"), "--split", "test", "--output_dir", str(tmp_path),
                  "--max_eval_docs", "2", "--max_new_tokens", "6")
    assert sorted((tmp_path / "test.outputs.jsonl").read_text().splitlines()) == \
        sorted((out / "test.outputs.jsonl").read_text().splitlines())
    assert read_jsonl(tmp_path / "test.predictions.jsonl", require_text=False) == \
        read_jsonl(out / "test.predictions.jsonl", require_text=False)
    assert json.loads((tmp_path / "test.metrics.json").read_text())["test"] == metrics["test"]
    capsys.readouterr()
    run_inference("--model_dir", str(out / "model"), "--split", "test", "--output_dir", str(tmp_path),
                  "--max_eval_docs", "2", "--max_new_tokens", "6")
    assert "2 of 2 outputs already there, generating 0" in capsys.readouterr().err


def step_history(folder: Path) -> list[tuple]:
    """What a run logged at each step (loss, gradient norm, validation strict F1), not its timings."""
    history = json.loads((folder / "trainer_state.json").read_text())["log_history"]
    return [(h["step"], h.get("loss"), h.get("grad_norm"), h.get("eval_strict_f1")) for h in history
            if "loss" in h or "eval_strict_f1" in h]


@slow
def test_a_killed_decoder_training_resumes_to_the_same_adapter(tmp_path):
    """SIGKILL after the first step's checkpoint, then --resume True: the same adapter, bit for bit (one
    thread, the same operations in the same order: any difference is a different batch, dropout mask or
    optimizer state, not rounding), the same losses, selection, answers and scores. One unit per step, a
    selection and a checkpoint after each: the run resumes in the middle of an epoch (the batch order) with
    LoRA dropout on (the random state). The selection answers the whole dev split, so its answers at the
    selected step become the final dev outputs, in the resumed run too when that step came before the kill."""
    argv = ["decoders/main.py", *TINY, "--per_device_train_batch_size", "1", "--max_steps", "3",
            "--eval_strategy", "steps", "--eval_steps", "1", "--save_strategy", "steps", "--save_steps", "1",
            "--lora_dropout", "0.1", "--max_selection_docs", "2"]
    run = killed_and_resumed(argv, tmp_path, torn=True)
    whole, resumed = run.weights
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert step_history(run.whole) == step_history(run.resumed) and len(step_history(run.whole)) == 6
    metrics = [json.loads((d / "metrics.json").read_text()) for d in run[:2]]
    for key in ("epochs_run", "best_epoch", "dev", "test", "diagnostics"):
        assert metrics[0][key] == metrics[1][key], key
    assert [set(m["timing"]) for m in metrics] == [{"test"}] * 2  # dev: the selection's answers, not generated again
    for name in ("dev.outputs.jsonl", "test.outputs.jsonl", "dev.predictions.jsonl", "test.predictions.jsonl"):
        assert (run.whole / name).read_text() == (run.resumed / name).read_text(), name


@slow
def test_the_encoder_decoder_path_trains_on_answer_labels(tmp_path):
    from decoders import main

    argv = [*TINY, "--model_name", "minilm2minilm", "--output_dir", str(tmp_path), "--max_steps", "2",
            "--lora_target_modules", "query,value"]
    trainer = build(argv)
    assert type(trainer).__name__ == "Seq2SeqLoRATrainer"
    batch = next(iter(trainer.get_train_dataloader()))
    sep = trainer.processing_class.sep_token_id
    for labels in batch["labels"]:
        kept = labels[labels != -100]
        assert kept[-1] == sep and trainer.processing_class.cls_token_id not in kept.tolist()
    metrics = main.main(*main.parse_args(argv))
    assert metrics["model"] == "minilm2minilm" and "strict" in metrics["test"]


@slow
def test_qlora_loads_4bit_weights_and_trains_the_adapter_on_cpu(tmp_path):
    import bitsandbytes as bnb

    trainer = build([*TINY, "--isQLoRA", "True", "--output_dir", str(tmp_path)])
    model = trainer.model
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    batch = next(iter(trainer.get_train_dataloader()))
    trainer.compute_loss(model, batch).backward()
    grads = [p.grad for n, p in model.named_parameters() if "lora_B" in n]
    assert grads and all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


@slow
def test_the_vllm_backend_makes_the_calls_it_should(trained, tmp_path, monkeypatch):
    """vLLM cannot run here: a stand-in `vllm` package records the calls and answers every prompt."""
    out, _ = trained
    fake = tmp_path / "fake"
    (fake / "vllm" / "lora").mkdir(parents=True)
    (fake / "vllm" / "__init__.py").write_text(textwrap.dedent('''
        from types import SimpleNamespace
        CALLS = []

        class SamplingParams:
            def __init__(self, **kwargs):
                self.kwargs = kwargs

        class LLM:
            def __init__(self, **kwargs):
                CALLS.append(("LLM", kwargs))

            def generate(self, prompts, params, lora_request=None):
                CALLS.append(("generate", list(prompts), [p.kwargs for p in params], lora_request))
                return [SimpleNamespace(outputs=[SimpleNamespace(text="Disease: cancer")]) for _ in prompts]
        '''))
    (fake / "vllm" / "lora" / "__init__.py").write_text("")
    (fake / "vllm" / "lora" / "request.py").write_text(textwrap.dedent('''
        class LoRARequest:
            def __init__(self, name, id, path):
                self.name, self.id, self.path = name, id, path
        '''))
    monkeypatch.syspath_prepend(str(fake))
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        monkeypatch.delitem(sys.modules, name)
    argv = ["--model_dir", str(out / "model"), "--split", "test", "--output_dir", str(tmp_path / "v"),
            "--max_eval_docs", "2", "--backend", "vllm"]
    run_inference(*argv)
    calls = importlib.import_module("vllm").CALLS
    (_, init), (_, prompts, params, lora) = calls
    from data.llm.models import resolve
    assert init["model"] == resolve("smollm2") and init["enable_lora"] is True and init["max_lora_rank"] == 4
    assert lora.path == str(out / "model") and len(prompts) == 2 and prompts[0].endswith("### Answer:\n")
    assert all(p["temperature"] == 0.0 and p["max_tokens"] > 0 for p in params)
    stored = (tmp_path / "v" / "test.outputs.jsonl").read_text().splitlines()
    assert [json.loads(line)["output"] for line in stored] == ["Disease: cancer"] * 2
    run_inference(*argv)
    assert [c[0] for c in calls] == ["LLM", "generate"]  # the rerun had nothing left to generate


@slow
def test_constrained_answers_always_parse(trained, tmp_path):
    pytest.importorskip("data.llm.constraints")
    out, _ = trained
    result = run_inference("--model_dir", str(out / "model"), "--split", "test", "--output_dir", str(tmp_path),
                           "--max_eval_docs", "2", "--max_new_tokens", "12", "--constrained", "True")
    assert result["diagnostics"]["parse_rate"] == 1.0 and result["diagnostics"]["hallucination_rate"] in (0.0, None)
    metrics = json.loads((tmp_path / "test.metrics.json").read_text())
    assert metrics["constrained"] is True


# --------------------------------------------------------------------------- command lines
def test_batches_are_length_grouped_unless_asked_for_random_ones():
    from decoders.main import parse_args

    base = ["--dataset_name", "ncbi_disease", "--output_dir", "x"]
    assert parse_args(base)[1].train_sampling_strategy == "group_by_length"
    assert parse_args(base + ["--train_sampling_strategy", "random"])[1].train_sampling_strategy == "random"
    with pytest.raises(SystemExit):
        parse_args(base + ["--train_sampling_strategy", "shortest_first"])


def test_the_seeds_flag_names_are_aliases_of_the_library_dataclasses():
    from decoders.main import parse_args

    script, config, model = parse_args(["--dataset_name", "d", "--output_dir", "x", "--model_name", "minilm2minilm",
                                        "--isQLoRA", "True", "--warmup_ratio", "0.1",
                                        "--lora_target_modules", "q_proj,v_proj", "--lora_modules_to_save", "lm_head"])
    assert (model.model_name_or_path, model.load_in_4bit, config.warmup_steps) == ("minilm2minilm", True, 0.1)
    assert model.lora_target_modules == ["q_proj", "v_proj"] and model.lora_modules_to_save == ["lm_head"]
    _, config, model = parse_args(["--dataset_name", "d", "--output_dir", "x", "--model_name_or_path", "m",
                                   "--load_in_4bit", "True", "--warmup_steps", "5", "--lora_target_modules", "a", "b"])
    assert (model.model_name_or_path, model.load_in_4bit, config.warmup_steps) == ("m", True, 5)
    assert model.lora_target_modules == ["a", "b"] and parse_args(["--dataset_name", "d", "--output_dir", "x"])[2] \
        .lora_target_modules == "all-linear"
    # trl's own defaults (bf16 on, activation checkpointing on, cut at 1024 tokens) are not this script's
    assert (config.bf16, config.activation_checkpointing, config.max_length, config.completion_only_loss) == \
        (False, False, None, True)


def test_generative_main_is_decoders_main_with_seed_1_defaults():
    from decoders.main import parse_args
    from generative.main import command

    script, config, model = parse_args(command(["--dataset_name", "ncbi_disease", "--output_dir", "x"])[2:])
    assert (script.method, script.output_format, script.level, model.lora_r, model.lora_alpha, config.learning_rate,
            config.num_train_epochs) == ("generative", "json", "document", 64, 128, 8e-5, 6)
    override = command(["--dataset_name", "d", "--output_dir", "x", "--output_format", "typed"])[2:]
    assert parse_args(override)[0].output_format == "typed"


SEED0_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@pytest.mark.parametrize("launcher, profile, expected", [
    ("decoders/run_seed0.sh", "paper", {
        "model_name_or_path": "mistralai/Mistral-7B-Instruct-v0.3", "load_in_4bit": True, "lora_r": 128,
        "lora_alpha": 256, "lora_dropout": 0.05, "lora_modules_to_save": ["lm_head"],
        "lora_target_modules": SEED0_MODULES, "learning_rate": 4e-5, "optim": "paged_adamw_8bit",
        "per_device_train_batch_size": 4, "gradient_accumulation_steps": 4, "num_train_epochs": 20, "patience": 3,
        "output_format": "bio", "bf16": True, "activation_checkpointing": True, "seed": 42, "resume": True}),
    ("decoders/run_seed0.sh", "default", {"model_name_or_path": "smollm2", "max_train_docs": 4, "lora_r": 128,
                                          "load_in_4bit": False, "num_train_epochs": 1}),
    ("decoders/run_seed4.sh", "paper", {"lora_r": 8, "lora_alpha": 16, "lora_target_modules": SEED0_MODULES[:4],
                                        "learning_rate": 2.5e-4, "num_train_epochs": 4, "lr_scheduler_type": "cosine",
                                        "output_format": "typed"}),
    ("decoders/run_seed4.sh", "default", {"model_name_or_path": "smollm2", "max_eval_docs": 4}),
    ("generative/run_seed1.sh", "paper", {"method": "generative", "output_format": "json", "level": "document",
                                          "lora_r": 64, "lora_alpha": 128, "learning_rate": 8e-5,
                                          "lora_target_modules": SEED0_MODULES, "num_train_epochs": 6}),
    ("generative/run_seed1.sh", "default", {"model_name_or_path": "smollm2", "max_train_docs": 4}),
])
def test_launchers_pass_the_papers_settings(launcher, profile, expected):
    (resolved,) = launched(launcher, PROFILE=profile)
    values = {k: getattr(obj, k) for obj in resolved for k in expected if hasattr(obj, k)}
    assert {k: getattr(v, "value", v) for k, v in values.items()} == expected  # enums compare by value
