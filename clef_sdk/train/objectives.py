"""Pretraining methods as small ``nn.Module`` objects: how two batches of views become a loss for an encoder.

``clef`` (the released objective), ``simclr``, ``byol`` and ``moco``, as in the authors' ``ContrastiveModel``:
no projection head; BYOL adds a predictor (d -> d/2 -> BatchNorm -> ReLU -> d) and a target encoder updated
with tau = 0.996 before each step; MoCo a key encoder (momentum 0.999, updated before each step) and a queue
of 65,536 keys. Features are computed in the autocast dtype and the losses in float32. With several processes
the CLEF/SimCLR features, risks and MoCo keys are gathered ([`gather_across_processes`][clef_sdk.train.losses.gather_across_processes]).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from ..models import ClefEncoder
from .losses import byol_loss, clef_loss, gather_across_processes, info_nce, moco_loss

__all__ = ["METHODS", "BYOL", "Clef", "MoCo", "Objective", "SimCLR", "make_objective"]

METHODS = ("clef", "simclr", "byol", "moco")


def _features(encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return encoder(x.unsqueeze(1)).float()


class Objective(nn.Module):
    """``loss(encoder, x1, x2, risk, missing_rate)`` for views ``(B, 5000)``; subclasses hold extra state."""

    def loss(
        self,
        encoder: ClefEncoder,
        x1: torch.Tensor,
        x2: torch.Tensor,
        risk: torch.Tensor,
        missing_rate: torch.Tensor,
    ) -> torch.Tensor:
        raise NotImplementedError


class Clef(Objective):
    """SCORE2-risk-weighted InfoNCE + similarity alignment over the global batch (the released objective)."""

    def __init__(self, temperature: float = 0.07, use_missing_rate: bool = False):
        super().__init__()
        self.temperature = temperature
        self.use_missing_rate = use_missing_rate

    def loss(
        self,
        encoder: ClefEncoder,
        x1: torch.Tensor,
        x2: torch.Tensor,
        risk: torch.Tensor,
        missing_rate: torch.Tensor,
    ) -> torch.Tensor:
        z1, z2, risk, missing_rate = gather_across_processes(
            _features(encoder, x1), _features(encoder, x2), risk.float(), missing_rate.float()
        )
        return clef_loss(z1, z2, risk, missing_rate if self.use_missing_rate else None, self.temperature)


class SimCLR(Objective):
    """InfoNCE over the global batch, without metadata."""

    def __init__(self, temperature: float = 0.07):
        super().__init__()
        self.temperature = temperature

    def loss(
        self,
        encoder: ClefEncoder,
        x1: torch.Tensor,
        x2: torch.Tensor,
        risk: torch.Tensor,
        missing_rate: torch.Tensor,
    ) -> torch.Tensor:
        z1, z2 = gather_across_processes(_features(encoder, x1), _features(encoder, x2))
        return info_nce(z1, z2, self.temperature)


def _frozen_copy(encoder: nn.Module) -> nn.Module:
    twin = copy.deepcopy(encoder)
    for parameter in twin.parameters():
        parameter.requires_grad_(False)
    return twin


@torch.no_grad()
def _ema(target: nn.Module, online: nn.Module, decay: float) -> None:
    for t, o in zip(target.parameters(), online.parameters()):
        t.mul_(decay).add_(o.detach(), alpha=1 - decay)


class BYOL(Objective):
    def __init__(self, encoder: ClefEncoder, tau: float = 0.996):
        super().__init__()
        d = encoder.embed_dim
        self.tau = tau
        self.predictor = nn.Sequential(nn.Linear(d, d // 2), nn.BatchNorm1d(d // 2), nn.ReLU(), nn.Linear(d // 2, d))
        self.target = _frozen_copy(encoder)

    def loss(
        self,
        encoder: ClefEncoder,
        x1: torch.Tensor,
        x2: torch.Tensor,
        risk: torch.Tensor,
        missing_rate: torch.Tensor,
    ) -> torch.Tensor:
        _ema(self.target, encoder, self.tau)
        p1 = self.predictor(_features(encoder, x1)).float()
        p2 = self.predictor(_features(encoder, x2)).float()
        with torch.no_grad():
            t1, t2 = _features(self.target, x1), _features(self.target, x2)
        return byol_loss(p1, t2, p2, t1)


class MoCo(Objective):
    queue: torch.Tensor  # (d, K) buffer of past keys, unit columns
    queue_position: torch.Tensor  # () long buffer: where the next key goes

    def __init__(
        self, encoder: ClefEncoder, temperature: float = 0.07, queue_size: int = 65536, momentum: float = 0.999
    ):
        super().__init__()
        self.temperature = temperature
        self.momentum = momentum
        self.key_encoder = _frozen_copy(encoder)
        generator = torch.Generator().manual_seed(0)
        self.register_buffer(
            "queue", F.normalize(torch.randn(encoder.embed_dim, queue_size, generator=generator), dim=0)
        )
        self.register_buffer("queue_position", torch.zeros((), dtype=torch.long))

    def loss(
        self,
        encoder: ClefEncoder,
        x1: torch.Tensor,
        x2: torch.Tensor,
        risk: torch.Tensor,
        missing_rate: torch.Tensor,
    ) -> torch.Tensor:
        _ema(self.key_encoder, encoder, self.momentum)
        query = _features(encoder, x1)
        with torch.no_grad():
            key = _features(self.key_encoder, x2)
        loss = moco_loss(query, key, self.queue.clone(), self.temperature)
        (keys,) = gather_across_processes(F.normalize(key, dim=1))
        self._enqueue(keys)
        return loss

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        size = self.queue.shape[1]
        positions = (self.queue_position + torch.arange(len(keys), device=keys.device)) % size
        self.queue[:, positions] = keys.T.to(self.queue.dtype)
        self.queue_position.copy_((self.queue_position + len(keys)) % size)


def make_objective(
    method: str,
    encoder: ClefEncoder,
    *,
    temperature: float = 0.07,
    use_missing_rate: bool = False,
    byol_tau: float = 0.996,
    moco_queue: int = 65536,
    moco_momentum: float = 0.999,
) -> Objective:
    """The objective for ``method`` (one of `METHODS`)."""
    if method == "clef":
        return Clef(temperature, use_missing_rate)
    if method == "simclr":
        return SimCLR(temperature)
    if method == "byol":
        return BYOL(encoder, byol_tau)
    if method == "moco":
        return MoCo(encoder, temperature, moco_queue, moco_momentum)
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
