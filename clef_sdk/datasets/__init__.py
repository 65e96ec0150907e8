"""ECG datasets: public datasets in their published layouts (`open`), and the recordings bundled with the
package (`.examples`).

>>> import clef_sdk as clef
>>> signal, fs, info = clef.datasets.load_example("mitdb-100")    # 60 s of MIT-BIH record 100, 360 Hz, mV
>>> ds = clef.datasets.open("ptbxl", "/data/ptb-xl", fs=500)       # a local copy of PTB-XL
>>> X, y, groups, split = ds.task("superdiagnostic", lead="I")

Readers (one module each): ``ptbxl``, ``cinc2017``, ``challenge2021``, ``chapman``, ``icentia11k``,
``mimic-iv-ecg``, ``ludb``, ``mitdb``. Each is imported when first opened.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr
from .examples import list_examples, load_example

if TYPE_CHECKING:
    from .base import DATASETS, Dataset, TaskData, TaskInfo, available_datasets, open, reader_class
    from .signals import ArraySignal, SignalSlice
    from .splits import pinned_split, read_split, write_split

__all__ = [
    "DATASETS",
    "ArraySignal",
    "Dataset",
    "SignalSlice",
    "TaskData",
    "TaskInfo",
    "available_datasets",
    "list_examples",
    "load_example",
    "open",
    "pinned_split",
    "read_split",
    "reader_class",
    "write_split",
]

_LAZY = {
    "DATASETS": "base",
    "Dataset": "base",
    "TaskData": "base",
    "TaskInfo": "base",
    "available_datasets": "base",
    "open": "base",
    "reader_class": "base",
    "ArraySignal": "signals",
    "SignalSlice": "signals",
    "pinned_split": "splits",
    "read_split": "splits",
    "write_split": "splits",
}
__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(__all__)
