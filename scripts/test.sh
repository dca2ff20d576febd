#!/usr/bin/env bash
# Set up the environment, then run the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install_chromium.sh   # Debian's chromium for the headless-browser tests of the HTML report
.venv/bin/python -m pytest "$@"
