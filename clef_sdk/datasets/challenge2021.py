"""The PhysioNet/Computing in Cardiology Challenge 2020/2021 training data (PhysioNet ``challenge-2021/1.0.3``).

12-lead records from eight sources (CPSC 2018 and its extra set, St Petersburg INCART, PTB, PTB-XL, Georgia,
Chapman-Shaoxing, Ningbo), mostly 10 s at 500 Hz; INCART's run at 257 Hz and PTB's at 1000 Hz. Layout:
``training/<source>/<gNN>/<name>.hea`` + ``<name>.mat`` (a MATLAB v4 matrix ``val`` of the digital samples, which
the header reads as WFDB format ``16+24``); any folder tree of ``.hea`` + ``.mat`` records is read, searched
recursively. Headers carry ``# Age: 74``, ``# Sex: Male`` and ``# Dx: 426783006,164889003`` (SNOMED CT codes).
Cite Reyna MA et al., Computing in Cardiology 48 (2021), and the source databases (license: see the project page).

Table: ``record`` is the record name (unique across sources), ``patient`` the record (no patient ids are
published), ``source`` the folder under ``training/`` (empty where there is none), ``age`` (years, NaN if
unknown), ``sex`` (``"male"``, ``"female"`` or None), ``dx`` (a tuple of the ``# Dx`` codes, None where the header
has no, or an empty, ``# Dx`` line) and ``filename`` (the record's path under ``root``, without suffix).

Task ``scored`` (multi-label): the Challenge's 26 scored classes (`.snomed`), equivalent codes merged into
one column named as ``weights_abbreviations.csv`` names it (``"CRBBB|RBBB"``). Every record with codes on its
``# Dx`` line is an example; one with no scored class is a row of zeros, as the Challenge scores it.

Split: none is published for the training data; [`pinned_split`][clef_sdk.datasets.splits.pinned_split] with 10%
validation and 10% test records (each record its own patient).

Signals are read when sliced, a whole lead at a time (the ``.mat`` files hold one record each), in mV.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from functools import cached_property, partial
from pathlib import Path
from typing import ClassVar

import pandas as pd

from ..errors import DatasetError
from ..io import canonical_lead, find_records, header_demographics, select_channel
from .base import Dataset, TaskInfo
from .signals import ArraySignal, read_header, read_wfdb_lead
from .snomed import scored_frame
from .splits import pinned_split

__all__ = ["Challenge2021", "parse_dx"]

_DX = re.compile(r"^\s*dx\s*:\s*(.*?)\s*$", flags=re.IGNORECASE)


def parse_dx(comments: Iterable[str]) -> tuple[str, ...] | None:
    """The SNOMED CT codes of a ``Dx: <code>,<code>`` header comment (``#`` stripped); None without one."""
    for line in comments:
        match = _DX.match(line)
        if match:
            codes = tuple(code.strip() for code in match.group(1).split(",") if code.strip())
            return codes or None
    return None


def _source(root: Path, filename: str) -> str:
    """The folder under ``training/`` that holds a record (``"georgia"``), or ``""``."""
    folders = filename.split("/")[:-1]
    if "training" in folders:
        index = folders.index("training")
        return folders[index + 1] if index + 1 < len(folders) else ""
    if root.name == "training":
        return folders[0] if folders else ""
    return root.name if root.parent.name == "training" else ""


class Challenge2021(Dataset):
    """A local copy of the PhysioNet/CinC Challenge 2021 training data (``clef.datasets.open("challenge2021",
    root)``); ``root`` holds ``training/`` (or any folder tree of the ``.hea`` + ``.mat`` records)."""

    name = "challenge2021"
    title = "PhysioNet/CinC Challenge 2021"
    source = "https://physionet.org/content/challenge-2021/1.0.3/"
    physionet = "challenge-2021/1.0.3"
    tasks = {
        "scored": TaskInfo(
            "scored", "multilabel", "the Challenge's 26 scored SNOMED CT classes (equivalent codes merged), from # Dx"
        ),
    }
    default_lead = "I"
    #: the folder under ``root`` that holds the records, where the published layout has one
    records_folder: ClassVar[str | None] = None
    #: the suffix of the signal file beside each header
    signal_suffix: ClassVar[str] = ".mat"

    def __init__(self, root: str | os.PathLike[str], fs: float | None = None):
        if fs is not None and not self.rates:
            raise DatasetError(
                f"{self.title} records keep the rate they are published at (257, 500 or 1000 Hz, see ds.table.fs); "
                f"open it without fs="
            )
        super().__init__(root, fs=fs)

    def _folder(self) -> Path:
        if self.records_folder and (self.root / self.records_folder).is_dir():
            return self.root / self.records_folder
        return self.root

    def _layout(self) -> str:
        return "training/<source>/<gNN>/<name>.hea + .mat"

    def _extra(self, filename: str) -> dict[str, object]:
        """Columns a subclass adds after ``leads`` (here the source folder)."""
        return {"source": _source(self.root, filename)}

    def build_table(self) -> pd.DataFrame:
        folder = self._folder()
        prefix = folder.relative_to(self.root).as_posix()
        rows = []
        for name in find_records(folder):
            filename = name if prefix == "." else f"{prefix}/{name}"
            header = read_header(self.root / f"{filename}.hea")
            age, sex = header_demographics(header.comments)
            rows.append(
                {
                    "record": filename.rsplit("/", 1)[-1],
                    "fs": header.fs,
                    "n_samples": header.n_samples,
                    "leads": header.leads,
                    **self._extra(filename),
                    "age": age,
                    "sex": sex,
                    "dx": parse_dx(header.comments),
                    "filename": filename,
                }
            )
        if not rows:
            raise self.missing(f"WFDB headers (.hea) of the records ({self._layout()})")
        table = pd.DataFrame(rows)
        repeated = table[table["record"].duplicated(keep=False)].sort_values("record")
        if len(repeated):
            shown = ", ".join(repeated["filename"].head(4))
            raise DatasetError(
                f"{self.title}: record names repeat under {self.root} ({shown}); pass a folder that holds one copy "
                f"of the data"
            )
        table["patient"] = table["record"]  # no patient ids are published
        table["split"] = pinned_split(table["patient"], self.name, val=0.1, test=0.1)
        return table

    @cached_property
    def _position(self) -> dict[str, int]:
        return {record: position for position, record in enumerate(self.table["record"])}

    def _lead(
        self, record: str, filename: str, leads: tuple[str, ...], n_samples: int, fs: float, lead: str | int
    ) -> ArraySignal:
        """One lead of a record as a lazy signal from the table's facts: no header is read until it is sliced."""
        wanted = canonical_lead(lead) if isinstance(lead, str) else lead
        index = select_channel(leads, wanted, f"record {record}", kind="lead")
        path = self.root / filename
        data = path.with_name(path.name + self.signal_suffix)
        if not data.is_file():
            raise self.missing(f"{filename}{self.signal_suffix} (the signal of record {record})")
        name = leads[index]
        return ArraySignal(partial(read_wfdb_lead, path, name), n_samples, fs, f"{record} lead {name}")

    def open_signal(self, record: str, lead: str | int) -> object:
        row = self.table.iloc[self._position[record]]
        return self._lead(record, row["filename"], row["leads"], int(row["n_samples"]), float(row["fs"]), lead)

    def _examples(self, table: pd.DataFrame, lead: str | int) -> list[object]:
        return [
            self._lead(row.record, row.filename, row.leads, int(row.n_samples), float(row.fs), lead)
            for row in table.itertuples(index=False)
        ]

    def task_labels(self, task: str, lead: str | int) -> tuple[list[object], pd.Series | pd.DataFrame, pd.Series]:
        table = self.table[self.table["dx"].notna()]
        records = table["record"]
        y = scored_frame(list(table["dx"]), pd.Index(records, name="record"))
        return self._examples(table, lead), y, pd.Series(records.to_numpy())
