"""clef_sdk.beats on real ECG: the two detectors, their agreement, and what counts as one ectopic beat."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from scipy import signal as sps

import clef_sdk as clef
from clef_sdk import beats

FS = 500  # LUDB and CPSC 2019
MATCH = round(beats.MATCH_SECONDS * FS)


def ecg_band(x: np.ndarray) -> np.ndarray:
    sos = sps.butter(4, [0.5, 40.0], btype="band", fs=FS, output="sos")
    return sps.sosfiltfilt(sos, x - x.mean())


def pan_tompkins_band(band: np.ndarray) -> np.ndarray:
    sos = sps.butter(1, beats.PAN_TOMPKINS_BAND_HZ, btype="band", fs=FS, output="sos")
    return sps.sosfiltfilt(sos, band)


def ludb_lead_ii(data_dir: Path, record: int) -> np.ndarray:
    return np.fromfile(data_dir / "ludb" / "data" / f"{record}.dat", dtype="<i2").reshape(-1, 12)[:, 1] / 1000.0


@pytest.mark.parametrize("record", [45, 74, 90])
def test_qs_complexes_are_found_by_both_detectors(data_dir: Path, record: int) -> None:
    """LUDB lead II of records whose QRS is all negative: the neurokit detector takes a beat's most prominent local
    maximum inside its QRS, and found 1, 2 and 0 beats of the 10 Pan-Tompkins found ("no_beats"); run again on
    the signal negated it finds 9, 9 and 10."""
    x = ludb_lead_ii(data_dir, record)
    band = ecg_band(x)
    cleaned = beats.clean_for_detectors(x, band, FS)
    upright = beats.find_r_peaks(cleaned, FS, "neurokit")
    neurokit, pan_tompkins = beats.detect_beats(cleaned, pan_tompkins_band(band), FS)
    # measured: agreement 0.90, 0.90, 0.82 (upright alone 0.10, 0.09, 0.00)
    assert beats.beat_agreement(upright, pan_tompkins, MATCH) < 0.2
    assert beats.beat_agreement(neurokit, pan_tompkins, MATCH) >= 0.75
    assert clef.signal_quality(x, FS).reasons == [()]


def test_an_upright_signal_is_not_negated(data_dir: Path) -> None:
    """Where the neurokit detector finds beats, its run on the signal as given is kept."""
    x = ludb_lead_ii(data_dir, 1)
    band = ecg_band(x)
    cleaned = beats.clean_for_detectors(x, band, FS)
    neurokit, _ = beats.detect_beats(cleaned, pan_tompkins_band(band), FS)
    np.testing.assert_array_equal(neurokit, beats.find_r_peaks(cleaned, FS, "neurokit"))


def test_pan_tompkins_on_its_band_finds_the_reference_beats(data_dir: Path) -> None:
    """The 31 usable CPSC 2019 records (labelled by eye, ``benchmarks/quality_labels``), against their reference R
    peaks: Pan-Tompkins on its 5-15 Hz band agrees with them better than on the neurokit-cleaned signal, where it
    took tall T waves for beats (data_00513, data_01849: twice as many beats as the reference)."""
    labels_file = Path(__file__).resolve().parents[1] / "benchmarks" / "quality_labels" / "cpsc2019.csv"
    with labels_file.open() as labels:
        usable = [row["record"] for row in csv.DictReader(labels) if row["label"] == "usable"]
    on_band, on_cleaned = [], []
    folder = data_dir / "cpsc2019-sample"
    for record in usable:
        x = scipy.io.loadmat(folder / "data" / f"{record}.mat")["ecg"][:, 0].astype(np.float64)
        reference = np.ravel(scipy.io.loadmat(folder / "ref" / f"R_{record[5:]}.mat")["R_peak"]).astype(np.int64)
        band = ecg_band(x)
        cleaned = beats.clean_for_detectors(x, band, FS)
        _, pan_tompkins = beats.detect_beats(cleaned, pan_tompkins_band(band), FS)
        on_band.append(beats.beat_agreement(pan_tompkins, reference, MATCH))
        on_cleaned.append(beats.beat_agreement(beats.find_r_peaks(cleaned, FS, "pantompkins1985"), reference, MATCH))
    # measured: mean agreement 0.869 on the band, 0.835 on the cleaned signal (better on 11 records, worse on 7)
    assert len(usable) == 31
    assert np.mean(on_band) >= 0.85 and np.mean(on_band) - np.mean(on_cleaned) >= 0.02, (
        np.mean(on_band),
        np.mean(on_cleaned),
    )


def test_an_ectopic_complex_makes_two_large_deflections_and_a_burst_more(data_dir: Path) -> None:
    """CPSC 2019 data_01170's giant premature complex at 5.17 s (QRS and T wave), and the same stretch with 0.5 s
    of 1-10 Hz noise at the complex's peak to peak added over it."""
    x = scipy.io.loadmat(data_dir / "cpsc2019-sample" / "data" / "data_01170.mat")["ecg"][:, 0].astype(np.float64)
    band = ecg_band(x)
    peak = round(5.07 * FS) + int(np.argmax(np.abs(band[round(5.07 * FS) : round(5.27 * FS)])))  # its R peak
    before, after = beats.complex_samples(FS)
    complex_ = band[peak - before : peak + after]
    assert beats.large_deflections(complex_) == 2  # measured 2 at 128-500 Hz
    rng = np.random.default_rng(0)
    noise = sps.sosfiltfilt(sps.butter(4, [1, 10], btype="band", fs=FS, output="sos"), rng.standard_normal(3 * FS))
    burst = noise[FS : FS + FS // 2] * sps.windows.tukey(FS // 2, 0.2)
    with_burst = complex_.copy()
    with_burst[before - FS // 8 : before - FS // 8 + FS // 2] += burst / np.ptp(burst) * np.ptp(complex_)
    assert beats.large_deflections(with_burst) >= 3
