"""An archive of real records for the archive tests: eight LUDB records in a nested WFDB layout, one of them
only 6 s long (cut from LUDB record 9), one with a truncated signal file and one with a corrupt header."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from archive_helpers import GOOD

import clef_sdk as clef


@pytest.fixture(scope="session")
def archive(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    wfdb = pytest.importorskip("wfdb")
    root = tmp_path_factory.mktemp("archive")
    for index, record in enumerate(GOOD):
        folder = root / f"p{index % 3}" / f"s{record}"
        folder.mkdir(parents=True)
        for suffix in (".hea", ".dat"):
            shutil.copy(data_dir / "ludb" / "data" / f"{record}{suffix}", folder)
    short = wfdb.rdrecord(str(data_dir / "ludb" / "data" / "9"), sampto=3000)
    (root / "short").mkdir()
    wfdb.wrsamp("9", fs=500, units=short.units, sig_name=short.sig_name, p_signal=short.p_signal, fmt=["16"] * 12,
                adc_gain=short.adc_gain, baseline=short.baseline, write_dir=str(root / "short"))  # fmt: skip
    (root / "broken").mkdir()
    shutil.copy(data_dir / "ludb" / "data" / "10.hea", root / "broken" / "10.hea")
    data = (data_dir / "ludb" / "data" / "10.dat").read_bytes()
    (root / "broken" / "10.dat").write_bytes(data[: len(data) // 3])  # truncated
    (root / "broken" / "11.hea").write_text("this is not a header\n")
    return root


@pytest.fixture(scope="session")
def encoder(small_safetensors: Path) -> clef.ClefEncoder:
    """The model of the archive tests: the conformance checkpoint (CLEF-small) as a weights file."""
    return clef.load(small_safetensors, device="cpu")
