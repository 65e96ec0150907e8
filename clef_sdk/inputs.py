"""What the API accepts: signals, sampling rates and options, each checked once, with one message.

A signal is one recording ``(n_samples,)``, several of one length ``(n_records, n_samples)`` or a list of 1-D
recordings of any lengths; as numpy arrays (memory-mapped ones too), torch tensors, lists, or 1-D array-likes
read by slicing ([`clef_sdk.io.WfdbSignal`][clef_sdk.io.WfdbSignal], h5py datasets), in any unit. ``fs`` is in Hz.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from numbers import Real
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, Union

import numpy as np

from .constants import BLOCK_SAMPLES, MAX_FS, MIN_FS, TARGET_FS, WINDOW_SAMPLES, WINDOW_SECONDS

if TYPE_CHECKING:
    import torch

__all__ = [
    "MAX_ABS_VALUE",
    "MIN_PEAK_TO_PEAK",
    "MIN_SAMPLES",
    "POOLINGS",
    "QUALITY_MODES",
    "TAIL_MODES",
    "Pooling",
    "QualityMode",
    "SignalInput",
    "SlicedSignal",
    "TailMode",
    "as_recordings",
    "recording_collection",
    "check_batch_size",
    "check_choice",
    "check_fs",
    "check_signal",
    "is_array_like_signal",
    "per_record_fs",
    "plain_array",
    "stride_samples",
    "tensor_to_numpy",
]

Pooling = Literal["mean", "max", None]
QualityMode = Literal["drop", "return", None]
TailMode = Literal["drop", "pad", "last"]
POOLINGS: tuple[Pooling, ...] = ("mean", "max", None)
QUALITY_MODES: tuple[QualityMode, ...] = (None, "drop", "return")
TAIL_MODES: tuple[TailMode, ...] = ("drop", "pad", "last")


class SlicedSignal(Protocol):
    """A 1-D array-like read by slicing, never loaded whole: [`clef_sdk.io.WfdbSignal`][clef_sdk.io.WfdbSignal], an h5py dataset."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype[Any]: ...

    def __getitem__(self, index: slice, /) -> np.ndarray: ...


# Amplitudes the float64 pipeline handles faithfully. Above MAX_ABS_VALUE the z-score's squares overflow (at
# ~1e150 every window became exactly 0); below MIN_PEAK_TO_PEAK its eps (1e-8) dominates the standard deviation
# (the windows shrink towards 0). ECG in V spans ~1e-3, in nV ~1e6, 32-bit ADC counts at most ~4e9.
MAX_ABS_VALUE = 1e12
MIN_PEAK_TO_PEAK = 1e-5
# Fewer samples than this cannot hold 1 s at the lowest supported rate: "too short", whatever the values.
MIN_SAMPLES = 50

SignalInput = Union[np.ndarray, "torch.Tensor", SlicedSignal, Sequence[object]]
_Choice = TypeVar("_Choice")


def check_choice(value: object, allowed: Sequence[_Choice], name: str) -> _Choice:
    """``value`` if it is one of ``allowed``, else ValueError naming ``name`` and the choices."""
    for option in allowed:
        if (value is None and option is None) or (isinstance(value, str) and value == option):
            return option
    raise ValueError(f"{name} must be one of {tuple(allowed)}, got {value!r}")


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


def _own_rate(recording: object) -> float | None:
    """The rate a recording carries itself (``WfdbSignal.fs``, from its header), if any."""
    rate = getattr(recording, "fs", None)
    return float(rate) if isinstance(rate, (int, float, np.integer, np.floating)) and rate > 0 else None


def per_record_fs(fs: object, recordings: Sequence[object]) -> list[float]:
    """One validated rate per recording, from one rate or a sequence of them.

    A recording that carries its own rate ([`clef_sdk.io.WfdbSignal`][clef_sdk.io.WfdbSignal], from its header) is checked against the
    one given (a contradiction is an error, never a silent resampling at the wrong rate); ``fs=None`` takes it.
    """
    n_records = len(recordings)
    if isinstance(fs, (list, tuple, np.ndarray)):
        if len(fs) != n_records:
            raise ValueError(
                f"got {len(fs)} sampling rates for {n_records} recordings; pass one rate or one per recording"
            )
        given: list[object] = list(fs)
    else:
        given = [fs] * n_records
    rates = []
    for index, (value, recording) in enumerate(zip(given, recordings)):
        name = "fs" if n_records == 1 or not isinstance(fs, (list, tuple, np.ndarray)) else f"fs[{index}]"
        own = _own_rate(recording)
        rate = check_fs(own if value is None and own is not None else value, name)
        if own is not None and not math.isclose(rate, own, rel_tol=1e-9):
            raise ValueError(
                f"{name}={rate:g} Hz contradicts the {own:g} Hz of {recording!r} (from its header); "
                "pass its own rate, or leave fs out to use it"
            )
        rates.append(rate)
    return rates


def check_batch_size(batch_size: object) -> int | None:
    """A positive integer, or ``None`` (chosen later for the model and device)."""
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(
            f"batch_size must be a positive integer or None (chosen for the model and device), got {batch_size!r}"
        )
    return int(batch_size)


def stride_samples(stride_seconds: object) -> int:
    """The distance between window starts in 500 Hz samples (``None``: 10 s, consecutive windows)."""
    if stride_seconds is None:
        return WINDOW_SAMPLES
    if isinstance(stride_seconds, bool) or not isinstance(stride_seconds, (Real, np.integer, np.floating)):
        raise TypeError(f"stride_seconds must be a number of seconds, got {stride_seconds!r}")
    seconds = float(stride_seconds)
    stride = round(seconds * TARGET_FS) if math.isfinite(seconds) else 0
    if stride < 1 or stride > WINDOW_SAMPLES:
        raise ValueError(
            f"stride_seconds must be between {1 / TARGET_FS:g} and {WINDOW_SECONDS} s "
            f"(10 = consecutive windows, 5 = 50% overlap), got {stride_seconds!r}"
        )
    return stride


def is_array_like_signal(value: object) -> bool:
    """A 1-D array-like read by slicing (memory-mapped, WFDB, h5py, zarr), as opposed to an in-memory array."""
    if isinstance(value, (np.ndarray, list, tuple, str, bytes)):
        return False
    shape = getattr(value, "shape", None)
    return (
        isinstance(shape, tuple)
        and len(shape) == 1
        and hasattr(value, "dtype")
        and hasattr(value, "__getitem__")
        and not hasattr(value, "detach")  # torch tensors are converted to numpy instead
        and not hasattr(value, "to_numpy")  # pandas: converted with its missing values as NaN
    )


def tensor_to_numpy(value: object, name: str = "signal") -> object:
    """A torch tensor as numpy (anything else unchanged); a tensor that requires grad is refused, because the
    numpy path would cut the autograd graph without a word."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch.Tensor, without importing torch here
        if getattr(value, "requires_grad", False):
            raise TypeError(
                f"{name} requires grad, and clef.embed / clef.preprocess return numpy arrays, which would silently "
                "cut the graph; inside a model use clef.Preprocessor(fs) and the encoder instead: "
                "encoder(clef.Preprocessor(fs)(x).reshape(-1, 1, 5000)) (or pass x.detach() to embed without "
                "gradients)"
            )
        return value.detach().cpu().numpy()
    return value


def _is_missing(value: object) -> bool:
    """``None`` or pandas' ``NA``/``NaT``: missing values that are not NaN."""
    return value is None or type(value).__name__ in ("NAType", "NaTType")


def plain_array(value: object) -> np.ndarray:
    """``value`` as a numpy array whose missing samples are NaN, whatever marked them: a masked array's mask,
    pandas' ``NA`` (nullable dtypes), ``None`` in a list. Anything else as ``np.asarray`` gives it."""
    if isinstance(value, np.ma.MaskedArray):
        if not np.issubdtype(value.dtype, np.number) or np.issubdtype(value.dtype, np.complexfloating):
            return np.asarray(value)  # refused later with the dtype's own message
        return np.ma.filled(value.astype(np.float64), np.nan)
    to_numpy = getattr(value, "to_numpy", None)
    if callable(to_numpy) and not isinstance(value, np.ndarray):  # pandas Series, DataFrame, arrays
        try:
            return np.asarray(to_numpy(dtype=np.float64, na_value=np.nan))
        except (TypeError, ValueError):
            return np.asarray(to_numpy())
    array = np.asarray(value)
    if (
        array.dtype == object
        and array.size
        and all(
            _is_missing(item)
            or (isinstance(item, (int, float, np.integer, np.floating)) and not isinstance(item, bool))
            for item in array.flat
        )
    ):
        return np.array([np.nan if _is_missing(item) else item for item in array.flat], dtype=np.float64).reshape(
            array.shape
        )
    return array


def check_signal(signal: object, name: str = "signal") -> np.ndarray:
    """Validate one recording ``(n_samples,)`` and return it without copying.

    Accepts numpy arrays (memory-mapped ones included), array-likes and torch tensors of real numbers (integer
    ADC counts included: the z-score makes units irrelevant), and 1-D array-likes read by slicing
    ([`clef_sdk.io.WfdbSignal`][clef_sdk.io.WfdbSignal], h5py datasets), which are scanned block by block and never loaded
    whole. NaNs are allowed (interpolated later); infinities are not. Samples are converted to float64 as they
    are read. (An array-like is returned as it is, typed as an array: it supports what the pipeline uses.)
    """
    if is_array_like_signal(signal):
        array: np.ndarray = signal  # type: ignore[assignment]  # duck-typed: shape, dtype and slicing
    else:
        signal = tensor_to_numpy(signal, name)
        array = signal if type(signal) is np.ndarray or isinstance(signal, np.memmap) else plain_array(signal)
        if array.dtype == object:
            array = plain_array(array)
    if array.dtype == object:
        raise TypeError(f"{name} is an object array (ragged or mixed types); pass one recording as a 1-D numeric array")
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
    if array.shape[0] < MIN_SAMPLES:
        raise ValueError(
            f"{name} has only {array.shape[0]} sample(s): far too short for ECG (windows are {WINDOW_SECONDS} s; "
            "even tail='pad' needs 1 s)"
        )
    if low == high:
        raise ValueError(
            f"{name} is constant (flat, value {low:g}): no ECG to embed; check the lead connection "
            "and that you passed the signal column, not a time stamp or a status channel"
        )
    if max(abs(low), abs(high)) > MAX_ABS_VALUE or high - low < MIN_PEAK_TO_PEAK:
        raise ValueError(
            f"{name} spans {low:.3g} to {high:.3g}: outside the amplitudes the pipeline handles faithfully (values "
            f"within +-{MAX_ABS_VALUE:g}, peak to peak at least {MIN_PEAK_TO_PEAK:g}); that is no ECG in any unit "
            "(mV, uV, V, ADC counts): check the scaling, or rescale the recording (any unit works: windows are "
            "z-scored)"
        )
    return array


def as_recordings(signal: object) -> tuple[list[np.ndarray], bool]:
    """Coerce the accepted input forms to a list of checked 1-D recordings.

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
            return [check_signal(plain_array(signal))], True
        return [check_signal(item, f"recording {i}") for i, item in enumerate(signal)], False
    if isinstance(signal, (str, bytes, os.PathLike)):
        raise TypeError(
            f"got a {type(signal).__name__}, not a signal; load the file first (np.load, wfdb.rdrecord) "
            "or use the command line: clef embed FILE --fs HZ"
        )
    array = plain_array(signal)
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


def recording_collection(X: object, owner: str, hint: str = "") -> object:
    """``X`` as a collection of recordings for a scikit-learn style estimator ``owner``: a list or tuple as it is
    (recordings of any lengths), anything else as a 2-D numpy array ``(n_records, n_samples)``. Refuses paths,
    sparse matrices, complex values, a single recording, other shapes and empty input with scikit-learn's wording
    where it has one; ``hint`` (e.g. ``" of 10 s or more"``) completes the messages about missing recordings."""
    if isinstance(X, (str, bytes, os.PathLike)):
        raise TypeError(f"X is a {type(X).__name__}, not recordings; load the signals first")
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError("sparse X is not supported: pass the recordings as a dense 2-D array or a list of 1-D arrays")
    X = tensor_to_numpy(X, "X")
    if isinstance(X, (list, tuple)):
        if len(X) == 0:
            raise ValueError(
                "X holds no recordings (empty list); pass (n_records, n_samples) or a list of 1-D recordings"
            )
        if all(np.ndim(item) == 0 for item in X):
            raise ValueError(
                f"X looks like one recording (a flat list of numbers); {owner} takes a collection of recordings: "
                "pass [x] or np.asarray(x)[None, :]"
            )
        return X
    array = np.asarray(X)
    if np.iscomplexobj(array):
        raise ValueError("Complex data not supported: ECG recordings must be real-valued (e.g. np.real(X))")
    if array.ndim == 1:
        raise ValueError(
            f"X is 1-D, shape {array.shape}: {owner} takes a collection of recordings, (n_records, n_samples) or a "
            "list of 1-D arrays; for one recording pass x[None, :] or [x]"
        )
    if array.ndim != 2:
        raise ValueError(
            f"X must be 2-D (n_records, n_samples) or a list of 1-D recordings, got shape {array.shape}; for "
            "multi-lead data pick one lead"
        )
    if array.shape[0] == 0:
        raise ValueError(f"X holds no recordings, shape {array.shape}; pass at least one recording{hint}")
    if array.shape[1] == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={array.shape}) while a minimum of 1 is required: the recordings "
            f"hold no samples{'; pass recordings' + hint if hint else ''}"
        )
    return array
