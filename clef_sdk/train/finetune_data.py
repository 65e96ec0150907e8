"""The data of a fine-tuning run: recordings and their targets, the validation split, and the batches.

Training sees one random 10 s crop of each recording per epoch (any offset on the 500 Hz axis, preprocessed
exactly as [`clef_sdk.preprocess`][clef_sdk.preprocess] does a window); evaluation sees every window of a recording, as
``TaskModel.predict`` does, and pools them. Which recordings and crops form the batch of global step ``s`` is a
pure function of ``(seed, s)``, so k processes of batch b see what one process of batch k*b sees, and a run
resumed at step ``s`` continues exactly where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from sklearn.model_selection import PredefinedSplit
from torch.utils.data import DataLoader, Dataset

from ..constants import TARGET_FS, WINDOW_SAMPLES
from ..inputs import TailMode, as_recordings, per_record_fs
from ..io import canonical_lead
from ..preprocessing import preprocess_windows, zscore
from ..probes.labels import groups_array, infer_task, labels_array
from ..probes.splits import inner_splits
from ..resampling import Recording, resampled_length
from ..tasks.spec import Label, Task
from ..windows import WindowPlan, plan_windows, raw_windows

__all__ = [
    "CropDataset",
    "EvaluationBatches",
    "FineTuningData",
    "RecordingDataset",
    "Recordings",
    "StepBatches",
    "StoreRecordings",
    "StepDataLoader",
    "Targets",
    "encode_targets",
    "epoch_draws",
    "evaluation_loader",
    "training_loader",
    "validation_split",
]

# Evaluation batches hold whole recordings, up to this many windows (one longer recording is a batch alone).
EVAL_WINDOWS_PER_BATCH = 256


class Recordings:
    """Checked single-lead recordings with their rates and window plans (``tail`` as in ``clef.embed``).

    ``signals`` and ``fs``: what [`clef_sdk.embed`][clef_sdk.embed] accepts (a 2-D array, a list of recordings of any
    lengths and rates, memory maps, [`clef_sdk.WfdbSignal`][clef_sdk.WfdbSignal]). Nothing is copied or resampled up front.
    """

    def __init__(self, signals: object, fs: object, *, tail: TailMode = "drop"):
        arrays, single = as_recordings(signals)
        if single:
            raise ValueError(
                "X is one recording; fine-tuning needs several, each with its label: (n_records, n_samples) or a "
                "list of 1-D recordings"
            )
        self.rates = per_record_fs(fs, arrays)
        self.tail: TailMode = tail
        self.recordings = [Recording.at_rate(array, rate) for array, rate in zip(arrays, self.rates)]
        plans: list[WindowPlan] = []
        for index, (array, rate) in enumerate(zip(arrays, self.rates)):
            try:
                plans.append(plan_windows(array.shape[0], rate, tail=tail))
            except ValueError as exc:
                raise ValueError(f"recording {index}: {exc}") from None
        self.plans = plans
        self.n_windows = np.array([len(plan) for plan in plans])

    def __len__(self) -> int:
        return len(self.recordings)

    def crop(self, index: int, position: float) -> np.ndarray:
        """A preprocessed 10 s crop ``(5000,)`` float32 of recording ``index``, starting at ``position`` (in
        [0, 1)) of the possible 500 Hz offsets; a recording shorter than a window gives its padded window."""
        plan = self.plans[index]
        recording = self.recordings[index]
        last_start = resampled_length(recording.n_samples, self.rates[index]) - WINDOW_SAMPLES
        if last_start < 0:  # shorter than a window (tail="pad"): its one padded window
            starts, valid = plan.starts, plan.valid_samples
        else:
            start = min(int(position * (last_start + 1)), last_start)
            starts, valid = np.array([start]), np.array([WINDOW_SAMPLES])
        raw = raw_windows(recording, starts, valid)
        return preprocess_windows(raw, valid_samples=valid)[0]

    def windows(self, index: int) -> np.ndarray:
        """Every preprocessed window of recording ``index``: ``(n_windows, 5000)`` float32, as ``predict`` sees."""
        plan = self.plans[index]
        raw = raw_windows(self.recordings[index], plan.starts, plan.valid_samples)
        return preprocess_windows(raw, valid_samples=plan.valid_samples)

    def fingerprint(self) -> str:
        """A digest of the recordings' rates, lengths and a few samples of each: a resumed run must see the same
        data (a cheap check, not a content hash of an archive)."""
        digest = hashlib.sha256()
        for recording, rate in zip(self.recordings, self.rates):
            n = recording.n_samples
            probe = np.concatenate([recording.raw(0, 64), recording.raw(n // 2, n // 2 + 64), recording.raw(n - 64, n)])
            digest.update(np.array([rate, n], dtype=np.float64).tobytes())
            digest.update(np.nan_to_num(probe, nan=-1e300).tobytes())
        return digest.hexdigest()


class StoreRecordings:
    """Recordings of a prepared store (``clef train prepare``): the windows of each of ``records`` (store
    ``path`` values), one lead. The store holds band-passed 10 s windows at 500 Hz, so a window here is the store's
    z-scored, which is what [`clef_sdk.preprocess`][clef_sdk.preprocess] gives up to the store's dtype (float16 by default: about
    1e-3 of the signal's range). Training crops are whole store windows (the store has no signal between them).
    """

    tail: TailMode = "drop"

    def __init__(self, store: str | os.PathLike[str], records: Sequence[str], lead: str):
        from .data import PretrainingStore

        self.store = PretrainingStore(store)
        wanted = canonical_lead(lead)
        if wanted not in self.store.leads:
            raise ValueError(f"the store has no lead {lead!r}; its leads are {list(self.store.leads)}")
        self.lead = self.store.leads.index(wanted)
        by_record = self.store.rows_by_record
        self.records = list(records)
        missing = [record for record in self.records if record not in by_record]
        if missing:
            raise ValueError(f"{len(missing)} record(s) are not in the store {self.store.path} (e.g. {missing[:5]})")
        available = self.store.available[:, self.lead]
        self.rows = [by_record[record] for record in self.records]
        lacking = [record for record, rows in zip(self.records, self.rows) if not available[rows].any()]
        if lacking:
            raise ValueError(f"{len(lacking)} record(s) lack lead {wanted} in the store (e.g. {lacking[:5]})")
        self.rows = [rows[available[rows]] for rows in self.rows]
        self.n_windows = np.array([len(rows) for rows in self.rows])
        self.rates = [float(TARGET_FS)] * len(self.records)

    def __len__(self) -> int:
        return len(self.records)

    def crop(self, index: int, position: float) -> np.ndarray:
        """One of the record's windows ``(5000,)`` float32, chosen by ``position`` in [0, 1)."""
        rows = self.rows[index]
        row = int(rows[min(int(position * len(rows)), len(rows) - 1)])
        return zscore(np.asarray(self.store.windows[row, self.lead], dtype=np.float64))

    def windows(self, index: int) -> np.ndarray:
        """Every window of the record ``(n_windows, 5000)`` float32."""
        return zscore(np.asarray(self.store.windows[self.rows[index], self.lead], dtype=np.float64))

    def fingerprint(self) -> str:
        digest = hashlib.sha256((self.store.path / "store.json").read_bytes())
        digest.update(json.dumps([self.records, self.lead]).encode())
        return digest.hexdigest()


@dataclass(frozen=True)
class Targets:
    """Labels encoded for the loss: ``values`` ``(n,)`` float32 (binary 0/1, regression standardised), int64
    class codes (multiclass) or ``(n, n_labels)`` float32 0/1 (multilabel); the task's ``classes`` (label names)
    and, for regression, ``target_scaling`` ``(mean, std)``."""

    task: Task
    classes: tuple[Label, ...]
    values: np.ndarray
    target_scaling: tuple[float, float] | None
    reason: str

    def subset(self, rows: np.ndarray) -> Targets:
        return Targets(self.task, self.classes, self.values[rows], self.target_scaling, self.reason)

    def scaled_on(self, rows: np.ndarray) -> Targets:
        """Regression targets standardised with the mean and std of ``rows`` only (the training part, so that
        nothing of the validation targets leaks into the scaling); other tasks unchanged."""
        if self.target_scaling is None:
            return self
        original = self.original(self.values)
        mean, std = float(original[rows].mean()), float(original[rows].std())
        if not std > 0:
            raise ValueError("the training part's targets are constant: a regression needs targets that vary")
        values = ((original - mean) / std).astype(np.float32)
        return Targets(self.task, self.classes, values, (mean, std), self.reason)

    def class_codes(self) -> np.ndarray | None:
        """One class code per record for binary and multiclass (balanced sampling); ``None`` otherwise."""
        if self.task in ("binary", "multiclass"):
            return self.values.astype(np.int64)
        return None

    def class_weights(self) -> np.ndarray | None:
        """Inverse-frequency weights (``n / (n_classes * count)``) per class, or per label's positives
        (``n_negative / n_positive``, BCE's ``pos_weight``) for multilabel and binary; ``None`` for regression."""
        if self.task == "regression":
            return None
        if self.task == "multiclass":
            counts = np.bincount(self.values.astype(np.int64), minlength=len(self.classes)).astype(np.float64)
            return len(self.values) / (len(self.classes) * np.maximum(counts, 1))
        positives = np.atleast_2d(self.values.T).T.sum(axis=0).astype(np.float64)
        return np.atleast_1d((len(self.values) - positives) / np.maximum(positives, 1))

    def original(self, values: np.ndarray) -> np.ndarray:
        """Targets for metrics: class codes / 0-1 indicators as they are, regression in the target's units."""
        if self.target_scaling is None:
            return values
        mean, std = self.target_scaling
        return values.astype(np.float64) * std + mean


def _plain_labels(array: np.ndarray) -> np.ndarray:
    if array.dtype == bool:
        return array.astype(np.int64)
    if array.dtype == object:
        kinds = {type(value) for value in array.ravel()}
        if kinds <= {bool, np.bool_}:
            return array.astype(np.int64)
        if all(issubclass(kind, (str, np.str_)) for kind in kinds):
            return array.astype(str)
    return array


def encode_targets(
    y: object,
    n_records: int,
    task: str = "auto",
    *,
    classes: Sequence[Label] | None = None,
    target_scaling: tuple[float, float] | None = None,
    check_classes: bool = True,
) -> Targets:
    """Check ``y`` (one label or target per recording; a 2-D 0/1 matrix for multilabel) and encode it.

    Label names: the sorted distinct labels (binary: the second is the positive class), a DataFrame's columns or
    ``range(n_labels)`` for multilabel, a Series' name or ``"target"`` for regression; ``classes`` overrides them
    (binary/multiclass: every label must be one of them, in the order given, or ``y`` holds integer codes
    ``0..K-1`` that ``classes`` names; multilabel: one name per column; regression: ``[target name]``). ``target_scaling``: the training set's ``(mean, std)`` (for validation
    targets); ``check_classes=False`` (validation targets, with ``task`` and ``classes`` given) accepts a set
    where a class is absent. Raises ValueError for one class, missing labels, a length mismatch, a constant
    target or a label outside ``classes``.
    """
    columns = getattr(y, "columns", None)
    series_name = getattr(y, "name", None)
    array = _plain_labels(labels_array(y, n_records))
    if check_classes or task == "auto" or classes is None:
        resolved, reason = infer_task(array, task)
    else:
        resolved, reason = cast(Task, task), "given"
    if resolved == "multilabel":
        names = list(classes) if classes is not None else (list(columns) if columns is not None else None)
        if names is None:
            names = list(range(array.shape[1]))
        if array.ndim != 2 or len(names) != array.shape[1]:
            raise ValueError(f"classes name {len(names)} labels but y has shape {array.shape}")
        return Targets("multilabel", tuple(names), array.astype(np.float32), None, reason)
    if resolved == "regression":
        values = array.astype(np.float64)
        mean, std = target_scaling or (float(values.mean()), float(values.std()))
        name = classes[0] if classes is not None else (series_name if isinstance(series_name, str) else "target")
        return Targets("regression", (name,), ((values - mean) / std).astype(np.float32), (mean, std), reason)
    present = np.unique(array)
    names = list(classes) if classes is not None else [v.item() if hasattr(v, "item") else v for v in present]
    lookup = {label: code for code, label in enumerate(names)}
    unknown = [value for value in present.tolist() if value not in lookup]
    as_codes = (
        classes is not None
        and array.dtype.kind in "iu"
        and all(isinstance(value, int) and 0 <= value < len(names) for value in present.tolist())
    )
    if unknown and not as_codes:
        raise ValueError(f"y holds label(s) {unknown[:10]} that are not among the classes {names}")
    if resolved == "binary" and len(names) != 2:
        raise ValueError(f"task='binary' needs 2 classes, got {names}")
    if unknown:  # integer codes 0..K-1, named by classes
        codes = array.astype(np.int64)
    else:
        codes = np.array([lookup[value] for value in array.tolist()], dtype=np.int64)
    encoded: np.ndarray = codes.astype(np.float32) if resolved == "binary" else codes
    return Targets(cast(Task, resolved), tuple(names), encoded, None, reason)


def validation_split(targets: Targets, groups: object, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train rows, validation rows)``: about ``fraction`` of the patients (``groups``; each recording its own
    patient without them) held out, no patient on both sides, every class on both sides for classification."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation must be a fraction in (0, 1), a (X_val, y_val) pair, or 0; got {fraction!r}")
    n = len(targets.values)
    group_ids = groups_array(groups, n)
    n_folds = max(2, round(1 / fraction))
    if targets.task in ("binary", "multiclass"):  # label names in the split's messages
        labels = np.asarray(targets.classes, dtype=object)[targets.values.astype(np.int64)].astype(str)
    else:
        labels = targets.values.astype(np.float64) if targets.task == "regression" else targets.values
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        splitter, n_splits, _ = inner_splits(targets.task, labels, group_ids, n_folds, seed)
    if n_splits < n_folds and caught:
        warnings.warn(
            f"the validation set holds 1/{n_splits} of the {'patients' if group_ids is not None else 'recordings'} "
            f"instead of 1/{n_folds}, so that it has every class: {str(caught[0].message).split(': ', 1)[-1]}",
            UserWarning,
            stacklevel=3,
        )
    folds = list(splitter.split()) if isinstance(splitter, PredefinedSplit) else cast("list[Any]", splitter)
    train, validation = folds[0]
    return np.sort(np.asarray(train)), np.sort(np.asarray(validation))


@dataclass
class FineTuningData:
    """Recordings and targets of one part (training or validation)."""

    recordings: Recordings | StoreRecordings
    targets: Targets
    rows: np.ndarray  # the indices into the recordings (and targets) that belong to this part

    def __len__(self) -> int:
        return len(self.rows)


def epoch_draws(n: int, seed: int, epoch: int, strata: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """The order of an epoch's ``n`` items (``strata``: draw with replacement, each class equally often) and a
    crop position in [0, 1) for each."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), 0xF1E7]))
    if strata is None:
        order = rng.permutation(n)
    else:
        frequency = np.bincount(strata)[strata].astype(np.float64)
        order = rng.choice(n, size=n, replace=True, p=(1 / frequency) / (1 / frequency).sum())
    return order, rng.random(n)


class StepBatches:
    """This process's items ``(row, crop position, weight)`` for each remaining step of the current epoch.

    Each global step takes ``batch_size * world_size`` items of the epoch's order (the last step fewer); the
    process of rank ``r`` takes its contiguous share, padded with weight-0 items so that every process runs
    every step (DDP needs that) and the losses, scaled by ``world_size / global weight``, average to the mean.
    """

    def __init__(
        self,
        n_items: int,
        batch_size: int,
        world_size: int,
        rank: int,
        seed: int,
        start_step: Callable[[], int],
        strata: np.ndarray | None = None,
    ):
        if n_items < 1:
            raise ValueError("no training recordings")
        self.n_items, self.batch_size, self.world_size, self.rank = n_items, batch_size, world_size, rank
        self.seed, self.start_step, self.strata = seed, start_step, strata
        self.global_batch = batch_size * world_size
        self.steps_per_epoch = math.ceil(n_items / self.global_batch)

    def __len__(self) -> int:
        return self.steps_per_epoch

    def step_items(self, global_step: int) -> list[tuple[int, float, float, float]]:
        """``(item, position, weight, global weight)`` of this process at ``global_step``."""
        epoch, step = divmod(global_step, self.steps_per_epoch)
        order, positions = epoch_draws(self.n_items, self.seed, epoch, self.strata)
        chosen = np.arange(step * self.global_batch, min((step + 1) * self.global_batch, self.n_items))
        share = math.ceil(len(chosen) / self.world_size)
        mine = chosen[self.rank * share : (self.rank + 1) * share]
        items = [(int(order[k]), float(positions[k]), 1.0, float(len(chosen))) for k in mine]
        padding = share - len(items)
        return items + [(int(order[chosen[0]]), 0.0, 0.0, float(len(chosen)))] * padding

    def __iter__(self) -> Iterator[list[tuple[int, float, float, float]]]:
        start = self.start_step()
        epoch, first = divmod(start, self.steps_per_epoch)
        for step in range(first, self.steps_per_epoch):
            yield self.step_items(epoch * self.steps_per_epoch + step)


class CropDataset(Dataset):
    """Training items of a `StepBatches` sampler, fetched a batch at a time: ``windows`` ``(B, 5000)``,
    ``targets``, ``weights`` ``(B,)`` (0 for padding) and ``global_weight`` (the step's real item count)."""

    def __init__(self, data: FineTuningData):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitems__(self, items: list[tuple[int, float, float, float]]) -> dict[str, torch.Tensor]:
        rows = self.data.rows[[item for item, _, _, _ in items]]
        windows = np.stack(
            [self.data.recordings.crop(int(row), position) for row, (_, position, _, _) in zip(rows, items)]
        )
        return {
            "windows": torch.from_numpy(windows),
            "targets": torch.from_numpy(self.data.targets.values[rows]),
            "weights": torch.tensor([weight for _, _, weight, _ in items], dtype=torch.float32),
            "global_weight": torch.tensor(items[0][3], dtype=torch.float32),
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([(index, 0.0, 1.0, 1.0)])


class EvaluationBatches:
    """Batches of whole recordings of one process (rows ``rank::world_size``), packed up to
    `EVAL_WINDOWS_PER_BATCH` windows."""

    def __init__(self, data: FineTuningData, world_size: int, rank: int):
        mine = np.arange(rank, len(data), world_size)
        self.batches: list[list[int]] = []
        current: list[int] = []
        total = 0
        for position in mine:
            count = int(data.recordings.n_windows[data.rows[position]])
            if current and total + count > EVAL_WINDOWS_PER_BATCH:
                self.batches.append(current)
                current, total = [], 0
            current.append(int(position))
            total += count
        if current:
            self.batches.append(current)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)


class RecordingDataset(Dataset):
    """Evaluation items: every window of each recording of a batch, ``windows`` ``(n_windows_total, 5000)``,
    ``counts`` (windows per recording), ``positions`` (the recordings' places in the part) and ``targets``."""

    def __init__(self, data: FineTuningData):
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitems__(self, positions: list[int]) -> dict[str, torch.Tensor]:
        rows = self.data.rows[positions]
        windows = [self.data.recordings.windows(int(row)) for row in rows]
        return {
            "windows": torch.from_numpy(np.concatenate(windows)),
            "counts": torch.tensor([len(w) for w in windows], dtype=torch.long),
            "positions": torch.tensor(positions, dtype=torch.long),
            "targets": torch.from_numpy(self.data.targets.values[rows]),
        }

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])


def _already_batched(batch: Any) -> Any:
    return batch


class StepDataLoader(DataLoader):
    """A DataLoader whose position is the trainer's global step (its `StepBatches` reads it at every
    ``iter``): it needs no state of its own to resume mid-epoch, which its ``state_dict`` tells Lightning."""

    def state_dict(self) -> dict[str, Any]:
        return {"position": "trainer.global_step"}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("position") != "trainer.global_step":
            raise ValueError(f"this checkpoint's data loader state {state!r} was not written by clef_sdk.train")


def training_loader(data: FineTuningData, sampler: StepBatches, num_workers: int) -> DataLoader:
    """The training DataLoader of ``data`` in the order of ``sampler``."""
    return StepDataLoader(
        CropDataset(data),
        batch_sampler=sampler,
        collate_fn=_already_batched,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
    )


def evaluation_loader(data: FineTuningData, world_size: int, rank: int, num_workers: int) -> DataLoader:
    """The evaluation DataLoader of ``data``: this process's recordings, whole."""
    return DataLoader(
        RecordingDataset(data),
        batch_sampler=EvaluationBatches(data, world_size, rank),
        collate_fn=_already_batched,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
    )
