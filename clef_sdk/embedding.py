"""Raw ECG -> CLEF embeddings: input coercion, window batching across recordings, pooling.

Windows are produced chunk by chunk, each chunk reading and resampling only the stretch of its recording it
covers ([`clef_sdk.resampling.Recording`][clef_sdk.resampling.Recording]), batched across recordings, and consumed as they come: pooled
embeddings are accumulated per recording, so memory stays bounded for recordings of any length (a week of ECG,
a memory-mapped file) unless per-window output is asked for. On a GPU the raw stretches are preprocessed on the
GPU, in a background thread that overlaps reading and copying with the forward passes.
"""

from __future__ import annotations

import queue
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeVar, cast, overload

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from .backends import Backend, network_forward, resolve_backend
from .constants import WINDOW_SAMPLES
from .errors import QualityWarning
from .inputs import (
    POOLINGS,
    QUALITY_MODES,
    Pooling,
    QualityMode,
    SignalInput,
    TailMode,
    as_recordings,
    check_batch_size,
    check_choice,
    per_record_fs,
)
from .loading import ModelSpec, get_encoder
from .precision import Precision, autocast, check_precision
from .preprocessing import preprocess_chunk
from .resampling import Recording
from .threads import check_num_threads, torch_threads
from .torch_preprocessing import recording_windows_torch
from .windows import WindowPlan, plan_windows, warn_about_windows

if TYPE_CHECKING:
    from .models import ClefEncoder
    from .quality import SignalQuality

__all__ = ["AUTO_PROGRESS_WINDOWS", "EmbeddingOutput", "auto_batch_size", "compiled", "embed"]

# Show a progress bar by default once a job has this many windows (about 3 hours of ECG).
AUTO_PROGRESS_WINDOWS = 1024

T = TypeVar("T")
EmbeddingOutput = np.ndarray | list[np.ndarray]


def auto_batch_size(encoder: ClefEncoder, precision: Precision, device: torch.device) -> int:
    """The batch size ``batch_size=None`` picks: the fastest measured (``benchmarks/throughput.py``).

    On a 2-core Zen 4 CPU: small 922 windows/s at 32 vs 795 at 16 and 650 at 64 (fp32); medium fp32 62 at 16 vs
    50 at 32, medium bf16 101 at 32 vs 96 at 16 (larger batches leave the caches). On GPUs large batches keep the
    device busy.
    """
    if device.type != "cpu":
        return 256
    return 16 if precision == "fp32" and encoder.embed_dim >= 1024 else 32


def _window_chunks(
    recordings: list[np.ndarray],
    rates: list[float],
    plans: list[WindowPlan],
    chunk_size: int,
    device_preprocessing: torch.device | None,
    dtype: torch.dtype = torch.float64,
) -> Iterator[tuple[torch.Tensor, int]]:
    """``(preprocessed windows (<= chunk_size, 5000), recording index)``, recording after recording.

    With ``device_preprocessing`` the raw stretch of each chunk goes to that device and is preprocessed there
    ([`clef_sdk.torch_preprocessing.recording_windows_torch`][clef_sdk.torch_preprocessing.recording_windows_torch]) in ``dtype``: float64 matches the numpy path to
    1e-6, float32 to 2e-5. Chunks with NaN gaps or a padded tail take the numpy path, which fills gaps per window.
    """
    for index, (recording, fs, plan) in enumerate(zip(recordings, rates, plans)):
        name = "signal" if len(recordings) == 1 else f"recording {index}"
        source = Recording.at_rate(recording, fs)
        for first, starts, valid in plan.chunks(chunk_size):
            windows = None
            if device_preprocessing is not None and (valid == WINDOW_SAMPLES).all():
                windows = recording_windows_torch(source, starts, device_preprocessing, dtype)
            if windows is None:
                windows = torch.from_numpy(preprocess_chunk(source, starts, valid, first, name))
            else:  # no NaN reaches the device path: only flat windows to report
                warn_about_windows(np.zeros(len(starts)), source.flat(starts, valid), first, name)
            yield windows, index


def _batches(chunks: Iterator[tuple[torch.Tensor, int]], batch_size: int) -> Iterator[tuple[torch.Tensor, np.ndarray]]:
    """Yield ``(windows (<= batch_size, 5000), record_index per window)``, filling batches across recordings."""
    pending: list[torch.Tensor] = []
    owners: list[np.ndarray] = []
    n_pending = 0
    for chunk, index in chunks:
        pending.append(chunk)
        owners.append(np.full(len(chunk), index))
        n_pending += len(chunk)
        while n_pending >= batch_size:
            device = pending[-1].device
            windows = torch.cat([part.to(device) for part in pending])
            who = np.concatenate(owners)
            yield windows[:batch_size], who[:batch_size]
            pending, owners = [windows[batch_size:]], [who[batch_size:]]
            n_pending -= batch_size
    if n_pending:
        device = pending[-1].device
        yield torch.cat([part.to(device) for part in pending]), np.concatenate(owners)


@dataclass(frozen=True)
class _Failed:
    """What the prefetch thread hands over when its iterator raised."""

    error: BaseException


_DONE = object()  # the prefetch thread's last item


def _prefetched(iterator: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Run ``iterator`` in a background thread, ``depth`` items ahead, so reading, preprocessing and host-to-device
    copies overlap the forward passes; exceptions are re-raised here."""
    items: queue.Queue[T | _Failed | object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            items.put(_Failed(exc))

    worker = threading.Thread(target=produce, name="clef-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield cast(T, item)
    finally:
        stop.set()
        worker.join()


@overload
def embed(
    signal: SignalInput,
    fs: float | list[float] | None = None,
    *,
    model: ModelSpec = ...,
    pooling: Pooling = ...,
    batch_size: int | None = ...,
    device: str | torch.device | None = ...,
    progress: bool | None = ...,
    stride_seconds: float | None = ...,
    tail: TailMode = ...,
    precision: Precision = ...,
    compile: bool = ...,
    backend: Backend = ...,
    num_threads: int | None = ...,
    quality: Literal["drop"] | None = ...,
) -> EmbeddingOutput: ...


@overload
def embed(
    signal: SignalInput,
    fs: float | list[float] | None = None,
    *,
    model: ModelSpec = ...,
    pooling: Pooling = ...,
    batch_size: int | None = ...,
    device: str | torch.device | None = ...,
    progress: bool | None = ...,
    stride_seconds: float | None = ...,
    tail: TailMode = ...,
    precision: Precision = ...,
    compile: bool = ...,
    backend: Backend = ...,
    num_threads: int | None = ...,
    quality: Literal["return"],
) -> tuple[EmbeddingOutput, SignalQuality | list[SignalQuality]]: ...


def embed(
    signal: SignalInput,
    fs: float | list[float] | None = None,
    *,
    model: ModelSpec = "medium",
    pooling: Pooling = "mean",
    batch_size: int | None = None,
    device: str | torch.device | None = None,
    progress: bool | None = None,
    stride_seconds: float | None = None,
    tail: TailMode = "drop",
    precision: Precision = "fp32",
    compile: bool = False,
    backend: Backend = "auto",
    num_threads: int | None = None,
    quality: QualityMode = None,
) -> EmbeddingOutput | tuple[EmbeddingOutput, SignalQuality | list[SignalQuality]]:
    """CLEF embeddings of single-lead ECG at any sampling rate and length.

    Args:
        signal: one recording ``(n_samples,)``; several of equal length ``(n_records, n_samples)``; or a list
            of 1-D recordings of any lengths. numpy arrays (memory-mapped ones too: read in blocks, never whole),
            torch tensors, lists, and 1-D array-likes read by slicing (`WfdbSignal`, h5py datasets); any unit.
        fs: sampling rate in Hz (50-10,000), one for all recordings or one per recording.
        model: ``"small"``, ``"medium"``, ``"large"`` (or an alias), a weights path, an ``hf-hub:`` id, or a loaded
            ClefEncoder (moved to ``device`` if one is given).
        pooling: ``"mean"`` (default) or ``"max"`` over a recording's 10 s windows, or ``None`` for per-window
            embeddings.
        batch_size: windows per forward pass (windows of all recordings are batched together); ``None`` picks the
            fastest measured for the model, precision and device (CPU: 32, or 16 for medium and large in fp32).
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks CUDA when available.
        progress: show a progress bar (``True``/``False``); ``None``: for long jobs (1,024 windows or more), as
            [`clef_sdk.set_progress`][clef_sdk.set_progress], ``CLEF_SDK_PROGRESS`` or, by default, where stderr is a terminal.
        stride_seconds: distance between window starts (default 10 s: consecutive windows).
        tail: the end shorter than 10 s: ``"drop"`` (default, as in pretraining), ``"pad"`` or ``"last"``.
        precision: ``"fp32"`` (default, faithful) or ``"bf16"``: bf16 autocast at cosine >= 0.9999 to fp32 (0.997
            on CPUs with AMX: ``clef_sdk.precision.bf16_min_cosine``), for GPUs
            and CPUs with native bf16 (AVX-512 BF16, AMX, Arm BF16; refused where emulated). Measured 1.4-1.7x
            faster on a Zen 4 CPU, but slower than fp32 on a Xeon without AMX: measure on yours.
        quality: ``None`` (default) embeds every window; ``"drop"`` pools only the windows that
            `signal_quality` rates usable (a recording with none gets NaN and a `QualityWarning`);
            ``"return"`` also returns the per-window quality, as ``(embeddings, SignalQuality)`` (a list of them
            for several recordings).
        compile: ``torch.compile`` the encoder (first batch pays the compilation). Meant for GPUs; on the CPUs
            measured it did not pay (see the performance guide).
        backend: what runs the network: ``"torch"``, ``"onnxruntime"`` (CPU, fp32; ``pip install
            "clef-sdk[onnx]"``), ``"openvino"`` (CPU, fp32 or bf16; ``pip install "clef-sdk[openvino]"``), both
            on the same weights exported once and cached (see [`clef_sdk.backends`][clef_sdk.backends]), or ``"auto"`` (an
            installed engine where it measured faster than torch, torch elsewhere).
        num_threads: CPU threads of the network; ``None`` (default) takes ``CLEF_SDK_NUM_THREADS`` or
            ``OMP_NUM_THREADS`` when set, else the cores this process may use that other processes leave idle,
            re-checked once a second (see [`clef_sdk.threads`][clef_sdk.threads]). Pass a number for bit-identical reruns.

    Returns:
        float32 numpy: ``(embed_dim,)`` for one recording, ``(n_records, embed_dim)`` for several. With
        ``pooling=None``: ``(n_windows, embed_dim)`` for one recording, a list of those for several.
    """
    encoder = get_encoder(model, device)
    pooling = check_choice(pooling, POOLINGS, "pooling")
    quality = check_choice(quality, QUALITY_MODES, "quality")
    if quality == "drop" and pooling is None:
        raise ValueError(
            "quality='drop' pools the usable windows, so it needs pooling='mean' or 'max'; for per-window "
            "embeddings use quality='return' and keep the rows where result.usable is true"
        )
    batch_size = check_batch_size(batch_size)
    num_threads = check_num_threads(num_threads)
    recordings, single = as_recordings(signal)
    rates = per_record_fs(fs, recordings)
    plans = [
        plan_windows(recording.shape[0], rate, stride_seconds=stride_seconds, tail=tail)
        for recording, rate in zip(recordings, rates)
    ]
    target = encoder.device
    precision = check_precision(precision, target)
    batch_size = batch_size or auto_batch_size(encoder, precision, target)
    chosen_backend = resolve_backend(backend, encoder, target, precision, compile)
    forward = compiled(encoder) if compile else network_forward(encoder, chosen_backend, precision)
    dim = encoder.embed_dim
    counts = np.array([len(plan) for plan in plans])
    qualities: list[SignalQuality] = []
    if quality is not None:
        from .quality import planned_quality

        qualities = [planned_quality(recording, rate, plan) for recording, rate, plan in zip(recordings, rates, plans)]
    keep = [q.usable for q in qualities] if quality == "drop" else [np.ones(c, dtype=bool) for c in counts]
    # windows arrive recording after recording, each in order: window k of the whole job is keep_all[k]
    keep_all = np.concatenate(keep)
    done = 0

    if pooling is None:
        per_window = [np.empty((count, dim), dtype=np.float32) for count in counts]
        filled = np.zeros(len(recordings), dtype=np.int64)
    else:
        pooled = np.zeros((len(recordings), dim)) if pooling == "mean" else np.full((len(recordings), dim), -np.inf)

    from tqdm.auto import tqdm

    from .progress import progress_disabled

    short = progress is None and int(counts.sum()) < AUTO_PROGRESS_WINDOWS
    hidden = True if short else progress_disabled(progress)
    # On an accelerator the raw signal is preprocessed there, and a background thread keeps the next batches
    # coming. On the CPU both would compete with the forward pass for the same cores (measured on 2 cores:
    # 780 -> 600 windows/s with the thread), so there the steps alternate.
    on_accelerator = target.type != "cpu"
    # fp32 keeps the preprocessing faithful (float64, as on the CPU); bf16 trades it for speed (float32).
    work_dtype = torch.float64 if precision == "fp32" else torch.float32
    chunks = _window_chunks(recordings, rates, plans, batch_size, target if on_accelerator else None, work_dtype)
    batches = _batches(chunks, batch_size)
    was_training = encoder.training
    encoder.eval()
    try:
        # numpy's BLAS (used by the band-pass) keeps its idle threads spinning between calls; on a small machine
        # they take the cores torch needs next (measured on 2 cores: 290 -> 516 windows/s with one BLAS thread).
        with (
            threadpool_limits(limits=1, user_api="blas"),
            torch_threads(num_threads) as threads,
            torch.inference_mode(),
            tqdm(total=int(counts.sum()), unit="window", desc=f"embedding ({encoder.name})", disable=hidden) as bar,
        ):
            for windows, owners in _prefetched(batches) if on_accelerator else batches:
                threads.update()
                batch = windows.to(target, torch.float32, non_blocking=True).unsqueeze(1)
                n = len(batch)
                if compile and n < batch_size:  # one input shape: no recompilation for the last batch
                    batch = torch.cat([batch, batch.new_zeros(batch_size - n, 1, WINDOW_SAMPLES)])
                with autocast(precision, target):
                    output = forward(batch)[:n].float().cpu().numpy()
                if pooling is None:
                    for index in np.unique(owners):
                        rows = output[owners == index]
                        per_window[index][filled[index] : filled[index] + len(rows)] = rows
                        filled[index] += len(rows)
                else:
                    kept = keep_all[done : done + n]
                    pool = np.add.at if pooling == "mean" else np.maximum.at
                    pool(pooled, owners[kept], output[kept].astype(np.float64))
                done += n
                bar.update(n)
    finally:
        encoder.train(was_training)

    if pooling is None:
        result: EmbeddingOutput = per_window[0] if single else per_window
    else:
        used = np.array([int(k.sum()) for k in keep])
        if pooling == "mean":
            pooled /= np.maximum(used, 1)[:, None]
        for index in np.flatnonzero(used == 0):
            name = "the signal" if single else f"recording {index}"
            warnings.warn(
                f"{name} has no usable window (best quality score {qualities[index].score.max():.2f} < "
                f"{qualities[index].threshold:g}); its embedding is NaN. Inspect it with clef.signal_quality, "
                "or embed it anyway with quality=None",
                QualityWarning,
                stacklevel=3,
            )
            pooled[index] = np.nan
        stacked = pooled.astype(np.float32)
        result = stacked[0] if single else stacked
    if quality == "return":
        return result, (qualities[0] if single else qualities)
    return result


_COMPILED: weakref.WeakKeyDictionary[ClefEncoder, Callable[[torch.Tensor], torch.Tensor]] = weakref.WeakKeyDictionary()


def compiled(encoder: ClefEncoder) -> Callable[[torch.Tensor], torch.Tensor]:
    """``torch.compile(encoder)`` for fixed batch shapes, made once per encoder (the first batch pays the
    compilation); on CUDA with CUDA graphs (``mode="reduce-overhead"``), which remove the per-kernel launch cost
    that dominates small models. Outputs are copied to the host before the next batch replays the graph."""
    if encoder not in _COMPILED:
        mode = "reduce-overhead" if encoder.device.type == "cuda" else None
        _COMPILED[encoder] = torch.compile(encoder, dynamic=False, mode=mode)
    return _COMPILED[encoder]
