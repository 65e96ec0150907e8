"""Small loaders for the real ECG data sets the probe examples use (kept out of the clef_sdk package).

The files are not part of this repository: point ``data_dir`` at a folder laid out like ``../shared/data``
(``mitdb-tpcp/``, ``ludb/``, ``cpsc2019-sample/``); see each folder's README.md for source, license and
attribution. :func:`default_data_dir` looks at ``$CLEF_SDK_SHARED/data``, then ``<repo>/../shared/data``.

Every example that needs no network takes ``--quick`` (or ``CLEF_EXAMPLES_QUICK=1``): the same code path on a
small slice of the data (a few records or windows, a few steps, 100 bootstrap resamples), done in seconds, with
its outputs under :func:`quick_dir` (the temporary folder) instead of the working directory. tests/
test_example_scripts.py runs them so; the numbers it prints mean nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = [
    "MITDB_RECORDS",
    "QUICK_ENV",
    "add_common_arguments",
    "add_quick_argument",
    "default_data_dir",
    "finish_figure",
    "load_cpsc2019",
    "load_ludb",
    "load_mitdb_windows",
    "local_checkpoint",
    "probe_options",
    "quick_dir",
    "resolve_common_arguments",
    "take",
]

MITDB_FS = 360
MITDB_RECORDS = ("100", "102", "104", "105", "106", "108", "114", "116", "119", "121", "123", "200")
LUDB_FS = 500
CPSC_FS = 500
QUICK_ENV = "CLEF_EXAMPLES_QUICK"
QUICK_BOOTSTRAP = 100
#: ``fit_probe`` options under --quick: 3-value regularisation grids and 3 inner folds (default: 11 Cs or 17
#: alphas, 5 folds), as the logistic heads' inner cross-validation is most of a quick run's time.
QUICK_PROBE_OPTIONS = {"Cs": (1e-4, 1e-2, 1.0), "alphas": (1.0, 1e2, 1e4), "cv": 3}


def shared_dir() -> Path:
    """``$CLEF_SDK_SHARED``, else ``<repo>/../shared``: the folder holding ``data/`` and ``conformance/``."""
    return Path(os.environ.get("CLEF_SDK_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")


def default_data_dir() -> Path:
    return shared_dir() / "data"


def local_checkpoint(fallback: str) -> str:
    """The shared conformance checkpoint (CLEF-small after 2 training steps: real machinery, meaningless
    features) when it is there, else ``fallback`` (a model name, downloaded once)."""
    checkpoint = shared_dir() / "conformance" / "clef_small_lightning.ckpt"
    return str(checkpoint) if checkpoint.is_file() else fallback


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
    windows_per_record: int | None = None,
) -> dict[str, np.ndarray]:
    """Consecutive 10 s windows of the MIT-BIH records (lead MLII, 360 Hz, mV): all of them (180 per record), or
    the first ``windows_per_record`` of each.

    Returns ``signals`` (n_windows, 3600) float32, ``labels`` (1 when at least one beat in the window is
    annotated PVC, else 0), ``records`` (record name of each window: split and bootstrap by it),
    ``starts`` (first sample), ``n_beats`` and ``n_pvc`` per window, and ``fs``.
    """
    folder = _require(Path(data_dir or default_data_dir()) / "mitdb-tpcp", "MIT-BIH (mitdb-tpcp)")
    length = int(round(window_seconds * MITDB_FS))
    parts: dict[str, list[np.ndarray]] = {
        key: [] for key in ("signals", "labels", "records", "starts", "n_beats", "n_pvc")
    }
    for record in records:
        ecg = np.load(_require(folder / f"{record}.npz", f"record {record}"))["ecg"].astype(np.float32)
        beats = _csv_column(folder / f"{record}_all.csv")
        pvc = _csv_column(folder / f"{record}_pvc.csv")
        n_windows = len(ecg) // length
        if windows_per_record is not None:
            n_windows = min(n_windows, windows_per_record)
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


def take(data: dict[str, np.ndarray], rows: np.ndarray | slice) -> dict[str, np.ndarray]:
    """The rows ``rows`` (a mask, indices or a slice) of a loader's per-record arrays; ``fs`` is kept as is."""
    return {key: value if key == "fs" else value[rows] for key, value in data.items()}


def probe_options(quick: bool) -> dict[str, object]:
    """Keyword arguments for ``clef.fit_probe``: none (its defaults), or :data:`QUICK_PROBE_OPTIONS` under --quick."""
    return dict(QUICK_PROBE_OPTIONS) if quick else {}


def quick_dir() -> Path:
    """Where quick mode writes its figures and files: ``<temporary folder>/clef-examples``, never the repository."""
    return Path(tempfile.gettempdir()) / "clef-examples"


def add_quick_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """``--quick`` (default on when ``CLEF_EXAMPLES_QUICK`` is 1/true/yes): ``what`` says what it cuts."""
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get(QUICK_ENV, "").strip().lower() in {"1", "true", "yes", "on"},
        help=f"smoke test in seconds: {what} (also {QUICK_ENV}=1)",
    )


def add_common_arguments(parser: argparse.ArgumentParser, figure: str, quick: str) -> None:
    """Arguments every probe example takes; call :func:`resolve_common_arguments` on the parsed namespace."""
    parser.add_argument(
        "--model",
        default=None,
        help="CLEF weights: a model name (small, medium, large) or a path to .safetensors/.ckpt (default: medium; "
        "with --quick, the shared conformance checkpoint when present, so that no download is needed)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=None, help="folder holding mitdb-tpcp/, ludb/, cpsc2019-sample/"
    )
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when available)")
    parser.add_argument("--batch-size", type=int, default=64, help="windows per forward pass")
    parser.add_argument(
        "--n-bootstrap",
        type=int,
        default=None,
        help=f"bootstrap resamples for the intervals (default: 1000; {QUICK_BOOTSTRAP} with --quick)",
    )
    parser.add_argument(
        "--figure",
        type=Path,
        default=None,
        help=f"where to save the figure (default: {figure}; with --quick, in {quick_dir()})",
    )
    parser.set_defaults(default_figure=figure)
    add_quick_argument(parser, f"{quick}, {QUICK_BOOTSTRAP} bootstrap resamples; the figure goes to {quick_dir()}")


def resolve_common_arguments(args: argparse.Namespace) -> argparse.Namespace:
    """Fill the defaults that depend on ``--quick`` (model, figure path, bootstrap resamples)."""
    if args.model is None:
        args.model = local_checkpoint("small") if args.quick else "medium"
    if args.n_bootstrap is None:
        args.n_bootstrap = QUICK_BOOTSTRAP if args.quick else 1000
    if args.figure is None:
        args.figure = quick_dir() / args.default_figure if args.quick else Path(args.default_figure)
    if args.quick:
        print("quick mode: a small slice of the data, to check that the example runs; its numbers mean nothing")
    return args


def finish_figure(figure: object, path: Path, title: str) -> None:
    """Title, lay out, save (120 dpi, creating the folder) and close a matplotlib figure."""
    import matplotlib.pyplot as plt

    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    print(f"figure saved to {path}")
