"""``clef.evaluate_probe``: a fitted probe or task model on held-out data, with bootstrap confidence intervals by
patient."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline
from sklearn.utils.multiclass import type_of_target

from ..inputs import SignalInput, TailMode
from ..tasks.model import TaskModel
from .embedder import ClefEmbedder, looks_like_embeddings
from .labels import labels_array, n_records_of
from .metrics import METRICS, MetricReport, bootstrap_metrics

__all__ = ["evaluate_probe"]

_Fs = float | Sequence[float] | None


def _task_model_of(probe: Any, fs: _Fs) -> tuple[TaskModel, _Fs, TailMode] | None:
    """The task model to run, the rate and the tail to run it with: a `TaskModel` itself (the tail it was
    trained with), or an estimator holding one in ``model_`` (``clef_sdk.train.FineTunedClassifier`` and
    ``FineTunedRegressor``, recognised without importing them: the core never imports ``clef_sdk.train``), with
    its ``fs`` and ``tail``; ``None`` for anything else."""
    if isinstance(probe, TaskModel):
        return probe, fs, probe.training_info.get("tail", "drop")
    model = getattr(probe, "model_", None)
    if not isinstance(model, TaskModel):
        return None
    own = getattr(probe, "fs", None)
    if fs is not None and own is not None and not np.array_equal(np.asarray(fs, dtype=float), np.asarray(own)):
        raise ValueError(
            f"fs={fs!r} contradicts the {type(probe).__name__}'s fs={own!r}; leave fs out to use the estimator's"
        )
    return model, own if fs is None else fs, getattr(probe, "tail", None) or model.training_info.get("tail", "drop")


def _check_task_model_labels(model: TaskModel, y: np.ndarray) -> None:
    """Labels checked against the model before the (slow) embedding."""
    classes = model.classes_.tolist()
    if model.task == "regression":
        if y.ndim != 1 or y.dtype.kind not in "biuf":
            raise ValueError(f"the model is a regression model: y must be 1-D numeric targets, got {y.dtype} {y.shape}")
        return
    if model.task == "multilabel":
        if y.ndim != 2 or y.shape[1] != len(classes):
            raise ValueError(
                f"the model predicts {len(classes)} labels {classes}: y must be a 0/1 matrix (n_records, "
                f"{len(classes)}) in that order, got shape {y.shape}"
            )
        return
    unknown = [label for label in dict.fromkeys(y.tolist()) if label not in classes]
    if unknown:
        more = f" (and {len(unknown) - 1} more: {unknown[1:6]})" if len(unknown) > 1 else ""
        raise ValueError(f"label {unknown[0]!r} is not one of the model's classes {classes}{more}")


def _evaluate_task_model(
    model: TaskModel, X: object, y: np.ndarray, fs: _Fs, tail: TailMode, **bootstrap: Any
) -> MetricReport:
    """One pass of the encoder over ``X``: the decisions are read off the probabilities with the model's
    thresholds, as `TaskModel.predict` makes them."""
    _check_task_model_labels(model, y)
    classes = model.classes_
    signal = cast(SignalInput, X)
    rates = list(fs) if isinstance(fs, (list, tuple, np.ndarray)) else cast("float | None", fs)
    if model.task == "regression":
        values = np.asarray(model.predict(signal, rates, tail=tail), dtype=np.float64)
        return bootstrap_metrics(y, values, task="regression", **bootstrap)
    proba = np.asarray(model.predict_proba(signal, rates, tail=tail), dtype=np.float64)
    thresholds = np.asarray(model.thresholds) if model.thresholds is not None else None
    if model.task == "multilabel":
        assert thresholds is not None
        return bootstrap_metrics(y, proba, task="multilabel", y_pred=proba >= thresholds, **bootstrap)
    if model.task == "binary":
        assert thresholds is not None
        predicted = classes[(proba[:, 1] >= thresholds[0]).astype(np.int64)]
        score = proba[:, 1]
    else:
        predicted = classes[np.argmax(proba, axis=1)]
        score = proba
    return bootstrap_metrics(
        y.tolist(), score, task=model.task, y_pred=predicted.tolist(), classes=classes.tolist(), **bootstrap
    )


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
    fs: float | Sequence[float] | None = None,
    n_bootstrap: int = 1000,
    ci: float = 0.95,
    random_state: int | np.random.Generator | None = 0,
) -> MetricReport:
    """Evaluate a fitted probe or task model on held-out data, with percentile-bootstrap confidence intervals.

    Args:
        probe: a probe from [`clef_sdk.fit_probe`][clef_sdk.fit_probe] (or any fitted scikit-learn classifier/regressor), a
            [`clef_sdk.TaskModel`][clef_sdk.TaskModel] (``clef.load_task_model``, ``clef_sdk.train.finetune``), or a fitted
            ``clef_sdk.train.FineTunedClassifier`` / ``FineTunedRegressor`` (its ``model_``).
        X: raw ECG (for a task model, a fine-tuned estimator, or a probe that starts with a ClefEmbedder) or CLEF
            embeddings of the held-out records.
        y: their labels, in the form the probe was fitted with (a task model's: labels among its ``classes_``;
            multi-label a 0/1 matrix in ``classes_`` order; regression targets in their units).
        groups: patient of each record: the bootstrap then resamples patients (use it whenever a patient
            has several records, else the interval is too narrow).
        fs: sampling rate of raw X in Hz (one, or one per recording) for a task model; a fine-tuned estimator
            uses its own ``fs`` (a different one is an error); ignored by the other probes, which carry theirs.
        n_bootstrap: bootstrap resamples (see `bootstrap_metrics`).
        ci: the interval's coverage, e.g. 0.95.
        random_state: seed of the resampling.

    Returns a `MetricReport` (a dict): for classification ``auroc``, ``auprc`` (macro over classes or
    labels when there are more than two) and ``balanced_accuracy``; for regression ``mae``, ``rmse``, ``r2``
    and ``pearson_r``; each ``{"estimate", "ci_low", "ci_high", "n_valid", "n_degenerate"}``.
    """
    n = n_records_of(X)
    y_array = labels_array(y, n)
    task_model = _task_model_of(probe, fs)
    if task_model is not None:
        model_to_run, model_fs, tail = task_model
        return _evaluate_task_model(
            model_to_run,
            X,
            y_array,
            model_fs,
            tail,
            groups=groups,
            n_bootstrap=n_bootstrap,
            ci=ci,
            random_state=random_state,
        )
    model = probe
    features = X
    if isinstance(probe, Pipeline) and isinstance(probe.steps[0][1], ClefEmbedder):
        embedder = probe.steps[0][1]
        if fs is not None and not np.array_equal(np.asarray(fs, dtype=float), np.asarray(embedder.fs, dtype=float)):
            raise ValueError(f"fs={fs!r} contradicts the probe's ClefEmbedder fs={embedder.fs!r}; leave fs out")
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
