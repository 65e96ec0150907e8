"""``embed_archive``: a whole archive of ECG records into a partitioned table of embeddings, resumable.

One run computes the parts its rank owns (`.plan`) that are not there yet: reader processes read and check
the records of a part while the encoder embeds the previous one; each part is written atomically with its report
of skipped records; the last run to finish a part writes ``_skipped.csv``, ``_manifest.json`` and ``_SUCCESS`` (leading underscores: Parquet readers of the folder skip them).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._version import __version__
from ..backends import BACKENDS
from ..constants import TARGET_FS, WINDOW_SECONDS
from ..embedding import embed
from ..errors import RecordingError
from ..files import atomic_write_text
from ..inputs import check_choice, check_fs
from ..io import STANDARD_LEADS, parse_leads
from ..models import ClefEncoder
from ..progress import progress_disabled
from ..windows import plan_windows
from .parts import FORMATS, part_done, part_name, report_path, write_part
from .plan import JobPlan, rank_from_environment
from .reading import SUCCESS_FILE
from .sources import Source, open_source, records_digest

__all__ = ["ArchiveRun", "embed_archive", "finish_if_complete", "job_options", "prepare_job", "run_part"]


@dataclass
class ArchiveRun:
    """What one call did: the parts it computed and skipped (already there), rows written, records skipped, and
    whether the whole job is now complete."""

    output: Path
    rank: int
    world_size: int
    computed: list[int]
    already_done: list[int]
    n_rows: int
    n_skipped: int
    complete: bool
    seconds: float


def _window_starts(signal: np.ndarray, fs: float, options: dict[str, Any]) -> np.ndarray | str:
    """Where the lead's windows start (s), or why it cannot be embedded (too short, no finite sample, bad rate)."""
    try:
        check_fs(fs)
    except ValueError as exc:
        return f"bad sampling rate: {exc}"
    if not np.isfinite(signal).any():
        return "no finite sample"
    if np.isinf(signal).any():
        return "infinite values"
    try:
        plan = plan_windows(signal.shape[0], fs, stride_seconds=options["stride_seconds"], tail=options["tail"])
    except ValueError:
        return f"too short: {signal.shape[0] / fs:.1f} s (a 10 s window is needed; tail='pad' embeds 1-10 s)"
    return plan.starts / TARGET_FS


def _read_part(source: Source, records: Sequence[str], leads: Sequence[str], options: dict[str, Any]) -> dict[str, Any]:
    """Read and check one part's records (runs in a reader process). ``items``: ``(record, lead, data, fs,
    window starts in s)``, where data is a raw lead, or, with ``preprocessed``, a store's windows."""
    items: list[tuple[str, str, np.ndarray, float, np.ndarray]] = []
    skipped: list[dict[str, str]] = []
    preprocessed = False
    for record in records:
        try:
            read = source.read(record, leads)
        except (RecordingError, OSError, ValueError) as exc:
            skipped.append({"record": record, "lead": "*", "reason": str(exc)[:300]})
            continue
        for lead, reason in read.missing.items():
            skipped.append({"record": record, "lead": lead, "reason": reason})
        for lead in sorted(read.signals):
            starts = _window_starts(read.signals[lead], read.fs, options)
            if isinstance(starts, str):
                skipped.append({"record": record, "lead": lead, "reason": starts})
            else:
                items.append((record, lead, read.signals[lead], read.fs, starts))
        for lead in sorted(read.windows):
            stored = read.windows[lead]
            items.append((record, lead, stored, float(TARGET_FS), WINDOW_SECONDS * np.arange(len(stored))))
            preprocessed = True
    return {"items": items, "preprocessed": preprocessed, "skipped": skipped}


def _embed_part(
    read: dict[str, Any], encoder: ClefEncoder, options: dict[str, Any], device: str | None, batch_size: int | None
) -> tuple[pd.DataFrame, np.ndarray]:
    items = read["items"]
    dim = encoder.embed_dim
    dtype = np.float16 if options["dtype"] == "float16" else np.float32
    per_window = options["per_window"]
    names = ["record", "lead", "n_windows", "n_used", "fs"] + (["window", "start_s", "usable"] if per_window else [])
    if not items:
        return pd.DataFrame({name: [] for name in names}), np.empty((0, dim), dtype=dtype)
    signals = [item[2] for item in items]
    if read["preprocessed"]:
        if options["quality"] == "drop":
            raise ValueError("quality='drop' needs the raw signal; a store holds band-passed windows only")
        windows: Any = _embed_windows(signals, encoder, options["precision"], batch_size)
        usable = [np.ones(len(w), dtype=bool) for w in windows]
    else:
        result: Any = embed(
            signals,
            fs=[item[3] for item in items],
            model=encoder,
            pooling=None,
            batch_size=batch_size,
            device=device,
            progress=False,
            stride_seconds=options["stride_seconds"],
            tail=options["tail"],
            precision=options["precision"],
            backend=options.get("backend", "auto"),
            quality="return" if options["quality"] == "drop" else None,
        )
        if options["quality"] == "drop":
            windows, qualities = result
            usable = [np.asarray(q.usable) for q in qualities]
        else:
            windows = result
            usable = [np.ones(len(w), dtype=bool) for w in windows]
    rows: list[dict[str, Any]] = []
    vectors: list[np.ndarray] = []
    for (record, lead, _, fs, starts), outputs, keep in zip(items, windows, usable):
        ids = {"record": record, "lead": lead, "n_windows": len(outputs), "n_used": int(keep.sum()), "fs": fs}
        if per_window:
            rows.extend(
                {**ids, "window": k, "start_s": starts[k], "usable": bool(keep[k])} for k in range(len(outputs))
            )
            vectors.extend(outputs)
        elif not keep.any():
            rows.append(ids)
            vectors.append(np.full(dim, np.nan, dtype=np.float32))
        else:
            chosen = outputs[keep]
            pooled = chosen.astype(np.float64).mean(axis=0) if options["pooling"] == "mean" else chosen.max(axis=0)
            rows.append(ids)
            vectors.append(pooled.astype(np.float32))
    types = {"n_windows": np.int32, "n_used": np.int32, "fs": np.float64}
    table = pd.DataFrame(rows, columns=names).astype({**types, **({"window": np.int32} if per_window else {})})
    order = np.lexsort(
        tuple(table[c].to_numpy() for c in reversed(["record", "lead"] + (["window"] if per_window else [])))
    )
    return table.iloc[order].reset_index(drop=True), np.stack(vectors).astype(dtype)[order]


def _embed_windows(
    windows: list[np.ndarray], encoder: ClefEncoder, precision: str, batch_size: int | None
) -> list[np.ndarray]:
    """The encoder on preprocessed windows ``(n_windows, 5000)`` of each record, batched across records."""
    import torch

    from ..embedding import auto_batch_size
    from ..precision import autocast, check_precision
    from ..threads import torch_threads

    device = encoder.device
    chosen = check_precision(precision, device)
    size = batch_size or auto_batch_size(encoder, chosen, device)
    stacked = np.concatenate(windows).astype(np.float32)
    out = np.empty((len(stacked), encoder.embed_dim), dtype=np.float32)
    was_training = encoder.training
    encoder.eval()
    try:
        with torch_threads() as threads, torch.inference_mode():
            for start in range(0, len(stacked), size):
                threads.update()
                batch = torch.from_numpy(stacked[start : start + size]).to(device).unsqueeze(1)
                with autocast(chosen, device):
                    out[start : start + len(batch)] = encoder(batch).float().cpu().numpy()
    finally:
        encoder.train(was_training)
    bounds = np.cumsum([0] + [len(w) for w in windows])
    return [out[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _plan(
    source: Source, model: Any, leads: tuple[str, ...], options: dict[str, Any], shard_size: int
) -> tuple[JobPlan, ClefEncoder]:
    from ..benchmark.models import resolve_model

    resolved = resolve_model(model)
    identity = {
        "label": resolved.label,
        "spec": resolved.spec,
        **resolved.identity,
        "embed_dim": resolved.encoder.embed_dim,
    }
    plan = JobPlan(
        source.describe(), records_digest(source.records), len(source.records), identity, leads, options, shard_size
    )
    return plan, resolved.encoder


def run_part(
    source: Source,
    plan: JobPlan,
    encoder: ClefEncoder,
    output: Path,
    part: int,
    *,
    device: str | None = None,
    batch_size: int | None = None,
    executor: Executor | None = None,
) -> tuple[int, int]:
    """Compute and write one part; returns ``(rows, skipped)``. Engines (`.dask`) call this per part."""
    start, stop = plan.part_range(part)
    records = source.records[start:stop]
    if executor is None:
        read = _read_part(source, records, plan.leads, plan.options)
    else:
        read = executor.submit(_read_part, source, records, plan.leads, plan.options).result()
    return _write(output, part, plan, read, encoder, device, batch_size)


def _write(
    output: Path,
    part: int,
    plan: JobPlan,
    read: dict[str, Any],
    encoder: ClefEncoder,
    device: str | None,
    batch_size: int | None,
) -> tuple[int, int]:
    ids, values = _embed_part(read, encoder, plan.options, device, batch_size)
    metadata = {
        "model": plan.model,
        "leads": list(plan.leads),
        "options": plan.options,
        "clef_sdk": __version__,
        "part": part,
    }
    write_part(output, part, ids, values, read["skipped"], format=plan.options["format"], metadata=metadata)
    return len(ids), len(read["skipped"])


def _prefetch(
    executor: Executor | None, source: Source, plan: JobPlan, parts: list[int]
) -> Iterator[tuple[int, dict[str, Any]]]:
    """The parts' reads, in order, the next ones already under way in the reader processes."""
    if executor is None:
        for part in parts:
            start, stop = plan.part_range(part)
            yield part, _read_part(source, source.records[start:stop], plan.leads, plan.options)
        return
    depth = max(2, getattr(executor, "_max_workers", 2))
    pending: list[tuple[int, Future[dict[str, Any]]]] = []
    queue = list(parts)
    while queue or pending:
        while queue and len(pending) < depth:
            part = queue.pop(0)
            start, stop = plan.part_range(part)
            pending.append(
                (part, executor.submit(_read_part, source, source.records[start:stop], plan.leads, plan.options))
            )
        part, future = pending.pop(0)
        yield part, future.result()


def finish_if_complete(output: Path, plan: JobPlan) -> bool:
    """Write ``_skipped.csv``, ``_manifest.json`` and ``_SUCCESS`` once every part is there; True if complete."""
    fmt = plan.options["format"]
    if not all(part_done(output, part, fmt) for part in range(plan.n_parts)):
        return False
    skipped: list[dict[str, str]] = []
    parts = []
    for part in range(plan.n_parts):
        base = output / part_name(part)
        report = json.loads(report_path(output, part).read_text())
        skipped.extend(report)
        data = Path(f"{base}.{'npy' if fmt == 'npy' else 'parquet'}")
        parts.append({"part": part, "file": data.name, "bytes": data.stat().st_size, "skipped": len(report)})
    atomic_write_text(
        output / "_skipped.csv", pd.DataFrame(skipped, columns=["record", "lead", "reason"]).to_csv(index=False)
    )
    atomic_write_text(
        output / "_manifest.json",
        json.dumps({"plan": plan.as_json(), "parts": parts, "n_skipped": len(skipped)}, indent=1),
    )
    atomic_write_text(
        output / SUCCESS_FILE,
        json.dumps({"n_parts": plan.n_parts, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}),
    )
    return True


def embed_archive(
    source: object,
    output: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | ClefEncoder = "medium",
    leads: str | Sequence[str] | None = None,
    pooling: Literal["mean", "max"] = "mean",
    per_window: bool = False,
    quality: Literal["drop"] | None = None,
    dtype: Literal["float32", "float16"] = "float32",
    format: Literal["parquet", "npy"] = "parquet",
    shard_size: int = 1000,
    workers: int = 0,
    devices: Sequence[str] | None = None,
    rank: int | None = None,
    world_size: int | None = None,
    batch_size: int | None = None,
    precision: str = "fp32",
    stride_seconds: float | None = None,
    tail: str = "drop",
    backend: str = "auto",
    progress: bool | None = None,
) -> ArchiveRun:
    """Embed every record (and lead) of an archive into a partitioned table; rerun to resume.

    Args:
        source: a folder of WFDB records (any layout), a manifest CSV (``record,path[,fs][,lead]``), or a dataset
            (``clef.datasets.open(...)``); see [`clef_sdk.archive.sources`][clef_sdk.archive.sources].
        output: the output folder (new, empty, or this job's: then only missing parts are computed).
        model: a model name, weights path, ``hf-hub:`` id or a ClefEncoder.
        leads: lead names (``"I,II"`` or a list; canonical spelling, ``MLII`` is ``II``); default the 12 standard
            leads (a manifest: the leads it lists).
        pooling: ``"mean"`` or ``"max"`` over a record's windows.
        per_window: one row per 10 s window instead (with ``window``, ``start_s``, ``usable``).
        quality: ``"drop"`` pools only windows of usable signal quality (``n_used`` counts them).
        dtype: ``"float32"`` or ``"float16"`` embeddings.
        format: ``"parquet"`` (needs ``pip install "clef-sdk[archive]"``) or ``"npy"`` (+ an ``.index.csv``).
        shard_size: records per part.
        workers: reader processes (0: read in this process).
        devices: one process per device, e.g. ``["cuda:0", "cuda:1"]`` (default: this process, CUDA if any).
        rank: this run's rank (default: from torchrun or SLURM variables, else 0).
        world_size: how many runs share the job (default: as ``rank``).
        batch_size: windows per forward pass.
        precision: ``"fp32"`` or ``"bf16"``.
        stride_seconds: distance between window starts, as in [`clef_sdk.embed`][clef_sdk.embed].
        tail: a record's end shorter than 10 s, as in [`clef_sdk.embed`][clef_sdk.embed].
        backend: what runs the network, as in [`clef_sdk.embed`][clef_sdk.embed] (recorded in the plan).
        progress: show a progress bar (records/s, ETA); ``None``: as [`clef_sdk.set_progress`][clef_sdk.set_progress] says, by default
            where stderr is a terminal.

    Returns:
        An `ArchiveRun`; read the table with [`clef_sdk.read_embeddings`][clef_sdk.read_embeddings].
    """
    started = time.perf_counter()
    options = job_options(pooling, per_window, quality, dtype, format, precision, stride_seconds, tail, backend)
    src, out, plan, encoder = prepare_job(source, output, model, leads, options, shard_size)

    env_rank, env_world, _ = rank_from_environment()
    rank = env_rank if rank is None else rank
    world_size = env_world if world_size is None else world_size
    if devices and len(devices) > 1:
        return _on_devices(src, out, plan, model, list(devices), rank, world_size, workers, batch_size, started)
    device = devices[0] if devices else None
    return _run(src, out, plan, encoder, rank, world_size, workers, device, batch_size, progress, started)


def job_options(
    pooling: str,
    per_window: bool,
    quality: str | None,
    dtype: str,
    format: str,
    precision: str,
    stride_seconds: float | None,
    tail: str,
    backend: str = "auto",
) -> dict[str, Any]:
    """The options that change a part's bytes, checked (they go into the job plan)."""
    check_choice(pooling, ("mean", "max"), "pooling")
    check_choice(quality, (None, "drop"), "quality")
    check_choice(dtype, ("float32", "float16"), "dtype")
    check_choice(format, FORMATS, "format")
    check_choice(precision, ("fp32", "bf16"), "precision")
    check_choice(backend, BACKENDS, "backend")
    if format == "parquet":
        from .._optional import require

        require("pyarrow", "writing Parquet (format='npy' needs nothing more)")
    return {
        "pooling": pooling,
        "per_window": bool(per_window),
        "quality": quality,
        "dtype": dtype,
        "format": format,
        "precision": precision,
        "stride_seconds": stride_seconds,
        "tail": tail,
        "backend": backend,
    }


def prepare_job(
    source: object,
    output: str | os.PathLike[str],
    model: Any,
    leads: str | Sequence[str] | None,
    options: dict[str, Any],
    shard_size: int,
) -> tuple[Source, Path, JobPlan, ClefEncoder]:
    """Open the source, load the model, and write (or check) the job plan in ``output``."""
    if not isinstance(shard_size, int) or isinstance(shard_size, bool) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive integer (records per part), got {shard_size!r}")
    out = Path(output)
    src = open_source(source)
    plan, encoder = _plan(src, model, _leads(src, leads), options, shard_size)
    plan.write_or_check(out)
    return src, out, plan, encoder


def _leads(source: Source, leads: str | Sequence[str] | None) -> tuple[str, ...]:
    if leads is not None:
        return parse_leads(leads)
    default = getattr(source, "default_leads", None)
    return tuple(default) if default else STANDARD_LEADS


def _run(
    source: Source,
    out: Path,
    plan: JobPlan,
    encoder: ClefEncoder,
    rank: int,
    world_size: int,
    workers: int,
    device: str | None,
    batch_size: int | None,
    progress: bool | None,
    started: float,
) -> ArchiveRun:
    from tqdm.auto import tqdm

    mine = plan.parts_of(rank, world_size)
    done = [p for p in mine if part_done(out, p, plan.options["format"])]
    todo = [p for p in mine if p not in done]
    n_rows = n_skipped = 0
    total = sum(plan.part_range(p)[1] - plan.part_range(p)[0] for p in todo)
    executor = ProcessPoolExecutor(workers) if workers > 0 else None
    try:
        with tqdm(
            total=total, unit="rec", desc=f"embed-archive rank {rank}/{world_size}", disable=progress_disabled(progress)
        ) as bar:
            for part, read in _prefetch(executor, source, plan, todo):
                rows, skipped = _write(out, part, plan, read, encoder, device, batch_size)
                n_rows, n_skipped = n_rows + rows, n_skipped + skipped
                bar.update(plan.part_range(part)[1] - plan.part_range(part)[0])
    finally:
        if executor is not None:
            executor.shutdown(cancel_futures=True)
    _log_rank(out, rank, world_size, todo, started)
    complete = finish_if_complete(out, plan)
    return ArchiveRun(out, rank, world_size, todo, done, n_rows, n_skipped, complete, time.perf_counter() - started)


def _log_rank(out: Path, rank: int, world_size: int, parts: list[int], started: float) -> None:
    """Who computed what, when: outside the parts, which stay free of hosts, ranks and times."""
    log = {
        "rank": rank,
        "world_size": world_size,
        "parts": parts,
        "host": platform.node(),
        "pid": os.getpid(),
        "python": platform.python_version(),
        "seconds": round(time.perf_counter() - started, 3),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(
        out / "_runs" / f"rank-{rank:05d}-of-{world_size:05d}-{os.getpid()}.json", json.dumps(log, indent=1)
    )


def _device_worker(args: tuple[Any, ...]) -> dict[str, Any]:
    source, out, plan, model, device, rank, world_size, workers, batch_size = args
    from ..benchmark.models import resolve_model

    encoder = resolve_model(model).encoder.to(device)
    run = _run(source, out, plan, encoder, rank, world_size, workers, device, batch_size, False, time.perf_counter())
    return {
        "computed": run.computed,
        "already_done": run.already_done,
        "n_rows": run.n_rows,
        "n_skipped": run.n_skipped,
    }


def _on_devices(
    source: Source,
    out: Path,
    plan: JobPlan,
    model: Any,
    devices: list[str],
    rank: int,
    world_size: int,
    workers: int,
    batch_size: int | None,
    started: float,
) -> ArchiveRun:
    """One process per device; device ``k`` of run ``rank`` is rank ``rank * len(devices) + k``."""
    import multiprocessing

    n = len(devices)
    jobs = [
        (source, out, plan, model, device, rank * n + k, world_size * n, workers, batch_size)
        for k, device in enumerate(devices)
    ]
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_device_worker, jobs))
    complete = finish_if_complete(out, plan)
    computed = sorted(p for r in results for p in r["computed"])
    done = sorted(p for r in results for p in r["already_done"])
    return ArchiveRun(
        out,
        rank,
        world_size,
        computed,
        done,
        sum(r["n_rows"] for r in results),
        sum(r["n_skipped"] for r in results),
        complete,
        time.perf_counter() - started,
    )
