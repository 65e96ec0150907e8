"""ECG datasets: the real recordings bundled with the package (:mod:`.examples`).

>>> import clef_sdk as clef
>>> signal, fs, info = clef.datasets.load_example("mitdb-100")    # 60 s of MIT-BIH record 100, 360 Hz, mV
"""

from __future__ import annotations

from .examples import list_examples, load_example

__all__ = ["list_examples", "load_example"]
