"""Do the attributions point at the PVCs? Integrated gradients of PVC detectors on held-out MIT-BIH records.

    python benchmarks/bench_explain.py            # about 2 min on 2 cores
    python benchmarks/bench_explain.py --quick    # seconds: a smoke run of the same code; its numbers mean nothing
    python benchmarks/bench_explain.py --windows 120 --n-steps 64 --output results.json

Needs the shared fixtures folder (``../shared`` or ``$CLEF_SDK_SHARED``): ``data/mitdb-tpcp`` (12 records, 30 min
at 360 Hz, every beat's R peak and the PVCs' positions) and ``conformance/clef_small_lightning.ckpt``.

For each encoder, CLEF-small from the conformance checkpoint (``clef.load``; two optimizer steps from random: a
nearly untrained network) and ``clef.build("small", seed=0)`` (random init), a PVC detector is made in the simplest
honest way: a ``TaskModel(encoder, "binary", ["normal", "pvc"])`` whose head is a logistic regression fitted on the
frozen encoder's embeddings of 10 s windows (label: the window holds at least one PVC), its scaler folded into the
linear head. Split by record, never by window: fitted on 9 records, evaluated on 116, 119 and 200 (PVC-rich).

On held-out 10 s windows holding both a PVC and another beat, ``clef_sdk.tasks.explain.explain`` attributes p(pvc)
to every sample, from two baselines: the flat line (the default: all-zero windows for the encoder) and the nearest
PVC-free window of the same record (a contrast with the same patient's normal rhythm; its beats fall elsewhere, so
it also moves attribution to where that window had beats). The table gives the mean |attribution| per sample
within +-150 ms of the annotated PVC beats and of the other beats (samples near both are left out), their ratio
(pooled over the windows, and the median of the per-window ratios), the mean p(pvc) on the windows and on the
baselines, the mean signed attribution near each kind of beat (positive: pushes p(pvc) up from the baseline's), and
the completeness error relative to the change of output. The last row is a reference: the same ratios for
``|x - mean(x)|``, the signal's own amplitude (PVCs are larger and wider than normal beats, and integrated
gradients multiply each gradient by the sample's distance from the baseline, so an attribution ratio at the
amplitude's says nothing beyond it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "examples"))
from _common import print_table, require_shared, write_json
from _datasets import load_mitdb_windows

import clef_sdk as clef
from clef_sdk.tasks import TaskModel
from clef_sdk.tasks.explain import explain

FS = 360
HALF_WIDTH = round(0.150 * FS)  # +-150 ms around an R peak, in samples
TEST_RECORDS = ("116", "119", "200")


def beat_positions(folder: Path, record: str) -> tuple[np.ndarray, np.ndarray]:
    """R-peak sample indices of every beat and of the PVCs of a record (two-column CSVs with a header)."""
    columns = [
        np.loadtxt(folder / f"{record}_{kind}.csv", delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)[:, 1]
        for kind in ("all", "pvc")
    ]
    return columns[0], columns[1]


def fit_head(model: TaskModel, embeddings: np.ndarray, labels: np.ndarray) -> None:
    """Logistic regression on standardised embeddings, copied into ``model.head`` with the scaler folded in."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(embeddings)
    regression = LogisticRegression(C=0.1, class_weight="balanced", max_iter=5000)
    regression.fit(scaler.transform(embeddings), labels)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    weight = regression.coef_[0] / scale
    bias = regression.intercept_[0] - float(np.sum(weight * scaler.mean_))
    with torch.no_grad():
        model.head.weight.copy_(torch.as_tensor(weight[None], dtype=model.head.weight.dtype))
        model.head.bias.copy_(torch.as_tensor([bias], dtype=model.head.bias.dtype))


def masks(n: int, beats: np.ndarray, pvc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Samples within HALF_WIDTH of a PVC, and of another beat, in a window of n samples (near both: neither)."""
    near = [np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)]
    pvc_set = set(pvc.tolist())
    for beat in beats:
        near[0 if int(beat) in pvc_set else 1][max(0, beat - HALF_WIDTH) : beat + HALF_WIDTH + 1] = True
    both = near[0] & near[1]
    return near[0] & ~both, near[1] & ~both


def fit_detector(encoder: clef.ClefEncoder, data: dict, fit_rows: np.ndarray) -> tuple[TaskModel, float, float]:
    """The PVC detector on ``encoder``, its held-out AUROC (window level) and the seconds it took."""
    from sklearn.metrics import roc_auc_score

    train = fit_rows & ~np.isin(data["records"], TEST_RECORDS)
    test = fit_rows & np.isin(data["records"], TEST_RECORDS)
    started = time.perf_counter()
    embeddings = clef.embed(data["signals"][fit_rows], FS, model=encoder, batch_size=32, progress=False)
    model = TaskModel(encoder, "binary", ["normal", "pvc"], training={"head": "logistic regression, frozen encoder"})
    fit_head(model, embeddings[train[fit_rows]], data["labels"][train])
    with torch.no_grad():  # the head on the held-out embeddings: what predict_proba computes, without embedding twice
        logits = model.head(torch.from_numpy(embeddings[test[fit_rows]]))
        proba = model.proba_from_logits(logits.double())[:, 1].numpy()
    return model, float(roc_auc_score(data["labels"][test], proba)), time.perf_counter() - started


def attribution_mass(
    model: TaskModel, data: dict, picked: np.ndarray, beats: list, references: dict | None, n_steps: int
) -> dict:
    """Mean |attribution| (and signed) per sample near PVC and other beats over the picked windows; ``references``
    maps a window to the PVC-free window used as its baseline (``None``: the flat baseline)."""
    sums = dict.fromkeys(("abs_pvc", "abs_other", "signed_pvc", "signed_other", "amp_pvc", "amp_other"), 0.0)
    counts = {"pvc": 0, "other": 0}
    window_ratios, amplitude_ratios, relative_deltas, outputs, baseline_outputs = [], [], [], [], []
    started = time.perf_counter()
    for index, (all_beats, pvc) in zip(picked, beats):
        x = data["signals"][index].astype(np.float64)
        baseline = "flat" if references is None else data["signals"][references[index]].astype(np.float64)
        attribution = explain(model, x, FS, n_steps=n_steps, baseline=baseline)
        near_pvc, near_other = masks(len(x), all_beats, pvc)
        values, amplitude = np.abs(attribution.values), np.abs(x - x.mean())
        sums["abs_pvc"] += values[near_pvc].sum()
        sums["abs_other"] += values[near_other].sum()
        sums["signed_pvc"] += attribution.values[near_pvc].sum()
        sums["signed_other"] += attribution.values[near_other].sum()
        sums["amp_pvc"] += amplitude[near_pvc].sum()
        sums["amp_other"] += amplitude[near_other].sum()
        counts["pvc"] += int(near_pvc.sum())
        counts["other"] += int(near_other.sum())
        window_ratios.append(values[near_pvc].mean() / values[near_other].mean())
        amplitude_ratios.append(amplitude[near_pvc].mean() / amplitude[near_other].mean())
        outputs.append(attribution.output)
        baseline_outputs.append(attribution.baseline_output)
        change = attribution.output - attribution.baseline_output
        relative_deltas.append(abs(attribution.delta) / max(abs(change), 1e-12))
    mean = {key: value / counts[key.split("_")[1]] for key, value in sums.items()}
    return {
        "baseline": "flat" if references is None else "PVC-free window",
        "windows": len(picked),
        "pvc_beats": int(sum(len(p) for _, p in beats)),
        "other_beats": int(sum(len(b) - len(p) for b, p in beats)),
        "mean_abs_pvc": mean["abs_pvc"],
        "mean_abs_other": mean["abs_other"],
        "ratio": mean["abs_pvc"] / mean["abs_other"],
        "median_window_ratio": float(np.median(window_ratios)),
        "mean_signed_pvc": mean["signed_pvc"],
        "mean_signed_other": mean["signed_other"],
        "amplitude_ratio": mean["amp_pvc"] / mean["amp_other"],
        "median_window_amplitude_ratio": float(np.median(amplitude_ratios)),
        "mean_output": float(np.mean(outputs)),
        "baseline_output": float(np.mean(baseline_outputs)),
        "median_relative_delta": float(np.median(relative_deltas)),
        "seconds": time.perf_counter() - started,
    }


def draw_example(model: TaskModel, data: dict, index: int, pvc: np.ndarray, path: str, n_steps: int) -> None:
    """One held-out window with its attribution of p(pvc) (flat baseline), the annotated PVCs marked."""
    import matplotlib

    matplotlib.use("Agg")
    from clef_sdk.tasks import plot_attribution

    signal = data["signals"][index].astype(np.float64)
    attribution = model.explain(signal, FS, n_steps=n_steps)
    figure = plot_attribution(signal, attribution)
    for axis in figure.axes:
        for position in pvc:
            axis.axvline(position / FS, color="tab:red", alpha=0.3, linewidth=4)
    figure.suptitle(
        f"MIT-BIH {data['records'][index]} (held out): p(pvc) = {attribution.output:.2f}; red: annotated PVCs"
    )
    figure.savefig(path, dpi=110, bbox_inches="tight")
    print(f"figure: {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--windows", type=int, default=60, help="held-out windows explained per encoder")
    parser.add_argument("--n-steps", type=int, default=32, help="integrated-gradients steps")
    parser.add_argument("--quick", action="store_true", help="a smoke run in seconds (numbers mean nothing)")
    parser.add_argument("--output", help="also write the results as JSON to this path")
    parser.add_argument("--figure", help="also draw one held-out window and its attribution (PNG) to this path")
    args = parser.parse_args(argv)
    if args.quick:
        args.windows, args.n_steps = 1, 4

    shared = require_shared()
    folder = shared / "data" / "mitdb-tpcp"
    data = load_mitdb_windows(shared / "data")
    train = ~np.isin(data["records"], TEST_RECORDS)
    fit_rows = np.ones(len(train), dtype=bool)
    if args.quick:  # 10 PVC and 10 other training windows, 10 held-out ones
        rng = np.random.default_rng(1)
        fit_rows[:] = False
        for rows in (train & (data["labels"] == 1), train & (data["labels"] == 0), ~train):
            fit_rows[rng.choice(np.flatnonzero(rows), size=10, replace=False)] = True

    # held-out windows with a PVC and another beat, spread over the test records (fixed seed)
    positions = {record: beat_positions(folder, record) for record in TEST_RECORDS}
    candidates, beats_of = [], {}
    for index in np.flatnonzero(~train & fit_rows):
        record, start = str(data["records"][index]), int(data["starts"][index])
        all_beats, pvc = positions[record]
        inside = (all_beats >= start) & (all_beats < start + data["signals"].shape[1])
        in_pvc = (pvc >= start) & (pvc < start + data["signals"].shape[1])
        if in_pvc.any() and inside.sum() > in_pvc.sum():
            candidates.append(index)
            beats_of[index] = (all_beats[inside] - start, pvc[in_pvc] - start)
    rng = np.random.default_rng(0)
    picked = np.sort(rng.choice(candidates, size=min(args.windows, len(candidates)), replace=False))
    beats = [beats_of[index] for index in picked]
    print(
        f"MIT-BIH: {int((train & fit_rows).sum())} training windows of 10 s "
        f"({int(data['labels'][train & fit_rows].sum())} with a PVC) from "
        f"{len(set(data['records'][train & fit_rows].tolist()))} records; held out {', '.join(TEST_RECORDS)}: "
        f"{int((~train & fit_rows).sum())} windows, {len(picked)} of the {len(candidates)} with a PVC and another beat explained "
        f"({args.n_steps} steps); torch threads {torch.get_num_threads()}"
    )

    # the baseline of the second kind: the nearest PVC-free window of the same held-out record
    references = {}
    for index in picked:
        same = np.flatnonzero((data["records"] == data["records"][index]) & (data["labels"] == 0))
        references[index] = int(same[np.argmin(np.abs(same - index))])

    encoders = []
    checkpoint = shared / "conformance" / "clef_small_lightning.ckpt"
    if checkpoint.is_file():
        encoders.append(("conformance ckpt", clef.load(checkpoint, device="cpu")))
    else:
        print(f"({checkpoint} is absent: the conformance encoder is left out)")
    encoders.append(("build seed 0", clef.build("small", seed=0).eval()))
    results = []
    for name, encoder in encoders:
        model, auroc, fit_seconds = fit_detector(encoder, data, fit_rows)
        if args.figure and name == encoders[0][0]:
            draw_example(model, data, int(picked[0]), beats[0][1], args.figure, args.n_steps)
        for kind in (None, references):
            row = attribution_mass(model, data, picked, beats, kind, args.n_steps)
            results.append({"encoder": name, "auroc": auroc, "fit_seconds": fit_seconds, **row})

    first = results[0]
    print(
        f"\nMean |attribution| a of p(pvc) per sample within +-{HALF_WIDTH / FS * 1000:.0f} ms of the PVC beats vs "
        f"the other beats of {first['windows']} held-out windows ({first['pvc_beats']} PVCs, {first['other_beats']} "
        "other beats); ratio pooled over the windows, and the median of the per-window ratios"
    )
    rows = [
        (
            r["encoder"],
            r["baseline"],
            f"{r['auroc']:.3f}",
            f"{r['mean_abs_pvc']:.2e}",
            f"{r['mean_abs_other']:.2e}",
            f"{r['ratio']:.2f}",
            f"{r['median_window_ratio']:.2f}",
            f"{r['mean_output']:.3f}",
            f"{r['baseline_output']:.3f}",
            f"{r['mean_signed_pvc']:+.1e}",
            f"{r['mean_signed_other']:+.1e}",
            f"{r['median_relative_delta']:.1e}",
            f"{r['fit_seconds']:.0f}+{r['seconds']:.0f}",
        )
        for r in results
    ]
    reference = ("|x - mean| (reference)", "", "", "", "", f"{first['amplitude_ratio']:.2f}")
    rows.append((*reference, f"{first['median_window_amplitude_ratio']:.2f}", *([""] * 6)))
    print_table(
        (
            "encoder",
            "baseline",
            "AUROC",
            "|a| PVC",
            "|a| other",
            "ratio",
            "median ratio",
            "p(pvc)",
            "p(baseline)",
            "signed a PVC",
            "signed a other",
            "median |delta|/change",
            "s fit+explain",
        ),
        rows,
    )
    if args.output:
        write_json("bench_explain", {"quick": args.quick, "n_steps": args.n_steps, "results": results}, args.output)


if __name__ == "__main__":
    main()
