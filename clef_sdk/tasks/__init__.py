"""Self-describing task models: a CLEF encoder, pooling and a linear head that know their task, label names,
target scaling and thresholds, predict on raw recordings, and save to one checked safetensors file.

- :mod:`~clef_sdk.tasks.spec`: the task facts and their checks;
- :mod:`~clef_sdk.tasks.model`: :class:`TaskModel` (forward on windows; predict, predict_proba, predict_windows on
  raw ECG);
- :mod:`~clef_sdk.tasks.format`: the ``clef-sdk/task-model`` file, :func:`save_task_model`, :func:`load_task_model`;
- :mod:`~clef_sdk.tasks.explain`: :func:`explain` (integrated gradients on the recording's own time axis),
  :func:`plot_attribution`;
- :mod:`~clef_sdk.tasks.onnx`: task models as one ONNX graph (raw windows in, probabilities out).
"""

from __future__ import annotations

from .explain import Attribution, explain, plot_attribution
from .format import TASK_FORMAT_NAME, TASK_FORMAT_VERSION, load_task_model, read_task_metadata, save_task_model
from .model import TaskModel
from .spec import TASKS

__all__ = [
    "TASKS",
    "Attribution",
    "TASK_FORMAT_NAME",
    "TASK_FORMAT_VERSION",
    "TaskModel",
    "explain",
    "load_task_model",
    "plot_attribution",
    "read_task_metadata",
    "save_task_model",
]
