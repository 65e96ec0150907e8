"""Linear probe vs the fine-tuning protocols on real ECG, with bootstrap intervals by patient, and the time each
takes; then fine-tuning throughput.

Run from the repository root (needs the shared fixtures folder, ``../shared`` or ``$CLEF_SDK_SHARED``)::

    python benchmarks/bench_finetune.py                    # all tasks, both encoders, every protocol (CPU)
    python benchmarks/bench_finetune.py --tasks pvc --max-epochs 20
    python benchmarks/bench_finetune.py --quick            # seconds: the same code path on a sliver of data

Tasks (patients never on both sides; the test patients are fixed by a seeded split):
- ``pvc``: MIT-BIH, 10 s windows (360 Hz) labelled "contains a PVC beat", grouped by record; 4 of the 12 records
  are the test set (2 PVC-rich, 2 nearly PVC-free), ``--windows-per-record`` windows each.
- ``af``: LUDB lead II (500 Hz, 10 s), atrial fibrillation or flutter vs any sinus rhythm; one patient per record;
  30% of patients test, stratified.
- ``age``: LUDB lead II, the patient's age (regression, MAE in years); 30% of patients test.

Encoders: the shared conformance checkpoint (CLEF-small after 2 pretraining steps: real weights, weak features) and
``clef.build("small", seed=0)`` (random init). Methods: ``probe`` (``clef.fit_probe``: frozen embeddings, a
cross-validated logistic/ridge head) and ``finetune`` with each protocol. ``--max-epochs`` caps every protocol's
epochs (the authors' 100 take hours on a CPU; the cap is printed). Throughput: optimiser steps of 64 crops
(forward + backward + AdamW), small and medium, on this machine's CPU.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))
sys.path.insert(0, str(REPO / "benchmarks"))

import clef_sdk as clef
from clef_sdk.probes.metrics import bootstrap_metrics

PROTOCOL_NAMES = ("linear", "upstream", "full", "linear-then-full")
TEST_RECORDS_PVC = ("106", "200", "100", "123")


def _shared() -> Path:
    from _common import require_shared

    return require_shared()


def task_data(name: str, quick: bool, windows_per_record: int) -> dict[str, Any]:
    """``X``, ``y``, ``groups``, ``fs`` and the test mask of a task."""
    from _datasets import load_ludb, load_mitdb_windows

    data_dir = _shared() / "data"
    if name == "pvc":
        data = load_mitdb_windows(data_dir, windows_per_record=6 if quick else windows_per_record)
        test = np.isin(data["records"], TEST_RECORDS_PVC)
        return {"X": data["signals"], "y": data["labels"], "groups": data["records"], "fs": 360.0, "test": test}
    ludb = load_ludb(data_dir, lead="ii")
    rhythm = np.char.lower(ludb["rhythm"].astype(str))
    rng = np.random.default_rng(0)
    if name == "af":
        atrial = np.char.find(rhythm, "atrial") >= 0
        keep = atrial | (np.char.find(rhythm, "sinus") >= 0)
        y = atrial[keep].astype(int)
        test = np.zeros(len(y), bool)
        for value in (0, 1):  # 30% of each class's patients
            members = np.flatnonzero(y == value)
            test[rng.choice(members, size=max(1, round(0.3 * len(members))), replace=False)] = True
        X, groups = ludb["signals"][keep], ludb["ids"][keep]
    elif name == "age":
        keep = np.isfinite(ludb["age"])
        y = ludb["age"][keep]
        test = rng.random(len(y)) < 0.3
        X, groups = ludb["signals"][keep], ludb["ids"][keep]
    else:
        raise SystemExit(f"unknown task {name!r}")
    if quick:
        order = np.r_[np.flatnonzero(test)[:8], np.flatnonzero(~test)[:24]]
        if name == "af":
            order = np.r_[np.flatnonzero(test & (y == 1))[:3], np.flatnonzero(test & (y == 0))[:5],
                          np.flatnonzero(~test & (y == 1))[:6], np.flatnonzero(~test & (y == 0))[:18]]  # fmt: skip
        X, y, groups, test = X[order], y[order], groups[order], test[order]
    return {"X": X, "y": y, "groups": groups, "fs": 500.0, "test": test}


def encoders() -> dict[str, clef.ClefEncoder]:
    checkpoint = _shared() / "conformance" / "clef_small_lightning.ckpt"
    return {"conformance": clef.load(checkpoint, device="cpu"), "random-init": clef.build("small", seed=0)}


def score(
    task: str, truth: np.ndarray, scores: np.ndarray, groups: np.ndarray, n_bootstrap: int
) -> tuple[float, float, float]:
    name = "mae" if task == "age" else "auroc"
    kind = "regression" if task == "age" else "binary"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = bootstrap_metrics(truth, scores, task=kind, groups=groups, n_bootstrap=n_bootstrap)
    entry = report[name]
    return entry["estimate"], entry["ci_low"], entry["ci_high"]


def run_probe(data: dict[str, Any], encoder: clef.ClefEncoder, task: str, quick: bool) -> np.ndarray:
    train = ~data["test"]
    options: dict[str, Any] = {"cv": 3} if quick else {}
    probe = clef.fit_probe(data["X"][train], data["y"][train], fs=data["fs"], model=encoder, groups=data["groups"][train],
                           task="regression" if task == "age" else "binary", **options)  # fmt: skip
    if task == "age":
        return np.asarray(probe.predict(data["X"][data["test"]]))
    return np.asarray(probe.predict_proba(data["X"][data["test"]]))[:, 1]


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """``"full:encoder_lr_scale=1.0,patience=none"`` -> ``("full", {"encoder_lr_scale": 1.0, "patience": None})``."""
    name, _, rest = text.partition(":")
    if name not in PROTOCOL_NAMES:
        raise SystemExit(f"unknown protocol {name!r}; choose from {PROTOCOL_NAMES}")
    overrides: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if value.lower() in ("none", "true", "false"):
            overrides[key] = {"none": None, "true": True, "false": False}[value.lower()]
        else:
            try:
                overrides[key] = int(value) if value.lstrip("-").isdigit() else float(value)
            except ValueError:
                overrides[key] = value
    return name, overrides


def run_finetune(
    data: dict[str, Any], encoder: clef.ClefEncoder, task: str, protocol: str, max_epochs: int
) -> tuple[np.ndarray, dict[str, Any]]:
    from clef_sdk.train import finetune

    train = ~data["test"]
    protocol, overrides = parse_variant(protocol)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = finetune(data["X"][train], data["y"][train], fs=data["fs"], model=encoder, groups=data["groups"][train],
                         task="regression" if task == "age" else "binary", protocol=protocol, max_epochs=max_epochs,
                         progress=False, accelerator="cpu", **overrides)  # fmt: skip
    test = data["X"][data["test"]]
    scores = model.predict(test, data["fs"]) if task == "age" else model.predict_proba(test, data["fs"])[:, 1]
    return np.asarray(scores), model.training_info


def throughput(size: str, batch: int, steps: int) -> float:
    """Optimiser steps per second x batch: windows per second of fine-tuning (forward, backward, AdamW)."""
    model = clef.TaskModel(clef.build(size, seed=0), "binary", [0, 1])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ecg = np.load(_shared() / "data" / "mitdb-tpcp" / "100.npz")["ecg"][: 360 * 10 * batch]
    windows = torch.from_numpy(clef.preprocess(ecg.reshape(batch, -1), 360)[:, :1])  # (batch, 1, 5000)
    targets = torch.randint(0, 2, (batch,)).float()
    timings = []
    for step in range(steps + 1):
        start = time.perf_counter()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(windows)[:, 0], targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step:  # the first step warms up
            timings.append(time.perf_counter() - start)
    return batch / float(np.median(timings))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["pvc", "af", "age"], choices=["pvc", "af", "age"])
    parser.add_argument(
        "--protocols",
        nargs="+",
        default=list(PROTOCOL_NAMES),
        help="protocols, each optionally with overrides: 'full:encoder_lr_scale=1.0,monitor=val_loss,patience=5'",
    )
    parser.add_argument("--encoders", nargs="+", default=["conformance", "random-init"])
    parser.add_argument("--max-epochs", type=int, default=30)
    parser.add_argument("--windows-per-record", type=int, default=40)
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--no-throughput", action="store_true")
    parser.add_argument("--quick", action="store_true", help="a sliver of the data, 1 epoch: seconds")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    max_epochs = 1 if args.quick else args.max_epochs
    n_bootstrap = 50 if args.quick else args.bootstrap
    chosen = {name: encoder for name, encoder in encoders().items() if name in args.encoders}
    rows = []
    print(f"max epochs {max_epochs}; CPU threads {torch.get_num_threads()}; intervals: 95% bootstrap by patient")
    print(
        f"{'task':<5} {'encoder':<12} {'method':<17} {'metric':>7} {'95% CI':>16} {'epochs':>6} {'best':>5} {'seconds':>8}"
    )
    for task in args.tasks:
        data = task_data(task, args.quick, args.windows_per_record)
        truth = data["y"][data["test"]]
        groups = data["groups"][data["test"]]
        for encoder_name, encoder in chosen.items():
            methods = ["probe", *args.protocols]
            for method in methods:
                start = time.perf_counter()
                if method == "probe":
                    scores, info = run_probe(data, encoder, task, args.quick), {}
                else:
                    scores, info = run_finetune(data, encoder, task, method, max_epochs)
                seconds = time.perf_counter() - start
                estimate, low, high = score(task, truth, scores, groups, n_bootstrap)
                row = (
                    task,
                    encoder_name,
                    method,
                    estimate,
                    low,
                    high,
                    info.get("epochs", "-"),
                    info.get("best_epoch", "-"),
                    seconds,
                )
                rows.append(row)
                print(f"{task:<5} {encoder_name:<12} {method:<17} {estimate:>7.3f} [{low:>6.3f}, {high:>6.3f}] "
                      f"{row[6]!s:>6} {row[7]!s:>5} {seconds:>8.1f}", flush=True)  # fmt: skip
    if not args.no_throughput:
        print("\nfine-tuning throughput on this CPU (windows/s, median of steps; forward + backward + AdamW)")
        for size in ("small", "medium"):
            for batch in (16,) if args.quick else (64,):
                rate = throughput(size, batch, 2 if args.quick else 5)
                print(f"{size:<7} batch {batch:>3}: {rate:8.1f} windows/s", flush=True)


if __name__ == "__main__":
    main()
