"""clef.FeatureLoss on real ECG: zero for identical inputs, gradients reach the prediction (gradcheck), the target
branch builds no graph, the encoder stays frozen through .train() and .to(), options and input checks."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

import clef_sdk as clef


@pytest.fixture(scope="module")
def signals(mitdb_record: np.ndarray) -> torch.Tensor:
    """Four 10 s windows of MIT-BIH 100 at 360 Hz, float32 (batch, 3600)."""
    return torch.from_numpy(mitdb_record[: 4 * 3600].reshape(4, 3600).astype(np.float32))


@pytest.mark.parametrize("distance", ["mse", "cosine"])
def test_zero_for_identical_inputs_and_positive_otherwise(
    small_safetensors: Path, signals: torch.Tensor, distance: str
) -> None:
    loss = clef.FeatureLoss(small_safetensors, fs=360, distance=distance, layers=("stage_2", "embedding"))
    assert loss(signals, signals.clone()).item() == 0.0
    noisy = signals + 0.05 * torch.randn(signals.shape, generator=torch.Generator().manual_seed(0))
    assert loss(noisy, signals).item() > 0
    per_recording = clef.FeatureLoss(small_safetensors, fs=360, distance=distance, reduction="none")(noisy, signals)
    assert per_recording.shape == (4,) and (per_recording > 0).all()


def test_gradients_reach_the_prediction_only(small_safetensors: Path, signals: torch.Tensor) -> None:
    loss = clef.FeatureLoss(small_safetensors, fs=360, layers=("first_conv", "embedding"))
    prediction = (signals + 0.1).requires_grad_(True)
    target = signals.clone().requires_grad_(True)
    value = loss(prediction, target)
    value.backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
    assert target.grad is None  # the target branch built no graph
    assert all(p.grad is None and not p.requires_grad for p in loss.encoder.parameters())


def test_gradcheck_float64(small_encoder) -> None:
    """10 s at 50 Hz through preprocessing and a float64 CLEF-small (500 input samples)."""
    encoder = copy.deepcopy(small_encoder).double()
    loss = clef.FeatureLoss(encoder, fs=50, distance="cosine")
    generator = torch.Generator().manual_seed(1)
    target = torch.randn(1, 500, generator=generator, dtype=torch.float64)
    prediction = (target + 0.3 * torch.randn(1, 500, generator=generator, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: loss(p, target), (prediction,), eps=1e-6, atol=1e-6, fast_mode=True)


def test_encoder_stays_frozen(small_encoder, signals: torch.Tensor) -> None:
    loss = clef.FeatureLoss(small_encoder, fs=360)
    assert loss.encoder is not small_encoder  # a copy: the caller's module is untouched
    model = torch.nn.Sequential(torch.nn.Identity(), loss)
    model.train()
    assert loss.training and not loss.encoder.training
    moved = loss.to(torch.float64)
    assert next(moved.encoder.parameters()).dtype == torch.float64
    assert moved(signals.double(), signals.double()).item() == 0.0


def test_bad_arguments(small_encoder, signals: torch.Tensor) -> None:
    with pytest.raises(TypeError, match="fs .* is required"):
        clef.FeatureLoss(small_encoder)
    with pytest.raises(ValueError, match="distance must be"):
        clef.FeatureLoss(small_encoder, fs=360, distance="l1")
    with pytest.raises(ValueError, match="reduction must be"):
        clef.FeatureLoss(small_encoder, fs=360, reduction="max")
    with pytest.raises(ValueError, match="layers must be a non-empty subset"):
        clef.FeatureLoss(small_encoder, fs=360, layers=("stage_9",))
    with pytest.raises(ValueError, match="differ in shape"):
        clef.FeatureLoss(small_encoder, fs=360)(signals, signals[:2])
