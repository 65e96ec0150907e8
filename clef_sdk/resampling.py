"""Resampling to 500 Hz: for recordings of any length, read and resampled in bounded blocks.

A week of ECG at 250 Hz is 151 million samples; resampling it whole to 500 Hz costs several GB. A
`Recording` reads its signal (a numpy array, a memory-mapped ``.npy``, or any 1-D array-like with
``shape``, ``dtype`` and slicing, such as [`clef_sdk.io.WfdbSignal`][clef_sdk.io.WfdbSignal] or an h5py dataset) a block at a time and
computes any stretch of the 500 Hz signal on its own, equal to resampling the whole recording at once
(`resample_to_target`):

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

import numpy as np
from scipy import signal as sps

from .constants import BLOCK_SAMPLES, RESAMPLE_RATIO_TOLERANCE, TARGET_FS

__all__ = [
    "Recording",
    "resample_to_target",
    "resampled_length",
    "resampling_filter",
    "resampling_ratio",
    "resampling_skip",
]


def resampling_ratio(fs: float) -> Fraction:
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
    ratio = resampling_ratio(fs)
    return n_samples if ratio == 1 else n_samples * ratio.numerator // ratio.denominator


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


class Recording:
    """A validated 1-D signal at ``fs`` Hz, read in blocks; see the module docstring.

    ``signal`` must already be checked ([`clef_sdk.inputs.check_signal`][clef_sdk.inputs.check_signal]: numeric, 1-D, finite or NaN);
    ``ratio`` is ``500 / fs`` (`resampling_ratio`); `at_rate` takes ``fs`` instead.
    """

    def __init__(self, signal: np.ndarray, ratio: Fraction):
        self.signal = signal
        self.n_samples = int(signal.shape[0])
        self.up, self.down = ratio.numerator, ratio.denominator
        self.identity = self.up == self.down == 1
        # The last block read: the filter, the flat check and the quality measures read overlapping stretches of
        # one chunk, which for a memory-mapped or WFDB recording would otherwise mean reading it from disk again.
        self._last_read: tuple[int, int, np.ndarray] = (0, 0, np.empty(0))

    @classmethod
    def at_rate(cls, signal: np.ndarray, fs: float) -> Recording:
        """The recording of a checked ``signal`` sampled at ``fs`` Hz."""
        return cls(signal, resampling_ratio(fs))

    # -- raw samples ----------------------------------------------------------------------------------

    def raw(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` as float64 (clipped to the recording), read-only."""
        start, stop = max(0, start), min(self.n_samples, stop)
        first, last = self._last_read[0], self._last_read[1]
        if first <= start and stop <= last:
            return self._last_read[2][start - first : stop - first]
        self._last_read = (0, 0, np.empty(0))  # let the previous block go before reading the next one
        block = np.asarray(self.signal[start:stop], dtype=np.float64)
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
            float(np.sum(self.bridged(start, start + BLOCK_SAMPLES)[0]))
            for start in range(0, self.n_samples, BLOCK_SAMPLES)
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
        """500 Hz samples ``[start, stop)``: equal to `resample_to_target` of the whole signal, sliced.

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


def resample_to_target(signal: np.ndarray, fs: float) -> np.ndarray:
    """Resample a whole recording ``(n_samples,)`` at ``fs`` Hz to 500 Hz with ``resample_poly(padtype="mean")``.

    NaN gaps are bridged by linear interpolation for the filter's sake, then put back at the nearest output
    samples, so the per-window gap filling downstream behaves as it does for native 500 Hz input. The result has
    ``ceil(n_samples * 500 / fs)`` samples; `Recording` computes any stretch of it without resampling the
    rest.
    """
    # padtype="mean": filter the recording minus its mean and add the mean back, so that a DC offset (ADC
    # counts, electrode offset) is neither leaked through the polyphase filter's per-phase gain ripple nor
    # turned into a step at the zero-padded ends; the FFT resampler of the reference has neither effect.
    ratio = resampling_ratio(fs)
    if ratio == 1:
        return np.asarray(signal, dtype=np.float64)
    recording = Recording(signal, ratio)
    return recording.resampled(0, -(-recording.n_samples * ratio.numerator // ratio.denominator))
