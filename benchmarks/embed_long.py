"""End to end on a long recording: 24 h of real single-lead ECG at 250 Hz through ``clef.embed``, against the naive
loop of the authors' loaders, in one run on one machine.

    python benchmarks/embed_long.py --sizes small             # 24 h, 3 interleaved runs (about 4 min on 2 cores)
    python benchmarks/embed_long.py --sizes medium --repeats 1  # about 10 min on 2 cores
    python benchmarks/embed_long.py --hours 2 --repeats 1

The recording is the 12 MIT-BIH records of ``../shared/data/mitdb-tpcp`` resampled to 250 Hz and played back to
back (6 h) as often as needed. Each configuration runs in a fresh interpreter, so its peak RSS is its own:

- ``naive``: one window at a time, as the authors' loaders do: FFT resampling of the 10 s window
  (``scipy.signal.resample``), ``filtfilt`` with the b/a Butterworth, z-score, the model in eager float32 on a
  batch of one;
- ``clef fp32``: ``clef.embed(signal, 250, pooling=None)`` with the default settings (streaming, batches of 32,
  ``backend="auto"``: OpenVINO for small and medium on a CPU where it is installed, else torch);
- ``clef torch``: the same with ``backend="torch"``;
- ``clef bf16``: torch with ``precision="bf16"`` (only on CPUs with native bf16, or GPUs);
- ``clef onnxruntime``: fp32 with ``backend="onnxruntime"`` (CPU, where onnxruntime is installed).

``extra RSS`` is the peak minus the resident memory just before embedding (interpreter, torch, weights and the
input already loaded). The configurations run in turn ``--repeats`` times; times are medians and speed-ups the
median of the ratios of runs made side by side. Prints a table and writes
``benchmarks/results/embed_long-<host>.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    current_rss_mib,
    encoder_for,
    long_recording,
    peak_rss_mib,
    print_table,
    row_cosines,
    run_child,
    timed,
    write_json,
)

FS = 250
#: clef.embed's options per mode; "clef fp32" is the default settings (backend="auto")
MODES: dict[str, dict[str, str]] = {
    "clef fp32": {},
    "clef torch": {"backend": "torch"},
    "clef bf16": {"precision": "bf16", "backend": "torch"},
    "clef onnxruntime": {"backend": "onnxruntime"},
}


def naive_embed(encoder: torch.nn.Module, signal: np.ndarray, fs: int) -> np.ndarray:
    """Per-window FFT resampling, b/a ``filtfilt`` and z-score, then the model on one window at a time."""
    from scipy import signal as sps

    b, a = sps.butter(5, [0.67 / 250, 40 / 250], btype="band")
    width = 10 * fs
    out = []
    with torch.inference_mode():
        for start in range(0, len(signal) - width + 1, width):
            window = sps.resample(signal[start : start + width].astype(np.float64), 5000)
            window = sps.filtfilt(b, a, window)
            window = (window - window.mean()) / (window.std() + 1e-8)
            out.append(encoder(torch.from_numpy(window.astype(np.float32))[None, None]).numpy()[0])
    return np.stack(out)


def child(mode: str, size: str, path: str, device: str, output: str) -> None:
    import clef_sdk as clef

    encoder, _ = encoder_for(size, device)
    signal = np.load(path)
    minute = np.asarray(signal[: 60 * FS])
    if mode == "naive":  # warm-up: first calls allocate and pick kernels
        naive_embed(encoder, minute, FS)
    options = MODES.get(mode, {})
    if mode != "naive":
        clef.embed(minute, FS, model=encoder, progress=False, device=device, **options)
    before = current_rss_mib()
    if mode == "naive":
        seconds, embeddings = timed(naive_embed, encoder, signal, FS)
    else:
        seconds, embeddings = timed(
            clef.embed, signal, FS, model=encoder, pooling=None, progress=False, device=device, **options
        )
    np.save(output, embeddings)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "windows": len(embeddings),
                "peak_rss_mib": peak_rss_mib(),
                "rss_before_mib": before,
                "input_mib": signal.nbytes / 2**20,
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0, help="recording length (default: 24)")
    parser.add_argument("--sizes", default="small,medium", help="comma-separated sizes (default: small,medium)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration, interleaved (default: 3)")
    parser.add_argument("--output", help="JSON path (default: benchmarks/results/embed_long-<host>.json)")
    parser.add_argument(
        "--child", nargs=5, metavar=("MODE", "SIZE", "INPUT", "DEVICE", "OUTPUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child)
        return 0

    from clef_sdk.precision import cpu_has_native_bf16

    bf16 = cpu_has_native_bf16() if args.device == "cpu" else torch.cuda.is_bf16_supported()
    modes = (["naive"] if not args.no_naive else []) + ["clef fp32", "clef torch"] + (["clef bf16"] if bf16 else [])
    if args.device == "cpu" and importlib.util.find_spec("onnxruntime") is not None:
        modes.append("clef onnxruntime")
    results: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        recording = Path(tmp) / "recording.npy"
        np.save(recording, long_recording(args.hours, FS))
        for size in [s.strip() for s in args.sizes.split(",") if s.strip()]:
            outputs = {mode: Path(tmp) / f"{size}-{mode.replace(' ', '-')}.npy" for mode in modes}
            runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
            for _ in range(args.repeats):  # modes in turn, A B C A B C ...: a drifting machine hits all alike
                for mode in modes:
                    runs[mode].append(
                        run_child(Path(__file__), [mode, size, str(recording), args.device, str(outputs[mode])])
                    )
                    print(f"{size} {mode}: {runs[mode][-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
            reference = np.load(outputs["clef fp32"])
            for mode in modes:
                seconds = [run["seconds"] for run in runs[mode]]
                row: dict[str, object] = {
                    "size": size,
                    "mode": mode,
                    "seconds": statistics.median(seconds),
                    "all_seconds": seconds,
                    "windows": runs[mode][0]["windows"],
                    "input_mib": runs[mode][0]["input_mib"],
                    "peak_rss_mib": max(run["peak_rss_mib"] for run in runs[mode]),
                    "extra_rss_mib": max(run["peak_rss_mib"] - run["rss_before_mib"] for run in runs[mode]),
                    "min_cosine_to_clef_fp32": float(row_cosines(np.load(outputs[mode]), reference).min()),
                }
                row["windows_per_s"] = row["windows"] / row["seconds"]
                # speed-up: the median over repeats of the ratio of runs made side by side
                row["speedup"] = {
                    other: statistics.median(b["seconds"] / a["seconds"] for a, b in zip(runs[mode], runs[other]))
                    for other in ("naive", "clef fp32")
                    if other in runs and other != mode
                }
                results.append(row)

    rows = [
        (
            row["size"],
            row["mode"],
            f"{row['seconds']:.1f}",
            f"{row['windows_per_s']:.0f}",
            f"{row['peak_rss_mib']:.0f}",
            f"{row['extra_rss_mib']:.0f}",
            f"{row['min_cosine_to_clef_fp32']:.6f}",
            ", ".join(f"{value:.2f}x vs {other}" for other, value in row["speedup"].items()) or "-",
        )
        for row in results
    ]
    print(
        f"\n{args.hours:g} h of MIT-BIH ECG at {FS} Hz ({results[0]['input_mib']:.0f} MiB float32), device {args.device}, "
        f"{torch.get_num_threads()} threads, median of {args.repeats} run(s)\n"
    )
    print_table(
        ("size", "mode", "wall s", "windows/s", "peak RSS MiB", "extra RSS MiB", "min cos vs fp32", "speed-up"), rows
    )
    write_json("embed_long", {"hours": args.hours, "fs": FS, "device": args.device, "results": results}, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
