"""Small loaders for the real ECG data sets the probe examples use (kept out of the clef_sdk package).

The files are not part of this repository: point ``data_dir`` at a folder laid out like ``../shared/data``
(``mitdb-tpcp/``, ``ludb/``, ``cpsc2019-sample/``); see each folder's README.md for source, license and
attribution. :func:`default_data_dir` looks at ``$CLEF_SDK_SHARED/data``, then ``<repo>/../shared/data``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

__all__ = [
    "MITDB_RECORDS",
    "add_common_arguments",
    "default_data_dir",
    "load_cpsc2019",
    "load_ludb",
    "load_mitdb_windows",
]

MITDB_FS = 360
MITDB_RECORDS = ("100", "102", "104", "105", "106", "108", "114", "116", "119", "121", "123", "200")
LUDB_FS = 500
CPSC_FS = 500


def default_data_dir() -> Path:
    shared = os.environ.get("CLEF_SDK_SHARED")
    if shared:
        return Path(shared) / "data"
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"{what} not found at {path}: pass --data-dir pointing at the folder that holds it "
            "(or set CLEF_SDK_SHARED to the folder holding data/)"
        )
    return path


def _csv_column(path: Path) -> np.ndarray:
    """Second column of a two-column CSV with a header line (pandas' ``to_csv`` layout), as ints."""
    values = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    return values[:, 1] if values.size else np.empty(0, dtype=np.int64)


def load_mitdb_windows(
    data_dir: str | os.PathLike[str] | None = None,
    records: tuple[str, ...] | list[str] = MITDB_RECORDS,
    window_seconds: float = 10.0,
) -> dict[str, np.ndarray]:
    """Consecutive 10 s windows of the MIT-BIH records (lead MLII, 360 Hz, mV).

    Returns ``signals`` (n_windows, 3600) float32, ``labels`` (1 when at least one beat in the window is
    annotated PVC, else 0), ``records`` (record name of each window: split and bootstrap by it),
    ``starts`` (first sample), ``n_beats`` and ``n_pvc`` per window, and ``fs``.
    """
    folder = _require(Path(data_dir or default_data_dir()) / "mitdb-tpcp", "MIT-BIH (mitdb-tpcp)")
    length = int(round(window_seconds * MITDB_FS))
    parts: dict[str, list[np.ndarray]] = {key: [] for key in ("signals", "labels", "records", "starts", "n_beats", "n_pvc")}
    for record in records:
        ecg = np.load(_require(folder / f"{record}.npz", f"record {record}"))["ecg"].astype(np.float32)
        beats = _csv_column(folder / f"{record}_all.csv")
        pvc = _csv_column(folder / f"{record}_pvc.csv")
        n_windows = len(ecg) // length
        starts = np.arange(n_windows) * length
        edges = np.append(starts, n_windows * length)
        n_pvc = np.histogram(pvc, bins=edges)[0]
        parts["signals"].append(ecg[: n_windows * length].reshape(n_windows, length))
        parts["labels"].append((n_pvc > 0).astype(np.int64))
        parts["records"].append(np.full(n_windows, record))
        parts["starts"].append(starts)
        parts["n_beats"].append(np.histogram(beats, bins=edges)[0])
        parts["n_pvc"].append(n_pvc)
    data = {key: np.concatenate(values) for key, values in parts.items()}
    data["fs"] = np.asarray(MITDB_FS)
    return data


def _ludb_header(path: Path) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("#<age>:"):
            fields["age"] = line.split(":", 1)[1].strip()
        elif line.startswith("#<sex>:"):
            fields["sex"] = line.split(":", 1)[1].strip()
        elif line.startswith("#Rhythm:"):
            fields["rhythm"] = line.split(":", 1)[1].strip().rstrip(".")
    return fields


def load_ludb(data_dir: str | os.PathLike[str] | None = None, lead: str = "i") -> dict[str, np.ndarray]:
    """All 200 LUDB records, one lead (10 s, 500 Hz, mV), with age, sex and rhythm from the headers.

    Returns ``signals`` (200, 5000) float32, ``ids`` (record numbers; one record per subject), ``sex``
    ("M"/"F"), ``age`` (float; NaN if absent), ``rhythm`` (e.g. "Sinus rhythm", "Atrial fibrillation"), ``fs``.
    Needs the ``wfdb`` package (``pip install clef-sdk[examples]``).
    """
    import wfdb

    folder = _require(Path(data_dir or default_data_dir()) / "ludb", "LUDB (ludb)")
    ids = sorted(int(path.stem) for path in (folder / "data").glob("*.hea"))
    if not ids:
        raise FileNotFoundError(f"no LUDB headers (*.hea) in {folder / 'data'}")
    signals, sex, age, rhythm = [], [], [], []
    for record_id in ids:
        base = folder / "data" / str(record_id)
        record = wfdb.rdrecord(str(base), channel_names=[lead])
        if record.p_signal is None or record.p_signal.shape[1] != 1:
            raise ValueError(f"LUDB record {record_id} has no lead {lead!r}")
        signals.append(record.p_signal[:, 0].astype(np.float32))
        fields = _ludb_header(base.with_suffix(".hea"))
        sex.append(fields.get("sex", ""))
        age_text = fields.get("age", "").rstrip("+")
        age.append(float(age_text) if age_text.replace(".", "", 1).isdigit() else np.nan)
        rhythm.append(fields.get("rhythm", ""))
    return {
        "signals": np.stack(signals),
        "ids": np.asarray(ids),
        "sex": np.asarray(sex),
        "age": np.asarray(age),
        "rhythm": np.asarray(rhythm),
        "fs": np.asarray(LUDB_FS),
    }


def load_cpsc2019(data_dir: str | os.PathLike[str] | None = None) -> dict[str, np.ndarray]:
    """The 50 CPSC 2019 sample records (single lead, 10 s, 500 Hz, mV) and heart rates from their R peaks.

    Returns ``signals`` (50, 5000) float32, ``ids``, ``heart_rate`` (bpm: 60 / median RR interval of the
    reference R peaks), ``fs``.
    """
    from scipy.io import loadmat

    folder = _require(Path(data_dir or default_data_dir()) / "cpsc2019-sample", "CPSC 2019 (cpsc2019-sample)")
    paths = sorted((folder / "data").glob("data_*.mat"))
    if not paths:
        raise FileNotFoundError(f"no data_*.mat files in {folder / 'data'}")
    signals, ids, heart_rate = [], [], []
    for path in paths:
        record_id = path.stem.split("_", 1)[1]
        signals.append(loadmat(path)["ecg"].ravel().astype(np.float32))
        peaks = np.sort(loadmat(folder / "ref" / f"R_{record_id}.mat")["R_peak"].ravel().astype(np.int64))
        rr_seconds = np.diff(peaks) / CPSC_FS
        heart_rate.append(60.0 / float(np.median(rr_seconds)))
        ids.append(record_id)
    return {
        "signals": np.stack(signals),
        "ids": np.asarray(ids),
        "heart_rate": np.asarray(heart_rate),
        "fs": np.asarray(CPSC_FS),
    }


def add_common_arguments(parser: argparse.ArgumentParser, figure: str) -> None:
    """Arguments every probe example takes."""
    parser.add_argument(
        "--model",
        default="medium",
        help="CLEF weights: a model name (small, medium, large) or a path to .safetensors/.ckpt (default: medium)",
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding mitdb-tpcp/, ludb/, cpsc2019-sample/")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when available)")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per forward pass")
    parser.add_argument("--n-bootstrap", type=int, default=1000, help="bootstrap resamples for the intervals")
    parser.add_argument("--figure", type=Path, default=Path(figure), help=f"where to save the figure (default: {figure})")


def finish_figure(figure: object, path: Path, title: str) -> None:
    """Title, lay out, save (120 dpi, creating the folder) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    print(f"figure saved to {path}")
