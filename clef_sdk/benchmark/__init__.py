"""``clef benchmark``: CLEF models on standard ECG tasks, beside a random-init baseline of every size.

>>> from clef_sdk.benchmark import run_benchmark
>>> results = run_benchmark(["small"], ["ptbxl:superdiagnostic"], {"ptbxl": "/data/ptb-xl"}, output="results")
>>> print(results.markdown())

Modules: `.models` (which weights, identified by digest), `.cache` (embeddings per model and dataset),
`.protocols` (the probe; fine-tuning lives in ``clef_sdk.train``), `.runner`, `.results`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:  # imported on first use (pandas, scikit-learn): `clef --help` stays quick
    from .models import RANDOM_INIT, BenchmarkModel, resolve_model, weights_digest
    from .protocols import BenchmarkProtocol, Part, ProbeProtocol, Scores, TaskSplits
    from .results import HEADLINE_METRICS, BenchmarkResults
    from .runner import parse_task, run_benchmark, task_splits

__all__ = [
    "HEADLINE_METRICS",
    "RANDOM_INIT",
    "BenchmarkModel",
    "BenchmarkProtocol",
    "BenchmarkResults",
    "Part",
    "ProbeProtocol",
    "Scores",
    "TaskSplits",
    "parse_task",
    "resolve_model",
    "run_benchmark",
    "task_splits",
    "weights_digest",
]

_LAZY = {
    "RANDOM_INIT": "models",
    "BenchmarkModel": "models",
    "resolve_model": "models",
    "weights_digest": "models",
    "BenchmarkProtocol": "protocols",
    "Part": "protocols",
    "ProbeProtocol": "protocols",
    "Scores": "protocols",
    "TaskSplits": "protocols",
    "HEADLINE_METRICS": "results",
    "BenchmarkResults": "results",
    "parse_task": "runner",
    "run_benchmark": "runner",
    "task_splits": "runner",
}
__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(__all__)
