"""Real ECG shipped with the package, for quickstarts, examples and tests that must run without any download.

>>> import clef_sdk as clef
>>> signal, fs, info = clef.datasets.load_example("mitdb-100")    # 60 s of MIT-BIH record 100, 360 Hz, mV

| name | what |
|---|---|
| ``mitdb-100`` | MIT-BIH Arrhythmia Database record 100, lead MLII, first 60 s, 360 Hz, with its 74 reference beat annotations (73 N, 1 A) |
| ``ludb-1`` | LUDB record 1, lead I, 10 s at 500 Hz, a 51-year-old woman in sinus bradycardia |

Both are stored as the records' own ADC counts (lossless) and returned in mV. Licenses and attribution, which
users of the data must honour (Open Data Commons Attribution License v1.0 for both):

- MIT-BIH: Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database. IEEE Eng Med Biol 20(3):45-50
  (2001); Goldberger AL et al. PhysioBank, PhysioToolkit, and PhysioNet. Circulation 101(23):e215-e220 (2000).
- LUDB: Kalyakulina AI et al. LUDB: A New Open-Access Validation Tool for Electrocardiogram Delineation
  Algorithms. IEEE Access 8:186181-186190 (2020); Lobachevsky University Electrocardiography Database v1.0.1,
  PhysioNet, doi:10.13026/eegm-h675.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np

__all__ = ["list_examples", "load_example"]

_LICENSE = "ODC-By-1.0 (Open Data Commons Attribution License v1.0)"
_EXAMPLES: dict[str, dict[str, Any]] = {
    "mitdb-100": {
        "description": "MIT-BIH Arrhythmia Database record 100, lead MLII, first 60 s",
        "lead": "MLII",
        "source": "https://physionet.org/content/mitdb/1.0.0/ (record 100)",
        "attribution": "Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database. IEEE Eng Med Biol "
        "20(3):45-50 (2001). Goldberger AL et al. PhysioBank, PhysioToolkit, and PhysioNet. Circulation "
        "101(23):e215-e220 (2000).",
    },
    "ludb-1": {
        "description": "Lobachevsky University Electrocardiography Database (LUDB) v1.0.1 record 1, lead I",
        "lead": "I",
        "source": "https://physionet.org/content/ludb/1.0.1/ (record 1)",
        "attribution": "Kalyakulina AI et al. LUDB: A New Open-Access Validation Tool for Electrocardiogram "
        "Delineation Algorithms. IEEE Access 8:186181-186190 (2020). Lobachevsky University Electrocardiography "
        "Database v1.0.1, PhysioNet, doi:10.13026/eegm-h675.",
    },
}


def list_examples() -> list[str]:
    """Names of the bundled recordings."""
    return list(_EXAMPLES)


def load_example(name: str) -> tuple[np.ndarray, float, dict[str, Any]]:
    """A bundled real recording: ``(signal, fs, info)``.

    ``signal`` is ``(n_samples,)`` float64 in mV, ``fs`` the sampling rate in Hz, ``info`` a dict with
    ``description``, ``lead``, ``units``, ``source``, ``license`` and ``attribution`` (cite it when you use the
    data), plus ``beats`` (``sample``, ``symbol`` arrays; MIT-BIH) or ``age``, ``sex``, ``rhythm`` (LUDB).
    """
    if name not in _EXAMPLES:
        raise ValueError(f"unknown example {name!r}; choose one of {list_examples()}")
    with (
        resources.files(__package__).joinpath("data").joinpath(f"{name}.npz").open("rb") as handle,
        np.load(handle) as archive,
    ):
        data = {key: archive[key] for key in archive.files}
    signal = (data["counts"].astype(np.float64) - float(data["baseline"])) / float(data["gain"])
    info: dict[str, Any] = {**_EXAMPLES[name], "units": "mV", "license": _LICENSE}
    if "beat_samples" in data:
        info["beats"] = {"sample": data["beat_samples"].astype(np.int64), "symbol": data["beat_symbols"]}
    for key in ("age", "sex", "rhythm"):
        if key in data:
            info[key] = data[key].item()
    return signal, float(data["fs"]), info
