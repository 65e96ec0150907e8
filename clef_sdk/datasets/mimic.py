"""MIMIC-IV-ECG, the diagnostic electrocardiogram matched subset (PhysioNet ``mimic-iv-ecg/1.0``).

About 800,000 diagnostic 12-lead ECGs of about 160,000 patients of the Beth Israel Deaconess Medical Center, each
10 s at 500 Hz (5,000 samples, WFDB format 16, mV). Layout: ``record_list.csv`` (columns ``subject_id``,
``study_id``, ``file_name``, ``ecg_time``, ``path``) and ``files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN.hea`` + ``.dat``
(``path`` is that record path without suffix); ``machine_measurements.csv`` holds the cart's own measurements and
report statements. License ODbL 1.0; cite Gow B et al., "MIMIC-IV-ECG: Diagnostic Electrocardiogram Matched Subset"
(version 1.0), PhysioNet (2023), doi:10.13026/4nqg-sb35.

The table has one row per study (``record`` = ``study_id``, ``patient`` = ``subject_id``), ``ecg_time`` and
``path`` from ``record_list.csv``; ``fs`` (500), ``n_samples`` (5000) and ``leads`` (the 12 standard leads in
canonical spelling and standard order) are the release's, uniform, so no header is opened to make it. When
``machine_measurements.csv`` is present its measurements are added: ``rr_interval``, ``p_onset``, ``p_end``,
``qrs_onset``, ``qrs_end``, ``t_end``, ``p_axis``, ``qrs_axis``, ``t_axis`` (as published; see its data
dictionary) and ``report``, the report statements ``report_0`` ... ``report_17`` joined by ``"; "``.

No labels: there are no tasks. For pretraining and embedding, ``ds.signals("I")`` gives every record's lead I as
a lazy signal (nothing is read until it is sliced; each slice reads the 10 s record). Leads are matched by name
(the files store aVF before aVL); a 0-based index counts in the table's standard order (4 is aVL).

Split: none is published; [`pinned_split`][clef_sdk.datasets.splits.pinned_split] by patient (``subject_id``), 10%
validation and 10% test.
"""

from __future__ import annotations

from functools import cached_property, partial
from pathlib import Path

import numpy as np
import pandas as pd

from .._optional import require
from ..errors import DatasetError, RecordingError
from ..io import STANDARD_LEADS, canonical_lead
from .base import Dataset
from .signals import ArraySignal
from .splits import pinned_split

__all__ = ["MEASUREMENTS", "MimicIVECG"]

FS = 500.0
N_SAMPLES = 5000
#: the numeric columns of ``machine_measurements.csv`` the table takes
MEASUREMENTS = ("rr_interval", "p_onset", "p_end", "qrs_onset", "qrs_end", "t_end", "p_axis", "qrs_axis", "t_axis")
_REPORTS = tuple(f"report_{i}" for i in range(18))
_REQUIRED = ("subject_id", "study_id", "path")


def _read_lead(path: str, lead: str) -> np.ndarray:
    """Lead ``lead`` (canonical name) of a MIMIC-IV-ECG record ``(n_samples,)``, reading the 10 s record once."""
    wfdb = require("wfdb", "reading MIMIC-IV-ECG records")
    try:
        record = wfdb.rdrecord(path)
    except Exception as exc:  # wfdb raises many kinds of errors for a missing or corrupt record
        raise RecordingError(f"cannot read MIMIC-IV-ECG record {path}: {exc}") from None
    names = [canonical_lead(name) for name in (record.sig_name or [])]
    if lead not in names or record.p_signal is None:
        raise RecordingError(f"MIMIC-IV-ECG record {path} has no lead {lead}; it has {', '.join(names)}")
    return np.asarray(record.p_signal[:, names.index(lead)], dtype=np.float64)


class MimicIVECG(Dataset):
    """A local copy of MIMIC-IV-ECG (``clef.datasets.open("mimic-iv-ecg", root)``); ``root`` holds
    ``record_list.csv`` and ``files/``."""

    name = "mimic-iv-ecg"
    title = "MIMIC-IV-ECG"
    source = "https://physionet.org/content/mimic-iv-ecg/1.0/"
    physionet = "mimic-iv-ecg/1.0"
    tasks = {}
    default_lead = "I"
    rates = (FS,)

    def build_table(self) -> pd.DataFrame:
        listing = self.root / "record_list.csv"
        if not listing.is_file():
            raise self.missing("record_list.csv")
        if not (self.root / "files").is_dir():
            raise self.missing("the records folder files/ (files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN.hea)")
        frame = pd.read_csv(listing, dtype=str, keep_default_na=False)
        absent = [column for column in _REQUIRED if column not in frame.columns]
        if absent:
            raise DatasetError(f"{self.title}: {listing} lacks the column(s) {', '.join(absent)}")
        table = pd.DataFrame(
            {
                "record": frame["study_id"].str.strip(),
                "patient": frame["subject_id"].str.strip(),
                "fs": FS,
                "n_samples": N_SAMPLES,
                "leads": [STANDARD_LEADS] * len(frame),
                "ecg_time": frame["ecg_time"].str.strip() if "ecg_time" in frame.columns else "",
                "path": frame["path"].str.strip().str.strip("/"),
            }
        )
        if table["record"].duplicated().any():
            twice = table.loc[table["record"].duplicated(), "record"].iloc[0]
            raise DatasetError(f"{self.title}: {listing} lists study {twice} twice")
        measurements = self.root / "machine_measurements.csv"
        if measurements.is_file():
            table = table.merge(self._measurements(measurements), how="left", left_on="record", right_index=True)
        table["split"] = pinned_split(table["patient"], self.name, val=0.1, test=0.1)
        return table

    def _measurements(self, path: Path) -> pd.DataFrame:
        """``machine_measurements.csv``'s numeric measurements and joined report, indexed by study id."""
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if "study_id" not in frame.columns:
            raise DatasetError(f"{self.title}: {path} lacks the column study_id")
        frame = frame.drop_duplicates("study_id")
        out = pd.DataFrame(index=pd.Index(frame["study_id"].str.strip()))
        for column in MEASUREMENTS:
            if column in frame.columns:
                out[column] = pd.to_numeric(frame[column].to_numpy(), errors="coerce")
        reports = [frame[column].str.strip().to_numpy() for column in _REPORTS if column in frame.columns]
        out["report"] = ["; ".join(line for line in lines if line) for lines in zip(*reports)] if reports else ""
        return out

    @cached_property
    def _paths(self) -> dict[str, str]:
        return dict(zip(self.table["record"], self.table["path"]))

    def open_signal(self, record: str, lead: str | int) -> object:
        if isinstance(lead, str) and not lead.strip().lstrip("-").isdigit():
            name = canonical_lead(lead)
            if name not in STANDARD_LEADS:
                raise DatasetError(f"{self.title} records have the 12 standard leads; no lead {lead!r}")
        elif -len(STANDARD_LEADS) <= int(lead) < len(STANDARD_LEADS):
            name = STANDARD_LEADS[int(lead)]
        else:
            raise DatasetError(f"{self.title} records have 12 leads (index 0-11, standard order); no lead {lead!r}")
        path = self.root / self._paths[record]
        if not path.with_name(path.name + ".hea").is_file():
            raise self.missing(f"{self._paths[record]}.hea (study {record} of record_list.csv)")
        return ArraySignal(partial(_read_lead, str(path), name), N_SAMPLES, FS, f"{self._paths[record]} {name}")

    def task_labels(self, task: str, lead: str | int) -> tuple[list[object], pd.Series, pd.Series]:
        raise DatasetError(f"{self.title} has no labels, so no task {task!r}")  # task() refuses first
