#!/usr/bin/env bash
# The test suite: set up .venv (first run only), then pytest on TEST_WORKERS processes (pytest-xdist; default
# 2, this machine's cores; a test file stays on one worker, so its fixtures are built once). Extra arguments
# go to pytest (`bash tests/run.sh -n 0` runs in one process).
set -euo pipefail
cd "$(dirname "$0")/.."
source ./setup_env.sh
python -m pytest tests -q -p no:cacheprovider -n "${TEST_WORKERS:-2}" --dist loadfile "$@"
