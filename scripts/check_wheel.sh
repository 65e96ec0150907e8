#!/usr/bin/env bash
# Build the sdist and wheel, check them, install the wheel into a new virtual environment and use it from
# outside the checkout: `clef --version`, `clef list`, and an embedding of the bundled ECG.
#   bash scripts/check_wheel.sh [WEIGHTS]     WEIGHTS: a .ckpt/.safetensors (default: the shared conformance one)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
WEIGHTS=${1:-${CLEF_SDK_SHARED:-$REPO/../shared}/conformance/clef_small_lightning.ckpt}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

.venv/bin/python -m pip install -q build twine
env -u PYTHONDONTWRITEBYTECODE .venv/bin/python -m build -o "$work/dist" . > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
if grep -i "warning" "$work/build.log"; then echo "the build printed warnings (above)"; exit 1; fi
.venv/bin/python -m twine check --strict "$work"/dist/*
wheel=$(ls "$work"/dist/*.whl)
for member in clef_sdk/py.typed clef_sdk/weights/manifest.json clef_sdk/datasets/data/mitdb-100.npz clef_sdk/_bandpass_constants.py; do
  .venv/bin/python -c "import sys, zipfile; sys.exit(0 if '$member' in zipfile.ZipFile('$wheel').namelist() else 1)" \
    || { echo "the wheel lacks $member"; exit 1; }
done
.venv/bin/python -c "import sys, zipfile; sys.exit(0 if any(n.endswith('licenses/LICENSE') for n in zipfile.ZipFile('$wheel').namelist()) else 1)" \
  || { echo "the wheel lacks its LICENSE"; exit 1; }
ls -l "$work"/dist

"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
"$work/venv/bin/python" -m pip install -q "$TORCH_SPEC"
"$work/venv/bin/python" -m pip install -q "$wheel"
cd "$work"  # away from the checkout: only the installed files can be imported
"$work/venv/bin/clef" --version
"$work/venv/bin/clef" list
"$work/venv/bin/python" - "$WEIGHTS" <<'PY'
import sys
from pathlib import Path

import clef_sdk as clef

assert "venv" in Path(clef.__file__).parts, f"imported {clef.__file__}, not the installed wheel"
signal, fs, info = clef.datasets.load_example("ludb-1")
embedding = clef.embed(signal, fs, model=sys.argv[1], device="cpu")
assert embedding.shape == (256,), embedding.shape
print(f"embedded the bundled {info['description']} with {Path(sys.argv[1]).name} from {Path(clef.__file__).parent}")
PY
