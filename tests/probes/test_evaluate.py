"""clef_sdk.probes.metrics and .evaluate: metrics, percentile-bootstrap intervals (records or patients), degenerate resamples."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    mean_absolute_error,
    r2_score,
    roc_auc_score,
)

from clef_sdk.probes.evaluate import evaluate_probe
from clef_sdk.probes.metrics import (
    MetricReport,
    _auprc,
    _auroc,
    _binary_balanced_accuracy,
    _regression_metrics,
    bootstrap_metrics,
)


def test_weighted_metrics_match_sklearn_sample_weight():
    """Bootstrap weights are counts; each weighted metric must equal sklearn's with sample_weight."""
    rng = np.random.default_rng(0)
    for _ in range(10):
        n = 150
        y = rng.integers(0, 2, n).astype(bool)
        score = np.round(rng.normal(size=n) + y, 1)  # rounding makes ties
        weights = rng.integers(0, 4, n).astype(float)
        W = weights[None, :]
        assert _auroc(y, score, W)[0] == pytest.approx(roc_auc_score(y, score, sample_weight=weights), abs=1e-12)
        assert _auprc(y, score, W)[0] == pytest.approx(
            average_precision_score(y, score, sample_weight=weights), abs=1e-12
        )
        assert _binary_balanced_accuracy(y, score > 0.5, W)[0] == pytest.approx(
            balanced_accuracy_score(y, score > 0.5, sample_weight=weights), abs=1e-12
        )
        target = rng.normal(size=n)
        prediction = target + rng.normal(size=n)
        metrics = _regression_metrics(target, prediction, W)
        repeated = np.repeat(np.arange(n), weights.astype(int))
        assert metrics["r2"][0] == pytest.approx(r2_score(target, prediction, sample_weight=weights), abs=1e-12)
        assert metrics["mae"][0] == pytest.approx(mean_absolute_error(target, prediction, sample_weight=weights))
        assert metrics["pearson_r"][0] == pytest.approx(
            np.corrcoef(target[repeated], prediction[repeated])[0, 1], abs=1e-12
        )


def test_point_estimates_match_sklearn_for_every_task():
    rng = np.random.default_rng(1)
    n = 300
    # binary
    y = rng.integers(0, 2, n)
    p = np.clip(0.5 + 0.3 * (y - 0.5) + 0.25 * rng.normal(size=n), 0, 1)
    report = bootstrap_metrics(y, p, task="binary", n_bootstrap=0)
    assert report["auroc"]["estimate"] == pytest.approx(roc_auc_score(y, p))
    assert report["auprc"]["estimate"] == pytest.approx(average_precision_score(y, p))
    assert report["balanced_accuracy"]["estimate"] == pytest.approx(balanced_accuracy_score(y, p >= 0.5))
    # multiclass (macro one-vs-rest)
    y3 = rng.integers(0, 3, n)
    logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[y3]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    report = bootstrap_metrics(y3, proba, task="multiclass", n_bootstrap=0)
    assert report["auroc"]["estimate"] == pytest.approx(roc_auc_score(y3, proba, multi_class="ovr", average="macro"))
    one_hot = np.eye(3)[y3]
    assert report["auprc"]["estimate"] == pytest.approx(average_precision_score(one_hot, proba, average="macro"))
    assert report["balanced_accuracy"]["estimate"] == pytest.approx(balanced_accuracy_score(y3, proba.argmax(1)))
    # string labels through classes=
    names = np.array(["AF", "SR", "VT"])
    named = bootstrap_metrics(names[y3], proba, task="multiclass", classes=list(names), n_bootstrap=0)
    assert named["auroc"]["estimate"] == pytest.approx(report["auroc"]["estimate"])
    # multilabel (macro over labels)
    Y = rng.integers(0, 2, (n, 4))
    S = np.clip(0.5 + 0.3 * (Y - 0.5) + 0.3 * rng.normal(size=(n, 4)), 0, 1)
    report = bootstrap_metrics(Y, S, task="multilabel", n_bootstrap=0)
    assert report["auroc"]["estimate"] == pytest.approx(roc_auc_score(Y, S, average="macro"))
    assert report["auprc"]["estimate"] == pytest.approx(average_precision_score(Y, S, average="macro"))
    expected = np.mean([balanced_accuracy_score(Y[:, j], S[:, j] >= 0.5) for j in range(4)])
    assert report["balanced_accuracy"]["estimate"] == pytest.approx(expected)
    # regression
    t = rng.normal(70, 10, n)
    q = t + rng.normal(0, 5, n)
    report = bootstrap_metrics(t, q, task="regression", n_bootstrap=0)
    assert report["mae"]["estimate"] == pytest.approx(mean_absolute_error(t, q))
    assert report["rmse"]["estimate"] == pytest.approx(np.sqrt(np.mean((t - q) ** 2)))
    assert report["r2"]["estimate"] == pytest.approx(r2_score(t, q))
    assert report["pearson_r"]["estimate"] == pytest.approx(np.corrcoef(t, q)[0, 1])


def test_interval_covers_a_known_auroc_at_the_nominal_rate():
    """Binormal scores: negatives N(0,1), positives N(1,1), so the true AUROC is Phi(1/sqrt 2) = 0.760."""
    truth = norm.cdf(1 / np.sqrt(2))
    rng = np.random.default_rng(123)
    y = np.r_[np.zeros(100), np.ones(60)].astype(int)
    hits = 0
    repeats = 200
    for i in range(repeats):
        score = rng.normal(size=len(y)) + y
        entry = bootstrap_metrics(y, score, task="binary", n_bootstrap=300, random_state=i)["auroc"]
        hits += entry["ci_low"] <= truth <= entry["ci_high"]
    # measured 0.96 (binomial sd of the coverage over 200 repeats ~0.015)
    assert 0.88 <= hits / repeats <= 0.99


def test_patient_bootstrap_keeps_coverage_where_the_record_bootstrap_loses_it():
    """Errors share a per-patient offset; the true MAE is E|u + e| = sqrt(2/pi) * sqrt(su^2 + se^2)."""
    su, se, n_patients, per_patient = 1.0, 0.5, 30, 8
    truth = np.sqrt(2 / np.pi) * np.hypot(su, se)
    rng = np.random.default_rng(123)
    groups = np.repeat(np.arange(n_patients), per_patient)
    by_patient = by_record = 0
    repeats = 200
    for i in range(repeats):
        error = np.repeat(rng.normal(scale=su, size=n_patients), per_patient) + rng.normal(scale=se, size=len(groups))
        target = rng.normal(size=len(groups)) * 10
        grouped = bootstrap_metrics(
            target, target + error, task="regression", groups=groups, n_bootstrap=300, random_state=i
        )
        naive = bootstrap_metrics(target, target + error, task="regression", n_bootstrap=300, random_state=i)
        by_patient += grouped["mae"]["ci_low"] <= truth <= grouped["mae"]["ci_high"]
        by_record += naive["mae"]["ci_low"] <= truth <= naive["mae"]["ci_high"]
        assert grouped.n_groups == n_patients and grouped.resampled == "patients"
    # measured 0.91 and 0.56
    assert by_patient / repeats >= 0.85
    assert by_record / repeats <= 0.75


def test_degenerate_resamples_are_counted_not_fatal():
    """Only 2 of 12 patients have positives: many patient resamples hold no positive at all."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(12), 5)
    y = np.isin(groups, [3, 7]).astype(int)
    score = rng.normal(size=len(y)) + y
    with pytest.warns(UserWarning, match="degenerate"):
        report = bootstrap_metrics(y, score, task="binary", groups=groups, n_bootstrap=500)
    for entry in report.values():
        assert entry["n_degenerate"] > 50  # P(no positive patient drawn) = (10/12)^12 = 11%
        assert entry["n_valid"] + entry["n_degenerate"] == 500
        assert np.isfinite(entry["ci_low"]) and np.isfinite(entry["ci_high"])
        assert entry["ci_low"] <= entry["estimate"] <= entry["ci_high"] or entry["estimate"] == 1.0
    assert len(report.bootstrap_samples["auroc"]) == report["auroc"]["n_valid"]
    # regression: constant targets within a resample make R^2 and r undefined, MAE stays defined
    target = np.repeat([1.0, 2.0], [50, 2])
    with pytest.warns(UserWarning, match="degenerate"):
        regression = bootstrap_metrics(
            target, target + rng.normal(size=52), task="regression", groups=np.r_[np.zeros(50), [1, 1]], n_bootstrap=200
        )
    assert regression["r2"]["n_degenerate"] > 0 and regression["mae"]["n_degenerate"] == 0


def test_reproducible_and_rendered():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 80)
    score = rng.normal(size=80) + y
    first = bootstrap_metrics(y, score, task="binary", n_bootstrap=200, random_state=7)
    again = bootstrap_metrics(y, score, task="binary", n_bootstrap=200, random_state=7)
    other = bootstrap_metrics(y, score, task="binary", n_bootstrap=200, random_state=8)
    assert first == again and first != other
    assert isinstance(first, MetricReport) and isinstance(first, dict)
    text = str(first)
    assert "AUROC" in text and "95% CI" in text and "200 resamples" in text
    assert (
        bootstrap_metrics(y, score, task="binary", ci=0.5, n_bootstrap=200)["auroc"]["ci_high"]
        < first["auroc"]["ci_high"]
    )


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"y_true": [1, 1, 1], "y_score": [0.1, 0.5, 0.9]}, ValueError, "single class"),
        ({"y_true": [0, 1, 1], "y_score": [0.1, np.nan, 0.9]}, ValueError, "NaN"),
        ({"y_true": [0, 1, 1], "y_score": [0.1, 0.9]}, ValueError, "must match"),
        ({"y_true": [0, 1, 2], "y_score": [0.1, 0.2, 0.9]}, ValueError, "0/1"),
        ({"y_true": [0, 1, 1], "y_score": [0.1, 0.2, 0.9], "ci": 95}, ValueError, "ci must be between 0 and 1"),
        ({"y_true": [0, 1, 1], "y_score": [0.1, 0.2, 0.9], "groups": [1, 2]}, ValueError, "one patient id per record"),
        ({"y_true": [0, 1, 1], "y_score": [0.1, 0.2, 0.9], "task": "ranking"}, ValueError, "task must be one of"),
    ],
)
def test_bad_input_is_rejected_clearly(kwargs, error, match):
    kwargs = {"task": "binary", **kwargs}
    with pytest.raises(error, match=match):
        bootstrap_metrics(kwargs.pop("y_true"), kwargs.pop("y_score"), **kwargs)


def test_evaluate_probe_on_any_fitted_sklearn_estimator():
    from sklearn.linear_model import LinearRegression, LogisticRegression

    rng = np.random.default_rng(4)
    X = rng.normal(size=(120, 5))
    y = (X[:, 0] + rng.normal(size=120) > 0).astype(int)
    classifier = LogisticRegression().fit(X, y)
    report = evaluate_probe(classifier, X, y, n_bootstrap=50)
    assert report.task == "binary"
    assert report["auroc"]["estimate"] == pytest.approx(roc_auc_score(y, classifier.predict_proba(X)[:, 1]))
    target = X[:, 1] * 2 + rng.normal(size=120)
    regressor = LinearRegression().fit(X, target)
    assert evaluate_probe(regressor, X, target, n_bootstrap=50).task == "regression"
    with pytest.raises(ValueError, match="not fitted on"):
        evaluate_probe(classifier, X, np.where(y == 1, 2, 0), n_bootstrap=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warnings on a healthy evaluation
        evaluate_probe(classifier, X, y, groups=np.arange(120) // 4, n_bootstrap=100)


@pytest.fixture(scope="module")
def mitdb_windows(mitdb_record: np.ndarray) -> np.ndarray:
    """24 real 10 s windows (MIT-BIH record 100, 360 Hz)."""
    return mitdb_record[: 24 * 3600].reshape(24, 3600)


@pytest.mark.parametrize("task", ["multiclass", "multilabel", "regression"])
def test_evaluate_probe_on_a_task_model(mitdb_windows, task):
    """A bare TaskModel (an untrained head on a random-init CLEF-small) on raw recordings: one pass of the
    encoder, the decisions read off the probabilities as predict makes them, the labels checked first."""
    import clef_sdk as clef

    classes = {"multiclass": ["a", "b", "c"], "multilabel": ["af", "pvc"], "regression": ["age"]}[task]
    model = clef.TaskModel(clef.build("small", seed=0), task, classes, target_scaling=(60.0, 10.0) if task ==
                           "regression" else None)  # fmt: skip
    groups = np.arange(24) // 4
    rng = np.random.default_rng(0)
    y = {
        "multiclass": np.array(classes * 8),
        "multilabel": np.stack([np.arange(24) % 2, np.arange(24) // 12], axis=1),
        "regression": rng.normal(60, 10, 24),
    }[task]
    report = evaluate_probe(model, mitdb_windows, y, fs=360, groups=groups, n_bootstrap=50)
    assert report.task == task and report.n_groups == 6
    if task == "regression":
        values = model.predict(mitdb_windows, 360)
        assert report["mae"]["estimate"] == pytest.approx(mean_absolute_error(y, values))
        with pytest.raises(ValueError, match="1-D numeric targets"):
            evaluate_probe(model, mitdb_windows, np.array(["old"] * 24), fs=360)
        return
    proba = model.predict_proba(mitdb_windows, 360)
    predicted = model.predict(mitdb_windows, 360)
    if task == "multiclass":
        assert report["auroc"]["estimate"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr"))
        assert report["balanced_accuracy"]["estimate"] == pytest.approx(balanced_accuracy_score(y, predicted))
        with pytest.raises(ValueError, match=r"label 'z' is not one of the model's classes \['a', 'b', 'c'\]"):
            evaluate_probe(model, mitdb_windows, np.append(y[:-1], "z"), fs=360)
    else:
        assert report["auroc"]["estimate"] == pytest.approx(roc_auc_score(y, proba, average="macro"))
        with pytest.raises(ValueError, match=r"predicts 2 labels \['af', 'pvc'\]"):
            evaluate_probe(model, mitdb_windows, y[:, :1].repeat(3, axis=1), fs=360)
