"""Helpers shared by the benchmark scripts: real long recordings, weights, machine description, tables, JSON."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
# the conformance README's weight rule, and the row-wise cosine the scripts import from here
from conformance_helpers import row_cosines, rule_state_dict

__all__ = [
    "REPO",
    "RESULTS",
    "current_rss_mib",
    "encoder_for",
    "long_recording",
    "machine",
    "median_seconds",
    "peak_rss_mib",
    "print_table",
    "require_shared",
    "row_cosines",
    "rule_state_dict",
    "run_child",
    "shared_dir",
    "timed",
    "write_json",
]

RESULTS = REPO / "benchmarks" / "results"
# The 12 MIT-BIH records of ../shared/data/mitdb-tpcp: 30 min each at 360 Hz, lead MLII, mV.
MITDB_RECORDS = ("100", "102", "104", "105", "106", "108", "114", "116", "119", "121", "123", "200")


def shared_dir() -> Path:
    return Path(os.environ.get("CLEF_SDK_SHARED") or REPO.parent / "shared")


def require_shared() -> Path:
    shared = shared_dir()
    if not (shared / "data" / "mitdb-tpcp").is_dir():
        raise SystemExit(
            f"{shared} has no data/mitdb-tpcp: set CLEF_SDK_SHARED to the folder holding conformance/ and data/"
        )
    return shared


def long_recording(hours: float, fs: int = 250) -> np.ndarray:
    """``hours`` of real single-lead ECG at ``fs`` Hz, float32 mV: the 12 MIT-BIH records (6 h) resampled from
    360 Hz with ``resample_poly`` and played back to back, as often as needed, then cut to length."""
    from fractions import Fraction

    from scipy.signal import resample_poly

    ratio = Fraction(fs, 360)
    data = require_shared() / "data" / "mitdb-tpcp"
    parts = [
        resample_poly(np.load(data / f"{record}.npz")["ecg"].astype(np.float64), ratio.numerator, ratio.denominator)
        for record in MITDB_RECORDS
    ]
    six_hours = np.concatenate(parts).astype(np.float32)
    n = round(hours * 3600 * fs)
    return np.resize(six_hours, n)


def encoder_for(size: str, device: str = "cpu"):
    """CLEF-small from the conformance checkpoint; medium and large from the conformance weight rule (speed does
    not depend on the values; cosines between precisions are measured on these weights)."""
    import clef_sdk as clef
    from clef_sdk.weights.format import encoder_from_weights, extract_backbone

    conformance = shared_dir() / "conformance"
    if size == "small" and (conformance / "clef_small_lightning.ckpt").is_file():
        return clef.load(conformance / "clef_small_lightning.ckpt", device=device), "conformance checkpoint"
    encoder = encoder_from_weights(extract_backbone(rule_state_dict(conformance, size)))
    return encoder.to(device), "conformance weight rule"


def machine() -> dict[str, object]:
    """What the numbers were measured on: CPU model and the flags that matter, cores, torch, GPU."""
    info: dict[str, object] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    except OSError:
        lscpu = ""
    for line in lscpu.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            info["cpu"] = value.strip()
        if key.strip() == "Flags":
            flags = set(value.split())
            info["cpu_flags"] = sorted(
                flags & {"avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_tile", "fma"}
            )
    from clef_sdk.precision import cpu_has_native_bf16

    info["native_bf16"] = cpu_has_native_bf16()
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB."""
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage / 1024 if sys.platform != "darwin" else usage / 2**20


def current_rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_child(script: Path, arguments: list[str]) -> dict[str, object]:
    """Run ``script --child ...`` in a fresh interpreter (so peak RSS is its own) and return the JSON it prints last."""
    result = subprocess.run([sys.executable, str(script), "--child", *arguments], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"child {arguments} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    value = function(*args, **kwargs)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, value


def median_seconds(function, repeats: int = 5) -> float:
    """Median wall time of ``repeats`` calls of ``function`` after one warm-up call."""
    import statistics

    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def print_table(header: tuple[str, ...], rows: list[tuple[object, ...]]) -> None:
    cells = [tuple(str(c) for c in row) for row in rows]
    widths = [max(len(r[i]) for r in (header, *cells)) for i in range(len(header))]
    print(" | ".join(h.ljust(w) for h, w in zip(header, widths)))
    print(" | ".join("-" * w for w in widths))
    for row in cells:
        print(" | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))


def write_json(name: str, payload: dict[str, object], output: str | None) -> Path:
    """Write ``payload`` (with the machine description) to ``output`` or ``benchmarks/results/NAME-<host>.json``."""
    payload = {"benchmark": name, "machine": machine(), **payload}
    path = Path(output) if output else RESULTS / f"{name}-{platform.node() or 'machine'}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {path}")
    return path
