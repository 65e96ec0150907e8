"""benchmarks/gpu_check.py cannot rot: its ``--dry-run`` (every step on the CPU, tiny sizes) runs in CI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_gpu_check_dry_run_writes_its_table(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    env = {**os.environ, "PYTHONPATH": str(REPO), "CLEF_SDK_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--dry-run", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "gpu_check_dry_run.json").read_text())
    assert result["device"] == "cpu (dry run)" and result["bf16_cosine_ok"]
    assert "skipped" in result["tests"]["summary"] or "deselected" in result["tests"]["summary"]
    sizes = {(row["size"], row["precision"]) for row in result["embed"]}
    assert sizes == {("small", "fp32"), ("small", "bf16")}
    fp32 = next(row for row in result["embed"] if row["precision"] == "fp32")
    assert fp32["min_cosine_to_cpu_fp32"] > 0.99999  # the same computation on the same device
    assert {row["step"] for row in result["training"]} == {"pretraining", "fine-tuning"}
    assert result["archive"]["complete"] and result["archive"]["records"] == 8
    table = (tmp_path / "gpu_check_dry_run.md").read_text()
    assert table.startswith("# GPU check: cpu (dry run)") and "| small | fp32 | False |" in table


def test_gpu_check_refuses_a_machine_without_cuda(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the check would run for real")
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert done.returncode == 2 and "--dry-run" in done.stderr
