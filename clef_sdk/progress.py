"""One switch for progress bars: ``progress=`` on each long call, `set_progress` for the process, or the
``CLEF_SDK_PROGRESS`` environment variable; by default a bar only where stderr is a terminal (tqdm's
``disable=None``), so logs, notebooks' captured output and ``GridSearchCV`` runs stay free of bars.

Precedence: the call's ``progress=`` (``True``/``False``), then `set_progress`, then ``CLEF_SDK_PROGRESS``
(a flag: 1/true/yes/on or 0/false/no/off), then the terminal test.
"""

from __future__ import annotations

import os

from .settings import env_flag

__all__ = [
    "PROGRESS_ENV",
    "VERBOSE_ENV",
    "progress_disabled",
    "progress_wanted",
    "set_progress",
    "set_verbose",
    "verbose",
]

PROGRESS_ENV = "CLEF_SDK_PROGRESS"
VERBOSE_ENV = "CLEF_SDK_VERBOSE"
_setting: bool | None = None
_verbose: bool | None = None


def set_verbose(enabled: bool | None) -> None:
    """Let the libraries under the SDK talk (Lightning's device lines, tips, model table and warnings; clef_sdk's
    INFO logs) or keep them quiet (the default); ``None`` goes back to ``CLEF_SDK_VERBOSE``."""
    global _verbose
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"set_verbose takes True, False or None, got {enabled!r}")
    _verbose = enabled


def verbose() -> bool:
    """Whether `set_verbose` or ``CLEF_SDK_VERBOSE`` asks for the libraries' own messages."""
    return _verbose if _verbose is not None else env_flag(VERBOSE_ENV)


def set_progress(enabled: bool | None) -> None:
    """Bars on (``True``) or off (``False``) for every call of this process that does not pass ``progress=``;
    ``None`` goes back to the environment variable, then to the terminal test."""
    global _setting
    if enabled is not None and not isinstance(enabled, bool):
        raise TypeError(f"set_progress takes True, False or None, got {enabled!r}")
    _setting = enabled


def progress_disabled(progress: bool | None = None) -> bool | None:
    """tqdm's ``disable`` for a call given ``progress``: ``True`` (no bar), ``False`` (a bar) or ``None`` (a bar
    where stderr is a terminal)."""
    if progress is not None:
        return not progress
    if _setting is not None:
        return not _setting
    if os.environ.get(PROGRESS_ENV, "").strip():
        return not env_flag(PROGRESS_ENV)
    return None


def progress_wanted(progress: bool | None = None) -> bool:
    """`progress_disabled` as a yes/no (for libraries that take a bool, such as Lightning's
    ``enable_progress_bar``): ``None`` resolved by whether stderr is a terminal."""
    import sys

    disable = progress_disabled(progress)
    if disable is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return not disable
