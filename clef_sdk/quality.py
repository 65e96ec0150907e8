"""Per-window signal quality: is there ECG in this 10 s window? ``clef.signal_quality``.

Windows are those of :func:`clef_sdk.preprocess` (same ``stride_seconds`` and ``tail``). ``"missing"``, ``"flat"``
and ``"clipped"`` are judged on the recorded samples at the recording's own rate; the beats and the in-band power
at that rate up to 500 Hz (``QUALITY_MAX_FS``), above it on each stretch of the recording resampled to about
500 Hz: the rates the detectors and the ranges below were tuned on (measured at 4-10 kHz, ``kalidas2017`` misses
the beats of clean ECG). Hard failures score 0:

- ``"missing"``: more than half of the window is NaN;
- ``"flat"``: more than half of the window is flat (the same value for at least 0.1 s: lead-off, dropout);
- ``"clipped"``: more than 2% of the window sits on its extreme values in runs of at least 20 ms (saturation);
- ``"no_beats"``: fewer than 3 beats, or a heart rate outside 24-240 bpm.

Otherwise the score is the geometric mean of three measures, each mapped linearly to [0, 1]:

- beat agreement (bSQI, from 0.3 to 0.7): R peaks from two independent detectors of neurokit2 (``neurokit`` and
  ``kalidas2017``, a stationary-wavelet detector, on ``nk.ecg_clean``) matched within 150 ms, as
  matched / (found by either);
- beat similarity (from 0.3 to 0.6): for each beat (-0.2 s to +0.4 s around its R peak), its Pearson correlation
  with the second most similar other beat of the window, averaged. Every beat of a real rhythm has look-alikes,
  also in bigeminy or with PVCs, where a single median template would not fit half of the beats;
- in-band power (from 0.3 to 0.5): power in 3-40 Hz over power in 0.5-40 Hz, the median over 2 s half-overlapping
  segments of the recorded window. Motion artefact and baseline wander lower it; the median lets one short
  artefact in an otherwise clean window pass.

``usable = score >= 0.5``. A low measure adds its reason: ``"detectors_disagree"``, ``"beats_dissimilar"``,
``"low_frequency_noise"`` (each when its own mapped value is below 0.5). Pure Gaussian noise, which neurokit2's
own ``ecg_quality`` rates excellent, is flagged here. Measured on real data: see the docs page for app developers.
"""

from __future__ import annotations

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

__all__ = ["DEFAULT_THRESHOLD", "REASONS", "SignalQuality", "planned_quality", "signal_quality"]

DEFAULT_THRESHOLD = 0.5
REASONS = ("missing", "flat", "clipped", "no_beats", "detectors_disagree", "beats_dissimilar", "low_frequency_noise")
MATCH_SECONDS = 0.15
FLAT_RUN_SECONDS = 0.1
CLIP_RUN_SECONDS = 0.02
BEAT_WINDOW_SECONDS = (0.2, 0.4)
HEART_RATE_BPM = (24.0, 240.0)
# Cleaning runs on stretches of this many windows at a time (plus margins); the detectors run window by window.
SEGMENT_WINDOWS = 60
MARGIN_SECONDS = 2.0
DETECTORS = ("neurokit", "kalidas2017")
BAND_SEGMENT_SECONDS = 2.0
# Above this rate the beats and the in-band power are measured on each stretch resampled to about it (the flat,
# clipped and missing samples still on the recorded ones). kalidas2017 looks for the QRS in a fixed wavelet band,
# fs/16 to fs/8 (16-31 Hz at 250 Hz): the higher the rate, the less QRS it holds. Measured on MIT-BIH, LUDB lead I,
# CPSC 2019 and NSTDB resampled up from their own rates (360 and 500 Hz), measuring as recorded: at 1000 Hz 2 of 50
# CPSC windows change usable, at 2000 Hz 37 of 2160 MIT-BIH windows, at 4000 Hz 541 (10 kHz: 1749), mostly
# "detectors_disagree". Resampled to 500 Hz, every window at 600 Hz to 10 kHz is usable as at its own rate (scores
# within 0.04 but for 10 MIT-BIH windows, at most 0.23); to 1000 Hz, the 1000 Hz changes stay. At or below 500 Hz
# nothing changes.
QUALITY_MAX_FS = 500.0
QRS_BAND_HZ = (3.0, 40.0)
ECG_BAND_HZ = (0.5, 40.0)
# Each measure is mapped linearly from this range to [0, 1]; the score is the geometric mean of the three. Chosen
# on the real recordings of ../shared/data (NSTDB 118, LUDB lead I, MIT-BIH, CPSC 2019) on a grid of detectors,
# measures and ranges: among the settings keeping at least 95% of each clean set usable and separating NSTDB 24 dB
# from 0 dB, the one whose NSTDB scores fall most with the noise. Checked on held-out leads and rates: see the
# docs page for app developers.
BSQI = (0.3, 0.7)
SIMILARITY = (0.3, 0.6)
IN_BAND = (0.3, 0.5)


@dataclass
class SignalQuality:
    """Quality of each 10 s window of one recording, aligned with :func:`clef_sdk.preprocess`'s windows.

    ``score`` float ``(n_windows,)`` in [0, 1], higher is cleaner; ``usable`` bool ``(n_windows,)``,
    ``score >= threshold``; ``reasons``: per window, the tuple of problems found (empty when clean). The measures
    behind the score are kept: ``bsqi``, ``beat_similarity``, ``heart_rate_bpm``, ``flat_fraction``,
    ``clipped_fraction``, ``missing_fraction``; ``start_seconds`` says where each window starts.
    """

    score: np.ndarray
    usable: np.ndarray
    reasons: list[tuple[str, ...]]
    start_seconds: np.ndarray
    bsqi: np.ndarray
    beat_similarity: np.ndarray
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
    n = values.size
    if n == 0:
        return np.zeros(0, dtype=bool)
    change = np.flatnonzero(values[1:] != values[:-1]) + 1
    starts = np.r_[0, change]
    lengths = np.diff(np.r_[starts, n])
    keep = lengths >= min_length
    if select is not None:
        keep &= select[starts]
    mask = np.zeros(n, dtype=bool)
    for start, length in zip(starts[keep], lengths[keep]):
        mask[start : start + length] = True
    return mask


def _quality_ratio(fs: float) -> Fraction:
    """``up / down`` (small terms) taking ``fs`` to about ``QUALITY_MAX_FS`` (never above ``fs``); 1 at or below
    it."""
    if fs <= QUALITY_MAX_FS:
        return Fraction(1)
    return min(Fraction(1), (Fraction(QUALITY_MAX_FS) / Fraction(fs)).limit_denominator(100))


def _clean(segment: np.ndarray, fs: float) -> np.ndarray:
    import neurokit2 as nk

    if fs >= 125:
        return np.asarray(nk.ecg_clean(segment, sampling_rate=fs, method="neurokit"), dtype=np.float64)
    # neurokit's 50 Hz notch needs a Nyquist above 50 Hz: a plain 0.5-40 Hz band-pass instead
    from scipy import signal as sps

    sos = sps.butter(4, [0.5, min(40.0, 0.4 * fs)], btype="band", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, segment)


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
    """Mean over beats of each beat's correlation with its second most similar other beat (0 with < 3 beats)."""
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
    return float(np.mean(np.sort(correlations, axis=1)[:, -2]))


def _in_band_fraction(window: np.ndarray, fs: float) -> float:
    """Median over 2 s half-overlapping segments of the power in 3-40 Hz over the power in 0.5-40 Hz."""
    from scipy import signal as sps

    segment = int(BAND_SEGMENT_SECONDS * fs)
    if window.size < segment:
        return 0.0
    frequencies, _, power = sps.spectrogram(window, fs=fs, nperseg=segment, noverlap=segment // 2)
    total = power[(frequencies >= ECG_BAND_HZ[0]) & (frequencies < ECG_BAND_HZ[1])].sum(axis=0)
    in_band = power[(frequencies >= QRS_BAND_HZ[0]) & (frequencies < QRS_BAND_HZ[1])].sum(axis=0)
    return float(np.median(np.divide(in_band, total, out=np.zeros_like(total), where=total > 0)))


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
    """Like :func:`signal_quality` for a recording already checked by :func:`clef_sdk.inputs.check_signal`,
    at a checked ``fs``, with its windows planned by :func:`clef_sdk.windows.plan_windows`."""
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold must be within [0, 1], got {threshold!r}")
    from scipy import signal as sps

    recording = Recording.at_rate(array, fs)
    first, last = recording.input_range(plan.starts, plan.valid_samples)
    n = len(plan)
    measures = {
        name: np.zeros(n) for name in ("bsqi", "similarity", "beats", "rate", "flat", "clipped", "missing", "in_band")
    }
    margin = round(MARGIN_SECONDS * fs)
    # The beats and the in-band power are measured at measure_fs (fs, or about QUALITY_MAX_FS above it).
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
        bridged = recording.bridged(lo, hi)[0] if missing.any() else raw
        # padtype="line": the stretch minus the line through its end samples is resampled, so no step at its ends
        measured = bridged if up == down else sps.resample_poly(bridged, up, down, padtype="line")
        cleaned = _clean(measured, measure_fs)
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
            measures["missing"][row] = missing[a:b].mean()
            measures["flat"][row] = _runs_mask(window, round(FLAT_RUN_SECONDS * fs)).mean()
            finite = window[~np.isnan(window)]
            if finite.size:
                extreme = (window == finite.max()) | (window == finite.min())
                measures["clipped"][row] = _runs_mask(window, max(3, round(CLIP_RUN_SECONDS * fs)), extreme).mean()
            in_a = peaks_a[(peaks_a >= qa) & (peaks_a < qb)]
            in_b = peaks_b[(peaks_b >= qa) & (peaks_b < qb)]
            measures["beats"][row] = in_a.size
            measures["rate"][row] = in_a.size / ((b - a) / fs) * 60
            measures["bsqi"][row] = _bsqi(in_a, in_b, round(MATCH_SECONDS * measure_fs))
            measures["similarity"][row] = _beat_similarity(cleaned, in_a, measure_fs)
            measures["in_band"][row] = _in_band_fraction(measured[qa:qb], measure_fs)

    def ramp(values: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
        return np.clip((values - bounds[0]) / (bounds[1] - bounds[0]), 0, 1)

    bsqi_score = ramp(measures["bsqi"], BSQI)
    similarity_score = ramp(measures["similarity"], SIMILARITY)
    band_score = ramp(measures["in_band"], IN_BAND)
    reasons: list[tuple[str, ...]] = []
    score = np.cbrt(bsqi_score * similarity_score * band_score)
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
            if bsqi_score[row] < 0.5:
                found.append("detectors_disagree")
            if similarity_score[row] < 0.5:
                found.append("beats_dissimilar")
            if band_score[row] < 0.5:
                found.append("low_frequency_noise")
        reasons.append(tuple(found))
    return SignalQuality(
        score=score,
        usable=score >= threshold,
        reasons=reasons,
        start_seconds=plan.starts / TARGET_FS,
        bsqi=measures["bsqi"],
        beat_similarity=measures["similarity"],
        in_band_fraction=measures["in_band"],
        heart_rate_bpm=measures["rate"],
        flat_fraction=measures["flat"],
        clipped_fraction=measures["clipped"],
        missing_fraction=measures["missing"],
        threshold=float(threshold),
        fs=fs,
    )
