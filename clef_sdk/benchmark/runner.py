"""``run_benchmark``: every model on every task under every protocol, with a random-init baseline per size.

Each (model, task, protocol) result is saved under ``output/cells/`` as soon as it is computed and embeddings
under ``output/embeddings/`` a chunk at a time, so an interrupted run resumes where it stopped and a rerun with one
more model computes only that model. The test split is used once, for the reported metrics.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._version import __version__
from ..datasets.base import Dataset, TaskData
from ..datasets.base import open as open_dataset
from ..embedding import embed
from ..files import atomic_write_text
from ..models import ClefEncoder
from ..probes.metrics import bootstrap_metrics
from ..progress import progress_disabled
from .cache import EmbeddingCache
from .models import RANDOM_INIT, BenchmarkModel, resolve_model
from .protocols import BenchmarkProtocol, Part, TaskSplits, resolve_protocol
from .results import RESULT_COLUMNS, BenchmarkResults

__all__ = ["parse_task", "run_benchmark", "task_splits"]


def parse_task(spec: str) -> tuple[str, str]:
    """``"ptbxl:superdiagnostic"`` -> ``("ptbxl", "superdiagnostic")``."""
    dataset, sep, task = spec.partition(":")
    if not sep or not dataset.strip() or not task.strip():
        raise ValueError(f"a task is DATASET:TASK, e.g. ptbxl:superdiagnostic; got {spec!r}")
    return dataset.strip().lower(), task.strip()


def _part(data: TaskData, name: str, labels: list[str]) -> Part:
    mask = (data.split == name).to_numpy()
    y = data.y.to_numpy()[mask]
    return Part(
        X=[x for x, keep in zip(data.X, mask) if keep],
        y=y.astype(np.int64) if labels else y,
        groups=data.groups.to_numpy()[mask].astype(str),
        ids=[str(i) for i in data.y.index[mask]],
    )


def task_splits(dataset: Dataset, task: str, lead: str | int | None) -> TaskSplits:
    """A dataset's task cut into its train, val and test parts (each must be non-empty)."""
    data = dataset.task(task, lead=lead)
    labels = [str(c) for c in data.y.columns] if isinstance(data.y, pd.DataFrame) else []
    parts = {name: _part(data, name, labels) for name in ("train", "val", "test")}
    empty = [name for name, part in parts.items() if not part.ids]
    if empty:
        raise ValueError(
            f"{dataset.name}:{task} has no {' or '.join(empty)} records under {dataset.root}: a benchmark needs all "
            "three splits (is this a partial copy of the dataset?)"
        )
    kind = dataset.tasks[task].kind
    dropped: list[str] = []
    if labels:  # a label without positives (or negatives) in some part can be neither fitted nor scored
        usable = np.ones(len(labels), dtype=bool)
        for part in parts.values():
            usable &= (part.y.max(axis=0) == 1) & (part.y.min(axis=0) == 0)
        dropped = [label for label, keep in zip(labels, usable) if not keep]
        if not usable.any():
            raise ValueError(f"{dataset.name}:{task}: no label has positives and negatives in every split")
        for part in parts.values():
            part.y = part.y[:, usable]
        labels = [label for label, keep in zip(labels, usable) if keep]
    return TaskSplits(task, kind, parts["train"], parts["val"], parts["test"], labels, dropped)


def _models(
    specs: Sequence[str | os.PathLike[str] | ClefEncoder], random_baseline: bool, seed: int
) -> list[BenchmarkModel]:
    models = [resolve_model(spec, seed=seed) for spec in specs]
    if random_baseline:
        have = {m.size for m in models if m.random_init}
        for size in dict.fromkeys(m.size for m in models if not m.random_init):
            if size not in have:
                models.append(resolve_model(f"{RANDOM_INIT}{size}", seed=seed))
    unique: dict[str, BenchmarkModel] = {}
    for model in models:
        unique.setdefault(model.key, model)  # the same weights twice are benchmarked once
    return list(unique.values())


def _metric_rows(
    model: BenchmarkModel,
    task_id: str,
    protocol: str,
    splits: TaskSplits,
    values: Any,
    classes: Any,
    n_bootstrap: int,
    seed: int,
    seconds: float,
) -> list[dict[str, Any]]:
    report = bootstrap_metrics(
        splits.test.y,
        values,
        task=splits.kind,
        groups=splits.test.groups,
        n_bootstrap=n_bootstrap,
        random_state=seed,
        classes=classes,
    )
    n_patients = len(set(splits.test.groups))
    return [
        {
            "model": model.label,
            "task": task_id,
            "protocol": protocol,
            "metric": metric,
            "estimate": entry["estimate"],
            "ci_low": entry["ci_low"],
            "ci_high": entry["ci_high"],
            "n_test": len(splits.test.ids),
            "n_test_patients": n_patients,
            "kind": splits.kind,
            "seconds": round(seconds, 2),
        }
        for metric, entry in report.items()
    ]


def run_benchmark(
    models: Sequence[str | os.PathLike[str] | ClefEncoder],
    tasks: Sequence[str],
    roots: Mapping[str, str | os.PathLike[str]],
    *,
    output: str | os.PathLike[str],
    lead: str | int | None = None,
    fs: Mapping[str, float] | None = None,
    protocols: Sequence[str | BenchmarkProtocol] = ("probe",),
    random_baseline: bool = True,
    seed: int = 0,
    n_bootstrap: int = 1000,
    batch_size: int | None = None,
    device: str | None = None,
    progress: bool | None = None,
) -> BenchmarkResults:
    """Benchmark CLEF models on standard tasks with their official (or pinned) splits.

    Args:
        models: names (``"small"``), weights paths, ``hf-hub:`` ids, encoders, or ``"random-init:SIZE"``.
        tasks: ``"DATASET:TASK"`` ids, e.g. ``"ptbxl:superdiagnostic"``, ``"mitdb:pvc"``.
        roots: the local folder of each dataset named in ``tasks``.
        output: the results folder (an interrupted run there is resumed).
        lead: the lead every task uses (a name such as ``"I"``, or a 0-based index); default each dataset's own.
        fs: rates for datasets published at several (``{"ptbxl": 100}``); default the dataset's first.
        protocols: ``"probe"`` and/or protocol objects (``clef_sdk.train.FineTuneProtocol()``).
        random_baseline: add ``clef.build(size, seed=seed)`` for every model size used.
        seed: the random-init weights' seed and the protocols' seed.
        n_bootstrap: bootstrap resamples (by patient) of each metric's interval.
        batch_size: windows per forward pass when embedding.
        device: the device for embedding (default CUDA when available).
        progress: show progress bars; ``None``: as [`clef_sdk.set_progress`][clef_sdk.set_progress] says, by default where stderr is a
            terminal.

    Returns:
        [`BenchmarkResults`][clef_sdk.benchmark.results.BenchmarkResults], also written to ``output`` as ``results.csv``,
        ``results.json`` (with the protocol: SDK version, each model's weights digest and file SHA-256 or Hub
        commit, lead, seeds, split sizes) and ``results.md``.
    """
    from tqdm.auto import tqdm

    if not models or not tasks:
        raise ValueError("pass at least one model and one task")
    task_ids = [parse_task(spec) for spec in tasks]
    folders = {name.lower(): folder for name, folder in roots.items()}
    missing = sorted({name for name, _ in task_ids} - set(folders))
    if missing:
        raise ValueError(f"no root folder for {', '.join(missing)}: pass roots={{'{missing[0]}': '/path/to/it'}}")
    chosen = [resolve_protocol(p, seed) for p in protocols]
    out = Path(output)
    rates = {k.lower(): float(v) for k, v in (fs or {}).items()}
    datasets = {
        name: open_dataset(name, folders[name], fs=rates.get(name)) for name in dict.fromkeys(n for n, _ in task_ids)
    }
    benchmark_models = _models(models, random_baseline, seed)
    splits = {(d, t): task_splits(datasets[d], t, lead) for d, t in task_ids}

    rows: list[dict[str, Any]] = []
    cells = [(m, dt, p) for m in benchmark_models for dt in splits for p in chosen]
    bar = tqdm(total=len(cells), desc="benchmark", unit="cell", disable=progress_disabled(progress))
    for model, (dataset_name, task), protocol in cells:
        dataset, task_split = datasets[dataset_name], splits[(dataset_name, task)]
        task_id = f"{dataset_name}:{task}"
        shown_lead = dataset.default_lead if lead is None else lead
        cell_path = (
            out / "cells" / f"{model.key}__{dataset_name}-{task}-{shown_lead}-{dataset.fs:g}__{protocol.name}.json"
        )
        params = protocol.params()
        if cell_path.is_file():
            saved = json.loads(cell_path.read_text())
            if saved.get("params") == params and saved.get("n_bootstrap") == n_bootstrap:
                rows.extend(saved["rows"])
                bar.update()
                continue
        bar.set_postfix_str(f"{model.label} · {task_id} · {protocol.name}")
        started = time.perf_counter()
        if protocol.needs_embeddings:
            _attach_embeddings(out, model, dataset, shown_lead, task_split, batch_size, device, progress)
        scores = protocol.scores(model, task_split)
        cell_rows = _metric_rows(
            model,
            task_id,
            protocol.name,
            task_split,
            scores.values,
            scores.classes,
            n_bootstrap,
            seed,
            time.perf_counter() - started,
        )
        atomic_write_text(
            cell_path,
            json.dumps(
                {"params": params, "n_bootstrap": n_bootstrap, "rows": cell_rows, "notes": scores.notes}, default=str
            ),
        )
        rows.extend(cell_rows)
        bar.update()
    bar.close()

    record = _protocol_record(benchmark_models, datasets, splits, chosen, lead, seed, n_bootstrap)
    results = BenchmarkResults(pd.DataFrame(rows, columns=list(RESULT_COLUMNS)), record)
    results.write(out)
    return results


def _attach_embeddings(
    out: Path,
    model: BenchmarkModel,
    dataset: Dataset,
    lead: str | int,
    task: TaskSplits,
    batch_size: int | None,
    device: str | None,
    progress: bool | None,
) -> None:
    from tqdm.auto import tqdm

    manifest = {
        "weights_sha256": model.identity["weights_sha256"],
        "dataset": dataset.name,
        "lead": str(lead),
        "fs": dataset.fs,
        "pooling": "mean",
        "clef_sdk": __version__,
    }
    cache = EmbeddingCache(out / "embeddings" / model.key / f"{dataset.name}-{lead}-{dataset.fs:g}", manifest)
    parts = (task.train, task.val, task.test)
    ids = [i for part in parts for i in part.ids]
    signals = [x for part in parts for x in part.X]
    with tqdm(
        total=len(ids), desc=f"embed {model.label}", unit="rec", disable=progress_disabled(progress), leave=False
    ) as bar:
        values = cache.embeddings(
            ids,
            signals,
            lambda chunk: np.asarray(embed(chunk, fs=None, model=model.encoder, batch_size=batch_size, device=device)),
            progress=bar.update,
        )
    start = 0
    for part in parts:
        part.embeddings = values[start : start + len(part.ids)]
        start += len(part.ids)


def _protocol_record(
    models: list[BenchmarkModel],
    datasets: dict[str, Dataset],
    splits: dict[tuple[str, str], TaskSplits],
    protocols: list[BenchmarkProtocol],
    lead: str | int | None,
    seed: int,
    n_bootstrap: int,
) -> dict[str, Any]:
    return {
        "clef_sdk": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "models": {m.label: {"spec": m.spec, **m.identity} for m in models},
        "tasks": {
            f"{d}:{t}": {
                "kind": s.kind,
                "dataset": datasets[d].title,
                "split": datasets[d].split_kind,
                "lead": str(datasets[d].default_lead if lead is None else lead),
                "fs": datasets[d].fs,
                "labels": s.labels,
                "labels_dropped": s.dropped_labels,
                "sizes": {
                    name: {"examples": len(part.ids), "patients": len(set(part.groups))}
                    for name, part in (("train", s.train), ("val", s.val), ("test", s.test))
                },
            }
            for (d, t), s in splits.items()
        },
        "protocols": [p.params() for p in protocols],
        "seed": seed,
        "bootstrap": {"resamples": n_bootstrap, "unit": "patient", "interval": "95% percentile"},
    }
