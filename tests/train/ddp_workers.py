"""Functions run in child processes by the multi-process tests (importable by name, as spawn requires)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def loss_and_gradients(rank: int, world_size: int, rendezvous: str, case: dict, out_dir: str) -> None:
    """Each process: its share of the batch through a linear map, CLEF loss on the gathered features, backward,
    gradients averaged as DDP does. Writes the loss and the averaged gradient to ``out_dir/rank<r>.pt``."""
    from clef_sdk.train.losses import clef_loss, gather_across_processes, info_nce

    dist.init_process_group("gloo", init_method=rendezvous, rank=rank, world_size=world_size)
    try:
        torch.manual_seed(0)
        weight = torch.nn.Parameter(case["weight"].clone())
        rows = slice(rank * case["per_process"], (rank + 1) * case["per_process"])
        x1, x2 = case["x1"][rows], case["x2"][rows]
        risk, missing = case["risk"][rows], case["missing_rate"][rows]
        z1, z2, risk, missing = gather_across_processes(x1 @ weight, x2 @ weight, risk, missing)
        loss = clef_loss(z1, z2, risk, missing) + info_nce(z1, z2)
        loss.backward()
        grad = weight.grad.clone()
        dist.all_reduce(grad)
        grad /= world_size  # what DistributedDataParallel does to parameter gradients
        torch.save({"loss": loss.detach(), "grad": grad}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
