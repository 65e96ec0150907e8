"""The network's windows/s by model size, backend, precision and batch size on this CPU, measured side by side.

Every configuration runs on the same real preprocessed windows (MIT-BIH resampled to 500 Hz); within each repeat
the configurations (torch, each installed engine: ONNX Runtime, OpenVINO; fp32, and bf16 where the CPU has it
natively) run one after another in a fixed interleaved order, and the table gives medians over repeats, with the
ratio to torch fp32 at the same batch. Large runs on a quarter of the windows. The cosine of each backend's
embeddings to torch fp32 is reported too.

    python benchmarks/bench_backends.py                          # small and medium, batches 1, 8, 16, 32, 64
    python benchmarks/bench_backends.py --sizes large --batches 1,16,32 --repeats 3
    python benchmarks/bench_backends.py --sizes small --repeats 3
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import encoder_for, long_recording, machine, print_table, require_shared, row_cosines, write_json

import clef_sdk as clef
from clef_sdk.backends import ENGINES, exported_network
from clef_sdk.precision import autocast, check_precision

#: large is ~4x medium's work: measured on this many times fewer windows
LARGE_FACTOR = 4


def windows_per_second(forward, windows: np.ndarray, batch: int, precision: str) -> float:
    device = torch.device("cpu")
    chosen = check_precision(precision, device)
    with torch.inference_mode(), autocast(chosen, device):  # warm-up: the first call of a shape picks kernels
        forward(torch.from_numpy(windows[:batch]).unsqueeze(1))
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
    engines = [engine for engine in ENGINES if importlib.util.find_spec(engine) is not None]
    for size in args.sizes.split(","):
        encoder = encoder_for(size)[0].eval()
        exported = {engine: exported_network(encoder, engine) for engine in engines}  # exported once, not timed
        configs = [("torch", "fp32")] + [(engine, "fp32") for engine in engines]
        if bf16:
            configs += [("torch", "bf16")] + ([("openvino", "bf16")] if "openvino" in engines else [])
        count = max(16, args.windows // LARGE_FACTOR) if size == "large" else args.windows
        times: dict[tuple[str, str, int], list[float]] = {}
        for _ in range(args.repeats):
            for batch in batches:
                for backend, precision in configs:
                    if backend == "torch":
                        forward = encoder
                    else:
                        forward = functools.partial(exported[backend], precision=precision)
                    speed = windows_per_second(forward, windows[:count], batch, precision)
                    times.setdefault((backend, precision, batch), []).append(speed)
        with torch.inference_mode():
            x = torch.from_numpy(windows[:64]).unsqueeze(1)
            reference = encoder(x).numpy()
            for backend, precision in configs[1:]:
                if backend == "torch":
                    with autocast(precision, torch.device("cpu")):
                        other = encoder(x).float().numpy()
                else:
                    other = exported[backend](x, precision=precision).numpy()
                cosine = float(np.min(row_cosines(other, reference)))
                results[f"{size}/{backend}/{precision}/min_cosine"] = cosine
                print(f"{size}: {backend} {precision} vs torch fp32, min cosine over 64 windows {cosine:.8f}")
        for batch in batches:
            base = statistics.median(times[("torch", "fp32", batch)])
            for backend, precision in configs:
                median = statistics.median(times[(backend, precision, batch)])
                rows.append((size, backend, precision, batch, f"{median:.0f}", f"{median / base:.2f}"))
                results[f"{size}/{backend}/{precision}/{batch}"] = median
    print(f"windows/s, {args.windows} real windows, median of {args.repeats} interleaved repeats; "
          f"{torch.get_num_threads()} torch threads")  # fmt: skip
    print_table(("size", "backend", "precision", "batch", "windows/s", "vs torch fp32"), rows)
    print(f"results: {write_json('bench_backends', {'machine': machine(), 'results': results}, args.json)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
