"""Signal-quality speed: ``clef.signal_quality`` on 24 h of real ECG at 250 Hz (MIT-BIH records back to back).

    python benchmarks/bench_quality.py              # 24 h; about 16 s on 2 cores
    python benchmarks/bench_quality.py --hours 1

Prints the wall time, windows/s and the usable fraction, and writes ``benchmarks/results/bench_quality-<host>.json``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import long_recording, print_table, write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--output", help="JSON path")
    args = parser.parse_args(argv)
    import clef_sdk as clef

    signal = long_recording(args.hours, 250)
    start = time.perf_counter()
    quality = clef.signal_quality(signal, 250)
    seconds = time.perf_counter() - start
    reasons: dict[str, int] = {}
    for found in quality.reasons:
        for reason in found:
            reasons[reason] = reasons.get(reason, 0) + 1
    print_table(
        ("hours", "windows", "wall s", "windows/s", "usable", "median score"),
        [
            (
                f"{args.hours:g}",
                len(quality),
                f"{seconds:.1f}",
                f"{len(quality) / seconds:.0f}",
                f"{quality.usable.mean():.3f}",
                f"{np.median(quality.score):.2f}",
            )
        ],
    )
    print("reasons:", reasons)
    write_json(
        "bench_quality",
        {
            "hours": args.hours,
            "seconds": seconds,
            "windows": len(quality),
            "usable_fraction": float(quality.usable.mean()),
            "reasons": reasons,
        },
        args.output,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
