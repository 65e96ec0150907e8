"""The LightningModule of CLEF pretraining: it only wires the parts defined elsewhere.

encoder ([`clef_sdk.models`][clef_sdk.models]) + views (`.views`) + objective (`.objectives`) + AdamW with cosine
warm restarts (the authors' settings: lr 1e-4, weight decay 5e-4, T_0 10 epochs, T_mult 2, down to 1e-6).
Every hyper-parameter is a plain value, saved in the checkpoint, so ``clef train export`` can record them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .._optional import require
from ..models import ARCHITECTURES, build
from .objectives import METHODS, make_objective
from .views import NoiseBank, ViewConfig, ViewSampler

if TYPE_CHECKING:  # the real module for the type checker; at run time, a clear error when the extra is missing
    import lightning.pytorch as L
    from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
else:
    L = require("lightning.pytorch", "clef_sdk.train")

__all__ = ["ClefPretraining"]


class ClefPretraining(L.LightningModule):
    """Pretrain a CLEF encoder (``self.backbone``, a [`ClefEncoder`][clef_sdk.models.ClefEncoder]).

    Args:
        size: ``"small"``, ``"medium"`` or ``"large"``.
        method: ``"clef"`` (SCORE2-weighted, the released objective), ``"simclr"``, ``"byol"`` or ``"moco"``.
        lr: AdamW's learning rate.
        weight_decay: AdamW's weight decay.
        temperature: of the InfoNCE terms.
        scheduler_t0: CosineAnnealingWarmRestarts' first period, in epochs.
        scheduler_t_mult: the factor by which each period grows.
        min_lr: the learning rate at the end of each period.
        use_missing_rate: turn on CLEF's missing-metadata mask.
        byol_tau: BYOL's target-network decay.
        moco_queue: MoCo's queue length.
        moco_momentum: MoCo's key-encoder momentum.
        same_lead_probability: chance that the second view uses the first view's lead.
        noise_rms_mv: RMS of the added noise, in mV.
        mask_probability: chance of a zero mask over 10-30 % of a view.
        seed: initial weights and every random choice of the views.
        noise_dir: folder with the noise stress test records ``ma``, ``em``, ``bw``; ``None``: synthetic noise.
        data_description: free text about the training data, recorded in the checkpoint and the export.
    """

    def __init__(
        self,
        size: str = "small",
        method: str = "clef",
        *,
        lr: float = 1e-4,
        weight_decay: float = 5e-4,
        temperature: float = 0.07,
        scheduler_t0: int = 10,
        scheduler_t_mult: int = 2,
        min_lr: float = 1e-6,
        use_missing_rate: bool = False,
        byol_tau: float = 0.996,
        moco_queue: int = 65536,
        moco_momentum: float = 0.999,
        same_lead_probability: float = 0.8,
        noise_rms_mv: float = 0.1,
        mask_probability: float = 0.2,
        seed: int = 0,
        noise_dir: str | None = None,
        data_description: str = "",
    ):
        super().__init__()
        if size not in ARCHITECTURES:
            raise ValueError(f"size must be one of {sorted(ARCHITECTURES)}, got {size!r}")
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.save_hyperparameters()
        self.backbone = build(size, seed=seed)
        self.objective = make_objective(
            method,
            self.backbone,
            temperature=temperature,
            use_missing_rate=use_missing_rate,
            byol_tau=byol_tau,
            moco_queue=moco_queue,
            moco_momentum=moco_momentum,
        )
        bank = NoiseBank.from_nstdb(noise_dir) if noise_dir else NoiseBank.synthetic(seed=seed)
        self.views = ViewSampler(bank, ViewConfig(same_lead_probability, noise_rms_mv, mask_probability))

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        windows = batch["windows"]
        world, rank, local = self.trainer.world_size, self.global_rank, len(windows)
        choices = self.views.draw(local * world, self.hparams["seed"], self.global_step)
        choices = {key: value[rank * local : (rank + 1) * local] for key, value in choices.items()}
        with torch.no_grad():
            x1, x2 = self.views(windows, batch["available"], choices)
        loss = self.objective.loss(self.backbone, x1, x2, batch["risk"], batch["missing_rate"])
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the loss is {loss.item()} at step {self.global_step}; lower --lr or use --precision 32-true"
            )
        # the loss is computed on the gathered global batch: the same value in every process
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=local * world)
        return loss

    def configure_optimizers(self) -> OptimizerLRSchedulerConfig:
        h = self.hparams
        optimizer = torch.optim.AdamW(
            [p for p in self.parameters() if p.requires_grad],
            lr=h["lr"],
            weight_decay=h["weight_decay"],
            betas=(0.9, 0.999),
        )
        scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            optimizer, T_0=h["scheduler_t0"], T_mult=h["scheduler_t_mult"], eta_min=h["min_lr"]
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}
