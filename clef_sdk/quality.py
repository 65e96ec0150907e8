"""Per-window signal quality: is there ECG in this 10 s window? ``clef.signal_quality``.

Windows are those of [`clef_sdk.preprocess`][clef_sdk.preprocess] (same ``stride_seconds`` and ``tail``). ``"missing"``, ``"flat"``
and ``"clipped"`` are judged on the recorded samples at the recording's own rate; the other measures at that
rate up to 500 Hz (``QUALITY_MAX_FS``), above it on each stretch of the recording resampled to
about 500 Hz (at 4-10 kHz the QRS lies outside the detectors' fixed bands). Hard failures score 0:

- ``"missing"``: more than half of the window is NaN;
- ``"flat"``: more than half of the window is flat (the same value for at least 0.1 s: lead-off, dropout);
- ``"clipped"``: more than 2% of the window sits on its extreme values in runs of at least 20 ms (saturation);
- ``"no_beats"``: fewer than 3 beats, or a heart rate outside 24-240 bpm.

Otherwise four measures are each mapped linearly to [0, 1] over their range in ``DEFAULT_RANGES``, and the score
is the geometric mean of bSQI, beat similarity and in-band power, capped by the artefact measure (one large
artefact condemns a window whose beats are clean):

- beat agreement (bSQI): R peaks from two independent detectors of neurokit2 (``neurokit``, a smoothed-gradient
  detector, and ``pantompkins1985``) matched within 150 ms, as matched / (found by either);
- beat similarity: for each beat (-0.2 s to +0.4 s around its R peak), its Pearson correlation with the second
  most similar other beat of the window; the median over the beats. Every beat of a real rhythm has look-alikes,
  also in bigeminy or with PVCs, and the median lets a few odd beats (an ectopic without a twin) pass;
- artefact amplitude (mapped downwards): over any 0.5 s, the larger of the amplitude the 0.5-40 Hz signal holds
  over 80% of it (its 50 ms peak envelope reaches it in 16 of the 20 blocks of 25 ms) and the amplitude of its
  third-largest deflection (a stretch between zero crossings), the largest over the window; over half the
  window's median peak-to-peak amplitude in 2 s segments (about the R-wave height). A beat holds its amplitude
  for a tenth of a second and makes at most two large deflections (its QRS and T wave); motion artefact or a
  baseline step holds it for longer, a burst of noise swings back and forth. An ectopic beat is left out (from
  0.2 s before its R peak to 0.5 s after): one that comes early with a compensatory pause, its QRS above 15 Hz
  at least twice as large as the other beats', the level the same before and after it. A giant one is as large
  and as long as a short burst of motion noise; a burst that moves a detection early has no QRS of its own there,
  a baseline step changes the level;
- in-band power: the power above 3 Hz over the power in 0.5-40 Hz, the median over the window's 2 s segments.
  Electrode motion lowers it, also where it repeats like beats (NSTDB's ``em`` noise).

``usable = score >= 0.5``. A low measure adds its reason: ``"detectors_disagree"``, ``"beats_dissimilar"``,
``"artefact"``, ``"low_frequency_noise"`` (each when its own mapped value is below 0.5). The ranges were chosen
on a labelled benchmark of five sources and checked leaving each source out (``benchmarks/bench_quality_loso.py``; see the docs page for app
developers). Pure Gaussian noise, which neurokit2's own ``ecg_quality`` rates excellent, is flagged here.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from ._optional import require
from .constants import TARGET_FS
from .inputs import TailMode, check_signal, per_record_fs
from .resampling import Recording
from .windows import WindowPlan, plan_windows

__all__ = [
    "DEFAULT_RANGES",
    "DEFAULT_THRESHOLD",
    "HARD_REASONS",
    "REASONS",
    "ScoreRanges",
    "SignalQuality",
    "planned_quality",
    "score_measures",
    "signal_quality",
]

DEFAULT_THRESHOLD = 0.5
HARD_REASONS = ("missing", "flat", "clipped", "no_beats")
REASONS = (*HARD_REASONS, "detectors_disagree", "beats_dissimilar", "artefact", "low_frequency_noise")
MATCH_SECONDS = 0.15
FLAT_RUN_SECONDS = 0.1
CLIP_RUN_SECONDS = 0.02
BEAT_WINDOW_SECONDS = (0.2, 0.4)
HEART_RATE_BPM = (24.0, 240.0)
# Cleaning runs on stretches of this many windows at a time (plus margins); the detectors run window by window.
SEGMENT_WINDOWS = 60
MARGIN_SECONDS = 2.0
# Two detectors that share no stage: a smoothed gradient, and Pan-Tompkins' 5-15 Hz band, derivative, square and
# integration. kalidas2017 (a stationary wavelet), used before, agreed as well but took 1.1 ms a window against
# 0.18 ms (10-14 s at 250 Hz), most of it redesigning its Butterworth filter on every call.
DETECTORS = ("neurokit", "pantompkins1985")
# Above this rate the beats and the artefact amplitude are measured on each stretch resampled to about it (the
# flat, clipped and missing samples still on the recorded ones): the detectors look for the QRS in fixed bands,
# and at 4-10 kHz clean ECG scored 0 ("detectors_disagree"). At or below 500 Hz nothing is resampled.
QUALITY_MAX_FS = 500.0
ECG_BAND_HZ = (0.5, 40.0)
QRS_HIGH_PASS_HZ = 3.0
BAND_SEGMENT_SECONDS = 2.0
# The artefact amplitude: the 0.5-40 Hz signal's peak envelope over ENVELOPE_BLOCKS blocks of BLOCK_SECONDS (50 ms);
# the amplitude it holds in HOLD_BLOCKS of every HOLD_WINDOW_BLOCKS consecutive blocks (16 of 20: 80% of 0.5 s), or
# the amplitude of the DEFLECTION-th largest deflection peaking in them if larger, the largest over the window; over
# half the median peak-to-peak amplitude of REFERENCE_SECONDS segments (half-overlapping). Blocks, not samples: on
# the quality benchmark the held amplitude ranks as sliding sample by sample does (correlation 0.998), at any rate
# in the same time. The held amplitude alone let 0.5 s of noise at 5x the QRS pass (its envelope dips at every
# zero crossing); the second-largest deflection would flag giant ectopic beats (CPSC 2019 data_01170: 10x its
# small QRS).
ARTEFACT_BLOCK_SECONDS = 0.025
ARTEFACT_ENVELOPE_BLOCKS = 2
ARTEFACT_HOLD_WINDOW_BLOCKS = 20
ARTEFACT_HOLD_BLOCKS = 16
ARTEFACT_DEFLECTION = 3
REFERENCE_SECONDS = 2.0
# A giant ectopic beat is as large and as long as a short burst of motion noise; the rhythm and its QRS tell them
# apart. A beat (of the neurokit detector) coming early, before PREMATURE times the median RR interval, followed by a
# compensatory pause (the intervals before and after it sum to twice the median within COMPENSATORY), and sharp (its
# peak amplitude above ECTOPIC_SHARP_HZ within ECTOPIC_QRS_SECONDS of its R peak SHARPNESS times the median of the
# other beats'), with the unfiltered level's median over the 0.5 s before and after its complex within LEVEL_SHIFT of
# the complex's peak to peak, is left out of the artefact amplitude from ECTOPIC_SECONDS before its R peak to after
# it (QRS and T wave). A burst that moves a detection early keeps the pause but has no QRS of its own there (motion
# noise lies below 15 Hz); one between beats splits an interval without the pause; a baseline step just before a
# beat is sharp and moves the detection early too, but changes the level. On the quality benchmark's giant ectopic
# (CPSC 2019 data_01170) the sharpness is 4.9; on the detections that 0.5 s bursts at 5x the QRS move early, 0.1-1.3
# but for 2 of 100 (2.2, 2.9).
ECTOPIC_PREMATURE = 0.85
ECTOPIC_COMPENSATORY = 0.1
ECTOPIC_SHARP_HZ = 15.0
ECTOPIC_QRS_SECONDS = 0.06
ECTOPIC_SHARPNESS = 2.0
ECTOPIC_LEVEL_SHIFT = 0.2
ECTOPIC_SECONDS = (0.2, 0.5)


@dataclass(frozen=True)
class ScoreRanges:
    """Where each measure is mapped linearly to [0, 1]: ``bsqi`` and ``similarity`` from 0 at ``low`` to 1 at
    ``high``; ``artefact`` (an amplitude ratio) the other way, 1 at or below ``low`` and 0 at or above ``high``;
    ``in_band`` as ``bsqi``."""

    bsqi: tuple[float, float]
    similarity: tuple[float, float]
    artefact: tuple[float, float]
    in_band: tuple[float, float]


# Chosen on the labelled quality benchmark (benchmarks/_quality_tuning.py on all five sources): on a grid of
# ranges, the one with the highest AUROC (usable against unusable windows) among those flagging at most 1% of each
# source's usable windows at the default threshold and falling with NSTDB's noise level. The same procedure without each source in turn, tested on it,
# gives the leave-one-source-out table of the docs page for app developers.
DEFAULT_RANGES = ScoreRanges(bsqi=(0.1, 0.5), similarity=(0.5, 0.8), artefact=(1.5, 2.5), in_band=(0.2, 0.3))


@dataclass
class SignalQuality:
    """Quality of each 10 s window of one recording, aligned with [`clef_sdk.preprocess`][clef_sdk.preprocess]'s windows.

    ``score`` float ``(n_windows,)`` in [0, 1], higher is cleaner; ``usable`` bool ``(n_windows,)``,
    ``score >= threshold``; ``reasons``: per window, the tuple of problems found (empty when clean). The measures
    behind the score are kept: ``bsqi``, ``beat_similarity``, ``artefact_amplitude`` (a ratio to the R-wave
    height), ``in_band_fraction``, ``heart_rate_bpm``, ``flat_fraction``, ``clipped_fraction``, ``missing_fraction``; ``start_seconds``
    says where each window starts.
    """

    score: np.ndarray
    usable: np.ndarray
    reasons: list[tuple[str, ...]]
    start_seconds: np.ndarray
    bsqi: np.ndarray
    beat_similarity: np.ndarray
    artefact_amplitude: np.ndarray
    in_band_fraction: np.ndarray
    heart_rate_bpm: np.ndarray
    flat_fraction: np.ndarray
    clipped_fraction: np.ndarray
    missing_fraction: np.ndarray
    threshold: float = DEFAULT_THRESHOLD
    fs: float = field(default=0.0)

    def __len__(self) -> int:
        return len(self.score)

    def __repr__(self) -> str:
        return (
            f"SignalQuality({len(self)} windows, {int(self.usable.sum())} usable at threshold {self.threshold:g}, "
            f"median score {np.median(self.score) if len(self) else float('nan'):.2f})"
        )

    def to_pandas(self) -> Any:
        """One row per window (a ``pandas.DataFrame``): start, score, usable, reasons (comma-separated) and the
        measures."""
        pd = require("pandas", "SignalQuality.to_pandas")

        return pd.DataFrame(
            {
                "start_seconds": self.start_seconds,
                "score": self.score,
                "usable": self.usable,
                "reasons": [", ".join(r) for r in self.reasons],
                "bsqi": self.bsqi,
                "beat_similarity": self.beat_similarity,
                "artefact_amplitude": self.artefact_amplitude,
                "in_band_fraction": self.in_band_fraction,
                "heart_rate_bpm": self.heart_rate_bpm,
                "flat_fraction": self.flat_fraction,
                "clipped_fraction": self.clipped_fraction,
                "missing_fraction": self.missing_fraction,
            }
        )


def _runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The start and the length of each run of equal consecutive ``values`` (non-empty ``(n,)``)."""
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    return starts, np.diff(starts, append=values.size)


def _runs_mask(values: np.ndarray, min_length: int, select: np.ndarray | None = None) -> np.ndarray:
    """Samples lying in runs of at least ``min_length`` equal consecutive values (optionally only runs whose
    samples are ``select``ed)."""
    if values.size == 0:
        return np.zeros(0, dtype=bool)
    starts, lengths = _runs(values)
    keep = lengths >= min_length
    if select is not None:
        keep &= select[starts]
    return np.repeat(keep, lengths)


def _longest_run(values: np.ndarray) -> int:
    """The length of the longest run of equal consecutive ``values`` ``(n,)`` (0 when empty; NaN never repeats)."""
    return int(_runs(values)[1].max()) if values.size else 0


def _small_median(values: np.ndarray) -> float:
    """``np.median`` of a short non-empty ``(n,)`` array, the same value without its overhead (called per window)."""
    ordered = np.sort(values)
    middle = ordered.size // 2
    return float(ordered[middle] if ordered.size % 2 else (ordered[middle - 1] + ordered[middle]) / 2)


def _quality_ratio(fs: float) -> Fraction:
    """``up / down`` (small terms) taking ``fs`` to about ``QUALITY_MAX_FS`` (never above ``fs``); 1 at or below
    it."""
    if fs <= QUALITY_MAX_FS:
        return Fraction(1)
    return min(Fraction(1), (Fraction(QUALITY_MAX_FS) / Fraction(fs)).limit_denominator(100))


def _clean(segment: np.ndarray, band: np.ndarray, fs: float) -> np.ndarray:
    """``segment`` as the detectors take it: neurokit2's cleaning, or below 125 Hz its 0.5-40 Hz ``band``
    (neurokit's 50 Hz notch needs a Nyquist above 50 Hz)."""
    import neurokit2 as nk

    if fs >= 125:
        return np.asarray(nk.ecg_clean(segment, sampling_rate=fs, method="neurokit"), dtype=np.float64)
    return band


def _detect(cleaned: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """R peaks of two independent neurokit2 detectors (sample indices)."""
    import neurokit2 as nk

    found = []
    for method in DETECTORS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                peaks = nk.ecg_findpeaks(cleaned, sampling_rate=int(round(fs)), method=method)["ECG_R_Peaks"]
        except Exception:  # detectors fail on signals without beats (e.g. flat); that is "no beats"
            peaks = np.zeros(0, dtype=np.int64)
        found.append(np.asarray(peaks, dtype=np.int64))
    return found[0], found[1]


def _bsqi(a: np.ndarray, b: np.ndarray, tolerance: int) -> float:
    if a.size == 0 or b.size == 0:
        return 0.0
    nearest = np.searchsorted(b, a)
    left = np.abs(a - b[np.clip(nearest - 1, 0, b.size - 1)])
    right = np.abs(a - b[np.clip(nearest, 0, b.size - 1)])
    matched = int(np.sum(np.minimum(left, right) <= tolerance))
    return matched / (a.size + b.size - matched)


def _beat_similarity(cleaned: np.ndarray, peaks: np.ndarray, fs: float) -> float:
    """Median over beats of each beat's correlation with its second most similar other beat (0 with < 3 beats)."""
    before, after = (round(s * fs) for s in BEAT_WINDOW_SECONDS)
    peaks = peaks[(peaks - before >= 0) & (peaks + after <= cleaned.size)]
    if peaks.size < 3:
        return 0.0
    beats = cleaned[peaks[:, None] + np.arange(-before, after)[None, :]]
    beats = beats - beats.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(beats, axis=1)
    beats = np.divide(beats, norms[:, None], out=np.zeros_like(beats), where=norms[:, None] > 0)
    correlations = beats @ beats.T
    np.fill_diagonal(correlations, -np.inf)
    return _small_median(np.partition(correlations, -2, axis=1)[:, -2])


@functools.lru_cache(maxsize=16)
def _filter_sos(fs: float, high_pass_hz: float | None) -> np.ndarray:
    """4th-order Butterworth sections: a high-pass at ``high_pass_hz``, or with None the ECG band (0.5-40 Hz,
    below 0.4 ``fs``)."""
    from scipy import signal as sps

    if high_pass_hz is not None:
        return sps.butter(4, high_pass_hz, btype="high", fs=fs, output="sos")
    return sps.butter(4, [ECG_BAND_HZ[0], min(ECG_BAND_HZ[1], 0.4 * fs)], btype="band", fs=fs, output="sos")


def _ecg_band(segment: np.ndarray, fs: float) -> np.ndarray:
    """``segment`` band-passed to 0.5-40 Hz (below 0.4 ``fs``), forwards and backwards."""
    from scipy import signal as sps

    return sps.sosfiltfilt(_filter_sos(fs, None), segment - segment.mean())


def _high_passed(band: np.ndarray, fs: float, cutoff_hz: float) -> np.ndarray:
    """The 0.5-40 Hz ``band`` high-passed at ``cutoff_hz``, forwards and backwards."""
    from scipy import signal as sps

    return sps.sosfiltfilt(_filter_sos(fs, cutoff_hz), band)


def _in_band_fraction(band: np.ndarray, qrs: np.ndarray, fs: float) -> float:
    """Median over 2 s segments of the power of ``qrs`` (above 3 Hz) over the power of ``band`` (0.5-40 Hz)."""
    segment = round(BAND_SEGMENT_SECONDS * fs)
    n_segments = band.size // segment
    if n_segments == 0:
        return 0.0
    total = np.square(band[: n_segments * segment]).reshape(n_segments, segment).sum(axis=1)
    high = np.square(qrs[: n_segments * segment]).reshape(n_segments, segment).sum(axis=1)
    return _small_median(np.divide(high, total, out=np.zeros_like(total), where=total > 0))


def _deflection_peaks(band: np.ndarray, magnitude: np.ndarray, block: int, n_blocks: int) -> np.ndarray:
    """Per block ``(n_blocks,)`` of ``band`` (``n_blocks * block`` samples, ``magnitude`` its absolute values): the
    largest amplitude of the deflections (stretches between zero crossings) whose peak lies in it, 0 where none
    does."""
    starts, lengths = _runs(np.signbit(band))
    amplitudes = np.maximum.reduceat(magnitude, starts)
    peaks = np.flatnonzero(magnitude == np.repeat(amplitudes, lengths))
    per_block = np.zeros(n_blocks)
    np.maximum.at(per_block, peaks // block, magnitude[peaks])
    return per_block


def _span_order_statistic(values: np.ndarray, rank: int) -> np.ndarray:
    """The ``rank``-th smallest (from 0) of each ``ARTEFACT_HOLD_WINDOW_BLOCKS`` consecutive ``values``, per first
    value ``(values.size - ARTEFACT_HOLD_WINDOW_BLOCKS + 1,)``."""
    from scipy import ndimage

    size = ARTEFACT_HOLD_WINDOW_BLOCKS
    # a centred filter: its output at i covers values[i - size // 2 : i - size // 2 + size]
    return ndimage.rank_filter(values, rank, size=size, mode="nearest")[size // 2 : size // 2 + values.size - size + 1]


def _span_amplitudes(band: np.ndarray, fs: float) -> tuple[np.ndarray, int]:
    """For a stretch ``band`` (0.5-40 Hz), per span of ``ARTEFACT_HOLD_WINDOW_BLOCKS`` blocks starting at each
    block: the larger of the amplitude held in ``ARTEFACT_HOLD_BLOCKS`` of its blocks (its peak envelope's order
    statistic) and the amplitude of its ``ARTEFACT_DEFLECTION``-th largest deflection; and the block length in
    samples."""
    from numpy.lib.stride_tricks import sliding_window_view

    block = max(1, round(ARTEFACT_BLOCK_SECONDS * fs))
    n_blocks = band.size // block
    if n_blocks < ARTEFACT_HOLD_WINDOW_BLOCKS + ARTEFACT_ENVELOPE_BLOCKS:
        return np.zeros(0), block
    blocks = band[: n_blocks * block]
    magnitude = np.abs(blocks)
    peaks = magnitude.reshape(n_blocks, block).max(axis=1)
    envelope = sliding_window_view(peaks, ARTEFACT_ENVELOPE_BLOCKS).max(axis=1)
    # reached or passed in HOLD_BLOCKS of the blocks
    held = _span_order_statistic(envelope, ARTEFACT_HOLD_WINDOW_BLOCKS - ARTEFACT_HOLD_BLOCKS)
    deflections = _deflection_peaks(blocks, magnitude, block, n_blocks)
    large = _span_order_statistic(deflections, ARTEFACT_HOLD_WINDOW_BLOCKS - ARTEFACT_DEFLECTION)[: held.size]
    return np.maximum(held, large), block


def _premature_beats(peaks: np.ndarray) -> np.ndarray:
    """Which of ``peaks`` (sorted R peaks, sample indices) come early and are followed by a compensatory pause
    (``ECTOPIC_PREMATURE``, ``ECTOPIC_COMPENSATORY``): bool ``(n_peaks,)``, all False with fewer than 4 beats."""
    premature = np.zeros(peaks.size, dtype=bool)
    if peaks.size < 4:
        return premature
    intervals = np.diff(peaks)
    typical = float(np.median(intervals))
    before, after = intervals[:-1], intervals[1:]
    premature[1:-1] = (before < ECTOPIC_PREMATURE * typical) & (
        np.abs(before + after - 2 * typical) <= ECTOPIC_COMPENSATORY * 2 * typical
    )
    return premature


def _ectopic_beats(
    peaks: np.ndarray, candidates: np.ndarray, sharp: np.ndarray, band: np.ndarray, level: np.ndarray, fs: float
) -> np.ndarray:
    """The R peaks of ``peaks[candidates]`` that are beats: their QRS above ``ECTOPIC_SHARP_HZ`` (``sharp``, the
    stretch's ``band`` high-passed there) peaks at ``ECTOPIC_SHARPNESS`` times the median of the other beats or more,
    and ``level`` (the stretch unfiltered) is the same before and after them (``ECTOPIC_LEVEL_SHIFT``; a baseline
    step is sharp too)."""
    reach = round(ECTOPIC_QRS_SECONDS * fs)
    magnitude = np.abs(sharp)
    peak_amplitude = np.array([magnitude[max(0, p - reach) : p + reach + 1].max() for p in peaks])
    others = peak_amplitude[~candidates]
    if others.size == 0:
        return peaks[:0]
    found = []
    before, after = round(ECTOPIC_SECONDS[0] * fs), round(ECTOPIC_SECONDS[1] * fs)
    for peak in peaks[candidates & (peak_amplitude >= ECTOPIC_SHARPNESS * float(np.median(others)))]:
        preceding = level[max(0, peak - before - after) : max(0, peak - before)]
        following = level[peak + after : peak + 2 * after]
        complex_ = band[max(0, peak - before) : peak + after]
        if preceding.size == 0 or following.size == 0:
            continue
        shift = abs(float(np.median(following)) - float(np.median(preceding)))
        if shift <= ECTOPIC_LEVEL_SHIFT * float(np.ptp(complex_)):
            found.append(peak)
    return np.array(found, dtype=peaks.dtype)


def _artefact_amplitude(
    amplitudes: np.ndarray, block: int, window: np.ndarray, start: int, fs: float, ectopic: np.ndarray
) -> float:
    """The largest span amplitude (``_span_amplitudes`` of the stretch) within the window ``window`` (0.5-40 Hz,
    starting at sample ``start`` of the stretch), but for spans reaching the beats at ``ectopic`` (R peaks,
    samples of the stretch; ``ECTOPIC_SECONDS`` around them), over half the window's median peak-to-peak amplitude
    in 2 s segments (half-overlapping); 0 for a window without amplitude."""
    second = round(REFERENCE_SECONDS * fs / 2)
    n_seconds = window.size // second
    first = -(-start // block)  # the first block inside the window
    last = (start + window.size) // block - ARTEFACT_ENVELOPE_BLOCKS - ARTEFACT_HOLD_WINDOW_BLOCKS + 2
    if n_seconds < 2 or last <= first or amplitudes.size < last:
        return 0.0
    stretches = window[: n_seconds * second].reshape(n_seconds, second)
    highs, lows = stretches.max(axis=1), stretches.min(axis=1)
    spans = np.maximum(highs[1:], highs[:-1]) - np.minimum(lows[1:], lows[:-1])
    reference = _small_median(spans) / 2
    candidates = amplitudes[first:last]
    if ectopic.size:
        # span k covers blocks k .. k + ENVELOPE + HOLD_WINDOW - 2; it is left out where that reaches a beat's region
        covered = ARTEFACT_ENVELOPE_BLOCKS + ARTEFACT_HOLD_WINDOW_BLOCKS - 1
        span_starts = np.arange(first, last)
        keep = np.ones(candidates.size, dtype=bool)
        for peak in ectopic:
            lo = (peak - round(ECTOPIC_SECONDS[0] * fs)) // block
            hi = (peak + round(ECTOPIC_SECONDS[1] * fs)) // block
            keep &= (span_starts + covered <= lo) | (span_starts > hi)
        candidates = candidates[keep]
    if reference <= 0 or candidates.size == 0:
        return 0.0
    return float(candidates.max()) / reference


def score_measures(
    bsqi: np.ndarray,
    similarity: np.ndarray,
    artefact: np.ndarray,
    in_band: np.ndarray,
    ranges: ScoreRanges = DEFAULT_RANGES,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The score ``(n_windows,)`` from the four measures ``(n_windows,)`` (see the module docstring; without the
    hard failures), and each measure mapped to [0, 1] by ``ranges``, keyed by the reason its low value gives."""

    def ramp(values: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
        return np.clip((np.asarray(values, dtype=np.float64) - bounds[0]) / (bounds[1] - bounds[0]), 0, 1)

    mapped = {
        "detectors_disagree": ramp(bsqi, ranges.bsqi),
        "beats_dissimilar": ramp(similarity, ranges.similarity),
        "artefact": 1 - ramp(artefact, ranges.artefact),
        "low_frequency_noise": ramp(in_band, ranges.in_band),
    }
    beats = np.cbrt(mapped["detectors_disagree"] * mapped["beats_dissimilar"] * mapped["low_frequency_noise"])
    return np.minimum(beats, mapped["artefact"]), mapped


def signal_quality(
    signal: object,
    fs: float,
    *,
    stride_seconds: float | None = None,
    tail: TailMode = "drop",
    threshold: float = DEFAULT_THRESHOLD,
) -> SignalQuality:
    """Per-window signal quality of one recording ``(n_samples,)`` at ``fs`` Hz; see the module docstring.

    The windows are those of ``clef.preprocess(signal, fs, stride_seconds=..., tail=...)``, one result per window.
    ``threshold``: the score at which a window counts as usable (default 0.5).
    """
    array = check_signal(signal)
    fs = per_record_fs(fs, [array])[0]  # a signal that carries its rate (WfdbSignal) is checked against fs
    plan = plan_windows(array.shape[0], fs, stride_seconds=stride_seconds, tail=tail)
    return planned_quality(array, fs, plan, threshold=threshold)


def planned_quality(
    array: np.ndarray, fs: float, plan: WindowPlan, *, threshold: float = DEFAULT_THRESHOLD
) -> SignalQuality:
    """Like `signal_quality` for a recording already checked by [`clef_sdk.inputs.check_signal`][clef_sdk.inputs.check_signal],
    at a checked ``fs``, with its windows planned by [`clef_sdk.windows.plan_windows`][clef_sdk.windows.plan_windows]."""
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be within [0, 1], got {threshold!r}")
    from scipy import signal as sps

    recording = Recording.at_rate(array, fs)
    first, last = recording.input_range(plan.starts, plan.valid_samples)
    n = len(plan)
    measures = {
        name: np.zeros(n)
        for name in ("bsqi", "similarity", "artefact", "in_band", "beats", "rate", "flat", "clipped", "missing")
    }
    margin = round(MARGIN_SECONDS * fs)
    flat_run, clip_run = round(FLAT_RUN_SECONDS * fs), max(3, round(CLIP_RUN_SECONDS * fs))
    # The beats, the artefact amplitude and the in-band power are measured at measure_fs (fs, or about QUALITY_MAX_FS above it).
    ratio = _quality_ratio(fs)
    up, down = ratio.numerator, ratio.denominator
    measure_fs = fs * up / down
    measure_margin = round(MARGIN_SECONDS * measure_fs)
    for segment_start in range(0, n, SEGMENT_WINDOWS):
        rows = range(segment_start, min(n, segment_start + SEGMENT_WINDOWS))
        lo = max(0, int(first[rows.start]) - margin)
        hi = min(recording.n_samples, int(last[rows.stop - 1]) + margin)
        raw = recording.raw(lo, hi)
        missing = np.isnan(raw)
        any_missing = bool(missing.any())
        bridged = recording.bridged(lo, hi)[0] if any_missing else raw
        # a window's runs lie within the stretch's: without a long one anywhere, nothing is flat or clipped
        any_runs = _longest_run(raw) >= min(flat_run, clip_run)
        # padtype="line": the stretch minus the line through its end samples is resampled, so no step at its ends
        measured = bridged if up == down else sps.resample_poly(bridged, up, down, padtype="line")
        band = _ecg_band(measured, measure_fs)
        cleaned = _clean(measured, band, measure_fs)
        qrs = _high_passed(band, measure_fs, QRS_HIGH_PASS_HZ)
        sharp: np.ndarray | None = None  # the band above ECTOPIC_SHARP_HZ, once a window has a premature beat
        amplitudes, block = _span_amplitudes(band, measure_fs)
        for row in rows:
            a, b = int(first[row]) - lo, int(last[row]) - lo
            # the window's samples at measure_fs (the same ones where it is fs)
            qa, qb = a * up // down, min(measured.size, -(-b * up // down))
            # Each window gets its own detector run (with its margins): an artefact elsewhere cannot raise the
            # detectors' adaptive thresholds and hide this window's beats.
            context = max(0, qa - measure_margin)
            detected = _detect(cleaned[context : qb + measure_margin], measure_fs)
            peaks_a, peaks_b = (peaks + context for peaks in detected)
            window = raw[a:b]
            if any_missing:
                measures["missing"][row] = missing[a:b].mean()
            if any_runs:
                measures["flat"][row] = _runs_mask(window, flat_run).mean()
                finite = window[~np.isnan(window)]
                if finite.size:
                    extreme = (window == finite.max()) | (window == finite.min())
                    measures["clipped"][row] = _runs_mask(window, clip_run, extreme).mean()
            in_a = peaks_a[(peaks_a >= qa) & (peaks_a < qb)]
            in_b = peaks_b[(peaks_b >= qa) & (peaks_b < qb)]
            measures["beats"][row] = in_a.size
            measures["rate"][row] = in_a.size / ((b - a) / fs) * 60
            measures["bsqi"][row] = _bsqi(in_a, in_b, round(MATCH_SECONDS * measure_fs))
            measures["similarity"][row] = _beat_similarity(cleaned, in_a, measure_fs)
            premature = _premature_beats(peaks_a)
            ectopic = peaks_a[:0]
            if premature.any():
                if sharp is None:
                    sharp = _high_passed(band, measure_fs, ECTOPIC_SHARP_HZ)
                ectopic = _ectopic_beats(peaks_a, premature, sharp, band, measured, measure_fs)
            measures["artefact"][row] = _artefact_amplitude(amplitudes, block, band[qa:qb], qa, measure_fs, ectopic)
            measures["in_band"][row] = _in_band_fraction(band[qa:qb], qrs[qa:qb], measure_fs)

    score, mapped = score_measures(measures["bsqi"], measures["similarity"], measures["artefact"], measures["in_band"])
    reasons: list[tuple[str, ...]] = []
    for row in range(n):
        found = []
        if measures["missing"][row] > 0.5:
            found.append("missing")
        if measures["flat"][row] > 0.5:
            found.append("flat")
        if measures["clipped"][row] > 0.02 and "flat" not in found:
            found.append("clipped")
        if measures["beats"][row] < 3 or not HEART_RATE_BPM[0] <= measures["rate"][row] <= HEART_RATE_BPM[1]:
            found.append("no_beats")
        if found:
            score[row] = 0.0
        else:
            found.extend(reason for reason, values in mapped.items() if values[row] < 0.5)
        reasons.append(tuple(found))
    return SignalQuality(
        score=score,
        usable=score >= threshold,
        reasons=reasons,
        start_seconds=plan.starts / TARGET_FS,
        bsqi=measures["bsqi"],
        beat_similarity=measures["similarity"],
        artefact_amplitude=measures["artefact"],
        in_band_fraction=measures["in_band"],
        heart_rate_bpm=measures["rate"],
        flat_fraction=measures["flat"],
        clipped_fraction=measures["clipped"],
        missing_fraction=measures["missing"],
        threshold=float(threshold),
        fs=fs,
    )
