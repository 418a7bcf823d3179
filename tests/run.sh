#!/usr/bin/env bash
# The test suite: set up .venv (first run only), then pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source ./setup_env.sh
python -m pytest tests -q -p no:cacheprovider "$@"
