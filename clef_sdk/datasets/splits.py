"""Pinned patient-grouped splits for datasets without an official one: the same records on every machine.

A patient's place is decided by the SHA-256 of ``"clef-sdk:<dataset>:<patient>"``: patients are ranked by it
(within each stratum when strata are given) and the first ``test`` fraction of the ranking goes to ``"test"``, the
next ``val`` fraction to ``"val"``, the rest to ``"train"``. No random generator, no dependence on record order, on
the platform or on library versions; all of a patient's records share one split. `write_split` writes the
assignment out as a CSV that can be cited and read back.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..files import atomic_write_text

__all__ = ["SPLITS", "pinned_split", "read_split", "write_split"]

SPLITS = ("train", "val", "test")


def _rank_key(dataset: str, patient: object) -> str:
    return hashlib.sha256(f"clef-sdk:{dataset}:{patient}".encode()).hexdigest()


def _assign(patients: Sequence[object], dataset: str, val: float, test: float) -> dict[object, str]:
    ranked = sorted(patients, key=lambda patient: _rank_key(dataset, patient))
    n = len(ranked)
    n_test = int(round(test * n))
    n_val = int(round(val * n))
    if n >= 3:  # every part gets a patient once there are enough of them
        n_test = max(n_test, 1) if test > 0 else 0
        n_val = max(n_val, 1) if val > 0 else 0
    places = ["test"] * n_test + ["val"] * n_val + ["train"] * (n - n_test - n_val)
    return dict(zip(ranked, places))


def pinned_split(
    patients: Sequence[object] | pd.Series,
    dataset: str,
    *,
    val: float = 0.1,
    test: float = 0.1,
    strata: Sequence[object] | pd.Series | None = None,
) -> np.ndarray:
    """``"train"``, ``"val"`` or ``"test"`` for each record, from its patient.

    Args:
        patients: the patient of each record ``(n_records,)``.
        dataset: the dataset's name; part of the hash, so two datasets split independently.
        val: fraction of patients for validation.
        test: fraction of patients for testing.
        strata: optional class of each record (e.g. its rhythm): patients are ranked within each stratum (a
            patient's stratum is that of its first record), so every split keeps the class proportions.

    Returns:
        An object array ``(n_records,)`` of split names.
    """
    if not 0 <= val < 1 or not 0 <= test < 1 or val + test >= 1:
        raise ValueError(f"val={val} and test={test} must be fractions in [0, 1) that sum to less than 1")
    patient_list = [str(p) for p in patients]
    if strata is None:
        stratum_of = dict.fromkeys(patient_list, "")
    else:
        stratum_list = [str(s) for s in strata]
        if len(stratum_list) != len(patient_list):
            raise ValueError(f"got {len(stratum_list)} strata for {len(patient_list)} records")
        stratum_of = {}
        for patient, stratum in zip(patient_list, stratum_list):
            stratum_of.setdefault(patient, stratum)
    place: dict[object, str] = {}
    for stratum in sorted(set(stratum_of.values())):
        members = [p for p, s in stratum_of.items() if s == stratum]
        place.update(_assign(members, dataset, val, test))
    return np.asarray([place[p] for p in patient_list], dtype=object)


def write_split(table: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``record,patient,split`` of a dataset table as CSV (atomically) and return its path."""
    missing = {"record", "patient", "split"} - set(table.columns)
    if missing:
        raise ValueError(f"the table lacks column(s) {sorted(missing)}")
    target = Path(path)
    atomic_write_text(target, table[["record", "patient", "split"]].to_csv(index=False))
    return target


def read_split(path: str | os.PathLike[str]) -> pd.Series:
    """A split file written by `write_split`, as a Series of split names indexed by record."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if not {"record", "split"} <= set(frame.columns):
        raise ValueError(f"{path} is not a split file: it needs the columns record and split")
    unknown = sorted(set(frame["split"]) - set(SPLITS))
    if unknown:
        raise ValueError(f"{path}: unknown split name(s) {unknown}; expected {', '.join(SPLITS)}")
    return frame.set_index("record")["split"]
