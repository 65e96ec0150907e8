"""``clef train fit``: pretraining with Lightning on a laptop, a GPU or a cluster, with exact resumption.

A run folder holds ``checkpoints/step=NNNNNNNNN.ckpt`` (every ``checkpoint_every`` steps, the newest
``keep_checkpoints`` kept, and one at the end; under SLURM, Lightning also writes ``hpc_ckpt_K.ckpt`` when the job
is signalled for requeueing, and ``resume`` considers those too), ``logs/version_K/metrics.csv`` (one version per start, so a
resumed run never overwrites earlier logs; TensorBoard event files too when tensorboard is installed) and
``hparams.json``. Several devices or nodes use DDP through Lightning, which also reads torchrun's and SLURM's
environment, so the same command works under ``torchrun`` and ``srun``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

from .._optional import require
from ..errors import CheckpointError
from .chatter import quiet_lightning
from .data import PretrainingStore
from .datamodule import StoreDataModule
from .module import ClefPretraining

if TYPE_CHECKING:  # the real module for the type checker; at run time, a clear error when the extra is missing
    import lightning.pytorch as L
    from lightning.pytorch.trainer.connectors.accelerator_connector import _PRECISION_INPUT
else:
    L = require("lightning.pytorch", "clef_sdk.train")

__all__ = ["CHECKPOINT_DIR", "TrainingRun", "fit", "latest_checkpoint"]

CHECKPOINT_DIR = "checkpoints"
# hyper-parameters that must agree between a run and its resumption
_RUN_IDENTITY = ("size", "method", "seed", "temperature", "use_missing_rate", "noise_dir")


@dataclass
class TrainingRun:
    """What `fit` leaves: the run folder, its newest checkpoint and the trained module."""

    run_dir: Path
    checkpoint: Path
    module: ClefPretraining


class ThroughputLogger(L.Callback):
    """Logs ``train/samples_per_s``: subjects (each seen as two views) per second over all processes."""

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        elapsed = time.perf_counter() - getattr(self, "_start", time.perf_counter())
        if elapsed > 0:
            samples = len(batch["windows"]) * trainer.world_size
            pl_module.log("train/samples_per_s", samples / elapsed, on_step=True, prog_bar=True, batch_size=samples)


def _training_payload(path: Path) -> dict[str, Any]:
    """A training checkpoint's contents (memory-mapped, ``weights_only``); CheckpointError if it is not one."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as exc:  # the unpickler fails in many ways on damaged files
        raise CheckpointError(f"{path} is not a readable training checkpoint ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("hyper_parameters", {}), dict):
        raise CheckpointError(f"{path} is not a Lightning checkpoint of clef train (no hyper-parameters)")
    return payload


def _saved_step(path: Path) -> int:
    """The global step a checkpoint was saved at; raises CheckpointError if the file does not load."""
    step = _training_payload(path).get("global_step")
    if isinstance(step, bool) or not isinstance(step, int):
        raise CheckpointError(f"{path} records no global step")
    return step


def _candidates(run_dir: Path) -> list[Path]:
    # ours every N steps, and the ones Lightning writes when SLURM signals a requeue (hpc_ckpt_K.ckpt)
    return sorted((run_dir / CHECKPOINT_DIR).glob("step=*.ckpt")) + sorted(run_dir.glob("hpc_ckpt_*.ckpt"))


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint of a run with the highest step that loads (a damaged file is passed over), among the
    periodic ones and those Lightning saved on a SLURM requeue signal."""
    best: tuple[int, Path] | None = None
    for path in _candidates(Path(run_dir)):
        try:
            step = _saved_step(path)
        except CheckpointError:
            continue
        if best is None or step > best[0]:
            best = (step, path)
    return best[1] if best else None


def _loggers(run_dir: Path) -> list[Any]:
    loggers: list[Any] = [L.loggers.CSVLogger(run_dir, name="logs")]
    try:
        import_module("tensorboard")  # only whether it is installed (it has no type information)

        loggers.append(L.loggers.TensorBoardLogger(run_dir, name="logs", version=loggers[0].version))
    except ImportError:
        pass
    return loggers


def _default_precision(accelerator: str) -> str:
    gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available())
    return "bf16-mixed" if gpu else "32-true"


def fit(
    data: str | os.PathLike[str],
    *,
    size: str = "small",
    method: str = "clef",
    batch_size: int = 64,
    max_epochs: int | None = None,
    max_steps: int | None = None,
    lr: float = 1e-4,
    weight_decay: float = 5e-4,
    temperature: float = 0.07,
    use_missing_rate: bool = False,
    devices: int | str = "auto",
    num_nodes: int = 1,
    accelerator: str = "auto",
    precision: str | None = None,
    output: str | os.PathLike[str] = "clef-run",
    resume: bool = False,
    checkpoint_every: int = 500,
    keep_checkpoints: int = 3,
    num_workers: int = 2,
    seed: int = 0,
    noise_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    log_every: int = 10,
    callbacks: list[Any] | None = None,
) -> TrainingRun:
    """Pretrain a CLEF encoder on a prepared store (``clef train prepare``).

    ``batch_size`` is per process (the authors used 64 subjects on one GPU); ``max_epochs`` defaults to 100
    unless ``max_steps`` is given. ``resume=True`` continues from the newest checkpoint in ``output`` (and starts
    afresh when there is none, so that a job script can always pass it); without it, an ``output`` that already
    holds checkpoints is refused rather than overwritten. ``precision`` defaults to ``"bf16-mixed"`` on a GPU and
    ``"32-true"`` on a CPU. ``callbacks`` are extra Lightning callbacks. Returns the run folder, its final
    checkpoint and the trained module.
    """
    run_dir = Path(output)
    store = PretrainingStore(data)
    resume_from = latest_checkpoint(run_dir) if resume else None
    if not resume and _candidates(run_dir):
        raise FileExistsError(
            f"{run_dir} already holds checkpoints of a run; pass --resume to continue it, or choose another --output"
        )
    if max_epochs is None and max_steps is None:
        max_epochs = 100
    if checkpoint_every < 1 or keep_checkpoints < 1:
        raise ValueError("checkpoint_every and keep_checkpoints must be at least 1")
    module = ClefPretraining(
        size,
        method,
        lr=lr,
        weight_decay=weight_decay,
        temperature=temperature,
        use_missing_rate=use_missing_rate,
        seed=seed,
        noise_dir=str(Path(noise_dir).resolve()) if noise_dir else None,
        data_description=store.describe(),
    )
    if resume_from is not None:
        _check_same_run(resume_from, module.hparams)
    datamodule = StoreDataModule(data, batch_size=batch_size, num_workers=num_workers, seed=seed)
    multi = num_nodes > 1 or str(devices) not in ("auto", "1")
    with quiet_lightning() as talk:
        trainer = L.Trainer(
            accelerator=accelerator,
            devices=devices,
            num_nodes=num_nodes,
            # buffers (noise bank, MoCo queue) are the same in every process by construction: no per-step broadcast
            strategy=L.strategies.DDPStrategy(broadcast_buffers=False) if multi else "auto",
            precision=cast(
                "_PRECISION_INPUT", precision or _default_precision(accelerator)
            ),  # Trainer checks the string
            max_epochs=max_epochs if max_epochs is not None else -1,
            max_steps=max_steps if max_steps is not None else -1,
            default_root_dir=run_dir,
            logger=_loggers(run_dir),
            callbacks=[
                L.callbacks.ModelCheckpoint(
                    dirpath=run_dir / CHECKPOINT_DIR,
                    filename="step={step:09d}",
                    auto_insert_metric_name=False,
                    every_n_train_steps=checkpoint_every,
                    save_top_k=keep_checkpoints,
                    monitor="step",
                    mode="max",
                ),
                L.callbacks.LearningRateMonitor(logging_interval="step"),
                ThroughputLogger(),
                *(callbacks or []),
            ],
            enable_progress_bar=progress,
            enable_model_summary=talk,
            log_every_n_steps=log_every,
            use_distributed_sampler=False,  # our batch sampler shards the global batch itself
            num_sanity_val_steps=0,
        )
        if trainer.is_global_zero:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "hparams.json").write_text(json.dumps(dict(module.hparams), indent=1, sort_keys=True) + "\n")
        trainer.fit(
            module, datamodule=datamodule, ckpt_path=str(resume_from) if resume_from else None, weights_only=True
        )
    final = run_dir / CHECKPOINT_DIR / f"step={trainer.global_step:09d}.ckpt"
    if not final.is_file():
        trainer.save_checkpoint(final, weights_only=False)
    return TrainingRun(run_dir, final, module)


def _check_same_run(checkpoint: Path, requested: Any) -> None:
    saved = _training_payload(checkpoint).get("hyper_parameters", {})
    different = [
        f"{key}: {saved.get(key)!r} in the run, {requested.get(key)!r} now"
        for key in _RUN_IDENTITY
        if saved.get(key) != requested.get(key)
    ]
    if different:
        raise ValueError(f"cannot resume {checkpoint} with other settings ({'; '.join(different)})")
