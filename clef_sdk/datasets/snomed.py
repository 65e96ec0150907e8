"""The 26 scored classes of the PhysioNet/CinC Challenge 2020/2021, as SNOMED CT codes (facts, no files needed).

Records of the Challenge (and of the Chapman-Shaoxing-Ningbo database it drew on) list their diagnoses as SNOMED CT
codes on a ``# Dx:`` header line. The Challenge scored 26 classes; four of them merge two codes it scores as the
same diagnosis (complete and plain left bundle branch block, complete and plain right bundle branch block,
premature atrial contraction and supraventricular premature beats, premature ventricular contractions and
ventricular premature beats). The table below is that of the Challenge's ``weights.csv`` (column order and
equivalences), ``weights_abbreviations.csv`` (labels) and ``dx_mapping_scored.csv`` (names), as published in
``physionetchallenges/evaluation-2021`` (BSD 2-Clause). Cite Reyna MA et al., Computing in Cardiology 48 (2021).

A class's label is its abbreviation, or for a merged class the two joined by ``|`` (``"CRBBB|RBBB"``), as
``weights_abbreviations.csv`` names the columns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["LABEL_OF_CODE", "SCORED_CLASSES", "SCORED_LABELS", "ScoredClass", "scored_frame", "scored_labels"]


@dataclass(frozen=True)
class ScoredClass:
    """One scored class: its SNOMED CT code(s) and, for each code, the abbreviation and name the Challenge uses."""

    codes: tuple[str, ...]
    abbreviations: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def label(self) -> str:
        """The column name: the abbreviations joined by ``|`` (``"AF"``, ``"CLBBB|LBBB"``)."""
        return "|".join(self.abbreviations)


def _one(code: str, abbreviation: str, name: str) -> ScoredClass:
    return ScoredClass((code,), (abbreviation,), (name,))


#: The 26 scored classes in the column order of the Challenge's ``weights.csv`` (alphabetical by label).
SCORED_CLASSES: tuple[ScoredClass, ...] = (
    _one("164889003", "AF", "atrial fibrillation"),
    _one("164890007", "AFL", "atrial flutter"),
    _one("6374002", "BBB", "bundle branch block"),
    _one("426627000", "Brady", "bradycardia"),
    ScoredClass(
        ("733534002", "164909002"),
        ("CLBBB", "LBBB"),
        ("complete left bundle branch block", "left bundle branch block"),
    ),
    ScoredClass(
        ("713427006", "59118001"),
        ("CRBBB", "RBBB"),
        ("complete right bundle branch block", "right bundle branch block"),
    ),
    _one("270492004", "IAVB", "1st degree av block"),
    _one("713426002", "IRBBB", "incomplete right bundle branch block"),
    _one("39732003", "LAD", "left axis deviation"),
    _one("445118002", "LAnFB", "left anterior fascicular block"),
    _one("164947007", "LPR", "prolonged pr interval"),
    _one("251146004", "LQRSV", "low qrs voltages"),
    _one("111975006", "LQT", "prolonged qt interval"),
    _one("698252002", "NSIVCB", "nonspecific intraventricular conduction disorder"),
    _one("426783006", "NSR", "sinus rhythm"),
    ScoredClass(
        ("284470004", "63593006"),
        ("PAC", "SVPB"),
        ("premature atrial contraction", "supraventricular premature beats"),
    ),
    _one("10370003", "PR", "pacing rhythm"),
    _one("365413008", "PRWP", "poor R wave Progression"),
    ScoredClass(
        ("427172004", "17338001"),
        ("PVC", "VPB"),
        ("premature ventricular contractions", "ventricular premature beats"),
    ),
    _one("164917005", "QAb", "qwave abnormal"),
    _one("47665007", "RAD", "right axis deviation"),
    _one("427393009", "SA", "sinus arrhythmia"),
    _one("426177001", "SB", "sinus bradycardia"),
    _one("427084000", "STach", "sinus tachycardia"),
    _one("164934002", "TAb", "t wave abnormal"),
    _one("59931005", "TInv", "t wave inversion"),
)

#: The column names of the scored task, in `SCORED_CLASSES` order.
SCORED_LABELS: tuple[str, ...] = tuple(scored.label for scored in SCORED_CLASSES)

#: Every scored SNOMED CT code -> the label of its class (both codes of a merged class map to one label).
LABEL_OF_CODE: dict[str, str] = {code: scored.label for scored in SCORED_CLASSES for code in scored.codes}


def scored_labels(codes: Iterable[str]) -> list[str]:
    """The scored classes among a record's SNOMED CT codes, as labels in `SCORED_LABELS` order (codes the
    Challenge does not score are ignored)."""
    present = {LABEL_OF_CODE[code.strip()] for code in codes if code.strip() in LABEL_OF_CODE}
    return [label for label in SCORED_LABELS if label in present]


def scored_frame(dx: Sequence[Iterable[str]], index: pd.Index) -> pd.DataFrame:
    """The multi-hot table of the scored task: one 0/1 int64 column per label of `SCORED_LABELS`.

    Args:
        dx: each record's SNOMED CT codes, ``(n_records,)`` sequences of strings.
        index: the row index (one entry per record).

    Returns:
        A DataFrame ``(n_records, 26)``; a record with no scored code is a row of zeros, as the Challenge scores it.
    """
    column = {label: position for position, label in enumerate(SCORED_LABELS)}
    values = np.zeros((len(dx), len(SCORED_LABELS)), dtype=np.int64)
    for row, codes in enumerate(dx):
        for label in scored_labels(codes):
            values[row, column[label]] = 1
    return pd.DataFrame(values, index=index, columns=list(SCORED_LABELS))
