"""Helpers for the conformance fixtures of ../shared/conformance (the weight rule of its README, key lists,
embedding comparisons), shared by tests and benchmarks. A module of its own, not conftest: ``tests/`` and
``tests/train/`` each have a conftest, so ``from conftest import`` could find either."""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path

import numpy as np
import torch


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


def read_key_shapes(conformance_dir: Path, size: str) -> dict[str, tuple[int, ...]]:
    """``state_dict_keys_<size>.tsv`` as ``{key: shape}`` (file order), BatchNorm tensors included."""
    shapes: dict[str, tuple[int, ...]] = {}
    for line in (conformance_dir / f"state_dict_keys_{size}.tsv").read_text().splitlines():
        key, shape_text = line.split("\t")
        shapes[key] = tuple(int(v) for v in shape_text.strip("()").split(",") if v.strip())
    return shapes


def batchnorm_keys(keys: list[str] | dict[str, object]) -> set[str]:
    """The BatchNorm tensors among ``keys``: every tensor of a module that has a ``running_mean``."""
    modules = {key.rsplit(".", 1)[0] for key in keys if key.endswith(".running_mean")}
    return {key for key in keys if key.rsplit(".", 1)[0] in modules}


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row of ``a`` with the same row of ``b`` (last axis)."""
    return np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def assert_matches_reference(
    actual: np.ndarray, expected: np.ndarray, *, min_cosine: float, max_rel_diff: float
) -> None:
    """Per row: cosine similarity >= ``min_cosine`` and max |diff| <= ``max_rel_diff`` * max |expected row|."""
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == expected.shape
    assert np.isfinite(actual).all()
    cosine = row_cosines(actual, expected)
    rel = np.abs(actual - expected).max(1) / np.abs(expected).max(1)
    assert cosine.min() >= min_cosine, f"per-row cosine {cosine}"
    assert rel.max() <= max_rel_diff, f"per-row max|diff| / max|expected| {rel}"
