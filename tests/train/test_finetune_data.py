"""The data of fine-tuning: crops that are windows of the recording, preprocessed as clef.preprocess does; every
window at evaluation; global batches sharded over processes with padding that weighs nothing; resumption at any
step; balanced draws; patient-grouped validation splits; label encoding and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import clef_sdk as clef
from clef_sdk.train.finetune_data import (
    Recordings,
    StepBatches,
    encode_targets,
    epoch_draws,
    validation_split,
)


@pytest.fixture(scope="module")
def recordings(data_dir: Path) -> list[np.ndarray]:
    """Three real stretches of MIT-BIH record 100 (360 Hz): 35 s, 12 s and 10 s."""
    ecg = np.load(data_dir / "mitdb-tpcp" / "100.npz")["ecg"]
    return [ecg[: 35 * 360], ecg[40_000 : 40_000 + 12 * 360], ecg[90_000 : 90_000 + 10 * 360]]


def test_crops_are_preprocessed_windows_of_the_recording(recordings, mitdb_record) -> None:
    data = Recordings(recordings, 360)
    assert data.n_windows.tolist() == [3, 1, 1]
    first = data.crop(0, 0.0)
    assert first.dtype == np.float32 and first.shape == (5000,)
    assert np.array_equal(first, clef.preprocess(recordings[0], 360)[0])  # the same computation: measured equal
    # at 500 Hz a crop at offset s is the window x[s:s+5000], preprocessed
    at_500 = Recordings([mitdb_record[:20_000].astype(np.float64)], 500)
    last_start = 20_000 - 5000
    for position, start in ((0.5, last_start // 2), (0.999999, last_start)):
        expected = clef.preprocess(mitdb_record[start : start + 5000].astype(np.float64), 500)[0]
        assert np.array_equal(at_500.crop(0, position), expected)
    assert np.array_equal(data.windows(0), clef.preprocess(recordings[0], 360))


def test_short_recordings_need_tail_pad(recordings) -> None:
    short = [recordings[0], recordings[2][: 4 * 360]]
    with pytest.raises(ValueError, match="recording 1: .*tail='pad'"):
        Recordings(short, 360)
    padded = Recordings(short, 360, tail="pad")
    crop = padded.crop(1, 0.7)
    assert np.array_equal(crop, clef.preprocess(short[1], 360, tail="pad")[0])
    assert np.all(crop[2000:] == 0)  # 4 s of signal, then zeros


def test_global_batches_are_sharded_and_resumable() -> None:
    """13 items, 3 per process x 2 processes: each step's real items are those of one process with batch 6,
    split in contiguous halves; the short last step is padded with weight-0 items."""
    single = StepBatches(13, 6, 1, 0, seed=7, start_step=lambda: 0)
    ranks = [StepBatches(13, 3, 2, r, seed=7, start_step=lambda: 0) for r in range(2)]
    assert len(single) == len(ranks[0]) == 3
    for step in range(6):  # two epochs
        whole = single.step_items(step)
        parts = [rank.step_items(step) for rank in ranks]
        real = [item for part in parts for item in part if item[2] == 1.0]
        assert [item[:2] for item in real] == [item[:2] for item in whole]
        assert len(parts[0]) == len(parts[1])  # every process runs every step
        assert {item[3] for part in parts for item in part} == {float(len(whole))}
    last = [rank.step_items(2) for rank in ranks]
    assert [item[2] for item in last[0] + last[1]] == [1.0, 0.0]  # one item left: the other process pads
    resumed = StepBatches(13, 6, 1, 0, seed=7, start_step=lambda: 4)
    assert list(resumed) == [single.step_items(4), single.step_items(5)]  # the rest of epoch 1
    assert list(StepBatches(13, 6, 1, 0, seed=8, start_step=lambda: 0))[0] != single.step_items(0)


def test_epochs_draw_new_orders_and_crops_and_balanced_draws_even_out_classes() -> None:
    order0, crops0 = epoch_draws(10, 0, 0, None)
    order1, crops1 = epoch_draws(10, 0, 1, None)
    assert sorted(order0) == list(range(10)) and not np.array_equal(order0, order1)
    assert np.all((crops0 >= 0) & (crops0 < 1)) and not np.array_equal(crops0, crops1)
    strata = np.r_[np.zeros(90, int), np.ones(10, int)]
    drawn = np.concatenate([epoch_draws(100, 0, e, strata)[0] for e in range(50)])
    share = (strata[drawn] == 1).mean()
    assert 0.45 < share < 0.55  # 5000 draws at p = 0.5: 3 standard deviations are 0.021


def test_validation_split_keeps_patients_apart() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(20), 3)
    y = np.repeat(rng.permutation(np.r_[np.zeros(14), np.ones(6)]), 3)
    targets = encode_targets(y, len(y))
    train, validation = validation_split(targets, groups, 0.25, seed=0)
    assert set(groups[train]).isdisjoint(groups[validation])
    assert len(train) + len(validation) == len(y)
    assert set(y[validation]) == set(y[train]) == {0.0, 1.0}
    assert 0.15 < len(validation) / len(y) < 0.35


def test_label_encoding() -> None:
    binary = encode_targets(np.array(["sinus", "af", "af"]), 3)
    assert binary.task == "binary" and binary.classes == ("af", "sinus") and binary.values.tolist() == [1, 0, 0]
    given = encode_targets(np.array(["sinus", "af", "af"]), 3, classes=["sinus", "af"])
    assert given.values.tolist() == [0, 1, 1]
    flags = encode_targets(np.array([True, False, True]), 3)
    assert flags.classes == (0, 1)
    regression = encode_targets(np.array([50.0, 60.0, 70.5, 81.0]), 4)
    mean, std = regression.target_scaling
    assert regression.values.mean() == pytest.approx(0, abs=1e-7) and std == pytest.approx(np.std([50, 60, 70.5, 81]))
    assert np.allclose(regression.original(regression.values), [50, 60, 70.5, 81], atol=1e-5)
    with pytest.raises(ValueError, match="not among the classes"):
        encode_targets(np.array(["a", "b", "c"]), 3, task="multiclass", classes=["a", "b", "d"])
    with pytest.raises(ValueError, match="3 recordings but y has 2"):
        encode_targets(np.array([0, 1]), 3)
    weights = encode_targets(np.array([0, 0, 0, 1]), 4).class_weights()
    assert weights.tolist() == [3.0]  # BCE pos_weight: negatives / positives
