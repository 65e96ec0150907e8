"""clef-sdk: CLEF single-lead ECG foundation models as a Python package.

>>> import clef_sdk as clef
>>> embedding = clef.embed(signal, fs=360)          # (embed_dim,) float32

This module only re-exports; each name lives in the module its docstring names. Probes (scikit-learn) and the
ONNX exporter are imported on first use, and listed under ``TYPE_CHECKING`` for type checkers and IDEs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import datasets
from ._lazy import lazy_getattr
from ._version import __version__
from .embedding import EmbeddingOutput, embed
from .errors import (
    CheckpointError,
    ChecksumMismatchError,
    ClefError,
    DatasetError,
    ManifestError,
    PreprocessingWarning,
    QualityWarning,
    RecordingError,
    WeightsNotAvailableError,
)
from .feature_loss import FeatureLoss
from .inputs import Pooling, QualityMode, SignalInput, TailMode
from .io import WfdbSignal
from .loading import ModelSpec, clear_cache, get_encoder, load
from .models import ARCHITECTURES, ClefEncoder, build
from .precision import Precision
from .preprocessing import iter_windows, preprocess
from .progress import set_progress, set_verbose
from .quality import SignalQuality, signal_quality
from .tasks import TaskModel, load_task_model
from .torch_preprocessing import Preprocessor
from .weights.format import convert_checkpoint
from .weights.registry import list_models

if TYPE_CHECKING:  # imported on first use (scikit-learn ~0.5 s, onnx, pandas): see _LAZY
    from .archive import embed_archive, read_embeddings
    from .onnx_export import export_onnx
    from .probes import ClefEmbedder, LinearProbe, evaluate_probe, fit_probe

__all__ = [
    "ARCHITECTURES",
    "CheckpointError",
    "ChecksumMismatchError",
    "ClefEmbedder",
    "ClefEncoder",
    "ClefError",
    "DatasetError",
    "EmbeddingOutput",
    "FeatureLoss",
    "LinearProbe",
    "ManifestError",
    "ModelSpec",
    "Pooling",
    "Precision",
    "PreprocessingWarning",
    "Preprocessor",
    "QualityMode",
    "QualityWarning",
    "RecordingError",
    "SignalInput",
    "SignalQuality",
    "TailMode",
    "TaskModel",
    "WeightsNotAvailableError",
    "WfdbSignal",
    "__version__",
    "build",
    "clear_cache",
    "convert_checkpoint",
    "datasets",
    "embed",
    "embed_archive",
    "evaluate_probe",
    "export_onnx",
    "fit_probe",
    "get_encoder",
    "iter_windows",
    "list_models",
    "load",
    "load_task_model",
    "preprocess",
    "read_embeddings",
    "set_progress",
    "set_verbose",
    "signal_quality",
]

_LAZY = {
    "ClefEmbedder": "probes",
    "LinearProbe": "probes",
    "fit_probe": "probes",
    "evaluate_probe": "probes",
    "export_onnx": "onnx_export",
    "embed_archive": "archive",
    "read_embeddings": "archive",
}

__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(__all__)
