"""Atrial fibrillation vs sinus rhythm, and sex, from lead I of LUDB: linear probes on CLEF embeddings.

LUDB holds 200 resting 10 s ECGs at 500 Hz, one per subject (so records are patients). Lead I is embedded
once; each task is then evaluated by 5-fold stratified cross-validation of the probe that ``fit_probe``
returns (a scikit-learn Pipeline, cloned and refitted per fold, each fold with its own inner CV for the
regularisation), and the out-of-fold scores get percentile-bootstrap intervals.

* AF vs sinus: "Atrial fibrillation" (15) against all sinus rhythms (sinus rhythm, bradycardia, tachycardia,
  arrhythmia, irregular sinus rhythm: 182); the 3 atrial flutters are left out.
* sex: male (115) vs female (85).

    python examples/probe_ludb.py --model medium
    python examples/probe_ludb.py --model path/to/clef_small.ckpt
    python examples/probe_ludb.py --model path/to/clef_small.ckpt --quick   # 30 records: a smoke test

Data: ``ludb/`` (see its README.md; LUDB v1.0.1, ODC-By 1.0). Needs ``wfdb`` (``pip install clef-sdk[examples]``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _datasets import add_common_arguments, finish_figure, load_ludb, probe_options, resolve_common_arguments, take

import clef_sdk as clef
from clef_sdk.probes.metrics import bootstrap_metrics

OUTER_FOLDS = 5
QUICK_RECORDS_PER_CLASS = 15  # --quick: the 15 AF records and the first 15 others


def tasks(data: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """name -> (rows used, 0/1 labels, positive-class description)."""
    rhythm = data["rhythm"]
    af = rhythm == "Atrial fibrillation"
    sinus = np.char.find(np.char.lower(rhythm.astype(str)), "sinus") >= 0
    keep = af | sinus
    male = data["sex"] == "M"
    known_sex = np.isin(data["sex"], ["M", "F"])
    return {
        "AF vs sinus": (keep, af[keep].astype(int), "atrial fibrillation"),
        "sex": (known_sex, male[known_sex].astype(int), "male"),
    }


def out_of_fold_scores(probe, embeddings: np.ndarray, labels: np.ndarray) -> np.ndarray:
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    outer = StratifiedKFold(OUTER_FOLDS, shuffle=True, random_state=0)
    return cross_val_predict(clone(probe), embeddings, labels, cv=outer, method="predict_proba")[:, 1]


def run(args: argparse.Namespace) -> dict[str, object]:
    data = load_ludb(args.data_dir, lead="i")
    if args.quick:
        af = data["rhythm"] == "Atrial fibrillation"
        others = np.flatnonzero(~af)[:QUICK_RECORDS_PER_CLASS]
        data = take(data, np.sort(np.concatenate([np.flatnonzero(af)[:QUICK_RECORDS_PER_CLASS], others])))
    fs = float(data["fs"])
    print(f"LUDB: {len(data['signals'])} records (one per subject), lead I, 10 s at {fs:g} Hz")
    started = time.perf_counter()
    embeddings = clef.embed(data["signals"], fs=fs, model=args.model, batch_size=args.batch_size, device=args.device)
    print(f"embedded with {args.model} in {time.perf_counter() - started:.1f} s -> {embeddings.shape}\n")

    reports, curves = {}, {}
    for name, (rows, labels, positive) in tasks(data).items():
        print(f"== {name}: {labels.sum()} {positive} / {len(labels)} records")
        # the configuration that is cross-validated below
        probe = clef.fit_probe(embeddings[rows], labels, **probe_options(args.quick))
        print(probe.summary_)
        scores = out_of_fold_scores(probe, embeddings[rows], labels)
        report = bootstrap_metrics(labels, scores, task="binary", n_bootstrap=args.n_bootstrap)
        print(report.table(f"{name}, out-of-fold ({OUTER_FOLDS}-fold stratified CV), bootstrap over subjects:"), "\n")
        reports[name], curves[name] = report, (labels, scores)
    save_figure(args.figure, curves, reports, args.model)
    return reports


def save_figure(path: Path, curves: dict, reports: dict, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    figure, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 4.2))
    for axis, (name, (labels, scores)) in zip(np.atleast_1d(axes), curves.items()):
        fpr, tpr, _ = roc_curve(labels, scores)
        auroc = reports[name]["auroc"]
        axis.plot(
            fpr, tpr, lw=2, label=f"AUROC {auroc['estimate']:.2f} [{auroc['ci_low']:.2f}, {auroc['ci_high']:.2f}]"
        )
        axis.plot([0, 1], [0, 1], ls=":", color="grey")
        axis.set(xlabel="false positive rate", ylabel="true positive rate", title=f"LUDB lead I: {name}")
        axis.legend(loc="lower right")
    finish_figure(figure, path, f"CLEF linear probes, out-of-fold (weights: {Path(str(model)).name})")


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, figure="probe_ludb.png", quick=f"{2 * QUICK_RECORDS_PER_CLASS} records")
    return run(resolve_common_arguments(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
