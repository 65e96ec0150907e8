"""Pretraining-exact ECG preprocessing, in pure numpy/scipy.

The CLEF models were pretrained on 10 s windows of one lead at 500 Hz, each window:
1. NaNs filled by linear interpolation over the sample index (an all-NaN window becomes zeros);
2. band-passed by a Butterworth order-5 0.67-40 Hz filter applied forwards and backwards (``filtfilt``
   with scipy's default padding) in transfer-function (b/a) form, computed exactly (:mod:`clef_sdk.filters`)
   rather than with the float64 recursion, whose round-off differs between machines;
3. z-scored: ``(y - mean) / (std + 1e-8)`` with the population std.

Other sampling rates are first resampled to 500 Hz over the whole recording (polyphase, rational ratio);
windows are then consecutive from sample 0. :func:`iter_windows` produces the windows chunk by chunk, each chunk
resampling only the stretch it covers (:mod:`clef_sdk.streaming`), so recordings of any length, memory-mapped
ones included, are processed in bounded memory with the same windows as resampling them whole.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from numbers import Real
from typing import Literal

import numpy as np

from .filters import bandpass
from .streaming import BLOCK_SAMPLES, Recording, is_array_like_signal

__all__ = [
    "MAX_FS",
    "MIN_FS",
    "PREPROCESSING",
    "TARGET_FS",
    "WINDOW_SAMPLES",
    "PreprocessingWarning",
    "WindowPlan",
    "as_recordings",
    "check_fs",
    "check_signal",
    "filter_windows",
    "iter_planned_windows",
    "all_nan_windows",
    "preprocess_chunk",
    "raw_windows",
    "iter_windows",
    "per_record_fs",
    "plan_windows",
    "preprocess",
    "preprocess_windows",
    "resample_to_target",
    "zscore",
]

TARGET_FS = 500
WINDOW_SECONDS = 10
WINDOW_SAMPLES = TARGET_FS * WINDOW_SECONDS
BANDPASS_HZ = (0.67, 40.0)
FILTER_ORDER = 5
ZSCORE_EPS = 1e-8
MIN_FS = 50.0
MAX_FS = 10_000.0
# A padded tail must hold at least this much signal: filtfilt needs more than 33 samples and a z-score over
# a shorter stretch says nothing about the heart.
MIN_PAD_SECONDS = 1.0
# Rational approximation of 500 / fs: the effective rate may differ from the nominal one by this much.
RESAMPLE_RATIO_TOLERANCE = 1e-9

TailMode = Literal["drop", "pad", "last"]
TAIL_MODES: tuple[str, ...] = ("drop", "pad", "last")

PREPROCESSING: dict[str, object] = {
    "target_fs_hz": TARGET_FS,
    "window_samples": WINDOW_SAMPLES,
    "nan": "linear interpolation per window; all-NaN window -> zeros",
    "bandpass": {
        "type": "butterworth",
        "order": FILTER_ORDER,
        "low_hz": BANDPASS_HZ[0],
        "high_hz": BANDPASS_HZ[1],
        "form": "ba",
        "application": "scipy.signal.filtfilt per window, default padding",
    },
    "normalization": {"type": "zscore", "std": "population", "eps": ZSCORE_EPS},
    "resampling": "scipy.signal.resample_poly over the whole recording, padtype='mean'",
}


class PreprocessingWarning(UserWarning):
    """A window carries no usable ECG (all NaN, or constant); it is embedded as the pretraining code would."""


def check_fs(fs: object, name: str = "fs") -> float:
    """Validate a sampling rate in Hz and return it as a float."""
    if fs is None:
        raise TypeError(
            f"{name} (the sampling rate in Hz) is required, e.g. fs=500 for a 500 Hz recording; "
            "it is in the recording's header or the device's documentation"
        )
    if isinstance(fs, (bool, np.bool_)) or not isinstance(fs, (Real, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number in Hz, got {type(fs).__name__} {fs!r}")
    value = float(fs)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive, finite sampling rate in Hz, got {fs!r}")
    if not MIN_FS <= value <= MAX_FS:
        raise ValueError(
            f"{name}={value:g} Hz is outside the supported {MIN_FS:g}-{MAX_FS:g} Hz; check the unit "
            "(Hz, not kHz or a sampling period) or resample the recording yourself first"
        )
    return value


def tensor_to_numpy(value: object, name: str = "signal") -> object:
    """A torch tensor as numpy (anything else unchanged); a tensor that requires grad is refused, because the
    numpy path would cut the autograd graph without a word."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor, without importing torch here
        if getattr(value, "requires_grad", False):
            raise TypeError(
                f"{name} requires grad, and clef.embed / clef.preprocess return numpy arrays, which would silently "
                "cut the graph; inside a model use clef.Preprocessor(fs) and the encoder instead: "
                "encoder(clef.Preprocessor(fs)(x).reshape(-1, 1, 5000)) (or pass x.detach() to embed without gradients)"
            )
        return value.detach().cpu().numpy()
    return value


def check_signal(signal: object, name: str = "signal") -> np.ndarray:
    """Validate one recording ``(n_samples,)`` and return it without copying.

    Accepts numpy arrays (memory-mapped ones included), array-likes and torch tensors of real numbers (integer
    ADC counts included: the z-score makes units irrelevant), and 1-D array-likes read by slicing
    (:class:`clef_sdk.streaming.WfdbSignal`, h5py datasets), which are scanned block by block and never loaded
    whole. NaNs are allowed (interpolated later); infinities are not. Samples are converted to float64 as they
    are read.
    """
    if is_array_like_signal(signal):
        array = signal
    else:
        signal = tensor_to_numpy(signal, name)
        array = np.asarray(signal) if not isinstance(signal, np.ndarray) else signal
    if array.dtype == object:
        raise TypeError(
            f"{name} is an object array (ragged or mixed types); pass one recording as a 1-D numeric array"
        )
    if np.issubdtype(array.dtype, np.complexfloating):
        raise TypeError(f"{name} is complex; pass the real-valued ECG (e.g. np.real(x)) in any unit")
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if len(array.shape) != 1:
        hint = (
            " (a scalar)"
            if len(array.shape) == 0
            else "; pass one lead as (n_samples,), or several recordings to clef.embed as (n_records, n_samples)"
        )
        raise ValueError(f"{name} must be 1-D (n_samples,), got shape {array.shape}{hint}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty; pass at least {WINDOW_SECONDS} s of ECG")
    n_inf, low, high = 0, math.inf, -math.inf
    for start in range(0, array.shape[0], BLOCK_SAMPLES):
        block = np.asarray(array[start : start + BLOCK_SAMPLES])
        finite = block
        if np.issubdtype(block.dtype, np.floating):
            n_inf += int(np.isinf(block).sum())
            nan = np.isnan(block)
            if nan.any():
                finite = block[~nan]
        if finite.size and not n_inf:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    if n_inf:
        raise ValueError(
            f"{name} contains {n_inf} infinite value(s); replace them with NaN (np.where(np.isinf(x), np.nan, x)) "
            "to have them interpolated like other gaps"
        )
    if low > high:
        raise ValueError(f"{name} is entirely NaN: there is no ECG to embed")
    if low == high:
        raise ValueError(
            f"{name} is constant (flat, value {low:g}): no ECG to embed; check the lead connection "
            "and that you passed the signal column, not a time stamp or a status channel"
        )
    return array


def as_recordings(signal: object) -> tuple[list[np.ndarray], bool]:
    """Coerce the accepted input forms to a list of float64 1-D recordings.

    Returns ``(recordings, single)`` where ``single`` is true for one 1-D recording. Accepted: a 1-D array,
    tensor or list of numbers (one recording); a 2-D array or tensor ``(n_records, n_samples)``; a list or
    tuple of 1-D arrays/tensors/lists (recordings of different lengths).
    """
    if is_array_like_signal(signal):
        return [check_signal(signal)], True
    signal = tensor_to_numpy(signal)
    if isinstance(signal, (list, tuple)):
        if len(signal) == 0:
            raise ValueError("no recordings given (empty list); pass a 1-D signal or a list of 1-D signals")
        if all(np.ndim(item) == 0 and not isinstance(item, (str, bytes)) for item in signal):
            return [check_signal(np.asarray(signal))], True
        return [check_signal(item, f"recording {i}") for i, item in enumerate(signal)], False
    if isinstance(signal, (str, bytes, os.PathLike)):
        raise TypeError(
            f"got a {type(signal).__name__}, not a signal; load the file first (np.load, wfdb.rdrecord) "
            "or use the command line: clef embed FILE --fs HZ"
        )
    array = np.asarray(signal)
    if array.dtype == object:
        raise TypeError(
            "got an object array; pass a numeric 1-D array, a 2-D array (n_records, n_samples), "
            "or a list of 1-D arrays for recordings of different lengths"
        )
    if array.ndim == 1:
        return [check_signal(array)], True
    if array.ndim == 2:
        if array.shape[0] == 0:
            raise ValueError("no recordings given: the array has shape (0, n_samples)")
        if array.shape[1] <= 16 < array.shape[0]:
            raise ValueError(
                f"got shape {array.shape}: rows must be recordings, (n_records, n_samples). If this is one "
                "multi-channel recording (n_samples, n_leads), pick one lead, e.g. x[:, 0]"
            )
        return [check_signal(row, f"recording {i}") for i, row in enumerate(array)], False
    check_signal(array)  # raises the shape error for 0-d and 3-D input
    raise AssertionError("unreachable")


def per_record_fs(fs: object, n_records: int) -> list[float]:
    """One validated rate per recording, from one rate or a sequence of them."""
    if isinstance(fs, (list, tuple, np.ndarray)):
        if len(fs) != n_records:
            raise ValueError(f"got {len(fs)} sampling rates for {n_records} recordings; pass one rate or one per recording")
        return [check_fs(value, f"fs[{i}]") for i, value in enumerate(fs)]
    return [check_fs(fs)] * n_records


def _resampling_ratio(fs: float) -> Fraction:
    """``TARGET_FS / fs`` as a fraction with small terms (exact for integer and most decimal rates)."""
    exact = Fraction(TARGET_FS) / Fraction(fs)
    max_denominator = 64
    while True:
        ratio = exact.limit_denominator(max_denominator)
        if abs(float(ratio - exact)) <= RESAMPLE_RATIO_TOLERANCE * float(exact) or max_denominator >= 1 << 20:
            return ratio
        max_denominator *= 4


def resampled_length(n_samples: int, fs: float) -> int:
    """Number of 500 Hz samples a recording of ``n_samples`` at ``fs`` Hz covers: ``floor(n_samples * 500 / fs)``.

    ``resample_poly`` returns ``ceil`` of that, i.e. possibly one more sample lying past the end of the recording;
    windows never use it, so a recording a hair shorter than k * 10 s has k - 1 windows at every rate (as in the
    reference, whose resampler also floors).
    """
    ratio = _resampling_ratio(fs)
    return n_samples if ratio == 1 else n_samples * ratio.numerator // ratio.denominator


def resample_to_target(signal: np.ndarray, fs: float) -> np.ndarray:
    """Resample a whole recording ``(n_samples,)`` at ``fs`` Hz to 500 Hz with ``resample_poly(padtype="mean")``.

    NaN gaps are bridged by linear interpolation for the filter's sake, then put back at the nearest output
    samples, so the per-window gap filling downstream behaves as it does for native 500 Hz input. The result has
    ``ceil(n_samples * 500 / fs)`` samples; :class:`clef_sdk.streaming.Recording` computes any stretch of it
    without resampling the rest.
    """
    # padtype="mean": filter the recording minus its mean and add the mean back, so that a DC offset (ADC
    # counts, electrode offset) is neither leaked through the polyphase filter's per-phase gain ripple nor
    # turned into a step at the zero-padded ends; the FFT resampler of the reference has neither effect.
    ratio = _resampling_ratio(fs)
    if ratio == 1:
        return np.asarray(signal, dtype=np.float64)
    recording = Recording(signal, ratio)
    return recording.resampled(0, -(-recording.n_samples * ratio.numerator // ratio.denominator))


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


def _stride_samples(stride_seconds: float | None) -> int:
    if stride_seconds is None:
        return WINDOW_SAMPLES
    if isinstance(stride_seconds, bool) or not isinstance(stride_seconds, (Real, np.integer, np.floating)):
        raise TypeError(f"stride_seconds must be a number of seconds, got {stride_seconds!r}")
    stride = round(float(stride_seconds) * TARGET_FS) if math.isfinite(stride_seconds) else 0
    if stride < 1 or stride > WINDOW_SAMPLES:
        raise ValueError(
            f"stride_seconds must be between {1 / TARGET_FS:g} and {WINDOW_SECONDS} s "
            f"(10 = consecutive windows, 5 = 50% overlap), got {stride_seconds!r}"
        )
    return stride


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
    if tail not in TAIL_MODES:
        raise ValueError(f"tail must be one of {TAIL_MODES}, got {tail!r}")
    stride = _stride_samples(stride_seconds)
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

    Same arguments as :func:`preprocess`; concatenating the chunks gives its output. Arguments are validated
    before the first chunk is produced.
    """
    array = check_signal(signal, name)
    fs = check_fs(fs)
    plan = plan_windows(array.shape[0], fs, stride_seconds=stride_seconds, tail=tail)
    return iter_planned_windows(array, fs, plan, chunk_size=chunk_size, name=name)


def iter_planned_windows(
    array: object, fs: float, plan: WindowPlan, *, chunk_size: int = 256, name: str = "signal"
) -> Iterator[np.ndarray]:
    """Like :func:`iter_windows` for a recording already checked by :func:`check_signal` and planned.

    Each chunk resamples only the stretch its windows cover (:class:`clef_sdk.streaming.Recording`), so memory
    stays bounded for recordings of any length and the windows equal those of resampling the whole recording.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    recording = Recording(array, _resampling_ratio(fs))
    for first, starts, valid in plan.chunks(chunk_size):
        yield preprocess_chunk(recording, starts, valid, first, name)


def preprocess_chunk(recording: Recording, starts: np.ndarray, valid: np.ndarray, first: int, name: str) -> np.ndarray:
    """The preprocessed windows ``(len(starts), 5000)`` at 500 Hz ``starts`` of ``recording``, warning about the
    windows that carry no ECG (``first``: the index of the first, ``name``: the recording, for the message)."""
    raw = raw_windows(recording, starts, valid)
    warn_about_windows(all_nan_windows(raw, valid), recording.flat(starts, valid), first, name)
    return preprocess_windows(raw, valid_samples=valid)


def raw_windows(recording: Recording, starts: np.ndarray, valid_samples: np.ndarray) -> np.ndarray:
    """The 500 Hz windows at ``starts`` before filtering: ``(len(starts), 5000)`` float64, NaN past each window's
    ``valid_samples`` and where the recording has gaps."""
    span_start, span_stop = int(starts.min()), int((starts + valid_samples).max())
    span = recording.resampled(span_start, span_stop)
    raw = np.full((len(starts), WINDOW_SAMPLES), np.nan)
    for row, (start, n_valid) in enumerate(zip(starts - span_start, valid_samples)):
        raw[row, :n_valid] = span[start : start + n_valid]
    return raw


def all_nan_windows(raw: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Which windows (``raw`` as from :func:`raw_windows`) have no value at all in their valid samples."""
    real = np.arange(WINDOW_SAMPLES)[None, :] < valid[:, None]
    return ~np.any(real & ~np.isnan(raw), axis=1)


def warn_about_windows(missing: np.ndarray, flat: np.ndarray, offset: int, name: str) -> None:
    """One :class:`PreprocessingWarning` per kind for the windows flagged entirely NaN (``missing``) or ``flat``
    (constant recorded values, see :meth:`clef_sdk.streaming.Recording.flat`)."""
    for kind, rows in (("entirely NaN (embedded as zeros, as in pretraining)", missing), ("constant (flat)", flat & ~missing)):
        if rows.any():
            indices = (np.flatnonzero(rows) + offset).tolist()
            shown = ", ".join(map(str, indices[:10])) + (" ..." if len(indices) > 10 else "")
            warnings.warn(
                f"{name}: {len(indices)} window(s) are {kind} and carry no ECG: window index {shown}. "
                "Check for lead-off or dropout; drop these windows or use pooling=None to inspect them.",
                PreprocessingWarning,
                stacklevel=5,
            )


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
        tail: the end shorter than a window: ``"drop"`` (default), ``"pad"`` or ``"last"`` (see :func:`plan_windows`).

    Returns:
        float32 10 s windows at 500 Hz, band-passed and z-scored: ``(n_windows, 5000)`` for one recording; for a
        2-D array, one stacked ``(n_records, n_windows, 5000)`` array (its rows have one length, so one window count,
        unless their rates differ: then a list); for a list of recordings, a list of ``(n_windows_i, 5000)`` arrays.
    """
    recordings, single = as_recordings(signal)
    rates = per_record_fs(fs, len(recordings))
    name = (lambda i: "signal") if single else (lambda i: f"recording {i}")
    # as_recordings has checked each recording and per_record_fs each rate: plan them here, not in iter_windows,
    # which would scan every recording again
    windows = [
        np.concatenate(list(iter_planned_windows(
            recording, rate, plan_windows(recording.shape[0], rate, stride_seconds=stride_seconds, tail=tail),
            name=name(i),
        )))
        for i, (recording, rate) in enumerate(zip(recordings, rates))
    ]  # fmt: skip
    if single:
        return windows[0]
    if isinstance(signal, (list, tuple)) or len({len(w) for w in windows}) > 1:
        return windows
    return np.stack(windows)
