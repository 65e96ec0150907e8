"""Fine-tuning protocols: a registry of named presets (timm-style configs), each a frozen `Protocol`.

- ``"upstream"``: the authors' downstream recipe (``configs/exp/*_downstream.yaml`` and ``script/downstream.py``
  of Nokia-Bell-Labs/ecg-foundation-model): the whole network and one linear head on time-averaged features, Adam
  (lr 1e-3, weight decay 1e-5), batch 64, ``CosineAnnealingWarmRestarts(T_0=max_epochs // 2, T_mult=1,
  eta_min=0)`` stepped per epoch, up to 100 epochs, early stopping on the validation loss (patience 5, min delta
  1e-3), the best checkpoint restored, fp16 mixed precision on a GPU, seed 42. Their PTB-XL and MIMIC-IV configs
  use AdamW with other schedulers: ``optimizer="adamw"`` gives the optimiser, not their per-dataset pipelines.
- ``"full"``: the whole network, with defaults chosen by measurement (docs/finetuning.md gives the numbers): a
  tenth of the head's learning rate for the encoder, a short linear warm-up then cosine decay per step, and early
  stopping with more patience, on the task's metric rather than the loss.
- ``"linear"``: the encoder frozen, the head trained by gradient (the probe, with crops and the fine-tuning loop).

``standardise_features=True`` puts the head on standardised features (the pooled embeddings' per-dimension mean and
std, fixed before training, as a probe's scaler does). It is off in every preset: measured end to end it helped
some task-encoder pairs and broke others (MIT-BIH PVC: ``linear`` 0.978 -> 0.696 AUROC with the conformance
encoder, ``full`` 0.917 -> 0.564 with a random one; LUDB AF: ``full`` +0.1); where the encoder trains, its
statistics also go stale as the encoder moves.
- ``"linear-then-full"``: LP-FT, the head alone for ``linear_epochs``, then everything as ``"full"``.

Any field can be overridden: ``finetune(..., protocol="full", lr=3e-4, layer_decay=0.8)``. Overriding
``max_epochs`` alone keeps LP-FT's linear phase at the preset's share of the epochs (10%, at least one).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from ..inputs import check_choice

__all__ = ["MONITORS", "PROTOCOLS", "Protocol", "resolve_protocol"]

Optimizer = Literal["adam", "adamw"]
Schedule = Literal["upstream-restarts", "warmup-cosine", "constant"]
ClassWeighting = Literal["none", "balanced"]
Sampler = Literal["shuffle", "balanced"]
#: What early stopping and best-checkpoint selection may watch: the validation loss, or a task metric of
#: [`clef_sdk.probes.metrics.bootstrap_metrics`][clef_sdk.probes.metrics.bootstrap_metrics] (``"auto"``: AUROC for classification, MAE for regression).
MONITORS = ("val_loss", "auto", "auroc", "auprc", "balanced_accuracy", "mae", "rmse", "r2", "pearson_r")
_LOWER_IS_BETTER = frozenset({"val_loss", "mae", "rmse"})


@dataclass(frozen=True)
class Protocol:
    """How a task model is fine-tuned. Epochs count passes over the training recordings (one random 10 s crop of
    each per epoch).

    Attributes:
        name: the preset this came from.
        train_encoder: ``False`` freezes the encoder (``"linear"``).
        linear_epochs: epochs at the start with the encoder frozen (LP-FT), then it trains too.
        optimizer: ``"adam"`` or ``"adamw"`` (decoupled weight decay).
        lr: the head's learning rate (and the encoder's, times ``encoder_lr_scale``).
        encoder_lr_scale: the encoder's learning rate relative to the head's.
        layer_decay: layer-wise learning-rate decay: the stage ``k`` levels below the top gets ``layer_decay**k``
            of the encoder's rate (1.0: none).
        weight_decay: of the optimiser.
        schedule: ``"upstream-restarts"`` (the authors' per-epoch cosine warm restarts), ``"warmup-cosine"``
            (linear warm-up over ``warmup_fraction`` of the steps, then cosine to 0, per step) or ``"constant"``.
        warmup_fraction: of all steps, for ``"warmup-cosine"``.
        batch_size: recordings per step, per process.
        max_epochs: the most epochs.
        patience: epochs without improvement of ``monitor`` before stopping (``None``: never stop early).
        min_delta: the least change that counts as an improvement.
        monitor: what early stopping and the best checkpoint watch (`MONITORS`).
        class_weighting: ``"balanced"`` weighs each class's loss by its inverse frequency (classification).
        sampler: ``"balanced"`` draws each epoch's recordings with replacement, classes equally often (binary and
            multiclass).
        gpu_precision: Lightning precision on a GPU (``"32-true"`` on a CPU).
        seed: the default seed (head initialisation, crops, order, validation split).
        standardise_features: set the task model's feature standardisation (per-dimension mean and std of the
            training recordings' pooled embeddings under the initial encoder, up to 2,048 recordings) before
            training; the head then sees standardised features, as a probe's scaler gives them.
    """

    name: str
    train_encoder: bool = True
    linear_epochs: int = 0
    optimizer: Optimizer = "adamw"
    lr: float = 1e-3
    encoder_lr_scale: float = 1.0
    layer_decay: float = 1.0
    weight_decay: float = 1e-5
    schedule: Schedule = "warmup-cosine"
    warmup_fraction: float = 0.05
    batch_size: int = 64
    max_epochs: int = 100
    patience: int | None = 5
    min_delta: float = 0.0
    monitor: str = "val_loss"
    class_weighting: ClassWeighting = "none"
    sampler: Sampler = "shuffle"
    gpu_precision: str = "bf16-mixed"
    seed: int = 0
    standardise_features: bool = False  # off in every preset (see the module docstring)

    def __post_init__(self) -> None:
        check_choice(self.optimizer, ("adam", "adamw"), "optimizer")
        check_choice(self.schedule, ("upstream-restarts", "warmup-cosine", "constant"), "schedule")
        check_choice(self.class_weighting, ("none", "balanced"), "class_weighting")
        check_choice(self.sampler, ("shuffle", "balanced"), "sampler")
        check_choice(self.monitor, MONITORS, "monitor")
        for field, low in (("lr", 0.0), ("encoder_lr_scale", 0.0), ("layer_decay", 0.0)):
            value = getattr(self, field)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > low:
                raise ValueError(f"{field} must be a number > {low:g}, got {value!r}")
        if self.layer_decay > 1:
            raise ValueError(f"layer_decay must be in (0, 1] (1: no decay), got {self.layer_decay!r}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction!r}")
        if not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay!r}")
        for field, low in (("batch_size", 1), ("max_epochs", 1), ("linear_epochs", 0)):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{field} must be an integer >= {low}, got {value!r}")
        if self.patience is not None and (
            isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 1
        ):
            raise ValueError(f"patience must be an integer >= 1 or None (no early stopping), got {self.patience!r}")
        if self.linear_epochs and not self.train_encoder:
            raise ValueError("linear_epochs applies when the encoder trains; with train_encoder=False it always is")
        if self.linear_epochs >= self.max_epochs:
            raise ValueError(
                f"linear_epochs ({self.linear_epochs}) must be fewer than max_epochs ({self.max_epochs}), or the "
                "encoder never trains; use protocol='linear' for that"
            )

    def monitor_for(self, task: str) -> str:
        """The metric watched for ``task`` (``"auto"`` resolved: AUROC for classification, MAE for regression)."""
        if self.monitor != "auto":
            if self.monitor in ("mae", "rmse", "r2", "pearson_r") and task != "regression":
                raise ValueError(f"monitor={self.monitor!r} is a regression metric; task={task!r} has none")
            if self.monitor in ("auroc", "auprc", "balanced_accuracy") and task == "regression":
                raise ValueError(f"monitor={self.monitor!r} is a classification metric; use 'mae' for regression")
            return self.monitor
        return "mae" if task == "regression" else "auroc"

    def mode_for(self, task: str) -> Literal["min", "max"]:
        """``"min"`` when a lower value of the watched metric is better, else ``"max"``."""
        return "min" if self.monitor_for(task) in _LOWER_IS_BETTER else "max"

    def as_dict(self) -> dict[str, Any]:
        """The fields as plain values (saved with the run and in the task model's training facts)."""
        return dataclasses.asdict(self)


PROTOCOLS: dict[str, Protocol] = {
    "upstream": Protocol(
        name="upstream",
        optimizer="adam",
        lr=1e-3,
        weight_decay=1e-5,
        schedule="upstream-restarts",
        batch_size=64,
        max_epochs=100,
        patience=5,
        min_delta=1e-3,
        monitor="val_loss",
        gpu_precision="16-mixed",
        seed=42,
    ),
    "full": Protocol(
        name="full",
        optimizer="adamw",
        lr=1e-3,
        encoder_lr_scale=0.1,
        weight_decay=1e-5,
        schedule="warmup-cosine",
        max_epochs=100,
        patience=15,
        monitor="auto",
    ),
    "linear": Protocol(
        name="linear",
        train_encoder=False,
        optimizer="adamw",
        lr=1e-2,
        weight_decay=1e-5,
        schedule="warmup-cosine",
        max_epochs=100,
        patience=15,
        monitor="auto",
    ),
    "linear-then-full": Protocol(
        name="linear-then-full",
        linear_epochs=10,
        optimizer="adamw",
        lr=1e-3,
        encoder_lr_scale=0.1,
        weight_decay=1e-5,
        schedule="warmup-cosine",
        max_epochs=100,
        patience=15,
        monitor="auto",
    ),
}


def resolve_protocol(protocol: str | Protocol, **overrides: Any) -> Protocol:
    """A preset of `PROTOCOLS` by name (or a `Protocol`), with ``overrides`` replacing its fields."""
    if isinstance(protocol, Protocol):
        base = protocol
    else:
        base = PROTOCOLS[check_choice(protocol, tuple(PROTOCOLS), "protocol")]
    fields = {field.name for field in dataclasses.fields(Protocol)} - {"name"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise TypeError(f"unknown fine-tuning option(s) {unknown}; the options are {sorted(fields)}")
    changes = dict(overrides)
    epochs = changes.get("max_epochs")
    if base.linear_epochs and "linear_epochs" not in changes and isinstance(epochs, int) and epochs >= 1:
        # LP-FT's linear phase keeps its share of the epochs (10 of 100 in the preset)
        share = round(base.linear_epochs * epochs / base.max_epochs)
        changes["linear_epochs"] = min(max(share, 1), epochs - 1)
    return dataclasses.replace(base, **changes)
