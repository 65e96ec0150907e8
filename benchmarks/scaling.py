"""Time and memory against recording length: ``clef.embed`` on 1 h, 6 h, 24 h and 7 days of real ECG at 250 Hz.

    python benchmarks/scaling.py                     # small, fp32, CPU (about 4 min on 2 cores)
    python benchmarks/scaling.py --hours 1,24 --size medium --mmap

The recordings are MIT-BIH records played back to back (see ``embed_long.py``), float32 in memory (``--mmap``:
memory-mapped ``.npy``). Each length runs in a fresh interpreter: ``extra RSS`` is its peak resident memory minus
the resident memory just before ``clef.embed`` (interpreter, torch, weights and the input already loaded), so it
is what embedding costs beyond holding the input. Flat memory: ``extra RSS`` does not grow with the length;
linear time: ``s per hour of ECG`` stays the same. Prints a table and writes
``benchmarks/results/scaling-<host>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    current_rss_mib,
    encoder_for,
    long_recording,
    peak_rss_mib,
    print_table,
    run_child,
    timed,
    write_json,
)

FS = 250


def child(path: str, size: str, mmap: str, precision: str) -> None:
    import clef_sdk as clef

    encoder, _ = encoder_for(size)
    signal = np.load(path, mmap_mode="r" if mmap == "1" else None)
    clef.embed(np.asarray(signal[: 60 * FS]), FS, model=encoder, progress=False, precision=precision)  # warm-up
    before = current_rss_mib()
    seconds, embedding = timed(clef.embed, signal, FS, model=encoder, progress=False, precision=precision)
    assert embedding.shape == (encoder.embed_dim,) and np.isfinite(embedding).all()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mib": peak_rss_mib(),
                "rss_before_mib": before,
                "input_mib": signal.nbytes / 2**20,
                "windows": len(signal) // (10 * FS),
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", default="1,6,24,168", help="comma-separated lengths in hours (default: 1,6,24,168)")
    parser.add_argument("--size", default="small")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--mmap", action="store_true", help="memory-map the input instead of loading it")
    parser.add_argument("--output", help="JSON path")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for hours in [float(h) for h in args.hours.split(",")]:
            path = Path(tmp) / f"{hours:g}h.npy"
            np.save(path, long_recording(hours, FS))
            row = run_child(Path(__file__), [str(path), args.size, "1" if args.mmap else "0", args.precision])
            path.unlink()
            row.update(
                hours=hours,
                seconds_per_hour=row["seconds"] / hours,
                extra_rss_mib=row["peak_rss_mib"] - row["rss_before_mib"],
            )
            results.append(row)
            print(f"{hours:g} h: {row['seconds']:.1f} s", file=sys.stderr, flush=True)
    per_hour = [r["seconds_per_hour"] for r in results]
    rows = [
        (
            f"{r['hours']:g} h",
            r["windows"],
            f"{r['input_mib']:.0f}",
            f"{r['seconds']:.1f}",
            f"{r['seconds_per_hour']:.3f}",
            f"{r['seconds_per_hour'] / per_hour[0]:.3f}",
            f"{r['peak_rss_mib']:.0f}",
            f"{r['extra_rss_mib']:.0f}",
        )
        for r in results
    ]
    print(
        f"\nclef.embed, {args.size} {args.precision}, {FS} Hz, input {'memory-mapped' if args.mmap else 'in memory'}\n"
    )
    print_table(
        ("length", "windows", "input MiB", "wall s", "s per hour of ECG", "vs first", "peak RSS MiB", "extra RSS MiB"),
        rows,
    )
    spread = max(per_hour) / min(per_hour) - 1
    print(
        f"\ntime per hour varies by {spread:.1%} from the fastest to the slowest length; "
        f"extra RSS {min(r['extra_rss_mib'] for r in results):.0f}-{max(r['extra_rss_mib'] for r in results):.0f} MiB"
    )
    write_json(
        "scaling",
        {
            "size": args.size,
            "precision": args.precision,
            "mmap": args.mmap,
            "fs": FS,
            "results": results,
            "time_per_hour_spread": spread,
        },
        args.output,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
