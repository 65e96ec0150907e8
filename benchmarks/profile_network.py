"""Where the network's time goes on this CPU: a per-operator profile of one size, backend and precision.

Runs ``--steps`` forward passes on real preprocessed windows (MIT-BIH at 250 Hz) under ``torch.profiler`` (torch)
or ONNX Runtime's own profiler (``onnxruntime``), after a warm-up, and prints the operators by their share of the
time: calls per forward, microseconds per call, share, and for convolutions and matrix products the GFLOP/s
reached against this CPU's estimated peak. The totals line says how many operators one forward runs and how much
of the time lies outside convolutions and matrix products, which is what bounds the small model on a CPU.

    python benchmarks/profile_network.py --size small --batch 32
    python benchmarks/profile_network.py --size small --batch 32 --backend onnxruntime
    python benchmarks/profile_network.py --size medium --batch 32 --precision bf16
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import encoder_for, long_recording, print_table, require_shared, write_json
from throughput import cpu_peak_tflops, window_flops

import clef_sdk as clef
from clef_sdk.backends import exported_network
from clef_sdk.precision import autocast, check_precision

#: operators that carry the arithmetic (the rest move, normalise or activate data)
COMPUTE = ("conv", "addmm", "mm", "matmul", "linear", "gemm", "bmm", "baddbmm")


def is_compute(name: str) -> bool:
    return any(word in name.lower() for word in COMPUTE)


def torch_profile(encoder, batch: torch.Tensor, precision: str, steps: int) -> tuple[dict[str, list[float]], float]:
    """Self time in microseconds and calls per operator over ``steps`` forwards, and the wall seconds of as many
    forwards without the profiler (which slows small operators down)."""
    from torch.profiler import ProfilerActivity, profile

    device = torch.device("cpu")
    with torch.inference_mode(), autocast(precision, device):
        for _ in range(3):
            encoder(batch)
        started = time.perf_counter()
        for _ in range(steps):
            encoder(batch)
        wall = time.perf_counter() - started
        with profile(activities=[ProfilerActivity.CPU]) as profiler:
            for _ in range(steps):
                encoder(batch)
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for event in profiler.key_averages():
        if event.key.startswith("aten::") and event.self_cpu_time_total > 0:
            totals[event.key][0] += event.self_cpu_time_total
            totals[event.key][1] += event.count
    return totals, wall


def onnx_profile(encoder, batch: torch.Tensor, steps: int) -> tuple[dict[str, list[float]], float]:
    """The same from ONNX Runtime's profiler: node time in microseconds and calls per operator type."""
    import onnxruntime as ort

    path = exported_network(encoder, "onnxruntime").path  # the backend's cached file
    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(folder) / "profile")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: batch.numpy()}
        for _ in range(3):
            session.run(None, feed)
        started = time.perf_counter()
        for _ in range(steps):
            session.run(None, feed)
        wall = time.perf_counter() - started
        events = json.loads(Path(session.end_profiling()).read_text())
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    runs = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    for event in runs[-len(runs) * steps // (steps + 3) :]:  # the timed runs, not the warm-up
        op = event["args"]["op_name"]
        totals[op][0] += event["dur"]
        totals[op][1] += 1
    return totals, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="small")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--top", type=int, default=15, help="operators listed (default: 15)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    require_shared()
    precision = check_precision(args.precision, torch.device("cpu"))
    encoder = encoder_for(args.size)[0].eval()
    windows = clef.preprocess(long_recording(args.batch * 10 / 3600 + 0.01, fs=250), fs=250)[: args.batch]
    batch = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32)).unsqueeze(1)
    if args.backend == "torch":
        totals, wall = torch_profile(encoder, batch, precision, args.steps)
    else:
        totals, wall = onnx_profile(encoder, batch, args.steps)
    profiled = sum(time_us for time_us, _ in totals.values())
    flops = window_flops(encoder) * args.batch * args.steps
    peak = cpu_peak_tflops(precision) * 1e12
    compute_us = sum(time_us for name, (time_us, _) in totals.items() if is_compute(name))
    rows = []
    for name, (time_us, calls) in sorted(totals.items(), key=lambda item: -item[1][0])[: args.top]:
        rows.append(
            (
                name,
                f"{calls / args.steps:.0f}",
                f"{time_us / calls:.0f}",
                f"{100 * time_us / profiled:.1f}%",
                "compute" if is_compute(name) else "",
            )
        )
    calls_per_forward = sum(calls for _, calls in totals.values()) / args.steps
    print(
        f"{args.size}, {args.backend} {precision}, batch {args.batch}, {torch.get_num_threads()} threads: "
        f"{args.batch * args.steps / wall:.0f} windows/s without the profiler"
    )
    print_table(("operator", "calls/forward", "us/call", "share", ""), rows)
    # self times are wall times of the calling thread (an operator's intra-op threads run inside them)
    achieved = flops / (compute_us / 1e6) if compute_us else 0.0
    print(
        f"\n{calls_per_forward:.0f} operator calls per forward; {100 * (1 - compute_us / profiled):.0f}% of operator "
        f"time outside convolutions and matrix products; those reach {achieved / 1e9:.0f} GFLOP/s while they run "
        f"({100 * achieved / peak:.0f}% of the estimated {peak / 1e9:.0f} GFLOP/s peak); whole forward "
        f"{flops / wall / 1e9:.0f} GFLOP/s ({100 * flops / wall / peak:.0f}% of peak)"
    )
    payload = {
        "size": args.size,
        "backend": args.backend,
        "precision": precision,
        "batch": args.batch,
        "windows_per_s": args.batch * args.steps / wall,
        "calls_per_forward": calls_per_forward,
        "compute_share": compute_us / profiled,
        "operators": {name: {"us": t, "calls": c} for name, (t, c) in totals.items()},
    }
    write_json(f"profile_network-{args.size}-{args.backend}-{precision}-b{args.batch}", payload, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
