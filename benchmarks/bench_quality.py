"""Signal-quality speed: ``clef.signal_quality`` on 24 h of real ECG at 250 Hz (MIT-BIH records back to back).

    python benchmarks/bench_quality.py                          # 24 h; the working tree's clef_sdk
    python benchmarks/bench_quality.py --hours 1
    python benchmarks/bench_quality.py --against 9fa7a6d --repeats 3   # side by side with another revision

Prints the wall time, windows/s and the usable fraction, and writes ``benchmarks/results/bench_quality-<host>.json``.
With ``--against REV`` each run is a fresh interpreter, alternating between this tree's ``clef_sdk`` and REV's
(checked out in a temporary git worktree), on the same recording; the table gives medians and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import long_recording, print_table, write_json

REPO = Path(__file__).resolve().parents[1]


def timed_quality(path: str) -> dict[str, object]:
    """``clef.signal_quality`` on the 250 Hz recording saved at ``path``, timed after a warm-up (imports)."""
    import clef_sdk as clef

    signal = np.load(path)
    clef.signal_quality(signal[: 250 * 30], 250)  # warm-up: neurokit2 is imported on first use
    start = time.perf_counter()
    quality = clef.signal_quality(signal, 250)
    seconds = time.perf_counter() - start
    reasons: dict[str, int] = {}
    for found in quality.reasons:
        for reason in found:
            reasons[reason] = reasons.get(reason, 0) + 1
    return {
        "seconds": seconds,
        "windows": len(quality),
        "usable_fraction": float(quality.usable.mean()),
        "median_score": float(np.median(quality.score)),
        "reasons": reasons,
    }


def run_in(tree: Path, path: str) -> dict[str, object]:
    """``timed_quality`` in a fresh interpreter importing ``clef_sdk`` from ``tree``."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", path],
        capture_output=True,
        text=True,
        env=env,
        cwd=tree,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--against", metavar="REV", help="a git revision to time side by side")
    parser.add_argument("--repeats", type=int, default=1, help="runs per side with --against (default: 1)")
    parser.add_argument("--output", "--json", help="JSON path")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(timed_quality(args.child)))
        return 0

    with tempfile.TemporaryDirectory() as folder:
        recording = str(Path(folder) / "recording.npy")
        np.save(recording, long_recording(args.hours, 250))
        trees = {"this tree": REPO}
        if args.against:
            other = Path(folder) / "against"
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(other), args.against], check=True, capture_output=True)  # fmt: skip
            trees[args.against] = other
        try:
            runs: dict[str, list[dict[str, object]]] = {name: [] for name in trees}
            for _ in range(args.repeats if args.against else 1):
                for name, tree in trees.items():  # alternating: a drifting machine hits both alike
                    runs[name].append(run_in(tree, recording))
        finally:
            if args.against:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(other)], check=False)
    base = statistics.median(float(run["seconds"]) for run in runs["this tree"])  # type: ignore[arg-type]
    rows = []
    for name, results in runs.items():
        seconds = statistics.median(float(run["seconds"]) for run in results)  # type: ignore[arg-type]
        first = results[0]
        rows.append(
            (
                name,
                f"{args.hours:g}",
                first["windows"],
                f"{seconds:.1f}",
                f"{int(first['windows']) / seconds:.0f}",  # type: ignore[call-overload]
                f"{float(first['usable_fraction']):.3f}",  # type: ignore[arg-type]
                f"{seconds / base:.2f}x",
            )
        )
    print_table(("clef_sdk", "hours", "windows", "wall s", "windows/s", "usable", "time vs this tree"), rows)
    print("reasons (this tree):", runs["this tree"][0]["reasons"])
    write_json("bench_quality", {"hours": args.hours, "runs": runs}, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
