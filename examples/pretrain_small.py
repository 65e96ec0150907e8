"""Does pretraining help? CLEF-small pretrained on the CPU on real 12-lead ECG, then linear probes on held-out tasks.

1. LUDB is split by subject: every atrial-fibrillation record and 60 random sinus records are held out for the
   AF probe; the other 125 records (12 leads each, risk from the headers' age and sex) are the pretraining data.
2. ``clef train prepare`` makes a store of them; ``clef train fit`` pretrains CLEF-small with the CLEF objective
   and, for the ablation, SimCLR (same steps, same seed); ``clef train export`` writes each encoder.
3. Each encoder, and the same network at its seeded random initialisation, is probed with ``fit_probe``:
   PVC vs normal 10 s windows of MIT-BIH (out-of-fold over 3 folds of records, bootstrap over records) and AF vs
   sinus on the held-out LUDB records, lead I (5-fold stratified out-of-fold, bootstrap over subjects).

    python examples/pretrain_small.py                        # 1,500 steps per method (~12 min each on 2 CPU cores)
    python examples/pretrain_small.py --steps 300 --methods clef
    python examples/pretrain_small.py --quick      # 2 CLEF steps on 8 records, small probes: a smoke test

Re-running continues the runs in ``--work`` (``resume=True``) and reuses the store. Needs ``clef-sdk[train]``
and ``wfdb``; data: ``ludb/`` and ``mitdb-tpcp/`` from the shared folder (ODC-By 1.0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _datasets import (
    add_quick_argument,
    default_data_dir,
    finish_figure,
    load_ludb,
    load_mitdb_windows,
    probe_options,
    quick_dir,
)
from probe_ludb import out_of_fold_scores, tasks
from probe_mitdb_pvc import record_folds

import clef_sdk as clef
from clef_sdk.probes.metrics import bootstrap_metrics

HELD_OUT_SINUS = 60
# --quick: CLEF only, 2 steps of 4 subjects on 8 pretraining records; 15 sinus records held out (with the 15 AF);
# the first 10 windows of each MIT-BIH record; 100 bootstrap resamples; no data-loader workers
QUICK = {"steps": 2, "batch_size": 4, "methods": "clef", "n_bootstrap": 100}
QUICK_PRETRAINING_RECORDS, QUICK_HELD_OUT_SINUS, QUICK_WINDOWS = 8, 15, 10
DEFAULTS = {"steps": 1500, "batch_size": 32, "methods": "clef,simclr", "n_bootstrap": 1000}


def split_ludb(
    ludb: dict[str, np.ndarray], seed: int, held_out_sinus: int = HELD_OUT_SINUS
) -> tuple[np.ndarray, np.ndarray]:
    """(pretraining record ids, held-out record ids): all AF plus ``held_out_sinus`` random sinus records are held
    out."""
    rows, _, _ = tasks(ludb)["AF vs sinus"]
    af = ludb["rhythm"] == "Atrial fibrillation"
    sinus = rows & ~af
    rng = np.random.default_rng(seed)
    held_sinus = rng.choice(np.flatnonzero(sinus), held_out_sinus, replace=False)
    held = np.zeros(len(af), dtype=bool)
    held[np.flatnonzero(af)] = True
    held[held_sinus] = True
    return ludb["ids"][~held], ludb["ids"][held]


def link_records(ludb_dir: Path, ids: np.ndarray, destination: Path) -> Path:
    folder = destination / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for record in ids:
        for suffix in (".hea", ".dat"):
            target = folder / f"{record}{suffix}"
            if not target.exists():
                os.symlink((ludb_dir / "data" / f"{record}{suffix}").resolve(), target)
    return destination


def pretrain(store: Path, work: Path, method: str, args: argparse.Namespace) -> Path:
    from clef_sdk.train import export_checkpoint, fit

    started = time.perf_counter()
    run = fit(
        store,
        size="small",
        method=method,
        batch_size=args.batch_size,
        max_steps=args.steps,
        output=work / f"run-{method}",
        resume=True,
        checkpoint_every=250,
        num_workers=0 if args.quick else 2,
        seed=args.seed,
        accelerator="cpu",
        progress=False,
        log_every=1,
    )
    weights = work / f"clef-small-{method}.safetensors"
    export_checkpoint(run.checkpoint, weights)
    print(f"{method}: {args.steps} steps in {time.perf_counter() - started:.0f} s -> {weights}")
    return weights


def random_initialisation(seed: int) -> clef.ClefEncoder:
    """The network every run starts from: CLEF-small with the runs' seeded initial weights."""
    from clef_sdk.train import ClefPretraining

    encoder = ClefPretraining("small", seed=seed).backbone.eval()
    encoder.name = "random init"
    return encoder


def probe_scores(
    encoder: clef.ClefEncoder, mitdb: dict, ludb: dict, held: np.ndarray, n_bootstrap: int, quick: bool = False
) -> dict:
    windows, labels, records = mitdb["signals"], mitdb["labels"], mitdb["records"]
    embeddings = clef.embed(windows, fs=float(mitdb["fs"]), model=encoder, device="cpu", batch_size=64, progress=False)
    folds = record_folds(records)
    oof = np.zeros(len(labels))
    for fold in range(folds.max() + 1):
        train, test = folds != fold, folds == fold
        probe = clef.fit_probe(embeddings[train], labels[train], groups=records[train], **probe_options(quick))
        oof[test] = probe.predict_proba(embeddings[test])[:, 1]
    pvc = bootstrap_metrics(labels, oof, task="binary", groups=records, n_bootstrap=n_bootstrap)

    rows, af_labels, _ = tasks(ludb)["AF vs sinus"]
    in_held = np.isin(ludb["ids"], held)
    use = in_held[rows]
    ludb_embeddings = clef.embed(
        ludb["signals"][rows][use], fs=float(ludb["fs"]), model=encoder, device="cpu", progress=False
    )
    probe = clef.fit_probe(ludb_embeddings, af_labels[use], **probe_options(quick))
    scores = out_of_fold_scores(probe, ludb_embeddings, af_labels[use])
    af = bootstrap_metrics(af_labels[use], scores, task="binary", n_bootstrap=n_bootstrap)
    return {"MIT-BIH PVC vs normal": pvc, "LUDB AF vs sinus (held out)": af}


def learning_curve(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    frames = [pd.read_csv(path) for path in sorted((run_dir / "logs").glob("version_*/metrics.csv"))]
    metrics = pd.concat(frames).dropna(subset=["train/loss_step"]).drop_duplicates("step", keep="last")
    return metrics["step"].to_numpy(), metrics["train/loss_step"].to_numpy()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding ludb/ and mitdb-tpcp/")
    parser.add_argument(
        "--work",
        type=Path,
        default=None,
        help="store, runs and weights go here (default: pretrain-small; with --quick, a fresh one in the temporary folder)",
    )
    parser.add_argument("--steps", type=int, help=f"optimizer steps per method (default: {DEFAULTS['steps']})")
    parser.add_argument("--batch-size", type=int, help=f"subjects per step (default: {DEFAULTS['batch_size']})")
    parser.add_argument("--methods", help=f"comma-separated: clef, simclr, byol, moco (default: {DEFAULTS['methods']})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-bootstrap", type=int, help=f"default: {DEFAULTS['n_bootstrap']}")
    parser.add_argument("--figure", type=Path, default=None, help="default: pretrain_small.png (--quick: in --work)")
    add_quick_argument(
        parser,
        f"{QUICK['steps']} {QUICK['methods']} steps of {QUICK['batch_size']} on {QUICK_PRETRAINING_RECORDS} LUDB "
        f"records, {QUICK_WINDOWS} windows per MIT-BIH record; everything written under {quick_dir()}",
    )
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.work is None and args.quick:
        args.work = quick_dir() / "pretrain-small"
        shutil.rmtree(args.work, ignore_errors=True)  # a quick run starts afresh (no resume)
    args.work = args.work or Path("pretrain-small")
    if args.figure is None:
        args.figure = args.work / "pretrain_small.png" if args.quick else Path("pretrain_small.png")
    if args.quick:
        print("quick mode: a small slice of the data, to check that the example runs; its numbers mean nothing")
    torch.set_num_threads(os.cpu_count() or 1)
    data_dir = Path(args.data_dir or default_data_dir())

    ludb = load_ludb(data_dir, lead="i")
    pretraining_ids, held = split_ludb(ludb, args.seed, QUICK_HELD_OUT_SINUS if args.quick else HELD_OUT_SINUS)
    if args.quick:
        pretraining_ids = pretraining_ids[:QUICK_PRETRAINING_RECORDS]
    print(f"LUDB: {len(pretraining_ids)} records for pretraining, {len(held)} held out for the AF probe")
    from clef_sdk.train import prepare

    source = link_records(data_dir / "ludb", pretraining_ids, args.work / "source")
    store = prepare(source, args.work / "store", workers=1 if args.quick else 2, progress=False)
    print(f"store: {store.describe()}")

    encoders: dict[str, clef.ClefEncoder] = {"random init": random_initialisation(args.seed)}
    curves = {}
    for method in args.methods.split(","):
        weights = pretrain(store.path, args.work, method, args)
        encoders[f"{method} pretrained"] = clef.load(weights, device="cpu")
        curves[method] = learning_curve(args.work / f"run-{method}")

    mitdb = load_mitdb_windows(data_dir, windows_per_record=QUICK_WINDOWS if args.quick else None)
    results = {}
    for name, encoder in encoders.items():
        reports = probe_scores(encoder, mitdb, ludb, held, args.n_bootstrap, quick=args.quick)
        results[name] = {task: {m: report[m] for m in ("auroc", "auprc")} for task, report in reports.items()}
    print("\nLinear probes (AUROC [95% bootstrap interval]):")
    tasks_names = list(next(iter(results.values())))
    print(f"{'weights':<22}" + "".join(f"{t:>36}" for t in tasks_names))
    for name, by_task in results.items():
        cells = [
            f"{by_task[t]['auroc']['estimate']:.3f} [{by_task[t]['auroc']['ci_low']:.3f}, {by_task[t]['auroc']['ci_high']:.3f}]"
            for t in tasks_names
        ]
        print(f"{name:<22}" + "".join(f"{c:>36}" for c in cells))
    for method, (_steps, losses) in curves.items():
        head, tail = losses[: max(1, len(losses) // 10)].mean(), losses[-max(1, len(losses) // 10) :].mean()
        print(f"{method} loss: {head:.4f} over the first tenth of the run -> {tail:.4f} over the last tenth")
    (args.work / "results.json").write_text(json.dumps(results, indent=1, default=float))
    save_figure(args.figure, curves, results, tasks_names)
    return results


def save_figure(path: Path, curves: dict, results: dict, task_names: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 1 + len(task_names), figsize=(5 * (1 + len(task_names)), 4))
    for method, (steps, losses) in curves.items():
        axes[0].plot(steps, losses, lw=1, label=method)
    axes[0].set(xlabel="step", ylabel="training loss", title="learning curves")
    axes[0].legend()
    for axis, task in zip(axes[1:], task_names):
        names = list(results)
        estimate = [results[n][task]["auroc"]["estimate"] for n in names]
        low = [results[n][task]["auroc"]["ci_low"] for n in names]
        high = [results[n][task]["auroc"]["ci_high"] for n in names]
        axis.errorbar(
            range(len(names)),
            estimate,
            yerr=[np.subtract(estimate, low), np.subtract(high, estimate)],
            fmt="o",
            capsize=4,
        )
        axis.set_xticks(range(len(names)), names, rotation=15)
        axis.set(ylabel="AUROC", title=task)
    finish_figure(figure, path, "CLEF-small pretrained on 125 LUDB subjects (CPU)")


if __name__ == "__main__":
    main()
