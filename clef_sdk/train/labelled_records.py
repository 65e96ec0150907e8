"""A folder of WFDB records and a labels CSV keyed by record: what ``clef train finetune`` trains on.

The CSV has one row per record: a record column (the record's path under the folder without ``.hea``, e.g.
PTB-XL's ``records500/00000/00001_hr``, or just its name when that is unique), one or more label columns, and
optionally a patient column and a split column (such as PTB-XL's ``strat_fold``). Each record is read lazily, one
lead, as a [`clef_sdk.WfdbSignal`][clef_sdk.WfdbSignal].
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from ..errors import RecordingError
from ..io import WfdbSignal, find_records

__all__ = ["LabelledRecords", "read_labelled_records", "read_labelled_store"]


@dataclass
class LabelledRecords:
    """Recordings (one lead each; ``None`` for a store's records, read by ``StoreRecordings``), their labels (a 1-D array, or a DataFrame for several label columns), the
    patient of each (or ``None``), the split value of each (or ``None``) and the record names."""

    signals: list[WfdbSignal] | None
    labels: Any
    groups: np.ndarray | None
    split: np.ndarray | None
    names: list[str]

    def rows(self, keep: np.ndarray) -> LabelledRecords:
        """The records where ``keep`` (a boolean mask) is true."""
        index = np.flatnonzero(keep)
        labels = self.labels.iloc[index] if hasattr(self.labels, "iloc") else self.labels[index]
        return LabelledRecords(
            None if self.signals is None else [self.signals[i] for i in index],
            labels,
            None if self.groups is None else self.groups[index],
            None if self.split is None else self.split[index],
            [self.names[i] for i in index],
        )


def _record_lookup(records: Sequence[str], where: str) -> tuple[set[str], dict[str, list[str]]]:
    if not records:
        raise FileNotFoundError(f"no records in {where}")
    by_name: dict[str, list[str]] = {}
    for record in records:
        by_name.setdefault(Path(record).name, []).append(record)
    return set(records), by_name


def _matched(table: Any, record_column: str, records: Sequence[str], where: str, labels_csv: object) -> list[str]:
    """The record of each CSV row: its path, or its name when that is unique; ValueError naming the others."""
    known, by_name = _record_lookup(records, where)
    resolved: list[str] = []
    unknown: list[str] = []
    ambiguous: list[str] = []
    for key in table[record_column].astype(str):
        key = key[:-4] if key.endswith((".hea", ".dat", ".mat")) else key
        candidates = by_name.get(Path(key).name, [])
        if key in known:
            resolved.append(key)
        elif len(candidates) == 1:
            resolved.append(candidates[0])
        else:
            (ambiguous if len(candidates) > 1 else unknown).append(key)
    if unknown or ambiguous:
        problems = []
        if unknown:
            problems.append(f"{len(unknown)} record(s) not found in {where} (e.g. {unknown[:5]})")
        if ambiguous:
            problems.append(f"{len(ambiguous)} name(s) matching several records (e.g. {ambiguous[:5]}): give paths")
        raise ValueError(f"{labels_csv}: " + "; ".join(problems))
    return resolved


def _read_labels(
    labels_csv: str | os.PathLike[str],
    label_columns: Sequence[str],
    record_column: str,
    group_column: str | None,
    split_column: str | None,
) -> Any:
    pd = require("pandas", "clef train finetune")
    if not label_columns:
        raise ValueError("name at least one label column (--label COLUMN)")
    table = pd.read_csv(labels_csv)
    wanted = [record_column, *label_columns, *(c for c in (group_column, split_column) if c)]
    absent = [column for column in wanted if column not in table.columns]
    if absent:
        raise ValueError(f"{labels_csv} has no column(s) {absent}; its columns are {list(table.columns)}")
    return table


def _labelled(
    table: Any,
    signals: list[WfdbSignal] | None,
    names: list[str],
    label_columns: Sequence[str],
    group_column: str | None,
    split_column: str | None,
) -> LabelledRecords:
    labels = table[list(label_columns)] if len(label_columns) > 1 else table[label_columns[0]].to_numpy()
    groups = table[group_column].to_numpy() if group_column else None
    split = table[split_column].to_numpy() if split_column else None
    return LabelledRecords(signals, labels, groups, split, names)


def read_labelled_records(
    folder: str | os.PathLike[str],
    labels_csv: str | os.PathLike[str],
    *,
    label_columns: Sequence[str],
    record_column: str = "record",
    group_column: str | None = None,
    split_column: str | None = None,
    lead: str | int | None = None,
) -> LabelledRecords:
    """Match the rows of ``labels_csv`` to the WFDB records under ``folder`` and open lead ``lead`` of each.

    Raises ValueError naming the rows whose record is missing (or ambiguous), a column that does not exist, or
    labels that are missing; [`RecordingError`][clef_sdk.errors.RecordingError] for a record that cannot be read or lacks
    the lead.
    """
    table = _read_labels(labels_csv, label_columns, record_column, group_column, split_column)
    root = Path(folder)
    resolved = _matched(table, record_column, find_records(root), str(root), labels_csv)
    signals = []
    for record in resolved:
        try:
            signals.append(WfdbSignal(root / record, lead))
        except (RecordingError, ValueError) as exc:
            raise RecordingError(f"record {record}: {exc}") from None
    return _labelled(table, signals, resolved, label_columns, group_column, split_column)


def read_labelled_store(
    store_paths: Sequence[str],
    labels_csv: str | os.PathLike[str],
    *,
    label_columns: Sequence[str],
    record_column: str = "record",
    group_column: str | None = None,
    split_column: str | None = None,
    where: str = "the store",
) -> LabelledRecords:
    """Match the rows of ``labels_csv`` to the records of a prepared store (its ``path`` values,
    ``store_paths``); the recordings themselves are read by `StoreRecordings`
    (``signals`` is ``None``)."""
    table = _read_labels(labels_csv, label_columns, record_column, group_column, split_column)
    resolved = _matched(table, record_column, sorted(set(store_paths)), where, labels_csv)
    return _labelled(table, None, resolved, label_columns, group_column, split_column)
