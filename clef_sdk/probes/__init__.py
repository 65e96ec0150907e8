"""Linear probes on CLEF embeddings, as scikit-learn objects (imports scikit-learn: loaded on first use by
``clef.fit_probe`` and friends).

* `ClefEmbedder` (`.embedder`): a stateless scikit-learn transformer, raw ECG recordings -> CLEF
  embeddings.
* `LinearProbe` (`.head`): a linear head whose regularisation strength is chosen by an inner
  cross-validation (`.splits`) that keeps each patient (``groups``) on one side of every split, with balanced
  class weights; the task is inferred from the labels (`.labels`).
* `fit_probe` (`.fit`): embeds once, then fits ``StandardScaler`` + `LinearProbe`, and returns
  the whole chain as a fitted `sklearn.pipeline.Pipeline` that predicts from raw ECG.
* `evaluate_probe` (`.evaluate`): held-out metrics with bootstrap intervals by patient, computed by
  `bootstrap_metrics` (`.metrics`).
"""

from __future__ import annotations

from .embedder import EMBED_DIMS, ClefEmbedder
from .evaluate import evaluate_probe
from .fit import fit_probe
from .head import DEFAULT_ALPHAS, DEFAULT_CS, LinearProbe
from .labels import TASKS, infer_task
from .metrics import METRICS, MetricReport, bootstrap_metrics

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_CS",
    "EMBED_DIMS",
    "METRICS",
    "TASKS",
    "ClefEmbedder",
    "LinearProbe",
    "MetricReport",
    "bootstrap_metrics",
    "evaluate_probe",
    "fit_probe",
    "infer_task",
]
