"""``clef benchmark``: CLEF models on standard ECG tasks, beside a random-init baseline of every size.

>>> from clef_sdk.benchmark import run_benchmark
>>> results = run_benchmark(["small"], ["ptbxl:superdiagnostic"], {"ptbxl": "/data/ptb-xl"}, output="results")
>>> print(results.markdown())

Modules: :mod:`.models` (which weights, identified by digest), :mod:`.cache` (embeddings per model and dataset),
:mod:`.protocols` (the probe; fine-tuning lives in ``clef_sdk.train``), :mod:`.runner`, :mod:`.results`.
"""

from __future__ import annotations

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
