"""The Chapman-Shaoxing-Ningbo reader on a small copy of its layout (``WFDBRecords/<nn>/<nnn>/<name>.hea + .mat``)
built from real LUDB recordings with real SNOMED CT codes (``layouts_snomed.py``); the rhythm groups are checked
against the Challenge's SNOMED tables in ``../shared/data/label-maps/physionet-challenge-2021``."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from layouts_snomed import CHAPMAN_SPECS, expected_scored, write_layout

import clef_sdk as clef
from clef_sdk.datasets.chapman import RHYTHM_GROUPS, rhythm_group
from clef_sdk.datasets.snomed import SCORED_LABELS

wfdb = pytest.importorskip("wfdb")
pytest.importorskip("scipy")

SPEC = {spec.name: spec for spec in CHAPMAN_SPECS}


@pytest.fixture(scope="module")
def label_maps(data_dir: Path) -> Path:
    return data_dir / "label-maps" / "physionet-challenge-2021"


@pytest.fixture(scope="module")
def root(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_layout(tmp_path_factory.mktemp("ecg-arrhythmia"), CHAPMAN_SPECS, data_dir, style="chapman")


@pytest.fixture(scope="module")
def ds(root: Path) -> clef.datasets.Dataset:
    return clef.datasets.open("chapman", root)


def test_rhythm_groups_are_zhengs_by_the_challenges_snomed_names(label_maps: Path) -> None:
    names = {}
    for table in ("dx_mapping_scored.csv", "dx_mapping_unscored.csv"):
        with open(label_maps / table, newline="") as handle:
            names.update({row["SNOMEDCTCode"]: row["Dx"].strip().lower() for row in csv.DictReader(handle)})
    grouped = {group: sorted(names[code] for code in codes) for group, codes in RHYTHM_GROUPS.items()}
    # Zheng et al. 2020 (Sci Data 7:48): 11 rhythms merged into 4 groups
    assert grouped == {
        "SB": ["sinus bradycardia"],
        "AFIB": ["atrial fibrillation", "atrial flutter"],
        "GSVT": [
            "atrial tachycardia",
            "atrioventricular  node reentrant tachycardia",  # two spaces, as the mapping spells it
            "atrioventricular reentrant tachycardia",
            "sinus atrium to atrial wandering rhythm",
            "sinus tachycardia",
            "supraventricular tachycardia",
        ],
        "SR": ["sinus arrhythmia", "sinus rhythm"],
    }
    assert rhythm_group(("426177001", "59118001")) == "SB"  # other codes do not count
    assert rhythm_group(("426177001", "427393009")) is None  # two groups
    assert rhythm_group(("164889003", "164890007")) == "AFIB"  # two rhythms of one group
    assert rhythm_group(("59118001",)) is None and rhythm_group(None) is None


def test_table_comes_from_the_headers(ds: clef.datasets.Dataset) -> None:
    table = ds.table.set_index("record")
    assert list(ds.table.columns) == [
        "record",
        "patient",
        "split",
        "fs",
        "n_samples",
        "leads",
        "age",
        "sex",
        "dx",
        "filename",
    ]
    assert sorted(table.index) == sorted(SPEC) and (table.index == table["patient"]).all()
    assert (table["fs"] == 500.0).all() and (table["n_samples"] == 5000).all()
    assert (table["leads"] == clef.io.STANDARD_LEADS).all()
    # "#Age:"/"#Sex:" without a space: LUDB 1 is a 51-year-old woman, LUDB 2 a 64-year-old man
    assert (table.at["JS00001", "age"], table.at["JS00001", "sex"]) == (51.0, "female")
    assert (table.at["JS00005", "age"], table.at["JS00005", "sex"]) == (64.0, "male")
    assert table.at["JS00007", "dx"] == ("426177001", "427393009", "733534002")
    assert table.at["JS00007", "filename"] == "WFDBRecords/01/011/JS00007"


def test_rhythm_task_keeps_records_of_exactly_one_group(ds: clef.datasets.Dataset) -> None:
    X, y, groups, split = ds.task("rhythm", lead="II")
    assert isinstance(y, pd.Series) and y.index.name == "record" and y.name == "rhythm"
    # LUDB's own rhythms: 1 sinus bradycardia, 8 fibrillation, 35 flutter, 70 tachycardia, 2 sinus, 22 arrhythmia
    assert y.to_dict() == {
        "JS00001": "SB",
        "JS00002": "AFIB",
        "JS00003": "AFIB",
        "JS00004": "GSVT",
        "JS00005": "SR",
        "JS00006": "SR",
    }  # JS00007 (bradycardia and arrhythmia) and JS00008 (no rhythm code) are left out
    assert len(X) == len(groups) == len(split) == 6 and y.index.equals(split.index) and (groups == y.index).all()
    assert all(x.fs == 500.0 and x.shape == (5000,) for x in X)


def test_scored_task_is_the_challenges(ds: clef.datasets.Dataset, label_maps: Path) -> None:
    X, y, _, _ = ds.task("scored")
    assert list(y.columns) == list(SCORED_LABELS) and len(X) == len(y) == 8
    for record, row in y.iterrows():
        assert set(row.index[row == 1]) == expected_scored(SPEC[record].dx, label_maps), record
    assert y.loc["JS00008", "CRBBB|RBBB"] == 1 and y.loc["JS00008"].sum() == 1


def test_signals_equal_wfdb_and_the_pinned_split(ds: clef.datasets.Dataset, root: Path, data_dir: Path) -> None:
    signal, fs = ds.signal("JS00004", lead="aVF")
    reference = wfdb.rdrecord(str(root / SPEC["JS00004"].path), channel_names=["aVF"]).p_signal[:, 0]
    ludb = wfdb.rdrecord(str(data_dir / "ludb" / "data" / "70"), channel_names=["avf"]).p_signal[:, 0]
    assert fs == 500.0
    np.testing.assert_array_equal(signal[:], reference)
    np.testing.assert_array_equal(signal[2500:2600], ludb[2500:2600])
    split = ds.table.set_index("record")["split"]
    # SHA-256 of "clef-sdk:chapman:<record>": 10% val, 10% test of 8 records (a change here moves records)
    assert split[split != "train"].to_dict() == {"JS00003": "val", "JS00004": "test"}
    embeddings = clef.embed([signal], fs=None, model=clef.build("small", seed=0))
    assert embeddings.shape == (1, 256) and np.isfinite(embeddings).all()


def test_errors_say_what_is_wrong(ds: clef.datasets.Dataset, root: Path, tmp_path: Path) -> None:
    with pytest.raises(
        clef.DatasetError, match=r"WFDBRecords/<nn>/<nnn>/<name>.hea \+ .mat\) not found.*ecg-arrhythmia"
    ):
        len(clef.datasets.open("chapman", tmp_path))  # the table is read on first use
    with pytest.raises(clef.DatasetError, match="published at 500 Hz, not fs=250"):
        clef.datasets.open("chapman", root, fs=250)
    assert clef.datasets.open("chapman", root, fs=500).fs == 500.0
    with pytest.raises(clef.DatasetError, match="no task 'superdiagnostic'; its tasks: scored, rhythm"):
        ds.task("superdiagnostic")
    with pytest.raises(clef.RecordingError, match="record JS00001 has no lead 'V9'"):
        ds.task("rhythm", lead="V9")
    with pytest.raises(clef.DatasetError, match="no record 'JS99999'"):
        ds.signal("JS99999")
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    (copy / f"{SPEC['JS00005'].path}.mat").unlink()
    with pytest.raises(clef.DatasetError, match=r"WFDBRecords/01/010/JS00005.mat \(the signal of record JS00005\)"):
        clef.datasets.open("chapman", copy).signal("JS00005", lead="I")
