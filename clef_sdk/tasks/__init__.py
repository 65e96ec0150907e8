"""Self-describing task models: a CLEF encoder, pooling and a linear head that know their task, label names,
target scaling and thresholds, predict on raw recordings, and save to one checked safetensors file.

- [`spec`][clef_sdk.tasks.spec]: the task facts and their checks;
- [`model`][clef_sdk.tasks.model]: `TaskModel` (forward on windows; predict, predict_proba, predict_windows on
  raw ECG);
- [`format`][clef_sdk.tasks.format]: the ``clef-sdk/task-model`` file, `save_task_model`, `load_task_model`;
- [`explain`][clef_sdk.tasks.explain]: `explain` (integrated gradients on the recording's own time axis),
  `plot_attribution`;
- [`onnx`][clef_sdk.tasks.onnx]: task models as one ONNX graph (raw windows in, probabilities out).
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
