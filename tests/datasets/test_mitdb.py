"""The MIT-BIH reader in both layouts: tpcp's NumPy copy (``mitdb-tpcp``) and PhysioNet's WFDB files (record 100
in ``wfdb-sample``, copied into a PhysioNet-layout folder)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clef_sdk as clef
from clef_sdk.datasets.mitdb import DS1, DS2, PACED


@pytest.fixture(scope="module")
def mitdb(data_dir: Path) -> clef.datasets.Dataset:
    return clef.datasets.open("mitdb", data_dir / "mitdb-tpcp")


@pytest.fixture
def physionet_layout(data_dir: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "mitdb"
    folder.mkdir()
    for suffix in (".hea", ".dat", ".atr"):
        shutil.copy(data_dir / "wfdb-sample" / f"100{suffix}", folder)
    (folder / "RECORDS").write_text("100\n")
    return folder


def test_the_published_split_lists() -> None:
    assert len(DS1) == len(DS2) == 22 and not DS1 & DS2 and not (DS1 | DS2) & PACED
    assert len(DS1 | DS2 | PACED) == 48


def test_table_counts_equal_the_published_beat_tables(mitdb: clef.datasets.Dataset) -> None:
    table = mitdb.table.set_index("record")
    assert len(table) == 12 and (table["fs"] == 360).all() and (table["n_samples"] == 650_000).all()
    # the README's table of the official counts
    assert table.loc[["106", "119", "200"], "n_pvc"].tolist() == [520, 444, 826]
    assert table.loc["100", "n_beats"] == 2273
    assert table.loc[["102", "104"], "split"].tolist() == ["excluded", "excluded"]  # paced
    assert set(table.loc[["100", "105", "121", "123", "200"], "split"]) == {"test"}  # DS2
    assert set(table.loc[["106", "108", "114", "116", "119"], "split"]) <= {"train", "val"}  # DS1
    assert (table["split"] == "val").sum() == 1  # 20% of five DS1 subjects, at least one


def test_pvc_windows_follow_the_annotations(mitdb: clef.datasets.Dataset, data_dir: Path) -> None:
    X, y, groups, split = mitdb.task("pvc")
    assert len(X) == 10 * 180 and set(groups) == {"100", "105", "106", "108", "114", "116", "119", "121", "123", "200"}
    assert (groups.loc[split == "test"].isin(DS2)).all()
    pvc = pd.read_csv(data_dir / "mitdb-tpcp" / "106_pvc.csv")["PVC"].to_numpy()
    for index in (0, 12, 179):
        window = f"106/{index:04d}"
        inside = ((pvc >= index * 3600) & (pvc < (index + 1) * 3600)).any()
        assert y.loc[window] == int(inside)
    windows_with_pvc = {int(sample) // 3600 for sample in pvc if sample < 180 * 3600}
    assert y.loc[groups == "106"].sum() == len(windows_with_pvc) == 98
    signal = np.load(data_dir / "mitdb-tpcp" / "106.npz")["ecg"]
    position = list(y.index).index("106/0012")
    np.testing.assert_array_equal(X[position][:], signal[12 * 3600 : 13 * 3600].astype(np.float64))
    assert X[position].fs == 360.0


def test_physionet_layout_reads_the_same_record(physionet_layout: Path, mitdb: clef.datasets.Dataset) -> None:
    pytest.importorskip("wfdb")
    ds = clef.datasets.open("mitdb", physionet_layout)
    assert ds.layout == "wfdb" and mitdb.layout == "npz"
    row = ds.table.iloc[0]
    assert (row["record"], row["leads"], row["split"]) == ("100", ("II", "V5"), "test")
    # wfdb's beat symbols: 2273 beats in record 100, one of them a PVC (the tpcp counts agree)
    assert (row["n_beats"], row["n_pvc"]) == (2273, 1)
    X, y, _, _ = ds.task("pvc")
    X_npz, y_npz, groups_npz, _ = mitdb.task("pvc")
    assert y.tolist() == y_npz[groups_npz == "100"].tolist()
    # the NumPy copy is float32 of wfdb's float64 mV: equal to float32 rounding (README: identical to 1e-6 mV)
    np.testing.assert_allclose(X[5][:], X_npz[5][:], rtol=0, atol=1e-6)
    v5, fs = ds.signal("100", lead="V5")
    assert fs == 360.0 and v5.shape == (650_000,)


def test_errors(mitdb: clef.datasets.Dataset, tmp_path: Path) -> None:
    with pytest.raises(clef.DatasetError, match="lead 'V5' of record 100"):
        mitdb.signal("100", lead="V5")
    with pytest.raises(clef.DatasetError, match="MIT-BIH records"):
        len(clef.datasets.open("mitdb", tmp_path))
    (tmp_path / "105_pvc.csv").write_text(",PVC\n")
    (tmp_path / "105_all.csv").write_text(",R\n")
    with pytest.raises(clef.DatasetError, match="105.npz"):
        len(clef.datasets.open("mitdb", tmp_path))


def test_signals_pickle_for_dataloader_workers(mitdb: clef.datasets.Dataset) -> None:
    import pickle

    X, _, _, _ = mitdb.task("pvc")
    copy = pickle.loads(pickle.dumps(X[200]))
    np.testing.assert_array_equal(copy[:], X[200][:])
