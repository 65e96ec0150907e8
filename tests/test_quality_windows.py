"""The labelled quality benchmark (benchmarks/_quality_windows.py): every source, every rate and unit, labels as
documented, noise at the SNR it claims, deterministic."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _quality_windows as qw


@pytest.fixture(scope="module")
def windows(data_dir: Path) -> list[qw.LabelledWindow]:
    return qw.quality_windows(data_dir.parent, corrupted_per_source=3)


def test_every_source_rate_unit_and_label_is_there(windows) -> None:
    assert {w.source for w in windows} == set(qw.SOURCES)
    assert {w.fs for w in windows} == set(qw.RATES)
    assert {w.unit for w in windows} == set(qw.UNITS)
    for source in qw.SOURCES:
        labels = Counter(w.label for w in windows if w.source == source)
        assert labels["usable"] > 0 and labels["unusable"] > 0, (source, labels)
    assert all(len(w.signal) == round(10 * w.fs) for w in windows)  # 10 s each


def test_labels_follow_the_documented_rules(windows) -> None:
    for w in windows:
        if w.kind == "recorded" and w.source == "ludb":
            assert w.label == "usable"
        if w.kind == "recorded" and w.source == "mitdb":
            assert w.label == ("ambiguous" if w.record.split(":")[0] in qw.NOISY_MITDB else "usable")
        if w.kind == "recorded" and w.source == "nstdb":
            clean_start = int(w.record.split(":")[1]) < qw.NSTDB_CLEAN_WINDOWS
            assert w.label == ("usable" if clean_start else qw.NSTDB_LABELS[int(w.record[4:6])])
        if w.kind in ("muscle", "motion", "em"):
            assert w.label == qw.SNR_LABELS[int(w.snr_db)]
        assert w.noise_source == ("nstdb" if w.kind == "em" else None)
        if w.noise_reused:  # the noise under NSTDB's windows 4-7 at 0, 6 and 12 dB corrupts the other windows
            assert w.source == "nstdb" and w.kind == "recorded" and w.record[:6] in ("118e00", "118e06", "118e12")
            assert 4 <= int(w.record.split(":")[1]) < 8
        if w.kind in ("lead_off", "dropout", "saturation", "short_artefact", "baseline_step"):
            assert w.label == "unusable"
    cpsc = {w.record: w.label for w in windows if w.source == "cpsc2019" and w.kind == "recorded"}
    assert len(cpsc) == 50 and cpsc["data_00126"] == "unusable" and cpsc["data_00259"] == "usable"


def test_noise_is_added_at_the_snr_it_claims(windows) -> None:
    by_record = {(w.source, w.record): w for w in windows if w.kind == "recorded"}
    checked = 0
    for w in windows:
        if w.kind not in ("muscle", "motion", "em"):
            continue
        clean = by_record[(w.source, w.record)]
        scale = {"mV": 1.0, "uV": 1000.0, "adc": 200.0}[w.unit]
        snr = qw.snr_db(clean.signal / scale, (w.signal - clean.signal) / scale, w.fs)  # NSTDB's definition
        # measured: exact in mV and µV; ADC counts are rounded to integers: at most 0.032 dB off (3 windows a source)
        assert abs(snr - w.snr_db) < 0.1, (w.record, w.kind, w.unit, snr, w.snr_db)
        checked += 1
    assert checked > 20


def test_the_benchmark_is_deterministic(windows, data_dir: Path) -> None:
    again = qw.quality_windows(data_dir.parent, corrupted_per_source=3)
    assert [(w.source, w.record, w.kind, w.fs, w.unit) for w in again] == [
        (w.source, w.record, w.kind, w.fs, w.unit) for w in windows
    ]
    assert all(np.array_equal(a.signal, b.signal, equal_nan=True) for a, b in zip(again, windows))


def test_the_electrode_motion_is_nstdbs_noise_alone(data_dir: Path) -> None:
    """0 dB less 6 dB and 0 dB less 12 dB (each scaled onto the other by its clean first 40 s) are the same noise:
    the ECG cancels, so what is added to the other sources carries none of record 118's beats."""
    motion = qw.electrode_motion(data_dir.parent)
    folder = data_dir / "nstdb-118"
    loud, quieter = (np.loadtxt(folder / f"118e{snr:02d}.csv") for snr in (0, 12))
    clean = qw.NSTDB_CLEAN_WINDOWS * 3600
    slope, offset = np.polyfit(loud[:clean], quieter[:clean], 1)
    # measured: the fit leaves 1e-15 of the clean part; the two differences correlate at 0.999999
    assert np.std((slope * loud + offset - quieter)[:clean]) < 1e-9 * np.std(quieter[:clean])
    assert motion.size == loud.size - clean == 80 * 360
    assert np.corrcoef(motion, (slope * loud + offset - quieter)[clean:])[0, 1] > 0.9999
    # by the benchmark's SNR formula NSTDB's 0 dB excerpt is -8 dB (the noise at 0 dB is twice that at 6 dB: the
    # motion is the 6 dB file's noise once); measured -8.0 dB
    snr = qw.snr_db(np.loadtxt(folder / "118e06.csv")[:clean], 2 * motion, 360.0)
    assert -9.0 < snr < -7.0, snr
