"""The pretraining band-pass: SciPy's float64 ``filtfilt`` (what the reference code runs) against clef-sdk's exact
operator (``clef_sdk.filters.bandpass``), both in one run, on real 10 s windows (LUDB, 12 leads, 500 Hz).

Run from the repository root (needs ``../shared`` or ``$CLEF_SDK_SHARED``)::

    python benchmarks/bench_bandpass.py                    # 1, 32 and 1000 windows, 7 repeats
    python benchmarks/bench_bandpass.py --batches 1000 --repeats 15

Prints the median time of each side, windows per second, the speed ratio, and how far each side is from the
exact filter (the tests' integer-arithmetic reference, on the first 8 windows).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from scipy import signal as sps

from clef_sdk.filters import BUTTER_A, BUTTER_B, bandpass

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from exact_reference import exact_filtfilt  # integer arithmetic, ~50 ms per window


def ludb_windows(data: Path, count: int) -> np.ndarray:
    """``count`` windows (n, 5000) float64 in mV: every lead of LUDB records 1, 2, ... in turn."""
    windows = []
    for record in range(1, 201):
        lines = (data / "ludb" / "data" / f"{record}.hea").read_text().splitlines()
        n_leads = int(lines[0].split()[1])
        gains = [float(line.split()[2].split("(")[0]) for line in lines[1 : 1 + n_leads]]
        counts = np.fromfile(data / "ludb" / "data" / f"{record}.dat", dtype="<i2").reshape(-1, n_leads)
        windows.extend((counts[:5000] / gains).T)
        if len(windows) >= count:
            return np.array(windows[:count])
    raise ValueError(f"LUDB has fewer than {count} lead-windows")


def median_seconds(function, x: np.ndarray, repeats: int) -> float:
    function(x)  # warm-up (tables, FFT plans)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(os.environ.get("CLEF_SDK_SHARED") or REPO.parent / "shared")
    )
    parser.add_argument("--batches", default="1,32,1000", help="comma-separated numbers of windows per call")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    batches = [int(v) for v in args.batches.split(",")]
    windows = ludb_windows(args.shared / "data", max(max(batches), 8))
    b, a = np.array(BUTTER_B), np.array(BUTTER_A)

    def scipy_filtfilt(x: np.ndarray) -> np.ndarray:
        return sps.filtfilt(b, a, x, axis=-1)

    exact = np.stack([exact_filtfilt(w) for w in windows[:8]])
    scale = np.abs(exact).max(axis=1, keepdims=True)
    print("max |error| / max |exact| on 8 LUDB windows (the z-score divides by the std, so this is what moves)")
    for name, function in (("scipy filtfilt", scipy_filtfilt), ("clef bandpass", bandpass)):
        print(f"  {name:<15} {(np.abs(function(windows[:8]) - exact) / scale).max():.1e}")
    print(
        f"\n{'windows':>8} {'filtfilt ms':>12} {'bandpass ms':>12} {'filtfilt win/s':>15} {'bandpass win/s':>15} {'speed-up':>9}"
    )
    for count in batches:
        x = windows[:count]
        old = median_seconds(scipy_filtfilt, x, args.repeats)
        new = median_seconds(bandpass, x, args.repeats)
        print(
            f"{count:>8} {old * 1e3:>12.2f} {new * 1e3:>12.2f} {count / old:>15,.0f} {count / new:>15,.0f} {old / new:>8.2f}x"
        )


if __name__ == "__main__":
    main()
