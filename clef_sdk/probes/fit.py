"""``clef.fit_probe``: embed once, then fit ``StandardScaler`` + [`LinearProbe`][clef_sdk.probes.head.LinearProbe], and
return the whole chain as a fitted `sklearn.pipeline.Pipeline` that predicts from raw ECG."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Literal, cast

import numpy as np
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ..constants import WINDOW_SECONDS
from ..loading import ModelSpec
from ..precision import Precision
from .embedder import ClefEmbedder, checked_embeddings, looks_like_embeddings
from .head import LinearProbe
from .labels import Task, groups_array, infer_task, labels_array, n_records_of

__all__ = ["fit_probe"]


def fit_probe(
    X: object,
    y: object,
    *,
    fs: float | None = None,
    model: ModelSpec = "medium",
    task: Task = "auto",
    groups: object = None,
    cv: object = 5,
    pooling: Literal["mean", "max"] = "mean",
    batch_size: int | None = None,
    device: str | None = None,
    Cs: Sequence[float] | None = None,
    alphas: Sequence[float] | None = None,
    class_weight: str | None = "balanced",
    max_iter: int = 1000,
    random_state: int | None = 0,
    n_jobs: int | None = None,
    precision: Precision = "fp32",
    quality: Literal["drop"] | None = None,
    progress: bool | None = None,
) -> Pipeline:
    """Fit a linear probe the way the CLEF paper evaluates its embeddings.

    Args:
        X: raw ECG, ``(n_records, n_samples)`` or a list of 1-D recordings (then ``fs`` is required), or
            precomputed CLEF embeddings ``(n_records, 256 | 1024 | 2048)`` (then leave ``fs=None``).
        y: labels: 1-D (binary, multiclass or regression target) or 2-D 0/1 ``(n_records, n_labels)`` (multi-label).
        fs: sampling rate of raw X in Hz.
        model: the CLEF model for raw X: a name, a weights path or a loaded ClefEncoder.
        task: ``"auto"`` (decided from y, see `infer_task`), ``"binary"``, ``"multiclass"``,
            ``"multilabel"`` or ``"regression"``.
        groups: patient id of each recording. The inner cross-validation never puts one patient's records
            on both sides of a split.
        cv: inner folds for choosing the regularisation strength, or a scikit-learn splitter.
        pooling: passed to `ClefEmbedder` (as are ``batch_size`` and ``device``).
        batch_size: windows per forward pass of the embedder.
        device: the embedder's device.
        Cs: passed to `LinearProbe` (as are ``alphas``, ``class_weight``, ``max_iter``, ``random_state``
            and ``n_jobs``).
        alphas: the regression head's regularisation grid.
        class_weight: the classification heads' class weights.
        max_iter: the solvers' iteration limit.
        random_state: seed of the inner cross-validation.
        n_jobs: parallel jobs of the inner cross-validation.
        precision: passed to `ClefEmbedder` (as are ``quality`` and ``progress``): ``"fp32"`` or ``"bf16"``.
        quality: ``"drop"`` pools only the windows [`clef_sdk.signal_quality`][clef_sdk.signal_quality] rates usable.
        progress: the embedding's progress bar (``None``: as [`clef_sdk.set_progress`][clef_sdk.set_progress] says).

    Returns:
        A fitted `Pipeline`: ``("embed", ClefEmbedder)`` (only for raw X), ``("scale",
        StandardScaler)``, ``("head", LinearProbe)``. It predicts from raw ECG (``probe.predict(signals)``);
        ``probe[1:]`` predicts from embeddings. Decisions are recorded on it: ``probe.task_``,
        ``probe.task_reason_``, ``probe.fit_info_`` (dict) and ``probe.summary_`` (text).

    Raw X is embedded once; the inner cross-validation then runs on the embeddings.
    """
    n_records = n_records_of(X)
    y_array = labels_array(y, n_records)
    resolved, reason = infer_task(y_array, task)
    groups_array(groups, n_records)

    embeddings: np.ndarray | None = None
    if fs is None:
        embeddings = checked_embeddings(X)
    elif looks_like_embeddings(X, fs):
        width = np.shape(cast(np.ndarray, X))[1]
        raise ValueError(
            f"X has {width} columns, which at fs={fs} Hz is {width / float(fs):.2f} s of ECG, too short for "
            f"raw recordings (>= {WINDOW_SECONDS} s); if X holds CLEF embeddings, do not pass fs"
        )
    started = time.perf_counter()
    embedder: ClefEmbedder | None = None
    if embeddings is None:
        embedder = ClefEmbedder(
            model=model,
            fs=fs,
            pooling=pooling,
            batch_size=batch_size,
            device=device,
            precision=precision,
            quality=quality,
            progress=progress,
        )
        embeddings = embedder.fit(X).transform(X)
    embedding_seconds = time.perf_counter() - started

    head = LinearProbe(
        task=resolved,
        cv=cv,
        Cs=Cs,
        alphas=alphas,
        class_weight=class_weight,
        max_iter=max_iter,
        random_state=random_state,
        n_jobs=n_jobs,
    )
    started = time.perf_counter()
    tail = Pipeline([("scale", StandardScaler()), ("head", head)])
    tail.fit(embeddings, y_array, head__groups=groups)
    fitting_seconds = time.perf_counter() - started

    steps = ([("embed", embedder)] if embedder is not None else []) + list(tail.steps)
    probe = Pipeline(steps)
    fitted_head: LinearProbe = probe[-1]
    fitted_head.task_reason_ = reason
    info = {
        "task": fitted_head.task_,
        "task_reason": reason,
        "n_records": n_records,
        "embed_dim": int(embeddings.shape[1]),
        "input": "raw ECG" if embedder is not None else "precomputed embeddings",
        "model": embedder.model_name_ if embedder is not None else None,
        "grouped": fitted_head.grouped_,
        "n_groups": fitted_head.n_groups_,
        "inner_folds": fitted_head.n_splits_,
        "regularization": fitted_head.regularization_,
        "cv_score": fitted_head.cv_score_,
        "cv_scoring": fitted_head.cv_scoring_,
        "embedding_seconds": embedding_seconds,
        "fitting_seconds": fitting_seconds,
    }
    probe.task_ = fitted_head.task_
    probe.task_reason_ = reason
    probe.fit_info_ = info
    source = (
        f"embedded {n_records} recordings with {info['model']} ({embedding_seconds:.1f} s)"
        if embedder is not None
        else f"{n_records} precomputed embeddings of width {info['embed_dim']}"
    )
    probe.summary_ = f"{source}\n{fitted_head.summary()}\nfit time: {fitting_seconds:.1f} s"
    return probe
