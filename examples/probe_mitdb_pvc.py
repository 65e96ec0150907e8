"""PVC vs normal 10 s windows of MIT-BIH (360 Hz): a linear probe on CLEF embeddings, split by record.

Each MIT-BIH record (≈30 min, lead MLII) is cut into consecutive 10 s windows; a window is positive when at
least one of its beats is annotated PVC. Records are patients, so every split and every bootstrap is by
record: the 12 records form 3 folds of 4 (sorted record numbers, fold = position mod 3). The script

1. embeds all 2,160 windows once (``clef.embed`` resamples 360 -> 500 Hz itself),
2. fits a probe on the records of folds 1-2 and evaluates it on fold 0 (``fit_probe`` / ``evaluate_probe``),
   with the interval from resampling records, and, for contrast, from resampling windows (too narrow),
3. repeats for each fold and pools the out-of-fold scores of all 12 records,
4. prints the metrics and saves a figure (ROC curves and score distributions).

    python examples/probe_mitdb_pvc.py --model medium                      # released weights
    python examples/probe_mitdb_pvc.py --model path/to/clef_small.ckpt     # any weights file
    python examples/probe_mitdb_pvc.py --model path/to/clef_small.ckpt --quick   # 100 s per record: smoke test

Data: ``mitdb-tpcp/`` (see its README.md; MIT-BIH Arrhythmia Database, ODC-By 1.0).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _datasets import (
    MITDB_RECORDS,
    add_common_arguments,
    finish_figure,
    load_mitdb_windows,
    probe_options,
    resolve_common_arguments,
)

import clef_sdk as clef
from clef_sdk.probes.metrics import bootstrap_metrics

N_FOLDS = 3
QUICK_WINDOWS = 10  # --quick: the first 10 windows of each record (every fold still holds PVC windows)


def record_folds(records: np.ndarray) -> np.ndarray:
    """Fold of each window: the record's position among the sorted record names, mod 3."""
    order = {name: i % N_FOLDS for i, name in enumerate(sorted(MITDB_RECORDS))}
    return np.array([order[name] for name in records])


def run(args: argparse.Namespace) -> dict[str, object]:
    data = load_mitdb_windows(args.data_dir, windows_per_record=QUICK_WINDOWS if args.quick else None)
    windows, labels, records = data["signals"], data["labels"], data["records"]
    fs = float(data["fs"])
    print(
        f"MIT-BIH: {len(windows)} windows of 10 s at {fs:g} Hz from {len(np.unique(records))} records; "
        f"{labels.sum()} contain a PVC"
    )

    started = time.perf_counter()
    embeddings = clef.embed(windows, fs=fs, model=args.model, batch_size=args.batch_size, device=args.device)
    print(f"embedded with {args.model} in {time.perf_counter() - started:.1f} s -> {embeddings.shape}\n")

    folds = record_folds(records)
    oof = np.zeros(len(labels))
    reports = {}
    for fold in range(N_FOLDS):
        train, test = folds != fold, folds == fold
        probe = clef.fit_probe(embeddings[train], labels[train], groups=records[train], **probe_options(args.quick))
        oof[test] = probe.predict_proba(embeddings[test])[:, 1]
        if fold == 0:
            names = [", ".join(str(r) for r in np.unique(records[part])) for part in (train, test)]
            print(f"fold 0: train on records {names[0]}; test on records {names[1]}")
            print(probe.summary_, "\n")
            by_record = clef.evaluate_probe(
                probe, embeddings[test], labels[test], groups=records[test], n_bootstrap=args.n_bootstrap
            )
            by_window = clef.evaluate_probe(probe, embeddings[test], labels[test], n_bootstrap=args.n_bootstrap)
            print(by_record.table("Held-out records (fold 0), bootstrap over records:"), "\n")
            print(by_window.table("Same predictions, bootstrap over windows (ignores patients: too narrow):"), "\n")
            reports["fold0_by_record"], reports["fold0_by_window"] = by_record, by_window

    pooled = bootstrap_metrics(labels, oof, task="binary", groups=records, n_bootstrap=args.n_bootstrap)
    print(pooled.table(f"All 12 records, out-of-fold ({N_FOLDS} folds by record), bootstrap over records:"))
    reports["pooled"] = pooled
    save_figure(args.figure, labels, oof, folds, pooled, args.model)
    return reports


def save_figure(path: Path, labels: np.ndarray, scores: np.ndarray, folds: np.ndarray, report, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for fold in range(N_FOLDS):
        mask = folds == fold
        fpr, tpr, _ = roc_curve(labels[mask], scores[mask])
        left.plot(fpr, tpr, lw=1, alpha=0.6, label=f"fold {fold}")
    fpr, tpr, _ = roc_curve(labels, scores)
    auroc = report["auroc"]
    left.plot(
        fpr,
        tpr,
        color="black",
        lw=2,
        label=f"pooled AUROC {auroc['estimate']:.2f} [{auroc['ci_low']:.2f}, {auroc['ci_high']:.2f}]",
    )
    left.plot([0, 1], [0, 1], ls=":", color="grey")
    left.set(xlabel="false positive rate", ylabel="true positive rate", title="PVC vs normal windows, held-out records")
    left.legend(loc="lower right", fontsize=8)
    bins = np.linspace(0, 1, 31)
    right.hist(scores[labels == 0], bins=bins, alpha=0.6, density=True, label="no PVC")
    right.hist(scores[labels == 1], bins=bins, alpha=0.6, density=True, label="≥1 PVC")
    right.set(xlabel="out-of-fold P(PVC)", ylabel="density", title="probe scores")
    right.legend()
    finish_figure(figure, path, f"CLEF linear probe on MIT-BIH (weights: {Path(str(model)).name})")


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, figure="probe_mitdb_pvc.png", quick=f"the first {QUICK_WINDOWS} windows per record")
    return run(resolve_common_arguments(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
