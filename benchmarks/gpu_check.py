"""The one-command GPU check: run it once on any machine with a CUDA GPU, from the source tree, with no network.

    PYTHONPATH=. python benchmarks/gpu_check.py                 # about 3-5 minutes on an H100/H200
    PYTHONPATH=. python benchmarks/gpu_check.py --dry-run       # on a CPU, in seconds: checks that it runs (CI)

It needs torch and numpy (and scipy, which clef_sdk imports); everything else is optional and what needs a missing
package is skipped with its name: the ``gpu``-marked tests need pytest (and the shared fixtures for some),
fine-tuning's Lightning path is not used (the steps are timed on the bare modules). Steps:

1. the ``gpu``-marked tests (``pytest -m gpu``);
2. ``clef.embed`` windows/s on raw 250 Hz ECG through the GPU preprocessing, for small, medium and large in fp32
   and bf16, ``compile`` off and on, with the cosine of each setting's embeddings to the CPU fp32 ones (bf16 must
   reach ``clef_sdk.precision.bf16_min_cosine``: 0.9999 on a GPU);
3. pretraining (two views, the CLEF loss) and fine-tuning (encoder + linear head, BCE) optimiser steps/s at
   batch 256 in bf16;
4. ``clef.embed_archive`` records/s (npy parts, no pyarrow needed).

It writes ``gpu_check.json`` and ``gpu_check.md`` (a table) to ``--out``. Weights are random (``clef.build``):
speed does not depend on their values, and no download is needed. The ECG is the bundled MIT-BIH minute.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
OPTIONAL = ("pytest", "scipy", "neurokit2", "wfdb", "lightning", "onnxruntime", "pyarrow", "sklearn", "pandas")


def packages() -> dict[str, str | None]:
    """Version of each package the check may use (None: not installed)."""
    found: dict[str, str | None] = {"torch": torch.__version__, "numpy": np.__version__}
    for name in OPTIONAL:
        if importlib.util.find_spec(name) is None:
            found[name] = None
            continue
        try:
            module = __import__(name)
            found[name] = str(getattr(module, "__version__", "installed"))
        except Exception as exc:  # installed but broken: reported, never fatal
            found[name] = f"broken: {type(exc).__name__}"
    return found


def real_ecg(fs: int, seconds: float) -> np.ndarray:
    """``seconds`` of the bundled MIT-BIH minute (record 100, MLII), resampled to ``fs`` Hz and tiled."""
    from scipy.signal import resample_poly

    import clef_sdk as clef

    signal, rate, _ = clef.datasets.load_example("mitdb-100")
    resampled = resample_poly(signal, fs, int(rate))
    repeats = int(np.ceil(seconds * fs / len(resampled)))
    return np.tile(resampled, repeats)[: int(seconds * fs)].astype(np.float32)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_tests(dry_run: bool) -> dict[str, Any]:
    if importlib.util.find_spec("pytest") is None:
        return {"skipped": "pytest is not installed"}
    # the dry run takes one file of gpu tests: it checks the step, not the tests (a CPU skips them all anyway)
    where = REPO / "tests" / ("test_precision.py" if dry_run else "")
    args = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", str(where)]
    started = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr.strip()[-300:]
    # a CPU run skips them all; that is its expected result
    return {"returncode": done.returncode, "summary": summary, "seconds": round(time.perf_counter() - started, 1)}


def step_embed(
    device: torch.device, sizes: list[str], seconds: float, compile_modes: list[bool]
) -> list[dict[str, Any]]:
    import clef_sdk as clef

    ecg = real_ecg(250, seconds)
    rows = []
    for size in sizes:
        encoder = clef.build(size, seed=0).eval()
        reference = clef.embed(ecg[: 250 * 60], fs=250, model=encoder, pooling=None, device="cpu")
        on_device = encoder.to(device)
        for precision in ("fp32", "bf16"):
            for compiled in compile_modes:
                try:
                    clef.embed(
                        ecg[: 250 * 60], fs=250, model=on_device, precision=precision, compile=compiled, device=device
                    )
                    synchronise(device)
                    started = time.perf_counter()
                    clef.embed(ecg, fs=250, model=on_device, precision=precision, compile=compiled, device=device)
                    synchronise(device)
                    elapsed = time.perf_counter() - started
                    check = clef.embed(ecg[: 250 * 60], fs=250, model=on_device, pooling=None, precision=precision,
                                       compile=compiled, device=device)  # fmt: skip
                    cosine = float(
                        np.min(
                            np.sum(check * reference, 1)
                            / (np.linalg.norm(check, axis=1) * np.linalg.norm(reference, axis=1))
                        )
                    )
                    rows.append({"size": size, "precision": precision, "compile": compiled,
                                 "windows_per_s": round(seconds / 10 / elapsed, 1), "min_cosine_to_cpu_fp32": cosine})  # fmt: skip
                except Exception as exc:  # a setting this device refuses (bf16 emulated) is reported, not fatal
                    rows.append({"size": size, "precision": precision, "compile": compiled, "error": str(exc)[:200]})
        encoder.to("cpu")
    return rows


def step_training(device: torch.device, sizes: list[str], batch: int, steps: int) -> list[dict[str, Any]]:
    import clef_sdk as clef
    from clef_sdk.precision import autocast
    from clef_sdk.train.losses import clef_loss

    windows = clef.preprocess(real_ecg(500, 10 * batch * 2), fs=500)
    rows = []
    for size in sizes:
        encoder = clef.build(size, seed=0).to(device).train()
        head = torch.nn.Linear(encoder.embed_dim, 1).to(device)
        optimiser = torch.optim.AdamW(list(encoder.parameters()) + list(head.parameters()), lr=1e-4)
        x1 = torch.from_numpy(windows[:batch]).unsqueeze(1).to(device)
        x2 = torch.from_numpy(windows[batch : 2 * batch]).unsqueeze(1).to(device)
        risk = torch.rand(batch, device=device)
        target = (torch.rand(batch, device=device) > 0.5).float()
        precision = "bf16" if device.type == "cuda" else "fp32"
        for name in ("pretraining", "fine-tuning"):

            def one_step() -> None:
                optimiser.zero_grad(set_to_none=True)
                with autocast(precision, device):  # type: ignore[arg-type]
                    if name == "pretraining":
                        loss = clef_loss(encoder(x1).float(), encoder(x2).float(), risk)
                    else:
                        loss = torch.nn.functional.binary_cross_entropy_with_logits(
                            head(encoder(x1)).float()[:, 0], target
                        )
                loss.backward()
                optimiser.step()

            one_step()  # warm-up
            synchronise(device)
            started = time.perf_counter()
            for _ in range(steps):
                one_step()
            synchronise(device)
            elapsed = time.perf_counter() - started
            rows.append({"size": size, "step": name, "batch": batch, "precision": precision,
                         "steps_per_s": round(steps / elapsed, 2), "windows_per_s": round(steps * batch / elapsed, 1)})  # fmt: skip
    return rows


def step_archive(device: torch.device, records: int) -> dict[str, Any]:
    import clef_sdk as clef

    folder = Path(tempfile.mkdtemp(prefix="gpu-check-archive-"))
    ecg = real_ecg(250, 30)
    rows = []
    for index in range(records):
        np.save(folder / f"r{index:05d}.npy", np.roll(ecg, index * 97))
        rows.append(f"r{index:05d},r{index:05d}.npy,250,II")
    (folder / "manifest.csv").write_text("record,path,fs,lead\n" + "\n".join(rows) + "\n")
    started = time.perf_counter()
    run = clef.embed_archive(folder / "manifest.csv", folder / "out", model=clef.build("small", seed=0), format="npy",
                             shard_size=max(1, records // 4), devices=[str(device)], progress=False)  # fmt: skip
    elapsed = time.perf_counter() - started
    return {
        "records": records,
        "seconds": round(elapsed, 2),
        "records_per_s": round(records / elapsed, 1),
        "complete": run.complete,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# GPU check: {result['device']}", "", f"tests: {result['tests']}", ""]
    lines += ["| size | precision | compile | windows/s | min cosine to CPU fp32 |", "|---|---|---|---|---|"]
    for row in result["embed"]:
        speed = row.get("windows_per_s", row.get("error", ""))
        cosine = f"{row['min_cosine_to_cpu_fp32']:.6f}" if "min_cosine_to_cpu_fp32" in row else ""
        lines.append(f"| {row['size']} | {row['precision']} | {row['compile']} | {speed} | {cosine} |")
    lines += ["", "| size | step | batch | precision | steps/s | windows/s |", "|---|---|---|---|---|---|"]
    for row in result["training"]:
        lines.append(
            f"| {row['size']} | {row['step']} | {row['batch']} | {row['precision']} | {row['steps_per_s']} | {row['windows_per_s']} |"
        )
    lines += ["", f"archive: {result['archive']}", "", f"packages: {result['packages']}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="on the CPU, tiny sizes: check that the script runs")
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks" / "results", help="folder for the JSON and table"
    )
    args = parser.parse_args(argv)

    found = packages()
    missing = [name for name, version in found.items() if version is None]
    print(f"torch {torch.__version__}; missing (their steps are skipped): {', '.join(missing) or 'none'}")
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run on a CPU", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    name = "cpu (dry run)" if args.dry_run else torch.cuda.get_device_name(device)
    sizes = ["small"] if args.dry_run else ["small", "medium", "large"]
    result: dict[str, Any] = {"device": name, "python": platform.python_version(), "packages": found}
    started = time.perf_counter()
    result["tests"] = step_tests(args.dry_run)
    print(f"gpu tests: {result['tests']}")
    result["embed"] = step_embed(
        device, sizes, 60.0 if args.dry_run else 3600.0, [False] if args.dry_run else [False, True]
    )
    result["training"] = step_training(device, sizes, 8 if args.dry_run else 256, 2 if args.dry_run else 20)
    result["archive"] = step_archive(device, 8 if args.dry_run else 512)
    result["seconds"] = round(time.perf_counter() - started, 1)
    from clef_sdk.precision import bf16_min_cosine

    failures = [
        row
        for row in result["embed"]
        if row.get("precision") == "bf16" and row.get("min_cosine_to_cpu_fp32", 1.0) < bf16_min_cosine(device)
    ]
    result["bf16_cosine_ok"] = not failures
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "gpu_check_dry_run" if args.dry_run else "gpu_check"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (args.out / f"{stem}.md").write_text(markdown(result))
    print(markdown(result))
    print(f"written: {args.out / (stem + '.json')}, {args.out / (stem + '.md')} ({result['seconds']} s)")
    return 0 if result["bf16_cosine_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
