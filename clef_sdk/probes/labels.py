"""Labels and tasks of a probe: one label (or target) per recording, checked; the task inferred from them."""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
from sklearn.exceptions import DataConversionWarning

from ..inputs import check_choice

__all__ = [
    "CLASSIFICATION_TASKS",
    "MAX_AUTO_CLASSES",
    "TASKS",
    "Task",
    "groups_array",
    "infer_task",
    "labels_array",
    "n_records_of",
]

Task = Literal["auto", "binary", "multiclass", "multilabel", "regression"]
TASKS: tuple[Task, ...] = ("auto", "binary", "multiclass", "multilabel", "regression")
CLASSIFICATION_TASKS = frozenset({"binary", "multiclass", "multilabel"})
#: With task="auto", integer labels with more distinct values than this are treated as a regression target.
MAX_AUTO_CLASSES = 20


def n_records_of(X: object) -> int:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) >= 1:
        if len(shape) == 1:
            raise ValueError(
                f"X is 1-D, shape {tuple(shape)}: pass several recordings (n_records, n_samples), a list of 1-D "
                "recordings, or embeddings (n_records, embed_dim)"
            )
        return int(shape[0])
    if isinstance(X, (list, tuple)):
        return len(X)
    raise TypeError(f"X must be an array or a list of recordings, got {type(X).__name__}")


def labels_array(y: object, n_records: int | None, *, warn_column: bool = False) -> np.ndarray:
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


def groups_array(groups: object, n_records: int) -> np.ndarray | None:
    if groups is None:
        return None
    array = np.asarray(groups)
    if array.ndim != 1 or len(array) != n_records:
        raise ValueError(f"groups must hold one patient id per recording ({n_records}), got shape {array.shape}")
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
        return all(
            isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) for v in array.ravel()
        )
    return False


def infer_task(y: object, task: str = "auto") -> tuple[Task, str]:
    """Which probe ``y`` calls for, and why: ``(task, reason)``.

    With ``task="auto"``: a 2-D 0/1 matrix is ``"multilabel"``; non-numeric labels (strings, booleans) or
    integers with two distinct values are ``"binary"``; integers with 3-20 distinct values ``"multiclass"``;
    non-integer numbers, or integers with more than 20 distinct values (ages, heart rates), ``"regression"``.
    An explicit ``task`` is checked against ``y``. Raises ValueError naming the problem (one class, NaN, ...).
    """
    task = check_choice(task, TASKS, "task")
    array = labels_array(y, None)
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
    values = np.unique(
        array.astype(float)
        if array.dtype == object and numeric
        else array.astype(str)
        if array.dtype == object
        else array
    )
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
