#!/usr/bin/env bash
# Set up a development environment in .venv and run the quickstart on real ECG.
#   bash scripts/bootstrap.sh            set up, then run examples/quickstart.py
#   bash scripts/bootstrap.sh --no-run   set up only (what CI does)
# PYTHON picks the interpreter (default python3, >= 3.10). TORCH_SPEC picks the torch build
# (default torch==2.13.0, the CPU wheel on this project's machines; install torch first yourself for CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# torch first, pinned: an unpinned `torch` requirement would pull a multi-GB CUDA build.
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "$TORCH_SPEC"
.venv/bin/python -m pip install -q -e ".[dev]"
.venv/bin/python -c "import clef_sdk, torch; print(f'clef-sdk {clef_sdk.__version__} with torch {torch.__version__} ready in .venv')"

if [ "${1:-}" != "--no-run" ]; then
  .venv/bin/python examples/quickstart.py
fi
