"""A self-describing task model: a CLEF encoder, the pooling over a recording's 10 s windows and a linear head,
with the task, label names, target scaling, decision thresholds and training facts it needs to be used alone.

``forward`` is the differentiable path on preprocessed windows (fine-tuning trains through it); ``predict``,
``predict_proba`` and ``predict_windows`` take raw recordings through [`clef_sdk.embedding.embed`][clef_sdk.embedding.embed], so they
accept everything ``clef.embed`` accepts (rates per recording, memory maps, ``quality="drop"``, ...) and stream
recordings of any length in bounded memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..constants import WINDOW_SAMPLES
from ..embedding import embed
from ..inputs import SignalInput
from ..models import ClefEncoder
from ..precision import resolve_device
from .spec import (
    Label,
    Task,
    TaskPooling,
    check_classes,
    check_target_scaling,
    check_task,
    check_task_pooling,
    check_thresholds,
    check_training,
    n_outputs,
)

__all__ = ["FeatureStandardiser", "TaskModel"]

# embed() arguments a task model fixes itself.
_FIXED_KWARGS = ("model", "pooling")


class FeatureStandardiser(nn.Module):
    """``(x - mean) / scale`` per embedding dimension, with fixed buffers (not trained): what a linear probe's
    StandardScaler does, inside the model. CLEF's embedding dimensions differ in spread by orders of magnitude, and
    a linear head trained by gradient on them unscaled learns far less in the same steps (MAE's linear probes put
    a BatchNorm without affine parameters before the head for the same reason). Identity until `fit` sets it
    (fine-tuning does, from the training recordings' pooled embeddings); saved with the model."""

    def __init__(self, dim: int, *, device: torch.device | None = None, dtype: torch.dtype | None = None):
        super().__init__()
        self.mean: torch.Tensor
        self.scale: torch.Tensor
        self.register_buffer("mean", torch.zeros(dim, device=device, dtype=dtype))
        self.register_buffer("scale", torch.ones(dim, device=device, dtype=dtype))

    def fit(self, embeddings: torch.Tensor, eps: float = 1e-6) -> None:
        """Set the mean and the population std (plus ``eps``, for constant dimensions) of ``embeddings``
        ``(n, dim)``."""
        if embeddings.ndim != 2 or embeddings.shape[1] != self.mean.shape[0] or embeddings.shape[0] < 1:
            raise ValueError(f"expected embeddings (n >= 1, {self.mean.shape[0]}), got {tuple(embeddings.shape)}")
        values = embeddings.detach().double()
        self.mean.copy_(values.mean(dim=0))
        self.scale.copy_(values.std(dim=0, unbiased=False) + eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


class TaskModel(nn.Module):
    """A CLEF encoder with a linear head for one task, that knows how its outputs are read.

    Args:
        encoder: the [`ClefEncoder`][clef_sdk.models.ClefEncoder] (``clef.load`` or ``clef.build``); it becomes a
            sub-module, so ``.to()``, ``.train()`` and ``.parameters()`` cover it.
        task: ``"binary"``, ``"multiclass"``, ``"multilabel"`` or ``"regression"``.
        classes: label names (strings or ints, distinct): binary ``[negative, positive]``, multiclass one per class
            (3 or more), multilabel one per label, regression ``[target name]``.
        pooling: ``"mean"`` (default) or ``"max"`` over a recording's window embeddings, before the head.
        target_scaling: regression only, ``(mean, std)`` of the target: the head predicts ``(y - mean) / std``
            (default ``(0.0, 1.0)``).
        thresholds: decision thresholds on probabilities, in (0, 1): binary one (default 0.5), multilabel one per
            label (or one number for all; default 0.5 each). Positive when ``p >= threshold``.
        training: JSON-able facts about how the model was trained (data, metrics, seed, ...), saved with it.

    The head is ``nn.Linear(encoder.embed_dim, n_outputs)``: one logit for binary and regression, one per class or
    label otherwise, created on the encoder's device and dtype, after a fixed per-dimension standardisation of the
    pooled embedding (`FeatureStandardiser`, ``feature_norm``; the identity until set).
    """

    def __init__(
        self,
        encoder: ClefEncoder,
        task: Task,
        classes: Sequence[Label],
        *,
        pooling: TaskPooling = "mean",
        target_scaling: tuple[float, float] | None = None,
        thresholds: float | Sequence[float] | None = None,
        training: dict[str, Any] | None = None,
    ):
        super().__init__()
        if not isinstance(encoder, ClefEncoder):
            raise TypeError(f"encoder must be a ClefEncoder (clef.load or clef.build), got {type(encoder).__name__}")
        self._task: Task = check_task(task)
        self._classes = check_classes(self._task, classes)
        self._pooling: TaskPooling = check_task_pooling(pooling)
        self._target_scaling = check_target_scaling(self._task, target_scaling)
        self._thresholds = check_thresholds(self._task, thresholds, len(self._classes))
        self._training = check_training(training)
        self.encoder = encoder
        parameter = next(encoder.parameters())
        self.feature_norm = FeatureStandardiser(encoder.embed_dim, device=parameter.device, dtype=parameter.dtype)
        self.head = nn.Linear(
            encoder.embed_dim, n_outputs(self._task, len(self._classes)), device=parameter.device, dtype=parameter.dtype
        )

    # ---- what the model says about itself -------------------------------------------------------------------

    @property
    def task(self) -> Task:
        return self._task

    @property
    def classes_(self) -> np.ndarray:
        """The label names as a numpy array (scikit-learn's convention); the target's name for regression."""
        return np.asarray(self._classes)

    @property
    def pooling(self) -> TaskPooling:
        return self._pooling

    @property
    def n_outputs(self) -> int:
        """Width of the head (logits per recording)."""
        return self.head.out_features

    @property
    def target_scaling(self) -> tuple[float, float] | None:
        """``(mean, std)`` of the regression target; ``None`` for the other tasks."""
        return self._target_scaling

    @property
    def thresholds(self) -> tuple[float, ...] | None:
        """Decision thresholds (binary: one; multilabel: one per label); ``None`` for multiclass and regression."""
        return self._thresholds

    @thresholds.setter
    def thresholds(self, value: float | Sequence[float] | None) -> None:
        """Set tuned thresholds (checked as at construction; ``None`` restores 0.5)."""
        self._thresholds = check_thresholds(self._task, value, len(self._classes))

    @property
    def training_info(self) -> dict[str, Any]:
        """A copy of the training facts (``training`` would shadow ``nn.Module.training``, the train/eval flag)."""
        return check_training(self._training)

    @training_info.setter
    def training_info(self, value: dict[str, Any] | None) -> None:
        self._training = check_training(value)

    def extra_repr(self) -> str:
        return f"task={self._task!r}, classes={list(self._classes)}, pooling={self._pooling!r}"

    # ---- the differentiable path ------------------------------------------------------------------------------

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, n_outputs)`` of preprocessed windows ``(batch, n_windows, 5000)`` (the output of
        ``clef.preprocess`` or ``clef.Preprocessor`` per recording, stacked): the encoder on every window, the
        pooling over each recording's windows, the head. Gradients flow through all three."""
        if windows.ndim != 3 or windows.shape[-1] != WINDOW_SAMPLES or windows.shape[1] == 0:
            raise ValueError(
                f"expected preprocessed windows of shape (batch, n_windows >= 1, {WINDOW_SAMPLES}), got "
                f"{tuple(windows.shape)}; preprocess raw ECG with clef.preprocess or clef.Preprocessor, or use "
                "predict/predict_proba on raw recordings"
            )
        batch, n_windows, n_samples = windows.shape
        embeddings = self.encoder(windows.reshape(batch * n_windows, 1, n_samples))
        counts = torch.full((batch,), n_windows, dtype=torch.long, device=windows.device)
        return self.head_logits(self.pool(embeddings, counts))

    def head_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits ``(batch, n_outputs)`` of pooled embeddings ``(batch, embed_dim)``: the feature standardisation,
        then the linear head."""
        return self.head(self.feature_norm(pooled))

    def pool(self, embeddings: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """Pool window embeddings ``(n_windows_total, embed_dim)`` of consecutive recordings, ``counts[i]``
        windows each (all >= 1), into one embedding per recording ``(len(counts), embed_dim)``, as predict does."""
        if counts.ndim != 1 or int(counts.sum()) != embeddings.shape[0] or bool((counts < 1).any()):
            raise ValueError(f"counts must be >= 1 and sum to the {embeddings.shape[0]} windows, got {counts.tolist()}")
        segment = torch.repeat_interleave(torch.arange(len(counts), device=embeddings.device), counts)
        index = segment[:, None].expand_as(embeddings)
        empty = embeddings.new_zeros((len(counts), embeddings.shape[1]))
        if self._pooling == "mean":
            return empty.scatter_add(0, index, embeddings) / counts[:, None].to(embeddings.dtype)
        return empty.scatter_reduce(0, index, embeddings, reduce="amax", include_self=False)

    def proba_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Probabilities from logits ``(..., n_outputs)``: binary ``(..., 2)`` as ``[1 - p, p]``, multiclass a
        softmax, multilabel a sigmoid per label. Differentiable. Regression has none: use values_from_logits."""
        if self._task == "regression":
            raise TypeError("a regression model has no probabilities; use values_from_logits (or predict)")
        if self._task == "binary":
            positive = torch.sigmoid(logits[..., 0])
            return torch.stack([1 - positive, positive], dim=-1)
        if self._task == "multiclass":
            return torch.softmax(logits, dim=-1)
        return torch.sigmoid(logits)

    def values_from_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """Regression values in the target's units from logits ``(..., 1)``: ``logit * std + mean``."""
        if self._target_scaling is None:
            raise TypeError(f"a {self._task} model predicts classes, not values; use proba_from_logits")
        mean, std = self._target_scaling
        return logits[..., 0] * std + mean

    # ---- raw recordings -------------------------------------------------------------------------------------

    def _embed(
        self, signal: SignalInput, fs: float | list[float] | None, per_window: bool, kwargs: dict[str, Any]
    ) -> tuple[Any, Any]:
        fixed = [name for name in _FIXED_KWARGS if name in kwargs]
        if fixed:
            raise TypeError(
                f"{', '.join(fixed)} cannot be given: a task model embeds with its own encoder and pooling "
                f"({self._pooling!r})"
            )
        kwargs = dict(kwargs)
        device = kwargs.pop("device", None)
        if device is not None:  # the head follows the encoder: the whole model moves
            self.to(resolve_device(device))
        pooling = None if per_window else self._pooling
        result = embed(signal, fs, model=self.encoder, pooling=pooling, **kwargs)
        if kwargs.get("quality") == "return":
            return result
        return result, None

    def _outputs(self, embeddings: np.ndarray) -> np.ndarray:
        """float64 probabilities (classification) or values (regression) ``(n, ...)`` of embeddings ``(n, dim)``."""
        weight = self.head.weight
        with torch.inference_mode():
            features = torch.from_numpy(np.ascontiguousarray(embeddings)).to(weight.device, weight.dtype)
            logits = self.head_logits(features).double()
            if self._task == "regression":
                return self.values_from_logits(logits).cpu().numpy()
            return self.proba_from_logits(logits).cpu().numpy()

    def predict_proba(self, signal: SignalInput, fs: float | list[float] | None = None, **embed_kwargs: Any) -> Any:
        """Class probabilities of raw recordings (any rate and length), float64.

        ``signal``, ``fs`` and ``embed_kwargs`` are those of [`clef_sdk.embed`][clef_sdk.embed] (``batch_size``, ``device``,
        ``stride_seconds``, ``tail``, ``precision``, ``quality``, ...; not ``model`` or ``pooling``). Returns
        ``(n_recordings, n_classes)`` (binary columns ``[1 - p, p]``; multilabel ``(n_recordings, n_labels)``, one
        independent probability per label); for one 1-D recording ``(n_classes,)``, as ``clef.embed`` returns one
        embedding. With ``quality="drop"`` a recording without a usable window gets NaN (and a QualityWarning);
        ``quality="return"`` returns ``(probabilities, quality)``. A regression model has none: use predict.
        """
        if self._task == "regression":
            raise TypeError("a regression model has no predict_proba; use predict for values in the target's units")
        embeddings, quality = self._embed(signal, fs, False, embed_kwargs)
        single = embeddings.ndim == 1
        proba = self._outputs(np.atleast_2d(embeddings))
        result = proba[0] if single else proba
        return result if quality is None else (result, quality)

    def predict(self, signal: SignalInput, fs: float | list[float] | None = None, **embed_kwargs: Any) -> Any:
        """Predictions for raw recordings (arguments as `predict_proba`).

        - binary: the positive label where ``p >= threshold``, else the negative one: ``(n_recordings,)``;
        - multiclass: the label of the largest probability: ``(n_recordings,)``;
        - multilabel: 0/1 per label by its threshold: ``(n_recordings, n_labels)`` int64;
        - regression: values in the target's units (unstandardised): ``(n_recordings,)`` float64.

        One 1-D recording gives one label (a numpy scalar), ``(n_labels,)`` or one value. A recording without a
        usable window under ``quality="drop"`` gets NaN (regression), a row of NaN (multilabel, then float64) or
        ``None`` (binary and multiclass, in an object array).
        """
        embeddings, quality = self._embed(signal, fs, False, embed_kwargs)
        single = embeddings.ndim == 1
        outputs = self._outputs(np.atleast_2d(embeddings))
        result = self._decide(outputs)
        result = result[0] if single else result
        return result if quality is None else (result, quality)

    def _decide(self, outputs: np.ndarray) -> np.ndarray:
        """Labels from float64 outputs ``(n, ...)`` (probabilities, or values for regression)."""
        if self._task == "regression":
            return outputs
        unusable = np.isnan(outputs).any(axis=-1)
        if self._task == "multilabel":
            assert self._thresholds is not None
            decided = (outputs >= np.asarray(self._thresholds)).astype(np.int64)
            if unusable.any():
                decided = decided.astype(np.float64)
                decided[unusable] = np.nan
            return decided
        if self._task == "binary":
            assert self._thresholds is not None
            index = (outputs[:, 1] >= self._thresholds[0]).astype(np.int64)
        else:
            index = np.argmax(np.where(np.isnan(outputs), -np.inf, outputs), axis=-1)
        labels = self.classes_[index]
        if unusable.any():
            labels = labels.astype(object)
            labels[unusable] = None
        return labels

    def predict_windows(self, signal: SignalInput, fs: float | list[float] | None = None, **embed_kwargs: Any) -> Any:
        """Outputs of every 10 s window, unpooled: probabilities ``(n_windows, n_classes)`` (binary ``[1 - p, p]``;
        multilabel one per label) or values ``(n_windows,)`` for regression, for one recording; a list of those for
        several. E.g. the burden of a rhythm over a Holter: ``model.predict_windows(x, fs)[:, 1].mean()``.

        Arguments as `predict_proba`, with ``stride_seconds`` and ``tail`` placing the windows;
        ``quality="return"`` gives ``(outputs, quality)`` to keep the usable windows (``quality="drop"`` has nothing
        to pool here and is refused).
        """
        if embed_kwargs.get("quality") == "drop":
            raise ValueError(
                "predict_windows returns every window's output; quality='drop' only applies to pooled predictions. "
                "Use quality='return' and keep the rows where quality.usable is true"
            )
        embeddings, quality = self._embed(signal, fs, True, embed_kwargs)
        result = (
            self._outputs(embeddings)
            if isinstance(embeddings, np.ndarray)
            else [self._outputs(rows) for rows in embeddings]
        )
        return result if quality is None else (result, quality)

    def explain(self, signal: SignalInput, fs: float | list[float] | None = None, **kwargs: Any) -> Any:
        """Per-sample attributions of this model's output on raw recordings, on their own time axis:
        [`clef_sdk.tasks.explain.explain`][clef_sdk.tasks.explain.explain] (integrated gradients; needs ``pip install "clef-sdk[explain]"``).
        ``target`` (a label name), ``n_steps``, ``baseline``, ... as there."""
        from .explain import explain

        return explain(self, signal, fs, **kwargs)

    # ---- files ------------------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the model as one safetensors file (`clef_sdk.tasks.format.save_task_model`); returns the
        file's sha256."""
        from .format import save_task_model

        return save_task_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str | torch.device | None = None) -> TaskModel:
        """Read a file written by `save` ([`clef_sdk.tasks.format.load_task_model`][clef_sdk.tasks.format.load_task_model])."""
        from .format import load_task_model

        return load_task_model(path, device=device)
