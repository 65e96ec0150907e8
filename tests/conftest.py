"""Shared fixtures. Real data comes from ``../shared`` (override with ``CLEF_SDK_SHARED``); tests that need it
skip with a reason where it is absent, so a bare clone still passes."""

from __future__ import annotations

import json
import math
import os
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ENV = "CLEF_SDK_SHARED"


def shared_dir() -> Path:
    return Path(os.environ.get(SHARED_ENV) or REPO_ROOT.parent / "shared")


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: set {SHARED_ENV} to the shared fixtures folder (conformance/, data/) to run this test")
    return path


@pytest.fixture(scope="session")
def conformance_dir() -> Path:
    return _require(shared_dir() / "conformance")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _require(shared_dir() / "data")


@pytest.fixture(scope="session")
def small_ckpt(conformance_dir: Path) -> Path:
    """Lightning checkpoint of CLEF-small with the released files' structure."""
    return conformance_dir / "clef_small_lightning.ckpt"


@pytest.fixture(scope="session")
def small_safetensors(small_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The conformance checkpoint converted once per session with our converter."""
    from clef_sdk import convert_checkpoint

    path = tmp_path_factory.mktemp("weights") / "clef-small.safetensors"
    convert_checkpoint(small_ckpt, path)
    return path


@pytest.fixture(scope="session")
def mitdb_record(data_dir: Path) -> np.ndarray:
    """MIT-BIH record 100, MLII, 360 Hz, 30 min, mV (float32)."""
    return np.load(data_dir / "mitdb-tpcp" / "100.npz")["ecg"]


def rule_state_dict(conformance_dir: Path, size: str) -> dict[str, torch.Tensor]:
    """Deterministic weights of the conformance README's weight rule (BatchNorm tensors included)."""
    salt = json.loads((conformance_dir / "rule.json").read_text())["salt"]
    state_dict: dict[str, torch.Tensor] = {}
    for line in (conformance_dir / f"state_dict_keys_{size}.tsv").read_text().splitlines():
        key, shape_text = line.split("\t")
        shape = tuple(int(v) for v in shape_text.strip("()").split(",") if v.strip())
        if key.endswith("num_batches_tracked"):
            state_dict[key] = torch.zeros((), dtype=torch.int64)
        elif key.endswith("running_var"):
            state_dict[key] = torch.ones(shape)
        elif key.endswith("running_mean"):
            state_dict[key] = torch.zeros(shape)
        else:
            generator = torch.Generator().manual_seed(zlib.crc32(f"{salt}:{key}".encode()))
            tensor = torch.randn(shape, generator=generator, dtype=torch.float32)
            scale = 1 / math.sqrt(3 * math.prod(shape[1:])) if len(shape) > 1 else 0.02
            state_dict[key] = tensor * scale
    return state_dict
