"""clef-sdk: CLEF single-lead ECG foundation models as a Python package.

>>> import clef_sdk as clef
>>> embedding = clef.embed(signal, fs=360)          # (embed_dim,) float32
"""

from __future__ import annotations

import os

import torch

from . import datasets
from ._lazy import lazy_getattr
from ._version import __version__
from .convert import convert_checkpoint
from .embedding import EmbeddingOutput, Pooling, QualityMode, QualityWarning, SignalInput, embed_with_encoder
from .precision import Precision
from .errors import ChecksumMismatchError, CheckpointError, ClefError, ManifestError, WeightsNotAvailableError
from .loading import ModelSpec, clear_cache, get_encoder, load
from .models import ARCHITECTURES, ClefEncoder, build
from .preprocessing import PreprocessingWarning, TailMode, iter_windows, preprocess
from .quality import SignalQuality, signal_quality
from .registry import list_models
from .streaming import WfdbSignal
from .feature_loss import FeatureLoss
from .torch_preprocessing import Preprocessor

__all__ = [
    "ARCHITECTURES",
    "CheckpointError",
    "ChecksumMismatchError",
    "ClefEmbedder",
    "ClefEncoder",
    "ClefError",
    "FeatureLoss",
    "LinearProbe",
    "ManifestError",
    "PreprocessingWarning",
    "Preprocessor",
    "QualityWarning",
    "SignalQuality",
    "WeightsNotAvailableError",
    "WfdbSignal",
    "__version__",
    "build",
    "clear_cache",
    "convert_checkpoint",
    "datasets",
    "embed",
    "evaluate_probe",
    "export_onnx",
    "fit_probe",
    "iter_windows",
    "list_models",
    "load",
    "preprocess",
    "signal_quality",
]


def embed(
    signal: SignalInput,
    fs: float | list[float] | None = None,
    *,
    model: ModelSpec = "medium",
    pooling: Pooling = "mean",
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: bool | None = None,
    stride_seconds: float | None = None,
    tail: TailMode = "drop",
    precision: Precision = "fp32",
    compile: bool = False,
    quality: QualityMode = None,
) -> EmbeddingOutput | tuple[EmbeddingOutput, SignalQuality | list[SignalQuality]]:
    """CLEF embeddings of single-lead ECG at any sampling rate and length.

    Args:
        signal: one recording ``(n_samples,)``; several of equal length ``(n_records, n_samples)``; or a list
            of 1-D recordings of any lengths. numpy arrays (memory-mapped ones too: read in blocks, never whole),
            torch tensors, lists, and 1-D array-likes read by slicing (:class:`WfdbSignal`, h5py datasets); any unit.
        fs: sampling rate in Hz (50-10,000), one for all recordings or one per recording.
        model: ``"small"``, ``"medium"``, ``"large"`` (or an alias), a weights path, or a loaded ClefEncoder.
        pooling: ``"mean"`` (default) or ``"max"`` over a recording's 10 s windows, or ``None`` for per-window
            embeddings.
        batch_size: windows per forward pass (windows of all recordings are batched together); ``None`` picks the
            fastest measured for the model, precision and device (CPU: 32, or 16 for medium and large in fp32).
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks CUDA when available.
        progress: show a progress bar; ``None`` shows one for long jobs (1,024 windows or more).
        stride_seconds: distance between window starts (default 10 s: consecutive windows).
        tail: the end shorter than 10 s: ``"drop"`` (default, as in pretraining), ``"pad"`` or ``"last"``.
        precision: ``"fp32"`` (default, faithful) or ``"bf16"``: bf16 autocast, 1.4-1.7x faster on CPUs with native
            bf16 (AVX-512 BF16, AMX, Arm BF16) and on GPUs, at cosine >= 0.9999 to fp32; refused where emulated.
        quality: ``None`` (default) embeds every window; ``"drop"`` pools only the windows that
            :func:`signal_quality` rates usable (a recording with none gets NaN and a :class:`QualityWarning`);
            ``"return"`` also returns the per-window quality, as ``(embeddings, SignalQuality)`` (a list of them
            for several recordings).
        compile: ``torch.compile`` the encoder (first batch pays the compilation). Meant for GPUs; on the CPUs
            measured it did not pay (see the performance guide).

    Returns:
        float32 numpy: ``(embed_dim,)`` for one recording, ``(n_records, embed_dim)`` for several. With
        ``pooling=None``: ``(n_windows, embed_dim)`` for one recording, a list of those for several.
    """
    encoder = get_encoder(model, device)
    return embed_with_encoder(
        encoder,
        signal,
        fs,
        pooling=pooling,
        batch_size=batch_size,
        progress=progress,
        stride_seconds=stride_seconds,
        tail=tail,
        precision=precision,
        compile=compile,
        quality=quality,
    )


# Probes import scikit-learn (~0.5 s): loaded on first use.
_LAZY = {
    "ClefEmbedder": "probes",
    "LinearProbe": "probes",
    "fit_probe": "probes",
    "evaluate_probe": "evaluation",
    "export_onnx": "onnx_export",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(__all__)


del os
