"""The MIMIC-IV-ECG reader on a small copy in the published layout, built from six real LUDB records (12 leads,
500 Hz, 10 s) written as MIMIC-IV-ECG stores its records (``files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN``, format 16
at 200 adu/mV, the leads in its order with aVF before aVL), with a ``record_list.csv`` and a
``machine_measurements.csv`` whose RR interval is LUDB's own (from its QRS annotations) and whose report lines are
LUDB's diagnosis statements."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clef_sdk as clef
from clef_sdk.datasets.mimic import MimicIVECG
from clef_sdk.datasets.splits import pinned_split
from clef_sdk.io import STANDARD_LEADS

wfdb = pytest.importorskip("wfdb")

MIMIC_ORDER = ("I", "II", "III", "aVR", "aVF", "aVL", "V1", "V2", "V3", "V4", "V5", "V6")
#: (LUDB record, subject_id, study_id, ecg_time): three patients, two studies each
STUDIES = (
    ("1", "10000032", "40689238", "2180-07-23 08:44:00"),
    ("2", "10000032", "44458630", "2180-08-06 09:07:00"),
    ("3", "10000117", "45090959", "2181-03-04 17:14:00"),
    ("4", "10000117", "42518427", "2183-09-18 13:52:00"),
    ("5", "10001725", "41420867", "2110-04-11 15:08:00"),
    ("6", "10001725", "40000017", "2110-04-12 08:31:00"),
)
REPORT_COLUMNS = ("Rhythms", "Electric axis of the heart", "Conduction abnormalities")


def _path(subject: str, study: str) -> str:
    return f"files/p{subject[:4]}/p{subject}/s{study}/{study}"


@pytest.fixture(scope="module")
def root(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("mimic-iv-ecg")
    ludb = pd.read_csv(data_dir / "ludb" / "ludb.csv", dtype=str, keep_default_na=False).set_index("ID")
    listing, measurements = [], []
    for number, subject, study, time in STUDIES:
        source = wfdb.rdrecord(str(data_dir / "ludb" / "data" / number))
        names = [clef.io.canonical_lead(name) for name in source.sig_name]
        signal = source.p_signal[:, [names.index(lead) for lead in MIMIC_ORDER]]
        folder = root / Path(_path(subject, study)).parent
        folder.mkdir(parents=True)
        wfdb.wrsamp(
            study,
            fs=500,
            units=["mV"] * 12,
            sig_name=list(MIMIC_ORDER),
            p_signal=signal,
            fmt=["16"] * 12,
            adc_gain=[200.0] * 12,
            baseline=[0] * 12,
            write_dir=str(folder),
        )
        listing.append(
            {
                "subject_id": subject,
                "study_id": study,
                "file_name": study,
                "ecg_time": time,
                "path": _path(subject, study),
            }
        )
        qrs = wfdb.rdann(str(data_dir / "ludb" / "data" / number), "ii")
        peaks = np.asarray(qrs.sample)[np.asarray(qrs.symbol) == "N"]
        reports = [
            ludb.at[number, column].strip().splitlines()[0] if ludb.at[number, column].strip() else ""
            for column in REPORT_COLUMNS
        ]
        row = {"subject_id": subject, "study_id": study, "cart_id": "6848", "ecg_time": time}
        row.update({f"report_{i}": (reports[i] if i < len(reports) else "") for i in range(18)})
        row.update({"bandwidth": "0.005-150 Hz", "filtering": "60 Hz notch Baseline filter"})
        row["rr_interval"] = str(int(round(np.diff(peaks).mean() * 2))) if number != "6" else ""  # ms; one unmeasured
        row.update({"p_onset": "40", "qrs_axis": "29999" if number == "5" else "12"})
        measurements.append(row)
    pd.DataFrame(listing).to_csv(root / "record_list.csv", index=False)
    pd.DataFrame(measurements[:-1]).to_csv(root / "machine_measurements.csv", index=False)  # the last study: none
    return root


@pytest.fixture(scope="module")
def ds(root: Path) -> MimicIVECG:
    return clef.datasets.open("mimic-iv-ecg", root)  # type: ignore[return-value]


def test_written_records_read_back_as_mimic_stores_them(root: Path, data_dir: Path) -> None:
    record = wfdb.rdrecord(str(root / _path("10000032", "40689238")))
    assert (record.fs, record.sig_len, tuple(record.sig_name)) == (500, 5000, MIMIC_ORDER)
    ludb = wfdb.rdrecord(str(data_dir / "ludb" / "data" / "1"), channel_names=["avl"]).p_signal[:, 0]
    # 200 adu/mV: the copy differs from LUDB by the rounding to a 5 µV step, at most 2.5 µV (measured on LUDB 1's
    # aVL: 2.485 µV)
    np.testing.assert_allclose(record.p_signal[:, MIMIC_ORDER.index("aVL")], ludb, rtol=0, atol=0.0025 + 1e-12)


def test_table_lists_every_study_without_opening_headers(ds: MimicIVECG) -> None:
    table = ds.table
    assert list(table.columns[:8]) == ["record", "patient", "split", "fs", "n_samples", "leads", "ecg_time", "path"]
    assert table["record"].tolist() == [study for _, _, study, _ in STUDIES]
    assert table["patient"].tolist() == [subject for _, subject, _, _ in STUDIES]
    assert (table["fs"] == 500.0).all() and (table["n_samples"] == 5000).all()
    assert set(table["leads"]) == {STANDARD_LEADS} and STANDARD_LEADS[4:6] == ("aVL", "aVF")
    assert table.at[0, "ecg_time"] == "2180-07-23 08:44:00"
    assert table.at[0, "path"] == "files/p1000/p10000032/s40689238/40689238"


def test_machine_measurements_join_by_study(ds: MimicIVECG, data_dir: Path) -> None:
    table = ds.table.set_index("record")
    assert {"rr_interval", "p_onset", "qrs_axis", "report"} <= set(table.columns)
    assert not {"p_axis", "cart_id", "report_0"} & set(table.columns)  # only those present; reports joined
    qrs = wfdb.rdann(str(data_dir / "ludb" / "data" / "2"), "ii")
    peaks = np.asarray(qrs.sample)[np.asarray(qrs.symbol) == "N"]
    assert table.at["44458630", "rr_interval"] == round(np.diff(peaks).mean() * 2)  # LUDB 2's mean RR in ms
    assert 700 < table.at["44458630", "rr_interval"] < 1200  # sinus rhythm, 50-85 bpm
    assert table.at["40689238", "report"] == "Sinus bradycardia; Electric axis of the heart: left axis deviation"
    assert table.at["42518427", "report"].endswith("; Incomplete right bundle branch block")
    assert table.at["41420867", "qrs_axis"] == 29999 and table.at["45090959", "qrs_axis"] == 12
    assert np.isnan(table.at["40000017", "rr_interval"]) and pd.isna(table.at["40000017", "report"])  # not measured
    assert table["rr_interval"].dtype == float


def test_signals_are_lazy_and_matched_by_lead_name(ds: MimicIVECG, root: Path) -> None:
    record = wfdb.rdrecord(str(root / _path("10000117", "45090959")))
    signal, fs = ds.signal("45090959", lead="aVL")
    assert fs == 500.0 and signal.shape == (5000,) and len(signal) == 5000
    np.testing.assert_array_equal(signal[:], record.p_signal[:, MIMIC_ORDER.index("aVL")])
    np.testing.assert_array_equal(signal[2500:3000], record.p_signal[2500:3000, MIMIC_ORDER.index("aVL")])
    assert not np.array_equal(signal[:], record.p_signal[:, MIMIC_ORDER.index("aVF")])
    # an index counts in the table's standard order: 4 is aVL, where the file has aVF
    np.testing.assert_array_equal(ds.signal("45090959", lead=4)[0][:], signal[:])
    np.testing.assert_array_equal(ds.signal("45090959", lead="avf")[0][:], record.p_signal[:, 4])
    every = ds.signals("I")
    assert len(every) == 6
    for lazy, (_, subject, study, _) in zip(every, STUDIES):
        lead_i = wfdb.rdrecord(str(root / _path(subject, study)), channel_names=["I"]).p_signal[:, 0]
        np.testing.assert_array_equal(lazy[:], lead_i)
        np.testing.assert_array_equal(lazy[100:140], lead_i[100:140])


def test_split_is_pinned_by_patient(ds: MimicIVECG, root: Path) -> None:
    table = ds.table
    assert table["split"].tolist() == list(pinned_split(table["patient"], "mimic-iv-ecg", val=0.1, test=0.1))
    assert table.groupby("patient")["split"].nunique().max() == 1
    assert sorted(table.drop_duplicates("patient")["split"]) == ["test", "train", "val"]  # three patients
    assert MimicIVECG(root).table["split"].equals(table["split"])


def test_embedding_the_records_runs(ds: MimicIVECG) -> None:
    embeddings = clef.embed(ds.signals("II")[:2], fs=None, model=clef.build("small", seed=0))
    assert embeddings.shape == (2, 256) and np.isfinite(embeddings).all()


def test_bad_input_gets_clear_errors(ds: MimicIVECG, root: Path, tmp_path: Path) -> None:
    with pytest.raises(clef.DatasetError, match=r"folder .*absent not found.*clef datasets download mimic-iv-ecg"):
        clef.datasets.open("mimic-iv-ecg", tmp_path / "absent")
    with pytest.raises(
        clef.DatasetError, match=r"record_list.csv not found under .*physionet.org/content/mimic-iv-ecg"
    ):
        len(clef.datasets.open("mimic-iv-ecg", tmp_path))
    with pytest.raises(clef.DatasetError, match="has no task 'af'; its tasks: none"):
        ds.task("af")
    with pytest.raises(clef.DatasetError, match="12 standard leads; no lead 'V7'"):
        ds.signal("40689238", lead="V7")
    with pytest.raises(clef.DatasetError, match="no lead 12"):
        ds.signal("40689238", lead=12)
    with pytest.raises(clef.DatasetError, match="no record '99999999'"):
        ds.signal("99999999")

    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    shutil.rmtree(copy / "files")
    with pytest.raises(clef.DatasetError, match=r"records folder files/ .* not found"):
        len(MimicIVECG(copy))
    shutil.copytree(root / "files", copy / "files")
    listing = pd.read_csv(root / "record_list.csv", dtype=str)
    listing.drop(columns="path").to_csv(copy / "record_list.csv", index=False)
    with pytest.raises(clef.DatasetError, match="record_list.csv lacks the column.s. path"):
        len(MimicIVECG(copy))
    # a study the list names whose files are absent
    extra = {
        "subject_id": "10002428",
        "study_id": "49999999",
        "file_name": "49999999",
        "ecg_time": "",
        "path": _path("10002428", "49999999"),
    }
    pd.concat([listing, pd.DataFrame([extra])]).to_csv(copy / "record_list.csv", index=False)
    listed = MimicIVECG(copy)
    assert len(listed) == 7
    with pytest.raises(
        clef.DatasetError,
        match=r"files/p1000/p10002428/s49999999/49999999.hea \(study 49999999 of record_list.csv\) not found",
    ):
        listed.signal("49999999")
    # an unreadable record: its .dat cut short
    dat = copy / (_path("10000117", "42518427") + ".dat")
    dat.write_bytes(dat.read_bytes()[:2000])
    signal, _ = listed.signal("42518427")
    with pytest.raises(clef.RecordingError, match="42518427"):
        signal[:10]
