"""The fine-tuning protocol of ``clef benchmark``: [`finetune`][clef_sdk.train.finetune] on the training split with the
validation split for early stopping and the best checkpoint, then the test split scored once.

>>> from clef_sdk.benchmark import run_benchmark
>>> from clef_sdk.train import FineTuneProtocol
>>> run_benchmark(["small"], ["ptbxl:superdiagnostic"], {"ptbxl": root}, protocols=["probe", FineTuneProtocol()],
...               output="results")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..benchmark.models import BenchmarkModel
from ..benchmark.protocols import Scores, TaskSplits
from .finetuning import finetune

__all__ = ["FineTuneProtocol"]


@dataclass
class FineTuneProtocol:
    """Fine-tune each model (the whole network, or as ``protocol`` says) on a task's training split.

    Args:
        protocol: a fine-tuning protocol name of `clef_sdk.train.protocols` (``"full"``, ``"upstream"``,
            ``"linear"``, ``"linear-then-full"``).
        max_epochs: the most epochs (default: the protocol's).
        batch_size: recordings per step (default: the protocol's).
        seed: the run's seed.
        options: further [`finetune`][clef_sdk.train.finetune] options (``devices``, ``accelerator``, ``lr``, ...).
    """

    protocol: str = "full"
    max_epochs: int | None = None
    batch_size: int | None = None
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    name: str = "finetune"
    needs_embeddings: bool = False

    def params(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "protocol": self.protocol,
            "max_epochs": self.max_epochs,
            "batch_size": self.batch_size,
            "seed": self.seed,
            "model selection": "early stopping and the best checkpoint on the validation split",
            **{k: repr(v) for k, v in self.options.items()},
        }

    def scores(self, model: BenchmarkModel, task: TaskSplits) -> Scores:
        y_train: Any = task.train.y
        y_val: Any = task.val.y
        if task.kind == "multilabel":
            import pandas as pd

            y_train = pd.DataFrame(y_train, columns=task.labels)
            y_val = pd.DataFrame(y_val, columns=task.labels)
        options = {"progress": False, **self.options}
        fitted = finetune(
            task.train.X,
            y_train,
            fs=None,
            model=model.encoder,
            task=task.kind,
            groups=task.train.groups,
            protocol=self.protocol,
            validation=(task.val.X, y_val),
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            **options,
        )
        notes = {"best_epoch": fitted.training_info.get("best_epoch"), "seconds": fitted.training_info.get("seconds")}
        if task.kind == "regression":
            return Scores(np.asarray(fitted.predict(task.test.X), dtype=float), notes=notes)
        classes = None if task.kind == "multilabel" else list(fitted.classes_)
        return Scores(np.asarray(fitted.predict_proba(task.test.X)), classes, notes)
