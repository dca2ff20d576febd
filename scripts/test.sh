#!/usr/bin/env bash
# Set up the environment, then run the whole test suite. Extra arguments go to pytest.
# The headless-browser tests of the HTML report need chromium: `bash scripts/install_chromium.sh`
# installs it (apt-get, through sudo); without it they are skipped with that instruction.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest "$@"
