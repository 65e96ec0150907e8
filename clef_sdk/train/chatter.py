"""Lightning's informational output kept out of the way unless asked for ([`clef_sdk.set_verbose`][clef_sdk.set_verbose], ``clef
--verbose``): device lines, tips (one promotional), the model table and its own deprecation and performance
warnings. Errors and the SDK's warnings still come through."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

from ..progress import verbose

__all__ = ["quiet_lightning"]

LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning_fabric", "pytorch_lightning")


@contextlib.contextmanager
def quiet_lightning() -> Iterator[bool]:
    """Within the block Lightning logs warnings and errors only, and its own warnings are not shown, unless the
    SDK is verbose; yields whether it is (pass it on as ``enable_model_summary``)."""
    talk = verbose()
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    levels = [logger.level for logger in loggers]
    with warnings.catch_warnings():
        if not talk:
            for logger in loggers:
                logger.setLevel(logging.WARNING)
            for module in ("lightning", "lightning_fabric", "lightning_utilities", "pytorch_lightning"):
                warnings.filterwarnings("ignore", module=module)
        try:
            yield talk
        finally:
            for logger, level in zip(loggers, levels):
                logger.setLevel(level)
