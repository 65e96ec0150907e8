"""``finetune``: from labelled recordings to a validated [`clef_sdk.TaskModel`][clef_sdk.TaskModel], on Lightning.

    model = finetune(X, y, fs=360, model="small", groups=patients, protocol="full")
    model.predict(new_recording, fs=360)

The protocols are in `.protocols`, the data and batches in `.finetune_data`, the LightningModule in
`.finetune_module`. A run with ``output`` keeps its checkpoints (``checkpoints/step=NNNNNNNNN.ckpt``, written
atomically at each epoch end and every ``checkpoint_every`` steps, the newest two kept), CSV logs
(``logs/version_K/metrics.csv``, the validation loss and metrics per epoch), ``hparams.json`` and the final
``model.safetensors``; ``resume=True`` continues it after a kill exactly where its last checkpoint left it.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from .._optional import require
from .._version import __version__
from ..inputs import TailMode
from ..loading import load
from ..models import ClefEncoder
from ..probes.labels import n_records_of
from ..tasks.model import TaskModel
from ..tasks.spec import Label
from .chatter import quiet_lightning
from .finetune_data import (
    FineTuningData,
    Recordings,
    StepBatches,
    StoreRecordings,
    Targets,
    encode_targets,
    evaluation_loader,
    training_loader,
    validation_split,
)
from .finetune_module import ClefFineTuning, logged_name, pooled_embeddings
from .protocols import Protocol, resolve_protocol
from .trainer import CHECKPOINT_DIR, latest_checkpoint

if TYPE_CHECKING:  # the real module for the type checker; at run time, a clear error when the extra is missing
    import lightning.pytorch as L
    from lightning.pytorch.trainer.connectors.accelerator_connector import _PRECISION_INPUT
else:
    L = require("lightning.pytorch", "clef_sdk.train")

__all__ = ["MODEL_FILE", "finetune", "outputs_of"]

MODEL_FILE = "model.safetensors"
STANDARDISATION_RECORDINGS = 2048
KEEP_CHECKPOINTS = 2
# facts of a run that must agree between it and its resumption
_RUN_IDENTITY = ("protocol", "task", "classes", "data", "validation_data", "encoder", "n_train", "n_validation")


class RunCheckpoints(L.Callback):
    """Writes ``checkpoints/step=NNNNNNNNN.ckpt`` atomically (a temporary file renamed) at the end of every epoch,
    after validation, and every ``every_n_steps`` steps; keeps the newest `KEEP_CHECKPOINTS`."""

    def __init__(self, run_dir: Path, every_n_steps: int | None):
        self.directory = run_dir / CHECKPOINT_DIR
        self.every_n_steps = every_n_steps

    def _save(self, trainer: Any) -> None:
        final = self.directory / f"step={trainer.global_step:09d}.ckpt"
        partial = final.with_name(final.name + ".partial")
        trainer.save_checkpoint(partial, weights_only=False)  # collective: every process calls it, the first one writes
        if trainer.is_global_zero:
            os.replace(partial, final)
            for old in sorted(self.directory.glob("step=*.ckpt"))[:-KEEP_CHECKPOINTS]:
                old.unlink(missing_ok=True)
        trainer.strategy.barrier()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self._save(trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self._save(trainer)


class BestModel(L.Callback):
    """Keeps a copy of the weights at the best value of the watched metric (the first of equals), restored at the
    end of training; saved in the checkpoints so a resumed run knows it."""

    def __init__(self, monitor: str, mode: str):
        self.monitor, self.mode = monitor, mode
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        history = getattr(pl_module, "history", [])
        value = history[-1].get(logged_name(self.monitor)) if history else None  # float64 (logged metrics are float32)
        if value is None or not np.isfinite(value):
            return
        score = float(value)
        better = self.best_score is None or (score < self.best_score if self.mode == "min" else score > self.best_score)
        if better:
            self.best_score, self.best_epoch = score, int(trainer.current_epoch)
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in pl_module.model.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "best_state": self.best_state}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best_score = state_dict.get("best_score")
        self.best_epoch = state_dict.get("best_epoch")
        self.best_state = state_dict.get("best_state")


def _encoder(model: str | os.PathLike[str] | ClefEncoder) -> ClefEncoder:
    if isinstance(model, ClefEncoder):
        return copy.deepcopy(model).cpu().float().train()
    if isinstance(model, TaskModel):
        raise TypeError("model is a TaskModel; pass its encoder (task_model.encoder) to fine-tune it for a new task")
    return load(model, device="cpu").train()


def _validation_parts(
    recordings: Recordings | StoreRecordings,
    targets: Targets,
    groups: object,
    validation: object,
    fs: object,
    tail: TailMode,
    seed: int,
) -> tuple[FineTuningData, FineTuningData | None]:
    everything = np.arange(len(recordings))
    if isinstance(validation, (tuple, list)):
        if len(validation) not in (2, 3):
            raise ValueError("validation must be a fraction, 0, or a pair (X_val, y_val) (or (X_val, y_val, fs_val))")
        X_val, y_val = validation[0], validation[1]
        fs_val = validation[2] if len(validation) == 3 else fs
        val_recordings = X_val if isinstance(X_val, StoreRecordings) else Recordings(X_val, fs_val, tail=tail)
        val_targets = encode_targets(
            y_val,
            len(val_recordings),
            targets.task,
            classes=targets.classes,
            target_scaling=targets.target_scaling,
            check_classes=False,
        )
        return FineTuningData(recordings, targets, everything), FineTuningData(
            val_recordings, val_targets, np.arange(len(val_recordings))
        )
    if isinstance(validation, bool) or not isinstance(validation, (int, float)):
        raise TypeError(f"validation must be a fraction, 0, or (X_val, y_val), got {type(validation).__name__}")
    if validation == 0:
        return FineTuningData(recordings, targets, everything), None
    train_rows, val_rows = validation_split(targets, groups, float(validation), seed)
    scaled = targets.scaled_on(train_rows)
    return FineTuningData(recordings, scaled, train_rows), FineTuningData(recordings, scaled, val_rows)


def _check_validation_classes(train: FineTuningData, validation: FineTuningData, monitor: str) -> None:
    """A task metric needs both classes (every label's positives and negatives) in the validation set."""
    task = train.targets.task
    if task == "regression" or monitor == "val_loss":
        return
    values = validation.targets.values[validation.rows]
    if task == "multilabel":
        missing = [train.targets.classes[j] for j in range(values.shape[1]) if values[:, j].min() == values[:, j].max()]
    else:
        present = set(np.unique(values.astype(np.int64)).tolist())
        missing = [label for code, label in enumerate(train.targets.classes) if code not in present]
    if missing:
        raise ValueError(
            f"the validation set lacks class(es) or label values {missing}, so its {monitor} is undefined: add "
            "recordings of them to the validation set, or pass monitor='val_loss'"
        )


def _device_count(devices: object, accelerator: str) -> int:
    """How many devices per node Lightning's ``devices`` means (``"auto"`` and ``-1``: every GPU, else 1)."""
    if isinstance(devices, (list, tuple)):
        return len(devices)
    text = str(devices).strip()
    if text.lstrip("-").isdigit() and int(text) >= 0:
        return int(text)
    if "," in text:
        return len([part for part in text.split(",") if part.strip()])
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return torch.cuda.device_count() if gpu else 1


def _standardise_features(model: TaskModel, train: FineTuningData, seed: int) -> None:
    """Set the model's feature standardisation from the pooled embeddings (as predict pools them) of up to
    `STANDARDISATION_RECORDINGS` training recordings under the initial encoder."""
    rows = train.rows
    if len(rows) > STANDARDISATION_RECORDINGS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, STANDARDISATION_RECORDINGS, replace=False))
    pooled = []
    with torch.no_grad():
        for row in rows:
            windows = torch.from_numpy(train.recordings.windows(int(row)))
            pooled.append(pooled_embeddings(model, windows, torch.tensor([len(windows)])))
    model.feature_norm.fit(torch.cat(pooled))


def outputs_of(model: TaskModel, recordings: Recordings | StoreRecordings) -> np.ndarray:
    """float64 probabilities ``(n, n_classes)`` (binary ``[1 - p, p]``) or values ``(n,)`` of every recording,
    every window pooled as ``predict`` pools them: what ``predict_proba`` / ``predict`` give on raw recordings, for
    a store's records too."""
    model = model.eval()
    rows = []
    with torch.no_grad():
        for index in range(len(recordings)):
            windows = torch.from_numpy(recordings.windows(index))
            rows.append(model.head_logits(pooled_embeddings(model, windows, torch.tensor([len(windows)]))).double())
    logits = torch.cat(rows)
    if model.task == "regression":
        return model.values_from_logits(logits).numpy()
    return model.proba_from_logits(logits).numpy()


def _default_precision(accelerator: str, protocol: Protocol) -> str:
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return protocol.gpu_precision if gpu else "32-true"


@contextlib.contextmanager
def _run_folder(output: str | os.PathLike[str] | None) -> Iterator[Path]:
    if output is not None:
        yield Path(output)
        return
    with tempfile.TemporaryDirectory(prefix="clef-finetune-") as folder:
        yield Path(folder)


def _check_same_run(checkpoint: Path, facts: dict[str, Any]) -> None:
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True).get("hyper_parameters", {})
    different = [
        key
        for key in _RUN_IDENTITY
        if json.dumps(saved.get(key), sort_keys=True, default=str)
        != json.dumps(facts.get(key), sort_keys=True, default=str)
    ]
    if different:
        raise ValueError(
            f"cannot resume {checkpoint}: the run was started with other {', '.join(different)}; pass the same "
            "data and options, or choose another output folder"
        )


def finetune(
    X: object,
    y: object,
    *,
    fs: float | Sequence[float] | None = None,
    model: str | os.PathLike[str] | ClefEncoder = "medium",
    task: str = "auto",
    groups: object = None,
    protocol: str | Protocol = "full",
    validation: float | tuple[Any, ...] = 0.2,
    max_epochs: int | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    classes: Sequence[Label] | None = None,
    output: str | os.PathLike[str] | None = None,
    resume: bool = False,
    checkpoint_every: int | None = None,
    devices: int | str = "auto",
    num_nodes: int = 1,
    accelerator: str = "auto",
    precision: str | None = None,
    num_workers: int = 0,
    tail: TailMode = "drop",
    progress: bool = True,
    callbacks: list[Any] | None = None,
    **options: Any,
) -> TaskModel:
    """Fine-tune a CLEF encoder and a linear head on labelled recordings; returns the best `TaskModel`.

    Args:
        X: the recordings, as [`clef_sdk.embed`][clef_sdk.embed] takes them: ``(n_records, n_samples)``, a list of 1-D
            recordings of any lengths (memory maps and [`clef_sdk.WfdbSignal`][clef_sdk.WfdbSignal] included); or records of a
            prepared store, `StoreRecordings` (``fs`` is then 500 Hz by construction).
        y: one label per recording (binary, multiclass), a target value (regression), or a 0/1 matrix
            ``(n_records, n_labels)`` (multilabel; a DataFrame's columns name the labels).
        fs: sampling rate in Hz, one or one per recording (``None``: from WfdbSignal headers).
        model: the encoder: a model name (``"small"``, ``"medium"``, ``"large"``), a path, an ``hf-hub:`` id, or a
            [`ClefEncoder`][clef_sdk.models.ClefEncoder] (``clef.build(size, seed)`` for the random-init baseline;
            copied, never changed).
        task: ``"auto"`` (inferred from ``y`` as [`clef_sdk.fit_probe`][clef_sdk.fit_probe] does), ``"binary"``, ``"multiclass"``,
            ``"multilabel"`` or ``"regression"``.
        groups: the patient of each recording: the validation split keeps each patient on one side.
        protocol: ``"full"``, ``"upstream"``, ``"linear"``, ``"linear-then-full"`` or a `Protocol`
            (`clef_sdk.train.protocols`); any of its fields can be overridden in ``options`` (``lr``,
            ``layer_decay``, ``class_weighting="balanced"``, ``sampler="balanced"``, ``monitor="auprc"``,
            ``patience=None``, ...).
        validation: the fraction of training patients held out to choose the best epoch and stop early; or
            ``(X_val, y_val)`` (or ``(X_val, y_val, fs_val)``); ``0``: none, train ``max_epochs`` and keep the last.
        max_epochs: the most epochs (default: the protocol's).
        batch_size: recordings per step and process (default: the protocol's).
        seed: of the head's initialisation, the crops, the order and the validation split (default: the
            protocol's).
        classes: label names in output order (binary ``[negative, positive]``), checked against ``y``.
        output: a folder for checkpoints, logs and ``model.safetensors``; ``None``: a temporary folder (no resume).
        resume: continue the run in ``output`` from its newest checkpoint (or start it when there is none).
        checkpoint_every: also checkpoint every this many steps (default: at the end of each epoch only).
        devices: devices per node, as Lightning's Trainer (DDP over several).
        num_nodes: nodes, as Lightning's Trainer.
        accelerator: ``"auto"``, ``"cpu"`` or ``"gpu"``, as Lightning's Trainer.
        precision: Lightning's precision; default the protocol's on a GPU (bf16 mixed; fp16 mixed for
            ``"upstream"``), ``"32-true"`` on a CPU.
        num_workers: DataLoader worker processes that crop and preprocess (0: in this process).
        tail: the end of a recording shorter than a window, as in [`clef_sdk.embed`][clef_sdk.embed] (``"pad"`` lets recordings
            of 1-10 s take part); use the same at predict time.
        progress: Lightning's progress bar.
        callbacks: extra Lightning callbacks.

    The returned model is on the CPU in eval mode; its ``training_info`` holds the protocol, the data sizes, the
    validation history per epoch, the best epoch and score, and the time taken.
    """
    started = time.perf_counter()
    chosen = resolve_protocol(
        protocol,
        **{
            k: v for k, v in {"max_epochs": max_epochs, "batch_size": batch_size, "seed": seed}.items() if v is not None
        },
        **options,
    )
    n_records = len(X) if isinstance(X, StoreRecordings) else n_records_of(X)
    targets = encode_targets(y, n_records, task, classes=classes)
    if chosen.sampler == "balanced" and targets.task not in ("binary", "multiclass"):
        raise ValueError(f"sampler='balanced' applies to binary and multiclass tasks, not {targets.task}")
    if chosen.class_weighting == "balanced" and targets.task == "regression":
        raise ValueError("class_weighting='balanced' applies to classification tasks, not regression")
    recordings = X if isinstance(X, StoreRecordings) else Recordings(X, fs, tail=tail)
    train, val = _validation_parts(recordings, targets, groups, validation, fs, tail, chosen.seed)
    monitor = chosen.monitor_for(targets.task)
    if val is not None:
        _check_validation_classes(train, val, monitor)
    encoder = _encoder(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(chosen.seed)
        task_model = TaskModel(encoder, targets.task, targets.classes, target_scaling=train.targets.target_scaling)
    if chosen.standardise_features:
        _standardise_features(task_model, train, chosen.seed)
    facts: dict[str, Any] = {
        "protocol": chosen.as_dict(),
        "task": targets.task,
        "classes": [str(c) if not isinstance(c, int) else c for c in targets.classes],
        "data": recordings.fingerprint(),
        "validation_data": val.recordings.fingerprint()
        if val is not None and val.recordings is not recordings
        else None,
        "encoder": encoder.name,
        "n_train": len(train),
        "n_validation": len(val) if val is not None else 0,
    }
    multi = num_nodes > 1 or _device_count(devices, accelerator) > 1
    if multi and output is None:
        raise ValueError("fine-tuning on several devices or nodes needs output=FOLDER, shared by all processes")
    if resume and output is None:
        raise ValueError("resume=True needs the output folder of the run to continue")
    if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or checkpoint_every < 1):
        raise ValueError(f"checkpoint_every must be a positive number of steps, got {checkpoint_every!r}")

    with _run_folder(output) as run_dir, quiet_lightning() as talk:
        resume_from = latest_checkpoint(run_dir) if resume else None
        if not resume and (run_dir / CHECKPOINT_DIR).is_dir() and any((run_dir / CHECKPOINT_DIR).glob("step=*.ckpt")):
            raise FileExistsError(
                f"{run_dir} already holds checkpoints of a run; pass resume=True to continue it, or another output"
            )
        if resume_from is not None:
            _check_same_run(resume_from, facts)
        precision_value = precision or _default_precision(accelerator, chosen)
        strategy: Any = (
            L.strategies.DDPStrategy(find_unused_parameters=chosen.linear_epochs > 0, broadcast_buffers=False)
            if multi
            else "auto"
        )
        best = BestModel(monitor, chosen.mode_for(targets.task)) if val is not None else None
        stop = (
            L.callbacks.EarlyStopping(
                monitor=logged_name(monitor),
                patience=chosen.patience,
                min_delta=chosen.min_delta,
                mode=chosen.mode_for(targets.task),
                check_finite=True,
            )
            if val is not None and chosen.patience is not None
            else None
        )
        trainer = L.Trainer(
            accelerator=accelerator,
            devices=devices,
            num_nodes=num_nodes,
            strategy=strategy,
            precision=cast("_PRECISION_INPUT", precision_value),
            max_epochs=chosen.max_epochs,
            default_root_dir=run_dir,
            logger=L.loggers.CSVLogger(run_dir, name="logs"),
            callbacks=[
                RunCheckpoints(run_dir, checkpoint_every),
                *(c for c in (best, stop) if c is not None),
                *(callbacks or []),
            ],
            enable_progress_bar=progress,
            enable_model_summary=talk,
            log_every_n_steps=1,
            use_distributed_sampler=False,
            num_sanity_val_steps=0,
            enable_checkpointing=False,
        )
        world, rank = trainer.world_size, trainer.global_rank
        codes = train.targets.class_codes()
        strata = codes[train.rows] if chosen.sampler == "balanced" and codes is not None else None
        sampler = StepBatches(
            len(train), chosen.batch_size, world, rank, chosen.seed, lambda: trainer.global_step, strata
        )
        weights = train.targets.subset(train.rows).class_weights() if chosen.class_weighting == "balanced" else None
        module = ClefFineTuning(task_model, chosen, sampler.steps_per_epoch, weights, facts)
        if trainer.is_global_zero and output is not None:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "hparams.json").write_text(json.dumps(facts, indent=1, sort_keys=True, default=str) + "\n")
        trainer.fit(
            module,
            train_dataloaders=training_loader(train, sampler, num_workers),
            val_dataloaders=evaluation_loader(val, world, rank, num_workers) if val is not None else None,
            ckpt_path=str(resume_from) if resume_from else None,
            weights_only=False,
        )
        stopped_early = bool(stop is not None and stop.stopped_epoch > 0)
        if best is not None and best.best_state is not None:
            task_model.load_state_dict(best.best_state)
        task_model = task_model.cpu().float().eval()
        task_model.training_info = {
            "protocol": chosen.as_dict(),
            "encoder": encoder.name,
            "task_reason": targets.reason,
            "n_train": len(train),
            "n_validation": len(val) if val is not None else 0,
            "sampling_rates_hz": sorted({float(r) for r in recordings.rates}),
            "tail": tail,
            "epochs": int(trainer.current_epoch),
            "steps": int(trainer.global_step),
            "stopped_early": stopped_early,
            "monitor": monitor if val is not None else None,
            "best_epoch": best.best_epoch if best is not None else None,
            "best_score": best.best_score if best is not None else None,
            "history": module.history,
            "precision": precision_value,
            "world_size": world,
            "seconds": round(time.perf_counter() - started, 3),
            "clef_sdk": __version__,
        }
        if output is not None and trainer.is_global_zero:
            task_model.save(run_dir / MODEL_FILE)  # atomic
    return task_model
