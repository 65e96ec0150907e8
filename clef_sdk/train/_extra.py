"""The ``train`` extra: a clear error naming the install command when it is missing."""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

INSTALL_HINT = 'pip install "clef-sdk[train]"'


def require(module: str) -> ModuleType:
    """Import ``module`` (a dependency of the ``train`` extra) or raise ImportError saying how to install it."""
    try:
        return import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"clef_sdk.train needs {module.split('.')[0]!r}, part of the training extra: {INSTALL_HINT} "
            f"(missing: {exc.name or module})"
        ) from exc
