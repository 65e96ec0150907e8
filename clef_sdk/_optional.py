"""Optional dependencies: one import helper, one message style naming the extra that installs them."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

__all__ = ["EXTRAS", "install_hint", "require"]

# module (top-level name) -> the clef-sdk extra that installs it
EXTRAS = {
    "wfdb": "io",
    "lightning": "train",
    "onnx": "onnx",
    "onnxscript": "onnx",
    "onnxruntime": "onnx",
    "openvino": "openvino",
    "matplotlib": "examples",
    "captum": "explain",
    "pyarrow": "archive",
    "distributed": "dask",
    "dask": "dask",
}


def install_hint(module: str) -> str:
    """The pip command that installs ``module`` with clef-sdk, e.g. ``pip install "clef-sdk[io]"``."""
    top = module.split(".", 1)[0]
    extra = EXTRAS.get(top)
    return f'pip install "clef-sdk[{extra}]" (or pip install {top})' if extra else f"pip install {top}"


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module``, or raise ImportError saying that ``purpose`` needs it and how to install it.

    ``purpose`` completes "... needs <module>", e.g. ``require("wfdb", "reading WFDB records")``.
    """
    try:
        return import_module(module)
    except ImportError as exc:
        top = module.split(".", 1)[0]
        raise ImportError(f"{purpose} needs {top}: {install_hint(module)} ({exc})") from None
