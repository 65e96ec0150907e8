"""The network's windows/s by model size, backend, precision and batch size on this CPU, measured side by side.

Every configuration runs on the same real preprocessed windows (MIT-BIH resampled to 500 Hz); within each repeat
the configurations run one after another in a fixed interleaved order, and the table gives medians over repeats,
with the ratio of ONNX Runtime to torch fp32 at the same batch. The cosine of each backend's embeddings to torch
fp32 is reported too.

    python benchmarks/bench_backends.py                          # small and medium, batches 1, 8, 16, 32, 64
    python benchmarks/bench_backends.py --sizes small --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import encoder_for, long_recording, machine, print_table, require_shared, row_cosines, write_json

import clef_sdk as clef
from clef_sdk.backends import network_forward
from clef_sdk.precision import autocast, check_precision


def windows_per_second(forward, windows: np.ndarray, batch: int, precision: str) -> float:
    device = torch.device("cpu")
    chosen = check_precision(precision, device)
    started = time.perf_counter()
    with torch.inference_mode():
        for start in range(0, len(windows), batch):
            x = torch.from_numpy(windows[start : start + batch]).unsqueeze(1)
            with autocast(chosen, device):
                forward(x)
    return len(windows) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="small,medium")
    parser.add_argument("--batches", default="1,8,16,32,64")
    parser.add_argument("--windows", type=int, default=256, help="windows per measurement")
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    require_shared()
    windows = clef.preprocess(long_recording(args.windows * 10 / 3600 + 0.01, fs=250), fs=250)[: args.windows]
    batches = [int(b) for b in args.batches.split(",")]
    bf16 = True
    try:
        check_precision("bf16", torch.device("cpu"))
    except ValueError:
        bf16 = False  # emulated on this CPU: clef refuses it
    rows, results = [], {}
    for size in args.sizes.split(","):
        encoder = encoder_for(size)[0].eval()
        onnx = network_forward(encoder, "onnxruntime")  # exported once here (cached), not timed
        configs = [("torch", "fp32"), ("onnxruntime", "fp32")] + ([("torch", "bf16")] if bf16 else [])
        times: dict[tuple[str, str, int], list[float]] = {}
        for _ in range(args.repeats):
            for batch in batches:
                for backend, precision in configs:
                    forward = encoder if backend == "torch" else onnx
                    speed = windows_per_second(forward, windows, batch, precision)
                    times.setdefault((backend, precision, batch), []).append(speed)
        with torch.inference_mode():
            x = torch.from_numpy(windows[:64]).unsqueeze(1)
            reference = encoder(x).numpy()
            cosine = float(np.min(row_cosines(onnx(x).numpy(), reference)))
        for batch in batches:
            base = statistics.median(times[("torch", "fp32", batch)])
            for backend, precision in configs:
                median = statistics.median(times[(backend, precision, batch)])
                rows.append((size, backend, precision, batch, f"{median:.0f}", f"{median / base:.2f}"))
                results[f"{size}/{backend}/{precision}/{batch}"] = median
        results[f"{size}/onnxruntime_min_cosine"] = cosine
        print(f"{size}: onnxruntime vs torch fp32, min cosine over 64 windows {cosine:.8f}")
    print(f"windows/s, {args.windows} real windows, median of {args.repeats} interleaved repeats; "
          f"{torch.get_num_threads()} torch threads")  # fmt: skip
    print_table(("size", "backend", "precision", "batch", "windows/s", "vs torch fp32"), rows)
    print(f"results: {write_json('bench_backends', {'machine': machine(), 'results': results}, args.json)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
