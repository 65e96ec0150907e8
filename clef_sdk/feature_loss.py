"""``clef.FeatureLoss``: a perceptual loss in CLEF's feature space for models that generate or transform ECG.

Both signals go through the pretraining preprocessing ([`Preprocessor`][clef_sdk.torch_preprocessing.Preprocessor]) and a
frozen CLEF encoder; the loss compares their features per 10 s window, averages over each recording's windows and
reduces over the batch. The target branch runs without building a graph; gradients reach the prediction.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from .constants import WINDOW_SAMPLES
from .loading import load
from .models import ClefEncoder
from .torch_preprocessing import Preprocessor

__all__ = ["FeatureLoss"]

Distance = Literal["mse", "cosine"]
Reduction = Literal["mean", "sum", "none"]


class FeatureLoss(nn.Module):
    """Distance between CLEF features of ``prediction`` and ``target`` raw ECG ``(batch, n_samples)`` at ``fs`` Hz.

    Args:
        model: a model name, a weights path, or a loaded [`ClefEncoder`][clef_sdk.models.ClefEncoder] (copied, not
            modified); held frozen (no gradients, eval mode) and moved with ``.to()``.
        fs: sampling rate of the signals in Hz.
        layers: which activations to compare (see `ClefEncoder.forward_intermediates`): ``"embedding"``
            (default), ``"first_conv"``, ``"stage_0"``, ...; their distances are summed.
        distance: ``"mse"`` (mean squared difference of the activations) or ``"cosine"`` (``1 - cosine`` of the
            flattened activations, computed as half the squared distance of the unit vectors: exactly 0 for equal
            inputs).
        reduction: over the batch, after averaging each recording's windows: ``"mean"``, ``"sum"`` or ``"none"``
            (a ``(batch,)`` tensor).
        stride_seconds: distance between window starts, as in [`clef_sdk.preprocess`][clef_sdk.preprocess].
        tail: the end shorter than 10 s, as in [`clef_sdk.preprocess`][clef_sdk.preprocess].
        device: where to load a named model (default: CPU; move the loss with ``.to()``).
        local_files_only: never download a named model.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | ClefEncoder = "small",
        fs: float | None = None,
        *,
        layers: Sequence[str] = ("embedding",),
        distance: Distance = "mse",
        reduction: Reduction = "mean",
        stride_seconds: float | None = None,
        tail: Literal["drop", "pad", "last"] = "drop",
        device: str | torch.device | None = "cpu",
        local_files_only: bool = False,
    ):
        super().__init__()
        if fs is None:
            raise TypeError("fs (the signals' sampling rate in Hz) is required, e.g. FeatureLoss('small', fs=360)")
        if distance not in ("mse", "cosine"):
            raise ValueError(f"distance must be 'mse' or 'cosine', got {distance!r}")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        if isinstance(model, ClefEncoder):
            encoder = copy.deepcopy(model)
        else:
            encoder = load(model, device=device, local_files_only=local_files_only)
        self.encoder = encoder.eval().requires_grad_(False)
        unknown = [name for name in layers if name not in self.encoder.layer_names]
        if unknown or not layers:
            raise ValueError(
                f"layers must be a non-empty subset of {list(self.encoder.layer_names)}, got {list(layers)}"
            )
        self.layers = tuple(layers)
        self.distance = distance
        self.reduction = reduction
        self.preprocessor = Preprocessor(fs, stride_seconds=stride_seconds, tail=tail)

    def train(self, mode: bool = True) -> FeatureLoss:
        super().train(mode)
        self.encoder.eval()  # frozen: its mode never follows the surrounding model's
        return self

    def extra_repr(self) -> str:
        return f"layers={self.layers}, distance={self.distance!r}, reduction={self.reduction!r}"

    def _features(self, signals: torch.Tensor) -> dict[str, torch.Tensor]:
        windows = self.preprocessor(signals)  # (batch, n_windows, 5000)
        parameter = next(self.encoder.parameters())
        flat = windows.reshape(-1, 1, WINDOW_SAMPLES).to(parameter.dtype)
        return self.encoder.forward_intermediates(flat, self.layers)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if prediction.shape != target.shape:
            raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
        batch = 1 if prediction.ndim == 1 else prediction.shape[0]
        predicted = self._features(prediction)
        with torch.no_grad():
            expected = self._features(target)
        per_window = torch.zeros((), device=prediction.device)
        for name in self.layers:
            a, b = predicted[name].flatten(1), expected[name].flatten(1)
            if self.distance == "mse":
                per_window = per_window + ((a - b) ** 2).mean(dim=1)
            else:
                unit_a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
                unit_b = b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
                per_window = per_window + 0.5 * ((unit_a - unit_b) ** 2).sum(dim=1)
        per_recording = per_window.reshape(batch, -1).mean(dim=1)
        if self.reduction == "mean":
            return per_recording.mean()
        if self.reduction == "sum":
            return per_recording.sum()
        return per_recording
