"""A task model as one self-contained ONNX file: raw ECG windows in, probabilities (or values) out.

``export_task_onnx(model, path, fs=360)`` writes a graph whose input ``"raw"`` is ``(batch, n_windows,
round(10 * fs))`` float32: a batch of recordings, each cut into ``n_windows`` consecutive raw 10 s windows at ``fs``
Hz (any unit, no NaN). Inside: the preprocessing of [`RawWindowEncoder`][clef_sdk.onnx_export.RawWindowEncoder] per window, the
encoder, the model's pooling (mean or max of the window embeddings, as `TaskModel.predict_proba` pools a
recording) and the head, then

- binary: ``"probabilities"`` ``(batch, 2)``, columns ``[1 - p, p]``;
- multiclass: ``"probabilities"`` ``(batch, n_classes)``, a softmax;
- multilabel: ``"probabilities"`` ``(batch, n_labels)``, a sigmoid per label;
- regression: ``"values"`` ``(batch,)`` in the target's units.

Column ``i`` is label ``classes[i]``. The pooling is inside because it comes before the head: averaging the
probabilities of single windows is not what the model computes. One window per row, ``(batch, 1, n)``, gives the
per-window outputs (`TaskModel.predict_windows`; for one window the pooling is the identity). The windows are
preprocessed one by one, as an app streaming 10 s windows does: at 500 Hz this is exactly ``predict_proba`` on the
recording; at other rates ``predict_proba`` resamples the whole recording at once, which differs at the windows'
edges (as for [`clef_sdk.export_onnx`][clef_sdk.export_onnx]).

Without ``fs`` the input is ``"windows"`` ``(batch, n_windows, 5000)``, windows preprocessed by
[`clef_sdk.preprocess`][clef_sdk.preprocess]. The file's metadata carries the task, classes (JSON), thresholds (JSON), pooling,
``fs``, target scaling (JSON), training facts (JSON) and the tensors' sha256 (the task-model file's
``tensors_sha256``), besides the encoder's entries ([`clef_sdk.onnx_export.encoder_metadata`][clef_sdk.onnx_export.encoder_metadata]).
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import torch
from torch import nn

from .._version import __version__
from ..constants import WINDOW_SAMPLES
from ..inputs import check_fs
from ..onnx_export import (
    DEFAULT_OPSET,
    RawWindowEncoder,
    check_opset,
    encoder_metadata,
    onnx_destination,
    raw_input_contract,
    raw_window_samples,
    write_onnx,
)
from ..weights.format import tensors_digest
from ..weights.hf_hub import HubModelSource
from .format import TASK_FORMAT_VERSION, load_task_model
from .model import TaskModel

__all__ = ["TaskModelGraph", "export_task_onnx", "task_output"]


def task_output(model: TaskModel) -> tuple[str, list[object]]:
    """The name and shape of ``model``'s ONNX output: ``("probabilities", ["batch", n_classes])`` (binary: 2
    columns) or ``("values", ["batch"])`` for regression."""
    if model.task == "regression":
        return "values", ["batch"]
    return "probabilities", ["batch", len(model.classes_)]


class TaskModelGraph(nn.Module):
    """Windows ``(batch, n_windows, n)`` -> pooled outputs of a task model, as tensor operations that export to
    ONNX: raw windows at ``fs`` Hz (``n = round(10 * fs)``), or preprocessed ones (``fs=None``, ``n = 5000``).
    Returns float32 probabilities ``(batch, n_classes)`` or values ``(batch,)``."""

    def __init__(self, model: TaskModel, fs: float | None):
        super().__init__()
        self.model = model
        self.raw = None if fs is None else RawWindowEncoder(model.encoder, fs)
        self.n_samples = WINDOW_SAMPLES if self.raw is None else self.raw.n_samples

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        batch, n_windows, n_samples = windows.shape
        flat = windows.reshape(batch * n_windows, n_samples)
        embeddings = self.model.encoder(flat.to(torch.float32).unsqueeze(1)) if self.raw is None else self.raw(flat)
        pooled = embeddings.view(batch, n_windows, -1)
        pooled = pooled.mean(dim=1) if self.model.pooling == "mean" else pooled.amax(dim=1)
        logits = self.model.head_logits(pooled)
        if self.model.task == "regression":
            return self.model.values_from_logits(logits.to(torch.float64)).to(torch.float32)
        return self.model.proba_from_logits(logits.to(torch.float64)).to(torch.float32)


def _task_metadata(model: TaskModel, fs: float | None, source: object, opset: int, n_samples: int) -> dict[str, str]:
    shape: list[object] = ["batch", "n_windows", n_samples]
    contract: dict[str, object]
    if fs is None:
        contract = {
            "input": "windows",
            "shape": shape,
            "dtype": "float32",
            "expects": "windows preprocessed by clef_sdk.preprocess (500 Hz, band-passed, z-scored)",
        }
    else:
        contract = raw_input_contract(fs, shape)
    contract["windows"] = (
        f"each row is one recording as n_windows consecutive 10 s windows, pooled ({model.pooling}) inside; "
        "(batch, 1, n) gives one output per window"
    )
    output_name, output_shape = task_output(model)
    metadata = encoder_metadata(model.encoder, fs, source, opset, contract=contract)
    hub = model.encoder.source  # a model loaded by repository id: the verified file it came from
    if isinstance(hub, HubModelSource):
        metadata["weights_file_sha256"] = hub.sha256
        metadata["source"] = hub.spec
    thresholds = None if model.thresholds is None else list(model.thresholds)
    scaling = None if model.target_scaling is None else list(model.target_scaling)
    metadata.update(
        {
            "kind": "task-model",
            "output_name": output_name,
            "output_shape": json.dumps(output_shape),
            "task": model.task,
            "classes": json.dumps(model.classes_.tolist()),
            "thresholds": json.dumps(thresholds),
            "pooling": model.pooling,
            "target_scaling": json.dumps(scaling),
            "training": json.dumps(model.training_info, sort_keys=True),
            "task_format_version": str(TASK_FORMAT_VERSION),
            "task_tensors_sha256": tensors_digest(model.state_dict()),
        }
    )
    return metadata


def _export_copy(model: TaskModel) -> TaskModel:
    """``model`` itself if it is float32 on the CPU, else a float32 CPU copy (the user's model is not moved)."""
    parameter = next(model.parameters())
    if parameter.device.type == "cpu" and parameter.dtype == torch.float32:
        return model
    return copy.deepcopy(model).to(device="cpu", dtype=torch.float32)


def export_task_onnx(
    model: TaskModel | str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    fs: float | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write a task model (a `TaskModel`, a task-model file or ``hf-hub:ORG/NAME[@REVISION]``) as one
    self-contained ONNX file at ``path``; see the module docstring for the input, the output and the metadata.

    Args:
        model: the task model.
        path: the ``.onnx`` file to write (atomically).
        fs: the rate of the raw windows the graph takes, Hz (``None``: preprocessed windows).
        opset: ONNX opset, at least 17.

    The batch size and the number of windows are dynamic. Returns the path.
    """
    check_opset(opset)
    task_model = model if isinstance(model, TaskModel) else load_task_model(model)
    rate = None if fs is None else check_fs(fs)
    if rate is not None:
        raw_window_samples(rate)  # an unusable rate is refused before anything is built
    destination = onnx_destination(path)
    exported = _export_copy(task_model)
    graph = TaskModelGraph(exported, rate)
    output_name, _ = task_output(exported)
    was_training = exported.training
    exported.eval()
    try:
        return write_onnx(
            graph,
            torch.zeros(2, 3, graph.n_samples),
            destination,
            input_name="windows" if rate is None else "raw",
            output_name=output_name,
            dynamic_axes={0: "batch", 1: "n_windows"},
            metadata=_task_metadata(exported, rate, model, opset, graph.n_samples),
            doc_string=f"clef-sdk {exported.task} task model on {exported.encoder.name}, exported by clef-sdk "
            f"{__version__}",
            opset=opset,
        )
    finally:
        exported.train(was_training)
