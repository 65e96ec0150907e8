"""Exceptions raised by clef_sdk. Each message says what went wrong and what to do about it."""

from __future__ import annotations

__all__ = [
    "ChecksumMismatchError",
    "CheckpointError",
    "ClefError",
    "ManifestError",
    "WeightsNotAvailableError",
]


class ClefError(Exception):
    """Base class of clef_sdk's own errors."""


class CheckpointError(ClefError, ValueError):
    """A checkpoint or weights file cannot be used: unsafe pickle, corrupt file, or keys/shapes that do not match."""


class WeightsNotAvailableError(ClefError, FileNotFoundError):
    """The requested weights are neither on disk nor obtainable (offline, unpublished, unreachable)."""


class ChecksumMismatchError(ClefError, ValueError):
    """A downloaded or cached file does not have the sha256 the manifest promises."""


class ManifestError(ClefError, ValueError):
    """The weights manifest is malformed or names an unknown model."""
