"""Model-only throughput: windows/s per size, batch size and precision, with achieved TFLOP/s and the fraction of
the device's peak.

    python benchmarks/throughput.py                                   # CPU: small and medium, fp32 and bf16
    python benchmarks/throughput.py --device cuda --sizes small,medium,large --batch-sizes 256,1024 --compile

Input: the conformance windows (real LUDB ECG, preprocessed), tiled to the batch size. Each configuration runs
for ``--seconds`` after a warm-up; configurations are measured in turn, ``--rounds`` times, and the median is
reported (shared machines drift). FLOPs per window are counted by ``torch.utils.flop_counter`` (a
multiply-add is 2 FLOPs): small 0.058, medium 2.28, large 12.1 GFLOP. The peak is the device's dense peak for
the precision: on NVIDIA GPUs from a table of data-sheet figures, on CPUs estimated as
cores x clock x FLOPs per cycle (say which with ``--peak-tflops`` when you know better). ``bf16`` runs under
``torch.autocast``; ``--compile`` adds ``torch.compile`` variants. Prints a table and writes JSON
(``benchmarks/results/throughput-<host>.json``; GPU results belong there, named by machine).
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
from _common import encoder_for, machine, print_table, shared_dir, write_json

# Dense data-sheet peaks, TFLOP/s: (fp32 without tensor cores, bf16 tensor cores).
GPU_PEAKS = {
    "H100 80GB HBM3": (67.0, 989.0),
    "H100 PCIe": (51.0, 756.0),
    "H200": (67.0, 989.0),
    "A100": (19.5, 312.0),
    "L4": (30.3, 121.0),
    "RTX 4090": (82.6, 165.0),
}


def window_flops(encoder: torch.nn.Module) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        encoder(torch.zeros(1, 1, 5000, device=next(encoder.parameters()).device))
    return float(counter.get_total_flops())


def cpu_peak_tflops(precision: str) -> float:
    """Cores x clock x FLOPs per cycle: 2 FMA x 16 fp32 lanes x 2 with AVX-512 (Zen 4 runs it as 2 x 256 bit, the
    same 32 FLOP/cycle); AVX-512 BF16 dot products double that for bf16."""
    import os

    mhz = max(
        float(line.split(":")[1])
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if line.startswith("cpu MHz")
    )
    per_cycle = 32 * (2 if precision == "bf16" else 1)
    return (os.cpu_count() or 1) * mhz * 1e6 * per_cycle / 1e12


def gpu_peak_tflops(precision: str) -> float | None:
    name = torch.cuda.get_device_name(0)
    for key, (fp32, bf16) in GPU_PEAKS.items():
        if key in name:
            return bf16 if precision == "bf16" else fp32
    return None


def measure(forward, batch: torch.Tensor, precision: str, seconds: float) -> float:
    from clef_sdk.precision import autocast

    device = batch.device
    with torch.inference_mode(), autocast(precision, device):
        for _ in range(3):
            forward(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            forward(batch)
            n += len(batch)
            if device.type == "cuda" and n % (len(batch) * 20) == 0:
                torch.cuda.synchronize()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--sizes", default="small,medium")
    parser.add_argument("--batch-sizes", default="1,16,32,64")
    parser.add_argument("--precisions", default=None, help="default: fp32, plus bf16 where native")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per configuration and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--peak-tflops", type=float, help="override the device's peak (fp32; bf16 is taken as given too)"
    )
    parser.add_argument("--output", help="JSON path")
    args = parser.parse_args(argv)

    from clef_sdk.precision import cpu_has_native_bf16

    device = torch.device(args.device)
    native_bf16 = cpu_has_native_bf16() if device.type == "cpu" else torch.cuda.is_bf16_supported()
    precisions = args.precisions.split(",") if args.precisions else ["fp32"] + (["bf16"] if native_bf16 else [])
    windows = torch.from_numpy(np.load(shared_dir() / "conformance" / "windows.npy")).unsqueeze(1)
    results = []
    for size in args.sizes.split(","):
        encoder, weights = encoder_for(size, str(device))
        encoder.eval()
        flops = window_flops(encoder)
        variants = [("eager", encoder)] + (
            [("compiled", torch.compile(encoder, dynamic=False))] if args.compile else []
        )
        configs = [(b, p, v, f) for b in map(int, args.batch_sizes.split(",")) for p in precisions for v, f in variants]
        rates: dict[tuple[int, str, str], list[float]] = {(b, p, v): [] for b, p, v, _ in configs}
        for _ in range(args.rounds):
            for batch_size, precision, variant, forward in configs:
                batch = windows.repeat(-(-batch_size // len(windows)), 1, 1)[:batch_size].to(device)
                rates[(batch_size, precision, variant)].append(measure(forward, batch, precision, args.seconds))
        for (batch_size, precision, variant), values in rates.items():
            rate = statistics.median(values)
            peak = args.peak_tflops or (
                cpu_peak_tflops(precision) if device.type == "cpu" else gpu_peak_tflops(precision)
            )
            achieved = rate * flops / 1e12
            results.append(
                {
                    "size": size,
                    "weights": weights,
                    "batch_size": batch_size,
                    "precision": precision,
                    "variant": variant,
                    "windows_per_s": rate,
                    "all_rounds": values,
                    "gflop_per_window": flops / 1e9,
                    "tflops": achieved,
                    "peak_tflops": peak,
                    "fraction_of_peak": achieved / peak if peak else None,
                }
            )
        del encoder, variants
    rows = [
        (
            r["size"],
            r["batch_size"],
            r["precision"],
            r["variant"],
            f"{r['windows_per_s']:.0f}",
            f"{min(r['all_rounds']):.0f}-{max(r['all_rounds']):.0f}",
            f"{r['tflops']:.3f}",
            f"{r['fraction_of_peak']:.1%}" if r["fraction_of_peak"] else "?",
        )
        for r in results
    ]
    info = machine()
    print(
        f"{info.get('cpu') if device.type == 'cpu' else info.get('gpu')}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; median of {args.rounds} rounds x {args.seconds:g} s\n"
    )
    print_table(("size", "batch", "precision", "variant", "windows/s", "range", "TFLOP/s", "of peak"), rows)
    write_json("throughput", {"device": str(device), "results": results}, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
