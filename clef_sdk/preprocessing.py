"""Pretraining-exact ECG preprocessing, in pure numpy/scipy.

The CLEF models were pretrained on 10 s windows of one lead at 500 Hz, each window:
1. NaNs filled by linear interpolation over the sample index (an all-NaN window becomes zeros);
2. band-passed by a Butterworth order-5 0.67-40 Hz filter applied forwards and backwards (``filtfilt``
   with scipy's default padding) in transfer-function (b/a) form, computed exactly ([`clef_sdk.filters`][clef_sdk.filters])
   rather than with the float64 recursion, whose round-off differs between machines;
3. z-scored: ``(y - mean) / (std + 1e-8)`` with the population std.

Other sampling rates are first resampled to 500 Hz over the whole recording (polyphase, rational ratio);
windows are then consecutive from sample 0. `iter_windows` produces the windows chunk by chunk, each chunk
resampling only the stretch it covers ([`clef_sdk.resampling`][clef_sdk.resampling]), so recordings of any length, memory-mapped
ones included, are processed in bounded memory with the same windows as resampling them whole.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .constants import WINDOW_SAMPLES, ZSCORE_EPS
from .filters import bandpass
from .inputs import TailMode, as_recordings, check_signal, per_record_fs
from .resampling import Recording
from .windows import WindowPlan, missing_fractions, plan_windows, raw_windows, warn_about_windows

__all__ = [
    "filter_windows",
    "iter_planned_windows",
    "iter_windows",
    "preprocess",
    "preprocess_chunk",
    "preprocess_windows",
    "zscore",
]


def _interpolate_nan(x: np.ndarray) -> np.ndarray:
    """Linear interpolation of NaNs over the sample index of 1-D ``x`` (edges hold the nearest value)."""
    nan_mask = np.isnan(x)
    if not nan_mask.any():
        return x
    if nan_mask.all():
        return np.zeros_like(x)
    out = x.copy()
    valid = np.flatnonzero(~nan_mask)
    out[nan_mask] = np.interp(np.flatnonzero(nan_mask), valid, x[valid])
    return out


def preprocess_windows(windows: np.ndarray, *, valid_samples: np.ndarray | None = None) -> np.ndarray:
    """Apply NaN filling, band-pass and z-score to windows ``(n_windows, 5000)`` at 500 Hz.

    ``valid_samples`` (per window) marks windows whose real signal ends early (padded tails): only that
    prefix is filtered and normalised, and the rest is set to 0, the normalised signal's mean.
    Returns float32 ``(n_windows, 5000)``.
    """
    windows = np.asarray(windows, dtype=np.float64)
    if windows.ndim != 2 or windows.shape[1] != WINDOW_SAMPLES:
        raise ValueError(f"expected windows of shape (n_windows, {WINDOW_SAMPLES}), got {windows.shape}")
    if valid_samples is None:
        valid_samples = np.full(len(windows), WINDOW_SAMPLES)
    out = np.zeros(windows.shape, dtype=np.float32)
    full = valid_samples == WINDOW_SAMPLES
    if full.any():
        out[full] = _filter_and_normalise(windows[full])
    for index in np.flatnonzero(~full):
        n = int(valid_samples[index])
        out[index, :n] = _filter_and_normalise(windows[index : index + 1, :n])[0]
    return out


def filter_windows(windows: np.ndarray) -> np.ndarray:
    """Steps 1-2 of the pipeline without the z-score: NaNs filled per window, then the exact band-pass.

    ``windows`` ``(..., n)`` at 500 Hz, ``34 <= n <= 5000``, in any unit; returns float64 in the same unit
    (pretraining data preparation keeps millivolts so that augmentations can add noise at a physical level).
    """
    windows = np.asarray(windows, dtype=np.float64)
    if np.isnan(windows).any():
        rows = windows.reshape(-1, windows.shape[-1])
        windows = np.array([_interpolate_nan(w) for w in rows]).reshape(windows.shape)
    return bandpass(windows)


def zscore(windows: np.ndarray) -> np.ndarray:
    """Step 3: ``(y - mean) / (std + 1e-8)`` per window (last axis), population std; float32."""
    mean = windows.mean(axis=-1, keepdims=True)
    std = windows.std(axis=-1, keepdims=True)
    return ((windows - mean) / (std + ZSCORE_EPS)).astype(np.float32)


def _filter_and_normalise(windows: np.ndarray) -> np.ndarray:
    return zscore(filter_windows(windows))


def iter_windows(
    signal: object,
    fs: float,
    *,
    stride_seconds: float | None = None,
    tail: TailMode = "drop",
    chunk_size: int = 256,
    name: str = "signal",
) -> Iterator[np.ndarray]:
    """Yield preprocessed windows of one recording in chunks of ``(<= chunk_size, 5000)`` float32.

    Same arguments as `preprocess`; concatenating the chunks gives its output. Arguments are validated
    before the first chunk is produced.
    """
    array = check_signal(signal, name)
    fs = per_record_fs(fs, [array])[0]
    plan = plan_windows(array.shape[0], fs, stride_seconds=stride_seconds, tail=tail)
    return iter_planned_windows(array, fs, plan, chunk_size=chunk_size, name=name)


def iter_planned_windows(
    array: np.ndarray, fs: float, plan: WindowPlan, *, chunk_size: int = 256, name: str = "signal"
) -> Iterator[np.ndarray]:
    """Like `iter_windows` for a recording already checked by `check_signal` and planned.

    Each chunk resamples only the stretch its windows cover ([`clef_sdk.resampling.Recording`][clef_sdk.resampling.Recording]), so memory
    stays bounded for recordings of any length and the windows equal those of resampling the whole recording.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    recording = Recording.at_rate(array, fs)
    for first, starts, valid in plan.chunks(chunk_size):
        yield preprocess_chunk(recording, starts, valid, first, name)


def preprocess_chunk(recording: Recording, starts: np.ndarray, valid: np.ndarray, first: int, name: str) -> np.ndarray:
    """The preprocessed windows ``(len(starts), 5000)`` at 500 Hz ``starts`` of ``recording``, warning about the
    windows that carry no ECG (``first``: the index of the first, ``name``: the recording, for the message)."""
    raw = raw_windows(recording, starts, valid)
    warn_about_windows(missing_fractions(raw, valid), recording.flat(starts, valid), first, name)
    return preprocess_windows(raw, valid_samples=valid)


def preprocess(
    signal: object,
    fs: float | list[float],
    *,
    stride_seconds: float | None = None,
    tail: TailMode = "drop",
) -> np.ndarray | list[np.ndarray]:
    """Preprocess single-lead recordings exactly as CLEF was pretrained.

    Args:
        signal: one lead ``(n_samples,)``; or several recordings, ``(n_records, n_samples)`` or a list of 1-D
            recordings of any lengths. Any unit (mV, µV, ADC counts); NaNs are interpolated.
        fs: sampling rate in Hz, 50 to 10,000 (non-integer rates such as 128.5 are fine); one for all recordings
            or one per recording.
        stride_seconds: distance between window starts; default 10 s (consecutive windows from sample 0).
        tail: the end shorter than a window: ``"drop"`` (default), ``"pad"`` or ``"last"`` (see `plan_windows`).

    Returns:
        float32 10 s windows at 500 Hz, band-passed and z-scored: ``(n_windows, 5000)`` for one recording; for a
        2-D array, one stacked ``(n_records, n_windows, 5000)`` array (its rows have one length, so one window count,
        unless their rates differ: then a list); for a list of recordings, a list of ``(n_windows_i, 5000)`` arrays.
    """
    recordings, single = as_recordings(signal)
    rates = per_record_fs(fs, recordings)
    name = (lambda i: "signal") if single else (lambda i: f"recording {i}")
    # as_recordings has checked each recording and per_record_fs each rate: plan them here, not in iter_windows,
    # which would scan every recording again
    windows = [
        np.concatenate(
            list(
                iter_planned_windows(
                    recording,
                    rate,
                    plan_windows(recording.shape[0], rate, stride_seconds=stride_seconds, tail=tail),
                    name=name(i),
                )
            )
        )
        for i, (recording, rate) in enumerate(zip(recordings, rates))
    ]
    if single:
        return windows[0]
    if isinstance(signal, (list, tuple)) or len({len(w) for w in windows}) > 1:
        return windows
    return np.stack(windows)
