"""continual/: packing with one label shift and masked overlap, training that learns token t+1 (not t+2), a
killed run resumed to the same weights, the checkpoint as a token-classification backbone, and mix_data's
proportions.

A tiny random Llama (2 layers, width 64) with the SmolLM2 tokenizer stands in for the real model
except where the real checkpoint matters (tied embeddings loading into LlamaForTokenClassification).
"""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, LlamaConfig, LlamaForCausalLM

from conftest import ROOT, killed_and_resumed, needs_mirror, slow
from continual import mix_data
from continual.main import IGNORE_INDEX, PretrainingArguments, ScriptArguments, load_texts, pack, run, validation_windows
from continual.texts import file_docs
from data.llm.models import resolve
from eval.runs import last_checkpoint

PATTERN = "cat dog fish bird "  # four tokens that repeat: next token and token t+2 always differ


@pytest.fixture
def tokenizer(smollm2_tokenizer):
    return smollm2_tokenizer


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory, smollm2_tokenizer) -> str:
    """A randomly initialised 2-layer Llama saved with the SmolLM2 tokenizer."""
    tokenizer = smollm2_tokenizer
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)
    path = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def write_docs(path: Path, texts: list[str]) -> str:
    path.write_text("\n\n".join(texts) + "\n", encoding="utf-8")
    return str(path)


def tiny_args(tmp_path: Path, model: str, train: list[str], validation: list[str],
              **kw) -> tuple[ScriptArguments, PretrainingArguments]:
    """continual/main.py's two argument dataclasses; keyword arguments go to the one with that field."""
    values = dict(output_dir=str(tmp_path / "out"), model_name=model, datasets=[],
                  text_files=[write_docs(tmp_path / "train.txt", train)],
                  validation_files=[write_docs(tmp_path / "validation.txt", validation)],
                  block_size=32, overlap=8, per_device_train_batch_size=4, logging_steps=1, save_steps=0)
    values.update({"per_device_train_batch_size" if k == "batch_size" else k: v for k, v in kw.items()})
    script = {f.name for f in fields(ScriptArguments)}
    return (ScriptArguments(**{k: v for k, v in values.items() if k in script}),
            PretrainingArguments(**{k: v for k, v in values.items() if k not in script}))


# --------------------------------------------------------------------------- packing
@pytest.mark.parametrize("n, block, overlap", [(1000, 64, 16), (1000, 64, 1), (200, 64, 0), (130, 64, 16), (40, 64, 8)])
def test_pack_labels_are_the_inputs_and_every_token_is_a_target_once(n, block, overlap):
    stream = list(range(100, 100 + n))
    windows = pack(stream, block, overlap)
    assert {len(w["input_ids"]) for w in windows} == {min(block, n)}  # no padding, nothing to collate
    assert windows[-1]["input_ids"][-1].item() == stream[-1]  # the tail is neither dropped nor padded
    targets = []
    for w in windows:
        ids, labels = w["input_ids"], w["labels"]
        kept = labels != IGNORE_INDEX
        assert torch.equal(labels[kept], ids[kept])  # labels = input_ids: no manual shift
        assert labels[0] == IGNORE_INDEX  # position 0 has no context
        assert not kept[:int(kept.int().argmax())].any()  # masking is one prefix: the repeated context
        targets += ids[kept].tolist()
    if overlap:
        assert sorted(targets) == stream[1:]  # every token but the first, exactly once
    else:
        assert len(targets) == len(set(targets))  # none twice; only a window's first token may go untrained
        assert set(stream) - set(targets) <= {int(w["input_ids"][0]) for w in windows}


def test_overlap_masks_exactly_the_repeated_prefix():
    windows = pack(list(range(10, 110)), 32, 8)
    assert windows[1]["input_ids"][:8].tolist() == windows[0]["input_ids"][-8:].tolist()
    assert (windows[1]["labels"][:8] == IGNORE_INDEX).all() and (windows[1]["labels"][8:] != IGNORE_INDEX).all()


def test_validation_windows_have_equal_target_counts():
    windows = validation_windows(list(range(1000)), 64)
    assert len(windows) == 15 and {int((w["labels"] != IGNORE_INDEX).sum()) for w in windows} == {63}
    with pytest.raises(ValueError):
        validation_windows(list(range(10)), 64)


@slow
# --------------------------------------------------------------------------- training
def test_training_learns_the_next_token_not_the_one_after(tmp_path, tiny_llama, tokenizer):
    args = tiny_args(tmp_path, tiny_llama, [PATTERN * 100], [PATTERN * 20], learning_rate=1e-2, batch_size=2,
                     num_train_epochs=4)
    metrics = run(*args)
    assert metrics["validation"]["after"]["perplexity"] < 1.5 < metrics["validation"]["before"]["perplexity"]

    model = AutoModelForCausalLM.from_pretrained(args[1].output_dir).eval()
    ids = tokenizer(PATTERN * 10, return_tensors="pt")["input_ids"][:, 1:-1]  # the periodic part
    with torch.no_grad():
        predicted = model(input_ids=ids).logits.argmax(-1)[0]
    ids = ids[0]
    next_token = (predicted[:-2] == ids[1:-1]).float().mean().item()
    token_after = (predicted[:-2] == ids[2:]).float().mean().item()
    assert next_token > 0.9 and token_after < 0.1, (next_token, token_after)
    assert (Path(args[1].output_dir) / "loss.png").stat().st_size > 0


def test_checkpoints_without_resume_are_refused(tmp_path):
    """Starting over in a folder with checkpoints would mix two runs' checkpoints."""
    args = tiny_args(tmp_path, "smollm2", ["cat dog"], ["cat dog"])
    (tmp_path / "out" / "checkpoint-3").mkdir(parents=True)
    (tmp_path / "out" / "checkpoint-3" / "trainer_state.json").write_text("{}")
    with pytest.raises(ValueError, match="resume"):
        run(*args)


def trained_losses(folder: Path) -> list[tuple]:
    """(step, training loss) of every step, from the newest checkpoint's trainer state."""
    state = json.loads((Path(last_checkpoint(folder)) / "trainer_state.json").read_text())
    return [(h["step"], h["loss"]) for h in state["log_history"] if "loss" in h]


@slow
@needs_mirror
def test_a_killed_pretraining_resumes_to_the_same_model(tmp_path, tiny_llama):
    """SIGKILL after the first checkpoint (one every step, 2 epochs of 4 steps), then --resume True: the same
    weights bit for bit (one thread, the same operations in the same order: any difference is a different
    batch or optimizer state, not rounding), the same losses and validation perplexity. --datasets cannot be
    empty on a command line, hence the mirror: ncbi_disease's held-out texts are read (none is in this text)."""
    text = [f"{PATTERN * (k % 5 + 1)} document {k} ends here." for k in range(24)]
    argv = ["continual/main.py", "--model_name", tiny_llama, "--datasets", "ncbi_disease",
            "--text_files", write_docs(tmp_path / "train.txt", text),
            "--validation_files", write_docs(tmp_path / "validation.txt", text[:8]), "--block_size", "32",
            "--overlap", "8", "--batch_size", "4", "--learning_rate", "1e-3", "--num_train_epochs", "2",
            "--save_steps", "1", "--logging_steps", "1", "--seed", "7"]
    runs = killed_and_resumed(argv, tmp_path, "model.safetensors", torn=True)
    whole, resumed = runs.weights
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert trained_losses(runs.whole) == trained_losses(runs.resumed) and len(trained_losses(runs.whole)) == 8
    metrics = [json.loads((d / "metrics.json").read_text()) for d in runs[:2]]
    assert metrics[0]["validation"] == metrics[1]["validation"]
    assert metrics[1]["training"]["steps"] == 8 > metrics[1]["training"]["steps_this_run"]


@slow
def test_checkpoint_loads_as_a_token_classification_backbone(tmp_path):
    """The real SmolLM2 (tied embeddings): its continued checkpoint is a LlamaForTokenClassification backbone."""
    text = ["Mutations in the BRCA1 gene cause hereditary breast and ovarian cancer."] * 3
    args = tiny_args(tmp_path, "smollm2", [" ".join(text)], text, max_train_tokens=80, num_train_epochs=1,
                     batch_size=2, learning_rate=1e-3)
    run(*args)
    lm = AutoModelForCausalLM.from_pretrained(args[1].output_dir)
    tagger, info = AutoModelForTokenClassification.from_pretrained(args[1].output_dir, num_labels=3,
                                                                   output_loading_info=True)
    assert type(tagger).__name__ == "LlamaForTokenClassification" and tagger.num_labels == 3
    assert info["missing_keys"] and all(k.startswith("score.") for k in info["missing_keys"])  # only the head is new
    backbone, trained = tagger.model.state_dict(), lm.model.state_dict()
    assert backbone.keys() == trained.keys() and all(torch.equal(backbone[k], trained[k]) for k in backbone)
    original = AutoModelForCausalLM.from_pretrained(resolve("smollm2")).model.state_dict()
    assert not torch.equal(original["layers.0.mlp.up_proj.weight"], trained["layers.0.mlp.up_proj.weight"])


@needs_mirror
def test_default_text_is_train_splits_without_held_out_or_repeated_documents(tmp_path):
    args = ScriptArguments(datasets=["ncbi_disease"])
    train, validation, report = load_texts(args)
    assert len(validation) == 100 and report["dropped_repeated_texts"] == 1  # NCBI train repeats PMID 8528200
    assert len(train) == 592 and all(d.id.startswith("ncbi_disease:") for d in train)

    leaked = write_docs(tmp_path / "leak.txt", [validation[0].text, train[0].text])
    args = ScriptArguments(datasets=["ncbi_disease"], text_files=[leaked])
    train, _, report = load_texts(args)
    assert [d.text for d in train] == [file_docs(leaked)[1].text] and report["dropped_held_out_texts"] == 1


# --------------------------------------------------------------------------- mixing
def test_mix_meets_proportions_with_whole_documents_and_keeps_every_source(tmp_path):
    big = write_docs(tmp_path / "big.txt", [f"Document {k}: " + "aspirin inhibits platelets. " * (k % 7 + 1)
                                            for k in range(300)])
    small = write_docs(tmp_path / "small.txt", ["Only one short document about ibuprofen."])
    tiny = write_docs(tmp_path / "tiny.txt", ["A source with a very small share: paracetamol and the liver."])
    args = mix_data.Args(sources=[(big, 0.7), (small, 0.3), (tiny, 0.0001)], total_tokens=3000, seed=3,
                         out=tmp_path / "mix.jsonl")
    report = mix_data.mix(args)
    shares = {name: s["share_tokens"] for name, s in report["sources"].items()}
    longest = max(len(d.text) for d in file_docs(big)) // 2  # a generous bound on a document's tokens
    assert abs(shares[big] - 0.7) < longest / report["tokens"] and abs(shares[small] - 0.3) < 0.02
    assert report["sources"][tiny]["documents"] == 1  # never dropped, however small its share
    assert report["sources"][small]["repeated"] and not report["sources"][big]["repeated"]
    assert abs(report["tokens"] - 3000) < 2 * longest
    lines = [json.loads(line) for line in (tmp_path / "mix.jsonl").read_text().splitlines()]
    assert len(lines) == report["documents"] == len(file_docs(tmp_path / "mix.jsonl"))
    assert len({d["id"] for d in lines}) == len(lines)
    assert json.loads((tmp_path / "mix.jsonl.report.json").read_text()) == report

    first = (tmp_path / "mix.jsonl").read_bytes()
    mix_data.mix(args)
    assert (tmp_path / "mix.jsonl").read_bytes() == first  # deterministic
    mix_data.mix(mix_data.Args(**{**vars(args), "seed": 4}))
    assert (tmp_path / "mix.jsonl").read_bytes() != first

    text_out = mix_data.mix(mix_data.Args(**{**vars(args), "out": tmp_path / "mix.txt"}))
    assert len(file_docs(tmp_path / "mix.txt")) == text_out["documents"]


@needs_mirror
def test_mix_registry_sources_and_cli_errors(tmp_path):
    args = mix_data.Args(sources=[("bc5cdr", 0.6), ("ncbi_disease", 0.4)], total_tokens=20000, out=tmp_path / "m.jsonl")
    report = mix_data.mix(args)
    assert abs(report["sources"]["bc5cdr"]["share_tokens"] - 0.6) < 0.02
    assert not any(s["repeated"] for s in report["sources"].values())
    bad = subprocess.run([sys.executable, "continual/mix_data.py", "--sources", "chemprot:1", "--total_tokens", "10",
                          "--out", str(tmp_path / "bad.jsonl")], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "no split 'train'" in bad.stderr and "Traceback" not in bad.stderr


# --------------------------------------------------------------------------- scripts and configs
def test_compare_puts_with_and_without_side_by_side(tmp_path):
    from continual.compare import compare, table

    def scores(f1: float) -> dict:
        return {"test": {"strict": {"precision": f1, "recall": f1, "f1": f1}}}

    (tmp_path / "pre").mkdir()
    (tmp_path / "pre/metrics.json").write_text(json.dumps({
        "model_name": "smollm2", "caps": {"max_train_tokens": 2048}, "text": {"train_tokens": 2048},
        "training": {"tokens_per_second": 100.0},
        "validation": {"before": {"perplexity": 12.0}, "after": {"perplexity": 11.0}}}))
    for variant, f1 in (("with", 0.5), ("without", 0.4)):
        (tmp_path / variant / "ncbi_disease").mkdir(parents=True)
        (tmp_path / variant / "ncbi_disease/metrics.json").write_text(json.dumps(scores(f1)))
    result = compare(tmp_path / "pre", tmp_path / "with", tmp_path / "without", ["ncbi_disease"], "test",
                     {"max_train_docs": 4})
    assert result["datasets"]["ncbi_disease"]["with_continual"]["f1"] == 0.5
    assert "| ncbi_disease | 40.00 / 40.00 / 40.00 | 50.00 / 50.00 / 50.00 | +10.00 |" in table(result)
    assert "12.00 -> 11.00" in table(result) and "max_train_docs=4" in table(result)


def test_fsdp_config_is_a_valid_accelerate_config():
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(ROOT / "continual/accelerate/fsdp.yaml"))
    assert config.distributed_type == "FSDP"
    assert config.fsdp_config["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
