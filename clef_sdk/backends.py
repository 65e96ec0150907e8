"""Inference backends of the network: PyTorch, or an ONNX Runtime session of the same weights on the CPU.

``clef.embed(..., backend="onnxruntime")`` keeps the numpy preprocessing and runs the network in ONNX Runtime
(``pip install "clef-sdk[onnx]"``). The session's file is exported once per weights (:func:`clef_sdk.export_onnx`)
and cached under ``CLEF_SDK_HOME/onnx/`` by the SHA-256 of the weights' values, the SDK version and the opset, so
changed weights (a fine-tuned encoder) get a new file; the file is written atomically under a lock, so processes
that start together export it once. Sessions are kept per encoder and thread count (torch's count when called, so
:mod:`clef_sdk.threads` governs both backends) and reused across calls and threads (ONNX Runtime's ``run`` is
thread-safe).

``backend="auto"`` (the default) picks ONNX Runtime where it was measured faster (:data:`AUTO_ONNXRUNTIME`: on
the CPU, in fp32, for the sizes listed, when onnxruntime is installed) and PyTorch everywhere else.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ._optional import require
from ._version import __version__
from .inputs import check_choice
from .models import ClefEncoder, weights_digest

__all__ = [
    "AUTO_ONNXRUNTIME",
    "BACKENDS",
    "Backend",
    "OnnxRuntimeNetwork",
    "cached_onnx_files",
    "network_forward",
    "resolve_backend",
]

Backend = Literal["auto", "torch", "onnxruntime"]
BACKENDS: tuple[Backend, ...] = ("auto", "torch", "onnxruntime")
#: sizes for which ``backend="auto"`` takes ONNX Runtime on the CPU in fp32 (measured faster there: see the
#: performance guide's backend table)
AUTO_ONNXRUNTIME: frozenset[str] = frozenset()
_OPSET = 18


def _onnxruntime_installed() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_backend(backend: object, encoder: ClefEncoder, device: torch.device, precision: str, compile: bool) -> str:
    """``"torch"`` or ``"onnxruntime"`` for this call; refuses combinations ONNX Runtime cannot run."""
    chosen = check_choice(backend, BACKENDS, "backend")
    if chosen == "auto":
        fits = device.type == "cpu" and precision == "fp32" and not compile
        size = getattr(encoder.architecture, "name", None)
        return "onnxruntime" if fits and size in AUTO_ONNXRUNTIME and _onnxruntime_installed() else "torch"
    if chosen == "onnxruntime":
        if device.type != "cpu":
            raise ValueError(f"backend='onnxruntime' runs on the CPU; on {device.type} use backend='torch'")
        if precision != "fp32":
            raise ValueError("backend='onnxruntime' runs fp32 only; use precision='fp32' or backend='torch' for bf16")
        if compile:
            raise ValueError("compile=True compiles the torch network; it does not apply to backend='onnxruntime'")
        require("onnxruntime", "backend='onnxruntime'")
    return chosen


def _weights_key(encoder: ClefEncoder) -> str:
    """The cached file's name: the weights' digest with the SDK version and opset (a new exporter, a new file)."""
    return hashlib.sha256(f"{weights_digest(encoder)} clef-sdk {__version__} opset {_OPSET}".encode()).hexdigest()


def _version_stamp(encoder: ClefEncoder) -> tuple[int, ...]:
    """Changes whenever a parameter or buffer is modified in place (torch's per-tensor version counters)."""
    return tuple(t._version for t in encoder.state_dict(keep_vars=True).values())


class OnnxRuntimeNetwork:
    """The encoder's network as an ONNX Runtime session: called on ``(batch, 1, 5000)`` float32 windows, it
    returns ``(batch, embed_dim)`` float32, as the torch module does."""

    def __init__(self, encoder: ClefEncoder):
        ort = require("onnxruntime", "backend='onnxruntime'")
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
                    export_onnx(encoder, self.path, opset=_OPSET)  # written atomically
        self._ort = ort
        self._sessions: dict[int, Any] = {}
        self._lock = threading.Lock()

    def session(self, num_threads: int) -> Any:
        """The ONNX Runtime session running on ``num_threads`` intra-op threads (made on first use)."""
        with self._lock:
            if num_threads not in self._sessions:
                options = self._ort.SessionOptions()
                options.intra_op_num_threads = num_threads
                options.inter_op_num_threads = 1
                self._sessions[num_threads] = self._ort.InferenceSession(
                    str(self.path), options, providers=["CPUExecutionProvider"]
                )
            return self._sessions[num_threads]

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        session = self.session(torch.get_num_threads())
        array = np.ascontiguousarray(batch.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: array})[0])


_SESSIONS: weakref.WeakKeyDictionary[ClefEncoder, OnnxRuntimeNetwork] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def network_forward(encoder: ClefEncoder, backend: str) -> Any:
    """What runs the network: the encoder itself (torch) or its cached ONNX Runtime session."""
    if backend == "torch":
        return encoder
    with _LOCK:
        network = _SESSIONS.get(encoder)
        if network is None or network.stamp != _version_stamp(encoder):
            network = _SESSIONS[encoder] = OnnxRuntimeNetwork(encoder)
    return network


def cached_onnx_files() -> list[Path]:
    """The ONNX files the backend has cached (to inspect or delete)."""
    from .weights.cache import clef_home

    return sorted((clef_home() / "onnx").glob("*.onnx"))
