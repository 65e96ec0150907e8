"""Clinically-guided contrastive pretraining of CLEF encoders (``pip install "clef-sdk[train]"``).

    clef train prepare SRC -o STORE          # WFDB records -> memory-mapped band-passed windows + metadata
    clef train fit --data STORE --size small # PyTorch Lightning, one device to a cluster
    clef train export RUN/checkpoints/step=....ckpt -o model.safetensors   # then clef.load / clef.embed
    clef train finetune RECORDS --labels labels.csv --label af -o RUN     # a task model: clef.load_task_model

``finetune(X, y, fs=..., model=..., protocol=...)`` fine-tunes an encoder and a head into a [`clef_sdk.TaskModel`][clef_sdk.TaskModel]
(`.finetuning`, `.protocols`); `FineTunedClassifier` and `FineTunedRegressor` do it as
scikit-learn estimators, for ``cross_val_score`` and ``GridSearchCV`` (`.estimators`).

The losses (`.losses`) and SCORE2 (`.score2`) are plain torch/numpy and import without the extra;
the rest (`prepare`, `fit`, `ClefPretraining`, ...) needs it and says so when it is missing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr
from .losses import byol_loss, clef_loss, info_nce, moco_loss, similarity_alignment, weighted_info_nce
from .score2 import mg_dl_to_mmol_l, score2

if TYPE_CHECKING:  # imported on first use (Lightning): visible to type checkers and IDEs all the same
    from .archive_source import StoreSource
    from .benchmark import FineTuneProtocol
    from .data import PretrainingStore, prepare
    from .datamodule import StoreDataModule
    from .estimators import FineTunedClassifier, FineTunedRegressor
    from .export import export_checkpoint
    from .finetune_module import ClefFineTuning
    from .finetuning import finetune
    from .module import ClefPretraining
    from .protocols import PROTOCOLS, Protocol
    from .trainer import TrainingRun, fit

__all__ = [
    "PROTOCOLS",
    "ClefFineTuning",
    "ClefPretraining",
    "FineTuneProtocol",
    "FineTunedClassifier",
    "FineTunedRegressor",
    "Protocol",
    "PretrainingStore",
    "StoreDataModule",
    "StoreSource",
    "TrainingRun",
    "byol_loss",
    "clef_loss",
    "export_checkpoint",
    "finetune",
    "fit",
    "info_nce",
    "mg_dl_to_mmol_l",
    "moco_loss",
    "prepare",
    "score2",
    "similarity_alignment",
    "weighted_info_nce",
]

_LAZY = {
    "prepare": "data",
    "PretrainingStore": "data",
    "fit": "trainer",
    "TrainingRun": "trainer",
    "ClefPretraining": "module",
    "StoreDataModule": "datamodule",
    "export_checkpoint": "export",
    "finetune": "finetuning",
    "ClefFineTuning": "finetune_module",
    "FineTunedClassifier": "estimators",
    "FineTunedRegressor": "estimators",
    "FineTuneProtocol": "benchmark",
    "StoreSource": "archive_source",
    "Protocol": "protocols",
    "PROTOCOLS": "protocols",
}


__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(__all__)
