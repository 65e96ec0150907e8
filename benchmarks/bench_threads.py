"""``clef.embed`` beside busy processes: the default thread choice against fixed thread counts, side by side.

30 min of real ECG (MIT-BIH at 250 Hz) is embedded with CLEF-small while 0, 1 or 2 other processes keep cores
busy. Each repeat starts the neighbours, runs every thread setting once in turn (interleaved), and stops them;
the table gives the median seconds per setting and neighbour count, and the ratio of each to the default.

Settings: ``default`` is ``num_threads=None`` (the cores this process may use that others leave idle, see
``clef_sdk.threads``); ``all cores`` is torch's own count (the SDK's behaviour before the choice); ``1 thread``.

    python benchmarks/bench_threads.py                      # 0, 1, 2 spinning neighbours, 5 repeats
    python benchmarks/bench_threads.py --neighbour torch    # neighbours are two-thread torch jobs (training-like)
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import encoder_for, long_recording, print_table, require_shared, write_json

import clef_sdk as clef
from clef_sdk.threads import available_cpus

NEIGHBOURS = {
    # one thread spinning on a core: an unrelated busy process
    "spin": "while True: pass",
    # two torch threads multiplying matrices: a training job beside the call
    "torch": ("import torch; torch.set_num_threads(2); a = torch.randn(512, 512)\nwhile True: a = (a @ a).tanh()"),
}


def start_neighbours(count: int, kind: str) -> list[subprocess.Popen]:
    processes = [subprocess.Popen([sys.executable, "-c", NEIGHBOURS[kind]]) for _ in range(count)]
    time.sleep(1.0)  # let them start (torch's import takes a moment) and reach their loops
    return processes


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
    for process in processes:
        process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="ECG length (default: 30)")
    parser.add_argument("--busy", default="0,1,2", help="neighbour counts (default: 0,1,2)")
    parser.add_argument("--neighbour", choices=sorted(NEIGHBOURS), default="spin")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    require_shared()
    signal = long_recording(args.minutes / 60, fs=250)
    encoder, _ = encoder_for("small")
    all_cores = torch.get_num_threads()
    settings = {"default": None, f"all cores ({all_cores})": all_cores, "1 thread": 1}
    clef.embed(signal[: 250 * 60], fs=250, model=encoder, progress=False)  # warm-up
    seconds: dict[tuple[int, str], list[float]] = {}
    for _ in range(args.repeats):
        for busy in (int(b) for b in args.busy.split(",")):
            neighbours = start_neighbours(busy, args.neighbour)
            try:
                for name, num_threads in settings.items():
                    started = time.perf_counter()
                    clef.embed(signal, fs=250, model=encoder, progress=False, num_threads=num_threads)
                    seconds.setdefault((busy, name), []).append(time.perf_counter() - started)
            finally:
                stop(neighbours)
    rows, results = [], []
    for busy in (int(b) for b in args.busy.split(",")):
        default = statistics.median(seconds[(busy, "default")])
        for name in settings:
            times = seconds[(busy, name)]
            median = statistics.median(times)
            rows.append((busy, name, f"{median:.2f}", f"{min(times):.2f}-{max(times):.2f}", f"{median / default:.2f}x"))
            results.append({"busy": busy, "setting": name, "median_s": median, "seconds": times})
    print(f"{args.minutes:g} min of ECG at 250 Hz, CLEF-small, {args.neighbour} neighbours, cores {available_cpus()}")
    print_table(("busy processes", "threads", "median s", "range s", "vs default"), rows)
    write_json("bench_threads", {"neighbour": args.neighbour, "minutes": args.minutes, "results": results}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
