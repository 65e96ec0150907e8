"""The LUDB reader on the real database (all 200 records in ``../shared/data/ludb``)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clef_sdk as clef


@pytest.fixture(scope="module")
def ludb(data_dir: Path) -> clef.datasets.Dataset:
    return clef.datasets.open("ludb", data_dir / "ludb")


def test_table_has_every_record_with_its_published_facts(ludb: clef.datasets.Dataset, data_dir: Path) -> None:
    table = ludb.table
    assert list(table.columns[:6]) == ["record", "patient", "split", "fs", "n_samples", "leads"]
    assert len(table) == 200 and (table["record"] == table["patient"]).all()
    assert (table["fs"] == 500).all() and (table["n_samples"] == 5000).all()
    assert table["leads"].iloc[0] == clef.io.STANDARD_LEADS
    with open(data_dir / "ludb" / "ludb.csv", newline="") as handle:
        published = {row["ID"]: row for row in csv.DictReader(handle)}
    row = table.set_index("record").loc["1"]
    assert (row["age"], row["sex"], row["rhythm"]) == (51.0, "F", "Sinus bradycardia")
    assert published["1"]["Rhythms"].startswith("Sinus bradycardia")
    # ludb.csv counts (its README): 14 AF (+1 with aberrant conduction) and 3 typical flutter records
    assert (table["rhythm_group"] == "af").sum() == 18


def test_af_task_and_the_stratified_split(ludb: clef.datasets.Dataset) -> None:
    X, y, groups, split = ludb.task("af", lead="II")
    assert len(X) == len(y) == len(groups) == len(split) == 200
    assert y.index.equals(groups.index) and y.index.equals(split.index)
    assert int(y.sum()) == 18 and set(y.unique()) == {0, 1}
    # stratified by rhythm group: AF/flutter 18 -> 10/4/4 (20% val and test, at least one each)
    counts = pd.crosstab(split, y)
    assert counts[1].to_dict() == {"test": 4, "train": 10, "val": 4}
    assert counts.sum(axis=1).to_dict() == {"test": 40, "train": 120, "val": 40}
    assert split.equals(ludb.task("sex").split)  # one split for every task


def test_signals_are_lazy_and_equal_wfdb(ludb: clef.datasets.Dataset, data_dir: Path) -> None:
    wfdb = pytest.importorskip("wfdb")
    signal, fs = ludb.signal("77", lead="aVF")
    reference = wfdb.rdrecord(str(data_dir / "ludb" / "data" / "77"), channel_names=["avf"]).p_signal[:, 0]
    assert fs == 500.0 and signal.shape == (5000,)
    np.testing.assert_array_equal(signal[1000:1100], reference[1000:1100])
    X, y, _, _ = ludb.task("age")
    assert y.dtype == float and y.loc["1"] == 51.0 and X[0].lead == "i"  # default lead I
    assert len(ludb.signals(records=["1", "2"])) == 2


def test_embedding_a_task_runs_end_to_end(ludb: clef.datasets.Dataset) -> None:
    X, y, _, _ = ludb.task("af")
    embeddings = clef.embed(X[:3], model=clef.build("small", seed=0))
    assert embeddings.shape == (3, 256) and np.isfinite(embeddings).all()


def test_errors_say_what_is_missing(ludb: clef.datasets.Dataset, data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(clef.DatasetError, match="no task 'rhythm'; its tasks: af, sex, age"):
        ludb.task("rhythm")
    with pytest.raises(clef.DatasetError, match="no record '999'"):
        ludb.signal("999")
    with pytest.raises(clef.RecordingError, match="no lead 'V7'"):
        ludb.signal("1", lead="V7")
    with pytest.raises(clef.DatasetError, match=r"ludb.csv not found.*physionet.org/content/ludb"):
        len(clef.datasets.open("ludb", tmp_path))
    shutil.copy(data_dir / "ludb" / "ludb.csv", tmp_path / "ludb.csv")
    (tmp_path / "data").mkdir()
    with pytest.raises(clef.DatasetError, match=r"data/1.hea \(record 1 of ludb.csv\) not found"):
        len(clef.datasets.open("ludb", tmp_path))
