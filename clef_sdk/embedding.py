"""Raw ECG -> CLEF embeddings: input coercion, window batching across recordings, pooling.

Windows are produced chunk by chunk (:func:`clef_sdk.preprocessing.iter_planned_windows`), batched across
recordings, and consumed as they come: pooled embeddings are accumulated per recording, so memory does
not grow with the number of windows unless per-window output is asked for.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal, Union

import numpy as np
import torch

from .preprocessing import (
    TailMode,
    WindowPlan,
    as_recordings,
    check_fs,
    iter_planned_windows,
    per_record_fs,
    plan_windows,
)

if TYPE_CHECKING:
    from .models import ClefEncoder

__all__ = ["DEFAULT_BATCH_SIZE", "Pooling", "as_recordings", "embed_with_encoder", "resolve_device"]

Pooling = Literal["mean", "max", None]
POOLINGS: tuple[object, ...] = ("mean", "max", None)
DEFAULT_BATCH_SIZE = 32
# Show a progress bar by default once a job has this many windows (about 3 hours of ECG).
AUTO_PROGRESS_WINDOWS = 1024

SignalInput = Union[np.ndarray, "torch.Tensor", Sequence[object]]
EmbeddingOutput = Union[np.ndarray, list[np.ndarray]]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` picks CUDA when available, else the CPU; strings such as ``"cuda:1"`` are checked."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"invalid device {device!r} ({exc}); use 'cpu', 'cuda', 'cuda:0' or 'mps'") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available here; use device='cpu'")
    return resolved


def _batches(
    recordings: list[np.ndarray], rates: list[float], plans: list[WindowPlan], batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(windows (<= batch_size, 5000), record_index per window)``, filling batches across recordings."""
    pending: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    n_pending = 0
    for index, (recording, fs, plan) in enumerate(zip(recordings, rates, plans)):
        name = "signal" if len(recordings) == 1 else f"recording {index}"
        for chunk in iter_planned_windows(recording, fs, plan, chunk_size=batch_size, name=name):
            pending.append(chunk)
            owners.append(np.full(len(chunk), index))
            n_pending += len(chunk)
            while n_pending >= batch_size:
                windows, who = np.concatenate(pending), np.concatenate(owners)
                yield windows[:batch_size], who[:batch_size]
                pending, owners = [windows[batch_size:]], [who[batch_size:]]
                n_pending -= batch_size
    if n_pending:
        yield np.concatenate(pending), np.concatenate(owners)


def embed_with_encoder(
    encoder: ClefEncoder,
    signal: SignalInput,
    fs: object = None,
    *,
    pooling: Pooling = "mean",
    batch_size: int = DEFAULT_BATCH_SIZE,
    device: str | torch.device | None = None,
    progress: bool | None = None,
    stride_seconds: float | None = None,
    tail: TailMode = "drop",
) -> EmbeddingOutput:
    """Embed raw ECG with ``encoder``; see :func:`clef_sdk.embed` for the arguments and output shapes."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if fs is None:
        check_fs(None)
    recordings, single = as_recordings(signal)
    rates = per_record_fs(fs, len(recordings))
    plans = [
        plan_windows(len(recording), rate, stride_seconds=stride_seconds, tail=tail)
        for recording, rate in zip(recordings, rates)
    ]
    if device is not None:
        encoder.to(resolve_device(device))
    target = encoder.device
    dim = encoder.embed_dim
    counts = np.array([len(plan) for plan in plans])

    if pooling is None:
        per_window = [np.empty((count, dim), dtype=np.float32) for count in counts]
        filled = np.zeros(len(recordings), dtype=np.int64)
    else:
        pooled = np.zeros((len(recordings), dim)) if pooling == "mean" else np.full((len(recordings), dim), -np.inf)

    from tqdm.auto import tqdm

    show = progress if progress is not None else int(counts.sum()) >= AUTO_PROGRESS_WINDOWS
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.inference_mode(), tqdm(
            total=int(counts.sum()), unit="window", desc=f"embedding ({encoder.name})", disable=not show
        ) as bar:
            for windows, owners in _batches(recordings, rates, plans, int(batch_size)):
                batch = torch.from_numpy(windows).unsqueeze(1).to(target, non_blocking=True)
                output = encoder(batch).float().cpu().numpy()
                if pooling is None:
                    for index in np.unique(owners):
                        rows = output[owners == index]
                        per_window[index][filled[index] : filled[index] + len(rows)] = rows
                        filled[index] += len(rows)
                elif pooling == "mean":
                    np.add.at(pooled, owners, output.astype(np.float64))
                else:
                    np.maximum.at(pooled, owners, output.astype(np.float64))
                bar.update(len(windows))
    finally:
        encoder.train(was_training)

    if pooling is None:
        return per_window[0] if single else per_window
    if pooling == "mean":
        pooled /= counts[:, None]
    result = pooled.astype(np.float32)
    return result[0] if single else result
