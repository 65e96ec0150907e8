"""The PTB-XL reader on a small copy of its layout: 27 real rows of ``ptbxl_database.csv`` (the first-521 excerpt in
``../shared/data/label-maps/ptb-xl``, every fold, every superclass, patients with two records), the real
``scp_statements.csv``, and real LUDB recordings written as PTB-XL's ``records500/`` and ``records100/`` files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clef_sdk as clef

wfdb = pytest.importorskip("wfdb")
signal_module = pytest.importorskip("scipy.signal")

from ptbxl_layout import IDS, ludb_of, write_ptbxl


@pytest.fixture(scope="module")
def root(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_ptbxl(tmp_path_factory.mktemp("ptb-xl"), data_dir)


@pytest.fixture(scope="module")
def ds(root: Path) -> clef.datasets.Dataset:
    return clef.datasets.open("ptbxl", root)


def labels_of(y: pd.DataFrame, record: str) -> set[str]:
    row = y.loc[record]
    return set(row.index[row == 1])


def test_table_has_the_published_rows_and_folds(ds: clef.datasets.Dataset, root: Path) -> None:
    table = ds.table.set_index("record")
    assert list(ds.table.columns) == [
        "record", "patient", "split", "fs", "n_samples", "leads", "age", "sex", "strat_fold", "scp_codes", "filename"
    ]  # fmt: skip
    assert sorted(table.index, key=int) == [str(i) for i in IDS]
    assert (table["fs"] == 500.0).all() and (table["n_samples"] == 5000).all()
    assert (table["leads"] == clef.io.STANDARD_LEADS).all()
    # ecg_id 1 (the CSV's first row): patient 15709.0, 56 years, sex 1 (female), fold 3
    row = table.loc["1"]
    assert (row["patient"], row["age"], row["sex"], row["strat_fold"], row["split"]) == (
        "15709",
        56.0,
        "female",
        3,
        "train",
    )
    assert row["scp_codes"] == {"NORM": 100.0, "LVOLT": 0.0, "SR": 0.0}
    assert row["filename"] == "records500/00000/00001_hr" and table.at["2", "sex"] == "male"
    # folds 1-8 train, 9 val, 10 test: the ids' real strat_fold values
    assert table["split"].value_counts().to_dict() == {"train": 16, "val": 6, "test": 5}
    assert sorted(table.index[table["split"] == "val"], key=int) == ["8", "17", "20", "30", "295", "326"]
    assert sorted(table.index[table["split"] == "test"], key=int) == ["9", "63", "65", "336", "347"]
    # a patient's records share the split (PTB-XL's folds are patient-disjoint)
    assert (table.loc[["273", "298"], "patient"] == "340").all() and table.loc[["273", "298"], "split"].nunique() == 1
    assert table.groupby("patient")["split"].nunique().max() == 1
    lr = clef.datasets.open("ptbxl", root, fs=100).table.set_index("record")
    assert (lr.at["1", "fs"], lr.at["1", "n_samples"], lr.at["1", "filename"]) == (
        100.0,
        1000,
        "records100/00000/00001_lr",
    )
    assert lr["split"].equals(table["split"])


def test_superdiagnostic_task_is_the_benchmarks(ds: clef.datasets.Dataset) -> None:
    X, y, groups, split = ds.task("superdiagnostic")
    assert list(y.columns) == ["CD", "HYP", "MI", "NORM", "STTC"] and (y.dtypes == np.int64).all()
    assert len(X) == len(y) == len(groups) == len(split) == 25  # 17 and 20: no diagnostic statement, left out
    assert "17" not in y.index and "20" not in y.index and y.index.name == "record"
    assert y.index.equals(groups.index) and y.index.equals(split.index)
    assert groups.loc["298"] == "340" and split.loc["9"] == "test" and split.loc["8"] == "val"
    # the real scp_codes, read by hand against scp_statements.csv's diagnostic_class
    assert labels_of(y, "1") == {"NORM"}  # NORM 100, LVOLT (form), SR (rhythm)
    assert labels_of(y, "45") == {"CD", "HYP"}  # IRBBB 100, RAO/RAE 50, RVH 35
    assert labels_of(y, "50") == {"CD", "MI"}  # LMI 15, IVCD 100
    assert labels_of(y, "87") == {"CD", "STTC"}  # NDT 100, IRBBB 100
    assert labels_of(y, "298") == {"HYP", "MI", "STTC"}  # ASMI 15 (not thresholded), LVH 100, ISC_ 100
    assert labels_of(y, "282") == {"CD", "HYP", "MI", "STTC"}  # ASMI, ILBBB, LVH, ISC_ (+ PVC form, AFIB rhythm)
    assert labels_of(y, "8") == {"MI"}  # IMI 35


def test_the_other_tasks_are_the_benchmarks(ds: clef.datasets.Dataset) -> None:
    sub = ds.task("subdiagnostic").y
    assert labels_of(sub, "45") == {"IRBBB", "RAO/RAE", "RVH"} and labels_of(sub, "298") == {"AMI", "LVH", "ISC_"}
    assert labels_of(sub, "50") == {"IVCD", "LMI"}
    diagnostic = ds.task("diagnostic").y
    assert labels_of(diagnostic, "87") == {"IRBBB", "NDT"} and labels_of(diagnostic, "298") == {"ASMI", "LVH", "ISC_"}
    form = ds.task("form").y
    assert labels_of(form, "298") == {"VCLVH", "INVT", "STD_"} and labels_of(form, "87") == {"NDT"}
    assert labels_of(form, "17") == {"ABQRS"} and "2" not in form.index  # 2: NORM, SBRAD only
    rhythm = ds.task("rhythm").y
    assert labels_of(rhythm, "17") == {"AFIB", "AFLT"}  # AFIB at likelihood 0 counts, as in the benchmark
    assert labels_of(rhythm, "20") == {"AFLT"} and labels_of(rhythm, "279") == {"STACH"}
    everything = ds.task("all").y
    assert len(everything) == len(IDS) and labels_of(everything, "1") == {"NORM", "LVOLT", "SR"}
    assert list(everything.columns) == sorted(everything.columns)


def test_signals_are_lazy_and_equal_wfdb(ds: clef.datasets.Dataset, root: Path, data_dir: Path, monkeypatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a file was read before a signal was sliced")

    with monkeypatch.context() as patch:
        patch.setattr(wfdb, "rdrecord", refuse)
        patch.setattr(wfdb, "rdheader", refuse)
        X, y, _, _ = ds.task("superdiagnostic", lead="aVL")
        signal, fs = ds.signal("298", lead="avl")
    assert fs == 500.0 and signal.shape == (5000,) and X[list(y.index).index("298")].shape == (5000,)
    reference = wfdb.rdrecord(str(root / "records500/00000/00298_hr"), channel_names=["AVL"]).p_signal[:, 0]
    np.testing.assert_array_equal(signal[:], reference)
    np.testing.assert_array_equal(X[list(y.index).index("298")][:], reference)
    import pickle  # signals go into DataLoader workers by pickling

    np.testing.assert_array_equal(pickle.loads(pickle.dumps(signal))[:], reference)
    ludb = wfdb.rdrecord(str(data_dir / "ludb" / "data" / ludb_of(298)), channel_names=["avl"]).p_signal[:, 0]
    # written at 1000/mV: rounding to 1 uV steps is the only difference from LUDB's samples
    np.testing.assert_allclose(signal[:], ludb, rtol=0, atol=0.5e-3 + 1e-12)


def test_the_100_and_500_hz_records_agree_after_resampling(root: Path) -> None:
    hr = clef.datasets.open("ptbxl", root, fs=500)
    lr = clef.datasets.open("ptbxl", root, fs=100)
    for record, lead in (("50", "II"), ("7", "V4"), ("347", "aVR")):
        high, high_fs = hr.signal(record, lead)
        low, low_fs = lr.signal(record, lead)
        assert (high_fs, low_fs, len(high), len(low)) == (500.0, 100.0, 5000, 1000)
        decimated = signal_module.decimate(high[:], 5, ftype="fir", zero_phase=True)
        # another anti-aliasing filter than the one that made the 100 Hz files: away from the first and last
        # 0.5 s (filter edges) they agree within 1.4 uV (measured on three records; 1 uV quantization steps),
        # while the same lead of another record differs by about 1 mV
        np.testing.assert_allclose(low[50:-50], decimated[50:-50], rtol=0, atol=5e-3)
        other = lr.signal("1" if record != "1" else "2", lead)[0]
        assert np.abs(other[50:-50] - decimated[50:-50]).max() > 0.1


def test_open_by_name_at_100_hz_and_embed(root: Path) -> None:
    ds = clef.datasets.open("ptbxl", root, fs=100)
    X, y, groups, split = ds.task("superdiagnostic", lead="II")
    assert X[0].fs == 100.0 and X[0].shape == (1000,)
    embeddings = clef.embed(X[:2], fs=None, model=clef.build("small", seed=0))
    assert embeddings.shape == (2, 256) and np.isfinite(embeddings).all()


def test_errors_say_what_is_missing(ds: clef.datasets.Dataset, root: Path, data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(clef.DatasetError, match=r"folder .*nowhere not found.*clef datasets download ptbxl"):
        clef.datasets.open("ptbxl", tmp_path / "nowhere")
    with pytest.raises(clef.DatasetError, match=r"ptbxl_database.csv not found.*physionet.org/content/ptb-xl/1.0.3"):
        len(clef.datasets.open("ptbxl", tmp_path))  # the table is read on first use
    with pytest.raises(clef.DatasetError, match="published at 500 or 100 Hz, not fs=250"):
        clef.datasets.open("ptbxl", root, fs=250)
    with pytest.raises(clef.DatasetError, match="no task 'scored'; its tasks: all, diagnostic, subdiagnostic"):
        ds.task("scored")
    with pytest.raises(clef.DatasetError, match="no record '99999'"):
        ds.signal("99999")
    with pytest.raises(clef.RecordingError, match="record 1 has no lead 'V7'"):
        ds.signal("1", lead="V7")
    (tmp_path / "small").mkdir()
    small = write_ptbxl(tmp_path / "small", data_dir, ids=(1, 2, 8))
    (small / "records500" / "00000" / "00002_hr.dat").unlink()
    broken = clef.datasets.open("ptbxl", small)
    with pytest.raises(clef.DatasetError, match=r"records500/00000/00002_hr.dat \(record 2 of ptbxl_database.csv\)"):
        broken.signal("2")
    with pytest.raises(clef.DatasetError, match="00002_hr.dat"):
        broken.task("all")
    shutil.rmtree(small / "records100")
    with pytest.raises(clef.DatasetError, match=r"records100/ \(the 100 Hz records; pass fs=500 for records500/\)"):
        len(clef.datasets.open("ptbxl", small, fs=100))  # the table is read on first use
    (small / "scp_statements.csv").unlink()
    with pytest.raises(clef.DatasetError, match="scp_statements.csv not found"):
        broken.task("superdiagnostic")
    frame = pd.read_csv(small / "ptbxl_database.csv").drop(columns=["strat_fold"])
    frame.to_csv(small / "ptbxl_database.csv", index=False)
    with pytest.raises(clef.DatasetError, match="ptbxl_database.csv with the columns strat_fold"):
        len(clef.datasets.open("ptbxl", small))  # the table is read on first use
