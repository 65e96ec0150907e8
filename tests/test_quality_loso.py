"""How well clef.signal_quality does, judged only on sources its ranges were chosen without.

The labelled benchmark is ``benchmarks/_quality_windows.py`` (five sources), the procedure choosing the ranges
``benchmarks/_quality_tuning.py``; ``python benchmarks/bench_quality_loso.py`` prints the same numbers. Every
assertion on the score's quality uses ranges chosen without the source it is tested on, on windows of that source
(LUDB lead II and MIT-BIH excerpts in the benchmark; other LUDB leads and whole MIT-BIH records here).
"""

from __future__ import annotations

import glob
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import signal as sps

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import _quality_tuning as qt
import _quality_windows as qw

import clef_sdk as clef
from clef_sdk.quality import DEFAULT_RANGES, HARD_REASONS, ScoreRanges, SignalQuality, score_measures

# one worker builds the benchmark (3,903 windows, about 40 s) for every test of this module
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("quality_benchmark")]


@pytest.fixture(scope="module")
def measured(data_dir: Path) -> qt.Measured:
    return qt.measure(qw.quality_windows(data_dir.parent))


@pytest.fixture(scope="module")
def grid(measured: qt.Measured) -> qt.Grid:
    return qt.Grid.of(measured)


@pytest.fixture(scope="module")
def held_out(measured: qt.Measured, grid: qt.Grid) -> dict[str, qt.HeldOut]:
    return {result.source: result for result in qt.leave_one_source_out(measured, grid)}


def rescored(quality: SignalQuality, ranges: ScoreRanges) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``quality``'s windows scored with ``ranges`` instead of the shipped ones (hard failures stay 0)."""
    score, mapped = score_measures(
        quality.bsqi, quality.beat_similarity, quality.artefact_amplitude, quality.in_band_fraction, ranges
    )
    hard = np.array([bool(set(found) & set(HARD_REASONS)) for found in quality.reasons])
    return np.where(hard, 0.0, score), mapped


def test_each_held_out_source_meets_the_targets(held_out: dict[str, qt.HeldOut]) -> None:
    # measured: AUROC LUDB 0.990, MIT-BIH 0.998, CPSC 2019 0.974, NSTDB 0.991, NeuroKit 0.982; usable windows
    # flagged 1.5%, 0.0%, 3.2%, 0.0%, 0.0%; unusable caught 80-85% (84-89% before NSTDB's em noise was added to
    # the other sources: 21% of it is caught at 0 dB). Targets: AUROC >= 0.95, flagged <= 5%
    assert set(held_out) == set(qw.SOURCES)
    for result in held_out.values():
        assert result.auroc >= 0.95, result
        assert result.usable_flagged <= 0.05, result
        assert result.unusable_caught >= 0.75, result


def test_the_shipped_ranges_are_the_procedures_choice(measured: qt.Measured, grid: qt.Grid) -> None:
    assert qt.choose_ranges(measured, np.ones(measured.source.size, dtype=bool), grid) == DEFAULT_RANGES


def test_aurocs_within_their_error_go_to_the_ranges_catching_more(
    measured: qt.Measured, grid: qt.Grid, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tuned without CPSC 2019, where the rule decides (on all five sources the highest AUROC is the shipped
    ranges' anyway)."""
    tuning = measured.source != "cpsc2019"
    chosen = qt.choose_ranges(measured, tuning, grid)
    scored = tuning & measured.scored
    auroc = qt.auroc(grid.scores[:, scored], measured.usable[scored])
    tie = qt.AUROC_TIE
    monkeypatch.setattr(qt, "AUROC_TIE", 0.0)
    by_auroc_alone = qt.choose_ranges(measured, tuning, grid)
    # measured: by AUROC alone the artefact range (2.0, 2.5), 0.00006 above the chosen (1.5, 2.5), which catches
    # more unusable windows at 0.5 (the short artefacts among them)
    assert by_auroc_alone != chosen
    assert 0 < auroc[grid.candidates.index(by_auroc_alone)] - auroc[grid.candidates.index(chosen)] < tie
    caught = np.mean(grid.scores[:, scored & ~measured.usable] < 0.5, axis=1)
    assert caught[grid.candidates.index(chosen)] > caught[grid.candidates.index(by_auroc_alone)]


def test_a_held_out_source_is_not_tested_on_noise_that_tuning_saw(
    measured: qt.Measured, held_out: dict[str, qt.HeldOut]
) -> None:
    carried = measured.noise_source == "nstdb"
    assert carried.sum() > 500 and set(measured.source[carried]) == set(qw.SOURCES)  # NSTDB's em on every source
    reused = measured.noise_reused
    assert reused.sum() == 12 and set(measured.nstdb_snr[reused]) == {0.0, 6.0, 12.0}  # windows 4-7 of 3 excerpts
    tested = (measured.source == "nstdb") & measured.scored & ~reused
    nstdb = held_out["nstdb"]
    assert (nstdb.n_usable, nstdb.n_unusable) == (
        int(measured.usable[tested].sum()),
        int((~measured.usable[tested]).sum()),
    )
    ludb = held_out["ludb"]  # no LUDB window's noise is carried by others: all of them are tested
    every_ludb = (measured.source == "ludb") & measured.scored
    assert ludb.n_usable + ludb.n_unusable == int(every_ludb.sum())


def test_held_out_nstdb_falls_monotonically(held_out: dict[str, qt.HeldOut]) -> None:
    means = held_out["nstdb"].nstdb_means
    # measured, ranges chosen without NSTDB (with its electrode motion on the other sources, the windows whose noise
    # that is left out of the test): 24 dB 1.00, 12 dB 0.93, 6 dB 0.78, 0 dB 0.59 (8, 4, 4 and 4 windows)
    assert means[0] >= 0.95 and all(a - b >= 0.03 for a, b in zip(means, means[1:])), means


def ludb_lead(data_dir: Path, record: int, lead: int) -> np.ndarray:
    return np.fromfile(data_dir / "ludb" / "data" / f"{record}.dat", dtype="<i2").reshape(-1, 12)[:, lead] / 1000.0


def test_held_out_leads_rates_and_records_are_usable(data_dir: Path, held_out: dict[str, qt.HeldOut]) -> None:
    """LUDB leads I, V1 and V5 (the benchmark has lead II), lead I at 128 Hz, with the ranges chosen without LUDB;
    all 12 MIT-BIH records whole (the benchmark has 20 windows of each) with the ranges chosen without MIT-BIH."""
    ludb = held_out["ludb"].ranges
    usable = {}
    for name, lead, fs in (("I", 0, 500), ("V1", 6, 500), ("V5", 10, 500), ("I at 128 Hz", 0, 128)):
        signals = [ludb_lead(data_dir, record, lead) for record in range(1, 201)]
        if fs != 500:
            signals = [sps.resample_poly(x, 32, 125) for x in signals]
        scores = [rescored(clef.signal_quality(x, fs), ludb)[0][0] for x in signals]
        usable[name] = float(np.mean(np.array(scores) >= 0.5))
    mitdb = [
        rescored(clef.signal_quality(np.load(path)["ecg"], 360), held_out["mitdb"].ranges)[0]
        for path in sorted(glob.glob(str(data_dir / "mitdb-tpcp" / "*.npz")))
    ]
    usable["MIT-BIH, 2160 windows"] = float(np.mean(np.concatenate(mitdb) >= 0.5))
    # measured: LUDB I 1.000, V1 0.975, V5 1.000, I at 128 Hz 0.995; MIT-BIH 0.996
    assert all(fraction >= 0.95 for fraction in usable.values()), usable


def short_artefacts(data_dir: Path, times_qrs: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(clean, with artefact) for 100 LUDB lead I records at 500 Hz: 0.5 s of 1-10 Hz noise (10% tapers) whose
    peak-to-peak amplitude is ``times_qrs`` the window's QRS (the median peak to peak of its 1 s stretches)."""
    rng = np.random.default_rng(22)
    fs = 500
    noise_band = sps.butter(4, [1, 10], btype="band", fs=fs, output="sos")
    pairs = []
    for record in range(1, 201, 2):
        x = ludb_lead(data_dir, record, 0)
        qrs = qw.qrs_peak_to_peak(qw._band(x, fs, 0.5, 40.0), fs)
        n = fs // 2
        burst = sps.sosfiltfilt(noise_band, rng.standard_normal(n + fs))[fs // 2 : fs // 2 + n] * sps.windows.tukey(
            n, 0.2
        )
        at = int(rng.integers(fs, x.size - n - fs))
        y = x.copy()
        y[at : at + n] += burst / np.ptp(burst) * times_qrs * qrs
        pairs.append((x, y))
    return pairs


def test_a_short_large_artefact_is_caught_with_its_reason(data_dir: Path, held_out) -> None:
    """0.5 s at 10x the QRS amplitude inside clean held-out windows (LUDB lead I, ranges chosen without LUDB)."""
    ranges = held_out["ludb"].ranges
    caught, clean_flagged = [], []
    for x, y in short_artefacts(data_dir, 10.0):
        score, mapped = rescored(clef.signal_quality(y, 500), ranges)
        caught.append(score[0] < 0.5 and mapped["artefact"][0] < 0.5)
        clean_flagged.append(rescored(clef.signal_quality(x, 500), ranges)[0][0] < 0.5)
    # measured: 97% caught with the reason "artefact", 98% in all (the same windows clean: none flagged); 100
    # windows, so one miss is 1%
    assert np.mean(caught) >= 0.94 and np.mean(clean_flagged) <= 0.03, (np.mean(caught), np.mean(clean_flagged))


def test_a_short_artefact_at_five_times_the_qrs_is_caught_with_its_reason(data_dir: Path, held_out) -> None:
    """The issue's target: 0.5 s at 5x the QRS amplitude, ranges chosen without LUDB (artefact (1.0, 1.5))."""
    ranges = held_out["ludb"].ranges
    caught = []
    for _, y in short_artefacts(data_dir, 5.0):
        score, mapped = rescored(clef.signal_quality(y, 500), ranges)
        caught.append(score[0] < 0.5 and mapped["artefact"][0] < 0.5)
    # measured: 96% (85% before giant ectopic beats were left out of the artefact measure: the ranges chosen then
    # had to let one pass; with the shipped ranges, chosen with LUDB, artefact (1.5, 2.5), 84%)
    assert np.mean(caught) >= 0.9, np.mean(caught)  # the target: 90%


def test_a_giant_ectopic_beat_is_not_an_artefact(data_dir: Path, held_out: dict[str, qt.HeldOut]) -> None:
    """CPSC 2019 data_01170: a premature complex of about 10x the record's small QRS at 5.2 s (the reference
    annotations put a beat there, 0.54 s after the one before, with a compensatory pause), as large as a 0.5 s
    burst at 5x the QRS but one beat; ranges chosen without CPSC 2019, at rates the benchmark does not give it."""
    import scipy.io

    ecg = scipy.io.loadmat(data_dir / "cpsc2019-sample" / "data" / "data_01170.mat")["ecg"][:, 0].astype(np.float64)
    beats = np.ravel(scipy.io.loadmat(data_dir / "cpsc2019-sample" / "ref" / "R_01170.mat")["R_peak"]) / 500
    assert np.any(np.abs(beats - 5.17) < 0.02)
    for fs, signal in ((500, ecg), (250, ecg[::2]), (360, sps.resample_poly(ecg, 18, 25))):
        quality = clef.signal_quality(signal, fs)
        score, mapped = rescored(quality, held_out["cpsc2019"].ranges)
        # measured: artefact amplitude 0.58 at 500 Hz, 0.60 at 250 Hz, 0.58 at 360 Hz (0.63 at 128 Hz), the beat
        # left out as ectopic (early, a compensatory pause, its QRS 4.9x as sharp as the others); 1.96, 1.92, 1.81
        # with it, which the ranges chosen without CPSC 2019, (1.5, 2.5), map to 0.54, 0.58 and 0.69
        assert score[0] >= 0.5 and quality.artefact_amplitude[0] < 1.0, (fs, quality.artefact_amplitude, score)
