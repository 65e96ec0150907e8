"""Where the 10 s windows of a recording lie, and the raw 500 Hz windows before filtering.

Windows are planned on the 500 Hz time axis from sample 0 (consecutive by default, as in pretraining); a
`WindowPlan` says where each starts and how many real samples it holds (fewer for a padded tail).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .constants import MIN_PAD_SECONDS, TARGET_FS, WINDOW_SAMPLES, WINDOW_SECONDS
from .errors import PreprocessingWarning
from .inputs import TAIL_MODES, TailMode, check_choice, stride_samples
from .resampling import Recording, resampled_length

__all__ = ["MOSTLY_MISSING", "WindowPlan", "missing_fractions", "plan_windows", "raw_windows", "warn_about_windows"]


@dataclass(frozen=True)
class WindowPlan:
    """Where the windows of one resampled recording start, and how many real samples each holds."""

    starts: np.ndarray
    valid_samples: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    def chunks(self, size: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """``(index of the first window, starts, valid samples)`` for consecutive chunks of ``size`` windows."""
        for first in range(0, len(self), size):
            yield first, self.starts[first : first + size], self.valid_samples[first : first + size]


def plan_windows(
    n_samples: int, fs: float, *, stride_seconds: float | None = None, tail: TailMode = "drop"
) -> WindowPlan:
    """Plan the 10 s windows of a recording of ``n_samples`` at ``fs`` Hz (positions at 500 Hz).

    ``stride_seconds``: distance between window starts (default 10 s: consecutive, no overlap).
    ``tail``: what to do with the end shorter than a window: ``"drop"`` it (the pretraining default),
    ``"pad"`` it (filtered and normalised on its own, then zero-padded; needs at least 1 s), or add a
    ``"last"`` window aligned with the end of the recording (overlapping the one before).
    A recording shorter than one window raises ``ValueError`` unless ``tail="pad"``.
    """
    tail = check_choice(tail, TAIL_MODES, "tail")
    stride = stride_samples(stride_seconds)
    length = resampled_length(n_samples, fs)
    min_pad = int(MIN_PAD_SECONDS * TARGET_FS)
    if length < WINDOW_SAMPLES:
        duration = n_samples / fs
        if tail != "pad":
            raise ValueError(
                f"the recording lasts {duration:.2f} s, shorter than one {WINDOW_SECONDS} s window; "
                f"pass tail='pad' to zero-pad it (needs at least {MIN_PAD_SECONDS:g} s), or record longer"
            )
        if length < min_pad:
            raise ValueError(
                f"the recording lasts {duration:.3f} s; even with tail='pad' at least {MIN_PAD_SECONDS:g} s is needed"
            )
        return WindowPlan(np.array([0]), np.array([length]))
    starts = np.arange(0, length - WINDOW_SAMPLES + 1, stride)
    valid = np.full(len(starts), WINDOW_SAMPLES)
    covered = int(starts[-1]) + WINDOW_SAMPLES
    if covered < length:
        next_start = int(starts[-1]) + stride
        if tail == "last":
            starts = np.append(starts, length - WINDOW_SAMPLES)
            valid = np.append(valid, WINDOW_SAMPLES)
        elif tail == "pad" and length - next_start >= min_pad:
            starts = np.append(starts, next_start)
            valid = np.append(valid, length - next_start)
    return WindowPlan(starts, valid)


def raw_windows(recording: Recording, starts: np.ndarray, valid_samples: np.ndarray) -> np.ndarray:
    """The 500 Hz windows at ``starts`` before filtering: ``(len(starts), 5000)`` float64, NaN past each window's
    ``valid_samples`` and where the recording has gaps."""
    span_start, span_stop = int(starts.min()), int((starts + valid_samples).max())
    span = recording.resampled(span_start, span_stop)
    raw = np.full((len(starts), WINDOW_SAMPLES), np.nan)
    for row, (start, n_valid) in enumerate(zip(starts - span_start, valid_samples)):
        raw[row, :n_valid] = span[start : start + n_valid]
    return raw


# A window with more than this fraction of its samples missing is mostly interpolation, not ECG.
MOSTLY_MISSING = 0.5


def missing_fractions(raw: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The fraction of each window's valid samples that is NaN (``raw`` as from `raw_windows`)."""
    real = np.arange(WINDOW_SAMPLES)[None, :] < valid[:, None]
    return (real & np.isnan(raw)).sum(axis=1) / np.maximum(valid, 1)


def warn_about_windows(missing: np.ndarray, flat: np.ndarray, offset: int, name: str) -> None:
    """One [`PreprocessingWarning`][clef_sdk.errors.PreprocessingWarning] per kind for the windows whose samples are missing
    (``missing``: the NaN fraction of each, see `missing_fractions`) or ``flat`` (constant recorded values,
    see [`clef_sdk.resampling.Recording.flat`][clef_sdk.resampling.Recording.flat])."""
    empty, gappy = missing >= 1, (missing > MOSTLY_MISSING) & (missing < 1)
    kinds = (
        ("entirely NaN (embedded as zeros, as in pretraining)", empty),
        (f"more than {MOSTLY_MISSING:.0%} NaN (mostly interpolated)", gappy),
        ("constant (flat)", flat & ~empty),
    )
    for kind, rows in kinds:
        if rows.any():
            indices = (np.flatnonzero(rows) + offset).tolist()
            shown = ", ".join(map(str, indices[:10])) + (" ..." if len(indices) > 10 else "")
            warnings.warn(
                f"{name}: {len(indices)} window(s) are {kind} and carry no ECG: window index {shown}. "
                "Check for lead-off or dropout; drop these windows or use pooling=None to inspect them.",
                PreprocessingWarning,
                stacklevel=5,
            )
