"""The MIT-BIH Arrhythmia Database (PhysioNet ``mitdb/1.0.0``): 48 half-hour two-lead records at 360 Hz with every
beat annotated.

Two layouts are read:

- PhysioNet's: ``RECORDS`` and ``<n>.hea`` + ``<n>.dat`` (format 212) + ``<n>.atr`` (beat annotations; ``wfdb``);
- the NumPy conversion of the tpcp project (what ``../shared/data/mitdb-tpcp`` holds): ``<n>.npz`` (array ``ecg``,
  lead MLII in mV), ``<n>_all.csv`` (column ``R``: every beat) and ``<n>_pvc.csv`` (column ``PVC``: beats
  annotated ``V``).

License ODC-By 1.0; cite Moody GB, Mark RG, IEEE Eng Med Biol 20(3):45-50 (2001).

Task ``pvc`` (binary) is over consecutive 10 s windows of lead MLII (canonical name ``"II"``) from the start of
each record (example id ``"<record>/<window>"``, e.g. ``"106/0012"``): 1 when at least one beat in the window is
annotated ``V`` (premature ventricular contraction), else 0.

Split: the inter-patient split of de Chazal et al. (IEEE TBME 51(7):1196, 2004) that the arrhythmia literature
uses: DS1 for training (a pinned 20% of its subjects for validation), DS2 for testing. The four paced records
(102, 104, 107, 217) are left out, as there, and so is record 202: it comes from the same subject as 201 (in DS1),
so keeping it would put one patient on both sides.
"""

from __future__ import annotations

from functools import cached_property, lru_cache, partial
from pathlib import Path

import numpy as np
import pandas as pd

from .._optional import require
from .base import Dataset, TaskInfo
from .signals import ArraySignal, SignalSlice, open_wfdb_lead, read_header
from .splits import pinned_split

__all__ = ["DS1", "DS2", "MITBIH", "PACED"]

DS1 = frozenset("101 106 108 109 112 114 115 116 118 119 122 124 201 203 205 207 208 209 215 220 223 230".split())
DS2 = frozenset("100 103 105 111 113 117 121 123 200 202 210 212 213 214 219 221 222 228 231 232 233 234".split())
PACED = frozenset({"102", "104", "107", "217"})
#: records of one subject (MIT-BIH's own documentation): the later record's patient is the earlier's
SAME_SUBJECT = {"202": "201"}
WINDOW_SECONDS = 10.0
FS = 360.0
_BEATS = frozenset("NLRBAaJSVrFejnE/fQ?")


@lru_cache(maxsize=4)
def _npz_lead(path: Path) -> np.ndarray:
    with np.load(path) as archive:
        return np.asarray(archive["ecg"], dtype=np.float64)


def _csv_samples(path: Path) -> np.ndarray:
    frame = pd.read_csv(path)
    return frame.iloc[:, -1].to_numpy(dtype=np.int64) if len(frame) else np.empty(0, dtype=np.int64)


class MITBIH(Dataset):
    """A local copy of the MIT-BIH Arrhythmia Database (``clef.datasets.open("mitdb", root)``), in PhysioNet's
    WFDB layout or the tpcp NumPy layout (see the module docstring)."""

    name = "mitdb"
    title = "MIT-BIH Arrhythmia Database"
    source = "https://physionet.org/content/mitdb/1.0.0/"
    physionet = "mitdb/1.0.0"
    tasks = {"pvc": TaskInfo("pvc", "binary", "10 s window of lead MLII holds a beat annotated V (PVC)")}
    default_lead = "II"
    split_kind = "official"
    rates = (FS,)

    @cached_property
    def layout(self) -> str:
        """``"wfdb"`` (PhysioNet's) or ``"npz"`` (tpcp's), from the files under ``root`` (looked up once)."""
        if any(self.root.glob("*.atr")):
            return "wfdb"
        if any(self.root.glob("*_pvc.csv")):
            return "npz"
        raise self.missing("MIT-BIH records (<n>.hea + <n>.atr, or tpcp's <n>.npz + <n>_pvc.csv)")

    def _record_names(self) -> list[str]:
        pattern = "*.atr" if self.layout == "wfdb" else "*_pvc.csv"
        names = [path.name.split(".")[0].split("_")[0] for path in self.root.glob(pattern)]
        return sorted(names)

    def beats(self, record: str) -> tuple[np.ndarray, np.ndarray]:
        """Every beat annotation of a record: sample indices ``(n_beats,)`` and symbols ``(n_beats,)`` (in the
        NumPy layout only ``"V"`` and ``"N"``, the latter standing for any beat that is not a PVC)."""
        if self.layout == "wfdb":
            wfdb = require("wfdb", "reading MIT-BIH annotations")
            annotation = wfdb.rdann(str(self.root / record), "atr")
            symbols = np.asarray(annotation.symbol, dtype=object)
            is_beat = np.isin(symbols, list(_BEATS))
            return np.asarray(annotation.sample, dtype=np.int64)[is_beat], symbols[is_beat]
        samples = _csv_samples(self.root / f"{record}_all.csv")
        pvc = _csv_samples(self.root / f"{record}_pvc.csv")
        return samples, np.where(np.isin(samples, pvc), "V", "N").astype(object)

    def build_table(self) -> pd.DataFrame:
        rows = []
        for record in self._record_names():
            if self.layout == "wfdb":
                header = read_header(self.root / f"{record}.hea")
                fs, n_samples, leads = header.fs, header.n_samples, header.leads
            else:
                npz = self.root / f"{record}.npz"
                if not npz.is_file():
                    raise self.missing(f"{npz.name} (the signal of record {record})")
                with np.load(npz) as archive:
                    n_samples = int(archive["ecg"].shape[0])
                fs, leads = FS, ("II",)
            _, symbols = self.beats(record)
            rows.append(
                {
                    "record": record,
                    "patient": SAME_SUBJECT.get(record, record),
                    "fs": fs,
                    "n_samples": n_samples,
                    "leads": leads,
                    "n_beats": len(symbols),
                    "n_pvc": int(np.sum(symbols == "V")),
                    "paced": record in PACED,
                }
            )
        if not rows:
            raise self.missing("MIT-BIH records")
        table = pd.DataFrame(rows)
        split = np.full(len(table), "excluded", dtype=object)
        in_ds1 = table["record"].isin(DS1).to_numpy()
        split[table["record"].isin(DS2 - set(SAME_SUBJECT)).to_numpy()] = "test"
        if in_ds1.any():
            split[in_ds1] = pinned_split(table.loc[in_ds1, "patient"], self.name, val=0.2, test=0.0)
        table["split"] = split
        return table

    def open_signal(self, record: str, lead: str | int) -> object:
        if self.layout == "wfdb":
            return open_wfdb_lead(self.root / record, lead)
        if lead not in ("II", "MLII", 0, "0"):
            raise self.missing(f"lead {lead!r} of record {record} (the NumPy layout holds lead MLII only)")
        path = self.root / f"{record}.npz"
        n_samples = int(self.table.set_index("record").at[record, "n_samples"])
        # a partial, not a lambda: signals are pickled into DataLoader workers
        return ArraySignal(partial(_npz_lead, path), n_samples, FS, f"{self.root.name}/{record}.npz")

    def task_labels(self, task: str, lead: str | int) -> tuple[list[object], pd.Series, pd.Series]:
        X: list[object] = []
        ids: list[str] = []
        labels: list[int] = []
        records: list[str] = []
        for row in self.table.itertuples(index=False):
            signal = self.open_signal(row.record, lead)
            length = int(round(WINDOW_SECONDS * row.fs))
            samples, symbols = self.beats(row.record)
            pvc = samples[symbols == "V"]
            n_windows = int(row.n_samples) // length
            edges = np.arange(n_windows + 1) * length
            counts = np.histogram(pvc, bins=edges)[0] if n_windows else np.empty(0)
            for index in range(n_windows):
                X.append(SignalSlice(signal, int(edges[index]), int(edges[index + 1])))
                ids.append(f"{row.record}/{index:04d}")
                labels.append(int(counts[index] > 0))
                records.append(row.record)
        y = pd.Series(labels, index=pd.Index(ids, name="window"), name=task, dtype=np.int64)
        return X, y, pd.Series(records)
