"""The reader interface: pinned splits, split files, lazy signals, the header reader, ``open`` by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clef_sdk as clef
from clef_sdk.datasets import ArraySignal, SignalSlice, pinned_split, read_split, write_split
from clef_sdk.datasets.signals import read_header


def test_pinned_split_is_fixed_grouped_and_sized() -> None:
    patients = [f"p{i // 3}" for i in range(300)]  # 100 patients, 3 records each
    split = pinned_split(patients, "demo")
    again = pinned_split(list(reversed(patients)), "demo")[::-1]
    assert (split == again).all()  # the record order does not matter
    frame = pd.DataFrame({"patient": patients, "split": split})
    assert (frame.groupby("patient")["split"].nunique() == 1).all()  # a patient is on one side only
    per_patient = frame.drop_duplicates("patient")["split"].value_counts().to_dict()
    assert per_patient == {"train": 80, "val": 10, "test": 10}
    # the places are pinned: SHA-256 ranks of "clef-sdk:demo:p<i>" (a change here changes every published split)
    assert pinned_split([f"p{i}" for i in range(10)], "demo").tolist() == ["train", "test", "val"] + ["train"] * 7
    assert not (pinned_split(patients, "other") == split).all()  # another dataset splits independently


def test_pinned_split_strata_keep_the_class_proportions() -> None:
    patients = [str(i) for i in range(100)]
    strata = ["rare" if i < 10 else "common" for i in range(100)]
    split = pinned_split(patients, "demo", val=0.2, test=0.2, strata=strata)
    rare = pd.Series(split[:10]).value_counts().to_dict()
    assert rare == {"train": 6, "val": 2, "test": 2}
    # every part gets a patient once there are three, even where the fraction rounds to none
    assert sorted(pinned_split(["a", "b", "c"], "demo")) == ["test", "train", "val"]
    with pytest.raises(ValueError, match="fractions"):
        pinned_split(patients, "demo", val=0.6, test=0.5)
    with pytest.raises(ValueError, match="strata"):
        pinned_split(patients, "demo", strata=["x"])


def test_split_file_round_trip_and_bad_files(tmp_path: Path) -> None:
    table = pd.DataFrame({"record": ["1", "2", "3"], "patient": ["a", "a", "b"], "split": ["train", "train", "test"]})
    path = write_split(table, tmp_path / "split.csv")
    assert read_split(path).to_dict() == {"1": "train", "2": "train", "3": "test"}
    (tmp_path / "bad.csv").write_text("record,split\n1,holdout\n")
    with pytest.raises(ValueError, match="holdout"):
        read_split(tmp_path / "bad.csv")
    with pytest.raises(ValueError, match="lacks"):
        write_split(table.drop(columns="patient"), tmp_path / "x.csv")


def test_signal_slice_and_array_signal_read_only_what_is_asked() -> None:
    calls = []
    values = np.arange(1000, dtype=np.float32)

    def load() -> np.ndarray:
        calls.append(1)
        return values

    base = ArraySignal(load, 1000, 250.0, "demo")
    window = SignalSlice(base, 100, 350)
    assert window.shape == (250,) and window.fs == 250.0 and calls == []  # nothing read yet
    np.testing.assert_array_equal(window[10:20], values[110:120])
    np.testing.assert_array_equal(window[::100], values[100:350:100])
    assert window[5:5].size == 0
    with pytest.raises(ValueError, match="outside"):
        SignalSlice(base, 900, 1200)
    with pytest.raises(TypeError, match="slices"):
        window[3]  # type: ignore[index]
    short = ArraySignal(lambda: values[:10], 1000, 250.0, "short")
    with pytest.raises(clef.RecordingError, match="10 samples"):
        short[0:5]


def test_header_reader_agrees_with_wfdb(data_dir: Path) -> None:
    wfdb = pytest.importorskip("wfdb")
    for path in [data_dir / "wfdb-sample" / "100", data_dir / "ludb" / "data" / "1", data_dir / "ludb" / "data" / "77"]:
        ours, theirs = read_header(path), wfdb.rdheader(str(path))
        assert (ours.fs, ours.n_samples) == (theirs.fs, theirs.sig_len)
        assert ours.leads == tuple(clef.io.canonical_lead(name) for name in theirs.sig_name)
        assert list(ours.comments) == [c.strip() for c in theirs.comments]


def test_header_reader_refuses_what_is_not_a_header(tmp_path: Path) -> None:
    (tmp_path / "x.hea").write_text("# only a comment\n")
    with pytest.raises(clef.RecordingError, match="not a single-segment"):
        read_header(tmp_path / "x.hea")
    with pytest.raises(clef.RecordingError, match="cannot read"):
        read_header(tmp_path / "absent.hea")


def test_open_by_name_and_its_errors(tmp_path: Path) -> None:
    assert set(clef.datasets.available_datasets()) == {
        "ptbxl",
        "cinc2017",
        "challenge2021",
        "chapman",
        "icentia11k",
        "mimic-iv-ecg",
        "ludb",
        "mitdb",
    }
    with pytest.raises(clef.DatasetError, match="unknown dataset 'ptb'"):
        clef.datasets.open("ptb", tmp_path)
    with pytest.raises(clef.DatasetError, match=r"not found.*clef datasets download ludb"):
        clef.datasets.open("ludb", tmp_path / "absent")
    with pytest.raises(clef.DatasetError, match="500 Hz, not fs=250"):
        clef.datasets.open("ludb", tmp_path, fs=250)
