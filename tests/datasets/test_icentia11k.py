"""The Icentia11k reader on a small copy in the published layout (``pNN/pNNNNN/pNNNNN_sNN.hea/.dat/.atr``), built
from real recordings resampled to 250 Hz with their real beat annotations, written as Icentia's files are (beats
``N``/``S``/``V``/``Q`` with the note ``"None"``, rhythm episodes as ``+`` annotations noted ``(N``, ``(AFIB``,
``(AFL`` and ``)``, a time-resolution note at sample 0):

- ``p00000``: MIT-BIH record 100 (``wfdb-sample``), minutes 0-3 and 24-27, its ``.atr`` beats (``A`` written as
  Icentia's ``S``), in one normal-rhythm episode from the first beat to the last (100 is in sinus rhythm throughout);
- ``p00001``, ``p00002``: MIT-BIH 106 (minutes 0-3) and 119 (minutes 3-6) from ``mitdb-tpcp``, beats ``V`` where
  its PVC list says and ``N`` otherwise (the only two kinds in those records), no rhythm episode;
- ``p01000``: 5 s of the 0 dB NSTDB record (its beats as ``Q``), then nine LUDB records (lead I) in a row, each
  in the episode of its published rhythm (sinus, AF, typical flutter), its beats from LUDB's QRS annotations.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clef_sdk as clef
from clef_sdk.datasets.icentia11k import Icentia11k, read_annotations
from clef_sdk.datasets.splits import pinned_split

wfdb = pytest.importorskip("wfdb")
scipy_signal = pytest.importorskip("scipy.signal")

FS = 250
WINDOW = 2500
LEAD_IN = 1250  # 5 s of noise before the LUDB records: their 10 s straddle the 10 s grid by half
LUDB_SEQUENCE = ("2", "3", "8", "44", "51", "35", "52", "4", "5")  # sinus x2, AF x3, flutter x2, sinus x2
RHYTHM_NOTES = {"Sinus rhythm": "(N", "Atrial fibrillation": "(AFIB", "Atrial flutter, typical": "(AFL"}
EXPECTED_RHYTHM = {"(N": "N", "(AFIB": "AFIB", "(AFL": "AFL"}


def _to_250(samples: np.ndarray, fs: float, offset: int = 0) -> np.ndarray:
    return np.round((np.asarray(samples) - offset) * FS / fs).astype(np.int64)


def _write_segment(
    folder: Path, name: str, signal: np.ndarray, beats: np.ndarray, symbols: list[str], rhythm: list[tuple[int, str]]
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=FS,
        units=["mV"],
        sig_name=["ecg"],
        p_signal=signal[:, None],
        fmt=["16"],
        adc_gain=[200.0],
        baseline=[0],
        write_dir=str(folder),
    )
    entries = [(int(s), c, "None") for s, c in zip(beats, symbols)] + [(int(s), "+", note) for s, note in rhythm]
    entries.sort(key=lambda entry: (entry[0], entry[1] != "+"))
    wfdb.wrann(
        name,
        "atr",
        sample=np.array([e[0] for e in entries]),
        symbol=[e[1] for e in entries],
        aux_note=[e[2] for e in entries],
        fs=FS,
        write_dir=str(folder),
    )


@pytest.fixture(scope="module")
def truth(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Writes the copy and returns, per segment, the real beats at 250 Hz and the rhythm episodes written."""
    root = tmp_path_factory.mktemp("icentia11k")
    segments: dict[str, dict] = {}

    def add(patient: str, segment: int, signal: np.ndarray, beats, symbols, rhythm) -> None:
        name = f"{patient}_s{segment:02d}"
        _write_segment(root / patient[:3] / patient, name, signal, np.asarray(beats), list(symbols), rhythm)
        segments[name] = {
            "n": len(signal),
            "beats": np.asarray(beats),
            "symbols": np.asarray(symbols),
            "rhythm": rhythm,
        }

    # p00000: MIT-BIH 100 with its reference annotations
    mitdb100 = str(data_dir / "wfdb-sample" / "100")
    for segment, minute in enumerate((0, 24)):
        first, last = minute * 60 * 360, (minute + 3) * 60 * 360
        signal = wfdb.rdrecord(mitdb100, sampfrom=first, sampto=last, channels=[0]).p_signal[:, 0]
        annotation = wfdb.rdann(mitdb100, "atr", sampfrom=first, sampto=last - 1)
        symbols = np.asarray(annotation.symbol)
        is_beat = np.isin(symbols, ["N", "A", "V"])
        assert set(symbols[~is_beat]) <= {"+"}  # record 100 holds no other beat kinds
        beats = _to_250(np.asarray(annotation.sample)[is_beat], 360, first)
        icentia = np.where(symbols[is_beat] == "A", "S", symbols[is_beat])
        rhythm = [(int(beats[0]), "(N"), (int(beats[-1]), ")")]
        add("p00000", segment, scipy_signal.resample_poly(signal, 25, 36), beats, icentia, rhythm)

    # p00001, p00002: MIT-BIH 106 and 119 from tpcp's NumPy copy (every beat, and which are PVCs)
    for patient, record, minute in (("p00001", "106", 0), ("p00002", "119", 3)):
        first, last = minute * 60 * 360, (minute + 3) * 60 * 360
        ecg = np.load(data_dir / "mitdb-tpcp" / f"{record}.npz")["ecg"][first:last].astype(np.float64)
        every = pd.read_csv(data_dir / "mitdb-tpcp" / f"{record}_all.csv", index_col=0)["R"].to_numpy()
        pvc = pd.read_csv(data_dir / "mitdb-tpcp" / f"{record}_pvc.csv", index_col=0)["PVC"].to_numpy()
        inside = (every >= first) & (every < last)
        symbols = np.where(np.isin(every[inside], pvc), "V", "N")
        add(patient, 0, scipy_signal.resample_poly(ecg, 25, 36), _to_250(every[inside], 360, first), symbols, [])

    # p01000: noise lead-in, then LUDB records in the episodes of their rhythms
    ludb = pd.read_csv(data_dir / "ludb" / "ludb.csv", dtype=str)
    published = {row.ID: row.Rhythms.strip().splitlines()[0].strip() for row in ludb.itertuples()}
    noise = np.loadtxt(data_dir / "nstdb-118" / "118e00.csv")[: 5 * 360]
    noise_beats = np.loadtxt(data_dir / "nstdb-118" / "118e00_ann.csv").astype(np.int64)
    noise_beats = _to_250(noise_beats[noise_beats < 5 * 360], 360)
    parts = [scipy_signal.resample_poly((noise - noise.mean()) / noise.std(), 25, 36)]
    beats, symbols = list(noise_beats), ["Q"] * len(noise_beats)
    rhythm: list[tuple[int, str]] = []
    for position, number in enumerate(LUDB_SEQUENCE):
        start = LEAD_IN + position * WINDOW
        path = str(data_dir / "ludb" / "data" / number)
        parts.append(scipy_signal.resample_poly(wfdb.rdrecord(path, channel_names=["i"]).p_signal[:, 0], 1, 2))
        qrs = wfdb.rdann(path, "i")
        peaks = np.asarray(qrs.sample)[np.asarray(qrs.symbol) == "N"]
        beats += list(_to_250(peaks, 500) + start)
        symbols += ["N"] * len(peaks)
        note = RHYTHM_NOTES[published[number]]
        if not rhythm or rhythm[-1][1] != note:
            rhythm.append((start, note))
    signal = np.concatenate(parts)
    assert len(signal) == LEAD_IN + len(LUDB_SEQUENCE) * WINDOW
    rhythm.append((len(signal) - 1, ")"))
    add("p01000", 0, signal, beats, symbols, rhythm)
    return {"root": root, "segments": segments, "published": published}


@pytest.fixture(scope="module")
def ds(truth: dict) -> Icentia11k:
    """Every 10 s window of every segment."""
    return Icentia11k(truth["root"], windows_per_segment=None)


def test_annotation_reader_equals_wfdb_on_real_files(truth: dict, data_dir: Path, tmp_path: Path) -> None:
    files = [truth["root"] / "p00" / name[:6] / name for name in truth["segments"] if name.startswith("p00")]
    files += [truth["root"] / "p01" / "p01000" / "p01000_s00"]
    pairs = [(str(path), "atr") for path in files] + [(str(data_dir / "wfdb-sample" / "100"), "atr")]
    pairs += [(str(data_dir / "ludb" / "data" / n), lead) for n in ("1", "35") for lead in ("i", "v6")]
    # record 100's real annotations after minute 10, written at their own sample numbers: the first step needs
    # a 32-bit SKIP
    real = wfdb.rdann(str(data_dir / "wfdb-sample" / "100"), "atr", sampfrom=216_000)
    later = np.asarray(real.sample) >= 216_000
    wfdb.wrann(
        "late", "atr", np.asarray(real.sample)[later], list(np.asarray(real.symbol)[later]), write_dir=str(tmp_path)
    )
    pairs.append((str(tmp_path / "late"), "atr"))
    for record, extension in pairs:
        ours = read_annotations(f"{record}.{extension}")
        reference = wfdb.rdann(record, extension)
        assert len(ours.sample) > 40
        np.testing.assert_array_equal(ours.sample, reference.sample)
        assert ours.symbol.tolist() == list(reference.symbol)
        assert ours.aux_note == [note or "" for note in reference.aux_note]
    assert read_annotations(tmp_path / "late.atr").sample[0] == real.sample[np.argmax(later)] > 1023


def test_table_has_one_row_per_segment(ds: Icentia11k, truth: dict) -> None:
    table = ds.table
    assert list(table.columns) == ["record", "patient", "split", "fs", "n_samples", "leads", "segment", "path"]
    assert table["record"].tolist() == ["p00000_s00", "p00000_s01", "p00001_s00", "p00002_s00", "p01000_s00"]
    assert table["patient"].tolist() == ["p00000", "p00000", "p00001", "p00002", "p01000"]
    assert table["segment"].tolist() == [0, 1, 0, 0, 0] and (table["fs"] == 250.0).all()
    assert table["n_samples"].tolist() == [truth["segments"][r]["n"] for r in table["record"]]
    assert table["n_samples"].tolist()[:4] == [45_000] * 4  # 3 min at 250 Hz
    assert set(table["leads"]) == {("ecg",)}
    assert table.set_index("record").at["p01000_s00", "path"] == "p01/p01000/p01000_s00"


def test_split_is_pinned_by_patient(ds: Icentia11k, truth: dict) -> None:
    table = ds.table
    assert table["split"].tolist() == list(pinned_split(table["patient"], "icentia11k", val=0.1, test=0.1))
    assert table.groupby("patient")["split"].nunique().max() == 1
    # four patients: one each for validation and test (at least one each once there are three)
    assert table.drop_duplicates("patient")["split"].value_counts().to_dict() == {"train": 2, "val": 1, "test": 1}
    assert Icentia11k(truth["root"]).table["split"].equals(table["split"])
    _, y, groups, split = ds.task("pvc")
    by_patient = table.drop_duplicates("patient").set_index("patient")["split"]
    assert (split == by_patient.loc[groups].to_numpy()).all()
    assert set(groups) == {"p00000", "p00001", "p00002", "p01000"}


def test_signals_and_windows_equal_wfdb(ds: Icentia11k, truth: dict) -> None:
    path = str(truth["root"] / "p00" / "p00001" / "p00001_s00")
    reference = wfdb.rdrecord(path).p_signal[:, 0]
    signal, fs = ds.signal("p00001_s00")
    assert fs == 250.0 and signal.shape == (45_000,) and len(signal) == 45_000
    np.testing.assert_array_equal(signal[:], reference)
    np.testing.assert_array_equal(signal[30_000:30_010], reference[30_000:30_010])
    np.testing.assert_array_equal(ds.signal("p00001_s00", lead="ECG")[0][7:9], reference[7:9])
    X, y, _, _ = ds.task("pvc")
    for window in ("p00001_s00/0000", "p00001_s00/0013", "p00001_s00/0017"):
        position = y.index.get_loc(window)
        index = int(window.split("/")[1])
        assert X[position].fs == 250.0 and X[position].shape == (WINDOW,)
        np.testing.assert_array_equal(X[position][:], reference[index * WINDOW : (index + 1) * WINDOW])
        np.testing.assert_array_equal(X[position][100:200], reference[index * WINDOW + 100 : index * WINDOW + 200])


def test_pvc_labels_follow_the_real_pvc_positions(ds: Icentia11k, truth: dict) -> None:
    _, y, _, _ = ds.task("pvc")
    assert y.name == "pvc" and y.index.name == "window" and y.dtype == np.int64
    for record in ("p00001_s00", "p00002_s00"):
        segment = truth["segments"][record]
        pvc = segment["beats"][segment["symbols"] == "V"]
        expected = {}
        for index in range(segment["n"] // WINDOW):
            inside = (segment["beats"] >= index * WINDOW) & (segment["beats"] < (index + 1) * WINDOW)
            if inside.any():  # 106 and 119 hold only N and V beats: every window with a beat is labelled
                expected[f"{record}/{index:04d}"] = int(((pvc >= index * WINDOW) & (pvc < (index + 1) * WINDOW)).any())
        labelled = y[y.index.str.startswith(record)]
        assert labelled.to_dict() == expected and len(expected) == 18
    assert 0 < y[y.index.str.startswith("p00001")].sum() < 18  # 106's first minutes: windows with and without
    # record 100's PVC (minute 25.3) is in window 7 of the segment from minute 24; its other windows hold no V
    p00000 = y[y.index.str.startswith("p00000_s01")]
    assert p00000.get("p00000_s01/0007") == 1 and p00000.drop("p00000_s01/0007", errors="ignore").sum() == 0
    assert "p01000_s00/0000" not in y.index  # the noise lead-in's beats are Q: not only N


def test_pac_labels_follow_the_real_atrial_premature_beats(ds: Icentia11k, truth: dict) -> None:
    _, y, _, _ = ds.task("pac")
    for record in ("p00000_s00", "p00000_s01"):
        segment = truth["segments"][record]
        expected = {}
        for index in range(segment["n"] // WINDOW):
            inside = (segment["beats"] >= index * WINDOW) & (segment["beats"] < (index + 1) * WINDOW)
            kinds = set(segment["symbols"][inside])
            if "S" in kinds:
                expected[f"{record}/{index:04d}"] = 1
            elif kinds == {"N"}:
                expected[f"{record}/{index:04d}"] = 0
        assert y[y.index.str.startswith(record)].to_dict() == expected
    # 100.atr: one A beat in minutes 0-3 (at 0.09: window 0), six in minutes 24-27 (at 24.12, 26.06, 26.22, 26.27,
    # 26.59, 26.83: windows 0, 12, 13, 13, 15, 17)
    assert y.loc["p00000_s00/0000"] == 1 and y[y.index.str.startswith("p00000_s00")].sum() == 1
    assert y[y.index.str.startswith("p00000_s01")].sum() == 5
    assert "p00000_s01/0007" not in y.index  # the PVC's window holds no S beat: neither 1 nor only-N
    assert set(y.index.str[:6]) >= {"p00001", "p00002", "p01000"}


def test_rhythm_and_af_follow_the_published_ludb_rhythms(ds: Icentia11k, truth: dict) -> None:
    _, rhythm, _, _ = ds.task("rhythm")
    _, af, _, _ = ds.task("af")
    assert rhythm.name == "rhythm" and set(rhythm) == {"N", "AFIB", "AFL"}
    expected = {}
    for index in range(9):
        start, stop = index * WINDOW, (index + 1) * WINDOW
        if start < LEAD_IN:
            continue  # partly in the noise, outside any episode
        covering = {LUDB_SEQUENCE[(s - LEAD_IN) // WINDOW] for s in (start, stop - 1)}
        notes = {RHYTHM_NOTES[truth["published"][number]] for number in covering}
        if len(notes) == 1:
            expected[f"p01000_s00/{index:04d}"] = EXPECTED_RHYTHM[notes.pop()]
    assert expected == {
        "p01000_s00/0001": "N",
        "p01000_s00/0003": "AFIB",
        "p01000_s00/0004": "AFIB",
        "p01000_s00/0006": "AFL",
        "p01000_s00/0008": "N",
    }
    assert rhythm[rhythm.index.str.startswith("p01000")].to_dict() == expected
    assert af[af.index.str.startswith("p01000")].to_dict() == {w: int(r != "N") for w, r in expected.items()}
    # record 100: every window between its first and last beat is normal rhythm; 106 and 119 have no episode
    for record in ("p00000_s00", "p00000_s01"):
        beats = truth["segments"][record]["beats"]
        inside = [f"{record}/{i:04d}" for i in range(18) if i * WINDOW >= beats[0] and (i + 1) * WINDOW <= beats[-1]]
        assert rhythm[rhythm.index.str.startswith(record)].to_dict() == dict.fromkeys(inside, "N")
        assert len(inside) == 16  # windows 1-16: the episode opens inside window 0 and closes inside window 17
    assert not rhythm.index.str.startswith(("p00001", "p00002")).any()


def test_default_windows_are_few_and_read_lazily(truth: dict, tmp_path: Path) -> None:
    copy = tmp_path / "icentia11k"
    shutil.copytree(truth["root"], copy)
    for annotation in copy.rglob("*.atr"):
        annotation.unlink()
    ds = clef.datasets.open("icentia11k", copy)
    assert ds.windows_per_segment == 4 and len(ds.table) == 5  # the table reads no annotation
    with pytest.raises(clef.DatasetError, match=r"p00/p00000/p00000_s00.atr \(the beat and rhythm annotations"):
        ds.task("pvc")
    default = Icentia11k(truth["root"])
    # 18 windows a 3 min segment: the centres of four equal parts, floor((k + 0.5) * 18 / 4)
    windows = default.windows
    assert windows.index[windows["record"] == "p00001_s00"].tolist() == [f"p00001_s00/{i:04d}" for i in (2, 6, 11, 15)]
    assert len(windows) == 5 * 4 and windows["start"].tolist()[:2] == [2 * WINDOW, 6 * WINDOW]
    assert Icentia11k(truth["root"], windows_per_segment=1).windows.index.tolist()[0] == "p00000_s00/0009"
    every = Icentia11k(truth["root"], windows_per_segment=None).windows
    assert len(every) == 4 * 18 + 9 and (every.loc[windows.index] == windows).all().all()


def test_embedding_a_task_runs(ds: Icentia11k) -> None:
    X, _, _, _ = ds.task("af")
    embeddings = clef.embed(X[:2], fs=None, model=clef.build("small", seed=0))
    assert embeddings.shape == (2, 256) and np.isfinite(embeddings).all()


def test_bad_input_gets_clear_errors(ds: Icentia11k, truth: dict, tmp_path: Path) -> None:
    with pytest.raises(clef.DatasetError, match=r"folder .*absent not found.*clef datasets download icentia11k"):
        clef.datasets.open("icentia11k", tmp_path / "absent")
    with pytest.raises(clef.DatasetError, match=r"pNN/pNNNNN/pNNNNN_sNN.hea .* not found under"):
        len(clef.datasets.open("icentia11k", tmp_path))
    with pytest.raises(clef.DatasetError, match="no task 'beat'; its tasks: af, rhythm, pvc, pac"):
        ds.task("beat")
    with pytest.raises(clef.DatasetError, match="one lead .*no lead 'II'"):
        ds.signal("p00000_s00", lead="II")
    with pytest.raises(clef.DatasetError, match="no lead 1"):
        ds.task("pvc", lead=1)
    with pytest.raises(clef.DatasetError, match="no record 'p00000_s02'"):
        ds.signal("p00000_s02")
    with pytest.raises(ValueError, match="windows_per_segment must be a positive number or None, not 0"):
        Icentia11k(truth["root"], windows_per_segment=0)
    copy = tmp_path / "copy"
    shutil.copytree(truth["root"], copy)
    atr = copy / "p00" / "p00001" / "p00001_s00.atr"
    atr.write_bytes(atr.read_bytes()[: len(atr.read_bytes()) // 2])  # truncated
    with pytest.raises(clef.RecordingError, match=r"p00001_s00.atr is not a complete WFDB annotation file"):
        Icentia11k(copy).task("af")
    dat = copy / "p00" / "p00002" / "p00002_s00.dat"
    dat.write_bytes(dat.read_bytes()[:1000])
    with pytest.raises(OSError, match="p00002_s00"):
        Icentia11k(copy).signal("p00002_s00")[0][40_000:42_500]
    (copy / "p01" / "p01000" / "p01000_s00.hea").write_text("p01000_s00 x\n")
    with pytest.raises(clef.RecordingError, match="p01000_s00.hea is not a single-segment WFDB header"):
        len(Icentia11k(copy))
