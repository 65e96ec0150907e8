"""``clef.evaluate_probe``: a fitted probe on held-out data, with bootstrap confidence intervals by patient."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline
from sklearn.utils.multiclass import type_of_target

from .embedder import ClefEmbedder, looks_like_embeddings
from .labels import labels_array, n_records_of
from .metrics import METRICS, MetricReport, bootstrap_metrics

__all__ = ["evaluate_probe"]


def _probe_task(probe: Any, y: np.ndarray) -> str:
    task = getattr(probe, "task_", None)
    if task is None and hasattr(probe, "steps"):
        task = getattr(probe.steps[-1][1], "task_", None)
    if task in METRICS:
        return task
    if not is_classifier(probe) and not hasattr(probe, "predict_proba"):
        return "regression"
    kind = type_of_target(y)
    return {"binary": "binary", "multiclass": "multiclass", "multilabel-indicator": "multilabel"}.get(
        kind, "regression"
    )


def evaluate_probe(
    probe: Any,
    X: object,
    y: object,
    *,
    groups: object = None,
    n_bootstrap: int = 1000,
    ci: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
) -> MetricReport:
    """Evaluate a fitted probe on held-out data, with percentile-bootstrap confidence intervals.

    Args:
        probe: a probe from :func:`clef_sdk.fit_probe` (or any fitted scikit-learn classifier/regressor).
        X: raw ECG (when the probe starts with a ClefEmbedder) or CLEF embeddings of the held-out records.
        y: their labels, in the form the probe was fitted with.
        groups: patient of each record: the bootstrap then resamples patients (use it whenever a patient
            has several records, else the interval is too narrow).
        n_bootstrap: bootstrap resamples (see :func:`bootstrap_metrics`).
        ci: the interval's coverage, e.g. 0.95.
        random_state: seed of the resampling.

    Returns a :class:`MetricReport` (a dict): for classification ``auroc``, ``auprc`` (macro over classes or
    labels when there are more than two) and ``balanced_accuracy``; for regression ``mae``, ``rmse``, ``r2``
    and ``pearson_r``; each ``{"estimate", "ci_low", "ci_high", "n_valid", "n_degenerate"}``.
    """
    n = n_records_of(X)
    y_array = labels_array(y, n)
    model = probe
    features = X
    if isinstance(probe, Pipeline) and isinstance(probe.steps[0][1], ClefEmbedder):
        embedder = probe.steps[0][1]
        model = probe[1:]
        width = getattr(model, "n_features_in_", None)
        if width is None or not looks_like_embeddings(X, embedder.fs, (width,)):
            features = embedder.transform(X)  # embed once; both predictions below reuse it
    task = _probe_task(probe, y_array)

    if task == "regression":
        predictions = np.asarray(model.predict(features), dtype=float)
        return bootstrap_metrics(
            y_array, predictions, task=task, groups=groups, n_bootstrap=n_bootstrap, ci=ci, random_state=random_state
        )
    if not hasattr(model, "predict_proba"):
        raise TypeError(f"{type(probe).__name__} has no predict_proba; AUROC and AUPRC need class scores")
    proba = np.asarray(model.predict_proba(features), dtype=float)
    predicted = np.asarray(model.predict(features))
    if task == "multilabel":
        return bootstrap_metrics(
            y_array,
            proba,
            task=task,
            y_pred=predicted,
            groups=groups,
            n_bootstrap=n_bootstrap,
            ci=ci,
            random_state=random_state,
        )
    classes = list(np.asarray(model.classes_).tolist())
    unknown = set(np.unique(y_array).tolist()) - set(classes)
    if unknown:
        raise ValueError(
            f"y holds label(s) {sorted(map(str, unknown))} the probe was not fitted on (its classes: {classes})"
        )
    return bootstrap_metrics(
        y_array.tolist(),
        proba if task == "multiclass" else proba[:, 1],
        task=task,
        y_pred=predicted.tolist(),
        groups=groups,
        n_bootstrap=n_bootstrap,
        ci=ci,
        random_state=random_state,
        classes=classes,
    )
