"""dfpo/ on the committed fixture corpus: DPOP's loss against hand computation and against trl's own DPO loss,
the penalty only where the chosen answer lost probability, a short DPOP run that moves the new adapter and
leaves the stage-1 weights alone, preference pairs of every kind, refused pair files, windows instead of dropped
documents, a killed stage resuming to the same adapter, and the launcher's settings."""
from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import torch

from conftest import FIXTURE, killed_and_resumed, launched, slow
from data.corpus import FormatError
from dfpo.dpop import dpop_loss

FIXTURE_ARGS = ["--one_dataset", "fixture", "--datasets_path", str(FIXTURE)]


def test_the_dpop_loss_is_the_papers_formula():
    pc, pr, rc, rr = (torch.tensor([v]) for v in (-10.0, -14.0, -9.0, -12.0))
    beta, lam = 0.4, 2.0
    margin = (-10 + 9) - (-14 + 12)  # (pc - rc) - (pr - rr) = 1
    penalty = max(0.0, -9 + 10)  # max(0, rc - pc) = 1
    expected = -math.log(1 / (1 + math.exp(-beta * (margin - lam * penalty))))
    assert dpop_loss(pc, pr, rc, rr, beta, lam).item() == pytest.approx(expected, rel=1e-6)


def test_the_penalty_acts_only_when_the_chosen_answer_lost_probability():
    pr, rr = torch.tensor([-14.0]), torch.tensor([-12.0])
    gained = (torch.tensor([-8.0]), pr, torch.tensor([-9.0]), rr)  # policy above reference on the chosen answer
    lost = (torch.tensor([-10.0]), pr, torch.tensor([-9.0]), rr)
    assert dpop_loss(*gained, 0.4, 2.0).item() == pytest.approx(dpop_loss(*gained, 0.4, 0.0).item(), abs=1e-7)
    assert dpop_loss(*lost, 0.4, 2.0).item() > dpop_loss(*lost, 0.4, 0.0).item()


@pytest.fixture(scope="module")
def stage1(tmp_path_factory):
    """A stage-1 model trained for two steps on the fixture corpus (adapter and stack)."""
    from dfpo import finetune

    out = tmp_path_factory.mktemp("stage1")
    finetune.main(*finetune.parse_args([*FIXTURE_ARGS, "--datapreprocess", "--max_steps", "2", "--batchsize", "2",
                                        "--gradient_accumulation_steps", "1", "--lora_r", "8", "--max_eval_docs", "1",
                                        "--output_dir", str(out)]))
    return out


@slow
def test_inference_answers_as_the_stage_did_and_samples_repeats(stage1, tmp_path):
    from dfpo import inference

    greedy = inference.main(*inference.parse_args(["--stage_dir", str(stage1), *FIXTURE_ARGS, "--max_eval_docs", "1",
                                                   "--output_dir", str(tmp_path / "greedy")]))
    own = json.loads((stage1 / "metrics.json").read_text())["tasks"]
    assert {t: r["strict_f1"] for t, r in greedy["tasks"].items()} == {t: r["strict_f1"] for t, r in own.items()}
    for task in own:
        stores = [d / task / "greedy" / "test.outputs.jsonl" for d in (stage1 / "test", tmp_path / "greedy")]
        own_answers, new_answers = ([json.loads(x)["output"] for x in p.read_text().splitlines()] for p in stores)
        assert own_answers == new_answers
    sampled = inference.main(*inference.parse_args(["--stage_dir", str(stage1), *FIXTURE_ARGS, "--max_eval_docs", "1",
                                                    "--temperature", "0.5", "--repeats", "2",
                                                    "--output_dir", str(tmp_path / "sampled")]))
    assert all(len(r["runs"]) == 2 for r in sampled["tasks"].values())


@pytest.fixture(scope="module")
def pairs(stage1, tmp_path_factory):
    from dfpo import make_pairs

    out = tmp_path_factory.mktemp("pairs")
    counts = make_pairs.main(make_pairs.parse_args([*FIXTURE_ARGS, "--init_adapter", str(stage1), "--samples", "1",
                                                    "--output_dir", str(out)]))
    return out / "pairs.jsonl", counts


def preference_trainer(stage1, pairs_file, tmp_path, dpop_lambda: float, steps: int = 1):
    from datasets import Dataset
    from trl import get_peft_config

    from data.llm.generation import load_tokenizer
    from dfpo import prefer_optimize
    from dfpo.stages import load_stage_model

    script, _, config, model_config = prefer_optimize.parse_args([
        *FIXTURE_ARGS, "--init_adapter", str(stage1), "--pairs", str(pairs_file), "--max_steps", str(steps),
        "--batchsize", "2", "--gradient_accumulation_steps", "1", "--learning_rate", "1e-3",
        "--dpop_lambda", str(dpop_lambda), "--output_dir", str(tmp_path)])
    tokenizer = load_tokenizer(str(stage1 / "model"), encoder_decoder=False)
    model, _ = load_stage_model("smollm2", stage1)
    records = prefer_optimize.read_pairs(pairs_file, Counter())
    return prefer_optimize.DPOPTrainer(model=model, args=config, train_dataset=Dataset.from_list(records),
                                       processing_class=tokenizer, peft_config=get_peft_config(model_config))


@slow
def test_with_lambda_zero_the_loss_is_trls_dpo_loss(stage1, pairs, tmp_path):
    from trl import DPOTrainer

    trainer = preference_trainer(stage1, pairs[0], tmp_path, dpop_lambda=0.0)
    trainer.train()  # one step, so the policy differs from its reference
    batch = next(iter(trainer.get_train_dataloader()))
    with torch.no_grad():
        ours = trainer._compute_loss(trainer.model, batch, False)
        trls = DPOTrainer._compute_loss(trainer, trainer.model, batch, False)
    assert abs(ours.item() - math.log(2)) > 1e-3  # not the untrained value
    assert ours.item() == pytest.approx(trls.item(), abs=1e-6)


@slow
def test_a_dpop_run_moves_the_new_adapter_and_leaves_the_stage1_weights(stage1, pairs, tmp_path):
    trainer = preference_trainer(stage1, pairs[0], tmp_path, dpop_lambda=2.0, steps=2)
    named = dict(trainer.model.named_parameters())
    before = {n: p.detach().clone() for n, p in named.items()}
    trainer.train()
    moved = {n for n, p in named.items() if not torch.equal(before[n], p.detach())}
    assert moved and all("lora_" in n for n in moved)  # the new adapter only
    assert any("lora_B" in n for n in moved)  # lora_B starts at 0: the adapter now changes the output
    assert trainer.state.log_history[0]["dpop/penalty_active"] >= 0


@slow
def test_pairs_of_every_kind_are_made_and_counted(pairs):
    pairs_file, counts = pairs
    records = [json.loads(line) for line in pairs_file.read_text().splitlines()]
    kinds = Counter(r["kind"] for r in records)
    assert set(kinds) >= {"boundary_shifted", "wrong_type", "entity_missed", "spurious_span", "not_in_text",
                          "malformed"}
    assert kinds["sampled_wrong"] + kinds["sampled_malformed"] > 0
    assert all(counts[k] == v for k, v in kinds.items())
    assert all(r["chosen"][0]["content"] != r["rejected"][0]["content"] for r in records)
    from dfpo.stages import mentions
    for r in records:
        if r["kind"] == "entity_missed":
            assert len(mentions(r["rejected"][0]["content"])) == len(mentions(r["chosen"][0]["content"])) - 1


def test_a_rejected_answer_equal_to_the_gold_is_dropped_and_counted(tmp_path):
    from dfpo import make_pairs

    counts = make_pairs.main(make_pairs.parse_args([*FIXTURE_ARGS, "--samples", "0", "--corruptions", "entity_missed",
                                                    "boundary_shifted", "--output_dir", str(tmp_path)]))
    summary = json.loads((tmp_path / "pairs.summary.json").read_text())
    assert summary["counts"] == dict(sorted(counts.items())) and summary["pairs"] == counts["entity_missed"] + \
        counts["boundary_shifted"]
    assert counts["entity_missed_unavailable"] > 0  # units without a gold mention have nothing to leave out


@pytest.mark.parametrize("line, message", [
    ({"prompt": "p", "chosen": "[]"}, "needs rejected"),
    ({"prompt": "p", "chosen": "['a'", "rejected": "[]"}, "not a list of strings"),
    ({"prompt": "p", "chosen": 3, "rejected": "[]"}, "must be a string"),
])
def test_a_bad_pair_names_its_file_and_line(tmp_path, line, message):
    from dfpo.prefer_optimize import read_pairs

    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps({"prompt": "p", "chosen": "['a']", "rejected": "[]"}) + "\n" + json.dumps(line) + "\n")
    with pytest.raises(FormatError, match=rf"pairs.jsonl:2: .*{message}"):
        read_pairs(path, Counter())


def test_an_empty_rejected_answer_is_skipped_and_counted(tmp_path):
    from dfpo.prefer_optimize import read_pairs

    path = tmp_path / "pairs.jsonl"
    good = {"prompt": [{"role": "user", "content": "p"}], "chosen": [{"role": "assistant", "content": "['a']"}],
            "rejected": [{"role": "assistant", "content": "['b']"}]}
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "rejected": "  "}) + "\n")
    skipped = Counter()
    assert len(read_pairs(path, skipped)) == 1 and skipped == {"empty_rejected_skipped": 1}


def test_long_documents_are_cut_into_windows_never_dropped(smollm2):
    from dfpo.stages import record_length, task_units

    _, tokenizer = smollm2
    whole = task_units("fixture", "train", tokenizer, None, datasets_path=FIXTURE)
    changes = Counter()
    cap = min(record_length(tokenizer, u) for u in whole if u.doc_id in ("t4", "t5", "t6")) - 1  # 2 sentences each
    windowed = task_units("fixture", "train", tokenizer, cap, changes=changes, datasets_path=FIXTURE)
    assert changes["documents_windowed"] > 0 and len(windowed) > len(whole)
    assert {u.doc_id for u in windowed} == {u.doc_id for u in whole}
    assert sum(len(u.entities) for u in windowed) == sum(len(u.entities) for u in whole)  # no mention lost
    over = sum(record_length(tokenizer, u) > cap for u in windowed)  # single sentences longer than the cap
    assert over == changes["units_over_max_length_cut"]


def same_adapters(adapters: list[dict]) -> bool:
    first, second = adapters
    return first.keys() == second.keys() and all(torch.allclose(first[k], second[k], atol=1e-6) for k in first)


KILL_ARGS = ["--max_steps", "3", "--save_strategy", "steps", "--save_steps", "1", "--batchsize", "2",
             "--gradient_accumulation_steps", "1", "--max_eval_docs", "1", "--max_eval_sentences", "1"]


@slow
def test_a_killed_stage_resumes_to_the_same_adapter(tmp_path):
    argv = ["dfpo/finetune.py", *FIXTURE_ARGS, "--datapreprocess", "--lora_r", "8", *KILL_ARGS]
    assert same_adapters(killed_and_resumed(argv, tmp_path).weights)


@slow
def test_a_killed_preference_stage_resumes_to_the_same_adapter(stage1, pairs, tmp_path):
    argv = ["dfpo/prefer_optimize.py", *FIXTURE_ARGS, "--init_adapter", str(stage1), "--pairs", str(pairs[0]),
            "--learning_rate", "1e-3", *KILL_ARGS]
    adapters = killed_and_resumed(argv, tmp_path).weights
    assert same_adapters(adapters)
    assert any(v.abs().sum() > 0 for k, v in adapters[0].items() if "lora_B" in k)  # three steps moved it


def test_the_launcher_runs_three_stages_with_the_papers_settings():
    runs = launched("dfpo/run_seed3.sh", PROFILE="paper", DATASETS="bc5cdr")
    stages = [(type(r[2]).__name__ if len(r) > 2 else type(r[0]).__name__) for r in runs]
    assert stages == ["FinetuneConfig", "Args", "PreferenceConfig", "FinetuneConfig", "PreferenceConfig",
                      "FinetuneConfig", "Namespace"]
    first, _, dpop, third, dpo, _, compared = runs
    assert (first[2].num_train_epochs, first[2].per_device_train_batch_size, first[2].gradient_accumulation_steps,
            first[2].learning_rate, first[2].lr_scheduler_type, first[2].max_length) == \
        (5, 1, 8, 2e-4, "constant_with_warmup", 3000)
    assert (first[3].model_name_or_path, first[3].load_in_4bit, first[3].lora_r, first[3].lora_alpha,
            first[3].lora_dropout) == ("google/gemma-2-9b-it", True, 32, 16, 0.1)
    assert (dpop[2].beta, dpop[2].dpop_lambda, dpop[2].learning_rate, dpop[2].num_train_epochs, dpop[3].lora_r) == \
        (0.4, 2.0, 2e-7, 2, 8)
    assert dpo[2].dpop_lambda == 0.0 and third[0].init_adapter.name == "stage2-dpop"
    assert (first[1].temperature, first[1].repeats) == (0.5, 5) and compared[0].run_dir.name == "bc5cdr"
