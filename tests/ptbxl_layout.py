"""A small PTB-XL copy in its published layout, from real rows of ``ptbxl_database.csv`` (the first-521 excerpt in
``../shared/data/label-maps/ptb-xl``), the real ``scp_statements.csv`` and real LUDB recordings (used by the PTB-XL
reader's tests and the benchmark's multi-label test)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pandas as pd

#: ecg_ids of the copy: folds 1-10 (16 train, 6 val, 5 test), NORM/MI/STTC/CD/HYP, patients 340, 437, 449, 603,
#: 13619 with several records, and 17 and 20 with no diagnostic statement (atrial flutter only)
IDS = (1, 2, 7, 8, 9, 12, 17, 20, 22, 30, 32, 35, 45, 50, 54, 63, 65, 77, 87, 273, 279, 282, 295, 298, 326, 336, 347)
#: lead names as PTB-XL's headers spell them
PUBLISHED_LEADS = ("I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6")


def ludb_of(ecg_id: int) -> str:
    """The LUDB record whose signal stands in for an ecg_id (the n-th id gets LUDB record n)."""
    return str(IDS.index(ecg_id) + 1)


def write_ptbxl(root: Path, data_dir: Path, ids: tuple[int, ...] = IDS) -> Path:
    """PTB-XL's layout under ``root``: the real rows of ``ids``, the real statements, one LUDB record per id at
    500 Hz and, decimated by 5 (polyphase anti-aliasing filter), at 100 Hz; format 16, 1000/mV, as published."""
    maps = data_dir / "label-maps" / "ptb-xl"
    database = pd.read_csv(maps / "ptbxl_database_first521.csv", dtype=str, keep_default_na=False)
    database[database["ecg_id"].isin([str(i) for i in ids])].to_csv(root / "ptbxl_database.csv", index=False)
    shutil.copy(maps / "scp_statements.csv", root / "scp_statements.csv")
    for ecg_id in ids:
        import wfdb
        from scipy import signal as signal_module

        hr = wfdb.rdrecord(str(data_dir / "ludb" / "data" / ludb_of(ecg_id))).p_signal
        lr = signal_module.resample_poly(hr, 1, 5, axis=0)
        for fs, rate, suffix, values in ((500, "records500", "hr", hr), (100, "records100", "lr", lr)):
            folder = root / rate / "00000"
            folder.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():  # wfdb 4.3 calls DataFrame.drop(inplace=True), deprecated in pandas 3.1
                warnings.filterwarnings("ignore", message="The inplace keyword in DataFrame.drop")
                wfdb.wrsamp(
                    f"{ecg_id:05d}_{suffix}",
                    fs=fs,
                    units=["mV"] * 12,
                    sig_name=list(PUBLISHED_LEADS),
                    p_signal=values,
                    fmt=["16"] * 12,
                    adc_gain=[1000.0] * 12,
                    baseline=[0] * 12,
                    write_dir=str(folder),
                )
    return root
