"""Reading WFDB records of any folder layout for pretraining: discovery, lead names, units, header metadata.

A record is a ``.hea`` header with its signal file (``.dat``, ``.mat`` or any format ``wfdb`` reads) anywhere
under the source folder: MIMIC-IV-ECG's ``files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN``, LUDB's ``data/N``,
PhysioNet challenge folders. Its key is the path relative to the source folder without extension, as in the
authors' metadata CSV (column ``path``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "STANDARD_LEADS",
    "RecordSignals",
    "canonical_lead",
    "find_records",
    "header_demographics",
    "parse_leads",
    "read_record",
]

# The 12 standard leads in the usual order. Files order them differently (MIMIC-IV-ECG stores aVF before aVL),
# so leads are always matched by name, never by position.
STANDARD_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
_BY_FOLDED = {name.lower(): name for name in STANDARD_LEADS}
# Other spellings of the standard leads met in public data sets (MIT-BIH's modified limb lead "MLII" is
# recorded like lead II).
_ALIASES = {"mli": "I", "mlii": "II", "mliii": "III", "avr": "aVR", "avl": "aVL", "avf": "aVF"}
_UNITS_PER_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3, "nv": 1e-6}


def canonical_lead(name: str) -> str:
    """A lead name in canonical spelling: ``"avf"``, ``"AVF"``, ``"lead aVF"`` -> ``"aVF"``; ``"MLII"`` ->
    ``"II"``; names outside the 12 standard leads come back stripped, case kept."""
    text = re.sub(r"^lead[\s_-]*", "", name.strip(), flags=re.IGNORECASE)
    folded = text.lower()
    return _BY_FOLDED.get(folded) or _ALIASES.get(folded) or text


def parse_leads(leads: str | Sequence[str] | None) -> tuple[str, ...]:
    """Requested leads as canonical names: ``"I,II,V1"``, a sequence, or ``None`` for the 12 standard leads."""
    if leads is None:
        return STANDARD_LEADS
    names = [part for part in (leads.split(",") if isinstance(leads, str) else leads)]
    canonical = tuple(canonical_lead(str(n)) for n in names if str(n).strip())
    if not canonical:
        raise ValueError("no leads requested: pass names such as 'I,II,V1' (or nothing for the 12 standard leads)")
    if len(set(canonical)) != len(canonical):
        raise ValueError(f"a lead is requested twice: {', '.join(canonical)}")
    return canonical


def find_records(source: str | os.PathLike[str]) -> list[str]:
    """Every record under ``source``: header paths relative to it, without ``.hea``, sorted (posix style)."""
    root = Path(source)
    if not root.is_dir():
        raise FileNotFoundError(f"source folder not found: {root}; pass the folder that holds the WFDB records")
    found = []
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".hea"):
                found.append((Path(folder) / name[:-4]).relative_to(root).as_posix())
    return sorted(found)


@dataclass
class RecordSignals:
    """One record's requested leads: ``signals`` ``(n_leads, n_samples)`` float64 in mV (a NaN row where the
    record lacks the lead), ``fs`` in Hz, header demographics and notes for the preparation report."""

    signals: np.ndarray
    fs: float
    present: np.ndarray  # (n_leads,) bool: the record has this lead
    names: list[str] = field(default_factory=list)  # every lead of the record, canonical spelling
    age: float = float("nan")
    sex: str | None = None
    notes: list[str] = field(default_factory=list)


def header_demographics(comments: Sequence[str]) -> tuple[float, str | None]:
    """Age (years, NaN if absent) and sex ("male"/"female"/None) from WFDB header comments.

    Reads PhysioNet challenge style (``# Age: 54``, ``# Sex: Male``) and LUDB style (``#<age>: 51``, ``#<sex>: F``).
    """
    age, sex = float("nan"), None
    for line in comments:
        match = re.match(r"^\s*<?\s*(age|sex|gender)\s*>?\s*:\s*(.*?)\s*$", line, flags=re.IGNORECASE)
        if not match:
            continue
        key, value = match.group(1).lower(), match.group(2)
        if key == "age":
            number = re.match(r"^(\d+(?:\.\d+)?)", value)
            age = float(number.group(1)) if number else float("nan")
        else:
            folded = value.strip().lower()
            sex = "male" if folded in ("m", "male", "man") else "female" if folded in ("f", "female", "woman") else None
    return age, sex


def read_record(source: str | os.PathLike[str], record: str, leads: Sequence[str]) -> RecordSignals:
    """Read ``leads`` (canonical names) of ``record`` under ``source`` in mV; raises on an unreadable record."""
    import wfdb

    data = wfdb.rdrecord(str(Path(source) / record))
    if data.p_signal is None:
        raise ValueError("the record holds no physical signal")
    names = [canonical_lead(n) for n in (data.sig_name or [])]
    signals = np.full((len(leads), data.p_signal.shape[0]), np.nan)
    present = np.zeros(len(leads), dtype=bool)
    notes: list[str] = []
    for row, lead in enumerate(leads):
        if lead not in names:
            continue
        channel = names.index(lead)
        unit = (data.units[channel] if data.units else "mV") or "mV"
        per_mv = _UNITS_PER_MV.get(unit.strip().lower())
        if per_mv is None:
            notes.append(f"lead {lead}: unit {unit!r} unknown, taken as mV")
            per_mv = 1.0
        signals[row] = data.p_signal[:, channel] * per_mv
        present[row] = True
    age, sex = header_demographics(data.comments or [])
    return RecordSignals(signals, float(data.fs), present, names, age, sex, notes)
