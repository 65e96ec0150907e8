"""Run an archive job on a Dask cluster: one task per part (``pip install "clef-sdk[dask]"``).

>>> from distributed import Client
>>> client = Client("tcp://scheduler:8786")          # or LocalCluster(), or dask-jobqueue's SLURMCluster
>>> embed_archive_dask(client, "mimic-iv-ecg/files", "embeddings/", model="small")

Dask rather than Ray: it is pure Python and small, it runs on the clusters research groups already have
(``dask-jobqueue`` for SLURM, PBS, LSF; Kubernetes; a laptop's ``LocalCluster``), and a part is exactly one of
its tasks: the scheduler retries a task whose worker died, and a part is written atomically, so a retried part
gives the same bytes. The plan, the parts and the completion files are those of [`clef_sdk.embed_archive`][clef_sdk.embed_archive],
so a job can be started on Dask and finished by ``clef embed-archive`` (or the reverse).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._optional import require
from ..models import ClefEncoder
from .parts import part_done
from .plan import JobPlan
from .runner import ArchiveRun, finish_if_complete, job_options, prepare_job, run_part
from .sources import Source

__all__ = ["embed_archive_dask"]

_ENCODERS: dict[str, ClefEncoder] = {}  # per worker process: the model is loaded once, not once per part


def _part_task(
    source: Source, plan: JobPlan, model: Any, output: str, part: int, batch_size: int | None
) -> tuple[int, int, int]:
    from ..benchmark.models import resolve_model

    key = str(plan.model["weights_sha256"])
    encoder = _ENCODERS.get(key)
    if encoder is None:
        encoder = _ENCODERS[key] = resolve_model(model).encoder
    if part_done(Path(output), part, plan.options["format"]):  # done by an earlier run or a retried task
        return part, 0, 0
    rows, skipped = run_part(source, plan, encoder, Path(output), part, batch_size=batch_size)
    return part, rows, skipped


def embed_archive_dask(
    client: Any,
    source: object,
    output: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | ClefEncoder = "medium",
    leads: str | Sequence[str] | None = None,
    pooling: str = "mean",
    per_window: bool = False,
    quality: str | None = None,
    dtype: str = "float32",
    format: str = "parquet",
    shard_size: int = 1000,
    batch_size: int | None = None,
    precision: str = "fp32",
    stride_seconds: float | None = None,
    tail: str = "drop",
) -> ArchiveRun:
    """[`clef_sdk.embed_archive`][clef_sdk.embed_archive] with the parts as tasks of a ``distributed.Client``.

    Args:
        client: a connected ``distributed.Client``.
        source: as [`clef_sdk.embed_archive`][clef_sdk.embed_archive] (the workers must see the same paths).
        output: the output folder, on storage every worker can write.
        model: as [`clef_sdk.embed_archive`][clef_sdk.embed_archive] (each worker loads it once).
        leads: as [`clef_sdk.embed_archive`][clef_sdk.embed_archive].
        pooling: as [`clef_sdk.embed_archive`][clef_sdk.embed_archive].
        per_window: as [`clef_sdk.embed_archive`][clef_sdk.embed_archive].
        quality: as [`clef_sdk.embed_archive`][clef_sdk.embed_archive].
        dtype: as [`clef_sdk.embed_archive`][clef_sdk.embed_archive].
        format: as [`clef_sdk.embed_archive`][clef_sdk.embed_archive].
        shard_size: records per part (per task).
        batch_size: windows per forward pass on the workers.
        precision: as [`clef_sdk.embed_archive`][clef_sdk.embed_archive].
        stride_seconds: as [`clef_sdk.embed_archive`][clef_sdk.embed_archive].
        tail: as [`clef_sdk.embed_archive`][clef_sdk.embed_archive].
    """
    import time

    require("distributed", "embed_archive_dask")
    started = time.perf_counter()
    options = job_options(pooling, per_window, quality, dtype, format, precision, stride_seconds, tail)
    src, out, plan, _ = prepare_job(source, output, model, leads, options, shard_size)
    todo = [part for part in range(plan.n_parts) if not part_done(out, part, format)]
    done = [part for part in range(plan.n_parts) if part not in todo]
    futures = client.map(
        _part_task,
        [src] * len(todo),
        [plan] * len(todo),
        [model] * len(todo),
        [str(out)] * len(todo),
        todo,
        [batch_size] * len(todo),
        pure=False,
    )
    results = client.gather(futures)
    complete = finish_if_complete(out, plan)
    return ArchiveRun(
        out,
        0,
        1,
        todo,
        done,
        sum(r[1] for r in results),
        sum(r[2] for r in results),
        complete,
        time.perf_counter() - started,
    )
