"""The beats of a window for ``clef.signal_quality``: R peaks of two independent detectors, how well they agree
(bSQI), how alike the beats are, and which are ectopic (left out of the artefact measure).

Indices are samples of the signal given, at ``fs`` Hz.
"""

from __future__ import annotations

import warnings

import numpy as np

from .array_stats import deflections, small_median

__all__ = [
    "BEAT_WINDOW_SECONDS",
    "DETECTORS",
    "ECTOPIC_SECONDS",
    "ECTOPIC_SHARP_HZ",
    "MATCH_SECONDS",
    "PAN_TOMPKINS_BAND_HZ",
    "beat_agreement",
    "beat_similarity",
    "clean_for_detectors",
    "complex_samples",
    "detect_beats",
    "ectopic_beats",
    "find_r_peaks",
    "large_deflections",
    "premature_beats",
]

MATCH_SECONDS = 0.15
BEAT_WINDOW_SECONDS = (0.2, 0.4)
# Two detectors that share no stage: a smoothed gradient, and Pan-Tompkins' derivative, square and integration on
# its 5-15 Hz band (order 1, as neurokit2's own "pantompkins1985" cleaning; neurokit2's detector leaves the band to
# the cleaning, and on the neurokit-cleaned signal it took tall T waves for beats: usable windows of the quality
# benchmark with bSQI below 0.5 went from 32 to 21 of 248 on CPSC 2019, 10 to 6 of 480 on LUDB, 3 to 0 on MIT-BIH).
# kalidas2017 (a stationary wavelet), used before, agreed as well but took 1.1 ms a window against 0.18 ms (10-14 s
# at 250 Hz), most of it redesigning its Butterworth filter on every call.
DETECTORS = ("neurokit", "pantompkins1985")
PAN_TOMPKINS_BAND_HZ = (5.0, 15.0)
# A giant ectopic beat is as large and as long as a short burst of motion noise; the rhythm and its QRS tell them
# apart. A beat (of the neurokit detector) coming early, before PREMATURE times the median RR interval, followed by a
# compensatory pause (the intervals before and after it sum to twice the median within COMPENSATORY), and sharp (its
# peak amplitude above ECTOPIC_SHARP_HZ within ECTOPIC_QRS_SECONDS of its R peak SHARPNESS times the median of the
# other beats'), with the unfiltered level's median over the 0.5 s before and after its complex within LEVEL_SHIFT of
# the complex's peak to peak, and its complex (ECTOPIC_SECONDS before its R peak to after it: QRS and T wave) making
# at most two deflections of DEFLECTION_SHARE of its largest or more, is left out of the artefact amplitude. A burst
# that moves a detection early keeps the pause but mostly has no QRS of its own there (motion noise lies below
# 15 Hz) and swings back and forth; one between beats splits an interval without the pause; a baseline step just
# before a beat is sharp and moves the detection early too, but changes the level. On the quality benchmark's giant
# ectopic (CPSC 2019 data_01170) the sharpness is 4.9 and the complex makes 2 large deflections at 128-500 Hz; of
# the detections that passed the other tests in 0.5 s bursts at 10x the QRS, 9 of 15 made 3-6 (those bursts went
# uncaught: 97.0% of LUDB's were caught without this test, 99.8% with it).
ECTOPIC_PREMATURE = 0.85
ECTOPIC_COMPENSATORY = 0.1
ECTOPIC_SHARP_HZ = 15.0
ECTOPIC_QRS_SECONDS = 0.06
ECTOPIC_SHARPNESS = 2.0
ECTOPIC_LEVEL_SHIFT = 0.2
ECTOPIC_SECONDS = (0.2, 0.5)
ECTOPIC_DEFLECTION_SHARE = 0.3


def clean_for_detectors(segment: np.ndarray, band: np.ndarray, fs: float) -> np.ndarray:
    """``segment`` as the detectors take it: neurokit2's cleaning, or below 125 Hz its 0.5-40 Hz ``band``
    (neurokit's 50 Hz notch needs a Nyquist above 50 Hz)."""
    import neurokit2 as nk

    if fs >= 125:
        return np.asarray(nk.ecg_clean(segment, sampling_rate=fs, method="neurokit"), dtype=np.float64)
    return band


def find_r_peaks(signal: np.ndarray, fs: float, method: str) -> np.ndarray:
    """R peaks (sample indices) of one neurokit2 detector; none where it fails (on signals without beats)."""
    import neurokit2 as nk

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peaks = nk.ecg_findpeaks(signal, sampling_rate=int(round(fs)), method=method)["ECG_R_Peaks"]
    except Exception:  # detectors fail on signals without beats (e.g. flat); that is "no beats"
        peaks = np.zeros(0, dtype=np.int64)
    return np.asarray(peaks, dtype=np.int64)


def detect_beats(cleaned: np.ndarray, qrs_band: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """R peaks (sample indices) of two independent neurokit2 detectors: ``neurokit`` on ``cleaned``, and
    ``pantompkins1985`` on ``qrs_band`` (the same samples in Pan and Tompkins' 5-15 Hz band, which neurokit2 leaves
    to its cleaning: on the cleaned signal it took tall T waves for beats).

    The ``neurokit`` detector takes each beat's most prominent local maximum inside its QRS, and a QS complex (all
    negative, as in lead II of some LUDB records) has none: it found 0-2 of the 10 beats Pan-Tompkins found there.
    Where it finds fewer than half of Pan-Tompkins' beats, it runs again on the signal negated, and the run finding
    more beats is kept. Negating by the signal's polarity instead (its deepest troughs deeper than its peaks are
    high) broke it on records with large negative T waves (CPSC 2019 data_00502: bsqi 0.91 to 0.19)."""
    neurokit = find_r_peaks(cleaned, fs, DETECTORS[0])
    pantompkins = find_r_peaks(qrs_band, fs, DETECTORS[1])
    if neurokit.size < pantompkins.size / 2:
        negated = find_r_peaks(-cleaned, fs, DETECTORS[0])
        if negated.size > neurokit.size:
            neurokit = negated
    return neurokit, pantompkins


def beat_agreement(a: np.ndarray, b: np.ndarray, tolerance: int) -> float:
    """bSQI of two detectors' sorted R peaks ``a`` and ``b`` (sample indices): the peaks of ``a`` with one of ``b``
    within ``tolerance`` samples, over the peaks found by either; 0 where one found none."""
    if a.size == 0 or b.size == 0:
        return 0.0
    nearest = np.searchsorted(b, a)
    # np.maximum / np.minimum rather than np.clip: the same indices in a third of the time (called per window)
    left = np.abs(a - b[np.maximum(nearest - 1, 0)])
    right = np.abs(a - b[np.minimum(nearest, b.size - 1)])
    matched = int(np.count_nonzero(np.minimum(left, right) <= tolerance))
    return matched / (a.size + b.size - matched)


def beat_similarity(cleaned: np.ndarray, peaks: np.ndarray, fs: float) -> float:
    """Median over beats of each beat's correlation with its second most similar other beat (0 with < 3 beats)."""
    before, after = (round(s * fs) for s in BEAT_WINDOW_SECONDS)
    peaks = peaks[(peaks >= before) & (peaks <= cleaned.size - after)]
    if peaks.size < 3:
        return 0.0
    beats = cleaned[peaks[:, None] + np.arange(-before, after)]
    beats = beats - beats.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.add.reduce(beats * beats, axis=1))  # np.linalg.norm's sum, without its checks
    if norms.all():
        beats = beats / norms[:, None]
    else:  # a flat beat correlates with nothing
        beats = np.divide(beats, norms[:, None], out=np.zeros_like(beats), where=norms[:, None] > 0)
    correlations = beats @ beats.T
    correlations.flat[:: peaks.size + 1] = -np.inf  # each beat's correlation with itself
    return small_median(np.partition(correlations, -2, axis=1)[:, -2])


def complex_samples(fs: float) -> tuple[int, int]:
    """How many samples at ``fs`` Hz before and after its R peak make a beat's complex (``ECTOPIC_SECONDS``)."""
    return round(ECTOPIC_SECONDS[0] * fs), round(ECTOPIC_SECONDS[1] * fs)


def premature_beats(peaks: np.ndarray) -> np.ndarray:
    """Which of ``peaks`` (sorted R peaks, sample indices) come early and are followed by a compensatory pause
    (``ECTOPIC_PREMATURE``, ``ECTOPIC_COMPENSATORY``): bool ``(n_peaks,)``, all False with fewer than 4 beats."""
    premature = np.zeros(peaks.size, dtype=bool)
    if peaks.size < 4:
        return premature
    intervals = peaks[1:] - peaks[:-1]
    typical = small_median(intervals)
    before, after = intervals[:-1], intervals[1:]
    premature[1:-1] = (before < ECTOPIC_PREMATURE * typical) & (
        np.abs(before + after - 2 * typical) <= ECTOPIC_COMPENSATORY * 2 * typical
    )
    return premature


def large_deflections(complex_: np.ndarray) -> int:
    """How many deflections (stretches between zero crossings) of ``complex_`` (0.5-40 Hz) peak at
    ``ECTOPIC_DEFLECTION_SHARE`` of its largest or more."""
    amplitudes = deflections(complex_)[2]
    return int(np.sum(amplitudes >= ECTOPIC_DEFLECTION_SHARE * amplitudes.max()))


def ectopic_beats(
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
    before, after = complex_samples(fs)
    for peak in peaks[candidates & (peak_amplitude >= ECTOPIC_SHARPNESS * small_median(others))]:
        preceding = level[max(0, peak - before - after) : max(0, peak - before)]
        following = level[peak + after : peak + 2 * after]
        complex_ = band[max(0, peak - before) : peak + after]
        if preceding.size == 0 or following.size == 0:
            continue
        shift = abs(small_median(following) - small_median(preceding))
        if shift <= ECTOPIC_LEVEL_SHIFT * float(np.ptp(complex_)) and large_deflections(complex_) <= 2:
            found.append(peak)
    return np.array(found, dtype=peaks.dtype)
