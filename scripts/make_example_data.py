"""Regenerate the real ECG examples bundled in clef_sdk/datasets/data/ from the shared data folder.

    python scripts/make_example_data.py [--shared ../shared]

- ``mitdb-100.npz``: the first 60 s of MIT-BIH Arrhythmia record 100, lead MLII, 360 Hz, as the record's own
  11-bit ADC counts (int16; gain 200 adu/mV, baseline 1024), with its reference beat annotations (sample, symbol).
- ``ludb-1.npz``: LUDB record 1, lead I, 10 s at 500 Hz, as the record's int16 ADC counts (gain and baseline from
  its header), with the subject's age, sex and rhythm.

Both are stored losslessly (compressed npz), a few tens of kB in all; ``clef_sdk.datasets`` converts them to mV.
Licenses: ODC-By 1.0 for both (attribution in clef_sdk/datasets/data/README.md and in ``clef_sdk.datasets``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "clef_sdk" / "datasets" / "data"


def mitdb(shared: Path) -> None:
    import wfdb

    record_path = str(shared / "data" / "wfdb-sample" / "100")
    n = 60 * 360
    record = wfdb.rdrecord(record_path, physical=False, sampto=n, channels=[0])
    beats = wfdb.rdann(record_path, "atr", sampto=n)
    is_beat = np.isin(beats.symbol, list("NLRBAaJSVrFejnE/fQ?"))
    np.savez_compressed(
        OUTPUT / "mitdb-100.npz",
        counts=record.d_signal[:, 0].astype(np.int16),
        gain=np.float64(record.adc_gain[0]),
        baseline=np.int64(record.baseline[0]),
        fs=np.float64(record.fs),
        beat_samples=np.asarray(beats.sample)[is_beat].astype(np.int32),
        beat_symbols=np.asarray(beats.symbol)[is_beat].astype("U1"),
    )


def ludb(shared: Path) -> None:
    import wfdb

    record_path = str(shared / "data" / "ludb" / "data" / "1")
    record = wfdb.rdrecord(record_path, physical=False, channel_names=["i"])
    comments = {
        line.split(":", 1)[0].strip("<> "): line.split(":", 1)[1].strip() for line in record.comments if ":" in line
    }
    np.savez_compressed(
        OUTPUT / "ludb-1.npz",
        counts=record.d_signal[:, 0].astype(np.int16),
        gain=np.float64(record.adc_gain[0]),
        baseline=np.int64(record.baseline[0]),
        fs=np.float64(record.fs),
        age=np.float64(comments["age"]),
        sex=np.str_(comments["sex"]),
        rhythm=np.str_(comments["Rhythm"].rstrip(".")),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(os.environ.get("CLEF_SDK_SHARED") or REPO.parent / "shared")
    )
    shared = parser.parse_args().shared
    OUTPUT.mkdir(exist_ok=True)
    mitdb(shared)
    ludb(shared)
    for path in sorted(OUTPUT.glob("*.npz")):
        print(f"{path.relative_to(REPO)}: {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
