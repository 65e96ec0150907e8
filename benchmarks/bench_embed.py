"""Embedding throughput on real ECG: preprocessing and forward-pass time per hour of ECG, by model size and
batch size, plus the end-to-end time of ``clef embed`` on the 30 min MIT-BIH record 100.

Run from the repository root (needs the shared fixtures folder, ``../shared`` or ``$CLEF_SDK_SHARED``)::

    python benchmarks/bench_embed.py                         # small + medium, batch sizes 1, 8, 32, CPU
    python benchmarks/bench_embed.py --sizes small --batch-sizes 32,128 --windows 256
    python benchmarks/bench_embed.py --device cuda --sizes small,medium,large

Weights: CLEF-small is the conformance checkpoint (``conformance/clef_small_lightning.ckpt``; ``--small``
overrides it); medium and large use the conformance README's deterministic weight rule (``--medium PATH``
overrides). Speed does not depend on the weight values. "per hour of ECG" = 360 windows of 10 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import clef_sdk as clef
from clef_sdk.weights.format import encoder_from_weights, extract_backbone

REPO = Path(__file__).resolve().parents[1]
WINDOWS_PER_HOUR = 360


def shared_dir() -> Path:
    return Path(os.environ.get("CLEF_SDK_SHARED") or REPO.parent / "shared")


def best_of(repeats: int, function, *args, **kwargs) -> tuple[float, object]:
    """Minimum wall time of ``repeats`` calls (the least disturbed by other load on the machine)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times), result


def ludb_lead_i(data: Path) -> np.ndarray:
    """Lead I of all LUDB records (int16 ADC counts, format 16), back to back: ~33 min at 500 Hz."""
    records = [
        int(line) for line in (data / "ludb" / "RECORDS").read_text().split() if line.strip().isdigit()
    ] or range(1, 201)
    parts = [
        np.fromfile(data / "ludb" / "data" / f"{record}.dat", dtype="<i2").reshape(-1, 12)[:, 0] for record in records
    ]
    return np.concatenate(parts).astype(np.float64)


def encoder_for(size: str, args: argparse.Namespace, conformance: Path) -> tuple[clef.ClefEncoder, str]:
    override = getattr(args, size, None)
    if override:
        return clef.load(override, device=args.device), Path(override).name
    if size == "small" and (conformance / "clef_small_lightning.ckpt").is_file():
        return clef.load(conformance / "clef_small_lightning.ckpt", device=args.device), "conformance ckpt"
    sys.path.insert(0, str(REPO / "tests"))
    from conformance_helpers import rule_state_dict  # the conformance README's weight rule

    encoder = encoder_from_weights(extract_backbone(rule_state_dict(conformance, size)))
    return encoder.to(args.device), "rule weights"


def time_forward(encoder: clef.ClefEncoder, windows: np.ndarray, batch_size: int, repeats: int, device: str) -> float:
    """Seconds for the forward passes over ``windows`` (already preprocessed) in batches of ``batch_size``."""
    batches = [torch.from_numpy(windows[i : i + batch_size]).unsqueeze(1) for i in range(0, len(windows), batch_size)]

    def run() -> None:
        with torch.inference_mode():
            for batch in batches:
                encoder(batch.to(device))

    with torch.inference_mode():  # warm-up: allocator, kernels
        encoder(batches[0].to(device))
    seconds, _ = best_of(repeats, run)
    return seconds


def clef_embed_cli(record: Path, weights: str, device: str) -> float | None:
    """Wall time of ``python -m clef_sdk embed record.npy --fs 360`` (interpreter start and imports included)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "100.npy"
        np.save(source, np.load(record)["ecg"])
        command = [
            sys.executable,
            "-m",
            "clef_sdk",
            "embed",
            str(source),
            "--fs",
            "360",
            "--model",
            weights,
            "--device",
            device,
            "--no-progress",
            "-o",
            str(Path(tmp) / "embedding.npy"),
        ]
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        if result.returncode != 0 or not (Path(tmp) / "embedding.npy").is_file():
            print(f"(clef embed failed: {result.stderr.strip().splitlines()[-1:] or result.returncode})")
            return None
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="small,medium", help="comma-separated sizes (default: small,medium)")
    parser.add_argument("--batch-sizes", default="1,8,32", help="comma-separated batch sizes (default: 1,8,32)")
    parser.add_argument("--windows", type=int, default=32, help="10 s windows timed per configuration (default: 32)")
    parser.add_argument(
        "--repeats", type=int, default=3, help="repeats per measurement; the best is reported (default: 3)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (default: cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--small", help="CLEF-small weights (default: the conformance checkpoint)")
    parser.add_argument("--medium", help="CLEF-medium weights (default: the conformance weight rule)")
    parser.add_argument("--large", help="CLEF-large weights (default: the conformance weight rule)")
    parser.add_argument("--no-cli", action="store_true", help="skip the `clef embed` subprocess timing")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]

    shared = shared_dir()
    conformance, data = shared / "conformance", shared / "data"
    record = data / "mitdb-tpcp" / "100.npz"
    if not record.is_file():
        parser.error(f"{record} not found: set CLEF_SDK_SHARED to the folder holding conformance/ and data/")
    mitdb = np.load(record)["ecg"].astype(np.float64)  # 30 min, 360 Hz
    ludb = ludb_lead_i(data)  # ~33 min, 500 Hz

    print(
        f"clef-sdk {clef.__version__}, torch {torch.__version__}, device {args.device}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs"
    )
    print(
        f"data: MIT-BIH 100 ({mitdb.size / 360 / 60:.0f} min at 360 Hz), LUDB lead I x {ludb.size // 5000} "
        f"({ludb.size / 500 / 60:.0f} min at 500 Hz); best of {args.repeats}\n"
    )

    rows: list[tuple[str, str, str, str, str]] = []
    for label, signal, fs in (("360 Hz (resampled)", mitdb, 360), ("500 Hz (native)", ludb, 500)):
        seconds, windows = best_of(args.repeats, clef.preprocess, signal, fs)
        hours = signal.size / fs / 3600
        rows.append(("preprocess", label, "-", f"{len(windows)}", f"{seconds / hours:8.2f} s"))

    windows = clef.preprocess(mitdb, 360)
    windows = np.concatenate([windows] * (-(-args.windows // len(windows))))[: args.windows]
    for size in sizes:
        encoder, origin = encoder_for(size, args, conformance)
        for batch_size in batch_sizes:
            seconds = time_forward(encoder, windows, batch_size, args.repeats, args.device)
            per_hour = seconds / len(windows) * WINDOWS_PER_HOUR
            rows.append((f"embed {size}", origin, str(batch_size), str(len(windows)), f"{per_hour:8.2f} s"))
        del encoder

    header = ("step", "input / weights", "batch", "windows", "per hour of ECG")
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(5)]
    line = " | ".join
    print(line(h.ljust(w) for h, w in zip(header, widths)))
    print(line("-" * w for w in widths))
    for row in rows:
        print(line(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))

    # `clef embed` on the 30 min record with the small weights: in process (load + embed) and as the command.
    small = args.small or (
        str(conformance / "clef_small_lightning.ckpt")
        if (conformance / "clef_small_lightning.ckpt").is_file()
        else "small"
    )
    clef.clear_cache()

    def embed_record() -> np.ndarray:
        signal = np.load(record)["ecg"]
        encoder = clef.load(small, device=args.device)
        return clef.embed(signal, 360, model=encoder, progress=False)

    in_process, embedding = best_of(args.repeats, embed_record)
    print(f"\nclef embed, MIT-BIH 100 (30 min, 180 windows), CLEF-small from {Path(small).name}:")
    print(f"  in process (read + load weights + preprocess + embed): {in_process:6.2f} s  -> {embedding.shape}")
    if not args.no_cli:
        cli = clef_embed_cli(record, small, args.device)
        if cli is not None:
            print(f"  `python -m clef_sdk embed 100.npy --fs 360` (with interpreter start): {cli:6.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
