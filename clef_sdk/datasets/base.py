"""The interface every dataset reader offers: a table of records, lazy signals and named tasks.

>>> ds = clef.datasets.open("ptbxl", "/data/ptb-xl", fs=500)
>>> ds.table                                  # one row per record: record, patient, split, fs, n_samples, leads, ...
>>> signal, fs = ds.signal("1", lead="I")     # lazy 1-D signal (read on slicing) and its rate in Hz
>>> X, y, groups, split = ds.task("superdiagnostic", lead="I")

A reader subclasses `Dataset` and implements `Dataset.build_table`, `Dataset.open_signal` and
`Dataset.task_labels`; an entry in `DATASETS` makes it available to `open` by name. ``X`` is a list of lazy
signals carrying their own ``fs``, so ``clef.embed(X)``, ``clef.fit_probe(X, y, groups=groups)`` and
``clef_sdk.train.finetune(X, y, groups=groups)`` take it as it is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import import_module
from pathlib import Path
from typing import ClassVar, Literal, NamedTuple

import pandas as pd

from ..errors import DatasetError
from .splits import SPLITS, write_split

__all__ = [
    "DATASETS",
    "TABLE_COLUMNS",
    "Dataset",
    "TaskData",
    "TaskInfo",
    "available_datasets",
    "open",
    "reader_class",
]

#: The columns every dataset table starts with (label and metadata columns follow).
TABLE_COLUMNS = ("record", "patient", "split", "fs", "n_samples", "leads")

TaskKind = Literal["binary", "multiclass", "multilabel", "regression"]


@dataclass(frozen=True)
class TaskInfo:
    """A task a dataset defines: its name, kind and a one-line definition (for docs and ``clef datasets``)."""

    name: str
    kind: TaskKind
    description: str


class TaskData(NamedTuple):
    """What `Dataset.task` returns; unpacks as ``X, y, groups, split``.

    ``X``: lazy 1-D signals, one per example (a record, or a window of one), each with its ``fs``.
    ``y``: a Series (binary, multiclass, regression) or a DataFrame of 0/1 columns named by label
    (multi-label), indexed by example id. ``groups``: the patient of each example. ``split``: ``"train"``,
    ``"val"`` or ``"test"`` of each example. All three share ``y``'s index.
    """

    X: list[object]
    y: pd.Series | pd.DataFrame
    groups: pd.Series
    split: pd.Series


class Dataset:
    """A local copy of a public ECG dataset in its published layout.

    Subclasses set the class attributes and implement `build_table`, `open_signal` and
    `task_labels`. ``root`` is the folder the dataset was downloaded or unpacked to.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    #: where to get the data (shown when ``root`` is not a copy of it)
    source: ClassVar[str]
    #: the PhysioNet project and version ``clef datasets download`` fetches, e.g. ``"ptb-xl/1.0.3"``; None if
    #: the data is not openly downloadable that way
    physionet: ClassVar[str | None] = None
    #: the tasks this dataset defines, by name
    tasks: ClassVar[dict[str, TaskInfo]] = {}
    #: the lead a task uses when none is given
    default_lead: ClassVar[str | int] = 0
    #: how the split column is made: "official" (the dataset's own) or "pinned" (`.splits`)
    split_kind: ClassVar[str] = "pinned"
    #: rates the dataset is published at (Hz); ``fs=`` picks among them where there are several
    rates: ClassVar[tuple[float, ...]] = ()

    def __init__(self, root: str | os.PathLike[str], fs: float | None = None):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetError(f"{self.title}: folder {self.root} not found. {self.where_to_get()}")
        if fs is not None and self.rates and float(fs) not in self.rates:
            rates = " or ".join(f"{rate:g}" for rate in self.rates)
            raise DatasetError(f"{self.title} is published at {rates} Hz, not fs={fs:g}; pass one of those")
        self.fs = float(fs) if fs is not None else (self.rates[0] if self.rates else None)

    @classmethod
    def where_to_get(cls) -> str:
        """One sentence saying where the data comes from and how to fetch it."""
        how = f"`clef datasets download {cls.name} DIR`, or from {cls.source}" if cls.physionet else cls.source
        return f"Get it with {how}, then pass the folder that holds it."

    def missing(self, what: str) -> DatasetError:
        """The error for a file of the published layout that is not under ``root``."""
        return DatasetError(f"{self.title}: {what} not found under {self.root}. {self.where_to_get()}")

    # ------------------------------------------------------------------ for subclasses
    def build_table(self) -> pd.DataFrame:
        """One row per record, with at least `TABLE_COLUMNS` (``leads`` a tuple of canonical names)."""
        raise NotImplementedError

    def open_signal(self, record: str, lead: str | int) -> object:
        """One lead of one record as a lazy 1-D signal with ``fs`` (see `.signals`)."""
        raise NotImplementedError

    def task_labels(self, task: str, lead: str | int) -> tuple[list[object], pd.Series | pd.DataFrame, pd.Series]:
        """A task's examples: lazy signals, labels indexed by example id, and each example's record (so the
        table gives its patient and split). Records with no label for the task are left out."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the interface
    @cached_property
    def table(self) -> pd.DataFrame:
        """One row per record: `TABLE_COLUMNS`, then labels and metadata (read once, then kept)."""
        table = self.build_table().reset_index(drop=True)
        missing = [column for column in TABLE_COLUMNS if column not in table.columns]
        if missing:  # a reader bug, not a user error
            raise AssertionError(f"{type(self).__name__}.build_table lacks columns {missing}")
        if table["record"].duplicated().any():
            raise AssertionError(f"{type(self).__name__}.build_table lists a record twice")
        table["record"] = table["record"].astype(str)
        table["patient"] = table["patient"].astype(str)
        return table[list(TABLE_COLUMNS) + [c for c in table.columns if c not in TABLE_COLUMNS]]

    @cached_property
    def _records(self) -> frozenset[str]:
        return frozenset(self.table["record"])

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, records={len(self)})"

    def signal(self, record: str, lead: str | int | None = None) -> tuple[object, float]:
        """One lead of one record: a lazy 1-D signal (read on slicing, in mV) and its rate in Hz.

        Args:
            record: the record's id (``table["record"]``).
            lead: a lead name (``"I"``, ``"II"``, ``"V1"``, ...) or a 0-based index; default the dataset's.
        """
        if str(record) not in self._records:
            raise DatasetError(f"{self.title} has no record {record!r} under {self.root} (ids as in ds.table.record)")
        signal = self.open_signal(str(record), self.default_lead if lead is None else lead)
        return signal, float(signal.fs)  # type: ignore[attr-defined]

    def signals(self, lead: str | int | None = None, records: Sequence[str] | None = None) -> list[object]:
        """One lazy signal per record (default every record of `table`, in its order), e.g. to embed a
        whole unlabelled dataset: ``clef.embed(ds.signals("I"))``."""
        chosen = list(self.table["record"]) if records is None else [str(r) for r in records]
        return [self.signal(record, lead)[0] for record in chosen]

    def task(self, name: str, lead: str | int | None = None) -> TaskData:
        """The examples, labels, patients and splits of a task (see `TaskData`).

        Args:
            name: one of `tasks`.
            lead: a lead name or 0-based index; default the dataset's.
        """
        if name not in self.tasks:
            known = ", ".join(self.tasks) or "none (this dataset has no labels)"
            raise DatasetError(f"{self.title} has no task {name!r}; its tasks: {known}")
        X, y, records = self.task_labels(name, self.default_lead if lead is None else lead)
        by_record = self.table.set_index("record")
        records = pd.Series([str(r) for r in records], index=y.index)
        groups = pd.Series(by_record.loc[records, "patient"].to_numpy(), index=y.index, name="patient")
        split = pd.Series(by_record.loc[records, "split"].to_numpy(), index=y.index, name="split")
        keep = split.isin(SPLITS).to_numpy()
        if not keep.all():  # records the split leaves out (e.g. MIT-BIH's paced records)
            X = [x for x, kept in zip(X, keep) if kept]
            y, groups, split = y[keep], groups[keep], split[keep]
        if len(X) == 0:
            raise DatasetError(f"{self.title}: task {name!r} has no labelled records under {self.root}")
        return TaskData(X, y, groups, split)

    def write_split(self, path: str | os.PathLike[str]) -> Path:
        """Write ``record,patient,split`` of every record as CSV (to cite, or to check another copy against)."""
        return write_split(self.table, path)


#: dataset name -> "module.Class" of its reader in this package (imported when first opened)
DATASETS: dict[str, str] = {
    "ptbxl": "ptbxl.PTBXL",
    "cinc2017": "cinc2017.CinC2017",
    "challenge2021": "challenge2021.Challenge2021",
    "chapman": "chapman.Chapman",
    "icentia11k": "icentia11k.Icentia11k",
    "mimic-iv-ecg": "mimic.MimicIVECG",
    "ludb": "ludb.LUDB",
    "mitdb": "mitdb.MITBIH",
}


def available_datasets() -> list[str]:
    """The names `open` accepts."""
    return sorted(DATASETS)


def reader_class(name: str) -> type[Dataset]:
    """The reader class of a dataset name (see `DATASETS`)."""
    key = name.strip().lower()
    if key not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(available_datasets())}")
    module, cls = DATASETS[key].rsplit(".", 1)
    return getattr(import_module(f".{module}", __package__), cls)


def open(name: str, root: str | os.PathLike[str], *, fs: float | None = None) -> Dataset:
    """Open the local copy of a dataset by name: ``clef.datasets.open("ptbxl", "/data/ptb-xl", fs=500)``.

    Args:
        name: one of `available_datasets` (``"ptbxl"``, ``"cinc2017"``, ``"challenge2021"``, ``"chapman"``,
            ``"icentia11k"``, ``"mimic-iv-ecg"``, ``"ludb"``, ``"mitdb"``).
        root: the folder holding the dataset in its published layout.
        fs: for datasets published at several rates (PTB-XL: 100 or 500 Hz), the one to read.
    """
    return reader_class(name)(root, fs=fs)
