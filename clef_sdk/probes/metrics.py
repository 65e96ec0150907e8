"""Probe evaluation with percentile-bootstrap confidence intervals, resampling patients when groups are given.

Every metric is computed on bootstrap *weights* (how often each record is drawn), vectorised over resamples,
so a 1,000-resample interval on thousands of records takes well under a second. A resample in which a
metric is undefined (one class only, constant targets) is skipped and counted in ``n_degenerate``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["METRICS", "MetricReport", "bootstrap_metrics"]

#: Metrics reported per task (keys of the returned dict), with display names.
METRICS: dict[str, dict[str, str]] = {
    "binary": {"auroc": "AUROC", "auprc": "AUPRC", "balanced_accuracy": "balanced accuracy"},
    "multiclass": {
        "auroc": "AUROC (macro OvR)",
        "auprc": "AUPRC (macro OvR)",
        "balanced_accuracy": "balanced accuracy",
    },
    "multilabel": {
        "auroc": "AUROC (macro)",
        "auprc": "AUPRC (macro)",
        "balanced_accuracy": "balanced accuracy (macro)",
    },
    "regression": {"mae": "MAE", "rmse": "RMSE", "r2": "R²", "pearson_r": "Pearson r"},
}
# Resamples are processed in chunks of at most this many (resample x record) weights.
_CHUNK_ELEMENTS = 4_000_000
# Warn when more than this fraction of resamples is degenerate for a metric.
_DEGENERATE_WARN_FRACTION = 0.05


class MetricReport(dict):
    """``{metric: {"estimate", "ci_low", "ci_high", "n_valid", "n_degenerate"}}`` plus context attributes.

    ``str(report)`` (or `table`) renders a table. Attributes: ``task``, ``ci``, ``n_bootstrap``,
    ``n_samples``, ``n_groups`` (None without groups), ``resampled`` (``"patients"`` or ``"records"``),
    ``bootstrap_samples`` (``{metric: array of the valid resample values}``).
    """

    task: str
    ci: float
    n_bootstrap: int
    n_samples: int
    n_groups: int | None
    resampled: str
    bootstrap_samples: dict[str, np.ndarray]

    def table(self, title: str | None = None) -> str:
        level = f"{100 * self.ci:g}% CI"
        rows = [(METRICS[self.task].get(name, name), entry) for name, entry in self.items()]
        width = max([len(name) for name, _ in rows] + [6])
        lines = [title] if title else []
        lines.append(f"{'metric':<{width}}  {'estimate':>8}  {level:>17}  {'degenerate':>10}")
        for name, entry in rows:
            interval = f"[{entry['ci_low']:.3f}, {entry['ci_high']:.3f}]"
            degenerate = f"{entry['n_degenerate']}/{self.n_bootstrap}"
            lines.append(f"{name:<{width}}  {entry['estimate']:>8.3f}  {interval:>17}  {degenerate:>10}")
        who = f"{self.n_groups} groups (patients)" if self.n_groups is not None else "rows"
        lines.append(f"(n={self.n_samples}; percentile bootstrap over {who}, {self.n_bootstrap} resamples)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


# ------------------------------------------------------------------------------------ weighted metrics
# Each takes weights W (b, n) and returns (b,) values, NaN where the metric is undefined for that row.


def _tie_blocks(sorted_scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For scores in sorted order: block id of each position, first and one-past-last position of each block."""
    new = np.r_[True, sorted_scores[1:] != sorted_scores[:-1]]
    starts = np.flatnonzero(new)
    stops = np.r_[starts[1:], len(sorted_scores)]
    return np.cumsum(new) - 1, starts, stops


def _padded_cumsum(values: np.ndarray) -> np.ndarray:
    out = np.zeros((values.shape[0], values.shape[1] + 1))
    np.cumsum(values, axis=1, out=out[:, 1:])
    return out


def _auroc(positive: np.ndarray, score: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Weighted Mann-Whitney AUROC (ties count one half), as roc_auc_score with sample_weight."""
    order = np.argsort(score, kind="mergesort")
    pos = positive[order]
    Ws = W[:, order]
    block, starts, stops = _tie_blocks(score[order])
    cum_neg = _padded_cumsum(Ws * ~pos)
    below = cum_neg[:, starts][:, block[pos]]  # negatives scored strictly lower than each positive
    tied = (cum_neg[:, stops] - cum_neg[:, starts])[:, block[pos]]
    w_pos = Ws[:, pos]
    n_pos, n_neg = w_pos.sum(axis=1), cum_neg[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (w_pos * (below + 0.5 * tied)).sum(axis=1) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def _auprc(positive: np.ndarray, score: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Weighted average precision, sum_k (R_k - R_k-1) P_k over distinct thresholds (as sklearn's)."""
    order = np.argsort(-score, kind="mergesort")
    pos = positive[order]
    Ws = W[:, order]
    _, _, stops = _tie_blocks(-score[order])
    tp = _padded_cumsum(Ws * pos)[:, stops]
    fp = _padded_cumsum(Ws * ~pos)[:, stops]
    n_pos, n_neg = tp[:, -1], fp[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        gained = np.diff(tp, axis=1, prepend=0.0)
        ap = (gained * precision).sum(axis=1) / n_pos
    return np.where((n_pos > 0) & (n_neg > 0), ap, np.nan)


def _recall(truth: np.ndarray, hit: np.ndarray, W: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        total = W @ truth.astype(float)
        return np.where(total > 0, (W @ (truth & hit).astype(float)) / total, np.nan)


def _binary_balanced_accuracy(positive: np.ndarray, predicted: np.ndarray, W: np.ndarray) -> np.ndarray:
    return 0.5 * (_recall(positive, predicted, W) + _recall(~positive, ~predicted, W))


def _macro(values: list[np.ndarray]) -> np.ndarray:
    stacked = np.stack(values)
    return np.where(np.isnan(stacked).any(axis=0), np.nan, stacked.mean(axis=0))


def _regression_metrics(y: np.ndarray, p: np.ndarray, W: np.ndarray) -> dict[str, np.ndarray]:
    total = W.sum(axis=1)
    error = p - y
    mae = (W @ np.abs(error)) / total
    mse = (W @ error**2) / total
    y_mean = (W @ y) / total
    p_mean = (W @ p) / total
    yc = y[None, :] - y_mean[:, None]
    pc = p[None, :] - p_mean[:, None]
    sst = (W * yc**2).sum(axis=1)
    spp = (W * pc**2).sum(axis=1)
    spy = (W * yc * pc).sum(axis=1)
    tiny_y = sst <= 1e-12 * total * max(float(np.mean(y**2)), 1e-300)
    tiny_p = spp <= 1e-12 * total * max(float(np.mean(p**2)), 1e-300)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(tiny_y, np.nan, 1.0 - (W @ error**2) / sst)
        r = np.where(tiny_y | tiny_p, np.nan, spy / np.sqrt(sst * spp))
    return {"mae": mae, "rmse": np.sqrt(mse), "r2": r2, "pearson_r": np.clip(r, -1.0, 1.0)}


def _metric_function(
    task: str, y_true: np.ndarray, y_score: np.ndarray, y_pred: np.ndarray
) -> Callable[[np.ndarray], dict[str, np.ndarray]]:
    if task == "regression":
        return lambda W: _regression_metrics(y_true, y_score, W)
    if task == "binary":
        positive, predicted = y_true.astype(bool), y_pred.astype(bool)
        return lambda W: {
            "auroc": _auroc(positive, y_score, W),
            "auprc": _auprc(positive, y_score, W),
            "balanced_accuracy": _binary_balanced_accuracy(positive, predicted, W),
        }
    if task == "multiclass":
        n_classes = y_score.shape[1]
        truths = [y_true == k for k in range(n_classes)]
        return lambda W: {
            "auroc": _macro([_auroc(truths[k], y_score[:, k], W) for k in range(n_classes)]),
            "auprc": _macro([_auprc(truths[k], y_score[:, k], W) for k in range(n_classes)]),
            "balanced_accuracy": _macro([_recall(truths[k], y_pred == k, W) for k in range(n_classes)]),
        }
    n_labels = y_score.shape[1]
    truths = [y_true[:, j].astype(bool) for j in range(n_labels)]
    hits = [y_pred[:, j].astype(bool) for j in range(n_labels)]
    return lambda W: {
        "auroc": _macro([_auroc(truths[j], y_score[:, j], W) for j in range(n_labels)]),
        "auprc": _macro([_auprc(truths[j], y_score[:, j], W) for j in range(n_labels)]),
        "balanced_accuracy": _macro([_binary_balanced_accuracy(truths[j], hits[j], W) for j in range(n_labels)]),
    }


# ---------------------------------------------------------------------------------------- input checks


def _finite(name: str, array: np.ndarray) -> None:
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values; drop those records before evaluating")


def _check_inputs(
    task: str, y_true: object, y_score: object, y_pred: object, threshold: float, classes: Sequence[object] | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if task not in METRICS:
        raise ValueError(f"task must be one of {tuple(METRICS)}, got {task!r}")
    y = np.asarray(y_true)
    s = np.asarray(y_score, dtype=float)
    if y.ndim == 2 and y.shape[1] == 1 and task != "multilabel":
        y = y[:, 0]
    n = len(y)
    if n == 0:
        raise ValueError("no records to evaluate (y_true is empty)")
    if len(s) != n:
        raise ValueError(f"y_true has {n} records but the scores have {len(s)}; they must match one to one")
    if y.dtype.kind == "f":
        _finite("y_true", y)
    elif y.dtype == object and any(v is None or (isinstance(v, float) and np.isnan(v)) for v in y.ravel()):
        raise ValueError("y_true contains missing (None/NaN) labels; drop those records before evaluating")
    _finite("y_score", s)

    if task == "regression":
        if y.ndim != 1 or s.ndim != 1:
            raise ValueError("regression: y_true and the predictions must be 1-D")
        if y.dtype.kind not in "biuf":
            raise TypeError(f"regression targets must be numeric, got dtype {y.dtype}")
        return y.astype(float), s, s
    if task == "binary":
        if s.ndim == 2 and s.shape[1] == 2:
            s = s[:, 1]
        if s.ndim != 1:
            raise ValueError(f"binary: y_score must be the positive-class score (n,), got shape {s.shape}")
        if classes is not None:
            if len(classes) != 2:
                raise ValueError(f"binary: classes must name 2 labels, got {list(classes)}")
            unknown = set(np.unique(y).tolist()) - set(classes)
            if unknown:
                raise ValueError(f"y_true holds labels {sorted(map(str, unknown))} outside classes {list(classes)}")
            positive = y == classes[1]
        else:
            values = set(np.unique(y).tolist())
            if not values <= {0, 1}:
                raise ValueError(
                    f"binary: y_true must be 0/1 (or pass classes=[negative, positive]), got {sorted(map(str, values))}"
                )
            positive = y.astype(bool)
        if y_pred is None:
            predicted = s >= threshold
        else:
            predicted = np.asarray(y_pred)
            predicted = predicted == classes[1] if classes is not None else predicted.astype(bool)
        return positive.astype(int), s, np.asarray(predicted, dtype=bool)
    if task == "multiclass":
        if s.ndim != 2 or s.shape[1] < 2:
            raise ValueError(f"multiclass: y_score must be (n, n_classes) probabilities, got shape {s.shape}")
        labels = list(range(s.shape[1])) if classes is None else list(classes)
        if len(labels) != s.shape[1]:
            raise ValueError(f"multiclass: {len(labels)} classes named but y_score has {s.shape[1]} columns")
        lookup = {label: k for k, label in enumerate(labels)}
        try:
            codes = np.array([lookup[v] for v in y.tolist()])
        except KeyError as exc:
            raise ValueError(f"y_true holds label {exc.args[0]!r}, which is not one of the classes {labels}") from None
        if y_pred is None:
            pred_codes = s.argmax(axis=1)
        else:
            pred_codes = np.array([lookup.get(v, -1) for v in np.asarray(y_pred).tolist()])
        return codes, s, pred_codes
    # multilabel
    if y.ndim != 2 or s.shape != y.shape:
        raise ValueError(f"multilabel: y_true and y_score must both be (n, n_labels), got {y.shape} and {s.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("multilabel: y_true must be a 0/1 indicator matrix")
    predicted = (s >= threshold) if y_pred is None else np.asarray(y_pred).astype(bool)
    return y.astype(int), s, predicted


def _bootstrap_weights(rng: np.random.Generator, units: np.ndarray, n_units: int, n_resamples: int) -> np.ndarray:
    """(n_resamples, n_records) draw counts; whole units (patients) are drawn with replacement."""
    draws = rng.integers(0, n_units, size=(n_resamples, n_units))
    flat = (draws + n_units * np.arange(n_resamples)[:, None]).ravel()
    unit_counts = np.bincount(flat, minlength=n_resamples * n_units).reshape(n_resamples, n_units)
    return unit_counts[:, units].astype(float)


def bootstrap_metrics(
    y_true: object,
    y_score: object,
    *,
    task: str,
    y_pred: object = None,
    groups: object = None,
    n_bootstrap: int = 1000,
    ci: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
    threshold: float = 0.5,
    classes: Sequence[object] | None = None,
) -> MetricReport:
    """Metrics of predictions with percentile-bootstrap intervals.

    Args:
        y_true: binary: 0/1 (or labels, with ``classes``); multiclass: class codes ``0..K-1`` (or labels, with
            ``classes``); multilabel: 0/1 matrix ``(n, L)``; regression: targets.
        y_score: binary: positive-class score ``(n,)`` (or ``(n, 2)`` probabilities); multiclass: ``(n, K)``
            probabilities; multilabel: ``(n, L)`` label probabilities; regression: the predictions.
        task: ``"binary"``, ``"multiclass"``, ``"multilabel"`` or ``"regression"``.
        y_pred: hard predictions for balanced accuracy; default: ``y_score >= threshold`` (binary,
            multilabel) or the arg-max class (multiclass).
        groups: patient of each record: resample patients (all their records together) instead of records.
        n_bootstrap: resamples (0: point estimates only).
        ci: interval level, e.g. 0.95 for the 2.5th-97.5th percentiles.
        random_state: seed or numpy Generator.
        classes: the labels of y_score's columns (multiclass) or ``[negative, positive]`` (binary).

    Returns a `MetricReport`. A resample where a metric is undefined (a class absent, constant
    targets) is left out of that metric's interval and counted in its ``n_degenerate``.
    """
    y, s, pred = _check_inputs(task, y_true, y_score, y_pred, threshold, classes)
    n = len(y)
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be a non-negative integer, got {n_bootstrap!r}")
    if not isinstance(ci, (float, int)) or not 0 < ci < 1:
        raise ValueError(f"ci must be between 0 and 1 (e.g. 0.95), got {ci!r}")
    if groups is not None:
        group_array = np.asarray(groups)
        if group_array.ndim != 1 or len(group_array) != n:
            raise ValueError(f"groups must hold one patient id per record ({n}), got shape {group_array.shape}")
        _, units = np.unique(
            group_array.astype(str) if group_array.dtype == object else group_array, return_inverse=True
        )
        units = units.ravel()
    else:
        units = np.arange(n)
    n_units = int(units.max()) + 1

    compute = _metric_function(task, y, s, pred)
    point = {name: float(value[0]) for name, value in compute(np.ones((1, n))).items()}
    undefined = [name for name, value in point.items() if np.isnan(value)]
    if undefined:
        why = "a single class" if task != "regression" else "constant targets or predictions"
        raise ValueError(
            f"{', '.join(undefined)} undefined on these records ({why}); evaluate on a set that holds every class"
        )

    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    chunk = max(1, _CHUNK_ELEMENTS // n)
    collected: dict[str, list[np.ndarray]] = {name: [] for name in point}
    done = 0
    while done < n_bootstrap:
        size = min(chunk, n_bootstrap - done)
        values = compute(_bootstrap_weights(rng, units, n_units, size))
        for name, value in values.items():
            collected[name].append(value)
        done += size

    report = MetricReport()
    samples: dict[str, np.ndarray] = {}
    alpha = (1 - ci) / 2
    for name, estimate in point.items():
        draws = np.concatenate(collected[name]) if collected[name] else np.empty(0)
        valid = draws[~np.isnan(draws)]
        n_degenerate = int(len(draws) - len(valid))
        if len(valid) >= 2:
            low, high = np.quantile(valid, [alpha, 1 - alpha])
        else:
            low = high = np.nan
        if n_bootstrap and n_degenerate > _DEGENERATE_WARN_FRACTION * n_bootstrap:
            warnings.warn(
                f"{name}: {n_degenerate} of {n_bootstrap} bootstrap resamples were degenerate (a class absent, or "
                "constant targets) and were left out; the interval rests on the rest and may be too narrow. "
                "More patients of the rare class make it trustworthy",
                UserWarning,
                stacklevel=2,
            )
        report[name] = {
            "estimate": estimate,
            "ci_low": float(low),
            "ci_high": float(high),
            "n_valid": int(len(valid)),
            "n_degenerate": n_degenerate,
        }
        samples[name] = valid
    report.task = task
    report.ci = float(ci)
    report.n_bootstrap = int(n_bootstrap)
    report.n_samples = n
    report.n_groups = n_units if groups is not None else None
    report.resampled = "patients" if groups is not None else "records"
    report.bootstrap_samples = samples
    return report
