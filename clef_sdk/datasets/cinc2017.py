"""The PhysioNet/Computing in Cardiology Challenge 2017, AF classification from a short single-lead ECG (PhysioNet
``challenge-2017/1.0.0``).

8,528 AliveCor recordings of 9 to 61 s at 300 Hz, one lead (the device's two finger electrodes record lead I),
each labelled N (normal sinus rhythm), A (atrial fibrillation), O (another rhythm) or ~ (too noisy to classify).
MATLAB v4 ``.mat`` signal files with WFDB headers (``A00001.hea``: ``A00001.mat 16+24 1000/mV ... ECG``).

Two layouts are read (``root`` is the folder that holds either):

- PhysioNet's project tree: ``training/A00/A00001.hea`` + ``.mat`` ... ``training/A08/A08528``, the labels in
  ``training/REFERENCE.csv`` and the revised labels next to it at the top level (``REFERENCE-v3.csv``);
- the Challenge's ``training2017.zip`` unpacked: ``training2017/A00001.hea`` + ``.mat`` and
  ``training2017/REFERENCE.csv`` (no header row: ``A00001,N``), with ``REFERENCE-v3.csv`` beside or inside it
  when downloaded too. ``root`` may also be the ``training2017`` folder itself.

The records are taken from ``training/`` if it exists, else ``training2017/``, else ``root``; the project's
``validation/`` folder is not read (its 300 records are copies of training records). The labels are read from the
newest label file found in ``root`` or the records' folder: ``REFERENCE-v<N>.csv`` with the highest N, then
``REFERENCE.csv``, then ``REFERENCE-original.csv``; the table's ``label_source`` column names it. A label file
naming a record with no header is an error; a record the label file does not name has no label (``label`` missing)
and is in no task.

Tasks (one example per record):

| task | kind | definition |
|---|---|---|
| ``af`` | binary | 1: A (atrial fibrillation); 0: N (normal sinus rhythm); O and ~ records left out |
| ``rhythm`` | multiclass | the record's label: ``"N"``, ``"A"``, ``"O"`` or ``"~"`` |

Split: the Challenge's test set is hidden and no patient identifiers are published, so each record is its own
patient and the split is pinned ([`pinned_split`][clef_sdk.datasets.splits.pinned_split], 10% validation, 10% test),
stratified by label so every part keeps the class proportions.

The lead is named as the headers name it, ``"ECG"``; ``"I"`` and ``0`` choose it too. Cite Clifford GD et al.,
"AF classification from a short single lead ECG recording: the PhysioNet/Computing in Cardiology Challenge 2017",
Computing in Cardiology 44 (2017), doi:10.22489/CinC.2017.065-469.
"""

from __future__ import annotations

import csv
import os
import re
from functools import cached_property, partial
from pathlib import Path

import numpy as np
import pandas as pd

from .._optional import require
from ..errors import DatasetError, RecordingError
from ..io import canonical_lead
from .base import Dataset, TaskInfo
from .signals import ArraySignal, read_header
from .splits import pinned_split

__all__ = ["CLASSES", "CinC2017"]

#: the Challenge's four classes, in its order
CLASSES = ("N", "A", "O", "~")
FS = 300.0
_RECORD = re.compile(r"^A\d{5}$")
_VERSIONED = re.compile(r"^REFERENCE-v(\d+)\.csv$")
#: names the one lead answers to (canonical spelling): the headers' "ECG", and lead I, which it records
_LEAD_NAMES = ("ECG", "I")


def _read_lead(path: str) -> np.ndarray:
    """The one lead of a CinC 2017 record ``(n_samples,)`` in mV (the ``.mat`` is read whole: at most 61 s)."""
    wfdb = require("wfdb", "reading CinC 2017 records")
    try:
        record = wfdb.rdrecord(path, channels=[0])
    except Exception as exc:  # wfdb raises many kinds of errors for a missing or corrupt .mat
        raise RecordingError(f"cannot read CinC 2017 record {path}: {exc}") from None
    return np.asarray(record.p_signal[:, 0], dtype=np.float64)


class CinC2017(Dataset):
    """A local copy of the PhysioNet/CinC Challenge 2017 training set (``clef.datasets.open("cinc2017", root)``),
    in PhysioNet's ``training/A0x/`` tree or the unpacked ``training2017/`` folder (see the module docstring)."""

    name = "cinc2017"
    title = "PhysioNet/CinC Challenge 2017"
    source = "https://physionet.org/content/challenge-2017/1.0.0/"
    physionet = "challenge-2017/1.0.0"
    tasks = {
        "af": TaskInfo("af", "binary", "atrial fibrillation (A, 1) vs normal sinus rhythm (N, 0); O and ~ left out"),
        "rhythm": TaskInfo(
            "rhythm", "multiclass", "the record's class: N (normal), A (AF), O (other rhythm), ~ (noisy)"
        ),
    }
    default_lead = 0
    rates = (FS,)

    # ------------------------------------------------------------------ layout
    @property
    def records_dir(self) -> Path:
        """The folder holding the records: ``training/`` (PhysioNet's tree), ``training2017/`` (the zip) or ``root``."""
        for name in ("training", "training2017"):
            if (self.root / name).is_dir():
                return self.root / name
        if any(self.root.glob("A*.hea")) or any(self.root.glob("REFERENCE*.csv")):
            return self.root
        raise self.missing("the records folder training/ (PhysioNet's tree) or training2017/ (training2017.zip)")

    @property
    def reference_file(self) -> Path:
        """The label file read: the newest version found in ``root`` or `records_dir`."""
        found: list[tuple[int, str, Path]] = []
        for folder in dict.fromkeys([self.root, self.records_dir]):
            for path in folder.glob("REFERENCE*.csv"):
                match = _VERSIONED.match(path.name)
                if match:
                    rank = 2 + int(match.group(1))  # every revision outranks the unnumbered files
                elif path.name == "REFERENCE.csv":
                    rank = 1
                elif path.name == "REFERENCE-original.csv":
                    rank = 0
                else:
                    continue
                found.append((rank, str(path), path))
        if not found:
            raise self.missing("the label file REFERENCE-v3.csv or REFERENCE.csv")
        return max(found)[2]

    def _headers(self) -> dict[str, Path]:
        """Every record's header under `records_dir` (its ``A0x/`` subfolders included), by record id."""
        headers: dict[str, Path] = {}
        for folder, _, files in os.walk(self.records_dir):
            for name in files:
                if name.endswith(".hea") and _RECORD.match(name[:-4]):
                    headers.setdefault(name[:-4], Path(folder) / name)
        return headers

    def _labels(self, path: Path) -> dict[str, str]:
        labels: dict[str, str] = {}
        with open(path, newline="", encoding="utf-8-sig") as handle:
            for number, row in enumerate(csv.reader(handle), start=1):
                cells = [cell.strip() for cell in row]
                if not any(cells):
                    continue
                if len(cells) < 2 or cells[1] not in CLASSES or not cells[0]:
                    raise DatasetError(
                        f"{self.title}: {path}, line {number}: expected 'record,label' with a label among "
                        f"{', '.join(CLASSES)}; got {','.join(cells)[:60]!r}"
                    )
                if cells[0] in labels:
                    raise DatasetError(f"{self.title}: {path} labels record {cells[0]} twice (line {number})")
                labels[cells[0]] = cells[1]
        return labels

    # ------------------------------------------------------------------ the reader
    def build_table(self) -> pd.DataFrame:
        headers = self._headers()
        reference = self.reference_file
        labels = self._labels(reference)
        absent = sorted(set(labels) - set(headers))
        if absent:
            shown = ", ".join(absent[:5]) + (f" and {len(absent) - 5} more" if len(absent) > 5 else "")
            raise self.missing(f"the header(s) of {len(absent)} record(s) that {reference.name} labels ({shown})")
        if not headers:
            raise self.missing(f"records (A00001.hea + A00001.mat ...) in {self.records_dir}")
        rows = []
        for record in sorted(headers):
            header = read_header(headers[record])
            rows.append(
                {
                    "record": record,
                    "patient": record,  # no patient identifiers are published
                    "fs": header.fs,
                    "n_samples": header.n_samples,
                    "leads": header.leads,
                    "label": labels.get(record),
                    "label_source": reference.name,
                    "path": headers[record].relative_to(self.root).with_suffix("").as_posix(),
                }
            )
        table = pd.DataFrame(rows)
        strata = table["label"].fillna("unlabelled")
        table["split"] = pinned_split(table["patient"], self.name, val=0.1, test=0.1, strata=strata)
        return table

    def _channel(self, lead: str | int) -> int:
        if isinstance(lead, str) and not lead.strip().lstrip("-").isdigit():
            if canonical_lead(lead).upper() in _LEAD_NAMES:
                return 0
        elif int(lead) in (0, -1):
            return 0
        raise DatasetError(f"{self.title} records have one lead (ECG, i.e. lead I, or index 0); no lead {lead!r}")

    def open_signal(self, record: str, lead: str | int) -> object:
        self._channel(lead)
        row = self.table.iloc[self._row_of[record]]
        path = str(self.root / row["path"])
        return ArraySignal(partial(_read_lead, path), int(row["n_samples"]), float(row["fs"]), row["path"])

    @cached_property
    def _row_of(self) -> dict[str, int]:
        return {record: i for i, record in enumerate(self.table["record"])}

    def task_labels(self, task: str, lead: str | int) -> tuple[list[object], pd.Series, pd.Series]:
        self._channel(lead)
        table = self.table
        if task == "af":
            table = table[table["label"].isin(["A", "N"])]
            labels = (table["label"] == "A").astype(np.int64)
        else:
            table = table[table["label"].isin(CLASSES)]
            labels = table["label"].astype(object)
        records = table["record"]
        y = pd.Series(labels.to_numpy(), index=pd.Index(records, name="record"), name=task)
        X = [self.open_signal(record, lead) for record in records]
        return X, y, pd.Series(records.to_numpy())
