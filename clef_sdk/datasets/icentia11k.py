"""Icentia11k, continuous single-lead ECG of 11,000 patients (PhysioNet ``icentia11k-continuous-ecg/1.0``).

Up to two weeks of a chest-mounted single-lead monitor per patient, 250 Hz, cut into up to 50 segments of about
70 min (1,048,577 samples), every beat annotated. Layout: ``pNN/pNNNNN/pNNNNN_sNN.hea`` + ``.dat`` + ``.atr``
(``p00/p00000/p00000_s00``: patients ``p00000`` to ``p00999`` in ``p00/``, and so on). In the ``.atr`` files each
beat is ``N`` (normal), ``S`` (premature atrial contraction), ``V`` (premature ventricular contraction) or ``Q``
(undefined, as in unlabelled or noisy stretches), each with the note ``"None"``; rhythm is marked by ``+``
annotations whose note opens an episode (``(N`` normal sinus rhythm, ``(AFIB`` atrial fibrillation, ``(AFL``
atrial flutter) or closes it (``)``); stretches outside any episode have no rhythm label. Cite Tan S et al.,
"Icentia11k Single Lead Continuous Raw Electrocardiogram Dataset" (version 1.0), PhysioNet (2022),
doi:10.13026/kk0v-r952, and Tan S et al., "Icentia11K: An Unsupervised Representation Learning Dataset for
Arrhythmia Subtype Discovery", Computing in Cardiology (2021).

The table has one row per segment (``record`` ``"p00000_s00"``, ``patient`` ``"p00000"``, ``segment``, ``path``).
Tasks are over 10 s windows on the segment's grid: window ``j`` is samples ``[2500 j, 2500 (j + 1))``, id
``"p00000_s00/0012"``. All windows of every segment would be some 2e8 examples, so each segment gives
``windows_per_segment`` of them (default 4), those at the centres of that many equal parts of the segment (``None``:
every window). ``clef.datasets.open("icentia11k", root)`` uses the default; construct
``Icentia11k(root, windows_per_segment=...)`` to choose. Annotations are read only when a task is first asked for
(`Icentia11k.windows`, then kept), by a reader of the ``.atr`` format six times faster than ``wfdb.rdann``:
about 10 ms a segment, some 1.5 h for the whole dataset's 540,000 segments.

| task | kind | definition |
|---|---|---|
| ``af`` | binary | 1: the window lies wholly in an atrial fibrillation or flutter episode; 0: wholly in normal sinus rhythm; other windows (mixed, unlabelled) left out |
| ``rhythm`` | multiclass | ``"N"``, ``"AFIB"`` or ``"AFL"``: the episode the window lies wholly in |
| ``pvc`` | binary | 1: the window holds a ``V`` beat; 0: its beats are all ``N`` (at least one); others left out |
| ``pac`` | binary | 1: the window holds an ``S`` beat; 0: its beats are all ``N`` (at least one); others left out |

Split: none is published; [`pinned_split`][clef_sdk.datasets.splits.pinned_split] by patient, 10% validation and 10% test,
so all segments (and windows) of a patient share one part.
"""

from __future__ import annotations

import itertools
import os
import re
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from .._optional import require
from ..errors import DatasetError, RecordingError
from ..io import canonical_lead
from .base import Dataset, TaskInfo
from .signals import LazySignal, SignalSlice, read_header
from .splits import pinned_split

__all__ = ["WINDOW_SECONDS", "Annotations", "Icentia11k", "SegmentSignal", "read_annotations"]

FS = 250.0
WINDOW_SECONDS = 10.0
_PATIENT_DIR = re.compile(r"^p\d{5}$")
_GROUP_DIR = re.compile(r"^p\d{2}$")
_SEGMENT = re.compile(r"^(p\d{5})_s(\d{2,})\.hea$")
#: WFDB annotation codes 1-41 (``label_store``) and their symbols; 0 and the codes above are not annotations
_SYMBOLS = (
    " ", "N", "L", "R", "a", "V", "F", "J", "A", "S", "E", "j", "/", "Q", "~", "", "|", "", "s", "T", "*", "D",
    '"', "=", "p", "B", "^", "t", "+", "u", "?", "!", "[", "]", "e", "n", "@", "x", "f", "(", ")", "r",
)  # fmt: skip
_BEATS = frozenset("NLRBaJASVrFejnE/fQ?")
_SKIP, _NUM, _SUB, _CHN, _AUX, _NOTE = 59, 60, 61, 62, 63, 22
#: rhythm notes of Icentia11k and the label each gives
_RHYTHMS = {"(N": "N", "(AFIB": "AFIB", "(AFL": "AFL"}
_COUNTED = ("N", "S", "V", "Q")


class Annotations:
    """The annotations of one ``.atr`` file: ``sample`` ``(n,)`` int64, ``symbol`` ``(n,)`` str, ``aux_note``
    (list of n str, ``""`` where none) — the fields of ``wfdb.rdann`` that the tasks need."""

    def __init__(self, sample: np.ndarray, symbol: np.ndarray, aux_note: list[str]):
        self.sample = sample
        self.symbol = symbol
        self.aux_note = aux_note


def read_annotations(path: str | os.PathLike[str]) -> Annotations:
    """Read a WFDB annotation file (``.atr``) about six times faster than ``wfdb.rdann``, with the same samples,
    symbols and notes (the file's definition notes at sample 0 left out, as ``wfdb`` does).

    The format: 16-bit little-endian words, a 6-bit code over a 10-bit time step; codes 59-63 are SKIP (a 32-bit
    step in the next two words, high word first), NUM, SUB, CHN and AUX (a note of the low byte's length in the
    following bytes, padded to a word) belonging to the annotation before them; a zero word ends the file.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise RecordingError(f"cannot read WFDB annotations {path}: {exc}") from None
    if len(raw) % 2:
        raw = raw[:-1]
    words = np.frombuffer(raw, dtype="<u2").tolist()
    samples: list[int] = []
    codes: list[int] = []
    notes: dict[int, str] = {}
    time = 0
    i, n = 0, len(words)
    ended = False
    while i < n:
        word = words[i]
        code, value = word >> 10, word & 0x3FF
        if code == 0 and value == 0:
            ended = True
            break
        if code == _SKIP:
            if i + 2 >= n:
                break
            step = (words[i + 1] << 16) | words[i + 2]
            time += step - (1 << 32) if step >= 1 << 31 else step
            i += 3
        elif code == _AUX:
            length = value & 0xFF
            if samples:
                start = 2 * (i + 1)
                notes[len(samples) - 1] = raw[start : start + length].decode("latin-1")
            i += 1 + (length + 1) // 2
        elif code in (_NUM, _SUB, _CHN):
            i += 1
        else:
            time += value
            samples.append(time)
            codes.append(code)
            i += 1
    if not ended:
        raise RecordingError(f"{path} is not a complete WFDB annotation file (no end mark: truncated?)")
    # as wfdb.rdann: code 0 is no annotation, and notes at sample 0 define the file (its rate, custom labels)
    kept = [k for k, (time, code) in enumerate(zip(samples, codes)) if code != 0 and not (time == 0 and code == _NOTE)]
    symbols = [_SYMBOLS[codes[k]] if codes[k] < len(_SYMBOLS) else "" for k in kept]
    return Annotations(
        np.asarray([samples[k] for k in kept], dtype=np.int64),
        np.asarray(symbols, dtype=str),
        [notes.get(k, "") for k in kept],
    )


class SegmentSignal(LazySignal):
    """The lead of one segment as a 1-D array-like read on slicing (only the samples sliced), ``fs`` in Hz.

    Its length and rate come from the table, so making one opens no file: a task's million windows cost no header
    reads. Needs ``wfdb``.
    """

    def __init__(self, record: str | os.PathLike[str], n_samples: int, fs: float):
        super().__init__(n_samples, fs)
        self.record = os.fspath(record)

    def __repr__(self) -> str:
        return f"SegmentSignal({self.record!r}, n_samples={self.shape[0]}, fs={self.fs:g})"

    def read(self, start: int, stop: int) -> np.ndarray:
        wfdb = require("wfdb", "reading Icentia11k segments")
        try:
            record = wfdb.rdrecord(self.record, sampfrom=start, sampto=stop, channels=[0])
        except Exception as exc:  # wfdb raises many kinds of errors for truncated or corrupt files
            raise OSError(f"cannot read samples {start}-{stop} of Icentia11k segment {self.record}: {exc}") from None
        return np.asarray(record.p_signal[:, 0], dtype=np.float64)


def _episodes(annotations: Annotations, n_samples: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Rhythm episodes ``[start, end)`` in samples, with their labels: a ``(...`` note opens one at its sample
    (closing the one open), ``)`` closes it there, and one still open at the end lasts to the segment's end."""
    starts: list[int] = []
    ends: list[int] = []
    labels: list[str] = []
    open_at: int | None = None
    label = ""
    for sample, note in zip(annotations.sample.tolist(), annotations.aux_note):
        text = note.strip("\x00 ")
        if not (text.startswith("(") or text == ")"):
            continue
        if open_at is not None:
            starts.append(open_at)
            ends.append(sample)
            labels.append(label)
            open_at = None
        if text.startswith("("):
            open_at, label = sample, _RHYTHMS.get(text, text[1:])
    if open_at is not None:
        starts.append(open_at)
        ends.append(max(n_samples, open_at))
        labels.append(label)
    return np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64), labels


def _window_indices(n_samples: int, length: int, per_segment: int | None) -> np.ndarray:
    """The grid windows a segment gives: all, or the one at the centre of each of ``per_segment`` equal parts."""
    n_windows = n_samples // length
    if per_segment is None or per_segment >= n_windows:
        return np.arange(n_windows, dtype=np.int64)
    return np.floor((np.arange(per_segment) + 0.5) * n_windows / per_segment).astype(np.int64)


def _window_features(
    annotations: Annotations, n_samples: int, indices: np.ndarray, length: int
) -> dict[str, np.ndarray | list[str]]:
    """Per window (grid ``indices``, ``length`` samples): beat counts by symbol and the rhythm it lies wholly in."""
    starts = indices * length
    stops = starts + length
    is_beat = np.isin(annotations.symbol, list(_BEATS))
    beat_samples = annotations.sample[is_beat]
    beat_symbols = annotations.symbol[is_beat]
    order = np.argsort(beat_samples, kind="stable")
    beat_samples, beat_symbols = beat_samples[order], beat_symbols[order]

    def count(samples: np.ndarray) -> np.ndarray:
        return np.searchsorted(samples, stops, "left") - np.searchsorted(samples, starts, "left")

    features: dict[str, np.ndarray | list[str]] = {"n_beats": count(beat_samples)}
    for symbol in _COUNTED:
        features[f"n_{symbol}"] = count(beat_samples[beat_symbols == symbol])
    episode_starts, episode_ends, labels = _episodes(annotations, n_samples)
    rhythm = [""] * len(starts)
    if len(episode_starts):
        which = np.searchsorted(episode_starts, starts, "right") - 1
        for k, (episode, stop) in enumerate(zip(which.tolist(), stops.tolist())):
            if episode >= 0 and stop <= episode_ends[episode]:
                rhythm[k] = labels[episode]
    features["rhythm"] = rhythm
    return features


class Icentia11k(Dataset):
    """A local copy of Icentia11k (``clef.datasets.open("icentia11k", root)``); ``root`` holds ``p00/`` ... ``p10/``.

    Args:
        root: the folder of the PhysioNet project (``pNN/pNNNNN/pNNNNN_sNN.*``).
        fs: 250 (Hz) or None; the data is published at that rate only.
        windows_per_segment: the 10 s windows each segment gives to a task: that many, spread evenly over it
            (default 4, about 2 million windows for the whole dataset), or None for every window (some 2e8).
    """

    name = "icentia11k"
    title = "Icentia11k"
    source = "https://physionet.org/content/icentia11k-continuous-ecg/1.0/"
    physionet = "icentia11k-continuous-ecg/1.0"
    tasks = {
        "af": TaskInfo(
            "af", "binary", "10 s window wholly in atrial fibrillation or flutter (1) vs wholly in sinus rhythm (0)"
        ),
        "rhythm": TaskInfo("rhythm", "multiclass", "the rhythm a 10 s window lies wholly in: N, AFIB or AFL"),
        "pvc": TaskInfo("pvc", "binary", "10 s window holds a V beat (1) vs only N beats (0)"),
        "pac": TaskInfo("pac", "binary", "10 s window holds an S beat (1) vs only N beats (0)"),
    }
    default_lead = 0
    rates = (FS,)

    def __init__(
        self, root: str | os.PathLike[str], fs: float | None = None, *, windows_per_segment: int | None = 4
    ) -> None:
        super().__init__(root, fs=fs)
        if windows_per_segment is not None and (isinstance(windows_per_segment, bool) or int(windows_per_segment) < 1):
            raise ValueError(f"windows_per_segment must be a positive number or None, not {windows_per_segment!r}")
        self.windows_per_segment = None if windows_per_segment is None else int(windows_per_segment)

    def build_table(self) -> pd.DataFrame:
        rows = []
        for group in sorted(entry.name for entry in os.scandir(self.root) if _GROUP_DIR.match(entry.name)):
            for patient in sorted(
                entry.name for entry in os.scandir(self.root / group) if _PATIENT_DIR.match(entry.name)
            ):
                folder = self.root / group / patient
                for name in sorted(os.listdir(folder)):
                    match = _SEGMENT.match(name)
                    if not match or match.group(1) != patient:
                        continue
                    header = read_header(folder / name)
                    rows.append(
                        {
                            "record": name[:-4],
                            "patient": patient,
                            "fs": header.fs,
                            "n_samples": header.n_samples,
                            "leads": header.leads,
                            "segment": int(match.group(2)),
                            "path": f"{group}/{patient}/{name[:-4]}",
                        }
                    )
        if not rows:
            raise self.missing("the segment records pNN/pNNNNN/pNNNNN_sNN.hea (e.g. p00/p00000/p00000_s00.hea)")
        table = pd.DataFrame(rows)
        table["split"] = pinned_split(table["patient"], self.name, val=0.1, test=0.1)
        return table

    def _check_lead(self, lead: str | int) -> None:
        if isinstance(lead, str) and not lead.strip().lstrip("-").isdigit():
            if canonical_lead(lead).lower() == "ecg":
                return
        elif int(lead) in (0, -1):
            return
        raise DatasetError(f"{self.title} segments have one lead (ecg, index 0); no lead {lead!r}")

    @cached_property
    def _row_of(self) -> dict[str, int]:
        return {record: i for i, record in enumerate(self.table["record"])}

    def open_signal(self, record: str, lead: str | int) -> object:
        self._check_lead(lead)
        row = self.table.iloc[self._row_of[record]]
        return SegmentSignal(self.root / row["path"], int(row["n_samples"]), float(row["fs"]))

    @cached_property
    def windows(self) -> pd.DataFrame:
        """The windows the tasks draw from, one row each, indexed by window id: ``record``, ``start`` and ``stop``
        (samples), ``n_beats``, ``n_N``, ``n_S``, ``n_V``, ``n_Q`` (beats in the window, by symbol) and ``rhythm``
        (``"N"``, ``"AFIB"``, ``"AFL"``, or ``""`` where the window is not wholly in one episode). Built from the
        annotations on first use (every segment's ``.atr`` is read once), then kept."""
        columns = ["record", "start", "stop", "n_beats", *(f"n_{s}" for s in _COUNTED), "rhythm"]
        parts: dict[str, list] = {column: [] for column in columns}
        ids: list[str] = []
        for row in self.table.itertuples(index=False):
            length = int(round(WINDOW_SECONDS * row.fs))
            indices = _window_indices(int(row.n_samples), length, self.windows_per_segment)
            if not len(indices):
                continue
            annotation_file = self.root / f"{row.path}.atr"
            if not annotation_file.is_file():
                raise self.missing(f"{row.path}.atr (the beat and rhythm annotations of segment {row.record})")
            features = _window_features(read_annotations(annotation_file), int(row.n_samples), indices, length)
            features.update(record=[row.record] * len(indices), start=indices * length, stop=(indices + 1) * length)
            for column in columns:
                parts[column].append(features[column])
            ids.extend(f"{row.record}/{index:04d}" for index in indices.tolist())
        data: dict[str, object] = {}
        for column in columns:
            if column in ("record", "rhythm"):
                data[column] = list(itertools.chain.from_iterable(parts[column]))
            else:
                data[column] = np.concatenate(parts[column]) if parts[column] else np.empty(0, dtype=np.int64)
        return pd.DataFrame(data, index=pd.Index(ids, name="window"))

    def task_labels(self, task: str, lead: str | int) -> tuple[list[object], pd.Series, pd.Series]:
        self._check_lead(lead)
        windows = self.windows
        if task in ("af", "rhythm"):
            chosen = windows[windows["rhythm"].isin(["N", "AFIB", "AFL"])]
            labels = (chosen["rhythm"] != "N").astype(np.int64) if task == "af" else chosen["rhythm"].astype(object)
        else:
            beat = "V" if task == "pvc" else "S"
            only_normal = (windows["n_N"] == windows["n_beats"]) & (windows["n_beats"] > 0)
            chosen = windows[(windows[f"n_{beat}"] > 0) | only_normal]
            labels = (chosen[f"n_{beat}"] > 0).astype(np.int64)
        segments: dict[str, object] = {}
        X: list[object] = []
        for record, start, stop in zip(chosen["record"].tolist(), chosen["start"].tolist(), chosen["stop"].tolist()):
            if record not in segments:
                segments[record] = self.open_signal(record, lead)
            X.append(SignalSlice(segments[record], int(start), int(stop)))
        y = pd.Series(labels.to_numpy(), index=chosen.index.copy(), name=task)
        return X, y, pd.Series(chosen["record"].to_numpy())
