"""``clef train prepare``: WFDB records -> a memory-mapped store of band-passed 10 s windows + a metadata table.

Store layout (a folder)::

    windows.npy     (n_windows, n_leads, 5000) float16 or float32, mV, 500 Hz, band-passed (no z-score);
                    NaN rows where a window has no usable signal in that lead
    available.npy   (n_windows, n_leads) bool: the lead holds usable signal in that window
    records.csv     one row per window, aligned with windows.npy: path, window, start_s, fs, age, sex,
                    score2_risk (percent, NaN if unknown), missing_rate, and the metadata CSV's other columns
    skipped.csv     path, reason: every record left out (unreadable, too short, flat, NaN-only, no lead)
    fingerprint.json
                    the records it was made from: each one's key, its header's sha256 and its signal files'
                    size and modification time (see `_fingerprint`)
    store.json      format, version, leads, dtype, counts, the options used and the fingerprint's sha256

Each window is the inference preprocessing minus the z-score ([`clef_sdk.preprocessing.filter_windows`][clef_sdk.preprocessing.filter_windows]
after [`resample_to_target`][clef_sdk.resampling.resample_to_target]), which comes after augmentation at training time.
The work is split in shards of records processed by worker processes; finished shards are kept in
``STORE/.work``, so an interrupted run resumes where it stopped, and the final files are assembled only when
every shard is done: a resumed job gives the same bytes as an uninterrupted one.

A rerun checks that the source is the one the store (or the unfinished job) was made from: the same options
and the same fingerprint of the records. An identical source returns the finished store or resumes the job; a
changed one (records added, removed or modified, even at the same count, or another metadata CSV) is refused
with what changed, so a store never describes records it was not made from and shards of two sources are never
mixed. Every file is written through [`clef_sdk.files.atomic_path`][clef_sdk.files.atomic_path]; ``store.json``, written last, marks the
store finished.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from functools import cached_property
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._version import __version__
from ..constants import TARGET_FS, WINDOW_SAMPLES
from ..files import atomic_path, sha256_file
from ..inputs import check_fs
from ..io import find_records, parse_leads, read_record
from ..preprocessing import filter_windows
from ..progress import progress_disabled
from ..resampling import resample_to_target, resampled_length
from .fingerprint import (
    FINGERPRINT_FILE,
    FINGERPRINT_FORMAT,
    Fingerprint,
    fingerprint_records,
    fingerprint_sha256,
    job_changes,
    record_changes,
    store_changes,
)
from .score2 import REGIONS, score2

__all__ = ["STORE_FORMAT", "PretrainingStore", "prepare"]

STORE_FORMAT = "clef-sdk/pretraining-store"
STORE_VERSION = 1
DEFAULT_SHARD_SIZE = 256
WindowsMode = Literal["first", "all"]
_DTYPES = ("float16", "float32")
_AGE_POLICIES = ("clip", "nan", "extrapolate")
_STORE_FILES = ("windows.npy", "available.npy", "records.csv", "skipped.csv", FINGERPRINT_FILE, "store.json")


@dataclass(frozen=True)
class _Job:
    source: str
    leads: tuple[str, ...]
    dtype: str
    windows: str
    records: tuple[str, ...]
    shard_size: int

    @property
    def n_shards(self) -> int:
        return -(-len(self.records) // self.shard_size)

    def shards(self) -> list[tuple[str, ...]]:
        return [self.records[i : i + self.shard_size] for i in range(0, len(self.records), self.shard_size)]

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "leads": list(self.leads),
            "dtype": self.dtype,
            "windows": self.windows,
            "shard_size": self.shard_size,
            "records": list(self.records),
        }


def _process_record(job: _Job, record: str) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]], str | None]:
    """One record -> (windows (k, n_leads, 5000), usable (k, n_leads), rows, None) or (..., reason) when skipped."""
    empty: tuple[np.ndarray, np.ndarray, list[dict[str, Any]]] = (
        np.empty((0, len(job.leads), WINDOW_SAMPLES), dtype=job.dtype),
        np.empty((0, len(job.leads)), bool),
        [],
    )
    try:
        data = read_record(job.source, record, job.leads)
    except Exception as exc:
        first_line = str(exc).strip().partition("\n")[0]
        return (*empty, f"unreadable: {type(exc).__name__}: {first_line}"[:300])
    if not data.present.any():
        return (*empty, f"none of the requested leads {','.join(job.leads)} (the record has {','.join(data.names)})")
    try:
        fs = check_fs(data.fs)
    except (TypeError, ValueError) as exc:
        return (*empty, f"sampling rate: {exc}")
    n_samples = data.signals.shape[1]
    length = resampled_length(n_samples, fs)
    if length < WINDOW_SAMPLES:
        return (*empty, f"too short: {n_samples / fs:.2f} s, a window needs 10 s")
    starts = [0] if job.windows == "first" else list(range(0, length - WINDOW_SAMPLES + 1, WINDOW_SAMPLES))
    raw = np.full((len(starts), len(job.leads), WINDOW_SAMPLES), np.nan)
    for lead in np.flatnonzero(data.present):
        signal = data.signals[lead]
        if np.isnan(signal).all():
            continue
        resampled = resample_to_target(signal, fs) if fs != TARGET_FS else signal
        for k, start in enumerate(starts):
            raw[k, lead] = resampled[start : start + WINDOW_SAMPLES]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN leads: their max and min are NaN
        usable = np.nanmax(raw, axis=-1) > np.nanmin(raw, axis=-1)  # neither NaN-only nor constant
    keep = usable.any(axis=1)
    if not keep.any():
        return (*empty, "flat or NaN-only in every requested lead")
    out = np.full((int(keep.sum()), len(job.leads), WINDOW_SAMPLES), np.nan, dtype=job.dtype)
    usable = usable[keep]
    out[usable] = filter_windows(raw[keep][usable]).astype(job.dtype)
    notes = list(data.notes)
    if not keep.all():
        notes.append(f"{int((~keep).sum())} window(s) flat or NaN-only in every lead, left out")
    rows = [
        {
            "path": record,
            "window": int(k),
            "start_s": starts[k] / TARGET_FS,
            "fs": fs,
            "age": data.age,
            "sex": data.sex or "",
            "notes": "; ".join(notes),
        }
        for k in np.flatnonzero(keep)
    ]
    return out, usable, rows, None


def _shard_paths(work: Path, index: int) -> tuple[Path, Path]:
    return work / f"shard_{index:06d}.npz", work / f"shard_{index:06d}.json"


def _run_shard(job: _Job, records: tuple[str, ...], work: Path, index: int) -> int:
    """Process one shard's ``records`` and write it atomically (JSON first, arrays last: the .npz marks it done).
    ``job`` carries the settings only (not the full record list, which workers need not receive)."""
    arrays, masks, rows, skipped = [], [], [], []
    for record in records:
        windows, usable, record_rows, reason = _process_record(job, record)
        if reason is not None:
            skipped.append({"path": record, "reason": reason})
            continue
        arrays.append(windows)
        masks.append(usable)
        rows.extend(record_rows)
    npz_path, json_path = _shard_paths(work, index)
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps({"rows": rows, "skipped": skipped}))
    with atomic_path(npz_path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                windows=np.concatenate(arrays) if arrays else np.empty((0, len(job.leads), WINDOW_SAMPLES), job.dtype),
                usable=np.concatenate(masks) if masks else np.empty((0, len(job.leads)), bool),
            )
    return len(records)


def prepare(
    source: str | os.PathLike[str],
    store: str | os.PathLike[str],
    *,
    metadata: str | os.PathLike[str] | None = None,
    leads: str | Sequence[str] | None = None,
    workers: int | None = None,
    dtype: str = "float16",
    windows: WindowsMode = "first",
    region: str = "moderate",
    age_policy: str = "clip",
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: bool | None = None,
) -> PretrainingStore:
    """Prepare a pretraining store from a folder of WFDB records (see the module docstring for the layout).

    Args:
        source: folder searched recursively for ``.hea`` headers.
        store: output folder (created; an unfinished job there is resumed, a finished store returned, when made
            from the same records and options; one made from others is refused: see the module docstring).
        metadata: CSV in the authors' schema: column ``path`` (record path relative to ``source`` without
            extension), ``score2_risk`` (percent), optional ``rate_meta`` (missing rate) and any other columns
            (kept). Without it, SCORE2 is computed from the headers' age and sex, the rest imputed.
        leads: lead names to store (``"I,II,V1"``); default the 12 standard leads, matched by name.
        workers: worker processes (default: the number of CPUs; 1 works in this process).
        dtype: ``"float16"`` (default, half the disk) or ``"float32"``.
        windows: ``"first"`` 10 s of each record (as in the authors' pretraining) or ``"all"`` consecutive ones.
        region: ESC risk region for SCORE2 from headers (``low``, ``moderate``, ``high``, ``very_high``).
        age_policy: ages outside 40-89 when computing SCORE2 from headers: ``"clip"`` (default), ``"nan"`` or
            ``"extrapolate"`` (see [`clef_sdk.train.score2.score2`][clef_sdk.train.score2.score2]).
        shard_size: records per unit of work and of resumption.
        progress: show a progress bar (default: when writing to a terminal).
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}, got {dtype!r}")
    if windows not in ("first", "all"):
        raise ValueError(f"windows must be 'first' or 'all', got {windows!r}")
    if region not in REGIONS:
        raise ValueError(f"region must be one of {REGIONS}, got {region!r}")
    if age_policy not in _AGE_POLICIES:
        raise ValueError(f"age_policy must be one of {_AGE_POLICIES}, got {age_policy!r}")
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    source_path = Path(source).resolve()
    records = find_records(source_path)
    if not records:
        raise FileNotFoundError(f"no WFDB records (.hea files) under {source_path}")
    store_path = Path(store)
    metadata_path = Path(metadata).resolve() if metadata else None
    if metadata_path is not None and not metadata_path.is_file():
        raise FileNotFoundError(f"metadata CSV not found: {metadata_path}")
    options = {
        "metadata": str(metadata_path) if metadata_path else None,
        "region": region,
        "age_policy": age_policy,
    }
    job = _Job(str(source_path), parse_leads(leads), dtype, windows, tuple(records), shard_size)
    fingerprint = fingerprint_records(source_path, job.records)
    # the metadata CSV is read only when the store is finalized: its content belongs to the finished store's
    # summary, not to the job's (a resumed job reads the CSV as it is then)
    summary = {
        **_job_summary(job, options),
        "metadata_sha256": sha256_file(metadata_path) if metadata_path else None,
        "source_fingerprint": fingerprint_sha256(fingerprint),
    }
    if (store_path / "store.json").is_file():
        existing = PretrainingStore(store_path)
        stored = existing.info.get("job")
        if stored != summary:
            changes = store_changes(stored if isinstance(stored, dict) else {}, summary, store_path, fingerprint)
            raise FileExistsError(
                f"{store_path} already holds a finished store made with other inputs or options: "
                f"{'; '.join(changes)}. It does not hold the records now under {source_path}: prepare into a new "
                f"output folder, or delete {store_path} (prepare has no overwrite option) and rerun to rebuild it"
            )
        return existing
    work = store_path / ".work"
    work.mkdir(parents=True, exist_ok=True)
    job_file = work / "job.json"
    state = {"job": job.to_json(), "options": options, "fingerprint": fingerprint}
    if job_file.is_file():
        try:
            saved = json.loads(job_file.read_text())
        except (OSError, ValueError):
            saved = None
        if saved != state:
            changes = job_changes(saved, state)
            raise FileExistsError(
                f"{store_path} holds an unfinished job with other inputs or options: {'; '.join(changes)}. "
                f"Its finished shards cannot be mixed with these: rerun with the records and options it was started "
                f"with to resume it, or prepare into a new output folder, or delete {work} to start afresh there"
            )
    else:
        with atomic_path(job_file) as tmp:
            tmp.write_text(json.dumps(state))
    todo = [i for i in range(job.n_shards) if not all(p.is_file() for p in _shard_paths(work, i))]
    _run_shards(job, work, todo, workers, progress)
    if todo:  # a record changed while the shards were made may be in them as it was, or half of each
        now = fingerprint_records(source_path, job.records)
        if now != fingerprint:
            changes = record_changes(fingerprint, now)
            raise RuntimeError(
                f"the source records under {source_path} changed while they were being prepared: "
                f"{'; '.join(changes)}. The shards made may hold them as they were: leave the records alone while "
                f"prepare runs, and delete {work} (or choose a new output folder) and rerun"
            )
    _finalize(job, options, summary, fingerprint, work, store_path)
    return PretrainingStore(store_path)


def _run_shards(job: _Job, work: Path, todo: list[int], workers: int | None, progress: bool | None) -> None:
    from tqdm.auto import tqdm

    shards = job.shards()
    settings = replace(job, records=())
    total = sum(len(shards[i]) for i in todo)
    bar = tqdm(
        total=len(job.records),
        initial=len(job.records) - total,
        unit="record",
        desc="prepare",
        disable=progress_disabled(progress),
    )
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    try:
        if workers == 1:
            for index in todo:
                bar.update(_run_shard(settings, shards[index], work, index))
            return
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(_run_shard, settings, shards[index], work, index) for index in todo]
            for future in as_completed(futures):
                bar.update(future.result())
    finally:
        bar.close()


def _job_summary(job: _Job, options: dict[str, Any]) -> dict[str, Any]:
    return {
        "source": job.source,
        "leads": list(job.leads),
        "dtype": job.dtype,
        "windows": job.windows,
        "n_records": len(job.records),
        **options,
    }


def _finalize(
    job: _Job, options: dict[str, Any], summary: dict[str, Any], fingerprint: Fingerprint, work: Path, store_path: Path
) -> None:
    import pandas as pd

    for name in _STORE_FILES:  # temporary files of an earlier _finalize killed midway (windows.npy's are large)
        for stale in store_path.glob(f".{name}.*.tmp"):
            stale.unlink(missing_ok=True)

    shards = range(job.n_shards)
    rows: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    counts = []
    for index in shards:
        shard_file = _shard_paths(work, index)[1]
        try:
            content = json.loads(shard_file.read_text())
            rows.extend(content["rows"])
        except (ValueError, RecursionError, KeyError, TypeError) as exc:  # written atomically: damaged since
            raise ValueError(
                f"{shard_file} is damaged ({type(exc).__name__}); delete it and run prepare again to redo that shard"
            ) from None
        skipped.extend(content["skipped"])
        counts.append(len(content["rows"]))
    total = sum(counts)
    if total == 0:
        reasons = "; ".join(f"{s['path']}: {s['reason']}" for s in skipped[:5])
        raise ValueError(f"no usable record under {job.source} (all {len(skipped)} skipped: {reasons} ...)")
    table = _attach_risk(pd.DataFrame(rows), options)  # first: a bad metadata CSV fails before the big writes
    shape = (total, len(job.leads), WINDOW_SAMPLES)
    with atomic_path(store_path / "windows.npy") as windows_tmp, atomic_path(store_path / "available.npy") as mask_tmp:
        windows = np.lib.format.open_memmap(windows_tmp, mode="w+", dtype=job.dtype, shape=shape)
        available = np.lib.format.open_memmap(mask_tmp, mode="w+", dtype=bool, shape=shape[:2])
        offset = 0
        for index, count in zip(shards, counts):
            with np.load(_shard_paths(work, index)[0]) as shard:
                windows[offset : offset + count] = shard["windows"]
                available[offset : offset + count] = shard["usable"]
            offset += count
        windows.flush()
        available.flush()
        del windows, available
    with atomic_path(store_path / "records.csv") as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(store_path / "skipped.csv") as tmp:
        pd.DataFrame(skipped, columns=["path", "reason"]).to_csv(tmp, index=False)
    with atomic_path(store_path / FINGERPRINT_FILE) as tmp:
        content = {"format": FINGERPRINT_FORMAT, "sha256": summary["source_fingerprint"], "records": fingerprint}
        tmp.write_text(json.dumps(content, sort_keys=True, separators=(",", ":")) + "\n")
    info = {
        "format": STORE_FORMAT,
        "version": STORE_VERSION,
        "n_windows": total,
        "n_records": int(table["path"].nunique()),
        "n_skipped": len(skipped),
        "leads": list(job.leads),
        "dtype": job.dtype,
        "fs_hz": TARGET_FS,
        "window_samples": WINDOW_SAMPLES,
        "units": "mV",
        "preprocessing": "clef_sdk.preprocessing: resample_to_target, then filter_windows (NaN fill, exact band-pass); no z-score",
        "risk_available": int(np.isfinite(table["score2_risk"]).sum()),
        "job": summary,
        "clef_sdk_version": __version__,
    }
    with atomic_path(store_path / "store.json") as tmp:
        tmp.write_text(json.dumps(info, indent=1, sort_keys=True) + "\n")
    shutil.rmtree(work)


def _attach_risk(table: Any, options: dict[str, Any]) -> Any:
    """Add score2_risk and missing_rate: from the metadata CSV, or computed from header age and sex."""
    import pandas as pd

    if options["metadata"] is None:
        risk, missing_rate = score2(
            table["age"],
            table["sex"].replace("", None),
            np.nan,
            np.nan,
            np.nan,
            np.nan,
            region=options["region"],
            impute=True,
            out_of_range=options["age_policy"],
        )
        return table.assign(score2_risk=risk, missing_rate=missing_rate)
    meta = pd.read_csv(options["metadata"], dtype={"path": str})
    for column in ("path", "score2_risk"):
        if column not in meta.columns:
            raise ValueError(
                f"the metadata CSV {options['metadata']} has no {column!r} column; it needs 'path' (record path "
                "relative to the source folder, without extension) and 'score2_risk' (percent); omit --metadata to "
                "compute SCORE2 from the headers' age and sex"
            )
    meta["path"] = meta["path"].str.replace(r"\.(hea|dat|mat)$", "", regex=True)
    duplicated = meta["path"][meta["path"].duplicated()]
    if len(duplicated):
        raise ValueError(f"the metadata CSV lists {len(duplicated)} path(s) twice, e.g. {duplicated.iloc[0]!r}")
    meta = meta.set_index("path")
    risk = pd.to_numeric(meta["score2_risk"], errors="coerce").reindex(table["path"]).to_numpy()
    if "rate_meta" in meta.columns:
        missing_rate = pd.to_numeric(meta["rate_meta"], errors="coerce").reindex(table["path"]).to_numpy()
        missing_rate = np.where(np.isnan(missing_rate), np.where(np.isnan(risk), 1.0, 0.0), missing_rate)
    else:
        missing_rate = np.where(np.isnan(risk), 1.0, 0.0)
    extra = meta.drop(columns=[c for c in ("score2_risk", "rate_meta") if c in meta.columns])
    extra = extra.rename(columns=lambda c: f"csv_{c}" if c in table.columns else c).reindex(table["path"])
    return pd.concat([table.assign(score2_risk=risk, missing_rate=missing_rate), extra.reset_index(drop=True)], axis=1)


class PretrainingStore:
    """A prepared store, opened read-only: ``windows`` is memory-mapped, so many processes can share it.

    ``store.windows`` ``(n_windows, n_leads, 5000)`` mV; ``store.available`` ``(n_windows, n_leads)`` bool;
    ``store.table`` the records.csv rows (pandas); ``store.risk`` and ``store.missing_rate`` ``(n_windows,)``
    float32; ``store.leads``; ``store.info`` the store.json content.
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        info_file = self.path / "store.json"
        if not info_file.is_file():
            hint = (
                " (an unfinished job: rerun `clef train prepare` with the same arguments)"
                if (self.path / ".work").is_dir()
                else ""
            )
            raise FileNotFoundError(f"{self.path} is not a pretraining store: no store.json{hint}")
        try:
            self.info: dict[str, Any] = json.loads(info_file.read_text())
        except (ValueError, RecursionError) as exc:  # JSON and UTF-8 errors are ValueErrors
            raise ValueError(f"{info_file} is corrupt ({type(exc).__name__}); prepare the store again") from None
        if not isinstance(self.info, dict):
            raise ValueError(f"{info_file} is corrupt (not a JSON object); prepare the store again")
        if self.info.get("format") != STORE_FORMAT or self.info.get("version") != STORE_VERSION:
            raise ValueError(
                f"{self.path} is not a clef-sdk pretraining store of version {STORE_VERSION} "
                f"(format {self.info.get('format')!r}, version {self.info.get('version')!r}); prepare it again"
            )
        self.leads: tuple[str, ...] = tuple(self.info["leads"])
        expected = (self.info["n_windows"], len(self.leads), self.info["window_samples"])
        for name, shape, dtype in (("windows", expected, self.info["dtype"]), ("available", expected[:2], "bool")):
            array = self._open(name)
            if array.shape != shape or array.dtype != np.dtype(dtype):
                raise ValueError(
                    f"{self.path / (name + '.npy')} has shape {array.shape} and dtype {array.dtype}, store.json says "
                    f"{shape} {dtype}: the store is damaged; prepare it again"
                )

    def _open(self, name: str) -> np.ndarray:
        file = self.path / f"{name}.npy"
        try:
            return np.load(file, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read {file} ({exc}); the store is damaged: prepare it again") from None

    @cached_property
    def windows(self) -> np.ndarray:
        return self._open("windows")

    @cached_property
    def available(self) -> np.ndarray:
        return np.asarray(self._open("available"))

    @cached_property
    def table(self) -> Any:
        import pandas as pd

        table = pd.read_csv(self.path / "records.csv", dtype={"path": str, "sex": str}, keep_default_na=True)
        if len(table) != len(self):
            raise ValueError(
                f"{self.path / 'records.csv'} has {len(table)} rows for {len(self)} windows; prepare the store again"
            )
        return table

    @cached_property
    def rows_by_record(self) -> dict[str, np.ndarray]:
        """The store's window rows of each record (``records.csv`` ``path``), in store order."""
        grouped: dict[str, list[int]] = {}
        for row, path in enumerate(self.table["path"].astype(str)):
            grouped.setdefault(path, []).append(row)
        return {path: np.asarray(rows) for path, rows in grouped.items()}

    @cached_property
    def risk(self) -> np.ndarray:
        return self.table["score2_risk"].to_numpy(dtype=np.float32)

    @cached_property
    def missing_rate(self) -> np.ndarray:
        return self.table["missing_rate"].to_numpy(dtype=np.float32)

    def __len__(self) -> int:
        return int(self.info["n_windows"])

    def __getstate__(self) -> dict[str, Any]:  # worker processes reopen the memory maps instead of copying them
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        type(self).__init__(self, state["path"])

    def describe(self) -> str:
        """One line for logs and model cards."""
        job = self.info.get("job", {})
        return (
            f"{self.info['n_windows']} windows of {self.info['n_records']} records from {Path(job.get('source', '?')).name}, "
            f"leads {','.join(self.leads)}, SCORE2 for {self.info['risk_available']}"
        )
