"""Batches: each row at most once per epoch, process shards that add up to the one-process batch, and a sampler
that resumes mid-epoch where the checkpoint left it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("lightning")

from clef_sdk.train.data import PretrainingStore
from clef_sdk.train.datamodule import StepBatchSampler, StoreDataModule, StoreDataset


def _batches(n: int, batch: int, world: int, rank: int, seed: int, start: int) -> list[list[int]]:
    return list(StepBatchSampler(n, batch, world, rank, seed, lambda: start))


def test_each_row_at_most_once_per_epoch() -> None:
    batches = _batches(26, 4, 1, 0, seed=0, start=0)
    assert len(batches) == 6 and all(len(b) == 4 for b in batches)  # 26 // 4: the last 2 rows wait
    rows = [r for b in batches for r in b]
    assert len(set(rows)) == 24 and set(rows) <= set(range(26))
    next_epoch = _batches(26, 4, 1, 0, seed=0, start=6)
    assert next_epoch != batches  # a new permutation each epoch
    assert _batches(26, 4, 1, 0, seed=1, start=0) != batches  # and per seed


def test_processes_share_the_global_batch() -> None:
    single = _batches(40, 8, 1, 0, seed=3, start=0)
    ranks = [_batches(40, 4, 2, rank, seed=3, start=0) for rank in range(2)]
    assert len(single) == len(ranks[0]) == 5
    for step, batch in enumerate(single):
        assert ranks[0][step] + ranks[1][step] == batch


def test_mid_epoch_start_continues_the_same_sequence() -> None:
    sequence = _batches(30, 4, 1, 0, seed=5, start=0) + _batches(30, 4, 1, 0, seed=5, start=7)
    for start in range(1, 14):
        epoch, offset = divmod(start, 7)
        assert _batches(30, 4, 1, 0, seed=5, start=start) == sequence[start : (epoch + 1) * 7]


def test_too_few_rows_for_one_batch() -> None:
    with pytest.raises(ValueError, match=r"fewer than one global batch of 16 \(8 per process x 2\)"):
        StepBatchSampler(10, 8, 2, 0, 0, lambda: 0)


def test_dataset_returns_batches_of_copies(ludb_store: Path) -> None:
    store = PretrainingStore(ludb_store)
    batch = StoreDataset(store).__getitems__([5, 0, 17])
    assert batch["windows"].shape == (3, 12, 5000) and batch["windows"].dtype == torch.float16
    assert batch["available"].dtype == torch.bool and batch["risk"].dtype == torch.float32
    np.testing.assert_array_equal(batch["windows"][1].numpy(), store.windows[0])
    batch["windows"][0] += 1  # writable: not the read-only memory map
    assert batch["risk"][2] == torch.tensor(store.risk[17])


def test_datamodule_checks_batch_size(ludb_store: Path) -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 2"):
        StoreDataModule(ludb_store, batch_size=1)
    loader = StoreDataModule(ludb_store, batch_size=8, num_workers=0).train_dataloader()
    batches = list(loader)
    assert len(batches) == 3 and batches[0]["windows"].shape == (8, 12, 5000)
