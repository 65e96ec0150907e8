"""Linear probes on CLEF embeddings, as scikit-learn objects.

* :class:`ClefEmbedder`: a stateless scikit-learn transformer, raw ECG recordings -> CLEF embeddings.
* :class:`LinearProbe`: a linear head whose regularisation strength is chosen by an inner cross-validation
  that keeps each patient (``groups``) on one side of every split, with balanced class weights:
  logistic regression (binary, multiclass), one-vs-rest logistic regression (multi-label), ridge (regression).
* :func:`fit_probe`: embeds once, then fits ``StandardScaler`` + :class:`LinearProbe`, and returns the whole
  chain as a fitted :class:`sklearn.pipeline.Pipeline` that predicts from raw ECG.

Evaluation with bootstrap confidence intervals lives in :mod:`clef_sdk.evaluation`.
"""

from __future__ import annotations

import inspect
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import PredefinedSplit, StratifiedGroupKFold, StratifiedKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_array, check_is_fitted

from .embedding import as_recordings, check_batch_size, embed_with_encoder
from .loading import ModelSpec, get_encoder
from .models import ARCHITECTURES, ClefEncoder
from .precision import check_precision
from .preprocessing import WINDOW_SECONDS, check_fs, plan_windows, tensor_to_numpy

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_CS",
    "EMBED_DIMS",
    "TASKS",
    "ClefEmbedder",
    "LinearProbe",
    "fit_probe",
    "infer_task",
]

#: Widths of CLEF embeddings (small, medium, large); a 2-D float X of one of these widths is taken as embeddings.
EMBED_DIMS: tuple[int, ...] = tuple(sorted({arch.embed_dim for arch in ARCHITECTURES.values()}))
TASKS: tuple[str, ...] = ("auto", "binary", "multiclass", "multilabel", "regression")
CLASSIFICATION_TASKS = frozenset({"binary", "multiclass", "multilabel"})
#: Inverse regularisation strengths tried by the logistic heads (features are standardised first).
DEFAULT_CS: tuple[float, ...] = tuple(float(c) for c in np.logspace(-5, 0, 11))
#: Ridge penalties tried by the regression head.
DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 6, 17))
#: With task="auto", integer labels with more distinct values than this are treated as a regression target.
MAX_AUTO_CLASSES = 20
# solver="auto": Newton-Cholesky (few iterations whatever C) for binary heads up to this many features, else
# L-BFGS (the Hessian grows with the square of the width; multinomial Newton is slower still).
NEWTON_MAX_FEATURES = 512
# Inner splits are redrawn (new shuffles) up to this many times until every fold holds every class.
_SPLIT_ATTEMPTS = 20


# --------------------------------------------------------------------------------------------- ClefEmbedder


class ClefEmbedder(TransformerMixin, BaseEstimator):
    """scikit-learn transformer: raw single-lead ECG recordings -> CLEF embeddings ``(n_records, embed_dim)``.

    Stateless: :meth:`fit` only validates (the parameters, that the weights load, that the recordings are at
    least 10 s long) and :meth:`transform` works without it. The encoder is never stored on the estimator: it
    is fetched from :func:`clef_sdk.get_encoder`'s cache at each call, so a pickled embedder holds only
    ``model`` as given (a name or a path) and reloads the weights lazily where it is unpickled.
    (A loaded :class:`~clef_sdk.ClefEncoder` passed as ``model`` is pickled with its weights; pass a name or a
    path to avoid that.)

    Args:
        model: a model name (``"small"``, ``"medium"``, ``"large"`` or an alias), a weights path
            (``.safetensors`` or ``.ckpt``), or a loaded ClefEncoder.
        fs: sampling rate of the recordings in Hz (one rate for all; required).
        pooling: ``"mean"`` or ``"max"`` over each recording's 10 s windows.
        batch_size: windows per forward pass; ``None`` picks it for the model and device.
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks CUDA when available.
        precision: ``"fp32"`` (default) or ``"bf16"`` autocast, as in :func:`clef_sdk.embed`.
        quality: ``None`` (default) or ``"drop"``: pool only the windows :func:`clef_sdk.signal_quality` rates
            usable (a recording with none gives a NaN row and a warning).

    ``X`` is a 2-D array ``(n_records, n_samples)`` of equal-length recordings or a list of 1-D recordings
    (any lengths of at least 10 s). NaN gaps are interpolated as in pretraining.
    """

    def __init__(
        self,
        model: ModelSpec = "medium",
        fs: float | None = None,
        pooling: str = "mean",
        batch_size: int | None = None,
        device: str | None = None,
        precision: str = "fp32",
        quality: str | None = None,
    ):
        self.model = model
        self.fs = fs
        self.pooling = pooling
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.quality = quality

    # -- validation -------------------------------------------------------------------------------------

    def _check_params(self) -> float:
        if self.quality not in (None, "drop"):
            raise ValueError(f"ClefEmbedder quality must be None or 'drop', got {self.quality!r}")
        if self.pooling not in ("mean", "max"):
            raise ValueError(
                f"ClefEmbedder pooling must be 'mean' or 'max', got {self.pooling!r} (per-window output, "
                "pooling=None, has no fixed width; use clef.embed(..., pooling=None) for that)"
            )
        try:
            check_batch_size(self.batch_size)
        except ValueError as exc:
            raise ValueError(f"ClefEmbedder {exc}") from None
        if self.fs is None:
            raise TypeError(
                "ClefEmbedder needs fs, the sampling rate of the recordings in Hz: ClefEmbedder(model=..., fs=500)"
            )
        if isinstance(self.fs, (list, tuple, np.ndarray)):
            raise TypeError(
                "ClefEmbedder takes one sampling rate for all recordings (fs=360); resample recordings with "
                "other rates first, or embed them with clef.embed(signals, fs=[...]) and fit on the embeddings"
            )
        return check_fs(self.fs)

    def _recordings(self, X: object, fs: float) -> list[np.ndarray]:
        if isinstance(X, (str, bytes, os.PathLike)):
            raise TypeError(f"X is a {type(X).__name__}, not recordings; load the signals first")
        if hasattr(X, "toarray") or hasattr(X, "tocsr"):
            raise TypeError("sparse X is not supported: pass the recordings as a dense 2-D array or a list of 1-D arrays")
        X = tensor_to_numpy(X, "X")
        if isinstance(X, (list, tuple)):
            if len(X) == 0:
                raise ValueError("X holds no recordings (empty list); pass (n_records, n_samples) or a list of 1-D recordings")
            if all(np.ndim(item) == 0 for item in X):
                raise ValueError(
                    "X looks like one recording (a flat list of numbers); ClefEmbedder takes a collection of "
                    "recordings: pass [x] or np.asarray(x)[None, :]"
                )
        else:
            array = np.asarray(X)
            if np.iscomplexobj(array):
                raise ValueError("Complex data not supported: ECG recordings must be real-valued (e.g. np.real(X))")
            if array.ndim == 1:
                raise ValueError(
                    f"X is 1-D, shape {array.shape}: ClefEmbedder takes a collection of recordings, "
                    "(n_records, n_samples) or a list of 1-D arrays; for one recording pass x[None, :] or [x]"
                )
            if array.ndim != 2:
                raise ValueError(
                    f"X must be 2-D (n_records, n_samples) or a list of 1-D recordings, got shape {array.shape}; "
                    "for multi-lead data pick one lead"
                )
            if array.shape[0] == 0:
                raise ValueError(f"X holds no recordings, shape {array.shape}; pass at least one recording of 10 s or more")
            if array.shape[1] == 0:
                raise ValueError(
                    f"Found array with 0 feature(s) (shape={array.shape}) while a minimum of 1 is required: "
                    "the recordings hold no samples; pass recordings of 10 s or more"
                )
            X = array
        recordings, _ = as_recordings(X)
        for index, recording in enumerate(recordings):
            try:
                plan_windows(len(recording), fs)
            except ValueError as exc:
                raise ValueError(f"recording {index}: {exc}") from None
        return recordings

    # -- scikit-learn API -------------------------------------------------------------------------------

    def fit(self, X: object, y: object = None) -> ClefEmbedder:
        """Validate parameters, weights and recordings; nothing is learned. Returns self."""
        fs = self._check_params()
        self._recordings(X, fs)
        encoder = get_encoder(self.model, self.device)
        check_precision(self.precision, encoder.device)
        self.embed_dim_ = encoder.embed_dim
        self.model_name_ = encoder.name
        return self

    def transform(self, X: object) -> np.ndarray:
        """Embed each recording: float32 ``(n_records, embed_dim)``."""
        fs = self._check_params()
        recordings = self._recordings(X, fs)
        encoder = get_encoder(self.model, self.device)
        return embed_with_encoder(
            encoder, recordings, fs, pooling=self.pooling, batch_size=self.batch_size, progress=None,
            precision=self.precision, quality=self.quality,
        )  # fmt: skip

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """``clef_0`` ... ``clef_{embed_dim-1}``."""
        dim = getattr(self, "embed_dim_", None) or get_encoder(self.model, self.device).embed_dim
        return np.asarray([f"clef_{i}" for i in range(dim)], dtype=object)

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.non_deterministic = False
        tags.input_tags.allow_nan = True  # gaps are interpolated, as in pretraining
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        if isinstance(self.model, ClefEncoder):
            warnings.warn(
                "pickling a ClefEmbedder whose model is a loaded ClefEncoder stores the weights in the pickle; "
                "pass model as a name or a weights path to pickle without them",
                UserWarning,
                stacklevel=2,
            )
        return state


# ----------------------------------------------------------------------------------------------- labels


def _labels_array(y: object, n_records: int | None, *, warn_column: bool = False) -> np.ndarray:
    if y is None:
        raise ValueError(
            "the probe requires y to be passed, but the target y is None: pass one label (or target value) per recording"
        )
    if hasattr(y, "detach"):
        y = y.detach().cpu().numpy()
    array = np.asarray(y)
    if array.ndim == 0:
        raise ValueError("y must hold one label per recording, got a scalar")
    if array.ndim == 2 and array.shape[1] == 1:
        if warn_column:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected; using y.ravel()",
                DataConversionWarning,
                stacklevel=3,
            )
        array = array[:, 0]
    if array.ndim > 2:
        raise ValueError(f"y must be 1-D (one label per recording) or 2-D 0/1 (multi-label), got shape {array.shape}")
    if n_records is not None and len(array) != n_records:
        raise ValueError(
            f"X has {n_records} recordings but y has {len(array)} labels; they must match one to one (same order)"
        )
    missing = _missing_mask(array)
    if missing.any():
        rows = np.flatnonzero(missing.reshape(len(array), -1).any(axis=1))
        shown = ", ".join(str(r) for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
        raise ValueError(
            f"y has {len(rows)} missing (NaN/None) label(s), rows {shown}: drop those recordings "
            "(and their rows of X and groups) first, e.g. keep = ~np.isnan(y)"
        )
    return array


def _groups_array(groups: object, n_records: int) -> np.ndarray | None:
    if groups is None:
        return None
    array = np.asarray(groups)
    if array.ndim != 1 or len(array) != n_records:
        raise ValueError(
            f"groups must hold one patient id per recording ({n_records}), got shape {array.shape}"
        )
    if _missing_mask(array).any():
        raise ValueError("groups has missing (NaN/None) ids; give every recording a patient id")
    return array


def _missing_mask(array: np.ndarray) -> np.ndarray:
    if array.dtype.kind == "f":
        return np.isnan(array)
    if array.dtype.kind == "c":
        raise TypeError("y is complex; pass real labels or targets")
    if array.dtype == object:
        flat = array.ravel()
        mask = np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in flat], dtype=bool)
        return mask.reshape(array.shape)
    return np.zeros(array.shape, dtype=bool)


def _display(value: object) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


def _is_numeric(array: np.ndarray) -> bool:
    if array.dtype.kind in "biuf":
        return True
    if array.dtype == object:
        return all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in array.ravel())
    return False


def infer_task(y: object, task: str = "auto") -> tuple[str, str]:
    """Which probe ``y`` calls for, and why: ``(task, reason)``.

    With ``task="auto"``: a 2-D 0/1 matrix is ``"multilabel"``; non-numeric labels (strings, booleans) or
    integers with two distinct values are ``"binary"``; integers with 3-20 distinct values ``"multiclass"``;
    non-integer numbers, or integers with more than 20 distinct values (ages, heart rates), ``"regression"``.
    An explicit ``task`` is checked against ``y``. Raises ValueError naming the problem (one class, NaN, ...).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    array = _labels_array(y, None)
    if len(array) == 0:
        raise ValueError("y is empty: pass one label per recording")

    if array.ndim == 2:
        if task not in ("auto", "multilabel"):
            raise ValueError(
                f"y is 2-D {array.shape} but task={task!r}: 2-D y means multi-label (0/1 per label); "
                "pass 1-D y for other tasks, or fit one probe per column for several regression targets"
            )
        if not _is_numeric(array) or not np.isin(array.astype(float), (0.0, 1.0)).all():
            raise ValueError(
                "2-D y must be a 0/1 indicator matrix (n_records, n_labels) for multi-label probes; "
                "multi-output regression is not supported: fit one probe per target column"
            )
        indicator = array.astype(int)
        constant = [j for j in range(indicator.shape[1]) if indicator[:, j].min() == indicator[:, j].max()]
        if constant:
            raise ValueError(
                f"multi-label y: label column(s) {constant} hold only one value (all 0 or all 1); a probe needs both "
                "positive and negative recordings for every label: drop those columns"
            )
        reason = "given" if task == "multilabel" else f"y is a 2-D 0/1 matrix with {indicator.shape[1]} labels"
        return "multilabel", reason

    numeric = _is_numeric(array) and array.dtype != bool
    values = np.unique(array.astype(float) if array.dtype == object and numeric else array.astype(str) if array.dtype == object else array)
    n_values = len(values)
    integer_valued = numeric and bool(np.all(np.mod(values.astype(float), 1) == 0))
    shown = [_display(v) for v in values[:2]]

    if task == "regression":
        if not numeric:
            raise ValueError(f"task='regression' needs numeric y, got dtype {array.dtype}")
        if n_values < 2:
            raise ValueError("y is constant: a regression probe needs targets that vary")
        return "regression", "given"
    if task == "auto" and numeric and (not integer_valued or n_values > MAX_AUTO_CLASSES):
        if n_values < 2:
            raise ValueError("y is constant: a regression probe needs targets that vary")
        if not integer_valued:
            return "regression", "y is numeric with non-integer values"
        return "regression", (
            f"y has {n_values} distinct integer values (> {MAX_AUTO_CLASSES}); "
            "pass task='multiclass' if these are class labels"
        )

    if n_values < 2:
        raise ValueError(
            f"y has only one class ({shown[0]}): a classification probe needs at least two classes; "
            "check the label extraction or add recordings of the other class(es)"
        )
    if task == "binary" and n_values != 2:
        raise ValueError(f"task='binary' but y has {n_values} classes; use task='multiclass'")
    if task in ("binary", "multiclass"):
        return task, "given"
    if task == "multilabel":
        raise ValueError("task='multilabel' needs a 2-D 0/1 y of shape (n_records, n_labels)")
    if n_values == 2:
        return "binary", f"y has 2 classes ({shown[0]}, {shown[1]}); the positive class is {shown[1]}"
    return "multiclass", f"y has {n_values} classes"


# ------------------------------------------------------------------------------------------ inner splits


def _units(groups: np.ndarray | None, n: int) -> np.ndarray:
    """Integer code of the independent unit (patient) of each sample."""
    if groups is None:
        return np.arange(n)
    return np.unique(groups.astype(str) if groups.dtype == object else groups, return_inverse=True)[1].ravel()


def _strata(task: str, y: np.ndarray) -> np.ndarray | None:
    if task in ("binary", "multiclass"):
        return np.unique(y, return_inverse=True)[1].ravel()
    if task == "multilabel":
        # stratify on each record's rarest positive label (-1: none), a cheap stand-in for multi-label stratification
        prevalence = y.sum(axis=0)
        ranked = np.where(y.astype(bool), prevalence[None, :], np.inf)
        rarest = np.argmin(ranked, axis=1)
        return np.where(np.isinf(ranked.min(axis=1)), -1, rarest)
    return None


def _max_folds(task: str, y: np.ndarray, units: np.ndarray) -> tuple[int, str]:
    """The most inner folds the data allow (every class in every fold), and the limiting factor."""
    if task in ("binary", "multiclass"):
        classes, codes = np.unique(y, return_inverse=True)
        counts = [len(np.unique(units[codes.ravel() == k])) for k in range(len(classes))]
        k = int(np.argmin(counts))
        return counts[k], f"class {classes[k]!r}"
    if task == "multilabel":
        best, where = None, ""
        for j in range(y.shape[1]):
            for value, name in ((1, "positive"), (0, "negative")):
                count = len(np.unique(units[y[:, j] == value]))
                if best is None or count < best:
                    best, where = count, f"label {j} ({name})"
        assert best is not None
        return best, where
    return len(np.unique(units)), "the targets"


def _folds_cover_classes(task: str, y: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    if task == "regression":
        return True
    for train, test in splits:
        for part in (train, test):
            if task == "multilabel":
                block = y[part]
                if (block.min(axis=0) == block.max(axis=0)).any():
                    return False
            elif len(np.unique(y[part])) != len(np.unique(y)):
                return False
    return True


def _group_folds(units: np.ndarray, n_splits: int, rng: np.random.Generator) -> np.ndarray:
    """Fold id per sample: units in random order, each to the currently smallest fold."""
    n_units = units.max() + 1
    sizes = np.bincount(units, minlength=n_units)
    fold_of_unit = np.empty(n_units, dtype=np.int64)
    totals = np.zeros(n_splits, dtype=np.int64)
    for unit in rng.permutation(n_units):
        fold = int(np.argmin(totals))
        fold_of_unit[unit] = fold
        totals[fold] += sizes[unit]
    return fold_of_unit[units]


def _splits_from_folds(folds: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in np.unique(folds)]


def _check_no_leak(splits: list[tuple[np.ndarray, np.ndarray]], units: np.ndarray, groups: np.ndarray) -> None:
    for i, (train, test) in enumerate(splits):
        shared = np.intersect1d(units[train], units[test])
        if len(shared):
            example = groups[np.flatnonzero(units == shared[0])[0]]
            raise ValueError(
                f"inner cv split {i} puts {len(shared)} group(s) (e.g. {example!r}) in both training and validation; "
                "use a group-aware splitter such as GroupKFold or StratifiedGroupKFold, or pass cv as an integer"
            )


def inner_splits(
    task: str,
    y: np.ndarray,
    groups: np.ndarray | None,
    cv: object,
    random_state: int | None,
    X: np.ndarray | None = None,
) -> tuple[object, int, list[str]]:
    """Cross-validation splits for choosing the regularisation strength.

    Returns ``(splitter, n_splits, notes)``: the splitter is a :class:`~sklearn.model_selection.PredefinedSplit`
    when the validation folds partition the samples (always for an integer ``cv``), else a list of
    ``(train, validation)`` index pairs. With ``groups``, no group appears in both parts of any split.
    For classification every class (every label's positives and negatives) appears in every part.
    """
    n = len(y)
    units = _units(groups, n)
    notes: list[str] = []
    unit_word = "groups" if groups is not None else "recordings"

    if hasattr(cv, "split"):
        strata = _strata(task, y)
        splits = [(np.asarray(tr), np.asarray(te)) for tr, te in cv.split(np.zeros((n, 1)) if X is None else X, strata, groups)]
        if len(splits) < 2 and not (len(splits) == 1 and len(splits[0][1]) < n):
            raise ValueError("the inner cv splitter produced no usable split; pass cv as an integer (e.g. 5)")
        if groups is not None:
            _check_no_leak(splits, units, groups)
        if not _folds_cover_classes(task, y, splits):
            raise ValueError(
                "the inner cv splitter leaves a class (or a label's positives/negatives) out of a training or "
                "validation fold; use a stratified splitter, fewer folds, or pass cv as an integer"
            )
        folds = np.full(n, -1)
        partition = True
        for k, (_, test) in enumerate(splits):
            if (folds[test] != -1).any():
                partition = False
                break
            folds[test] = k
        if partition and (folds >= 0).all():
            return PredefinedSplit(folds), len(splits), notes
        return splits, len(splits), notes

    if isinstance(cv, bool) or not isinstance(cv, (int, np.integer)) or cv < 2:
        raise ValueError(f"cv must be an integer >= 2 (inner folds) or a scikit-learn splitter, got {cv!r}")
    limit, limiting = _max_folds(task, y, units)
    if limit < 2:
        raise ValueError(
            f"{limiting} occurs in only {limit} of the {unit_word}: choosing the regularisation by cross-validation "
            f"needs at least 2 {unit_word} of every class; add data or drop that class"
        )
    n_splits = int(min(cv, limit))
    if n_splits < cv:
        notes.append(f"{n_splits} inner folds instead of {cv}: {limiting} occurs in only {limit} {unit_word}")
        warnings.warn(
            f"using {n_splits} inner cross-validation folds instead of {cv}: {limiting} occurs in only "
            f"{limit} {unit_word}",
            UserWarning,
            stacklevel=3,
        )
    seed = 0 if random_state is None else int(random_state)
    strata = _strata(task, y)
    while n_splits >= 2:
        for attempt in range(_SPLIT_ATTEMPTS):
            state = seed + attempt
            if strata is None:
                folds = _group_folds(units, n_splits, np.random.default_rng(state))
            else:
                splitter = (
                    StratifiedGroupKFold(n_splits, shuffle=True, random_state=state)
                    if groups is not None
                    else StratifiedKFold(n_splits, shuffle=True, random_state=state)
                )
                folds = np.empty(n, dtype=np.int64)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # "least populated class" notices
                    for k, (_, test) in enumerate(splitter.split(np.zeros((n, 1)), strata, units)):
                        folds[test] = k
            splits = _splits_from_folds(folds)
            if len(splits) == n_splits and _folds_cover_classes(task, y, splits):
                return PredefinedSplit(folds), n_splits, notes
        n_splits -= 1
        notes.append(f"reduced to {n_splits} inner folds so that every fold holds every class")
    raise ValueError(
        f"could not split the {unit_word} into inner folds that each hold every class; "
        "add recordings of the rare class(es) or pass your own splitter as cv"
    )


def _fold_ids(splitter: object) -> np.ndarray | None:
    return np.asarray(splitter.test_fold) if isinstance(splitter, PredefinedSplit) else None


# ---------------------------------------------------------------------------------------------- the head


def _logistic_cv(**kwargs: Any) -> LogisticRegressionCV:
    """LogisticRegressionCV with an L2 penalty, without the FutureWarnings of scikit-learn 1.8-1.9."""
    params = inspect.signature(LogisticRegressionCV).parameters
    if "l1_ratios" in params and isinstance(params["l1_ratios"].default, str):
        kwargs["l1_ratios"] = (0.0,)
    if "use_legacy_attributes" in params and isinstance(params["use_legacy_attributes"].default, str):
        kwargs["use_legacy_attributes"] = False
    return LogisticRegressionCV(**kwargs)


@contextmanager
def _convergence_summary(notes: list[str], max_iter: int) -> Iterator[None]:
    """Collect the solver's ConvergenceWarnings (one per fold and C) into one warning and a note."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    n_unconverged = 0
    for item in caught:
        if issubclass(item.category, ConvergenceWarning):
            n_unconverged += 1
        else:
            warnings.warn_explicit(item.message, item.category, item.filename, item.lineno)
    if n_unconverged:
        message = (
            f"{n_unconverged} solver run(s) did not converge within max_iter={max_iter}, typically at the weakest "
            "regularisation; raise max_iter or drop the largest Cs"
        )
        notes.append(message)
        warnings.warn(message, ConvergenceWarning, stacklevel=4)


def _chosen_c(model: LogisticRegressionCV) -> float:
    return float(np.ravel(model.C_)[0])


def _best_cv_score(model: LogisticRegressionCV) -> float:
    scores = model.scores_
    grid = np.asarray(next(iter(scores.values())) if isinstance(scores, dict) else scores, dtype=float)
    mean = grid.reshape(grid.shape[0], -1).mean(axis=0)  # folds x (Cs [x l1_ratios])
    return float(np.nanmax(mean))


def _is_classification_probe(probe: LinearProbe) -> bool:
    task = getattr(probe, "task_", probe.task)
    return task != "regression"


class LinearProbe(BaseEstimator):
    """Linear head with its regularisation chosen by (group-aware) inner cross-validation.

    * ``"binary"`` / ``"multiclass"``: :class:`~sklearn.linear_model.LogisticRegressionCV`, L2, balanced class
      weights, C chosen by AUROC (one-vs-rest macro AUROC for multiclass).
    * ``"multilabel"`` (2-D 0/1 y): :class:`~sklearn.multiclass.OneVsRestClassifier` of the above, one C per label.
    * ``"regression"``: :class:`~sklearn.linear_model.RidgeCV`, alpha chosen by mean squared error.
    * ``"auto"``: decided from y by :func:`infer_task` at fit time (``task_``, ``task_reason_``).

    Feed it standardised embeddings (:func:`fit_probe` puts a StandardScaler in front). Pass patient ids as
    ``fit(X, y, groups=...)`` (in a Pipeline: ``fit(X, y, head__groups=...)``) and no patient is ever on both
    sides of an inner split; the splits used are kept in ``cv_folds_`` (validation fold of each sample).

    Args:
        task: ``"auto"``, ``"binary"``, ``"multiclass"``, ``"multilabel"`` or ``"regression"``.
        cv: number of inner folds (reduced, with a warning, when a class has fewer patients), or a
            scikit-learn splitter (called as ``split(X, y, groups)``; it must not leak groups).
        Cs: inverse regularisation strengths to try (classification); None: :data:`DEFAULT_CS`.
        alphas: ridge penalties to try (regression); None: :data:`DEFAULT_ALPHAS`.
        class_weight: ``"balanced"`` (default: each class weighs the same in the loss) or None.
        solver: logistic solver; ``"auto"``: ``"newton-cholesky"`` for binary and multi-label heads on at most
            512 features (CLEF-small), ``"lbfgs"`` otherwise.
        max_iter: solver iterations per fit.
        random_state: seed of the inner fold shuffles.
        n_jobs: parallel jobs for the inner cross-validation.
    """

    def __init__(
        self,
        task: str = "auto",
        cv: object = 5,
        Cs: Sequence[float] | None = None,
        alphas: Sequence[float] | None = None,
        class_weight: str | None = "balanced",
        solver: str = "auto",
        max_iter: int = 1000,
        random_state: int | None = 0,
        n_jobs: int | None = None,
    ):
        self.task = task
        self.cv = cv
        self.Cs = Cs
        self.alphas = alphas
        self.class_weight = class_weight
        self.solver = solver
        self.max_iter = max_iter
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _check_X(self, X: object, *, reset: bool) -> np.ndarray:
        array = check_array(X, dtype=(np.float64, np.float32), estimator=self)
        if reset:
            self.n_features_in_ = array.shape[1]
        elif array.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {array.shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_} "
                "features as input; pass embeddings of the CLEF model the probe was fitted with"
            )
        return array

    def fit(self, X: object, y: object, groups: object = None) -> LinearProbe:
        """Fit on embeddings ``X (n_records, n_features)`` and labels ``y``; ``groups``: patient of each record."""
        if self.class_weight not in ("balanced", None) and not isinstance(self.class_weight, dict):
            raise ValueError(f"class_weight must be 'balanced', None or a dict, got {self.class_weight!r}")
        X = self._check_X(X, reset=True)
        n = X.shape[0]
        y_array = _labels_array(y, n, warn_column=True)
        if n < 2:
            raise ValueError(f"n_samples={n}: a probe needs several recordings per class (or target range)")
        task, reason = infer_task(y_array, self.task)
        group_array = _groups_array(groups, n)
        if task == "multilabel":
            y_fit = y_array.astype(int)
        elif task == "regression":
            y_fit = y_array.astype(np.float64)
        else:
            y_fit = y_array
        splitter, n_splits, notes = inner_splits(task, y_fit, group_array, self.cv, self.random_state, X)

        if task == "regression":
            alphas = np.asarray(DEFAULT_ALPHAS if self.alphas is None else self.alphas, dtype=float)
            estimator: Any = RidgeCV(alphas=alphas, cv=splitter, scoring="neg_mean_squared_error")
            with _convergence_summary(notes, self.max_iter):
                estimator.fit(X, y_fit)
            grid = alphas
            regularization: Any = float(estimator.alpha_)
            cv_score = float(estimator.best_score_)
            n_iter = 1  # closed-form solve
        else:
            Cs = list(DEFAULT_CS if self.Cs is None else self.Cs)
            n_classes = 2 if task == "multilabel" else len(np.unique(y_fit))
            solver = self.solver
            if solver == "auto":
                solver = "newton-cholesky" if n_classes == 2 and X.shape[1] <= NEWTON_MAX_FEATURES else "lbfgs"
            logistic = _logistic_cv(
                Cs=Cs,
                cv=splitter,
                scoring="roc_auc" if n_classes == 2 else "roc_auc_ovr",
                class_weight=self.class_weight,
                solver=solver,
                max_iter=self.max_iter,
                random_state=self.random_state,
                n_jobs=None if task == "multilabel" else self.n_jobs,
            )
            self.solver_ = solver
            grid = np.asarray(Cs, dtype=float)
            if task == "multilabel":
                with _convergence_summary(notes, self.max_iter):
                    estimator = OneVsRestClassifier(logistic, n_jobs=self.n_jobs).fit(X, y_fit)
                regularization = np.array([_chosen_c(m) for m in estimator.estimators_])
                cv_score = float(np.mean([_best_cv_score(m) for m in estimator.estimators_]))
                n_iter = int(max(np.max(m.n_iter_) for m in estimator.estimators_))
                self.classes_ = np.arange(y_fit.shape[1])
            else:
                with _convergence_summary(notes, self.max_iter):
                    estimator = logistic.fit(X, y_fit)
                regularization = _chosen_c(estimator)
                cv_score = _best_cv_score(estimator)
                n_iter = int(np.max(estimator.n_iter_))
                self.classes_ = estimator.classes_
        if len(grid) > 1 and np.isin(np.ravel(regularization), (grid.min(), grid.max())).any():
            name = "alpha" if task == "regression" else "C"
            notes.append(
                f"the chosen {name} is at the edge of the grid ({grid.min():.3g}-{grid.max():.3g}); "
                f"widen {'alphas' if task == 'regression' else 'Cs'} to be sure the best value is inside it"
            )
        self.estimator_ = estimator
        self.n_iter_ = n_iter
        self.task_ = task
        self.task_reason_ = reason
        self.n_splits_ = n_splits
        self.cv_folds_ = _fold_ids(splitter)
        self.grouped_ = group_array is not None
        self.n_groups_ = int(len(np.unique(_units(group_array, n)))) if group_array is not None else None
        self.regularization_ = regularization
        self.cv_score_ = cv_score
        self.cv_scoring_ = "neg_mean_squared_error" if task == "regression" else (
            "roc_auc" if task in ("binary", "multilabel") else "roc_auc_ovr (macro)"
        )
        self.notes_ = notes
        return self

    def predict(self, X: object) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(self._check_X(X, reset=False))

    @available_if(_is_classification_probe)
    def predict_proba(self, X: object) -> np.ndarray:
        """Class probabilities ``(n, n_classes)``; for multi-label, the probability of each label ``(n, n_labels)``."""
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(self._check_X(X, reset=False))

    @available_if(_is_classification_probe)
    def decision_function(self, X: object) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.decision_function(self._check_X(X, reset=False))

    def score(self, X: object, y: object, sample_weight: object = None) -> float:
        """Accuracy (subset accuracy for multi-label) for classification, R² for regression."""
        prediction = self.predict(X)
        if self.task_ == "regression":
            return float(r2_score(y, prediction, sample_weight=sample_weight))
        return float(accuracy_score(y, prediction, sample_weight=sample_weight))

    def summary(self) -> str:
        """What was fitted, in words."""
        check_is_fitted(self, "estimator_")
        if self.task_ == "regression":
            head = f"ridge regression, alpha={self.regularization_:.3g} (from {len(self.estimator_.alphas)} values)"
        else:
            kind = {"binary": "logistic regression", "multiclass": "multinomial logistic regression",
                    "multilabel": f"one-vs-rest logistic regression over {len(self.classes_)} labels"}[self.task_]
            c = self.regularization_
            chosen = f"C={c:.3g}" if np.ndim(c) == 0 else f"C per label={np.array2string(np.asarray(c), precision=3)}"
            weights = "balanced class weights" if self.class_weight == "balanced" else f"class_weight={self.class_weight}"
            head = f"{kind}, {chosen}, {weights}"
        groups = f"grouped by {self.n_groups_} patients" if self.grouped_ else "no groups (records treated as independent)"
        lines = [
            f"task: {self.task_} ({self.task_reason_})",
            f"head: {head}",
            f"inner CV: {self.n_splits_} folds, {groups}; best mean {self.cv_scoring_} = {self.cv_score_:.4g}",
        ]
        lines += [f"note: {note}" for note in self.notes_]
        return "\n".join(lines)

    def __sklearn_tags__(self):  # scikit-learn >= 1.6
        from sklearn.utils import ClassifierTags, RegressorTags

        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        if self.task in CLASSIFICATION_TASKS:
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_label=self.task == "multilabel")
        elif self.task == "regression":
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
        return tags


# ------------------------------------------------------------------------------------------------ fit_probe


def _n_records(X: object) -> int:
    if hasattr(X, "shape") and len(getattr(X, "shape")) >= 1:
        shape = X.shape  # type: ignore[union-attr]
        if len(shape) == 1:
            raise ValueError(
                f"X is 1-D, shape {tuple(shape)}: pass several recordings (n_records, n_samples), a list of 1-D "
                "recordings, or embeddings (n_records, embed_dim)"
            )
        return int(shape[0])
    if isinstance(X, (list, tuple)):
        return len(X)
    raise TypeError(f"X must be an array or a list of recordings, got {type(X).__name__}")


def _as_embeddings(X: object, fs: object) -> np.ndarray | None:
    """X as a float array if it holds precomputed embeddings (fs is None), else None (raw ECG)."""
    if fs is not None:
        array = X if isinstance(X, np.ndarray) else None
        if array is not None and array.ndim == 2 and array.shape[1] in EMBED_DIMS:
            seconds = array.shape[1] / check_fs(fs)
            if seconds < WINDOW_SECONDS:
                raise ValueError(
                    f"X has {array.shape[1]} columns, which at fs={fs} Hz is {seconds:.2f} s of ECG, too short for "
                    f"raw recordings (>= {WINDOW_SECONDS} s); if X holds CLEF embeddings, do not pass fs"
                )
        return None
    try:
        array = np.asarray(X.detach().cpu().numpy() if hasattr(X, "detach") else X)
    except ValueError:
        array = np.asarray([], dtype=object)
    if array.ndim == 2 and array.dtype.kind in "fiu" and array.shape[1] in EMBED_DIMS:
        embeddings = array.astype(np.float32 if array.dtype == np.float32 else np.float64, copy=False)
        if not np.isfinite(embeddings).all():
            raise ValueError("X (embeddings) contains NaN or infinite values; re-embed those recordings or drop them")
        return embeddings
    shape = getattr(array, "shape", None)
    if array.ndim == 2 and array.dtype.kind in "fiu":
        raise ValueError(
            f"X has {array.shape[1]} columns, which is not a CLEF embedding width {EMBED_DIMS} (small, medium, "
            "large). If X holds raw ECG recordings, pass fs= (their sampling rate in Hz); if it holds "
            "embeddings, check that they come from clef.embed (one row per recording)"
        )
    raise ValueError(
        f"fs (the sampling rate in Hz) is required when X holds raw ECG (got X of shape {shape}); "
        f"pass fs=..., or pass CLEF embeddings as a 2-D float array of width {' / '.join(map(str, EMBED_DIMS))}"
    )


def fit_probe(
    X: object,
    y: object,
    *,
    fs: float | None = None,
    model: ModelSpec = "medium",
    task: str = "auto",
    groups: object = None,
    cv: object = 5,
    pooling: str = "mean",
    batch_size: int | None = None,
    device: str | None = None,
    Cs: Sequence[float] | None = None,
    alphas: Sequence[float] | None = None,
    class_weight: str | None = "balanced",
    max_iter: int = 1000,
    random_state: int | None = 0,
    n_jobs: int | None = None,
) -> Pipeline:
    """Fit a linear probe the way the CLEF paper evaluates its embeddings.

    Args:
        X: raw ECG, ``(n_records, n_samples)`` or a list of 1-D recordings (then ``fs`` is required), or
            precomputed CLEF embeddings ``(n_records, 256 | 1024 | 2048)`` (then leave ``fs=None``).
        y: labels: 1-D (binary, multiclass or regression target) or 2-D 0/1 ``(n_records, n_labels)`` (multi-label).
        fs: sampling rate of raw X in Hz.
        model: the CLEF model for raw X: a name, a weights path or a loaded ClefEncoder.
        task: ``"auto"`` (decided from y, see :func:`infer_task`), ``"binary"``, ``"multiclass"``,
            ``"multilabel"`` or ``"regression"``.
        groups: patient id of each recording. The inner cross-validation never puts one patient's records
            on both sides of a split.
        cv: inner folds for choosing the regularisation strength, or a scikit-learn splitter.
        pooling: passed to :class:`ClefEmbedder` (as are ``batch_size`` and ``device``).
        batch_size: windows per forward pass of the embedder.
        device: the embedder's device.
        Cs: passed to :class:`LinearProbe` (as are ``alphas``, ``class_weight``, ``max_iter``, ``random_state``
            and ``n_jobs``).
        alphas: the regression head's regularisation grid.
        class_weight: the classification heads' class weights.
        max_iter: the solvers' iteration limit.
        random_state: seed of the inner cross-validation.
        n_jobs: parallel jobs of the inner cross-validation.

    Returns:
        A fitted :class:`~sklearn.pipeline.Pipeline`: ``("embed", ClefEmbedder)`` (only for raw X), ``("scale",
        StandardScaler)``, ``("head", LinearProbe)``. It predicts from raw ECG (``probe.predict(signals)``);
        ``probe[1:]`` predicts from embeddings. Decisions are recorded on it: ``probe.task_``,
        ``probe.task_reason_``, ``probe.fit_info_`` (dict) and ``probe.summary_`` (text).

    Raw X is embedded once; the inner cross-validation then runs on the embeddings.
    """
    n_records = _n_records(X)
    y_array = _labels_array(y, n_records)
    resolved, reason = infer_task(y_array, task)
    _groups_array(groups, n_records)

    embeddings = _as_embeddings(X, fs)
    started = time.perf_counter()
    embedder: ClefEmbedder | None = None
    if embeddings is None:
        embedder = ClefEmbedder(model=model, fs=fs, pooling=pooling, batch_size=batch_size, device=device)
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
