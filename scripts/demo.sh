#!/usr/bin/env bash
# Set up the environment, then train the demo model and write every output under ./demo-out.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/lightning-ner-viz demo --out "${1:-demo-out}" --epochs "${EPOCHS:-3}"
