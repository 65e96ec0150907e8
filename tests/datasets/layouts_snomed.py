"""Small copies of the Challenge 2021 and Chapman-Shaoxing-Ningbo layouts, built from real recordings.

Each record is a real recording of ``../shared/data`` (a LUDB record, 500 Hz 10 s 12-lead, or a 60 s excerpt of
MIT-BIH record 100, 360 Hz, MLII and V5) written as those datasets publish theirs: ``<name>.mat``, a MATLAB v4
matrix ``val`` (n_leads, n_samples) of the record's own digital samples (int16, column-major, so the data start at
byte 24: WFDB format ``16+24``), and a ``<name>.hea`` that points at it, with the real gains and baselines and the
``Age``/``Sex``/``Dx`` comment lines in each dataset's spelling. The ``Dx`` codes are real SNOMED CT codes of the
Challenge's ``dx_mapping_*.csv`` chosen to agree with each LUDB record's own rhythm and diagnoses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: lead names as the Challenge and Chapman headers spell them
LEADS_12 = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")


@dataclass(frozen=True)
class Spec:
    """One record to write: its path under the dataset root (no suffix), the real recording it holds, and the
    ``Dx`` codes of its header (None: no ``Dx`` line)."""

    path: str
    source: str  # "ludb/<n>" or "mitdb/100"
    dx: tuple[str, ...] | None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


# LUDB record -> its rhythm and diagnoses (ludb.csv) -> SNOMED CT codes (dx_mapping_scored/unscored.csv)
CHALLENGE_SPECS = (
    # LUDB 2: sinus rhythm; left ventricular hypertrophy (LVH, unscored)
    Spec("training/cpsc_2018/g1/A0001", "ludb/2", ("426783006", "164873001")),
    # LUDB 10: sinus rhythm, complete right bundle branch block, written as "right bundle branch block"
    Spec("training/cpsc_2018/g1/A0002", "ludb/10", ("426783006", "59118001")),
    # LUDB 8: atrial fibrillation
    Spec("training/cpsc_2018/g1/A0003", "ludb/8", ("164889003",)),
    # LUDB 108: irregular sinus rhythm, left axis deviation, complete RBBB, left anterior hemiblock, PACs
    Spec("training/cpsc_2018/g1/A0004", "ludb/108", ("427393009", "39732003", "713427006", "445118002", "284470004")),
    # LUDB 35: typical atrial flutter; right ventricular hypertrophy (unscored)
    Spec("training/georgia/g1/E00001", "ludb/35", ("164890007", "89792004")),
    # LUDB 70: sinus tachycardia, incomplete right bundle branch block
    Spec("training/georgia/g1/E00002", "ludb/70", ("427084000", "713426002")),
    # LUDB 1: a header without a Dx line
    Spec("training/georgia/g1/E00003", "ludb/1", None),
    # LUDB 24: sinus bradycardia, complete left bundle branch block
    Spec("training/chapman_shaoxing/g1/JS00001", "ludb/24", ("426177001", "733534002")),
    # LUDB 44: atrial fibrillation, complete LBBB written as "left bundle branch block" (the merged class)
    Spec("training/chapman_shaoxing/g1/JS00002", "ludb/44", ("164889003", "164909002")),
    # LUDB 3 with its hypertrophies only (left atrial, left ventricular: unscored): a row of zeros when scored
    Spec("training/chapman_shaoxing/g1/JS00003", "ludb/3", ("446813000", "164873001")),
    # MIT-BIH 100, first 60 s: sinus rhythm with atrial and ventricular premature beats
    Spec("training/mitdb/g1/M100", "mitdb/100", ("426783006", "284470004", "427172004")),
)

CHAPMAN_SPECS = (
    # LUDB 1: sinus bradycardia, left axis deviation, LVH -> SB
    Spec("WFDBRecords/01/010/JS00001", "ludb/1", ("426177001", "39732003", "164873001")),
    # LUDB 8: atrial fibrillation -> AFIB
    Spec("WFDBRecords/01/010/JS00002", "ludb/8", ("164889003",)),
    # LUDB 35: atrial flutter -> AFIB
    Spec("WFDBRecords/01/010/JS00003", "ludb/35", ("164890007", "89792004")),
    # LUDB 70: sinus tachycardia, incomplete RBBB -> GSVT
    Spec("WFDBRecords/01/010/JS00004", "ludb/70", ("427084000", "713426002")),
    # LUDB 2: sinus rhythm -> SR
    Spec("WFDBRecords/01/010/JS00005", "ludb/2", ("426783006", "164873001")),
    # LUDB 22: sinus arrhythmia (sinus irregularity), incomplete RBBB, PACs -> SR
    Spec("WFDBRecords/01/010/JS00006", "ludb/22", ("427393009", "713426002", "284470004")),
    # LUDB 24: sinus bradycardia with sinus arrhythmia: two groups -> no rhythm label
    Spec("WFDBRecords/01/011/JS00007", "ludb/24", ("426177001", "427393009", "733534002")),
    # LUDB 10: right bundle branch block, no rhythm code -> no rhythm label
    Spec("WFDBRecords/01/011/JS00008", "ludb/10", ("59118001",)),
)


def source_record(data_dir: Path, source: str) -> tuple[str, int | None]:
    """The WFDB record path of a spec's recording and how many samples of it to take (None: all)."""
    kind, number = source.split("/")
    if kind == "ludb":
        return str(data_dir / "ludb" / "data" / number), None
    return str(data_dir / "wfdb-sample" / number), 60 * 360


def _age_sex(comments: list[str]) -> tuple[str, str]:
    """Age and sex of a LUDB header (``#<age>: 51``, ``#<sex>: F``) or MIT-BIH's (``# 69 M 1085 1629 x1``)."""
    fields = {line.split(":")[0].strip(): line.split(":", 1)[1].strip() for line in comments if ":" in line}
    if "<age>" in fields:
        return fields["<age>"], {"F": "Female", "M": "Male"}[fields["<sex>"]]
    age, sex = next(line.split()[:2] for line in comments if re.match(r"^\d+ [FM] ", line))
    return age, {"F": "Female", "M": "Male"}[sex]


def _checksum(column: np.ndarray) -> int:
    total = int(column.astype(np.int64).sum()) & 0xFFFF
    return total - 0x10000 if total >= 0x8000 else total


def write_record(root: Path, spec: Spec, data_dir: Path, *, style: str) -> Path:
    """Write one record (``.mat`` + ``.hea``) under ``root``; ``style`` is ``"challenge"`` (``# Age: 74``, a date on
    the record line) or ``"chapman"`` (``#Age: 85``). Returns the header path."""
    import scipy.io
    import wfdb

    record_path, sampto = source_record(data_dir, spec.source)
    record = wfdb.rdrecord(record_path, sampto=sampto, physical=False)
    digital = np.asarray(record.d_signal, dtype=np.int16)  # (n_samples, n_leads): the record's own samples
    leads = LEADS_12 if record.n_sig == 12 else tuple(record.sig_name)
    folder = root / Path(spec.path).parent
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(folder / f"{spec.name}.mat", {"val": digital.T}, format="4")
    date = " 05-Feb-2020 11:39:16" if style == "challenge" else ""
    lines = [f"{spec.name} {record.n_sig} {record.fs:g} {digital.shape[0]}{date}"]
    for channel, lead in enumerate(leads):
        gain, baseline = record.adc_gain[channel], record.baseline[channel]
        column = digital[:, channel]
        lines.append(f"{spec.name}.mat 16+24 {gain:g}({baseline})/mV 16 0 {column[0]} {_checksum(column)} 0 {lead}")
    age, sex = _age_sex(record.comments)
    mark = "# " if style == "challenge" else "#"
    lines += [f"{mark}Age: {age}", f"{mark}Sex: {sex}"]
    if spec.dx is not None:
        lines.append(f"{mark}Dx: {','.join(spec.dx)}")
    lines += [f"{mark}Rx: Unknown", f"{mark}Hx: Unknown", f"{mark}Sx: Unknown"]
    header = folder / f"{spec.name}.hea"
    header.write_text("\n".join(lines) + "\n")
    return header


def write_layout(root: Path, specs: tuple[Spec, ...], data_dir: Path, *, style: str) -> Path:
    """Write every record of ``specs`` under ``root`` and return ``root``."""
    for spec in specs:
        write_record(root, spec, data_dir, style=style)
    return root


def read_weights_classes(label_maps: Path) -> tuple[list[tuple[str, ...]], list[str]]:
    """The scored classes as the Challenge's own files give them: each column's SNOMED codes (``weights.csv``) and
    label (``weights_abbreviations.csv``), in column order."""
    codes = (label_maps / "weights.csv").read_text().splitlines()[0].split(",")[1:]
    labels = (label_maps / "weights_abbreviations.csv").read_text().splitlines()[0].split(",")[1:]
    return [tuple(column.split("|")) for column in codes], labels


def expected_scored(dx: tuple[str, ...], label_maps: Path) -> set[str]:
    """The scored labels of a record's codes, from ``weights.csv`` and ``weights_abbreviations.csv`` directly."""
    codes, labels = read_weights_classes(label_maps)
    return {label for column, label in zip(codes, labels) if set(column) & set(dx)}
