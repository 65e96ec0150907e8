"""Where named weights come from. All network access of clef_sdk lives in this module.

This version resolves names to files already on disk only: ``$CLEF_SDK_HOME/weights/<name>.safetensors``
(default ``~/.cache/clef-sdk``). Downloading from the Hugging Face Hub and Zenodo is added on top of it.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import WeightsNotAvailableError
from .registry import ModelEntry

__all__ = ["HOME_ENV", "clef_home", "fetch_weights", "local_weights_path"]

HOME_ENV = "CLEF_SDK_HOME"
ZENODO_RECORD = "17572734"


def clef_home() -> Path:
    """clef-sdk's own cache folder: ``$CLEF_SDK_HOME``, default ``~/.cache/clef-sdk``."""
    return Path(os.environ.get(HOME_ENV) or Path.home() / ".cache" / "clef-sdk").expanduser()


def local_weights_path(entry: ModelEntry) -> Path:
    """Where converted weights for ``entry`` are kept locally."""
    return clef_home() / "weights" / f"clef-{entry.name}.safetensors"


def fetch_weights(entry: ModelEntry, *, local_files_only: bool = False) -> Path:
    """Path of verified weights for ``entry``; raises :class:`WeightsNotAvailableError` if there are none."""
    path = local_weights_path(entry)
    if path.is_file():
        return path
    raise WeightsNotAvailableError(
        f"no weights for CLEF-{entry.name} at {path}. Download clef_{entry.name}.ckpt from "
        f"https://zenodo.org/records/{ZENODO_RECORD}, then either convert it there with "
        f"`clef convert clef_{entry.name}.ckpt -o {path}` or pass its path: clef.load('path/to/clef_{entry.name}.ckpt')"
    )
