#!/usr/bin/env bash
# Create .venv (if missing) and install the package with every extra and the test tools.
# torch is pinned to the CPU wheel through constraints.txt (see ../shared/ENVIRONMENT.md);
# the package itself only asks for torch>=2.3.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install --quiet -c constraints.txt torch 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import lightning_ner_viz, torch, rerun, wandb; print('lightning-ner-viz environment ready: torch', torch.__version__)"
