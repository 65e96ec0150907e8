"""Batches of store rows for training: a step-indexed batch sampler and a LightningDataModule.

Which rows form the batch of global step ``s`` is a pure function of ``(seed, s)``: epoch ``e`` visits the rows in
a permutation drawn from ``(seed, e)``, ``n // (batch_size * world_size)`` steps per epoch (the remainder is left
out, as contrastive batches must be full), and process ``r`` takes its slice of each global batch. The sampler
starts at the trainer's restored global step, so a resumed run continues the epoch exactly where the checkpoint
left it, and k processes of batch b see the same subjects as one process of batch k*b.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .._optional import require
from .data import PretrainingStore

if TYPE_CHECKING:  # the real module for the type checker; at run time, a clear error when the extra is missing
    import lightning.pytorch as L
else:
    L = require("lightning.pytorch", "clef_sdk.train")

__all__ = ["StepBatchSampler", "StepDataLoader", "StoreDataModule", "StoreDataset"]


class StoreDataset(Dataset):
    """Rows of a `PretrainingStore` fetched a batch at a time: ``windows`` ``(B, n_leads, 5000)`` in the
    store's dtype, ``available`` ``(B, n_leads)`` bool, ``risk`` and ``missing_rate`` ``(B,)`` float32."""

    def __init__(self, store: PretrainingStore):
        self.store = store

    def __len__(self) -> int:
        return len(self.store)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        rows = np.asarray(indices)
        return {
            "windows": torch.from_numpy(np.ascontiguousarray(self.store.windows[rows])),
            "available": torch.from_numpy(self.store.available[rows]),
            "risk": torch.from_numpy(self.store.risk[rows]),
            "missing_rate": torch.from_numpy(self.store.missing_rate[rows]),
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {key: value[0] for key, value in self.__getitems__([index]).items()}


def _already_batched(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return batch


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    state = np.random.SeedSequence([int(seed), int(epoch), 0x5EED]).generate_state(2, dtype=np.uint32)
    return torch.randperm(n, generator=torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1])))


class StepBatchSampler:
    """Yields this process's row indices for each remaining step of the current epoch (see the module docstring)."""

    def __init__(
        self, n_rows: int, batch_size: int, world_size: int, rank: int, seed: int, start_step: Callable[[], int]
    ):
        self.n_rows, self.batch_size, self.world_size, self.rank, self.seed = n_rows, batch_size, world_size, rank, seed
        self.start_step = start_step
        self.steps_per_epoch = n_rows // (batch_size * world_size)
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"the store has {n_rows} windows, fewer than one global batch of {batch_size * world_size} "
                f"({batch_size} per process x {world_size}); lower --batch-size or add data"
            )

    def __len__(self) -> int:
        return self.steps_per_epoch

    def __iter__(self) -> Iterator[list[int]]:
        epoch, first = divmod(self.start_step(), self.steps_per_epoch)
        order = epoch_permutation(self.n_rows, self.seed, epoch)
        global_batch = self.batch_size * self.world_size
        for step in range(first, self.steps_per_epoch):
            begin = step * global_batch + self.rank * self.batch_size
            yield order[begin : begin + self.batch_size].tolist()


class StepDataLoader(DataLoader):
    """A DataLoader whose position is the trainer's global step (read by its `StepBatchSampler` at every
    ``iter``): it needs no state of its own to resume mid-epoch. The ``state_dict`` below tells Lightning so."""

    def state_dict(self) -> dict[str, Any]:
        return {"position": "trainer.global_step"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("position") != "trainer.global_step":
            raise ValueError(f"this checkpoint's data loader state {state!r} was not written by clef_sdk.train")


class StoreDataModule(L.LightningDataModule):
    """Training batches from a prepared store (``clef train prepare``); ``batch_size`` is per process."""

    def __init__(self, store: str | os.PathLike[str], batch_size: int = 64, num_workers: int = 2, seed: int = 0):
        super().__init__()
        if batch_size < 2:
            raise ValueError(f"batch_size must be at least 2 (contrastive batches need negatives), got {batch_size}")
        self.store_path = Path(store)
        self.batch_size, self.num_workers, self.seed = batch_size, num_workers, seed
        self.store: PretrainingStore | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.store is None:
            self.store = PretrainingStore(self.store_path)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        assert self.store is not None
        trainer: Any = self.trainer
        sampler = StepBatchSampler(
            len(self.store),
            self.batch_size,
            trainer.world_size if trainer else 1,
            trainer.global_rank if trainer else 0,
            self.seed,
            (lambda: trainer.global_step) if trainer else (lambda: 0),
        )
        return StepDataLoader(
            StoreDataset(self.store),
            batch_sampler=sampler,
            # torch types collate_fn as taking a list of samples; StoreDataset.__getitems__ hands it the whole batch
            collate_fn=cast("Callable[[list[Any]], Any]", _already_batched),
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )
