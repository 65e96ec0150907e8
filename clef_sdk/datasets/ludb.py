"""LUDB, the Lobachevsky University Electrocardiography Database (PhysioNet ``ludb/1.0.1``).

200 subjects, one 10 s 12-lead record each at 500 Hz (WFDB format 16), with rhythm, diagnoses, age and sex in
``ludb.csv`` and in the headers. Layout: ``ludb.csv``, ``RECORDS``, ``data/<n>.hea`` + ``data/<n>.dat`` (+ per-lead
delineation files). License ODC-By 1.0; cite Kalyakulina AI et al., IEEE Access 8:186181 (2020).

Tasks (the first line of ``ludb.csv``'s ``Rhythms`` is the record's rhythm):

| task | kind | definition |
|---|---|---|
| ``af`` | binary | 1: atrial fibrillation or flutter; 0: any sinus rhythm (sinus, brady-, tachycardia, arrhythmia, irregular); other rhythms left out |
| ``sex`` | binary | ``"F"`` or ``"M"`` |
| ``age`` | regression | age in years (``">89"`` read as 90) |

Split: none is published; [`pinned_split`][clef_sdk.datasets.splits.pinned_split] with 20% validation and 20% test
subjects, stratified by rhythm group (AF/flutter, sinus, other) so the 18 AF/flutter records are spread over the
three parts (a 10% test part would hold one or two).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .base import Dataset, TaskInfo
from .signals import open_wfdb_lead, read_header
from .splits import pinned_split

__all__ = ["LUDB"]

_ATRIAL = ("atrial fibrillation", "atrial flutter")


def rhythm_group(rhythm: str) -> str:
    """``"af"`` (fibrillation or flutter), ``"sinus"`` or ``"other"`` for a LUDB rhythm text."""
    folded = rhythm.strip().lower()
    if folded.startswith(_ATRIAL):
        return "af"
    return "sinus" if "sinus" in folded else "other"


def _age(text: str) -> float:
    match = re.match(r"^\s*>?\s*(\d+(?:\.\d+)?)", text)
    if not match:
        return float("nan")
    return float(match.group(1)) + (1.0 if text.strip().startswith(">") else 0.0)


class LUDB(Dataset):
    """A local copy of LUDB (``clef.datasets.open("ludb", root)``); ``root`` holds ``ludb.csv`` and ``data/``."""

    name = "ludb"
    title = "LUDB (Lobachevsky University Electrocardiography Database)"
    source = "https://physionet.org/content/ludb/1.0.1/"
    physionet = "ludb/1.0.1"
    tasks = {
        "af": TaskInfo("af", "binary", "atrial fibrillation or flutter (1) vs any sinus rhythm (0)"),
        "sex": TaskInfo("sex", "binary", "the subject's sex, F or M"),
        "age": TaskInfo("age", "regression", "the subject's age in years"),
    }
    default_lead = "I"
    rates = (500.0,)

    def build_table(self) -> pd.DataFrame:
        path = self.root / "ludb.csv"
        if not path.is_file():
            raise self.missing("ludb.csv")
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if not {"ID", "Sex", "Age", "Rhythms"} <= set(frame.columns):
            raise self.missing("ludb.csv with the columns ID, Sex, Age and Rhythms")
        rows = []
        for entry in frame.itertuples(index=False):
            record = entry.ID.strip()
            header_path = self.root / "data" / f"{record}.hea"
            if not header_path.is_file():
                raise self.missing(f"data/{record}.hea (record {record} of ludb.csv)")
            header = read_header(header_path)
            rhythm = entry.Rhythms.strip().splitlines()[0].strip() if entry.Rhythms.strip() else ""
            rows.append(
                {
                    "record": record,
                    "patient": record,  # one record per subject
                    "fs": header.fs,
                    "n_samples": header.n_samples,
                    "leads": header.leads,
                    "age": _age(entry.Age),
                    "sex": entry.Sex.strip().upper()[:1] or None,
                    "rhythm": rhythm,
                    "rhythm_group": rhythm_group(rhythm),
                }
            )
        table = pd.DataFrame(rows)
        table["split"] = pinned_split(table["patient"], self.name, val=0.2, test=0.2, strata=table["rhythm_group"])
        return table

    def open_signal(self, record: str, lead: str | int) -> object:
        return open_wfdb_lead(self.root / "data" / record, lead)

    def task_labels(self, task: str, lead: str | int) -> tuple[list[object], pd.Series, pd.Series]:
        table = self.table
        if task == "af":
            table = table[table["rhythm_group"] != "other"]
            labels = (table["rhythm_group"] == "af").astype(np.int64)
        elif task == "sex":
            table = table[table["sex"].isin(["F", "M"])]
            labels = table["sex"]
        else:
            table = table[np.isfinite(table["age"].to_numpy(dtype=float))]
            labels = table["age"].astype(float)
        records = table["record"]
        y = pd.Series(labels.to_numpy(), index=pd.Index(records, name="record"), name=task)
        return [self.open_signal(record, lead) for record in records], y, pd.Series(records.to_numpy())
