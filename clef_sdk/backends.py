"""Inference backends of the network: PyTorch, or the same weights exported to ONNX and run by ONNX Runtime or
OpenVINO on the CPU.

``clef.embed(..., backend="onnxruntime")`` (``pip install "clef-sdk[onnx]"``) or ``backend="openvino"`` (``pip
install "clef-sdk[openvino]"``) keeps the numpy preprocessing and runs the network in that engine. The ONNX file is
exported once per weights ([`clef_sdk.export_onnx`][clef_sdk.export_onnx]) and cached under ``CLEF_SDK_HOME/onnx/`` by the SHA-256 of
the weights' values, the SDK version and the opset, so changed weights (a fine-tuned encoder) get a new file; the
file is written atomically under a lock, so processes that start together export it once. Each engine's compiled
network is kept per encoder, thread count (torch's count when called, so [`clef_sdk.threads`][clef_sdk.threads] governs every
backend) and precision, and reused across calls and threads.

``backend="auto"`` (the default) takes, on the CPU in fp32, the first installed engine that
`AUTO_CPU_ENGINES` lists for the model's size (measured faster than torch there), and torch everywhere else.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ._optional import require
from ._version import __version__
from .errors import SettingsError
from .inputs import check_choice
from .models import ClefEncoder, weights_digest

__all__ = [
    "AUTO_CPU_ENGINES",
    "BACKENDS",
    "BACKEND_ENV",
    "ENGINES",
    "Backend",
    "ExportedNetwork",
    "OnnxRuntimeNetwork",
    "OpenVinoNetwork",
    "cached_onnx_files",
    "exported_network",
    "network_forward",
    "resolve_backend",
]

Backend = Literal["auto", "torch", "onnxruntime", "openvino"]
BACKENDS: tuple[Backend, ...] = ("auto", "torch", "onnxruntime", "openvino")
#: what ``backend="auto"`` tries on the CPU in fp32, per size, first installed engine first (measured faster than
#: torch there: see the performance guide's backend table); torch for the sizes not listed and everywhere else
AUTO_CPU_ENGINES: dict[str, tuple[str, ...]] = {
    # OpenVINO fp32 against torch fp32 on 2 Xeon cores: small 1.4-2.4x, medium 1.2-1.7x at batches 1-64; ONNX
    # Runtime was 0.8-1.1x at batch 16 and above, so it is not listed. Large (1.4-1.6x) stays on torch: its first
    # export took 31 s and 7 GB, and each process's compilation 7.7 s
    "small": ("openvino",),
    "medium": ("openvino",),
}
_OPSET = 18
logger = logging.getLogger("clef_sdk")
#: the modules each engine needs (the export too: torch.onnx's exporter runs on onnx and onnxscript)
_ENGINE_MODULES: dict[str, tuple[str, ...]] = {
    "onnxruntime": ("onnxruntime", "onnx", "onnxscript"),
    "openvino": ("openvino", "onnx", "onnxscript"),
}
#: environment variable with the backend that ``backend="auto"`` stands for (e.g. ``torch`` for bit-faithful runs)
BACKEND_ENV = "CLEF_SDK_BACKEND"


def _installed(engine: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in _ENGINE_MODULES[engine])


def _plain(encoder: ClefEncoder) -> bool:
    """Whether the exported network computes what the module does: a ClefEncoder itself (not a subclass with its
    own forward) without forward hooks, which an engine would not run."""
    if type(encoder) is not ClefEncoder:
        return False
    return not any(module._forward_hooks or module._forward_pre_hooks for module in encoder.modules())


def _from_environment() -> str:
    text = (os.environ.get(BACKEND_ENV) or "").strip().lower() or "auto"
    if text not in BACKENDS:
        raise SettingsError(f"environment variable {BACKEND_ENV}={text!r} must be one of {', '.join(BACKENDS)}")
    return text


def resolve_backend(backend: object, encoder: ClefEncoder, device: torch.device, precision: str, compile: bool) -> str:
    """``"torch"``, ``"onnxruntime"`` or ``"openvino"`` for this call; refuses combinations an engine cannot run.

    ``"auto"`` stands for the backend in ``CLEF_SDK_BACKEND`` when that is set; otherwise, on the CPU in fp32, for
    the first installed engine `AUTO_CPU_ENGINES` lists for the model's size, and for torch elsewhere (also
    for an encoder with forward hooks or a subclass's own forward, which an exported network would skip)."""
    chosen: str = check_choice(backend, BACKENDS, "backend")
    if chosen == "auto":
        chosen = _from_environment()
    if chosen == "auto":
        if device.type != "cpu" or precision != "fp32" or compile or not _plain(encoder):
            return "torch"
        size = getattr(encoder.architecture, "name", "")
        return next((e for e in AUTO_CPU_ENGINES.get(size, ()) if _installed(e)), "torch")
    if chosen != "torch":
        if device.type != "cpu":
            raise ValueError(f"backend={chosen!r} runs on the CPU; on {device.type} use backend='torch'")
        if precision != "fp32" and chosen == "onnxruntime":
            raise ValueError(
                "backend='onnxruntime' runs fp32 only; use precision='fp32', or backend='torch' or 'openvino' for bf16"
            )
        if compile:
            raise ValueError(f"compile=True compiles the torch network; it does not apply to backend={chosen!r}")
        for module in _ENGINE_MODULES[chosen]:
            require(module, f"backend={chosen!r}")
    return chosen


def _weights_key(encoder: ClefEncoder) -> str:
    """The cached file's name: the weights' digest with the SDK version and opset (a new exporter, a new file)."""
    return hashlib.sha256(f"{weights_digest(encoder)} clef-sdk {__version__} opset {_OPSET}".encode()).hexdigest()


def _version_stamp(encoder: ClefEncoder) -> tuple[int, ...]:
    """Changes whenever a parameter or buffer is modified in place (torch's per-tensor version counters)."""
    return tuple(t._version for t in encoder.state_dict(keep_vars=True).values())


class ExportedNetwork:
    """The encoder's network exported to ONNX (once per weights, cached) and run by another engine on the CPU:
    called on ``(batch, 1, 5000)`` float32 windows, it returns ``(batch, embed_dim)`` float32, as the torch module
    does. An engine's compiled network is made per thread count (torch's count when called, so
    [`clef_sdk.threads`][clef_sdk.threads] governs every backend) on first use."""

    engine = ""

    def __init__(self, encoder: ClefEncoder):
        from .onnx_export import export_onnx
        from .weights.cache import clef_home

        key = _weights_key(encoder)
        self.path = clef_home() / "onnx" / f"{key[:32]}.onnx"
        self.stamp = _version_stamp(encoder)
        if not self.path.is_file():
            from filelock import FileLock

            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.path) + ".lock"):
                if not self.path.is_file():  # another process may have written it while this one waited
                    logger.info(
                        "exporting %s to ONNX for %s, once for these weights (about 10 s for small and medium): %s",
                        encoder.name,
                        self.engine,
                        self.path,
                    )
                    export_onnx(encoder, self.path, opset=_OPSET)  # written atomically
        self._compiled: dict[tuple[int, str], Any] = {}
        self._lock = threading.Lock()

    def compiled(self, num_threads: int, precision: str = "fp32") -> Any:
        """The engine's network on ``num_threads`` threads in ``precision`` (made on first use)."""
        with self._lock:
            key = (num_threads, precision)
            if key not in self._compiled:
                self._compiled[key] = self._compile(num_threads, precision)
            return self._compiled[key]

    @property
    def thread_counts(self) -> list[int]:
        """The thread counts compiled so far."""
        return sorted({threads for threads, _ in self._compiled})

    def _compile(self, num_threads: int, precision: str) -> Any:
        raise NotImplementedError

    def _run(self, compiled: Any, array: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, batch: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
        compiled = self.compiled(torch.get_num_threads(), precision)
        array = np.ascontiguousarray(batch.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(np.asarray(self._run(compiled, array), dtype=np.float32))


class OnnxRuntimeNetwork(ExportedNetwork):
    """The network in an ONNX Runtime session (fp32); ``run`` is thread-safe, so threads share a session."""

    engine = "onnxruntime"

    def _compile(self, num_threads: int, precision: str) -> Any:
        ort = require("onnxruntime", "backend='onnxruntime'")
        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def _run(self, compiled: Any, array: np.ndarray) -> np.ndarray:
        return compiled.run(None, {compiled.get_inputs()[0].name: array})[0]


class OpenVinoNetwork(ExportedNetwork):
    """The network compiled by OpenVINO for the CPU, in fp32 (the precision hint is set: OpenVINO would otherwise
    run bf16 on CPUs that have it) or bf16, for any batch size: static shapes ran 12% faster for small at batch 32,
    but a one-off job paid more in compilations (one per new batch size) than it gained (2 h of ECG: 1.98 s
    against 1.50 s). Each thread has its own infer request (they are not thread-safe)."""

    engine = "openvino"

    def _compile(self, num_threads: int, precision: str) -> Any:
        ov = require("openvino", "backend='openvino'")
        core = ov.Core()
        model = core.read_model(str(self.path))
        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": num_threads,
            "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        }
        return core.compile_model(model, "CPU", config), threading.local()

    def _run(self, compiled: Any, array: np.ndarray) -> np.ndarray:
        model, local = compiled
        if not hasattr(local, "request"):
            local.request = model.create_infer_request()
        return local.request.infer({0: array})[0].copy()  # the request's buffer is reused by its next call


ENGINES: dict[str, type[ExportedNetwork]] = {"onnxruntime": OnnxRuntimeNetwork, "openvino": OpenVinoNetwork}


_NETWORKS: dict[str, weakref.WeakKeyDictionary[ClefEncoder, ExportedNetwork]] = {
    engine: weakref.WeakKeyDictionary() for engine in ENGINES
}
_LOCK = threading.Lock()


def exported_network(encoder: ClefEncoder, engine: str) -> ExportedNetwork:
    """The encoder's cached network for ``engine`` (``"onnxruntime"`` or ``"openvino"``), rebuilt when its weights
    have changed since."""
    with _LOCK:
        networks = _NETWORKS[engine]
        network = networks.get(encoder)
        if network is None or network.stamp != _version_stamp(encoder):
            network = networks[encoder] = ENGINES[engine](encoder)
    return network


def network_forward(
    encoder: ClefEncoder, backend: str, precision: str = "fp32"
) -> Callable[[torch.Tensor], torch.Tensor]:
    """What runs the network on ``(batch, 1, 5000)`` windows: the encoder itself (torch, under the caller's
    autocast) or its exported network in ``precision``."""
    if backend == "torch":
        return encoder
    return functools.partial(exported_network(encoder, backend), precision=precision)


def cached_onnx_files() -> list[Path]:
    """The ONNX files the backend has cached (to inspect or delete)."""
    from .weights.cache import clef_home

    return sorted((clef_home() / "onnx").glob("*.onnx"))
