"""Labelled 10 s windows for judging a signal-quality score on sources it was not tuned on.

Every window comes from the real recordings of ``../shared/data``; a source is one database, so a score can be
tuned without a source and tested on it (leave-one-source-out). Each window is 10 s at one of several rates
(128-1000 Hz) and in one of several units (mV, µV, ADC counts with an offset), labelled ``usable``,
``unusable`` or ``ambiguous`` (kept out of the scores, shown in the tables):

- recorded windows, as recorded:
  - LUDB lead II, 200 records: usable;
  - MIT-BIH, 20 windows of each of the 12 records: usable, except records 105 and 108, which the MIT-BIH
    directory describes as noisy (ambiguous);
  - CPSC 2019, 50 records: labelled by eye (``quality_labels/cpsc2019.csv``, with a note per record);
  - NSTDB 118 with recorded electrode-motion noise: 24 dB usable, 12 and 6 dB ambiguous, 0 dB unusable, but
    the first 40 s of each excerpt, before the noise starts, usable at every level;
  - NeuroKit's 1000 Hz recording: usable;
- the usable windows of each source with a corruption added, at the window's own rate, before the unit:
  muscle noise (20-150 Hz) and motion noise (0.5-15 Hz, bursts) at 24 and 18 dB (usable), 12 and 6 dB
  (ambiguous), 0 and -6 dB (unusable), labelled as NSTDB's levels are; baseline wander (0.05-0.4 Hz) at the
  window's own power (usable: the band-pass removes it); lead-off (6 s
  flat), a dropout (6 s of NaN), saturation (wander clipped at the rails), a short artefact (0.5-1 s of 1-10 Hz
  noise, peak to peak 5-10x the QRS), a baseline step of 10x the QRS amplitude: unusable; NSTDB's recorded
  electrode-motion noise (``em``) at the same levels as the generated noise, labelled alike.

SNR follows NSTDB's formula (Moody, Muldrow and Mark 1984): the signal power is the squared peak-to-peak QRS
amplitude over 8 (the median over the window's 1 s stretches, band-passed to 0.5-40 Hz), the noise power the mean
square of the noise in 0.5-40 Hz (where CLEF looks). The window's variance would put each level about 7 dB lower
(median of the usable recorded windows, 6-9 dB by source): the ECG is mostly between its QRS complexes. Baseline
wander, below the band, is scaled to the window's variance unfiltered.

NSTDB's noise records (bw, ma, em) are not in ``../shared``, but its em noise is: 118e00, 118e06 and 118e12 are one
segment of record 118 with the noise at three gains, scaled apart (a line fitted on their clean first 40 s leaves
1e-15), so the 0 dB excerpt less the 6 dB one is the noise alone (80 s; it correlates at 0.999999 with 0 dB less
12 dB). Only its first 40 s corrupt the other windows (``noise_source="nstdb"``): the noise under NSTDB's recorded
windows 4-7, which are marked ``noise_reused``, so that NSTDB held out is tested on recorded windows whose noise no
tuning window carries (its 8-11, and all of 24 dB, another segment). Measured by the formula above on the excerpts
(the clean first 40 s for the QRS, that noise for the rest), NSTDB's levels are about 8 dB noisier than their names
(0 dB is -8 dB, 6 dB -2 dB, 12 dB 4 dB): the names are NSTDB's, the generated levels ours.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal as sps

SOURCES = ("ludb", "mitdb", "cpsc2019", "nstdb", "neurokit")
RATES = (128.0, 250.0, 360.0, 500.0, 1000.0)
UNITS = ("mV", "uV", "adc")
LABELS = ("usable", "unusable", "ambiguous")
NOISY_MITDB = ("105", "108")
NSTDB_LABELS = {24: "usable", 12: "ambiguous", 6: "ambiguous", 0: "unusable"}
NSTDB_CLEAN_WINDOWS = 4
#: the NSTDB windows (after the clean ones) whose electrode-motion noise corrupts the other sources' windows
MOTION_REUSED_WINDOWS = 4
SNR_LABELS = {24: "usable", 18: "usable", 12: "ambiguous", 6: "ambiguous", 0: "unusable", -6: "unusable"}
#: usable recorded windows of each source that are corrupted (all of them where a source has fewer)
CORRUPTED_PER_SOURCE = 40
LABEL_FOLDER = Path(__file__).resolve().parent / "quality_labels"


@dataclass(frozen=True)
class LabelledWindow:
    """One 10 s window ``signal`` ``(n_samples,)`` at ``fs`` Hz in ``unit``, with where it came from and its label."""

    source: str
    record: str
    kind: str  # "recorded", or the corruption: "muscle", "motion", "wander", "lead_off", ...
    label: str
    signal: np.ndarray
    fs: float
    unit: str
    snr_db: float | None = None
    noise_source: str | None = None  # the source whose recorded noise was added ("nstdb" for its em noise)
    noise_reused: bool = False  # its recorded noise also corrupts other windows (NSTDB's 4-7 at 0, 6 and 12 dB)


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(" ".join(map(str, parts)).encode()).digest()[:8], "little")


def _band(x: np.ndarray, fs: float, low: float, high: float) -> np.ndarray:
    sos = sps.butter(4, [low, min(high, 0.45 * fs)], btype="band", fs=fs, output="sos")
    return sps.sosfiltfilt(sos, x)


def qrs_peak_to_peak(band: np.ndarray, fs: float) -> float:
    """NSTDB's QRS amplitude of a window ``band`` (0.5-40 Hz, ``(n_samples,)`` at ``fs`` Hz): the median peak to
    peak of its 1 s stretches."""
    second = int(fs)
    return float(np.median([np.ptp(band[k : k + second]) for k in range(0, len(band) - second + 1, second)]))


def qrs_amplitude(x: np.ndarray, fs: float) -> float:
    """``qrs_peak_to_peak`` of a window ``x`` ``(n_samples,)`` at ``fs`` Hz, in its unit, band-passed to 0.5-40 Hz."""
    return qrs_peak_to_peak(_band(x, fs, 0.5, 40.0), fs)


def snr_db(ecg: np.ndarray, noise: np.ndarray, fs: float) -> float:
    """The SNR of ``noise`` added to ``ecg`` (both at ``fs`` Hz) as the benchmark defines it: the squared QRS peak
    to peak over 8 against the noise's mean square, both in 0.5-40 Hz."""
    qrs = qrs_amplitude(ecg, fs)
    return float(10 * np.log10(qrs**2 / 8 / np.mean(_band(noise, fs, 0.5, 40.0) ** 2)))


def _recorded(shared: Path) -> Iterator[tuple[str, str, str, np.ndarray, float]]:
    """(source, record, label, signal in mV, fs) of every recorded window."""
    import scipy.io
    import wfdb

    data = shared / "data"
    for header in sorted((data / "ludb" / "data").glob("*.hea"), key=lambda p: int(p.stem)):
        record = wfdb.rdrecord(str(header.with_suffix("")), channel_names=["ii"])
        yield "ludb", header.stem, "usable", record.p_signal[:5000, 0].astype(np.float64), 500.0
    for path in sorted((data / "mitdb-tpcp").glob("*.npz")):
        ecg = np.load(path)["ecg"].astype(np.float64)
        label = "ambiguous" if path.stem in NOISY_MITDB else "usable"
        for k, start in enumerate(np.linspace(0, len(ecg) - 3600, 20).astype(int)):
            yield "mitdb", f"{path.stem}:{k}", label, ecg[start : start + 3600], 360.0
    with open(LABEL_FOLDER / "cpsc2019.csv", newline="") as handle:
        labels = {row["record"]: row["label"] for row in csv.DictReader(handle)}
    for path in sorted((data / "cpsc2019-sample" / "data").glob("*.mat")):
        yield "cpsc2019", path.stem, labels[path.stem], scipy.io.loadmat(path)["ecg"][:, 0].astype(np.float64), 500.0
    for snr, label in NSTDB_LABELS.items():
        ecg = np.loadtxt(data / "nstdb-118" / f"118e{snr:02d}.csv")
        for k in range(len(ecg) // 3600):
            # the noise starts about 40 s into each excerpt: its first 4 windows are clean at every level
            clean = k < NSTDB_CLEAN_WINDOWS
            yield "nstdb", f"118e{snr:02d}:{k}", "usable" if clean else label, ecg[k * 3600 : (k + 1) * 3600], 360.0
    ecg = np.loadtxt(data / "neurokit-ecg" / "ecg_1000hz.csv", skiprows=1)
    for k in range(len(ecg) // 10000):
        yield "neurokit", f"ecg_1000hz:{k}", "usable", ecg[k * 10000 : (k + 1) * 10000], 1000.0


def electrode_motion(shared: Path) -> np.ndarray:
    """NSTDB's recorded electrode-motion noise at 360 Hz (80 s, arbitrary scale): the 0 dB excerpt of record 118
    less the 6 dB one, once the noise has started, after scaling the 0 dB file onto the 6 dB one by a line fitted
    on their clean first 40 s (the files are z-scored apart)."""
    folder = shared / "data" / "nstdb-118"
    loud, quiet = (np.loadtxt(folder / f"118e{snr:02d}.csv") for snr in (0, 6))
    clean = NSTDB_CLEAN_WINDOWS * 3600
    slope, offset = np.polyfit(loud[:clean], quiet[:clean], 1)
    return (slope * loud + offset - quiet)[clean:]


def _reuses_motion(source: str, record: str) -> bool:
    """Whether a recorded window's noise is the part of ``electrode_motion`` that corrupts other windows."""
    if source != "nstdb" or record.startswith("118e24"):
        return False
    index = int(record.split(":")[1]) - NSTDB_CLEAN_WINDOWS
    return 0 <= index < MOTION_REUSED_WINDOWS


def _resampled(x: np.ndarray, fs: float, rate: float) -> np.ndarray:
    n = int(round(10 * rate))
    if rate == fs:
        return x[:n]
    from fractions import Fraction

    ratio = Fraction(rate / fs).limit_denominator(1000)
    return sps.resample_poly(x, ratio.numerator, ratio.denominator, padtype="line")[:n]


def _noise(kind: str, n: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(n) / fs
    if kind == "muscle":
        return _band(rng.standard_normal(n), fs, 20.0, 150.0)
    if kind == "motion":
        bursts = _band(np.abs(rng.standard_normal(n)), fs, 0.05, 0.5) > 0  # on for about half the time
        return _band(rng.standard_normal(n), fs, 0.5, 15.0) * (0.2 + bursts)
    # baseline wander: a few slow sinusoids
    frequencies = rng.uniform(0.05, 0.4, 3)
    return sum(np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi)) for f in frequencies)


def burst_noise(length: int, fs: float, rng: np.random.Generator) -> np.ndarray:
    """``length`` samples at ``fs`` Hz of 1-10 Hz noise (motion artefact) with 10% tapers at each end (no step where
    it starts), peak to peak 1."""
    burst = _band(rng.standard_normal(length + int(fs)), fs, 1.0, 10.0)[int(fs) // 2 : int(fs) // 2 + length]
    burst *= sps.windows.tukey(length, 0.2)
    return burst / np.ptp(burst)


def with_burst(x: np.ndarray, fs: float, times_qrs: float, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` with ``seconds`` of ``burst_noise`` whose peak to peak is ``times_qrs`` its QRS (``qrs_amplitude``),
    at least 1 s from its ends (the noise drawn first, then where it goes)."""
    length = int(seconds * fs)
    burst = burst_noise(length, fs, rng)
    at = int(rng.integers(int(fs), x.size - length - int(fs)))
    y = x.copy()
    y[at : at + length] += burst * times_qrs * qrs_amplitude(x, fs)
    return y


def _corruptions(
    x: np.ndarray, fs: float, rng: np.random.Generator, motion: np.ndarray
) -> Iterator[tuple[str, str, np.ndarray, float | None]]:
    """(kind, label, corrupted signal, SNR) for one usable window ``x`` at ``fs``; ``motion``: recorded
    electrode-motion noise at 360 Hz (``electrode_motion``)."""
    band = _band(x, fs, 0.5, 40.0)
    qrs = qrs_peak_to_peak(band, fs)
    power = qrs**2 / 8  # NSTDB's signal power

    def at_snr(noise: np.ndarray, snr: float) -> np.ndarray:
        in_band = float(np.mean(_band(noise, fs, 0.5, 40.0) ** 2))  # the noise power where CLEF looks
        return x + noise * np.sqrt(power / 10 ** (snr / 10) / in_band)

    for kind in ("muscle", "motion"):
        for snr, label in SNR_LABELS.items():
            yield kind, label, at_snr(_noise(kind, len(x), fs, rng), snr), float(snr)
    wander = _noise("wander", len(x), fs, rng)
    yield "wander", "usable", x + wander * np.sqrt(np.var(band) / np.var(wander)), None
    n6 = int(6 * fs)
    start = int(rng.integers(0, len(x) - n6))
    flat = x.copy()
    flat[start : start + n6] = flat[start]
    yield "lead_off", "unusable", flat, None
    gap = x.copy()
    gap[start : start + n6] = np.nan
    yield "dropout", "unusable", gap, None
    swing = x + 20 * qrs * _noise("wander", len(x), fs, rng)
    rail = np.percentile(swing, [30, 70])
    yield "saturation", "unusable", np.clip(swing, rail[0], rail[1]), None
    length = int(rng.uniform(0.5, 1.0) * fs)
    at = int(rng.integers(0, len(x) - length))
    burst = burst_noise(length, fs, rng)
    artefact = x.copy()
    artefact[at : at + length] += burst * rng.uniform(5, 10) * qrs  # peak to peak 5-10x the QRS
    yield "short_artefact", "unusable", artefact, None
    step = x.copy()
    step[int(rng.integers(int(fs), len(x) - int(fs))) :] += 10 * qrs
    yield "baseline_step", "unusable", step, None
    for snr, label in SNR_LABELS.items():  # last: the draws above are those of the benchmark without it
        start = int(rng.integers(0, motion.size - 3600))
        yield "em", label, at_snr(_resampled(motion[start : start + 3600], 360.0, fs), snr), float(snr)


def _in_unit(x: np.ndarray, unit: str) -> np.ndarray:
    if unit == "mV":
        return x
    if unit == "uV":
        return x * 1000.0
    return np.round(x * 200.0 + 1024.0)  # 200 ADC units per mV on a 1024 baseline, as in MIT-BIH's format 212


def quality_windows(shared: Path, corrupted_per_source: int = CORRUPTED_PER_SOURCE) -> list[LabelledWindow]:
    """Every labelled window (recorded and corrupted), deterministic: the rate, unit and noise of each window
    follow from its source and record name."""
    windows: list[LabelledWindow] = []
    corrupted: dict[str, int] = {}
    motion = electrode_motion(shared)[: MOTION_REUSED_WINDOWS * 3600]
    for source, record, label, ecg, fs in _recorded(shared):
        seed = _seed(source, record)
        rate, unit = RATES[seed % len(RATES)], UNITS[(seed // len(RATES)) % len(UNITS)]
        x = _resampled(ecg, fs, rate)
        reused = _reuses_motion(source, record)
        windows.append(
            LabelledWindow(source, record, "recorded", label, _in_unit(x, unit), rate, unit, noise_reused=reused)
        )
        if label != "usable" or corrupted.get(source, 0) >= corrupted_per_source:
            continue
        corrupted[source] = corrupted.get(source, 0) + 1
        rng = np.random.default_rng(seed)
        for kind, corrupted_label, y, snr in _corruptions(x, rate, rng, motion):
            noise_source = "nstdb" if kind == "em" else None
            windows.append(
                LabelledWindow(source, record, kind, corrupted_label, _in_unit(y, unit), rate, unit, snr, noise_source)
            )
    return windows
