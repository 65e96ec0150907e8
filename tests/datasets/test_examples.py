"""The real ECG bundled with the package: content equal to the shared originals, attribution, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import clef_sdk as clef
from clef_sdk.datasets import list_examples, load_example


def test_examples_are_listed_and_small() -> None:
    assert list_examples() == ["mitdb-100", "ludb-1"]
    folder = Path(clef.__file__).parent / "datasets" / "data"
    assert sum(p.stat().st_size for p in folder.glob("*.npz")) < 40_000  # a few tens of kB
    assert "ODC-By" in (folder / "README.md").read_text()


def test_mitdb_example_is_the_first_minute_of_record_100(mitdb_record: np.ndarray, data_dir: Path) -> None:
    signal, fs, info = load_example("mitdb-100")
    assert fs == 360.0 and signal.shape == (21_600,) and signal.dtype == np.float64
    # the shared NumPy copy is float32 mV of the same record: equal to float32 rounding
    np.testing.assert_allclose(signal, mitdb_record[:21_600], rtol=0, atol=1e-6)
    wfdb = pytest.importorskip("wfdb")
    reference = wfdb.rdann(str(data_dir / "wfdb-sample" / "100"), "atr", sampto=21_600)
    beats = [(s, c) for s, c in zip(reference.sample, reference.symbol) if c in ("N", "A", "V")]
    assert list(zip(info["beats"]["sample"].tolist(), info["beats"]["symbol"].tolist())) == beats
    assert (info["lead"], info["units"]) == ("MLII", "mV") and "Moody" in info["attribution"]
    assert info["license"].startswith("ODC-By-1.0")


def test_ludb_example_is_lead_i_of_record_1(data_dir: Path) -> None:
    wfdb = pytest.importorskip("wfdb")
    signal, fs, info = load_example("ludb-1")
    reference = wfdb.rdrecord(str(data_dir / "ludb" / "data" / "1"), channel_names=["i"])
    assert fs == 500.0
    np.testing.assert_array_equal(signal, reference.p_signal[:, 0])
    assert (info["age"], info["sex"], info["rhythm"]) == (51.0, "F", "Sinus bradycardia")
    assert "Kalyakulina" in info["attribution"]


def test_examples_embed() -> None:
    """Real input without any shared folder: preprocessing gives the expected windows."""
    signal, fs, _ = load_example("mitdb-100")
    assert clef.preprocess(signal, fs).shape == (6, 5000)
    signal, fs, _ = load_example("ludb-1")
    assert clef.preprocess(signal, fs).shape == (1, 5000)


def test_unknown_example() -> None:
    with pytest.raises(ValueError, match=r"unknown example 'mitdb-101'; choose one of \['mitdb-100', 'ludb-1'\]"):
        load_example("mitdb-101")
