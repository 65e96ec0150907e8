"""examples/quickstart.py on a bare clone: bundled ECG, named weights, and a one-line fallback when those cannot
be downloaded (offline), to the shared checkpoint or, without one, to a readable message and exit status 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _quickstart(tmp_path: Path, shared: Path | None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf"),
        "CLEF_SDK_HOME": str(tmp_path / "clef"),
        "HF_HUB_OFFLINE": "1",
        "CLEF_SDK_SHARED": str(shared or tmp_path / "no-shared-folder"),
    }
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )


def test_quickstart_without_weights_explains_and_exits_0(tmp_path: Path) -> None:
    result = _quickstart(tmp_path, shared=None)
    assert result.returncode == 0, result.stderr
    assert "MIT-BIH Arrhythmia Database record 100" in result.stdout
    assert "The 'small' weights could not be downloaded" in result.stdout
    assert "pass --model PATH" in result.stdout  # the option of clef embed and of this script
    assert "Traceback" not in result.stderr


def test_quickstart_falls_back_to_the_local_checkpoint(tmp_path: Path, conformance_dir: Path) -> None:
    result = _quickstart(tmp_path, shared=conformance_dir.parent)
    assert result.returncode == 0, result.stderr
    assert "using the local checkpoint" in result.stdout
    assert "clef.embed(mitdb, fs=360, pooling=None)" in result.stdout and "(6, 256)" in result.stdout
    assert "cosine similarity" in result.stdout
