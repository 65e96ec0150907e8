"""Inner cross-validation splits that keep each patient on one side and, for classification, every class in
every fold."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import PredefinedSplit, StratifiedGroupKFold, StratifiedKFold

__all__ = ["fold_ids", "inner_splits", "patient_units"]

# Inner splits are redrawn (new shuffles) up to this many times until every fold holds every class.
_SPLIT_ATTEMPTS = 20


def patient_units(groups: np.ndarray | None, n: int) -> np.ndarray:
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

    Returns ``(splitter, n_splits, notes)``: the splitter is a `PredefinedSplit`
    when the validation folds partition the samples (always for an integer ``cv``), else a list of
    ``(train, validation)`` index pairs. With ``groups``, no group appears in both parts of any split.
    For classification every class (every label's positives and negatives) appears in every part.
    """
    n = len(y)
    units = patient_units(groups, n)
    notes: list[str] = []
    unit_word = "groups" if groups is not None else "recordings"

    if hasattr(cv, "split"):
        strata = _strata(task, y)
        splits = [
            (np.asarray(tr), np.asarray(te))
            for tr, te in cv.split(np.zeros((n, 1)) if X is None else X, strata, groups)
        ]
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


def fold_ids(splitter: object) -> np.ndarray | None:
    """The fold of each sample for a PredefinedSplit (what the head records), else None."""
    return np.asarray(splitter.test_fold) if isinstance(splitter, PredefinedSplit) else None
