"""Recordings of any length, read and resampled in bounded blocks.

A week of ECG at 250 Hz is 151 million samples; resampling it whole to 500 Hz costs several GB. A
:class:`Recording` reads its signal (a numpy array, a memory-mapped ``.npy``, or any 1-D array-like with
``shape``, ``dtype`` and slicing, such as :class:`WfdbSignal` or an h5py dataset) a block at a time and
computes any stretch of the 500 Hz signal on its own, equal to resampling the whole recording at once
(:func:`clef_sdk.preprocessing.resample_to_target`):

- ``resample_poly`` is an FIR filter: output sample ``j`` depends on a fixed range of input samples around
  ``j * fs / 500``, so a block of output needs only that block of input plus the filter's half length;
- the two whole-recording quantities it uses are computed by one streaming pass first: the mean
  (``padtype="mean"``) and, at NaN gaps, the nearest valid samples on either side (gaps are bridged by linear
  interpolation over the whole recording, across block boundaries).

Memory beyond the input is a few blocks of ``BLOCK_SAMPLES``, whatever the recording's length.
"""

from __future__ import annotations

from fractions import Fraction
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
from scipy import signal as sps

__all__ = ["BLOCK_SAMPLES", "Recording", "WfdbSignal", "is_array_like_signal", "resampling_filter", "resampling_skip"]

# Samples read per step of a streaming pass: 8 MiB of float64, small next to any model's working set.
BLOCK_SAMPLES = 1 << 20


@lru_cache(maxsize=16)
def resampling_filter(up: int, down: int) -> tuple[np.ndarray, int, int]:
    """``resample_poly``'s FIR for ``up/down`` (Kaiser window, beta 5, scaled by ``up``), with its leading zero pad.

    Returns ``(h, half_len, pre_pad)``: ``h`` of length ``2 * half_len + 1``; scipy prepends ``pre_pad`` zeros.
    """
    max_rate = max(up, down)
    half_len = 10 * max_rate
    h = sps.firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * up
    h.setflags(write=False)
    return h, half_len, down - half_len % down


def resampling_skip(up: int, down: int) -> int:
    """How many leading outputs of ``upfirdn`` with resample_poly's zero-led FIR ``resample_poly`` drops."""
    _, half_len, pre_pad = resampling_filter(up, down)
    return (half_len + pre_pad) // down


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
    )


class WfdbSignal:
    """One lead of a WFDB record as a 1-D array-like that reads only the samples sliced, in physical units.

    ``WfdbSignal("data/100", "MLII")[:3600]`` reads the first 10 s of record 100. ``fs`` is the record's rate
    in Hz. Pass it to :func:`clef_sdk.embed` like an array: long records are embedded without loading them whole.
    """

    def __init__(self, record: str | Path, lead: str | int | None = None):
        import wfdb

        name = str(record)
        if name.endswith((".hea", ".dat")):
            name = name[:-4]
        header = wfdb.rdheader(name)
        names = list(header.sig_name or [str(i) for i in range(header.n_sig)])
        if lead is None:
            index = 0
        elif isinstance(lead, int) and not isinstance(lead, bool):
            if not 0 <= lead < len(names):
                raise ValueError(f"{name} has {len(names)} signals; lead index {lead} does not exist")
            index = lead
        elif lead in names:
            index = names.index(lead)
        else:
            raise ValueError(f"{name} has no lead {lead!r}; it has {', '.join(names)}")
        if not header.sig_len:
            raise ValueError(f"{name}: the header gives no signal length; read it with wfdb.rdrecord instead")
        self.record = name
        self.lead = names[index]
        self.channel = index
        self.fs = float(header.fs)
        self.shape = (int(header.sig_len),)
        self.dtype = np.dtype(np.float64)
        self.ndim = 1

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"WfdbSignal({self.record!r}, lead={self.lead!r}, n_samples={self.shape[0]}, fs={self.fs:g})"

    def __getitem__(self, index: slice) -> np.ndarray:
        import wfdb

        if not isinstance(index, slice):
            raise TypeError("WfdbSignal supports slices only, e.g. signal[0:5000]")
        start, stop, step = index.indices(self.shape[0])
        if stop <= start:
            return np.empty(0)
        try:
            record = wfdb.rdrecord(self.record, sampfrom=start, sampto=stop, channels=[self.channel])
        except Exception as exc:  # wfdb raises many kinds of errors for truncated or corrupt files
            raise OSError(f"cannot read samples {start}-{stop} of WFDB record {self.record}: {exc}") from None
        return np.asarray(record.p_signal[:, 0], dtype=np.float64)[::step]


class Recording:
    """A validated 1-D signal at ``fs`` Hz, read in blocks; see the module docstring.

    ``signal`` must already be checked (numeric, 1-D, finite or NaN); ``ratio`` is ``500 / fs`` as used by
    :func:`clef_sdk.preprocessing.resample_to_target`.
    """

    def __init__(self, signal: object, ratio: Fraction):
        self.signal = signal
        self.n_samples = int(signal.shape[0])  # type: ignore[attr-defined]
        self.up, self.down = ratio.numerator, ratio.denominator
        self.identity = self.up == self.down == 1
        # The last block read: the filter, the flat check and the quality measures read overlapping stretches of
        # one chunk, which for a memory-mapped or WFDB recording would otherwise mean reading it from disk again.
        self._last_read: tuple[int, int, np.ndarray] = (0, 0, np.empty(0))

    # -- raw samples ----------------------------------------------------------------------------------

    def raw(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` as float64 (clipped to the recording), read-only."""
        start, stop = max(0, start), min(self.n_samples, stop)
        first, last = self._last_read[0], self._last_read[1]
        if first <= start and stop <= last:
            return self._last_read[2][start - first : stop - first]
        self._last_read = (0, 0, np.empty(0))  # let the previous block go before reading the next one
        block = np.asarray(self.signal[start:stop], dtype=np.float64)  # type: ignore[index]
        block = block.view()  # a view of its own, so that marking it read-only leaves the caller's array alone
        block.flags.writeable = False
        self._last_read = (start, stop, block)
        return block

    def input_range(self, starts: np.ndarray, valid_samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The input samples ``[first, last)`` that windows at 500 Hz ``starts`` of ``valid_samples`` cover."""
        first = starts * self.down // self.up
        return first, np.minimum(-(-(starts + valid_samples) * self.down // self.up), self.n_samples)

    def _nearest_valid(self, index: int, step: int) -> int | None:
        """The first non-NaN sample from ``index`` going in direction ``step`` (+1/-1), or None."""
        position = index
        width = 4096
        while 0 <= position < self.n_samples:
            lo, hi = (position, position + width) if step > 0 else (position - width + 1, position + 1)
            block = self.raw(lo, hi)
            valid = np.flatnonzero(~np.isnan(block))
            if valid.size:
                return max(0, lo) + int(valid[0] if step > 0 else valid[-1])
            position = hi if step > 0 else lo - 1
            width = min(width * 2, BLOCK_SAMPLES)
        return None

    def flat(self, starts: np.ndarray, valid_samples: np.ndarray) -> np.ndarray:
        """Which windows (500 Hz ``starts`` and lengths) cover input samples that are all equal, NaNs aside: a
        lead-off or a dropout, judged on the recorded values (resampling adds ripple to a flat stretch)."""
        first, last = self.input_range(starts, valid_samples)
        block = self.raw(int(first.min()), int(last.max()))
        flat = np.zeros(len(starts), dtype=bool)
        for row, (lo, hi) in enumerate(zip(first - first.min(), last - first.min())):
            values = block[lo:hi]
            values = values[~np.isnan(values)]
            flat[row] = values.size > 0 and values.min() == values.max()
        return flat

    def bridged(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Samples ``[start, stop)`` with NaN gaps linearly interpolated over the whole recording (edges hold the
        nearest valid value), and the mask of the samples that were NaN."""
        block = self.raw(start, stop)
        missing = np.isnan(block)
        if not missing.any():
            return block, missing
        start = max(0, start)
        positions = np.arange(start, start + block.size)
        anchors, values = positions[~missing], block[~missing]
        if missing[0] and (left := self._nearest_valid(start - 1, -1)) is not None:
            anchors, values = np.r_[left, anchors], np.r_[self.raw(left, left + 1), values]
        if missing[-1] and (right := self._nearest_valid(start + block.size, +1)) is not None:
            anchors, values = np.r_[anchors, right], np.r_[values, self.raw(right, right + 1)]
        out = block.copy()
        out[missing] = np.interp(positions[missing], anchors, values)
        return out, missing

    @cached_property
    def background(self) -> float:
        """Mean of the bridged signal: what ``resample_poly(..., padtype="mean")`` removes before filtering."""
        if self.n_samples <= BLOCK_SAMPLES:
            return float(np.mean(self.bridged(0, self.n_samples)[0]))
        total = sum(
            float(np.sum(self.bridged(start, start + BLOCK_SAMPLES)[0])) for start in range(0, self.n_samples, BLOCK_SAMPLES)
        )
        return total / self.n_samples

    # -- 500 Hz ---------------------------------------------------------------------------------------

    def input_span(self, start: int, stop: int) -> tuple[int, int, int]:
        """The input samples ``first..last`` that 500 Hz samples ``[start, stop)`` depend on, and ``offset``: output
        ``start`` is sample ``offset`` of ``upfirdn(h_padded, x[first:last + 1], up, down)``."""
        up, down = self.up, self.down
        h, _, pre_pad = resampling_filter(up, down)
        taps = h.size + pre_pad
        skip = resampling_skip(up, down)
        # Output j is sum_i x[i] * h_padded[(j + skip) * down - i * up]; collect the inputs i it can touch.
        first = max(0, -(-((start + skip) * down - taps + 1) // up))
        first -= first % down  # keeps the polyphase alignment of upfirdn on the slice
        last = min(self.n_samples - 1, ((stop - 1 + skip) * down) // up)
        return first, last, start + skip - first * up // down

    def resampled(self, start: int, stop: int) -> np.ndarray:
        """500 Hz samples ``[start, stop)``: equal to ``resample_to_target(whole signal)[start:stop]``.

        NaN gaps are NaN again at the output samples whose nearest input sample is NaN.
        """
        up, down = self.up, self.down
        if self.identity:
            return self.raw(start, stop)
        first_input, last_input, offset = self.input_span(start, stop)
        bridged, missing = self.bridged(first_input, last_input + 1)
        centred = bridged - self.background
        h, _, pre_pad = resampling_filter(up, down)
        full = sps.upfirdn(np.r_[np.zeros(pre_pad), h], centred, up, down)
        out = np.zeros(stop - start)
        available = full[offset : offset + out.size]
        out[: available.size] = available
        out += self.background
        if missing.any():
            # nearest input sample of every output sample, as in resample_to_target
            source = (np.arange(start, stop) * down * 2 + up) // (2 * up)
            source = np.minimum(source, self.n_samples - 1) - first_input
            inside = (source >= 0) & (source < missing.size)
            out[inside] = np.where(missing[source[inside]], np.nan, out[inside])
        return out
