"""Files -> signals: ``.npy``, CSV/TXT/TSV and WFDB records, with one way of choosing a lead or column.

Used by the ``clef`` command, `WfdbSignal` users and ``clef_sdk.train``. Long recordings are never loaded
whole: a ``.npy`` is memory-mapped and a WFDB record read a stretch at a time (`WfdbSignal`).

WFDB records of any folder layout (for pretraining and datasets): a record is a ``.hea`` header with its signal
file (``.dat``, ``.mat`` or any format ``wfdb`` reads) anywhere under a source folder: MIMIC-IV-ECG's
``files/pNNNN/pNNNNNNNN/sNNNNNNNN/NNNNNNNN``, LUDB's ``data/N``, PhysioNet challenge folders. Its key is the path
relative to the source folder without extension, as in the authors' metadata CSV (column ``path``). Leads are
matched by canonical name (`canonical_lead`), units converted to mV, demographics read from the header.
"""

from __future__ import annotations

import array
import csv
import itertools
import math
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ._optional import require
from .errors import RecordingError

__all__ = [
    "STANDARD_LEADS",
    "TEXT_SUFFIXES",
    "RecordSignals",
    "WfdbSignal",
    "canonical_lead",
    "find_records",
    "header_demographics",
    "parse_leads",
    "read_record",
    "read_recording",
    "read_text_column",
    "select_channel",
    "wfdb_record_name",
]

TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
_MISSING_CELLS = ("", "nan", "na", "null")


def select_channel(names: Sequence[str], choice: str | int | None, source: str, *, kind: str = "column") -> int:
    """The index of ``choice`` among ``names``: a name (exact, else case-insensitive) or a 0-based index (an int or
    a string of digits; negative counts from the end). ``None`` is allowed only when there is one channel."""
    names = list(names)
    if choice is None:
        if len(names) == 1:
            return 0
        raise RecordingError(
            f"{source} has {len(names)} {kind}s ({_shown(names)}); choose one by name or 0-based index "
            f"(--column on the command line)"
        )
    if isinstance(choice, str):
        if choice in names:
            return names.index(choice)
        lowered = [name.lower() for name in names]
        if choice.lower() in lowered:
            return lowered.index(choice.lower())
        if choice.lstrip("-").isdigit():
            choice = int(choice)
    if isinstance(choice, (int, np.integer)) and not isinstance(choice, bool):
        if -len(names) <= choice < len(names):
            return int(choice) % len(names)
        raise RecordingError(f"{source} has {len(names)} {kind}s; {kind} index {choice} does not exist")
    raise RecordingError(
        f"{source} has no {kind} {str(choice)[:40]!r}; it has {_shown(names)} (or pass a 0-based index)"
    )


def wfdb_record_name(path: str | os.PathLike[str]) -> str:
    """The record name wfdb reads: the path without a ``.hea`` or ``.dat`` suffix."""
    name = os.fspath(path)
    return name[:-4] if name.endswith((".hea", ".dat")) else name


class WfdbSignal:
    """One lead of a WFDB record as a 1-D array-like that reads only the samples sliced, in physical units.

    ``WfdbSignal("data/100", "MLII")[:3600]`` reads the first 10 s of record 100. ``lead`` is a name or a 0-based
    index (default: the first signal). ``fs`` is the record's rate in Hz. Pass it to [`clef_sdk.embed`][clef_sdk.embed] like an
    array: long records are embedded without loading them whole. Needs ``wfdb`` (``pip install "clef-sdk[io]"``).
    """

    def __init__(self, record: str | os.PathLike[str], lead: str | int | None = None):
        wfdb = require("wfdb", "reading WFDB records")
        name = wfdb_record_name(record)
        try:
            header = wfdb.rdheader(name)
        except Exception as exc:  # wfdb raises many kinds of errors for missing or malformed headers
            raise RecordingError(f"cannot read WFDB record {name}: {exc}") from None
        names = list(header.sig_name or [str(i) for i in range(header.n_sig)])
        index = select_channel(names, 0 if lead is None else lead, name, kind="lead")
        if not header.sig_len:
            raise RecordingError(f"{name}: the header gives no signal length; read it with wfdb.rdrecord instead")
        self.record = name
        self.lead = names[index]
        self.leads = tuple(names)
        self.channel = index
        self.fs = float(header.fs)
        self.shape = (int(header.sig_len),)
        self.dtype = np.dtype(np.float64)
        self.ndim = 1

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"WfdbSignal({self.record!r}, lead={self.lead!r}, n_samples={self.shape[0]}, fs={self.fs:g})"

    def __getitem__(self, index: slice) -> np.ndarray:
        import wfdb

        if not isinstance(index, slice):
            raise TypeError("WfdbSignal supports slices only, e.g. signal[0:5000]")
        start, stop, step = index.indices(self.shape[0])
        if stop <= start:
            return np.empty(0)
        try:
            record = wfdb.rdrecord(self.record, sampfrom=start, sampto=stop, channels=[self.channel])
        except Exception as exc:  # wfdb raises many kinds of errors for truncated or corrupt files
            raise OSError(f"cannot read samples {start}-{stop} of WFDB record {self.record}: {exc}") from None
        return np.asarray(record.p_signal[:, 0], dtype=np.float64)[::step]


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _shown(names: Sequence[str], limit: int = 10) -> str:
    """Names for a message: the first ``limit``, then how many more (a wide header must not flood the screen)."""
    shown = ", ".join(name[:40] for name in names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _data_lines(handle: Iterable[str]) -> Iterator[str]:
    for line in handle:
        if line.strip() and not line.lstrip().startswith("#"):
            yield line.rstrip("\r\n")


def _cells(line: str, dialect: type[csv.Dialect] | csv.Dialect) -> list[str]:
    row = [cell.strip() for cell in next(csv.reader([line], dialect), [])]
    return [cell for cell in row if cell != ""] if dialect.delimiter == " " else row


def read_text_column(path: str | os.PathLike[str], column: str | int | None = None) -> np.ndarray:
    """One column of a delimited text file as float64 ``(n_rows,)``; empty and ``nan``/``na``/``null`` cells are NaN.

    The delimiter (comma, semicolon, tab or spaces) and a header row are detected from the first 20 rows; ``#``
    lines are comments. The file is read a line at a time: memory is 8 bytes per value, whatever the file's width.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return _read_column(path, handle, column)
    except UnicodeDecodeError as exc:
        raise RecordingError(
            f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); export the recording as CSV/TXT in UTF-8, "
            "or save it as .npy"
        ) from None


def _read_column(path: Path, handle: Iterable[str], column: str | int | None) -> np.ndarray:
    lines = _data_lines(handle)
    head = [line for _, line in zip(range(20), lines)]
    if not head:
        raise RecordingError(f"{path} has no data rows")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff("\n".join(head), delimiters=",;\t ")
    except csv.Error:
        dialect = csv.excel
    first = _cells(head[0], dialect)
    header = None if all(_is_number(cell) or cell == "" for cell in first) else first
    if header is not None:
        names = header
    else:
        names = [str(i) for i in range(max(len(_cells(line, dialect)) for line in head))]
    index = select_channel(names, column, str(path))
    values: array.array[float] = array.array("d")
    first_row = 2 if header is not None else 1  # rows numbered as a reader counts them: data rows from 1
    body = itertools.chain(head[1:] if header is not None else head, lines)
    for offset, line in enumerate(body):
        cells = _cells(line, dialect)
        cell = cells[index] if index < len(cells) else ""
        if cell.lower() in _MISSING_CELLS:
            values.append(math.nan)
            continue
        try:
            values.append(float(cell))
        except ValueError:
            raise RecordingError(f"{path}, row {first_row + offset}: {cell[:40]!r} is not a number") from None
    return np.frombuffer(values, dtype=np.float64).copy() if values else np.empty(0)


def _is_wfdb(path: Path) -> bool:
    return path.suffix in (".hea", ".dat") or path.with_suffix(".hea").is_file() or Path(f"{path}.hea").is_file()


def read_recording(
    path: str | os.PathLike[str], *, column: str | int | None = None
) -> tuple[np.ndarray | WfdbSignal, float | None]:
    """Read ``.npy``, ``.csv``/``.txt``/``.tsv`` (one column or ``column``) or a WFDB record (lead ``column``,
    default the first).

    Returns ``(signal, fs)``: ``fs`` in Hz from the header for WFDB records, otherwise ``None``. A ``.npy`` file may
    hold one recording ``(n_samples,)`` or several ``(n_records, n_samples)``; it is memory-mapped, and a WFDB
    record is returned as a `WfdbSignal`, so that long recordings are read block by block while embedding.
    """
    path = Path(path)
    if path.suffix == ".npy":
        if not path.is_file():
            raise FileNotFoundError(f"input file not found: {path}")
        try:
            loaded = np.load(path, allow_pickle=False, mmap_mode="r")
        except (ValueError, EOFError) as exc:  # not .npy, pickled objects, a truncated header
            raise RecordingError(f"{path} is not a plain numeric .npy array ({str(exc)[:200]})") from None
        return loaded, None
    if path.suffix in TEXT_SUFFIXES:
        if not path.is_file():
            raise FileNotFoundError(f"input file not found: {path}")
        return read_text_column(path, column), None
    if _is_wfdb(path):
        signal = WfdbSignal(path, column)
        return signal, signal.fs
    if not path.exists():
        raise FileNotFoundError(f"input file not found: {path}")
    raise RecordingError(f"unsupported input {path.name}: use .npy, .csv/.txt/.tsv or a WFDB record (.hea)")


# --------------------------------------------------------------------------------------------------------------
# WFDB records of any layout, several leads at a time

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
    names = list(leads.split(",") if isinstance(leads, str) else leads)
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
    wfdb = require("wfdb", "reading WFDB records")

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
