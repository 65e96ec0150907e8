"""What a task model says about itself, each fact checked once: the task, its classes, target scaling, decision
thresholds, pooling and training facts. [`TaskModel`][clef_sdk.tasks.model.TaskModel] checks its arguments here at
construction, and the file reader checks a file's metadata through the same functions."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

__all__ = [
    "TASKS",
    "TASK_POOLINGS",
    "Label",
    "Task",
    "TaskPooling",
    "check_classes",
    "check_target_scaling",
    "check_task",
    "check_task_pooling",
    "check_thresholds",
    "check_training",
    "n_outputs",
]

Task = Literal["binary", "multiclass", "multilabel", "regression"]
TaskPooling = Literal["mean", "max"]
Label = str | int
TASKS: tuple[Task, ...] = ("binary", "multiclass", "multilabel", "regression")
TASK_POOLINGS: tuple[TaskPooling, ...] = ("mean", "max")
DEFAULT_THRESHOLD = 0.5


def check_task(task: object) -> Task:
    """One of `TASKS`."""
    for choice in TASKS:
        if task == choice:
            return choice
    raise ValueError(f"task must be one of {list(TASKS)}, got {task!r}")


def check_task_pooling(pooling: object) -> TaskPooling:
    """``"mean"`` or ``"max"`` over a recording's windows: a task model predicts one output per recording."""
    for choice in TASK_POOLINGS:
        if pooling == choice:
            return choice
    raise ValueError(
        f"pooling must be one of {list(TASK_POOLINGS)} (how a recording's 10 s windows are pooled before the "
        f"head), got {pooling!r}; per-window outputs come from predict_windows"
    )


def _label(value: object, index: int) -> Label:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"classes[{index}] is a bool ({value!r}); use the ints 0 and 1 or strings as label names")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (str, np.str_)):
        if not str(value):
            raise ValueError(f"classes[{index}] is an empty string; every label needs a name")
        return str(value)
    raise TypeError(f"classes[{index}] is a {type(value).__name__} ({value!r}); label names are strings or ints")


def check_classes(task: Task, classes: object) -> tuple[Label, ...]:
    """The label names of ``task``: 2 for binary (negative first), 3 or more for multiclass, 1 or more for
    multilabel (one per label), exactly 1 for regression (the target's name). All strings or all ints, distinct."""
    if isinstance(classes, (str, bytes)) or not isinstance(classes, (Sequence, np.ndarray)):
        raise TypeError(f"classes must be a sequence of label names (strings or ints), got {type(classes).__name__}")
    labels = tuple(_label(value, index) for index, value in enumerate(classes))
    expected = {"binary": "exactly 2", "multiclass": "3 or more", "multilabel": "1 or more", "regression": "exactly 1"}
    count_ok = {
        "binary": len(labels) == 2,
        "multiclass": len(labels) >= 3,
        "multilabel": len(labels) >= 1,
        "regression": len(labels) == 1,
    }[task]
    if not count_ok:
        hint = {
            "binary": " (the negative class first, then the positive one)",
            "multiclass": "; for two classes use task='binary'",
            "multilabel": " (one name per label)",
            "regression": " (the target's name, e.g. ['age'])",
        }[task]
        raise ValueError(f"task={task!r} needs {expected[task]} classes, got {len(labels)}: {list(labels)}{hint}")
    if len({type(label) for label in labels}) > 1:
        raise TypeError(f"classes mix strings and ints ({list(labels)}); use one kind")
    duplicates = [label for label, count in Counter(labels).items() if count > 1]
    if duplicates:
        raise ValueError(f"duplicate class names {sorted(set(duplicates), key=str)} in {list(labels)}")
    return labels


def _finite_float(value: object, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {number!r}")
    return number


def check_target_scaling(task: Task, scaling: object) -> tuple[float, float] | None:
    """``(mean, std)`` of a regression target (the head predicts ``(y - mean) / std``): finite, ``std > 0``.
    ``None`` means ``(0.0, 1.0)`` for regression; other tasks have no target scaling."""
    if task != "regression":
        if scaling is not None:
            raise ValueError(f"target_scaling is for task='regression' only; task={task!r} has none")
        return None
    if scaling is None:
        return (0.0, 1.0)
    if isinstance(scaling, (str, bytes)) or not isinstance(scaling, (Sequence, np.ndarray)) or len(scaling) != 2:
        raise TypeError(f"target_scaling must be (mean, std), got {scaling!r}")
    mean = _finite_float(scaling[0], "target_scaling mean")
    std = _finite_float(scaling[1], "target_scaling std")
    if std <= 0:
        raise ValueError(f"target_scaling std must be > 0, got {std!r}")
    return (mean, std)


def _threshold(value: object, name: str) -> float:
    number = _finite_float(value, name)
    if not 0.0 < number < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1 (a probability), got {number!r}")
    return number


def check_thresholds(task: Task, thresholds: object, n_labels: int) -> tuple[float, ...] | None:
    """Decision thresholds on probabilities, each in (0, 1): one for binary, one per label for multilabel (a
    single number applies to every label); ``None`` gives 0.5. Multiclass (argmax) and regression have none."""
    if task in ("multiclass", "regression"):
        if thresholds is not None:
            rule = "argmax" if task == "multiclass" else "values"
            raise ValueError(f"task={task!r} predicts by {rule}: it takes no thresholds")
        return None
    if thresholds is None:
        return (DEFAULT_THRESHOLD,) * (1 if task == "binary" else n_labels)
    if isinstance(thresholds, (int, float, np.integer, np.floating)) and not isinstance(thresholds, bool):
        return (_threshold(thresholds, "threshold"),) * (1 if task == "binary" else n_labels)
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, (Sequence, np.ndarray)):
        raise TypeError(f"thresholds must be a number or a sequence of numbers, got {type(thresholds).__name__}")
    wanted = 1 if task == "binary" else n_labels
    if len(thresholds) != wanted:
        what = "one" if task == "binary" else f"one per label ({n_labels})"
        raise ValueError(f"task={task!r} takes {what} threshold, got {len(thresholds)}")
    return tuple(_threshold(value, f"thresholds[{i}]") for i, value in enumerate(thresholds))


def check_training(training: object) -> dict[str, Any]:
    """Training facts as a JSON object (string keys; numbers finite), returned as a deep copy."""
    if training is None:
        return {}
    if not isinstance(training, Mapping):
        raise TypeError(f"training must be a dict of JSON-able facts, got {type(training).__name__}")
    try:
        text = json.dumps(dict(training), allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"training must be JSON-able (strings, finite numbers, bools, None, lists, dicts with string keys): {exc}"
        ) from None
    copy: dict[str, Any] = json.loads(text)
    if set(copy) != {str(key) for key in training} or not all(isinstance(key, str) for key in training):
        raise TypeError(f"training keys must be strings, got {list(training)}")
    return copy


def n_outputs(task: Task, n_classes: int) -> int:
    """Width of the head: one logit for binary and regression, one per class or label otherwise."""
    return 1 if task in ("binary", "regression") else n_classes
