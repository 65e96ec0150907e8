"""How a benchmark turns a model and a task's training and validation parts into scores on the test part.

A protocol has a ``name``, ``needs_embeddings`` (the runner then hands it cached embeddings of every part),
``params()`` (recorded with the results) and ``scores(model, task)``. `ProbeProtocol` is the linear probe
of the CLEF paper; ``clef_sdk.train.FineTuneProtocol`` fine-tunes (it needs the ``[train]`` extra, and the core
never imports it: pass an instance).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from .models import BenchmarkModel

__all__ = ["BenchmarkProtocol", "Part", "ProbeProtocol", "Scores", "TaskSplits", "resolve_protocol"]


@dataclass
class Part:
    """One split of a task: lazy signals, labels (``(n,)`` or a 0/1 ``(n, n_labels)`` matrix), patients, example
    ids, and the model's embeddings ``(n, dim)`` when the protocol asked for them."""

    X: list[object]
    y: np.ndarray
    groups: np.ndarray
    ids: list[str]
    embeddings: np.ndarray | None = None


@dataclass
class TaskSplits:
    """A task cut by its split column: ``train``, ``val`` (model selection) and ``test`` (scored once)."""

    name: str
    kind: str
    train: Part
    val: Part
    test: Part
    labels: list[str] = field(default_factory=list)  # multilabel column names
    #: multilabel columns left out: without positives or negatives in one of the parts
    dropped_labels: list[str] = field(default_factory=list)


@dataclass
class Scores:
    """A protocol's test-set output: ``values`` as [`clef_sdk.probes.bootstrap_metrics`][clef_sdk.probes.bootstrap_metrics] takes them (binary
    ``(n, 2)``, multiclass ``(n, n_classes)``, multilabel ``(n, n_labels)`` probabilities; regression values),
    and the class order of the columns for single-label classification."""

    values: np.ndarray
    classes: list[object] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


class BenchmarkProtocol(Protocol):
    name: str
    needs_embeddings: bool

    def params(self) -> dict[str, Any]: ...

    def scores(self, model: BenchmarkModel, task: TaskSplits) -> Scores: ...


@dataclass
class ProbeProtocol:
    """The linear probe ([`clef_sdk.fit_probe`][clef_sdk.fit_probe]) on mean-pooled embeddings: its regularisation strength is
    chosen on the validation part (a predefined split), then the head is refitted on training + validation with
    that strength, as scikit-learn's ``*CV`` estimators do. ``seed``: the probe's ``random_state``."""

    seed: int = 0
    name: str = "probe"
    needs_embeddings: bool = True

    def params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "features": "mean over 10 s windows",
            "head": "clef.fit_probe (standardised features, balanced class weights)",
            "model selection": "regularisation strength chosen on the validation split, then refitted on train + val",
            "seed": self.seed,
        }

    def scores(self, model: BenchmarkModel, task: TaskSplits) -> Scores:
        from sklearn.model_selection import PredefinedSplit

        from ..probes import fit_probe

        train, val = task.train, task.val
        assert train.embeddings is not None and val.embeddings is not None and task.test.embeddings is not None
        X = np.concatenate([train.embeddings, val.embeddings])
        y = np.concatenate([train.y, val.y])
        # no groups: train and val are patient-disjoint by construction (the split is one per patient)
        fold = np.concatenate([np.full(len(train.y), -1), np.zeros(len(val.y), dtype=int)])
        probe = fit_probe(
            X,
            y,
            task=task.kind,  # type: ignore[arg-type]
            cv=PredefinedSplit(fold),
            random_state=self.seed,
        )
        notes = {"summary": probe.summary_}
        if task.kind == "regression":
            return Scores(np.asarray(probe.predict(task.test.embeddings), dtype=float), notes=notes)
        classes = None if task.kind == "multilabel" else list(probe.classes_)
        return Scores(np.asarray(probe.predict_proba(task.test.embeddings)), classes, notes)


def resolve_protocol(protocol: str | BenchmarkProtocol, seed: int) -> BenchmarkProtocol:
    """A protocol instance from a name (``"probe"``) or an instance (returned as it is)."""
    if not isinstance(protocol, str):
        return protocol
    if protocol == "probe":
        return ProbeProtocol(seed=seed)
    if protocol == "finetune":
        raise ValueError(
            "the finetune protocol needs clef-sdk[train]: pass clef_sdk.train.FineTuneProtocol() "
            "(or run `clef benchmark --protocol finetune`)"
        )
    raise ValueError(f"unknown protocol {protocol!r}; use 'probe', or a protocol object such as FineTuneProtocol()")
