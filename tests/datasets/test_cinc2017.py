"""The CinC 2017 reader on small copies of the Challenge's two published layouts, built from real recordings: LUDB
lead I resampled to 300 Hz and labelled from LUDB's own rhythm (AF -> A, sinus rhythm -> N, any other -> O), and
excerpts of the 0 dB NSTDB record 118e00 as ~ (noisy), written as MATLAB v4 ``.mat`` files with WFDB headers."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clef_sdk as clef
from clef_sdk.datasets.cinc2017 import CinC2017
from clef_sdk.datasets.splits import pinned_split

wfdb = pytest.importorskip("wfdb")
scipy_io = pytest.importorskip("scipy.io")
scipy_signal = pytest.importorskip("scipy.signal")

LUDB_RECORDS = ("8", "2", "1", "38", "3", "35", "44", "4", "22", "5", "51", "7", "9")
NOISE_OFFSETS_S = (0, 40, 80)  # three 10 s excerpts of the 120 s 0 dB record
#: the LUDB flutter record, labelled A in the "original" REFERENCE.csv and O in the revised REFERENCE-v3.csv
RELABELLED = "35"


def _record_id(index: int) -> str:
    """A00001... for the first eight, A01000... after: two of the PhysioNet tree's A0x folders."""
    return f"A{index + 1:05d}" if index < 8 else f"A{1000 + index - 8:05d}"


def _write_record(folder: Path, record: str, signal_mv: np.ndarray) -> np.ndarray:
    """A Challenge-style record: int16 µV in a MATLAB v4 ``val`` (1, n), and a header pointing at it with the
    24-byte offset of the .mat preamble, as in the published headers (``A00001.mat 16+24 1000/mV 16 0 ...``)."""
    digital = np.round(signal_mv * 1000).astype(np.int16)
    scipy_io.savemat(folder / f"{record}.mat", {"val": digital[None, :]}, format="4")
    checksum = (int(digital.astype(np.int64).sum()) + 32768) % 65536 - 32768  # WFDB's: the 16-bit sum
    (folder / f"{record}.hea").write_text(
        f"{record} 1 300 {digital.size} 05:05:15 1/05/2000\n"
        f"{record}.mat 16+24 1000/mV 16 0 {int(digital[0])} {checksum} 0 ECG\n"
    )
    return digital


@pytest.fixture(scope="module")
def source(data_dir: Path) -> dict[str, object]:
    """The real recordings at 300 Hz (mV) and their labels, in record-id order."""
    ludb = pd.read_csv(data_dir / "ludb" / "ludb.csv", dtype=str)
    rhythm = {row.ID: row.Rhythms.strip().splitlines()[0].strip() for row in ludb.itertuples()}
    signals, labels, origins = [], [], []
    for number in LUDB_RECORDS:
        lead_i = wfdb.rdrecord(str(data_dir / "ludb" / "data" / number), channel_names=["i"]).p_signal[:, 0]
        signals.append(scipy_signal.resample_poly(lead_i, 3, 5))  # 500 -> 300 Hz: 3000 samples
        text = rhythm[number].lower()
        labels.append("A" if text == "atrial fibrillation" else "N" if text == "sinus rhythm" else "O")
        origins.append(f"ludb/{number}")
    noise = np.loadtxt(data_dir / "nstdb-118" / "118e00.csv")
    noise = (noise - noise.mean()) / noise.std()  # arbitrary units: z-scored, read as mV
    for offset in NOISE_OFFSETS_S:
        signals.append(scipy_signal.resample_poly(noise[offset * 360 : (offset + 10) * 360], 5, 6))
        labels.append("~")
        origins.append(f"nstdb/118e00@{offset}s")
    records = [_record_id(i) for i in range(len(signals))]
    original = list(labels)
    original[LUDB_RECORDS.index(RELABELLED)] = "A"
    return {"records": records, "signals": signals, "labels": labels, "original": original, "origins": origins}


def _write_reference(path: Path, records: list[str], labels: list[str]) -> None:
    path.write_text("".join(f"{record},{label}\n" for record, label in zip(records, labels)))


@pytest.fixture(scope="module")
def physionet_tree(source: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PhysioNet's project tree: training/A00/, training/A01/, training/REFERENCE.csv, REFERENCE-v3.csv."""
    root = tmp_path_factory.mktemp("challenge-2017")
    for record, signal in zip(source["records"], source["signals"]):
        folder = root / "training" / record[:3]
        folder.mkdir(parents=True, exist_ok=True)
        _write_record(folder, record, signal)
    (root / "training" / "RECORDS").write_text("".join(f"{r[:3]}/{r}\n" for r in source["records"]))
    _write_reference(root / "training" / "REFERENCE.csv", source["records"], source["original"])
    _write_reference(root / "REFERENCE-v3.csv", source["records"], source["labels"])
    return root


@pytest.fixture(scope="module")
def zip_layout(source: dict, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """training2017.zip unpacked: training2017/A00001.hea + .mat ... and training2017/REFERENCE.csv."""
    root = tmp_path_factory.mktemp("cinc2017-zip")
    folder = root / "training2017"
    folder.mkdir()
    for record, signal in zip(source["records"], source["signals"]):
        _write_record(folder, record, signal)
    _write_reference(folder / "REFERENCE.csv", source["records"], source["original"])
    return root


def test_written_records_read_back_with_wfdb(physionet_tree: Path, source: dict) -> None:
    record = wfdb.rdrecord(str(physionet_tree / "training" / "A00" / "A00001"))
    assert (record.fs, record.sig_name, record.units, record.sig_len) == (300, ["ECG"], ["mV"], 3000)
    # the .mat holds µV integers: the read-back differs from the resampled LUDB signal by the rounding to 1 µV,
    # at most half a µV (measured on record A00001 = LUDB 8: 0.49992 µV)
    np.testing.assert_allclose(record.p_signal[:, 0], source["signals"][0], rtol=0, atol=0.0005 + 1e-12)


def test_table_of_the_physionet_tree_uses_the_revised_labels(physionet_tree: Path, source: dict) -> None:
    ds = clef.datasets.open("cinc2017", physionet_tree)
    table = ds.table
    assert list(table.columns) == [
        *("record", "patient", "split", "fs", "n_samples", "leads"),
        *("label", "label_source", "path"),
    ]
    assert table["record"].tolist() == sorted(source["records"]) == source["records"]
    assert (table["patient"] == table["record"]).all()
    assert (table["fs"] == 300.0).all() and (table["n_samples"] == 3000).all()
    assert set(table["leads"]) == {("ECG",)}
    assert table["label"].tolist() == source["labels"]
    assert (
        set(table["label_source"]) == {"REFERENCE-v3.csv"} and ds.reference_file == physionet_tree / "REFERENCE-v3.csv"
    )
    assert table.set_index("record").at["A01000", "path"] == "training/A01/A01000"
    relabelled = source["records"][LUDB_RECORDS.index(RELABELLED)]
    assert table.set_index("record").at[relabelled, "label"] == "O"  # v3's, not REFERENCE.csv's "A"


def test_zip_layout_and_its_folder_read_the_same_records(zip_layout: Path, physionet_tree: Path, source: dict) -> None:
    ds = clef.datasets.open("cinc2017", zip_layout)
    assert ds.records_dir == zip_layout / "training2017"
    assert set(ds.table["label_source"]) == {"REFERENCE.csv"} and ds.table["label"].tolist() == source["original"]
    assert ds.table.at[0, "path"] == "training2017/A00001"
    inner = clef.datasets.open("cinc2017", zip_layout / "training2017")
    assert inner.table["label"].tolist() == source["original"] and inner.table.at[0, "path"] == "A00001"
    tree = clef.datasets.open("cinc2017", physionet_tree)
    for record in ("A00002", "A01004"):
        np.testing.assert_array_equal(ds.signal(record)[0][:], tree.signal(record)[0][:])
    # a revised label file beside the unpacked folder outranks its REFERENCE.csv
    shutil.copy(physionet_tree / "REFERENCE-v3.csv", zip_layout / "REFERENCE-v3.csv")
    try:
        revised = clef.datasets.open("cinc2017", zip_layout)
        assert revised.table["label"].tolist() == source["labels"]
        assert set(revised.table["label_source"]) == {"REFERENCE-v3.csv"}
    finally:
        (zip_layout / "REFERENCE-v3.csv").unlink()


def test_signals_are_lazy_and_equal_wfdb(physionet_tree: Path) -> None:
    ds = clef.datasets.open("cinc2017", physionet_tree)
    for record in ("A00001", "A01007"):
        signal, fs = ds.signal(record)
        folder = record[:3]
        reference = wfdb.rdrecord(str(physionet_tree / "training" / folder / record)).p_signal[:, 0]
        assert fs == 300.0 and signal.shape == (3000,) and len(signal) == 3000
        np.testing.assert_array_equal(signal[:], reference)
        np.testing.assert_array_equal(signal[1200:1500], reference[1200:1500])
        np.testing.assert_array_equal(signal[::7], reference[::7])
    for lead in ("ECG", "ecg", "I", 0, "0", -1):
        np.testing.assert_array_equal(ds.signal("A00003", lead=lead)[0][:100], ds.signal("A00003")[0][:100])
    assert len(ds.signals(records=["A00001", "A00002"])) == 2 and len(ds.signals()) == 16


def test_tasks_follow_the_labels(physionet_tree: Path, source: dict) -> None:
    ds = clef.datasets.open("cinc2017", physionet_tree)
    expected = pd.Series(source["labels"], index=source["records"])
    X, y, groups, split = ds.task("af")
    keep = expected[expected.isin(["A", "N"])]
    assert y.index.tolist() == keep.index.tolist() and y.index.name == "record" and y.name == "af"
    assert y.dtype == np.int64 and y.tolist() == (keep == "A").astype(int).tolist()
    assert int(y.sum()) == 4 and len(y) == 10  # 4 LUDB AF records, 6 in sinus rhythm
    assert y.index.equals(groups.index) and y.index.equals(split.index) and (groups == y.index).all()
    position = y.index.get_loc("A00005")
    reference = wfdb.rdrecord(str(physionet_tree / "training" / "A00" / "A00005")).p_signal[:, 0]
    np.testing.assert_array_equal(X[position][:], reference)
    assert X[position].fs == 300.0
    X, y, _, split = ds.task("rhythm", lead="I")
    assert y.tolist() == source["labels"] and y.value_counts().to_dict() == {"N": 6, "A": 4, "O": 3, "~": 3}
    assert len(X) == 16 and split.equals(ds.table.set_index("record")["split"].rename_axis("record"))


def test_split_is_pinned_and_stratified_by_label(physionet_tree: Path, source: dict) -> None:
    ds = clef.datasets.open("cinc2017", physionet_tree)
    split = ds.table.set_index("record")["split"]
    again = clef.datasets.open("cinc2017", physionet_tree).table.set_index("record")["split"]
    assert split.equals(again)
    expected = pinned_split(source["records"], "cinc2017", val=0.1, test=0.1, strata=source["labels"])
    assert split.tolist() == list(expected)
    # every class of three or more records has one in val and one in test: 4 A -> 2/1/1, 6 N -> 4/1/1, 3 O, 3 ~
    counts = pd.crosstab(ds.table["label"], ds.table["split"])
    assert counts.loc["A"].to_dict() == {"test": 1, "train": 2, "val": 1}
    assert counts.loc["N"].to_dict() == {"test": 1, "train": 4, "val": 1}
    assert counts.loc[["O", "~"]].to_numpy().tolist() == [[1, 1, 1], [1, 1, 1]]
    unstratified = pinned_split(source["records"], "cinc2017", val=0.1, test=0.1)
    assert (pd.Series(list(unstratified)).value_counts().to_dict()) == {"train": 12, "test": 2, "val": 2}


def test_embedding_a_task_runs(physionet_tree: Path) -> None:
    X, _, _, _ = clef.datasets.open("cinc2017", physionet_tree).task("af")
    embeddings = clef.embed(X[:2], fs=None, model=clef.build("small", seed=0))
    assert embeddings.shape == (2, 256) and np.isfinite(embeddings).all()


def test_bad_input_gets_clear_errors(physionet_tree: Path, source: dict, tmp_path: Path) -> None:
    with pytest.raises(clef.DatasetError, match=r"folder .*absent not found.*clef datasets download cinc2017"):
        clef.datasets.open("cinc2017", tmp_path / "absent")
    with pytest.raises(clef.DatasetError, match=r"records folder training/ .* not found.*physionet.org/content"):
        len(clef.datasets.open("cinc2017", tmp_path))
    ds = clef.datasets.open("cinc2017", physionet_tree)
    with pytest.raises(clef.DatasetError, match="no task 'sex'; its tasks: af, rhythm"):
        ds.task("sex")
    with pytest.raises(clef.DatasetError, match="one lead .*no lead 'II'"):
        ds.signal("A00001", lead="II")
    with pytest.raises(clef.DatasetError, match="no lead 1"):
        ds.task("af", lead=1)
    with pytest.raises(clef.DatasetError, match="no record 'A09999'"):
        ds.signal("A09999")

    copy = tmp_path / "copy"
    shutil.copytree(physionet_tree, copy)
    (copy / "REFERENCE-v3.csv").unlink()
    (copy / "training" / "REFERENCE.csv").unlink()
    with pytest.raises(clef.DatasetError, match=r"label file REFERENCE-v3.csv or REFERENCE.csv not found"):
        len(CinC2017(copy))
    # a label file naming records whose files are absent
    _write_reference(copy / "REFERENCE-v3.csv", [*source["records"], "A08527", "A08528"], [*source["labels"], "N", "A"])
    with pytest.raises(
        clef.DatasetError, match=r"header\(s\) of 2 record\(s\) that REFERENCE-v3.csv labels \(A08527, A08528\)"
    ):
        len(CinC2017(copy))
    (copy / "REFERENCE-v3.csv").write_text("A00001,N\nA00002,X\n")
    with pytest.raises(clef.DatasetError, match=r"line 2: expected 'record,label'.*got 'A00002,X'"):
        len(CinC2017(copy))
    # a record the label file does not name has no label and is in no task
    _write_reference(copy / "REFERENCE-v3.csv", source["records"][1:], source["labels"][1:])
    unlabelled = CinC2017(copy)
    assert pd.isna(unlabelled.table.at[0, "label"]) and "A00001" not in unlabelled.task("rhythm").y.index
    # unreadable records: a truncated .mat fails when read, a broken header when the table is built
    mat = copy / "training" / "A00" / "A00002.mat"
    mat.write_bytes(mat.read_bytes()[:100])
    signal, _ = unlabelled.signal("A00002")
    with pytest.raises(clef.RecordingError, match="A00002"):
        signal[:10]
    (copy / "training" / "A00" / "A00003.hea").write_text("A00003 one 300\n")
    with pytest.raises(clef.RecordingError, match=r"A00003.hea is not a single-segment WFDB header"):
        len(CinC2017(copy))
