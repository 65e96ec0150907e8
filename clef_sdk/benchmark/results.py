"""Benchmark results: one row per model, task, protocol and metric; written as CSV, JSON and a Markdown table.

The Markdown table has the models as columns and one row per task, protocol and headline metric (macro AUROC and
AUPRC for multi-label, AUROC for binary, one-vs-rest macro AUROC for multiclass, MAE for regression), each cell
``estimate [low, high]``, the bootstrap interval by patient.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..files import atomic_write_text

__all__ = ["HEADLINE_METRICS", "RESULT_COLUMNS", "BenchmarkResults"]

#: the metrics the Markdown table shows, per task kind (all metrics are in the CSV and JSON)
HEADLINE_METRICS = {
    "multilabel": ("auroc", "auprc"),
    "binary": ("auroc",),
    "multiclass": ("auroc",),
    "regression": ("mae",),
}
RESULT_COLUMNS = (
    "model",
    "task",
    "protocol",
    "metric",
    "estimate",
    "ci_low",
    "ci_high",
    "n_test",
    "n_test_patients",
    "kind",
    "seconds",
)


@dataclass
class BenchmarkResults:
    """What [`run_benchmark`][clef_sdk.benchmark.run_benchmark] returns: ``rows`` (a DataFrame of `RESULT_COLUMNS`),
    ``protocol`` (everything needed to reproduce it) and the files written."""

    rows: pd.DataFrame
    protocol: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    def markdown(self) -> str:
        """The table: models as columns, one row per task, protocol and headline metric."""
        if self.rows.empty:
            return "(no results)"
        models = list(dict.fromkeys(self.rows["model"]))
        lines = ["| task | protocol | metric | " + " | ".join(models) + " |"]
        lines.append("|---|---|---|" + "---|" * len(models))
        for (task, protocol), group in self.rows.groupby(["task", "protocol"], sort=False):
            kind = group["kind"].iloc[0]
            for metric in HEADLINE_METRICS[kind]:
                cells = []
                for model in models:
                    hit = group[(group["model"] == model) & (group["metric"] == metric)]
                    cells.append(_cell(hit.iloc[0]) if len(hit) else "–")
                n = group["n_test"].iloc[0]
                lines.append(f"| {task} (n={n}) | {protocol} | {metric} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def write(self, folder: str | os.PathLike[str]) -> dict[str, Path]:
        """Write ``results.csv``, ``results.json`` (rows + protocol) and ``results.md`` atomically."""
        target = Path(folder)
        self.files = {
            "csv": atomic_write_text(target / "results.csv", self.rows.to_csv(index=False)),
            "json": atomic_write_text(
                target / "results.json",
                json.dumps(
                    {"protocol": self.protocol, "results": self.rows.to_dict(orient="records")}, indent=2, default=str
                ),
            ),
            "markdown": atomic_write_text(target / "results.md", self.markdown() + "\n"),
        }
        return self.files


def _cell(row: pd.Series) -> str:
    if pd.isna(row["estimate"]):
        return "n/a"
    return f"{row['estimate']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
