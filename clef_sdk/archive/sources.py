"""What an archive job reads: an ordered list of records, each read as the requested leads in mV with its rate.

Sources (`open_source` picks one from what it is given):

- `FolderSource`: a folder of WFDB records of any layout, found as ``clef train prepare`` finds them
  (every ``.hea`` below it; the record id is its path relative to the folder, without suffix); leads matched by
  canonical name (``MLII`` is ``II``), units converted to mV.
- `ManifestSource`: a CSV with columns ``record,path[,fs][,lead][,column]``: ``path`` (relative to the CSV's
  folder or absolute) is a ``.npy``, a CSV/TXT file or a WFDB record; ``fs`` is needed where the file does not
  carry it; ``lead`` names the lead the row holds (one row per record and lead; ``"signal"`` when absent) and, for
  a WFDB record, chooses it; ``column`` chooses a text file's column.
- `DatasetSource`: a dataset of `clef_sdk.datasets` (``clef.datasets.open("ptbxl", root)``).
- ``clef_sdk.train.StoreSource``: a prepared pretraining store (``clef train prepare``), whose windows are
  already band-passed (the ``[train]`` extra; ``clef embed-archive STORE`` finds it by its ``store.json``).

Records are sorted by id, so the same source gives the same plan on every machine.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import RecordingError
from ..io import STANDARD_LEADS, canonical_lead, find_records, read_record, read_recording

__all__ = ["DatasetSource", "FolderSource", "ManifestSource", "RecordLeads", "Source", "open_source", "records_digest"]


@dataclass
class RecordLeads:
    """One record as read: ``signals`` lead -> ``(n_samples,)`` float64 mV, ``fs`` in Hz, and ``missing`` lead ->
    why it is not there (the record lacks it, it is all NaN). A source of preprocessed windows (a pretraining
    store) gives ``windows`` lead -> ``(n_windows, 5000)`` float32 instead of ``signals``, at 500 Hz."""

    signals: dict[str, np.ndarray]
    fs: float
    missing: dict[str, str] = field(default_factory=dict)
    windows: dict[str, np.ndarray] = field(default_factory=dict)


class Source(Protocol):
    """An ordered list of records and a way to read one. ``describe()`` identifies the source in the job plan
    without paths (ranks on other machines mount it elsewhere); the record ids' digest completes it."""

    records: list[str]

    def describe(self) -> dict[str, Any]: ...

    def read(self, record: str, leads: Sequence[str]) -> RecordLeads: ...


def records_digest(records: Sequence[str]) -> str:
    """SHA-256 of the record ids, one per line: the plan's fingerprint of what is embedded."""
    return hashlib.sha256("\n".join(records).encode()).hexdigest()


def _leads_of(
    signals: np.ndarray, present: np.ndarray, leads: Sequence[str]
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    found, missing = {}, {}
    for row, lead in enumerate(leads):
        if not present[row]:
            missing[lead] = "no such lead"
        elif not np.isfinite(signals[row]).any():
            missing[lead] = "no finite sample"
        else:
            found[lead] = signals[row]
    return found, missing


class FolderSource:
    """Every WFDB record under ``root`` (any layout)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self.records = find_records(self.root)
        if not self.records:
            raise FileNotFoundError(f"no WFDB records (.hea files) under {self.root}")

    def describe(self) -> dict[str, Any]:
        return {"kind": "wfdb folder"}

    def read(self, record: str, leads: Sequence[str]) -> RecordLeads:
        try:
            data = read_record(self.root, record, leads)
        except Exception as exc:  # wfdb raises many kinds of errors for truncated or corrupt files
            raise RecordingError(f"unreadable: {type(exc).__name__}: {str(exc)[:200]}") from None
        found, missing = _leads_of(data.signals, data.present, leads)
        return RecordLeads(found, data.fs, missing)


class ManifestSource:
    """The rows of a manifest CSV (``record,path[,fs][,lead]``; one row per record and lead)."""

    def __init__(self, path: str | os.PathLike[str]):
        import pandas as pd

        self.path = Path(path)
        frame = pd.read_csv(self.path, dtype=str, keep_default_na=False)
        missing = {"record", "path"} - set(frame.columns)
        if missing:
            raise ValueError(
                f"{self.path} needs the columns record and path (and optionally fs, lead); lacks {sorted(missing)}"
            )
        self._rows: dict[str, list[dict[str, str]]] = {}
        for row in frame.to_dict(orient="records"):
            self._rows.setdefault(str(row["record"]), []).append(row)
        self.records = sorted(self._rows)
        listed = {canonical_lead(row.get("lead") or "signal") for rows in self._rows.values() for row in rows}
        self.default_leads = tuple(sorted(listed))

    def describe(self) -> dict[str, Any]:
        from ..files import sha256_file

        return {"kind": "manifest", "sha256": sha256_file(self.path)}

    def read(self, record: str, leads: Sequence[str]) -> RecordLeads:
        signals: dict[str, np.ndarray] = {}
        rates = set()
        for row in self._rows[record]:
            lead = canonical_lead(row.get("lead") or "signal")
            if lead not in leads:
                continue
            path = Path(row["path"]) if Path(row["path"]).is_absolute() else self.path.parent / row["path"]
            wfdb_record = path.suffix == ".hea" or Path(f"{path}.hea").is_file()
            column = row.get("column") or (row.get("lead") if wfdb_record else None) or None
            try:
                signal, own_fs = read_recording(path, column=column)
                values = np.asarray(signal[0 : len(signal)], dtype=np.float64)
            except Exception as exc:  # unreadable file of any kind: the record is skipped with the reason
                raise RecordingError(f"unreadable: {type(exc).__name__}: {str(exc)[:200]}") from None
            given = row.get("fs", "")
            fs = own_fs if own_fs is not None else (float(given) if given.strip() else math.nan)
            if not math.isfinite(fs):
                raise RecordingError(f"no sampling rate: {path.name} does not carry one and the fs column is empty")
            rates.add(float(fs))
            signals[lead] = values
        if len(rates) > 1:
            raise RecordingError(f"its leads have different rates ({sorted(rates)} Hz)")
        missing = {lead: "no such lead" for lead in leads if lead not in signals}
        return RecordLeads(signals, rates.pop() if rates else math.nan, missing)


class DatasetSource:
    """The records of a [`clef_sdk.datasets.Dataset`][clef_sdk.datasets.Dataset] (its ``table`` order sorted by record id)."""

    def __init__(self, dataset: Any):
        self.dataset = dataset
        self.records = sorted(str(r) for r in dataset.table["record"])
        listed = {lead for leads in dataset.table["leads"] for lead in leads}
        self.default_leads = tuple(lead for lead in STANDARD_LEADS if lead in listed) + tuple(
            sorted(listed - set(STANDARD_LEADS))
        )

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "dataset",
            "name": self.dataset.name,
            "root": str(Path(self.dataset.root).resolve()),
            "fs": self.dataset.fs,
        }

    def read(self, record: str, leads: Sequence[str]) -> RecordLeads:
        signals: dict[str, np.ndarray] = {}
        missing: dict[str, str] = {}
        rate = math.nan
        for lead in leads:
            try:
                signal, rate = self.dataset.signal(record, lead)
            except RecordingError:
                missing[lead] = "no such lead"
                continue
            except Exception as exc:  # unreadable file of any kind
                raise RecordingError(f"unreadable: {type(exc).__name__}: {str(exc)[:200]}") from None
            signals[lead] = np.asarray(signal[0 : signal.shape[0]], dtype=np.float64)
        return RecordLeads(signals, float(rate), missing)


def open_source(source: object) -> Source:
    """A `Source` from a folder of WFDB records, a manifest ``.csv``, a dataset, or a Source."""
    if hasattr(source, "records") and hasattr(source, "read"):
        return source  # type: ignore[return-value]
    if hasattr(source, "table") and hasattr(source, "signal"):
        return DatasetSource(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file() and path.suffix.lower() == ".csv":
            return ManifestSource(path)
        if path.is_dir():
            return FolderSource(path)
        raise FileNotFoundError(f"archive source not found: {path} (a folder of WFDB records or a manifest .csv)")
    raise TypeError(f"an archive source is a folder, a manifest .csv or a dataset, not {type(source).__name__}")
