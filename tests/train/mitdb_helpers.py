"""Real MIT-BIH windows for the fine-tuning tests: consecutive 10 s windows of PVC-rich and nearly PVC-free
records, labelled by whether a PVC beat falls inside (``tests/train/test_estimators.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["MITDB_FS", "PVC_RECORDS", "pvc_windows"]

MITDB_FS = 360  # Hz
PVC_RECORDS = ("106", "119", "200", "100", "105", "116")  # PVC-rich and nearly PVC-free records


def _csv_column(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)[:, 1]


def pvc_windows(data_dir: Path, per_record: int = 8, records: tuple[str, ...] = PVC_RECORDS) -> dict[str, np.ndarray]:
    """``per_record`` consecutive 10 s windows (360 Hz, mV) of each record from minute 1 on: ``signals``
    ``(n, 3600)`` float32, ``labels`` (1 when a PVC beat falls inside), ``records`` (the patient of each window)
    and ``n_pvc`` (PVC beats in the window)."""
    signals, labels, patients, n_pvc = [], [], [], []
    length = 10 * MITDB_FS
    for record in records:
        ecg = np.load(data_dir / "mitdb-tpcp" / f"{record}.npz")["ecg"]
        pvc_beats = _csv_column(data_dir / "mitdb-tpcp" / f"{record}_pvc.csv")
        for k in range(per_record):
            start = 60 * MITDB_FS + k * length
            count = int(((pvc_beats >= start) & (pvc_beats < start + length)).sum())
            signals.append(ecg[start : start + length])
            labels.append(int(count > 0))
            patients.append(record)
            n_pvc.append(count)
    return {
        "signals": np.stack(signals),
        "labels": np.asarray(labels),
        "records": np.asarray(patients),
        "n_pvc": np.asarray(n_pvc),
    }
