"""Settings from environment variables, read when used: flags and bounded numbers, each parsed one way.

A value that cannot be read is an error naming the variable and what it accepts, never silently replaced or
taken as true (``CLEF_SDK_DEBUG=0`` is off).
"""

from __future__ import annotations

import math
import os

from .errors import SettingsError

__all__ = ["FALSE_WORDS", "TRUE_WORDS", "env_flag", "env_float"]

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})


def env_flag(name: str) -> bool:
    """Whether the flag ``name`` is set: 1/true/yes/on are on; unset, empty, 0/false/no/off are off (any case)."""
    value = (os.environ.get(name) or "").strip().lower()
    if value in TRUE_WORDS:
        return True
    if value in FALSE_WORDS:
        return False
    raise ValueError(
        f"environment variable {name}={os.environ[name]!r} is not a flag: use 1/true/yes/on or 0/false/no/off"
    )


def env_float(name: str, default: float, *, low: float, high: float) -> float:
    """The number in ``name`` (``default`` when unset or empty), which must be finite and within [low, high]."""
    text = (os.environ.get(name) or "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise SettingsError(f"environment variable {name}={text!r} must be a number from {low:g} to {high:g}")
    return value
