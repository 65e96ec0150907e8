"""Heart-rate regression on CPSC 2019: a ridge probe on CLEF embeddings, fitted straight from raw ECG.

The 50 CPSC 2019 sample records are single-lead, 10 s at 500 Hz (CLEF's native input); the reference heart
rate is 60 / median RR of the expert R peaks. ``fit_probe`` is given the raw signals (with ``fs``), so the
Pipeline it returns starts with a ``ClefEmbedder`` and predicts from raw ECG. That Pipeline is then
cross-validated as any scikit-learn regressor (5 folds; each fold embeds its own training records once),
and the out-of-fold predictions get percentile-bootstrap intervals, next to a predict-the-mean baseline.

    python examples/probe_cpsc_hr.py --model medium
    python examples/probe_cpsc_hr.py --model path/to/clef_small.ckpt
    python examples/probe_cpsc_hr.py --model path/to/clef_small.ckpt --quick   # 20 records: a smoke test

Data: ``cpsc2019-sample/`` (see its README.md: no explicit data license; research/test use only).
Two records (data_00224, data_00949) hold saturated values; they are kept, as real data.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _datasets import add_common_arguments, finish_figure, load_cpsc2019, probe_options, resolve_common_arguments, take

import clef_sdk as clef
from clef_sdk.probes.metrics import bootstrap_metrics

OUTER_FOLDS = 5
QUICK_RECORDS = 20  # --quick: the first 20 records


def run(args: argparse.Namespace) -> dict[str, object]:
    from sklearn.base import clone
    from sklearn.model_selection import KFold, cross_val_predict

    data = load_cpsc2019(args.data_dir)
    if args.quick:
        data = take(data, slice(QUICK_RECORDS))
    signals, heart_rate, fs = data["signals"], data["heart_rate"], float(data["fs"])
    print(
        f"CPSC 2019 sample: {len(signals)} records, 10 s at {fs:g} Hz; heart rate {heart_rate.min():.0f}-"
        f"{heart_rate.max():.0f} bpm (median {np.median(heart_rate):.0f})"
    )

    started = time.perf_counter()
    probe = clef.fit_probe(
        signals,
        heart_rate,
        fs=fs,
        model=args.model,
        batch_size=args.batch_size,
        device=args.device,
        **probe_options(args.quick),
    )
    print(f"fit_probe on raw ECG in {time.perf_counter() - started:.1f} s")
    print(probe.summary_, "\n")

    outer = KFold(OUTER_FOLDS, shuffle=True, random_state=0)
    predicted = cross_val_predict(clone(probe), signals, heart_rate, cv=outer)
    report = bootstrap_metrics(heart_rate, predicted, task="regression", n_bootstrap=args.n_bootstrap)
    print(report.table(f"Heart rate (bpm), out-of-fold ({OUTER_FOLDS}-fold CV), bootstrap over records:"), "\n")

    baseline = np.empty_like(heart_rate)
    for train, test in outer.split(signals):
        baseline[test] = heart_rate[train].mean()
    baseline_mae = float(np.mean(np.abs(baseline - heart_rate)))
    print(f"baseline (predict the training mean): MAE {baseline_mae:.1f} bpm")
    save_figure(args.figure, heart_rate, predicted, report, args.model)
    return {"probe": report, "baseline_mae": baseline_mae}


def save_figure(path: Path, truth: np.ndarray, predicted: np.ndarray, report, model: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5, 5))
    axis.scatter(truth, predicted, s=18)
    low, high = min(truth.min(), predicted.min()) - 5, max(truth.max(), predicted.max()) + 5
    axis.plot([low, high], [low, high], ls=":", color="grey")
    mae, r = report["mae"], report["pearson_r"]
    axis.set(
        xlim=(low, high),
        ylim=(low, high),
        xlabel="reference heart rate (bpm)",
        ylabel="out-of-fold prediction (bpm)",
        title=f"MAE {mae['estimate']:.1f} [{mae['ci_low']:.1f}, {mae['ci_high']:.1f}] bpm, "
        f"r {r['estimate']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]",
    )
    finish_figure(figure, path, f"CPSC 2019: CLEF ridge probe (weights: {Path(str(model)).name})")


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser, figure="probe_cpsc_hr.png", quick=f"the first {QUICK_RECORDS} records")
    return run(resolve_common_arguments(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
