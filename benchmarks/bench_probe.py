"""Time to fit a linear probe on 1,000 recordings of 10 s: embedding vs fitting, and the head alone by width.

Run from the repository root (needs the shared fixtures folder, ``../shared`` or ``$CLEF_SDK_SHARED``)::

    python benchmarks/bench_probe.py                        # CLEF-small conformance weights, CPU
    python benchmarks/bench_probe.py --model medium --device cuda
    python benchmarks/bench_probe.py --n 2000 --repeats 3

Table 1: ``clef.fit_probe`` on raw ECG: 1,000 real 10 s MIT-BIH windows at 360 Hz (so resampling to 500 Hz is
included), PVC vs normal labels, grouped by record (5 inner folds, 11 values of C). Split into the
embedding pass (``fit_probe.fit_info_["embedding_seconds"]``) and the scaler + cross-validated head.
Table 2: the head alone on random embeddings of each CLEF width (256/1024/2048), same labels: what the
fitting part costs for the medium and large models. Speed does not depend on the weight values; the
conformance checkpoint is CLEF-small after 2 optimizer steps on random data.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))

import clef_sdk as clef


def shared_dir() -> Path:
    return Path(os.environ.get("CLEF_SDK_SHARED") or REPO.parent / "shared")


def recordings(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """n real 10 s MIT-BIH windows (360 Hz) drawn without replacement, with PVC labels and record ids."""
    from _datasets import load_mitdb_windows

    data = load_mitdb_windows(shared_dir() / "data")
    if n > len(data["labels"]):
        raise SystemExit(f"--n {n}: MIT-BIH has only {len(data['labels'])} windows of 10 s here")
    pick = np.sort(np.random.default_rng(seed).choice(len(data["labels"]), size=n, replace=False))
    return data["signals"][pick], data["labels"][pick], data["records"][pick], float(data["fs"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        default=str(shared_dir() / "conformance" / "clef_small_lightning.ckpt"),
        help="weights path or model name (default: the CLEF-small conformance checkpoint)",
    )
    parser.add_argument("--n", type=int, default=1000, help="recordings of 10 s")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2, help="runs per measurement; the fastest is reported")
    parser.add_argument("--dims", default="256,1024,2048", help="embedding widths for table 2 ('' to skip)")
    args = parser.parse_args(argv)

    signals, labels, records, fs = recordings(args.n, seed=0)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch threads "
        f"{torch.get_num_threads()}, load average {', '.join(f'{v:.1f}' for v in os.getloadavg())}; device {args.device}"
    )
    print(
        f"data: {args.n} MIT-BIH windows of 10 s at {fs:g} Hz, {labels.sum()} with a PVC, {len(set(records))} records"
    )
    clef.get_encoder(args.model, args.device)  # load the weights once, outside the timings

    runs = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        probe = clef.fit_probe(
            signals, labels, fs=fs, model=args.model, groups=records, device=args.device, batch_size=args.batch_size
        )
        total = time.perf_counter() - started
        runs.append((total, probe.fit_info_["embedding_seconds"], probe.fit_info_["fitting_seconds"], probe))
    total, embedding, fitting, probe = min(runs, key=lambda run: run[0])
    print(
        f"\nTable 1. clef.fit_probe on {args.n} raw recordings of 10 s ({Path(str(args.model)).name}; best of {args.repeats})"
    )
    print(f"{'stage':<38} {'seconds':>8} {'share':>6}")
    for stage, seconds in (
        ("embedding (resample, filter, forward)", embedding),
        ("scaler + head with inner 5-fold CV", fitting),
        ("total fit_probe", total),
    ):
        print(f"{stage:<38} {seconds:>8.2f} {100 * seconds / total:>5.0f}%")
    print(f"({args.n / embedding:.0f} recordings/s embedded; head: {probe[-1].summary().splitlines()[1][6:]})")

    dims = [int(d) for d in args.dims.split(",") if d.strip()]
    if dims:
        print(f"\nTable 2. the head alone (StandardScaler + LinearProbe) on {args.n} random embeddings, same labels")
        print(f"{'width':>6} {'solver':<16} {'seconds':>8}")
        rng = np.random.default_rng(1)
        for dim in dims:
            Z = rng.normal(size=(args.n, dim)).astype(np.float32)
            Z[:, 0] += 1.5 * labels  # some signal, so the chosen C is not trivially the smallest
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                head_probe = clef.fit_probe(Z, labels, groups=records)
                times.append(time.perf_counter() - started)
            print(f"{dim:>6} {head_probe[-1].solver_:<16} {min(times):>8.2f}")


if __name__ == "__main__":
    main()
