"""Per-recording losses of the fine-tuning tasks, as the authors' downstream code uses them: binary
cross-entropy on logits for binary and multi-label tasks, cross-entropy for multi-class, L1 on standardised
targets for regression; optional class weights. Plain torch (no Lightning)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["task_loss"]


def task_loss(
    task: str, logits: torch.Tensor, targets: torch.Tensor, class_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Loss of each recording ``(batch,)`` from ``logits`` ``(batch, n_outputs)`` and ``targets``.

    ``targets``: binary 0/1 ``(batch,)``; multiclass codes ``(batch,)`` int64; multilabel 0/1 ``(batch, n_labels)``
    (the loss averages the labels); regression standardised values ``(batch,)``. ``class_weights``: multiclass one
    weight per class (each recording's loss times its class's weight); binary and multilabel BCE's ``pos_weight``
    (one per output); regression none.
    """
    logits = logits.float()
    if task == "binary":
        return F.binary_cross_entropy_with_logits(
            logits[:, 0], targets.float(), pos_weight=class_weights, reduction="none"
        )
    if task == "multilabel":
        losses = F.binary_cross_entropy_with_logits(logits, targets.float(), pos_weight=class_weights, reduction="none")
        return losses.mean(dim=1)
    if task == "multiclass":
        return F.cross_entropy(logits, targets.long(), weight=class_weights, reduction="none")
    if task == "regression":
        if class_weights is not None:
            raise ValueError("class weights do not apply to regression")
        return (logits[:, 0] - targets.float()).abs()
    raise ValueError(f"unknown task {task!r}")
