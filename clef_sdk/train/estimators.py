"""Fine-tuning as scikit-learn estimators: `FineTunedClassifier` and `FineTunedRegressor` wrap
[`finetune`][clef_sdk.train.finetuning.finetune] and hold the fitted [`clef_sdk.TaskModel`][clef_sdk.TaskModel] in ``model_``.

    from sklearn.model_selection import GroupKFold, cross_val_score
    est = FineTunedClassifier(fs=360, model="small", max_epochs=20)
    cross_val_score(est, X, y, groups=patients, cv=GroupKFold(5), params={"groups": patients})

``X`` is what [`clef_sdk.embed`][clef_sdk.embed] takes: a 2-D array ``(n_records, n_samples)`` or a list of 1-D recordings of
any lengths (>= 10 s; >= 1 s with ``tail="pad"``), all at ``fs`` Hz. ``fit(X, y, groups=patients)`` keeps each
patient on one side of the validation split that picks the best epoch and stops early.

Patient groups inside scikit-learn's model selection:

- ``cross_val_score`` / ``cross_validate``: ``groups=`` goes to the splitter only; pass it to ``fit`` as well with
  ``params={"groups": groups}`` (sliced to each training fold).
- ``GridSearchCV`` / ``RandomizedSearchCV``: ``search.fit(X, y, groups=groups)`` gives groups to the splitter only,
  and without metadata routing there is no other way to name a ``groups`` fit parameter. Enable routing and request
  it: ``sklearn.set_config(enable_metadata_routing=True)`` (or ``with sklearn.config_context(...)``), then
  ``GridSearchCV(est.set_fit_request(groups=True), grid, cv=GroupKFold(k)).fit(X, y, groups=groups)`` routes
  ``groups`` both to the splitter and to every ``fit`` (each training fold's share, and all of it for the refit).
  Under routing, ``cross_val_score`` takes ``params={"groups": groups}`` instead of ``groups=``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ..inputs import SignalInput, TailMode, check_choice, recording_collection
from ..loading import ModelSpec
from ..probes.labels import groups_array, infer_task, labels_array, n_records_of
from ..tasks.model import TaskModel
from ..tasks.spec import Label
from .finetuning import finetune
from .protocols import Protocol

__all__ = ["FineTunedClassifier", "FineTunedRegressor"]

CLASSIFIER_TASKS = ("auto", "binary", "multiclass", "multilabel")
# fields of Protocol that `options` may set (the explicit parameters lr, max_epochs, batch_size, seed included)
_OPTION_FIELDS = frozenset(field.name for field in dataclasses.fields(Protocol)) - {"name"}
_EXPLICIT = ("lr", "max_epochs", "batch_size", "seed")


def _check_recordings(X: object, owner: str) -> object:
    """``X`` as recordings: a list or tuple as it is (recordings of any lengths), anything else as a numpy array
    (tensors, DataFrames, array-likes; a memory map is not copied). Refuses what is not a collection of
    recordings, with scikit-learn's messages where it has one; the lengths and rates are checked by
    `finetune` and ``clef.embed``."""
    plain = not isinstance(X, (list, tuple, str, bytes, os.PathLike))
    if plain and getattr(X, "ndim", None) is None and not hasattr(X, "__array__"):
        raise TypeError(f"X must be an array or a list of recordings, got {type(X).__name__}")
    return recording_collection(X, owner)


def _check_training_recordings(X: object, owner: str) -> tuple[object, int]:
    """`_check_recordings` and the number of recordings, at least 2."""
    X = _check_recordings(X, owner)
    n = n_records_of(X)
    if n < 2:
        raise ValueError(
            f"n_samples={n}: {owner} fine-tunes on several recordings, each with its label (one recording cannot be "
            "split into training and validation, nor hold two classes)"
        )
    return X, n


class _FineTunedEstimator(BaseEstimator):
    """What the classifier and the regressor share: parameter checks, the call to finetune, prediction."""

    fs: float | None
    model: ModelSpec
    protocol: str | Protocol
    lr: float | None
    max_epochs: int | None
    batch_size: int | None
    seed: int | None
    validation: float | tuple[Any, ...]
    options: Mapping[str, Any] | None
    tail: TailMode
    accelerator: str
    precision: str | None
    num_workers: int
    progress: bool

    def _fs(self) -> float | None:
        if isinstance(self.fs, (list, tuple, np.ndarray)):
            raise TypeError(
                f"{type(self).__name__} takes one sampling rate for all recordings (fs=360), as cross-validation "
                "slices the recordings but not a list of rates; resample recordings of other rates first, or call "
                "clef_sdk.train.finetune(X, y, fs=[...]) directly"
            )
        return self.fs

    def _finetune_options(self) -> dict[str, Any]:
        """The protocol overrides: the explicit parameters that are set, and ``options``."""
        if not isinstance(self.options, (Mapping, type(None))):
            raise TypeError(f"options must be a dict of protocol fields, got {type(self.options).__name__}")
        options = dict(self.options or {})
        unknown = sorted(set(options) - _OPTION_FIELDS)
        if unknown:
            raise TypeError(
                f"unknown fine-tuning option(s) {unknown} in options; they are the fields of "
                f"clef_sdk.train.Protocol: {sorted(_OPTION_FIELDS)}"
            )
        for name in _EXPLICIT:
            value = getattr(self, name)
            if value is None:
                continue
            if name in options:
                raise ValueError(f"{name} is given twice ({name}={value!r} and options[{name!r}]); give it once")
            options[name] = value
        return options

    def _finetune(self, X: object, y: object, groups: object, task: str, classes: Sequence[Label] | None) -> None:
        options = self._finetune_options()
        named = {name: options.pop(name, None) for name in ("max_epochs", "batch_size", "seed")}
        group_ids = groups_array(groups, n_records_of(X))  # checked here too: validation=0 does not use them
        model = finetune(
            X,
            y,
            fs=self._fs(),
            model=self.model,
            task=task,
            groups=groups,
            protocol=self.protocol,
            validation=self.validation,
            classes=classes,
            output=None,  # a temporary run folder: each fit of a cross-validation is its own run
            devices=1,  # one process: DDP needs a shared output folder (use finetune for it)
            accelerator=self.accelerator,
            precision=self.precision,
            num_workers=self.num_workers,
            tail=self.tail,
            progress=self.progress,
            **named,
            **options,
        )
        self.model_ = model
        self.task_ = model.task
        self.n_groups_ = None if group_ids is None else int(len(np.unique(group_ids.astype(str))))

    def _check_predict(self, X: object) -> tuple[TaskModel, SignalInput]:
        check_is_fitted(self, "model_")
        return self.model_, cast(SignalInput, _check_recordings(X, type(self).__name__))

    def predict(self, X: object) -> np.ndarray:
        """Predictions for raw recordings ``X`` (at ``fs`` Hz, as in fit), by [`clef_sdk.TaskModel.predict`][clef_sdk.TaskModel.predict]:
        labels ``(n_records,)`` (multi-label: 0/1 ``(n_records, n_labels)``), or values in the target's units
        ``(n_records,)`` float64 for regression. Runs where ``model_`` is (the CPU after fit; move it with
        ``est.model_.to("cuda")``)."""
        model, recordings = self._check_predict(X)
        return np.asarray(model.predict(recordings, self._fs(), tail=self.tail))

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        tags.non_deterministic = self.accelerator != "cpu"  # seeded: bit-for-bit on a CPU; GPU kernels are not
        tags.input_tags.allow_nan = True  # gaps are interpolated, as in pretraining
        return tags


class FineTunedClassifier(ClassifierMixin, _FineTunedEstimator):
    """scikit-learn classifier that fine-tunes a CLEF encoder and a linear head on raw ECG recordings.

    ``fit`` calls [`clef_sdk.train.finetune`][clef_sdk.train.finetune] (in a temporary run folder, one process) and keeps the returned
    [`clef_sdk.TaskModel`][clef_sdk.TaskModel] in ``model_``; ``predict`` / ``predict_proba`` run it on raw recordings. Labels are
    returned as given in ``y`` (strings stay strings); ``score`` is the accuracy (subset accuracy for multi-label).

    Args:
        fs: sampling rate of the recordings in Hz, one for all (required; ``None`` only for
            [`clef_sdk.WfdbSignal`][clef_sdk.WfdbSignal] recordings, which carry theirs).
        model: the encoder to start from: a model name (``"small"``, ``"medium"``, ``"large"``), a weights path, an
            ``hf-hub:`` id, or a [`clef_sdk.ClefEncoder`][clef_sdk.ClefEncoder] (``clef.build("small", seed=0)`` for the random-init
            baseline). A ClefEncoder is never changed: finetune trains a copy, and ``sklearn.base.clone`` deep-copies
            it like any parameter that is not an estimator.
        task: ``"auto"`` (binary, multiclass or, for a 2-D 0/1 ``y``, multilabel), or one of those.
        protocol: ``"full"``, ``"upstream"``, ``"linear"``, ``"linear-then-full"`` or a
            [`clef_sdk.train.Protocol`][clef_sdk.train.Protocol] (`clef_sdk.train.protocols`).
        lr: the head's learning rate (the encoder's is ``lr * encoder_lr_scale``); ``None``: the protocol's.
        max_epochs: the most epochs (passes over the training recordings, one 10 s crop each); ``None``: the
            protocol's (100).
        batch_size: recordings per step; ``None``: the protocol's (64).
        seed: seed of the head's initialisation, the crops, the order and the validation split; ``None``: the
            protocol's. A fixed seed gives the same model on a CPU.
        validation: the fraction of the training patients (``groups``; else recordings) held out to pick the best
            epoch and stop early, ``0`` for none (train ``max_epochs``, keep the last), or ``(X_val, y_val)``.
        classes: the labels of ``y`` in output order (binary: ``[negative, positive]``; multi-label: one name per
            column); ``None``: sorted. Every label of ``y`` must be one of them (unlike `finetune`, integer
            codes are not named by strings here, so that ``predict`` returns what ``y`` holds).
        options: other [`Protocol`][clef_sdk.train.Protocol] fields, e.g. ``{"layer_decay": 0.8, "monitor": "val_loss",
            "patience": None, "class_weighting": "balanced", "sampler": "balanced"}`` (grid-search them as whole
            dicts: ``{"options": [{"layer_decay": 0.7}, {"layer_decay": 0.9}]}``).
        tail: the end of a recording shorter than a window, as in [`clef_sdk.embed`][clef_sdk.embed] (``"pad"`` admits 1-10 s
            recordings); used in fit and predict alike.
        accelerator: Lightning's (``"auto"``, ``"cpu"``, ``"gpu"``, ...); one device.
        precision: Lightning precision; ``None``: the protocol's on a GPU, ``"32-true"`` on a CPU.
        num_workers: DataLoader worker processes that crop and preprocess (0: in this process).
        progress: Lightning's progress bar.

    Attributes (after fit): ``model_`` (the [`TaskModel`][clef_sdk.TaskModel]; ``model_.training_info`` holds the
    validation history, the best epoch, the time taken), ``classes_`` (label names, output order), ``task_``,
    ``n_groups_`` (patients given to fit, ``None`` without groups). There is no ``n_features_in_``: recordings may
    have any length.
    """

    def __init__(
        self,
        fs: float | None = None,
        model: ModelSpec = "medium",
        task: str = "auto",
        protocol: str | Protocol = "full",
        lr: float | None = None,
        max_epochs: int | None = None,
        batch_size: int | None = None,
        seed: int | None = None,
        validation: float | tuple[Any, ...] = 0.2,
        classes: Sequence[Label] | None = None,
        options: Mapping[str, Any] | None = None,
        tail: TailMode = "drop",
        accelerator: str = "auto",
        precision: str | None = None,
        num_workers: int = 0,
        progress: bool = False,
    ):
        self.fs = fs
        self.model = model
        self.task = task
        self.protocol = protocol
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.seed = seed
        self.validation = validation
        self.classes = classes
        self.options = options
        self.tail = tail
        self.accelerator = accelerator
        self.precision = precision
        self.num_workers = num_workers
        self.progress = progress

    def _task_of(self, y_array: np.ndarray) -> str:
        task = check_choice(self.task, CLASSIFIER_TASKS, "FineTunedClassifier task")
        check_classification_targets(y_array)  # "Unknown label type: continuous ..." for a regression target
        if task != "auto":
            return task
        inferred, _ = infer_task(y_array, "auto")
        return "multiclass" if inferred == "regression" else inferred  # more than 20 integer classes

    def _check_classes(self, y_array: np.ndarray) -> None:
        if self.classes is None or y_array.ndim != 1:
            return
        names = list(self.classes)
        unknown = [label for label in dict.fromkeys(y_array.tolist()) if label not in names]
        if unknown:
            raise ValueError(
                f"y holds label(s) {unknown[:10]} that are not among the classes {names}; classes lists the labels "
                "of y in output order (to name integer codes, map y to the names first)"
            )

    def fit(self, X: object, y: object, groups: object = None) -> FineTunedClassifier:
        """Fine-tune on recordings ``X`` and one label per recording ``y`` (a 0/1 matrix ``(n_records, n_labels)``
        for multi-label); ``groups``: the patient of each recording (for the validation split). Returns self."""
        if y is None:
            raise ValueError(
                "FineTunedClassifier requires y to be passed, but the target y is None: pass one label per recording"
            )
        X, n = _check_training_recordings(X, type(self).__name__)
        y_array = labels_array(y, n)
        task = self._task_of(y_array)
        self._check_classes(y_array)
        self._finetune(X, y, groups, task, self.classes)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X: object) -> np.ndarray:
        """Class probabilities of raw recordings, float64 ``(n_records, n_classes)`` in ``classes_`` order (binary
        ``[1 - p, p]``; multi-label one independent probability per label ``(n_records, n_labels)``)."""
        model, recordings = self._check_predict(X)
        return np.asarray(model.predict_proba(recordings, self._fs(), tail=self.tail))

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        if tags.classifier_tags is not None:
            tags.classifier_tags.multi_label = self.task == "multilabel"
        return tags


class FineTunedRegressor(RegressorMixin, _FineTunedEstimator):
    """scikit-learn regressor that fine-tunes a CLEF encoder and a linear head on raw ECG recordings (one numeric
    target per recording: age, a heart rate, a lab value).

    The target is standardised for training (its mean and standard deviation kept in
    ``model_.target_scaling``); ``predict`` returns values in the target's units, ``score`` the R².
    The parameters are `FineTunedClassifier`'s without ``task`` and ``classes``; the protocols' default
    watched metric for regression is the validation MAE.

    Attributes (after fit): ``model_`` (the [`TaskModel`][clef_sdk.TaskModel]), ``task_`` (``"regression"``),
    ``n_groups_``.
    """

    def __init__(
        self,
        fs: float | None = None,
        model: ModelSpec = "medium",
        protocol: str | Protocol = "full",
        lr: float | None = None,
        max_epochs: int | None = None,
        batch_size: int | None = None,
        seed: int | None = None,
        validation: float | tuple[Any, ...] = 0.2,
        options: Mapping[str, Any] | None = None,
        tail: TailMode = "drop",
        accelerator: str = "auto",
        precision: str | None = None,
        num_workers: int = 0,
        progress: bool = False,
    ):
        self.fs = fs
        self.model = model
        self.protocol = protocol
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.seed = seed
        self.validation = validation
        self.options = options
        self.tail = tail
        self.accelerator = accelerator
        self.precision = precision
        self.num_workers = num_workers
        self.progress = progress

    def fit(self, X: object, y: object, groups: object = None) -> FineTunedRegressor:
        """Fine-tune on recordings ``X`` and one numeric target per recording ``y`` (1-D); ``groups``: the patient
        of each recording (for the validation split). Returns self."""
        if y is None:
            raise ValueError(
                "FineTunedRegressor requires y to be passed, but the target y is None: pass one target per recording"
            )
        X, n = _check_training_recordings(X, type(self).__name__)
        infer_task(labels_array(y, n), "regression")  # numeric, 1-D, not constant
        self._finetune(X, y, groups, "regression", None)
        return self
