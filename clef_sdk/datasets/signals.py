"""Lazy one-lead signals for dataset readers: read on slicing, never a whole dataset (or record) in memory.

Every signal here is a 1-D array-like (``shape``, ``dtype``, ``ndim``, ``len``, slicing) that carries its own
``fs`` in Hz, so [`clef_sdk.embed`][clef_sdk.embed], [`clef_sdk.fit_probe`][clef_sdk.fit_probe] and ``clef_sdk.train.finetune`` take a list of
them with ``fs=None``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import RecordingError
from ..io import WfdbSignal, canonical_lead, select_channel

__all__ = ["ArraySignal", "HeaderInfo", "LazySignal", "SignalSlice", "open_wfdb_lead", "read_header", "read_wfdb_lead"]


class LazySignal:
    """The base of the lazy signals: ``shape``, ``dtype``, ``ndim``, ``len``, ``fs`` (Hz) and slicing, which reads
    only the samples asked for through `read`."""

    def __init__(self, n_samples: int, fs: float):
        self.fs = float(fs)
        self.shape = (int(n_samples),)
        self.dtype = np.dtype(np.float64)
        self.ndim = 1

    def __len__(self) -> int:
        return self.shape[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start:stop`` (``0 <= start < stop <= len``) as float64."""
        raise NotImplementedError

    def __getitem__(self, index: slice) -> np.ndarray:
        if not isinstance(index, slice):
            raise TypeError(f"{type(self).__name__} supports slices only, e.g. signal[0:5000]")
        start, stop, step = index.indices(self.shape[0])
        if stop <= start:
            return np.empty(0)
        values = np.asarray(self.read(start, stop), dtype=np.float64)
        if values.shape != (stop - start,):
            raise RecordingError(f"{self!r}: read {values.shape[0]} samples of {start}-{stop} (a truncated file?)")
        return values[::step]


class SignalSlice(LazySignal):
    """Samples ``start:stop`` of a sliceable signal, itself sliceable; ``fs`` is the signal's (Hz).

    A 10 s window of a 30 min MIT-BIH record is ``SignalSlice(WfdbSignal("100"), 3600, 7200)``: only those
    samples are ever read.
    """

    def __init__(self, signal: object, start: int, stop: int, fs: float | None = None):
        length = int(getattr(signal, "shape", (len(signal),))[0])  # type: ignore[arg-type]
        if not 0 <= start < stop <= length:
            raise ValueError(f"samples {start}:{stop} are outside the signal's 0:{length}")
        rate = fs if fs is not None else getattr(signal, "fs", None)
        if rate is None:
            raise ValueError("pass fs (Hz): the signal does not carry its own rate")
        super().__init__(stop - start, rate)
        self.signal = signal
        self.start = int(start)
        self.stop = int(stop)

    def __repr__(self) -> str:
        return f"SignalSlice({self.signal!r}, {self.start}, {self.stop})"

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.signal[self.start + start : self.start + stop]  # type: ignore[index]


class ArraySignal(LazySignal):
    """One lead held in a file that is read whole when sliced (a compressed ``.npz``, a MATLAB ``.mat``).

    ``load`` returns the lead ``(n_samples,)``; it is called on each slice and the result is not kept, so a
    list of thousands of these holds no samples.
    """

    def __init__(self, load: Callable[[], np.ndarray], n_samples: int, fs: float, name: str):
        super().__init__(n_samples, fs)
        self._load = load
        self.name = name

    def __repr__(self) -> str:
        return f"ArraySignal({self.name!r}, n_samples={self.shape[0]}, fs={self.fs:g})"

    def read(self, start: int, stop: int) -> np.ndarray:
        values = np.asarray(self._load(), dtype=np.float64)
        if values.shape != self.shape:
            raise RecordingError(f"{self.name}: read {values.shape[0]} samples, the index says {self.shape[0]}")
        return values[start:stop]


def open_wfdb_lead(record: str | os.PathLike[str], lead: str | int | None) -> WfdbSignal:
    """One lead of a WFDB record, chosen by canonical name (``"I"``, ``"aVF"``; ``"MLII"`` is lead II), a name as
    the header spells it, or a 0-based index; ``None`` takes the first."""
    path = Path(record)
    if not path.with_suffix(".hea").is_file() and not Path(f"{path}.hea").is_file():
        raise RecordingError(f"record {path} not found: no {path.name}.hea in {path.parent}")
    if isinstance(lead, str):
        signal = WfdbSignal(record)
        names = [canonical_lead(name) for name in signal.leads]
        wanted = canonical_lead(lead)
        if wanted in names:
            return WfdbSignal(record, names.index(wanted))
        select_channel(signal.leads, lead, str(record), kind="lead")  # raises, naming the leads it has
    return WfdbSignal(record, lead)


def read_wfdb_lead(record: str | os.PathLike[str], lead: str | int | None) -> np.ndarray:
    """One whole lead of a (short) WFDB record, ``(n_samples,)`` float64: the loader of an `ArraySignal`
    over a record (``functools.partial(read_wfdb_lead, path, "I")`` pickles, so DataLoader workers can take it)."""
    signal = open_wfdb_lead(record, lead)
    return signal[0 : signal.shape[0]]


@dataclass(frozen=True)
class HeaderInfo:
    """What a dataset table needs from a WFDB header: rate (Hz), length (samples), lead names, comments."""

    fs: float
    n_samples: int
    leads: tuple[str, ...]
    comments: tuple[str, ...]


def read_header(path: str | os.PathLike[str]) -> HeaderInfo:
    """Read a single-segment WFDB header (``.hea``) without ``wfdb``: the record line, the signal lines' lead
    names (canonical spelling), and the ``#`` comment lines.

    About 100 times faster than ``wfdb.rdheader`` (5 ms a header on the CI machine, most of it import-level
    machinery), which matters for tables of 10^4 to 10^5 records; signals are still read by ``wfdb``.
    """
    header = Path(path)
    if header.suffix != ".hea":
        header = header.with_name(header.name + ".hea")
    try:
        text = header.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise RecordingError(f"cannot read WFDB header {header}: {exc}") from None
    lines = [line.strip() for line in text.splitlines()]
    comments = tuple(line[1:].strip() for line in lines if line.startswith("#"))
    fields = [line.split() for line in lines if line and not line.startswith("#")]
    try:
        record = fields[0]
        n_signals = int(record[1])
        fs = float(record[2].split("/")[0]) if len(record) > 2 else 250.0  # WFDB's default rate
        n_samples = int(record[3]) if len(record) > 3 else 0
        if "/" in record[0] or n_signals < 0 or len(fields) < 1 + n_signals:
            raise ValueError
    except (IndexError, ValueError):
        raise RecordingError(f"{header} is not a single-segment WFDB header") from None
    leads = tuple(
        canonical_lead(" ".join(line[8:])) if len(line) > 8 else str(i)
        for i, line in enumerate(fields[1 : 1 + n_signals])
    )
    return HeaderInfo(fs, n_samples, leads, comments)
