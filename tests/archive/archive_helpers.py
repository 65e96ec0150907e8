"""What the archive tests share besides fixtures (a module of its own name: ``tests/`` and ``tests/train/`` have
conftest modules too, so ``from conftest import`` could find another one)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import clef_sdk as clef

#: the eight LUDB records of the archive fixture
GOOD = ("1", "2", "3", "4", "5", "6", "7", "8")


def reference(path: Path, lead: str, model: clef.ClefEncoder) -> np.ndarray:
    """``clef.embed`` of one lead of one record, as a user would call it."""
    return clef.embed(clef.WfdbSignal(path, lead), model=model)
