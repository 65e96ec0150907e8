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

Re-running continues the runs in ``--work`` (``resume=True``) and reuses the store. Needs ``clef-sdk[train]``
and ``wfdb``; data: ``ludb/`` and ``mitdb-tpcp/`` from the shared folder (ODC-By 1.0).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import clef_sdk as clef  # noqa: E402
from _datasets import default_data_dir, finish_figure, load_ludb, load_mitdb_windows  # noqa: E402
from clef_sdk.probes.metrics import bootstrap_metrics  # noqa: E402
from probe_ludb import out_of_fold_scores, tasks  # noqa: E402
from probe_mitdb_pvc import record_folds  # noqa: E402

HELD_OUT_SINUS = 60


def split_ludb(ludb: dict[str, np.ndarray], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pretraining record ids, held-out record ids): all AF plus 60 random sinus records are held out."""
    rows, _, _ = tasks(ludb)["AF vs sinus"]
    af = ludb["rhythm"] == "Atrial fibrillation"
    sinus = rows & ~af
    rng = np.random.default_rng(seed)
    held_sinus = rng.choice(np.flatnonzero(sinus), HELD_OUT_SINUS, replace=False)
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
    run = fit(store, size="small", method=method, batch_size=args.batch_size, max_steps=args.steps,
              output=work / f"run-{method}", resume=True, checkpoint_every=250, num_workers=2, seed=args.seed,
              accelerator="cpu", progress=False, log_every=1)  # fmt: skip
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


def probe_scores(encoder: clef.ClefEncoder, mitdb: dict, ludb: dict, held: np.ndarray, n_bootstrap: int) -> dict:
    windows, labels, records = mitdb["signals"], mitdb["labels"], mitdb["records"]
    embeddings = clef.embed(windows, fs=float(mitdb["fs"]), model=encoder, device="cpu", batch_size=64, progress=False)
    folds = record_folds(records)
    oof = np.zeros(len(labels))
    for fold in range(folds.max() + 1):
        train, test = folds != fold, folds == fold
        probe = clef.fit_probe(embeddings[train], labels[train], groups=records[train])
        oof[test] = probe.predict_proba(embeddings[test])[:, 1]
    pvc = bootstrap_metrics(labels, oof, task="binary", groups=records, n_bootstrap=n_bootstrap)

    rows, af_labels, _ = tasks(ludb)["AF vs sinus"]
    in_held = np.isin(ludb["ids"], held)
    use = in_held[rows]
    ludb_embeddings = clef.embed(ludb["signals"][rows][use], fs=float(ludb["fs"]), model=encoder, device="cpu", progress=False)
    scores = out_of_fold_scores(clef.fit_probe(ludb_embeddings, af_labels[use]), ludb_embeddings, af_labels[use])
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
    parser.add_argument("--work", type=Path, default=Path("pretrain-small"), help="store, runs and weights go here")
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps per method")
    parser.add_argument("--batch-size", type=int, default=32, help="subjects per step")
    parser.add_argument("--methods", default="clef,simclr", help="comma-separated: clef, simclr, byol, moco")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--figure", type=Path, default=Path("pretrain_small.png"))
    args = parser.parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    data_dir = Path(args.data_dir or default_data_dir())

    ludb = load_ludb(data_dir, lead="i")
    pretraining_ids, held = split_ludb(ludb, args.seed)
    print(f"LUDB: {len(pretraining_ids)} records for pretraining, {len(held)} held out for the AF probe")
    from clef_sdk.train import prepare

    source = link_records(data_dir / "ludb", pretraining_ids, args.work / "source")
    store = prepare(source, args.work / "store", workers=2, progress=False)
    print(f"store: {store.describe()}")

    encoders: dict[str, clef.ClefEncoder] = {"random init": random_initialisation(args.seed)}
    curves = {}
    for method in args.methods.split(","):
        weights = pretrain(store.path, args.work, method, args)
        encoders[f"{method} pretrained"] = clef.load(weights, device="cpu")
        curves[method] = learning_curve(args.work / f"run-{method}")

    mitdb = load_mitdb_windows(data_dir)
    results = {}
    for name, encoder in encoders.items():
        reports = probe_scores(encoder, mitdb, ludb, held, args.n_bootstrap)
        results[name] = {task: {m: report[m] for m in ("auroc", "auprc")} for task, report in reports.items()}
    print("\nLinear probes (AUROC [95% bootstrap interval]):")
    tasks_names = list(next(iter(results.values())))
    print(f"{'weights':<22}" + "".join(f"{t:>36}" for t in tasks_names))
    for name, by_task in results.items():
        cells = [f"{by_task[t]['auroc']['estimate']:.3f} [{by_task[t]['auroc']['ci_low']:.3f}, {by_task[t]['auroc']['ci_high']:.3f}]" for t in tasks_names]
        print(f"{name:<22}" + "".join(f"{c:>36}" for c in cells))
    for method, (steps, losses) in curves.items():
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
        axis.errorbar(range(len(names)), estimate, yerr=[np.subtract(estimate, low), np.subtract(high, estimate)], fmt="o", capsize=4)
        axis.set_xticks(range(len(names)), names, rotation=15)
        axis.set(ylabel="AUROC", title=task)
    finish_figure(figure, path, "CLEF-small pretrained on 125 LUDB subjects (CPU)")


if __name__ == "__main__":
    main()
