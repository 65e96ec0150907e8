"""Views on real store rows: lead choice, noise level and kind, masks, z-score, determinism per (seed, step),
independence from how the global batch is split, and the noise banks (NSTDB-format records and the fallback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from clef_sdk.constants import TARGET_FS
from clef_sdk.train.views import NOISE_KINDS, NoiseBank, ViewConfig, ViewSampler, step_generator

pytest.importorskip("neurokit2")


@pytest.fixture(scope="module")
def bank() -> NoiseBank:
    return NoiseBank.synthetic(seconds=30, channels=2, seed=0)


@pytest.fixture(scope="module")
def batch(ludb_store: Path) -> dict[str, torch.Tensor]:
    from clef_sdk.train.data import PretrainingStore

    store = PretrainingStore(ludb_store)
    windows = torch.from_numpy(np.array(store.windows[:16]))  # a copy: the store is a read-only memory map
    available = torch.ones(16, 12, dtype=torch.bool)
    available[0, :11] = False  # only V6
    available[1, [0, 7]] = False
    windows[1, [0, 7]] = float("nan")  # what the store holds for an unusable lead
    return {"windows": windows, "available": available}


def _no_augmentation(choices: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {
        **choices,
        "augmentation": torch.zeros_like(choices["augmentation"]),
        "mask": torch.zeros_like(choices["mask"]),
    }


def test_views_are_z_scored_leads_of_the_same_record(bank: NoiseBank, batch: dict) -> None:
    sampler = ViewSampler(bank)
    choices = _no_augmentation(sampler.draw(16, seed=0, step=0))
    x1, x2 = sampler(batch["windows"], batch["available"], choices)
    assert x1.shape == x2.shape == (16, 5000) and x1.dtype == torch.float32
    assert torch.isfinite(x1).all() and torch.isfinite(x2).all()
    torch.testing.assert_close(x1.mean(1), torch.zeros(16), atol=1e-5, rtol=0)
    torch.testing.assert_close(x1.std(1, unbiased=False), torch.ones(16), atol=1e-4, rtol=0)
    windows = batch["windows"].float()
    for row in range(16):
        candidates = [
            (windows[row, lead] - windows[row, lead].mean()) / windows[row, lead].std(unbiased=False)
            for lead in np.flatnonzero(batch["available"][row])
        ]
        for view in (x1[row], x2[row]):
            assert min(float((view - c).abs().max()) for c in candidates) <= 1e-4  # one of the record's usable leads
    torch.testing.assert_close(x1[0], x2[0])  # a single usable lead: both views use it


def test_lead_choice_frequencies(bank: NoiseBank) -> None:
    """P(same lead) = 0.8; otherwise another usable lead, uniformly; unusable leads never chosen."""
    sampler = ViewSampler(bank)
    n = 4000
    windows = torch.arange(12, dtype=torch.float32)[None, :, None].expand(n, 12, 5000).clone()
    windows += torch.randn(n, 12, 5000, generator=torch.Generator().manual_seed(0)) * 1e-3  # not constant
    available = torch.ones(n, 12, dtype=torch.bool)
    available[:, 5] = False
    choices = _no_augmentation(sampler.draw(n, seed=1, step=0))
    first = sampler._pick(available, choices["lead_u"])
    assert not (first == 5).any()
    counts = torch.bincount(first, minlength=12).float() / n
    assert counts[5] == 0 and (counts[available[0]] - 1 / 11).abs().max() < 0.02  # binomial sd 0.0044
    x1, x2 = sampler(windows, available, choices)
    same = (x1 - x2).abs().max(dim=1).values < 1e-3
    assert abs(same.float().mean().item() - 0.8) < 0.03  # binomial sd 0.0063
    assert torch.equal(same, choices["same_lead"])


def test_noise_level_kinds_and_masks(bank: NoiseBank) -> None:
    sampler = ViewSampler(bank)
    n = 200
    choices = sampler.draw(n, seed=2, step=5)
    noise = sampler._noise(choices)
    has_noise = choices["augmentation"] > 0
    rms = noise.std(dim=-1, unbiased=False)
    torch.testing.assert_close(rms[has_noise], torch.full((int(has_noise.sum()),), 0.1), atol=1e-5, rtol=0)
    assert (noise[~has_noise] == 0).all()
    frequencies = torch.bincount(choices["augmentation"].flatten(), minlength=5).float() / (2 * n)
    assert (frequencies - 0.2).abs().max() < 0.06  # five choices, 400 draws
    views = sampler._mask(torch.ones(n, 2, 5000), choices)
    zeros = (views == 0).sum(dim=-1)
    masked = choices["mask"]
    assert (zeros[~masked] == 0).all()
    assert ((zeros[masked] >= 500) & (zeros[masked] <= 1500)).all()  # 10-30 % of 5000 samples
    assert abs(masked.float().mean().item() - 0.2) < 0.06
    # the masked stretch is contiguous
    for row, view in zip(*torch.nonzero(masked, as_tuple=True)):
        where = torch.nonzero(views[row, view] == 0).flatten()
        assert int(where[-1] - where[0] + 1) == len(where)


def test_same_seed_and_step_same_views_and_split_invariance(bank: NoiseBank, batch: dict) -> None:
    sampler = ViewSampler(bank)
    whole = sampler(batch["windows"], batch["available"], sampler.draw(16, seed=3, step=7))
    again = sampler(batch["windows"], batch["available"], sampler.draw(16, seed=3, step=7))
    other_step = sampler(batch["windows"], batch["available"], sampler.draw(16, seed=3, step=8))
    torch.testing.assert_close(whole, again, rtol=0, atol=0)
    assert not torch.allclose(whole[0], other_step[0])
    # two processes of 8 rows each slice the same global draw: the same views as one process of 16
    choices = sampler.draw(16, seed=3, step=7)
    for rank in range(2):
        rows = slice(8 * rank, 8 * rank + 8)
        part = sampler(batch["windows"][rows], batch["available"][rows], {k: v[rows] for k, v in choices.items()})
        torch.testing.assert_close(part[0], whole[0][rows], rtol=0, atol=0)
        torch.testing.assert_close(part[1], whole[1][rows], rtol=0, atol=0)


def test_rows_without_any_usable_lead_are_refused(bank: NoiseBank, batch: dict) -> None:
    sampler = ViewSampler(bank)
    with pytest.raises(ValueError, match="at least one available lead"):
        sampler(batch["windows"][:2], torch.zeros(2, 12, dtype=torch.bool), sampler.draw(2, seed=0, step=0))


def test_step_generator_mixes_seed_and_step() -> None:
    draws = {
        tuple(torch.rand(3, generator=step_generator(seed, step)).tolist()) for seed in range(3) for step in range(3)
    }
    assert len(draws) == 9
    assert torch.equal(torch.rand(3, generator=step_generator(5, 9)), torch.rand(3, generator=step_generator(5, 9)))


def _band_fraction(x: np.ndarray, low: float, high: float) -> float:
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / TARGET_FS)
    return float(power[(freqs >= low) & (freqs <= high)].sum() / power.sum())


def test_synthetic_bank_kinds_and_determinism(bank: NoiseBank) -> None:
    assert bank.noise.shape == (4, 2, 30 * TARGET_FS) and bank.noise.dtype == torch.float32
    torch.testing.assert_close(bank.noise.std(dim=-1), torch.ones(4, 2), atol=1e-3, rtol=0)
    assert torch.equal(NoiseBank.synthetic(seconds=30, channels=2, seed=0).noise, bank.noise)
    noise = {kind: bank.noise[k, 0].numpy().astype(np.float64) for k, kind in enumerate(NOISE_KINDS)}
    assert _band_fraction(noise["baseline_wander"], 0, 1.0) > 0.9
    assert _band_fraction(noise["muscle"], 15, 250) > 0.7  # measured 0.75
    assert "synthetic" in bank.source


def test_bank_from_noise_stress_test_records(tmp_path: Path, bank: NoiseBank) -> None:
    """Records laid out as PhysioNet ships them (WFDB ``ma``, ``em``, ``bw``; 360 Hz, 2 channels) are read and
    resampled to 500 Hz. (The real records are not in ../shared: these carry the synthetic noise.)"""
    wfdb = pytest.importorskip("wfdb")
    from scipy import signal as sps

    for k, name in enumerate(("ma", "em", "bw")):
        at_360 = sps.resample_poly(bank.noise[k].numpy().astype(np.float64), 18, 25, axis=-1)
        wfdb.wrsamp(
            name,
            fs=360,
            units=["mV", "mV"],
            sig_name=["noise1", "noise2"],
            p_signal=at_360.T * 0.3,
            fmt=["212", "212"],
            adc_gain=[200.0, 200.0],
            baseline=[1024, 1024],
            write_dir=str(tmp_path),
        )
    loaded = NoiseBank.from_nstdb(tmp_path)
    assert loaded.noise.shape[:2] == (4, 2) and abs(loaded.noise.shape[-1] - 30 * TARGET_FS) <= 2
    assert loaded.source == f"nstdb:{tmp_path}"
    for k in range(3):
        correlation = np.corrcoef(loaded.noise[k, 0, 100:14000].numpy(), bank.noise[k, 0, 100:14000].numpy())[0, 1]
        assert correlation > 0.95  # the same noise after a round trip 500 -> 360 -> 500 Hz and 212 quantisation
    (tmp_path / "bw.hea").unlink()
    with pytest.raises(FileNotFoundError, match="has no bw.hea"):
        NoiseBank.from_nstdb(tmp_path)


def test_bank_shape_is_checked() -> None:
    with pytest.raises(ValueError, match="noise must be"):
        NoiseBank(torch.zeros(3, 2, 6000), "x")
    with pytest.raises(ValueError, match="noise must be"):
        NoiseBank(torch.zeros(4, 2, 100), "x")


def test_config_defaults_are_the_authors() -> None:
    assert ViewConfig() == ViewConfig(
        same_lead_probability=0.8, noise_rms_mv=0.1, mask_probability=0.2, mask_fraction=(0.1, 0.3)
    )
