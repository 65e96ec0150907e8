"""Two views of each 10 s window, made in batches on the training device.

For each subject (one store row): view 1 is a random usable lead; view 2 is the same lead with probability 0.8,
else another usable lead of the same record. Each view independently gets, with probability 1/5 each, no noise
or real noise of one of four kinds (muscle, electrode motion, baseline wander, their mixture) scaled to an RMS
of 0.1 mV; then, with probability 0.2, a zero mask over 10-30 % of the window; then the z-score of the
inference pipeline. This follows the authors' ``ecg_positive_augmentation`` (noise added to the band-passed
signal in mV, mask before the z-score); the authors redraw the second lead uniformly (so it is the same lead
with probability 0.8 + 0.2 / n_leads), here "another lead" is always another one.

All randomness of a step is drawn on the CPU from ``(seed, step)`` for the whole global batch and then sliced by
process, so a step's views do not depend on the number of processes, and a resumed run draws what an
uninterrupted one would have drawn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .._optional import require
from ..constants import TARGET_FS, WINDOW_SAMPLES
from ..resampling import resample_to_target
from ..torch_preprocessing import zscore_torch

__all__ = ["NOISE_KINDS", "NSTDB_RECORDS", "NoiseBank", "ViewConfig", "ViewSampler", "step_generator"]

NOISE_KINDS = ("muscle", "electrode_motion", "baseline_wander", "mixture")
# The PhysioNet MIT-BIH Noise Stress Test Database's noise-only records, by kind (the mixture is their sum).
NSTDB_RECORDS = {"muscle": "ma", "electrode_motion": "em", "baseline_wander": "bw"}


@dataclass(frozen=True)
class ViewConfig:
    """The augmentation settings (the authors' values by default)."""

    same_lead_probability: float = 0.8
    noise_rms_mv: float = 0.1
    mask_probability: float = 0.2
    mask_fraction: tuple[float, float] = (0.1, 0.3)


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator for one training step, well mixed from ``(seed, step)``."""
    state = np.random.SeedSequence([int(seed), int(step)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class NoiseBank:
    """Noise recordings at 500 Hz, ``noise`` ``(4, n_channels, n_samples)`` float32 in the order of
    `NOISE_KINDS`, each channel scaled to unit standard deviation; ``source`` says where it came from."""

    def __init__(self, noise: torch.Tensor, source: str):
        if noise.ndim != 3 or noise.shape[0] != len(NOISE_KINDS) or noise.shape[-1] < WINDOW_SAMPLES:
            raise ValueError(
                f"noise must be ({len(NOISE_KINDS)}, n_channels, >= {WINDOW_SAMPLES}), got {tuple(noise.shape)}"
            )
        self.noise = noise
        self.source = source

    @staticmethod
    def _stack(kinds: list[np.ndarray], source: str) -> NoiseBank:
        """Three recordings (muscle, electrode motion, baseline wander), each (channels, samples) -> a bank."""
        length = min(k.shape[-1] for k in kinds)
        channels = min(k.shape[0] for k in kinds)
        parts = [k[:channels, :length] for k in kinds]
        parts = [p / p.std(axis=-1, keepdims=True) for p in parts]
        parts.append(sum(parts[1:], start=parts[0]))  # the mixture
        bank = np.stack([p / p.std(axis=-1, keepdims=True) for p in parts]).astype(np.float32)
        return NoiseBank(torch.from_numpy(bank), source)

    @classmethod
    def from_nstdb(cls, folder: str | os.PathLike[str]) -> NoiseBank:
        """The ``ma``, ``em`` and ``bw`` records of the MIT-BIH Noise Stress Test Database (PhysioNet), as
        downloaded (WFDB, 360 Hz, two channels), resampled to 500 Hz."""
        wfdb = require("wfdb", "reading the NSTDB noise records")

        folder = Path(folder)
        kinds = []
        for kind, name in NSTDB_RECORDS.items():
            if not (folder / f"{name}.hea").is_file():
                raise FileNotFoundError(
                    f"{folder} has no {name}.hea: point to the folder holding the noise stress test records ma, em "
                    "and bw (https://physionet.org/content/nstdb/), or leave the noise folder out to use the "
                    "synthetic fallback"
                )
            record = wfdb.rdrecord(str(folder / name))
            signal = np.nan_to_num(record.p_signal.T.astype(np.float64))
            if record.fs != TARGET_FS:
                signal = np.stack([resample_to_target(channel, float(record.fs)) for channel in signal])
            if signal.shape[-1] < WINDOW_SAMPLES or not (signal.std(axis=-1) > 0).all():
                raise ValueError(
                    f"{folder / name}: {kind} noise must hold at least 10 s of non-constant signal per channel"
                )
            kinds.append(signal)
        return cls._stack(kinds, f"nstdb:{folder}")

    @classmethod
    def synthetic(cls, seconds: float = 60.0, channels: int = 2, seed: int = 0) -> NoiseBank:
        """The fallback when no noise records are given, made with neurokit2's ``signal_distort`` (seeded) at
        2 kHz and resampled to 500 Hz: muscle = Laplace noise at 100 and 200 Hz (mostly 15-250 Hz); electrode
        motion = artefact bursts over 1-3 Hz noise; baseline wander = Gaussian noise at 0.15-0.5 Hz. Real
        recordings are better: see `from_nstdb`."""
        import neurokit2 as nk

        rate = 4 * TARGET_FS  # neurokit2 makes noise up to a tenth of the sampling rate
        n = int(seconds * rate)
        settings = {
            "muscle": {"noise_shape": "laplace", "noise_amplitude": 1.0, "noise_frequency": [100, 200]},
            "electrode_motion": {
                "noise_amplitude": 0.3,
                "noise_frequency": [1, 3],
                "artifacts_amplitude": 1.0,
                "artifacts_frequency": 2,
                "artifacts_number": max(1, int(seconds / 6)),
            },
            "baseline_wander": {"noise_shape": "gaussian", "noise_amplitude": 1.0, "noise_frequency": [0.15, 0.3, 0.5]},
        }
        kinds = []
        for k, options in enumerate(settings.values()):
            kinds.append(
                np.stack(
                    [
                        resample_to_target(
                            nk.signal_distort(
                                np.zeros(n),
                                sampling_rate=rate,
                                silent=True,
                                random_state=seed * 1000 + 10 * k + c,
                                **options,
                            ),
                            rate,
                        )
                        for c in range(channels)
                    ]
                )
            )
        return cls._stack(kinds, f"synthetic:neurokit2(seed={seed}, {seconds:g} s, {channels} channels)")


class ViewSampler(nn.Module):
    """Makes the two views of a batch of store rows; the noise bank lives on the module's device."""

    noise: torch.Tensor  # (4, n_channels, n_samples) buffer, see NoiseBank

    def __init__(self, bank: NoiseBank, config: ViewConfig | None = None):
        super().__init__()
        self.config = config or ViewConfig()
        self.register_buffer("noise", bank.noise, persistent=False)  # rebuilt from its source, not checkpointed
        self.noise_source = bank.source

    def draw(self, global_batch: int, seed: int, step: int) -> dict[str, torch.Tensor]:
        """Every random choice of one step for ``global_batch`` subjects, on the CPU (rows: subjects)."""
        g = step_generator(seed, step)
        c = self.config
        kinds, channels, length = self.noise.shape
        low, high = c.mask_fraction
        return {
            "lead_u": torch.rand(global_batch, generator=g, dtype=torch.float64),
            "other_lead_u": torch.rand(global_batch, generator=g, dtype=torch.float64),
            "same_lead": torch.rand(global_batch, generator=g) < c.same_lead_probability,
            "augmentation": torch.randint(0, kinds + 1, (global_batch, 2), generator=g),  # 0: no noise
            "channel": torch.randint(0, channels, (global_batch, 2), generator=g),
            "offset": torch.randint(0, length - WINDOW_SAMPLES + 1, (global_batch, 2), generator=g),
            "mask": torch.rand(global_batch, 2, generator=g) < c.mask_probability,
            "mask_fraction": low + (high - low) * torch.rand(global_batch, 2, generator=g, dtype=torch.float64),
            "mask_start_u": torch.rand(global_batch, 2, generator=g, dtype=torch.float64),
        }

    @staticmethod
    def _pick(available: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Index of the k-th True per row, k = floor(u * count): a uniform choice among the available leads."""
        count = available.sum(dim=1)
        k = torch.clamp((u * count).long(), max=count - 1)
        return (available.cumsum(dim=1) > k[:, None]).to(torch.uint8).argmax(dim=1)

    def forward(
        self, windows: torch.Tensor, available: torch.Tensor, choices: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``windows`` ``(B, n_leads, 5000)`` (mV), ``available`` ``(B, n_leads)`` bool, ``choices`` from
        `draw` for these B rows. Returns two float32 ``(B, 5000)`` z-scored views."""
        if not available.any(dim=1).all():
            raise ValueError("every row needs at least one available lead")
        device = windows.device
        choices = {k: v.to(device) for k, v in choices.items()}
        rows = torch.arange(len(windows), device=device)
        first = self._pick(available, choices["lead_u"])
        others = available.clone()
        others[rows, first] = False
        has_other = others.any(dim=1)
        second = torch.where(
            choices["same_lead"] | ~has_other,
            first,
            self._pick(torch.where(has_other[:, None], others, available), choices["other_lead_u"]),
        )
        views = torch.stack([windows[rows, first], windows[rows, second]], dim=1).float()  # (B, 2, T)
        views = views + self._noise(choices)
        views = self._mask(views, choices)
        views = zscore_torch(views)
        return views[:, 0], views[:, 1]

    def _noise(self, choices: dict[str, torch.Tensor]) -> torch.Tensor:
        kinds, channels, length = self.noise.shape
        augmentation = choices["augmentation"]
        kind = (augmentation - 1).clamp(min=0)
        start = (kind * channels + choices["channel"]) * length + choices["offset"]  # (B, 2) in the flat bank
        index = start[..., None] + torch.arange(WINDOW_SAMPLES, device=start.device)
        segment = self.noise.reshape(-1)[index]  # (B, 2, T)
        # the authors scale each segment by its own standard deviation (not removing its mean)
        scale = self.config.noise_rms_mv / segment.std(dim=-1, unbiased=False, keepdim=True).clamp_min(1e-12)
        return segment * scale * (augmentation > 0)[..., None]

    @staticmethod
    def _mask(views: torch.Tensor, choices: dict[str, torch.Tensor]) -> torch.Tensor:
        length = (choices["mask_fraction"] * WINDOW_SAMPLES).long()
        start = (choices["mask_start_u"] * (WINDOW_SAMPLES - length + 1)).long()
        position = torch.arange(WINDOW_SAMPLES, device=views.device)
        inside = (position >= start[..., None]) & (position < (start + length)[..., None]) & choices["mask"][..., None]
        return views.masked_fill(inside, 0.0)
