"""clef_sdk.io: record discovery, lead names and header metadata, text and WFDB readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from clef_sdk.io import (
    STANDARD_LEADS,
    canonical_lead,
    find_records,
    header_demographics,
    parse_leads,
    read_record,
)


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        ("i", "I"),
        ("II", "II"),
        ("avf", "aVF"),
        ("AVL", "aVL"),
        ("aVR", "aVR"),
        ("lead V1", "V1"),
        ("v6", "V6"),
        ("MLII", "II"),
        ("ECG", "ECG"),
        (" Lead_III ", "III"),
    ],
)
def test_canonical_lead(name: str, canonical: str) -> None:
    assert canonical_lead(name) == canonical


def test_parse_leads() -> None:
    assert parse_leads(None) == STANDARD_LEADS
    assert parse_leads("i, avf,V1") == ("I", "aVF", "V1")
    assert parse_leads(["MLII", "ECG"]) == ("II", "ECG")
    with pytest.raises(ValueError, match="requested twice"):
        parse_leads("II,MLII")
    with pytest.raises(ValueError, match="no leads requested"):
        parse_leads(" , ")


def test_header_demographics_both_styles() -> None:
    assert header_demographics(["<age>: 51", "<sex>: F", "<diagnoses>:"]) == (51.0, "female")
    assert header_demographics(["Age: 54", "Sex: Male", "Dx: 426783006"]) == (54.0, "male")
    age, sex = header_demographics(["Age: NaN", "Sex: Unknown"])
    assert np.isnan(age) and sex is None
    assert header_demographics(["age: 89+"])[0] == 89.0


def test_find_records_any_layout(tmp_path: Path) -> None:
    for relative in ("files/p1000/p10000032/s40689238/40689238.hea", "data/7.hea", "top.hea", "notes.txt"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("")
    assert find_records(tmp_path) == ["data/7", "files/p1000/p10000032/s40689238/40689238", "top"]
    with pytest.raises(FileNotFoundError, match="source folder not found"):
        find_records(tmp_path / "missing")


def test_read_record_ludb_in_millivolts(data_dir: Path) -> None:
    wfdb = pytest.importorskip("wfdb")
    data = read_record(data_dir / "ludb" / "data", "1", ("aVF", "I", "X"))
    assert data.fs == 500 and data.signals.shape == (3, 5000)
    np.testing.assert_array_equal(data.present, [True, True, False])
    assert np.isnan(data.signals[2]).all()
    reference = wfdb.rdrecord(str(data_dir / "ludb" / "data" / "1"))
    np.testing.assert_array_equal(data.signals[0], reference.p_signal[:, reference.sig_name.index("avf")])
    assert (data.age, data.sex) == (51.0, "female")
    assert data.names == list(STANDARD_LEADS)
