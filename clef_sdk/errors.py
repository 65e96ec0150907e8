"""The exceptions and warnings of clef_sdk, all of them. Each message says what went wrong and what to do."""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ChecksumMismatchError",
    "ClefError",
    "DatasetError",
    "ManifestError",
    "OutputError",
    "PreprocessingWarning",
    "QualityWarning",
    "RecordingError",
    "SettingsError",
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


class DatasetError(ClefError, ValueError):
    """A dataset folder is not a copy of the dataset it is opened as (missing tables or records), or a task,
    record or lead it does not have was asked for. The message says where to get the data."""


class RecordingError(ClefError, ValueError):
    """A recording file cannot be read as ECG: unknown format, no such column or lead, unparsable values."""


class OutputError(ClefError, ValueError):
    """An output cannot be written as asked: it would overwrite an input, or the folder holds files not ours."""


class SettingsError(ClefError, ValueError):
    """An environment variable holds a value clef_sdk cannot use (a flag that is no yes/no, a number out of range)."""


class PreprocessingWarning(UserWarning):
    """A window carries no usable ECG (all NaN, or constant); it is embedded as the pretraining code would."""


class QualityWarning(UserWarning):
    """A recording has no window of usable signal quality: with ``quality="drop"`` its embedding is NaN."""
