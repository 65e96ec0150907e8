"""Small array statistics computed once per 10 s window (``clef_sdk.quality`` and ``clef_sdk.beats``)."""

from __future__ import annotations

import numpy as np

__all__ = ["deflections", "runs", "small_median"]


def runs(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The start and the length of each run of equal consecutive ``values`` (non-empty ``(n,)``)."""
    starts = np.flatnonzero(np.concatenate(([True], values[1:] != values[:-1])))
    return starts, np.diff(starts, append=values.size)


def deflections(values: np.ndarray, magnitude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The deflections of ``values`` (non-empty ``(n,)``; stretches between zero crossings): the start and the length
    of each, and its amplitude, the largest of ``magnitude`` (``abs(values)`` unless given) within it."""
    starts, lengths = runs(np.signbit(values))
    return starts, lengths, np.maximum.reduceat(np.abs(values) if magnitude is None else magnitude, starts)


def small_median(values: np.ndarray) -> float:
    """``np.median`` of a short non-empty ``(n,)`` array, the same value without its overhead (called per window)."""
    ordered = np.sort(values)
    middle = ordered.size // 2
    return float(ordered[middle] if ordered.size % 2 else (ordered[middle - 1] + ordered[middle]) / 2)
