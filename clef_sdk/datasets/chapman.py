"""The Chapman-Shaoxing-Ningbo 12-lead ECG database (PhysioNet ``ecg-arrhythmia/1.0.0``).

10 s 12-lead records at 500 Hz from Chapman University, Shaoxing People's Hospital and Ningbo First Hospital.
Layout: ``WFDBRecords/<nn>/<nnn>/<name>.hea`` + ``<name>.mat`` (MATLAB v4, WFDB format ``16+24``),
``ConditionNames_SNOMED-CT.csv``, ``RECORDS``; headers carry ``#Age: 85``, ``#Sex: Male`` and
``#Dx: 164889003,59118001`` (SNOMED CT codes). Cite Zheng J et al., Scientific Data 7:48 (2020) and
Scientific Reports 10 (2020), and the PhysioNet release (doi:10.13026/wgex-er52).

The table is that of `.challenge2021` without ``source``: ``record`` (the record name), ``patient`` (the
record: no patient ids are published), ``age``, ``sex``, ``dx`` (the ``#Dx`` codes, None without any),
``filename``.

Tasks:

| task | kind | definition |
|---|---|---|
| ``scored`` | multi-label | the PhysioNet/CinC Challenge 2021's 26 scored classes (`.snomed`), equivalent codes merged; every record with ``#Dx`` codes |
| ``rhythm`` | multiclass | the four rhythm groups of Zheng et al. (2020), below; a record is labelled only when its codes fall in exactly one group |

Rhythm groups (Zheng et al., Sci Data 7:48, merging the database's 11 rhythms into 4), by SNOMED CT code as the
Challenge's ``dx_mapping_scored.csv`` / ``dx_mapping_unscored.csv`` name them:

- ``SB``: sinus bradycardia (426177001);
- ``AFIB``: atrial fibrillation (164889003), atrial flutter (164890007);
- ``GSVT``: supraventricular tachycardia (426761007), atrial tachycardia (713422000), atrioventricular node
  reentrant tachycardia (251166008), atrioventricular reentrant tachycardia (233897008), sinus atrium to atrial
  wandering rhythm (17366009), sinus tachycardia (427084000);
- ``SR``: sinus rhythm (426783006), sinus irregularity (sinus arrhythmia, 427393009).

Records with codes of two groups (e.g. sinus bradycardia with sinus arrhythmia) or of none are left out.

Split: none is published; [`pinned_split`][clef_sdk.datasets.splits.pinned_split] with 10% validation and 10% test records.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from .base import TaskInfo
from .challenge2021 import Challenge2021

__all__ = ["GROUP_OF_CODE", "RHYTHM_GROUPS", "Chapman", "rhythm_group"]

#: group -> the SNOMED CT codes of the rhythms Zheng et al. (2020) merged into it
RHYTHM_GROUPS: dict[str, tuple[str, ...]] = {
    "SB": ("426177001",),
    "AFIB": ("164889003", "164890007"),
    "GSVT": ("426761007", "713422000", "251166008", "233897008", "17366009", "427084000"),
    "SR": ("426783006", "427393009"),
}

#: SNOMED CT code -> its rhythm group
GROUP_OF_CODE: dict[str, str] = {code: group for group, codes in RHYTHM_GROUPS.items() for code in codes}


def rhythm_group(codes: tuple[str, ...] | list[str] | None) -> str | None:
    """The rhythm group of a record's SNOMED CT codes, or None where they fall in none or in several."""
    groups = {GROUP_OF_CODE[code] for code in codes or () if code in GROUP_OF_CODE}
    return groups.pop() if len(groups) == 1 else None


class Chapman(Challenge2021):
    """A local copy of the Chapman-Shaoxing-Ningbo database (``clef.datasets.open("chapman", root)``); ``root``
    holds ``WFDBRecords/`` (or is any folder tree of its ``.hea`` + ``.mat`` records)."""

    name = "chapman"
    title = "Chapman-Shaoxing-Ningbo ECG database"
    source = "https://physionet.org/content/ecg-arrhythmia/1.0.0/"
    physionet = "ecg-arrhythmia/1.0.0"
    tasks = {
        "scored": Challenge2021.tasks["scored"],
        "rhythm": TaskInfo("rhythm", "multiclass", "rhythm group of Zheng et al. 2020: SB, AFIB, GSVT or SR"),
    }
    rates = (500.0,)
    records_folder: ClassVar[str | None] = "WFDBRecords"

    def _layout(self) -> str:
        return "WFDBRecords/<nn>/<nnn>/<name>.hea + .mat"

    def _extra(self, filename: str) -> dict[str, object]:
        return {}

    def task_labels(self, task: str, lead: str | int) -> tuple[list[object], pd.Series | pd.DataFrame, pd.Series]:
        if task == "scored":
            return super().task_labels(task, lead)
        groups = np.asarray([rhythm_group(dx) for dx in self.table["dx"]], dtype=object)
        table = self.table[pd.notna(groups)]
        records = table["record"]
        y = pd.Series(groups[pd.notna(groups)], index=pd.Index(records, name="record"), name=task)
        return self._examples(table, lead), y, pd.Series(records.to_numpy())
