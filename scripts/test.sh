#!/usr/bin/env bash
# Set up the environment, then run the whole test suite. Extra arguments go to pytest.
# The headless-browser tests of the HTML report need chromium: `bash scripts/install_chromium.sh`
# installs it (apt-get, through sudo); without it they are skipped with that instruction.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Two workers (pytest-xdist, one file per worker at a time), then the tests that assert wall-clock bounds on
# their own (marker `serial`), so that the other worker's load cannot stretch them. Exit code 5 (no test
# selected, e.g. a file given that has no serial test) is not a failure.
status=0
.venv/bin/python -m pytest -n 2 --dist loadfile -m "not serial" "$@" || status=$?
[ "$status" -eq 5 ] && status=0
serial=0
.venv/bin/python -m pytest -p no:xdist -m serial "$@" || serial=$?
[ "$serial" -eq 5 ] && serial=0
exit $(( status > serial ? status : serial ))
