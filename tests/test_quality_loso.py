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
from clef_sdk.quality import DEFAULT_RANGES, ScoreRanges

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


def test_each_held_out_source_meets_the_targets(held_out: dict[str, qt.HeldOut]) -> None:
    # measured: AUROC LUDB 0.995, MIT-BIH 0.999, CPSC 2019 0.982, NSTDB 0.994, NeuroKit 0.982; usable windows
    # flagged 0.6%, 0.0%, 2.0%, 0.0%, 0.0%; unusable caught 79-86% (84-89% before NSTDB's em noise was added to
    # the other sources: 20% of it is caught at 0 dB). Targets: AUROC >= 0.95, flagged <= 5%
    assert set(held_out) == set(qw.SOURCES)
    for result in held_out.values():
        assert result.auroc >= 0.95, result
        assert result.usable_flagged <= 0.05, result
        assert result.unusable_caught >= 0.75, result


def test_the_shipped_ranges_are_the_procedures_choice(measured: qt.Measured, grid: qt.Grid) -> None:
    assert qt.choose_ranges(measured, np.ones(measured.source.size, dtype=bool), grid) == DEFAULT_RANGES


def test_aurocs_within_their_error_go_to_the_ranges_flagging_fewest(
    measured: qt.Measured, grid: qt.Grid, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tuned without CPSC 2019, where the rule decides: of the ranges whose AUROC is within its error of the
    highest, the one flagging the fewest of the tuning sources' usable windows; it flags no more of CPSC's."""
    tuning = measured.source != "cpsc2019"
    chosen = qt.choose_ranges(measured, tuning, grid)
    scored = tuning & measured.scored
    auroc = qt.auroc(grid.scores[:, scored], measured.usable[scored])
    tie = qt.AUROC_TIE
    monkeypatch.setattr(qt, "AUROC_TIE", 0.0)
    by_auroc_alone = qt.choose_ranges(measured, tuning, grid)
    monkeypatch.undo()
    index = grid.candidates.index
    assert by_auroc_alone != chosen
    assert 0 < auroc[index(by_auroc_alone)] - auroc[index(chosen)] < tie

    def flagged(ranges: ScoreRanges, selected: np.ndarray) -> float:
        chosen_scores = grid.scores[index(ranges)]
        return max(
            float(np.mean(chosen_scores[selected & measured.usable & (measured.source == name)] < 0.5))
            for name in set(measured.source[selected])
        )

    assert flagged(chosen, scored) < flagged(by_auroc_alone, scored)
    cpsc = (measured.source == "cpsc2019") & measured.scored
    # measured: by AUROC alone artefact (1.0, 2.0), 0.0019 above the chosen (1.25, 2.25); on the tuning sources it
    # flags 0.6% of a source's usable windows against 0.4%, on CPSC 2019 2.0% as the chosen (with the artefact's
    # reference over 2 s segments, before, by AUROC alone bSQI (0.3, 0.7) flagged 5.2% there against 2.0%)
    assert flagged(chosen, cpsc) <= flagged(by_auroc_alone, cpsc)


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
    # that is left out of the test): 24 dB 1.00, 12 dB 0.93, 6 dB 0.78, 0 dB 0.61 (8, 4, 4 and 4 windows)
    assert means[0] >= 0.95 and all(a - b >= 0.03 for a, b in zip(means, means[1:])), means


def ludb_lead(data_dir: Path, record: int, lead: int) -> np.ndarray:
    return np.fromfile(data_dir / "ludb" / "data" / f"{record}.dat", dtype="<i2").reshape(-1, 12)[:, lead] / 1000.0


def test_held_out_leads_rates_and_records_are_usable(data_dir: Path, held_out: dict[str, qt.HeldOut]) -> None:
    """LUDB leads I, V1 and V5 (the benchmark has lead II), lead I at 128 Hz, with the ranges chosen without LUDB;
    all 12 MIT-BIH records whole (the benchmark has 20 windows of each), and inverted, with the ranges chosen
    without MIT-BIH."""
    ludb = held_out["ludb"].ranges
    usable = {}
    for name, lead, fs in (("I", 0, 500), ("V1", 6, 500), ("V5", 10, 500), ("I at 128 Hz", 0, 128)):
        signals = [ludb_lead(data_dir, record, lead) for record in range(1, 201)]
        if fs != 500:
            signals = [sps.resample_poly(x, 32, 125) for x in signals]
        scores = [qt.rescored(clef.signal_quality(x, fs), ludb)[0][0] for x in signals]
        usable[name] = float(np.mean(np.array(scores) >= 0.5))
    for name, sign in (("MIT-BIH, 2160 windows", 1), ("MIT-BIH inverted", -1)):
        mitdb = [
            qt.rescored(clef.signal_quality(sign * np.load(path)["ecg"], 360), held_out["mitdb"].ranges)[0]
            for path in sorted(glob.glob(str(data_dir / "mitdb-tpcp" / "*.npz")))
        ]
        usable[name] = float(np.mean(np.concatenate(mitdb) >= 0.5))
    # measured: LUDB I 1.000, V1 0.995, V5 1.000, I at 128 Hz 0.995; MIT-BIH 0.996, inverted (electrodes swapped,
    # as on a handheld device held the other way round) 0.978 (0.934 before the neurokit detector ran again on the
    # signal negated and Pan-Tompkins on its own band)
    assert all(fraction >= 0.95 for fraction in usable.values()), usable


def lead_i_short_artefacts_caught(data_dir: Path, times_qrs: float, ranges: ScoreRanges) -> tuple[float, float]:
    """0.5 s of 1-10 Hz noise (``with_burst``) whose peak to peak is ``times_qrs`` the window's QRS, in 100 LUDB
    lead I records at 500 Hz (the benchmark has lead II): the fraction caught with the reason "artefact" by
    ``ranges``, and the fraction of the same windows clean flagged."""
    rng = np.random.default_rng(22)
    fs = 500
    caught, clean_flagged = [], []
    for record in range(1, 201, 2):
        x = ludb_lead(data_dir, record, 0)
        caught.append(qt.caught_with_reason(qw.with_burst(x, fs, times_qrs, 0.5, rng), fs, ranges))
        clean_flagged.append(qt.rescored(clef.signal_quality(x, fs), ranges)[0][0] < 0.5)
    return float(np.mean(caught)), float(np.mean(clean_flagged))


@pytest.mark.parametrize(("times_qrs", "at_least"), [(5.0, 0.9), (10.0, 0.94)])
def test_a_short_artefact_in_another_lead_is_caught_with_its_reason(
    data_dir: Path, held_out: dict[str, qt.HeldOut], times_qrs: float, at_least: float
) -> None:
    """The issue's target (0.5 s at 5x the QRS amplitude) and 10x, ranges chosen without LUDB."""
    caught, clean_flagged = lead_i_short_artefacts_caught(data_dir, times_qrs, held_out["ludb"].ranges)
    # measured: 5x 97%, 10x 99% (100 windows, one miss is 1%); the same windows clean: none flagged
    assert caught >= at_least and clean_flagged <= 0.03, (caught, clean_flagged)


@pytest.fixture(scope="module")
def short_artefacts(data_dir: Path, held_out: dict[str, qt.HeldOut]) -> dict[tuple[str, float], float]:
    windows = qw.quality_windows(data_dir.parent)
    ranges = {source: result.ranges for source, result in held_out.items()}
    return {
        (found.source, times): found.caught
        for times in (5.0, 10.0)
        for found in qt.short_artefacts_caught(windows, ranges, times)
    }


def test_short_artefacts_in_each_held_out_source_are_caught_with_their_reason(
    short_artefacts: dict[tuple[str, float], float],
) -> None:
    """0.5 s bursts at 5x and 10x the QRS in every usable recorded window of each source (3 places each), scored
    by the ranges chosen without the source."""
    # measured, 5x: LUDB 98.8%, MIT-BIH 92.5%, CPSC 2019 96.8%, NSTDB 94.4%, NeuroKit 93.3% (600, 600, 93, 72 and
    # 15 bursts: one miss is 0.2%, 0.2%, 1.1%, 1.4% and 6.7%); 10x: 99.7%, 99.5%, 100%, 100%, 100%. CPSC 2019 at 5x
    # was 81.7% while the artefact's reference was the median over 2 s segments: frequent large PVCs led it
    five = {source: short_artefacts[(source, 5.0)] for source in qw.SOURCES}
    assert all(caught >= 0.9 for caught in five.values()), five
    ten = {source: short_artefacts[(source, 10.0)] for source in qw.SOURCES}
    assert all(caught >= 0.9 for caught in ten.values()), ten


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
        score, mapped = qt.rescored(quality, held_out["cpsc2019"].ranges)
        # measured: artefact amplitude 0.62-0.63 at 500, 250 and 360 Hz (and 128 Hz), the beat left out as ectopic
        # (early, a compensatory pause, its QRS 4.9x as sharp as the others, 2 large deflections); 2.08, 2.03, 1.93
        # with it, which the ranges chosen without CPSC 2019, (1.25, 2.25), map to 0.17, 0.22 and 0.32
        assert score[0] >= 0.5 and quality.artefact_amplitude[0] < 1.0, (fs, quality.artefact_amplitude, score)
