"""The Challenge 2021 reader on a small copy of its layout (``training/<source>/<gNN>/<name>.hea + .mat``) built
from real LUDB and MIT-BIH recordings with real SNOMED CT codes (``layouts_snomed.py``), and the 26 scored classes
checked against the Challenge's own tables in ``../shared/data/label-maps/physionet-challenge-2021``."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from layouts_snomed import CHALLENGE_SPECS, expected_scored, read_weights_classes, source_record, write_layout

import clef_sdk as clef
from clef_sdk.datasets.snomed import LABEL_OF_CODE, SCORED_CLASSES, SCORED_LABELS, scored_labels

wfdb = pytest.importorskip("wfdb")
pytest.importorskip("scipy")


@pytest.fixture(scope="module")
def label_maps(data_dir: Path) -> Path:
    return data_dir / "label-maps" / "physionet-challenge-2021"


@pytest.fixture(scope="module")
def root(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_layout(tmp_path_factory.mktemp("challenge-2021"), CHALLENGE_SPECS, data_dir, style="challenge")


@pytest.fixture(scope="module")
def ds(root: Path) -> clef.datasets.Dataset:
    return clef.datasets.open("challenge2021", root)


SPEC = {spec.name: spec for spec in CHALLENGE_SPECS}


def test_the_scored_classes_are_the_challenges_tables(label_maps: Path) -> None:
    codes, labels = read_weights_classes(label_maps)
    assert [scored.codes for scored in SCORED_CLASSES] == codes  # weights.csv columns, equivalences included
    assert list(SCORED_LABELS) == labels  # weights_abbreviations.csv columns
    assert len(SCORED_CLASSES) == 26 and list(SCORED_LABELS) == sorted(SCORED_LABELS)
    with open(label_maps / "dx_mapping_scored.csv", newline="") as handle:
        mapping = {row["SNOMEDCTCode"]: row for row in csv.DictReader(handle)}
    assert set(LABEL_OF_CODE) == set(mapping)  # 30 codes: every scored code, no other
    for scored in SCORED_CLASSES:
        for code, abbreviation, name in zip(scored.codes, scored.abbreviations, scored.names):
            assert (mapping[code]["Abbreviation"], mapping[code]["Dx"]) == (abbreviation, name)
    # the four equivalences the mapping's notes state ("We score 713427006 and 59118001 as the same diagnosis")
    merged = {scored.codes for scored in SCORED_CLASSES if len(scored.codes) == 2}
    noted = {tuple(row["Notes"].split()[2:5:2]) for row in mapping.values() if row["Notes"]}
    assert merged == noted and len(merged) == 4
    assert scored_labels(["59118001", "713427006", "164873001"]) == ["CRBBB|RBBB"]  # merged once; LVH unscored


def test_the_layout_holds_matlab_v4_files_wfdb_reads_back(root: Path, data_dir: Path) -> None:
    import scipy.io

    for spec in CHALLENGE_SPECS:
        path = root / spec.path
        source, sampto = source_record(data_dir, spec.source)
        original = wfdb.rdrecord(source, sampto=sampto)
        np.testing.assert_array_equal(wfdb.rdrecord(str(path)).p_signal, original.p_signal)
        val = scipy.io.loadmat(f"{path}.mat")["val"]
        assert val.dtype == np.int16 and val.shape == original.p_signal.shape[::-1]


def test_table_comes_from_the_headers(ds: clef.datasets.Dataset) -> None:
    table = ds.table.set_index("record")
    assert list(ds.table.columns[:6]) == ["record", "patient", "split", "fs", "n_samples", "leads"]
    assert list(ds.table.columns[6:]) == ["source", "age", "sex", "dx", "filename"]
    assert sorted(table.index) == sorted(SPEC) and (table.index == table["patient"]).all()
    assert table["source"].value_counts().to_dict() == {"cpsc_2018": 4, "georgia": 3, "chapman_shaoxing": 3, "mitdb": 1}
    # MIT-BIH 100: 360 Hz, 60 s excerpt, MLII (canonical "II") and V5; LUDB records: 500 Hz, 10 s, 12 leads
    assert (table.at["M100", "fs"], table.at["M100", "n_samples"], table.at["M100", "leads"]) == (
        360.0,
        21600,
        ("II", "V5"),
    )
    assert (table.at["A0004", "fs"], table.at["A0004", "n_samples"]) == (500.0, 5000)
    assert table.at["A0004", "leads"] == clef.io.STANDARD_LEADS
    # ludb.csv: record 108 is a 55-year-old man; MIT-BIH 100 a 69-year-old man; LUDB 10 a 79-year-old woman
    assert (table.at["A0004", "age"], table.at["A0004", "sex"]) == (55.0, "male")
    assert (table.at["M100", "age"], table.at["A0002", "age"], table.at["A0002", "sex"]) == (69.0, 79.0, "female")
    assert table.at["A0004", "dx"] == ("427393009", "39732003", "713427006", "445118002", "284470004")
    assert table.at["E00003", "dx"] is None  # no Dx line
    assert table.at["JS00002", "filename"] == "training/chapman_shaoxing/g1/JS00002"


def test_scored_task_merges_the_equivalent_codes(ds: clef.datasets.Dataset, label_maps: Path) -> None:
    X, y, groups, split = ds.task("scored", lead="II")
    assert isinstance(y, pd.DataFrame) and list(y.columns) == read_weights_classes(label_maps)[1]
    assert len(X) == len(y) == len(groups) == len(split) == 10  # E00003 has no Dx line: left out
    assert "E00003" not in y.index and y.index.name == "record"
    assert y.index.equals(groups.index) and y.index.equals(split.index) and (groups == y.index).all()
    assert (y.dtypes == np.int64).all() and set(np.unique(y.to_numpy())) == {0, 1}
    for record, row in y.iterrows():
        assert set(row.index[row == 1]) == expected_scored(SPEC[record].dx, label_maps), record
    # 59118001 (A0002) and 713427006 (A0004) are one column, as are 733534002 (JS00001) and 164909002 (JS00002)
    assert y["CRBBB|RBBB"][lambda s: s == 1].index.tolist() == ["A0002", "A0004"]
    assert sorted(y["CLBBB|LBBB"][lambda s: s == 1].index) == ["JS00001", "JS00002"]
    assert y.loc["JS00003"].sum() == 0  # unscored codes only: a row of zeros, kept as the Challenge scores it
    assert y.loc["M100", ["NSR", "PAC|SVPB", "PVC|VPB"]].tolist() == [1, 1, 1] and y.loc["M100"].sum() == 3
    assert split.equals(ds.table.set_index("record").loc[y.index, "split"].rename_axis("record"))
    assert X[list(y.index).index("M100")].fs == 360.0


def test_signals_are_lazy_and_equal_wfdb(ds: clef.datasets.Dataset, root: Path, data_dir: Path, monkeypatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a file was read before a signal was sliced")

    with monkeypatch.context() as patch:
        patch.setattr(wfdb, "rdrecord", refuse)
        patch.setattr(wfdb, "rdheader", refuse)
        X, y, _, _ = ds.task("scored", lead="V5")
        signal, fs = ds.signal("A0004", lead="v2")
    assert fs == 500.0 and signal.shape == (5000,)
    reference = wfdb.rdrecord(str(root / SPEC["A0004"].path), channel_names=["V2"]).p_signal[:, 0]
    np.testing.assert_array_equal(signal[:], reference)
    ludb_v2 = wfdb.rdrecord(str(data_dir / "ludb" / "data" / "108"), channel_names=["v2"]).p_signal[:, 0]
    np.testing.assert_array_equal(signal[1000:1200], ludb_v2[1000:1200])  # the same samples, not a neighbour lead
    mlii, fs = ds.signal("M100", lead="MLII")
    assert fs == 360.0 and mlii.shape == (21600,)
    original = wfdb.rdrecord(str(data_dir / "wfdb-sample" / "100"), sampto=21600, channels=[0]).p_signal[:, 0]
    np.testing.assert_array_equal(mlii[:], original)
    v5 = X[list(y.index).index("M100")]
    np.testing.assert_array_equal(
        v5[:], wfdb.rdrecord(str(data_dir / "wfdb-sample" / "100"), sampto=21600).p_signal[:, 1]
    )


def test_pinned_split_is_fixed_and_independent_of_the_folders(
    ds: clef.datasets.Dataset, root: Path, tmp_path: Path
) -> None:
    split = ds.table.set_index("record")["split"]
    # SHA-256 of "clef-sdk:challenge2021:<record>": 10% val, 10% test of 11 records (a change here moves records)
    assert split[split != "train"].to_dict() == {"A0004": "val", "M100": "test"}
    flat = tmp_path / "flat"
    flat.mkdir()
    for path in sorted(root.rglob("*.*"))[::-1]:  # another folder tree, files copied in another order
        shutil.copy(path, flat / path.name)
    other = clef.datasets.open("challenge2021", flat).table.set_index("record")
    assert other["split"].sort_index().equals(split.sort_index())
    assert (other["source"] == "").all()


def test_embedding_a_task_runs_end_to_end(ds: clef.datasets.Dataset) -> None:
    X, y, _, _ = ds.task("scored", lead="II")
    chosen = [X[list(y.index).index(record)] for record in ("M100", "A0003")]  # 360 Hz 60 s and 500 Hz 10 s
    embeddings = clef.embed(chosen, fs=None, model=clef.build("small", seed=0))
    assert embeddings.shape == (2, 256) and np.isfinite(embeddings).all()


def test_errors_say_what_is_wrong(ds: clef.datasets.Dataset, root: Path, tmp_path: Path) -> None:
    with pytest.raises(clef.DatasetError, match=r"folder .*nowhere not found.*clef datasets download challenge2021"):
        clef.datasets.open("challenge2021", tmp_path / "nowhere")
    with pytest.raises(clef.DatasetError, match=r"WFDB headers \(.hea\) of the records.*not found under"):
        len(clef.datasets.open("challenge2021", tmp_path))  # the table is read on first use
    with pytest.raises(clef.DatasetError, match="keep the rate they are published at"):
        clef.datasets.open("challenge2021", root, fs=500)
    with pytest.raises(clef.DatasetError, match="no task 'rhythm'; its tasks: scored"):
        ds.task("rhythm")
    with pytest.raises(clef.DatasetError, match="no record 'A9999'"):
        ds.signal("A9999")
    with pytest.raises(clef.RecordingError, match="record A0001 has no lead 'V7'"):
        ds.signal("A0001", lead="V7")
    with pytest.raises(clef.RecordingError, match="record M100 has no lead 'I'"):  # the default lead
        ds.task("scored")
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    (copy / f"{SPEC['A0003'].path}.mat").unlink()
    broken = clef.datasets.open("challenge2021", copy)
    with pytest.raises(clef.DatasetError, match=r"training/cpsc_2018/g1/A0003.mat \(the signal of record A0003\)"):
        broken.signal("A0003")
    with pytest.raises(clef.DatasetError, match="A0003.mat"):
        broken.task("scored", lead="II")
    twice = copy / "training" / "georgia" / "g2"
    twice.mkdir()
    for suffix in (".hea", ".mat"):
        shutil.copy(copy / f"{SPEC['A0001'].path}{suffix}", twice / f"A0001{suffix}")
    with pytest.raises(clef.DatasetError, match=r"record names repeat .*A0001"):
        len(clef.datasets.open("challenge2021", copy))  # the table is read on first use
