"""The LightningModule of fine-tuning: it wires a [`TaskModel`][clef_sdk.tasks.TaskModel], a `Protocol`,
the task losses (`.task_losses`) and the validation metrics ([`clef_sdk.probes.metrics`][clef_sdk.probes.metrics]).

Training: one 10 s crop per recording through the encoder and the head, the per-recording losses weighted and
scaled so that the gradients DDP averages are those of the global batch's mean. Validation: every window of each
recording, pooled as ``predict`` pools; the outputs of all processes are gathered and the loss and metric computed
once on the whole validation set, so every process (and a one-process run) sees the same numbers.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from .._optional import require
from ..probes.metrics import bootstrap_metrics
from ..tasks.model import TaskModel
from .protocols import Protocol
from .task_losses import task_loss

if TYPE_CHECKING:  # the real module for the type checker; at run time, a clear error when the extra is missing
    import lightning.pytorch as L
    from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
else:
    L = require("lightning.pytorch", "clef_sdk.train")

__all__ = ["ClefFineTuning", "learning_rate_factors", "logged_name", "pooled_embeddings"]

# Windows per encoder call at evaluation (a Holter's thousands of windows are encoded in chunks).
EVAL_CHUNK_WINDOWS = 128


def pooled_embeddings(model: TaskModel, windows: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """One pooled embedding per recording ``(len(counts), embed_dim)`` of preprocessed windows
    ``(n_windows_total, 5000)`` of consecutive recordings (``counts[i]`` each), encoded
    `EVAL_CHUNK_WINDOWS` at a time, as ``predict`` pools them."""
    embeddings = torch.cat([model.encoder(chunk[:, None, :]) for chunk in windows.split(EVAL_CHUNK_WINDOWS)])
    return model.pool(embeddings, counts)


def logged_name(monitor: str) -> str:
    """The logged name of a watched quantity: ``"val/loss"`` for ``"val_loss"``, else ``"val/<metric>"``."""
    return "val/loss" if monitor == "val_loss" else f"val/{monitor}"


def learning_rate_factors(protocol: Protocol, steps_per_epoch: int) -> tuple[Any, Any]:
    """``(head factor, encoder factor)``: functions of the global step giving the multiple of each group's base
    rate under the ``"warmup-cosine"`` or ``"constant"`` schedule. The encoder's is 0 while it is frozen (LP-FT),
    and its warm-up and decay span the steps after that."""
    total = max(1, protocol.max_epochs * steps_per_epoch)
    frozen = protocol.linear_epochs * steps_per_epoch

    def shape(step: int, first: int) -> float:
        if step < first:
            return 0.0
        if protocol.schedule == "constant":
            return 1.0
        span = max(1, total - first)
        warmup = round(protocol.warmup_fraction * span)  # whole steps: factors never exceed 1
        position = step - first
        if position < warmup:
            return (position + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (position - warmup) / max(1, span - warmup))))

    return (lambda step: shape(step, 0)), (lambda step: shape(step, frozen))


class ClefFineTuning(L.LightningModule):
    """Fine-tune ``model`` (its encoder and head) under ``protocol``.

    Args:
        model: the task model to train (its head freshly initialised, its encoder pretrained or random).
        protocol: how (`PROTOCOLS`).
        steps_per_epoch: optimiser steps in one epoch (for the per-step schedules).
        class_weights: `class_weights` when the protocol weighs classes.
        target_scaling: the regression target's ``(mean, std)``, for metrics in its units.
        run_facts: plain values identifying the run (data fingerprint, task, ...), saved in its checkpoints.
    """

    def __init__(
        self,
        model: TaskModel,
        protocol: Protocol,
        steps_per_epoch: int,
        class_weights: np.ndarray | None = None,
        run_facts: dict[str, Any] | None = None,
    ):
        super().__init__()
        self.model = model
        self.protocol = protocol
        self.steps_per_epoch = steps_per_epoch
        self.task = model.task
        self.monitor = protocol.monitor_for(model.task)
        self.class_weights: torch.Tensor | None
        self.register_buffer(
            "class_weights",
            None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32),
            persistent=False,
        )
        self.save_hyperparameters({"protocol": protocol.as_dict(), **(run_facts or {})})
        self.history: list[dict[str, float]] = []
        self._outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        if not protocol.train_encoder:
            model.encoder.requires_grad_(False)

    def _encoder_frozen(self) -> bool:
        return not self.protocol.train_encoder or self.current_epoch < self.protocol.linear_epochs

    # ---- training --------------------------------------------------------------------------------------------

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        windows = batch["windows"][:, None, :]
        if self._encoder_frozen():
            with torch.no_grad():
                embeddings = self.model.encoder(windows)
        else:
            embeddings = self.model.encoder(windows)
        logits = self.model.head_logits(embeddings)
        losses = task_loss(self.task, logits, batch["targets"], self.class_weights)
        # scaled so that DDP's average over processes is the mean over the global batch's real items
        loss = (losses * batch["weights"]).sum() * self.trainer.world_size / batch["global_weight"]
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the loss is {loss.item()} at step {self.global_step}; lower the learning rate or use precision "
                "'32-true'"
            )
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, sync_dist=True, batch_size=len(losses))
        return loss

    # ---- validation ------------------------------------------------------------------------------------------

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self.model.head_logits(pooled_embeddings(self.model, batch["windows"], batch["counts"]))
        self._outputs.append((batch["positions"], logits.float(), batch["targets"]))

    def _gather(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` of every process, concatenated along the first axis."""
        return cast(torch.Tensor, self.all_gather(tensor)).flatten(0, 1)

    def _gathered(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every process's validation logits and targets, in the validation set's order."""
        positions = torch.cat([p for p, _, _ in self._outputs])
        logits = torch.cat([lo for _, lo, _ in self._outputs])
        targets = torch.cat([t for _, _, t in self._outputs])
        self._outputs.clear()
        world = self.trainer.world_size
        if world > 1:  # equal shapes for all_gather: pad to the largest share, marked by position -1
            size = torch.tensor(len(positions), device=self.device)
            largest = int(self._gather(size[None]).max())
            pad = largest - len(positions)
            positions = torch.cat([positions, positions.new_full((pad,), -1)])
            logits = torch.cat([logits, logits.new_zeros((pad, *logits.shape[1:]))])
            targets = torch.cat([targets, targets.new_zeros((pad, *targets.shape[1:]))])
            positions, logits, targets = (self._gather(t) for t in (positions, logits, targets))
            keep = positions >= 0
            positions, logits, targets = positions[keep], logits[keep], targets[keep]
        order = torch.argsort(positions)
        return logits[order], targets[order]

    def on_validation_epoch_end(self) -> None:
        if not self._outputs:
            return
        logits, targets = self._gathered()
        loss = float(task_loss(self.task, logits, targets, self.class_weights).mean())
        metrics = {"val/loss": loss}
        metrics.update({f"val/{name}": value for name, value in self._metrics(logits, targets).items()})
        for name, value in metrics.items():
            self.log(name, value, prog_bar=name in ("val/loss", logged_name(self.monitor)), sync_dist=False)
        if not self.trainer.sanity_checking:
            self.history.append({"epoch": int(self.current_epoch), **metrics})

    def _metrics(self, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """The task's metrics (point estimates) on the validation set."""
        model = self.model
        with torch.no_grad():
            logits64 = logits.double().cpu()
            truth = targets.cpu().numpy()
            if self.task == "regression":
                assert model.target_scaling is not None
                mean, std = model.target_scaling
                scores = model.values_from_logits(logits64).numpy()
                truth = truth.astype(np.float64) * std + mean
            else:
                proba = model.proba_from_logits(logits64).numpy()
                scores = proba[:, 1] if self.task == "binary" else proba
                truth = truth.astype(np.int64)
        try:
            report = bootstrap_metrics(truth, scores, task=self.task, n_bootstrap=0)
        except ValueError:  # undefined (a class absent from validation): only the loss is watched then
            return {}
        return {name: float(entry["estimate"]) for name, entry in report.items()}

    # ---- optimiser -------------------------------------------------------------------------------------------

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        protocol = self.protocol
        encoder = self.model.encoder
        encoder_layers = [encoder.first_conv, *encoder.stage_list]
        groups: list[dict[str, Any]] = [
            {"params": list(self.model.head.parameters()), "lr": protocol.lr, "name": "head"}
        ]
        if protocol.train_encoder:
            top = len(encoder_layers) - 1
            for depth, layer in enumerate(encoder_layers):
                scale = protocol.encoder_lr_scale * protocol.layer_decay ** (top - depth)
                groups.append(
                    {"params": list(layer.parameters()), "lr": protocol.lr * scale, "name": f"encoder.{depth}"}
                )
        optimizer_class = torch.optim.Adam if protocol.optimizer == "adam" else torch.optim.AdamW
        optimizer = optimizer_class(groups, lr=protocol.lr, weight_decay=protocol.weight_decay)
        if protocol.schedule == "upstream-restarts":
            restarts = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
                optimizer, T_0=max(1, protocol.max_epochs // 2), T_mult=1, eta_min=0.0
            )
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": restarts, "interval": "epoch"}}
        head, encoder_factor = learning_rate_factors(protocol, self.steps_per_epoch)
        factors = [head] + [encoder_factor] * (len(groups) - 1)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factors)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ---- checkpoints -----------------------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["clef_history"] = list(self.history)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = list(checkpoint.get("clef_history", []))
