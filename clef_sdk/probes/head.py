"""The linear head of a probe: `LinearProbe`, its regularisation chosen by a patient-grouped inner
cross-validation, with balanced class weights: logistic regression (binary, multiclass), one-vs-rest logistic
regression (multi-label), ridge (regression)."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegressionCV, RidgeCV
from sklearn.metrics import accuracy_score, r2_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_array, check_is_fitted

from .labels import CLASSIFICATION_TASKS, Task, groups_array, infer_task, labels_array
from .splits import fold_ids, inner_splits, patient_units

__all__ = ["DEFAULT_ALPHAS", "DEFAULT_CS", "LinearProbe"]

#: Inverse regularisation strengths tried by the logistic heads (features are standardised first).
DEFAULT_CS: tuple[float, ...] = tuple(float(c) for c in np.logspace(-5, 0, 11))
#: Ridge penalties tried by the regression head.
DEFAULT_ALPHAS: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 6, 17))
# solver="auto": Newton-Cholesky (few iterations whatever C) for binary heads up to this many features, else
# L-BFGS (the Hessian grows with the square of the width; multinomial Newton is slower still).
NEWTON_MAX_FEATURES = 512


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

    * ``"binary"`` / ``"multiclass"``: `LogisticRegressionCV`, L2, balanced class
      weights, C chosen by AUROC (one-vs-rest macro AUROC for multiclass).
    * ``"multilabel"`` (2-D 0/1 y): `OneVsRestClassifier` of the above, one C per label.
    * ``"regression"``: `RidgeCV`, alpha chosen by mean squared error.
    * ``"auto"``: decided from y by `infer_task` at fit time (``task_``, ``task_reason_``).

    Feed it standardised embeddings (`fit_probe` puts a StandardScaler in front). Pass patient ids as
    ``fit(X, y, groups=...)`` (in a Pipeline: ``fit(X, y, head__groups=...)``) and no patient is ever on both
    sides of an inner split; the splits used are kept in ``cv_folds_`` (validation fold of each sample).

    Args:
        task: ``"auto"``, ``"binary"``, ``"multiclass"``, ``"multilabel"`` or ``"regression"``.
        cv: number of inner folds (reduced, with a warning, when a class has fewer patients), or a
            scikit-learn splitter (called as ``split(X, y, groups)``; it must not leak groups).
        Cs: inverse regularisation strengths to try (classification); None: `DEFAULT_CS`.
        alphas: ridge penalties to try (regression); None: `DEFAULT_ALPHAS`.
        class_weight: ``"balanced"`` (default: each class weighs the same in the loss) or None.
        solver: logistic solver; ``"auto"``: ``"newton-cholesky"`` for binary and multi-label heads on at most
            512 features (CLEF-small), ``"lbfgs"`` otherwise.
        max_iter: solver iterations per fit.
        random_state: seed of the inner fold shuffles.
        n_jobs: parallel jobs for the inner cross-validation.
    """

    def __init__(
        self,
        task: Task = "auto",
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
        y_array = labels_array(y, n, warn_column=True)
        if n < 2:
            raise ValueError(f"n_samples={n}: a probe needs several recordings per class (or target range)")
        task, reason = infer_task(y_array, self.task)
        group_array = groups_array(groups, n)
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
        self.cv_folds_ = fold_ids(splitter)
        self.grouped_ = group_array is not None
        self.n_groups_ = int(len(np.unique(patient_units(group_array, n)))) if group_array is not None else None
        self.regularization_ = regularization
        self.cv_score_ = cv_score
        self.cv_scoring_ = (
            "neg_mean_squared_error"
            if task == "regression"
            else ("roc_auc" if task in ("binary", "multilabel") else "roc_auc_ovr (macro)")
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
            kind = {
                "binary": "logistic regression",
                "multiclass": "multinomial logistic regression",
                "multilabel": f"one-vs-rest logistic regression over {len(self.classes_)} labels",
            }[self.task_]
            c = self.regularization_
            chosen = f"C={c:.3g}" if np.ndim(c) == 0 else f"C per label={np.array2string(np.asarray(c), precision=3)}"
            weights = (
                "balanced class weights" if self.class_weight == "balanced" else f"class_weight={self.class_weight}"
            )
            head = f"{kind}, {chosen}, {weights}"
        groups = (
            f"grouped by {self.n_groups_} patients" if self.grouped_ else "no groups (records treated as independent)"
        )
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
