"""PTB-XL, a large publicly available electrocardiography dataset (PhysioNet ``ptb-xl/1.0.3``).

21,799 clinical 10 s 12-lead ECGs of 18,869 patients, each at 500 Hz (``records500/``) and at 100 Hz
(``records100/``), WFDB format 16; ``fs=`` picks the rate (default 500 Hz). Layout: ``ptbxl_database.csv`` (one
row per ECG: ``ecg_id``, ``patient_id``, ``age``, ``sex``, ``scp_codes``, ``strat_fold``, ``filename_lr``,
``filename_hr``, ...), ``scp_statements.csv`` (the 71 SCP-ECG statements; first column the statement code),
``records100/00000/00001_lr.hea`` + ``.dat``, ``records500/00000/00001_hr.hea`` + ``.dat``. License CC BY 4.0; cite
Wagner P et al., Scientific Data 7:154 (2020), and for the tasks Strodthoff N et al., IEEE JBHI 25(5):1519 (2021).

Table: ``record`` is the ``ecg_id``, ``patient`` the ``patient_id``; then ``age`` (years), ``sex`` (``"male"`` for
0, ``"female"`` for 1, as the dataset codes it), ``strat_fold``, ``scp_codes`` (dict statement -> likelihood in %)
and ``filename`` (the record under ``root`` at the chosen rate, without suffix). Every record is 10 s, so
``n_samples`` is 10 s x fs and no header is opened to build the table.

Tasks (multi-label, as in the PTB-XL benchmark of Strodthoff et al.; every statement of ``scp_codes`` counts
whatever its likelihood; records with no label for a task are left out; columns sorted by label):

| task | labels |
|---|---|
| ``all`` | every statement of ``scp_codes`` (71 possible) |
| ``diagnostic`` | the statements with ``diagnostic == 1`` in ``scp_statements.csv`` (44) |
| ``subdiagnostic`` | the ``diagnostic_subclass`` of those statements (23) |
| ``superdiagnostic`` | the ``diagnostic_class`` of those statements: NORM, MI, STTC, CD, HYP |
| ``form`` | the statements with ``form == 1`` (19) |
| ``rhythm`` | the statements with ``rhythm == 1`` (12) |

Split (official): ``strat_fold`` 1-8 train, 9 validation, 10 test (patient-disjoint; folds 9 and 10 were
validated by a cardiologist).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from functools import cached_property, partial

import numpy as np
import pandas as pd

from ..io import STANDARD_LEADS, canonical_lead, select_channel
from .base import Dataset, TaskInfo
from .signals import ArraySignal, read_wfdb_lead

__all__ = ["PTBXL", "RECORD_SECONDS", "fold_split"]

#: every PTB-XL record lasts 10 s
RECORD_SECONDS = 10.0
_COLUMNS = ("ecg_id", "patient_id", "age", "sex", "scp_codes", "strat_fold", "filename_lr", "filename_hr")
_SEX = {0: "male", 1: "female"}


def fold_split(fold: object) -> str:
    """The split of a ``strat_fold``: 1-8 ``"train"``, 9 ``"val"``, 10 ``"test"`` (anything else ``"excluded"``)."""
    try:
        number = int(fold)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return "excluded"
    return "train" if 1 <= number <= 8 else "val" if number == 9 else "test" if number == 10 else "excluded"


def _codes(text: object) -> dict[str, float]:
    if not isinstance(text, str) or not text.strip():
        return {}
    value = ast.literal_eval(text)
    if not isinstance(value, dict):
        raise ValueError(f"scp_codes {text[:40]!r} is not a dict")
    return {str(code): float(likelihood) for code, likelihood in value.items()}


class PTBXL(Dataset):
    """A local copy of PTB-XL (``clef.datasets.open("ptbxl", root, fs=100)``); ``root`` holds
    ``ptbxl_database.csv``, ``scp_statements.csv`` and ``records500/`` (or ``records100/`` for ``fs=100``)."""

    name = "ptbxl"
    title = "PTB-XL"
    source = "https://physionet.org/content/ptb-xl/1.0.3/"
    physionet = "ptb-xl/1.0.3"
    tasks = {
        "all": TaskInfo("all", "multilabel", "every SCP-ECG statement of the record"),
        "diagnostic": TaskInfo("diagnostic", "multilabel", "the diagnostic SCP-ECG statements (44)"),
        "subdiagnostic": TaskInfo("subdiagnostic", "multilabel", "diagnostic subclasses of the statements (23)"),
        "superdiagnostic": TaskInfo(
            "superdiagnostic", "multilabel", "diagnostic superclasses of the statements: NORM, MI, STTC, CD, HYP"
        ),
        "form": TaskInfo("form", "multilabel", "the form SCP-ECG statements (19)"),
        "rhythm": TaskInfo("rhythm", "multilabel", "the rhythm SCP-ECG statements (12)"),
    }
    default_lead = "I"
    split_kind = "official"
    rates = (500.0, 100.0)

    @property
    def _records_folder(self) -> str:
        return "records500" if self.fs == 500.0 else "records100"

    def build_table(self) -> pd.DataFrame:
        path = self.root / "ptbxl_database.csv"
        if not path.is_file():
            raise self.missing("ptbxl_database.csv")
        frame = pd.read_csv(path)
        absent = [column for column in _COLUMNS if column not in frame.columns]
        if absent:
            raise self.missing(f"ptbxl_database.csv with the columns {', '.join(absent)}")
        if not (self.root / self._records_folder).is_dir():
            other = "fs=100 for records100/" if self.fs == 500.0 else "fs=500 for records500/"
            raise self.missing(f"{self._records_folder}/ (the {self.fs:g} Hz records; pass {other})")
        fs = float(self.fs or self.rates[0])
        ecg_id = frame["ecg_id"].astype(int).astype(str)
        patient = [
            str(int(value)) if pd.notna(value) else f"ecg{record}" for value, record in zip(frame["patient_id"], ecg_id)
        ]
        table = pd.DataFrame(
            {
                "record": ecg_id,
                "patient": patient,
                "split": [fold_split(fold) for fold in frame["strat_fold"]],
                "fs": fs,
                "n_samples": int(round(RECORD_SECONDS * fs)),
                "leads": [STANDARD_LEADS] * len(frame),
                "age": frame["age"].astype(float),
                "sex": [_SEX.get(int(value)) if pd.notna(value) else None for value in frame["sex"]],
                "strat_fold": frame["strat_fold"],
                "scp_codes": [_codes(text) for text in frame["scp_codes"]],
                "filename": frame["filename_hr" if fs == 500.0 else "filename_lr"].astype(str),
            }
        )
        return table

    @cached_property
    def statements(self) -> pd.DataFrame:
        """``scp_statements.csv`` indexed by statement code (``diagnostic``, ``form``, ``rhythm``,
        ``diagnostic_class``, ``diagnostic_subclass``, ...)."""
        path = self.root / "scp_statements.csv"
        if not path.is_file():
            raise self.missing("scp_statements.csv")
        frame = pd.read_csv(path, index_col=0)
        absent = [
            c for c in ("diagnostic", "form", "rhythm", "diagnostic_class", "diagnostic_subclass") if c not in frame
        ]
        if absent:
            raise self.missing(f"scp_statements.csv with the columns {', '.join(absent)}")
        frame.index = frame.index.astype(str)
        return frame

    def labeller(self, task: str) -> Callable[[dict[str, float]], set[str]]:
        """The labels of a task for one record's ``scp_codes`` (see the module docstring)."""
        if task == "all":
            return lambda codes: set(codes)
        statements = self.statements
        flag = "diagnostic" if task in ("diagnostic", "subdiagnostic", "superdiagnostic") else task
        flagged = statements[statements[flag] == 1.0]
        if task in ("diagnostic", "form", "rhythm"):
            chosen = frozenset(flagged.index)
            return lambda codes: {code for code in codes if code in chosen}
        column = "diagnostic_subclass" if task == "subdiagnostic" else "diagnostic_class"
        mapped = {code: str(value) for code, value in flagged[column].items() if pd.notna(value)}
        return lambda codes: {mapped[code] for code in codes if code in mapped}

    @cached_property
    def _position(self) -> dict[str, int]:
        return {record: position for position, record in enumerate(self.table["record"])}

    def _lead(self, record: str, filename: str, lead: str | int) -> ArraySignal:
        index = select_channel(
            STANDARD_LEADS, canonical_lead(lead) if isinstance(lead, str) else lead, f"record {record}", kind="lead"
        )
        path = self.root / filename
        for suffix in (".hea", ".dat"):
            if not path.with_name(path.name + suffix).is_file():
                raise self.missing(f"{filename}{suffix} (record {record} of ptbxl_database.csv)")
        name = STANDARD_LEADS[index]
        fs = float(self.fs or self.rates[0])
        n_samples = int(round(RECORD_SECONDS * fs))
        return ArraySignal(partial(read_wfdb_lead, path, name), n_samples, fs, f"{record} lead {name}")

    def open_signal(self, record: str, lead: str | int) -> object:
        return self._lead(record, self.table["filename"].iat[self._position[record]], lead)

    def task_labels(self, task: str, lead: str | int) -> tuple[list[object], pd.Series | pd.DataFrame, pd.Series]:
        label = self.labeller(task)
        sets = [label(codes) for codes in self.table["scp_codes"]]
        keep = np.asarray([bool(labels) for labels in sets])
        table = self.table[keep]
        kept = [labels for labels, kept in zip(sets, keep) if kept]
        columns = sorted(set().union(*kept)) if kept else []
        position = {name: i for i, name in enumerate(columns)}
        values = np.zeros((len(kept), len(columns)), dtype=np.int64)
        for row, labels in enumerate(kept):
            values[row, [position[name] for name in labels]] = 1
        records = table["record"]
        y = pd.DataFrame(values, index=pd.Index(records, name="record"), columns=columns)
        X: list[object] = [self._lead(row.record, row.filename, lead) for row in table.itertuples(index=False)]
        return X, y, pd.Series(records.to_numpy())
