"""Pretraining objectives in plain torch: CLEF's SCORE2-risk-weighted InfoNCE and similarity alignment, SimCLR's
InfoNCE, BYOL and MoCo; and the cross-process gather that makes k processes of batch b equal one of batch k*b.

Conventions: ``z1``, ``z2`` are ``(n, d)`` features of two views of the same ``n`` subjects (row i of each is
subject i); ``risk`` ``(n,)`` is SCORE2 in percent with NaN for missing (read as 0, as in the released
objective); ``missing_rate`` ``(n,)`` in [0, 1] turns on the missing-metadata mask. The definitions follow the
reference implementation (Nokia-Bell-Labs/ecg-foundation-model, ``ContrastiveModel``) term by term, including
its min-max normalisations and epsilons, so that the values in ``../shared/conformance/loss_cases.json`` are
reproduced. Importable without Lightning.
"""

from __future__ import annotations

from typing import Any, overload

import torch
import torch.distributed as dist
import torch.nn.functional as F

__all__ = [
    "byol_loss",
    "clef_loss",
    "gather_across_processes",
    "info_nce",
    "metadata_similarity",
    "moco_loss",
    "similarity_alignment",
    "weighted_info_nce",
]

MINMAX_EPS = 1e-6  # the reference's min_max_normalize
NCE_EPS = 1e-8  # added to the InfoNCE denominator in the reference
# The reference's "temp": risk-difference weights are squeezed into [0.2, 1] so that no negative weighs 0.
RISK_WEIGHT_FLOOR = 0.2


def _check_views(z1: torch.Tensor, z2: torch.Tensor) -> None:
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be (n, d), got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if z1.shape[0] == 0:
        raise ValueError("the batch is empty: z1 and z2 need at least one row")


def _check_subject_vector(name: str, values: torch.Tensor | None, n: int) -> None:
    if values is not None and values.shape != (n,):
        raise ValueError(f"{name} must be ({n},), one value per subject, got {tuple(values.shape)}")


def _min_max(x: torch.Tensor) -> torch.Tensor:
    return (x - x.min()) / (x.max() - x.min() + MINMAX_EPS)


def metadata_similarity(risk: torch.Tensor, missing_rate: torch.Tensor | None = None) -> torch.Tensor:
    """Similarity of subjects by SCORE2 risk, ``(n, n)`` in [0, 1] with ones on the diagonal.

    ``1 - w`` where ``w`` is the min-max normalised squared risk difference squeezed into [0.2, 1] (0 on the
    diagonal), multiplied by ``exp(-m_i * m_j)`` when ``missing_rate`` is given. NaN risk counts as 0.
    """
    risk = torch.nan_to_num(risk, nan=0.0, posinf=0.0, neginf=0.0)
    difference = (risk[:, None] - risk[None, :]) ** 2
    weight = (1 - RISK_WEIGHT_FLOOR) * _min_max(difference) + RISK_WEIGHT_FLOOR
    weight = weight * (1 - torch.eye(len(risk), dtype=weight.dtype, device=weight.device))
    if missing_rate is not None:
        weight = weight * torch.exp(-missing_rate[:, None] * missing_rate[None, :])
    return 1 - weight


def _cosine_matrix(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    features = F.normalize(torch.cat([z1, z2]), dim=1)
    return features @ features.T


def _views_matrix(similarity: torch.Tensor) -> torch.Tensor:
    """An ``(n, n)`` subject matrix tiled to the ``(2n, 2n)`` matrix of both views."""
    return similarity.repeat(2, 2)


def _cosine_and_metadata(
    z1: torch.Tensor, z2: torch.Tensor, risk: torch.Tensor, missing_rate: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked inputs -> the ``(2n, 2n)`` feature cosine matrix and the tiled metadata similarity, same dtype."""
    _check_views(z1, z2)
    _check_subject_vector("risk", risk, z1.shape[0])
    _check_subject_vector("missing_rate", missing_rate, z1.shape[0])
    cosine = _cosine_matrix(z1, z2)
    similarity = metadata_similarity(risk.to(cosine), None if missing_rate is None else missing_rate.to(cosine))
    return cosine, _views_matrix(similarity)


def _partner_index(n: int, device: torch.device) -> torch.Tensor:
    """For each of the 2n rows, the column of the other view of the same subject."""
    return torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(device)


def weighted_info_nce(
    z1: torch.Tensor,
    z2: torch.Tensor,
    risk: torch.Tensor,
    missing_rate: torch.Tensor | None = None,
    temperature: float = 0.07,
) -> torch.Tensor:
    """InfoNCE whose negatives are weighted by how different the subjects' SCORE2 risks are.

    Per row: ``-log(e_pos / (e_pos + sum_neg softmax_row(1 - S)_neg * e_neg + 1e-8))`` with
    ``e = exp(cos / temperature - row max)`` over the other 2n - 1 rows, ``S`` the tiled
    `metadata_similarity`; the mean over the 2n rows. A scalar tensor.
    """
    cosine, similarity = _cosine_and_metadata(z1, z2, risk, missing_rate)
    n = z1.shape[0]
    logits = cosine / temperature
    weights = torch.softmax(1 - similarity, dim=1)
    off_diagonal = ~torch.eye(2 * n, dtype=torch.bool, device=logits.device)
    logits = logits[off_diagonal].view(2 * n, 2 * n - 1)
    weights = weights[off_diagonal].view(2 * n, 2 * n - 1)
    exp = torch.exp(logits - logits.max(dim=1, keepdim=True).values)
    # the partner's column once the diagonal is removed: n + i - 1 in row i < n, i - n in the others
    partner = torch.cat([torch.arange(n) + n - 1, torch.arange(n)]).to(logits.device)
    is_partner = F.one_hot(partner, 2 * n - 1).bool()
    positive = exp[is_partner]
    negative = (weights * exp).masked_fill(is_partner, 0).sum(dim=1)
    return -torch.log(positive / (positive + negative + NCE_EPS)).mean()


def similarity_alignment(
    z1: torch.Tensor, z2: torch.Tensor, risk: torch.Tensor, missing_rate: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared difference between the min-max normalised feature cosine matrix ``(2n, 2n)`` and the tiled
    `metadata_similarity`. A scalar tensor."""
    cosine, similarity = _cosine_and_metadata(z1, z2, risk, missing_rate)
    return F.mse_loss(_min_max(cosine), similarity)


def clef_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    risk: torch.Tensor,
    missing_rate: torch.Tensor | None = None,
    temperature: float = 0.07,
) -> torch.Tensor:
    """The released CLEF objective: the mean of `weighted_info_nce` and `similarity_alignment`."""
    return (
        weighted_info_nce(z1, z2, risk, missing_rate, temperature) + similarity_alignment(z1, z2, risk, missing_rate)
    ) / 2


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """SimCLR's NT-Xent: cross-entropy of each of the 2n rows against its partner among the other 2n - 1."""
    _check_views(z1, z2)
    n = z1.shape[0]
    logits = _cosine_matrix(z1, z2) / temperature
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=logits.device), float("-inf"))
    return F.cross_entropy(logits, _partner_index(n, logits.device))


def byol_loss(p1: torch.Tensor, z2_target: torch.Tensor, p2: torch.Tensor, z1_target: torch.Tensor) -> torch.Tensor:
    """BYOL's symmetric loss: ``mean(2 - 2 cos(p1, z2') + 2 - 2 cos(p2, z1'))`` (predictions vs targets)."""
    _check_views(p1, z2_target)
    _check_views(p2, z1_target)

    def distance(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return 2 - 2 * (F.normalize(p, dim=1) * F.normalize(z, dim=1)).sum(dim=1)

    return (distance(p1, z2_target) + distance(p2, z1_target)).mean()


def moco_loss(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """MoCo's InfoNCE: each query against its key (positive) and the ``(d, K)`` queue of past keys (negatives)."""
    _check_views(query, key)
    if queue.ndim != 2 or queue.shape[0] != query.shape[1]:
        raise ValueError(f"queue must be (d, K) with d = {query.shape[1]}, got {tuple(queue.shape)}")
    q = F.normalize(query, dim=1)
    k = F.normalize(key, dim=1)
    positive = (q * k).sum(dim=1, keepdim=True)
    negative = q @ queue.to(q.dtype)
    logits = torch.cat([positive, negative], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


class _AllGather(torch.autograd.Function):
    """all_gather whose backward hands each process the summed gradient of its own rows (gloo and NCCL)."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        ctx.rank, ctx.rows = dist.get_rank(), tensor.shape[0]
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


@overload
def gather_across_processes(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]: ...


@overload
def gather_across_processes(*tensors: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]: ...


def gather_across_processes(*tensors: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
    """Concatenate each tensor's rows over all processes (rank order), keeping gradients; ``None`` stays ``None``.

    Every process must pass the same number of rows. Every process then computes the loss of the global
    batch; the backward sums each row's gradient over the processes, which DDP's gradient averaging turns into
    exactly the gradient of one process holding the whole batch. Outside ``torch.distributed`` (or with one
    process) the tensors come back unchanged.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensors
    out: list[torch.Tensor | None] = []
    for tensor in tensors:
        if tensor is None:
            out.append(None)
        elif tensor.requires_grad:
            out.append(_AllGather.apply(tensor))
        else:
            parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
            dist.all_gather(parts, tensor.contiguous())
            out.append(torch.cat(parts))
    return tuple(out)
