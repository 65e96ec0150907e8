"""Output parts of an archive job: ``part-NNNNNN.parquet`` (or ``.npy`` + ``.index.csv``), each written atomically,
with the same bytes whichever rank, process or run wrote it.

Parquet columns: ``record``, ``lead``, (per window: ``window``, ``start_s``, ``usable``), ``n_windows``,
``n_used``, ``fs``, ``embedding`` (a non-null fixed-size list of float32, or float16 on request), sorted by record
and lead (and window). The model and options are in the file's schema metadata under ``clef_sdk``. A part's
skipped records are in ``_part-NNNNNN.skipped.json``, written before the part itself, so a part that exists is
complete with its report.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._optional import require
from ..files import atomic_path, atomic_write_text

__all__ = ["FORMATS", "METADATA_KEY", "part_done", "part_name", "read_part", "report_path", "write_part"]

FORMATS = ("parquet", "npy")
METADATA_KEY = b"clef_sdk"


def part_name(part: int) -> str:
    return f"part-{part:06d}"


def report_path(output: Path, part: int) -> Path:
    """The part's report of skipped records (a leading underscore: Parquet readers skip it)."""
    return output / f"_{part_name(part)}.skipped.json"


def part_done(output: Path, part: int, format: str) -> bool:
    """Whether the part's files are all there (each is written atomically, the data file last)."""
    base = output / part_name(part)
    needed = [report_path(output, part)]
    needed += [Path(f"{base}.parquet")] if format == "parquet" else [Path(f"{base}.index.csv"), Path(f"{base}.npy")]
    return all(path.is_file() for path in needed)


def write_part(
    output: Path,
    part: int,
    ids: pd.DataFrame,
    embeddings: np.ndarray,
    skipped: list[dict[str, str]],
    *,
    format: str,
    metadata: dict[str, Any],
) -> Path:
    """Write one part (atomically: the report, then the index for npy, then the data file) and return its path."""
    base = output / part_name(part)
    for stale in output.glob(f".*{part_name(part)}*.tmp"):  # left by a run killed while writing this part
        stale.unlink(missing_ok=True)
    atomic_write_text(report_path(output, part), json.dumps(skipped, indent=1, sort_keys=True))
    if format == "npy":
        atomic_write_text(Path(f"{base}.index.csv"), ids.to_csv(index=False))
        target = Path(f"{base}.npy")
        with atomic_path(target) as tmp, open(tmp, "wb") as handle:
            np.save(handle, embeddings)
        return target
    pa = require("pyarrow", "writing Parquet parts")
    pq = require("pyarrow.parquet", "writing Parquet parts")
    dim = embeddings.shape[1] if embeddings.ndim == 2 else 0
    value_type = pa.float16() if embeddings.dtype == np.float16 else pa.float32()
    flat = pa.array(np.ascontiguousarray(embeddings).reshape(-1), type=value_type)
    columns = {name: pa.array(ids[name].to_numpy()) for name in ids.columns}
    columns["embedding"] = pa.FixedSizeListArray.from_arrays(flat, dim)
    fields = [pa.field(name, array.type, nullable=False) for name, array in columns.items()]
    schema = pa.schema(fields, metadata={METADATA_KEY: json.dumps(metadata, sort_keys=True).encode()})
    table = pa.Table.from_arrays(list(columns.values()), schema=schema)
    target = Path(f"{base}.parquet")
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp, compression="zstd", write_statistics=True)
    return target


def read_part(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """One part's id columns (pandas) and embeddings ``(n_rows, dim)``, from Parquet or npy + index."""
    path = Path(path)
    if path.suffix == ".npy":
        types = {
            "record": str,
            "lead": str,
            "n_windows": np.int32,
            "n_used": np.int32,
            "fs": np.float64,
            "window": np.int32,
        }
        index = Path(str(path)[: -len(".npy")] + ".index.csv")
        ids = pd.read_csv(index, dtype=types, keep_default_na=False)
        return ids, np.load(path, mmap_mode="r")
    pq = require("pyarrow.parquet", "reading Parquet parts")
    table = pq.read_table(path)
    column = table.column("embedding").combine_chunks()
    dim = column.type.list_size
    values = column.values.to_numpy(zero_copy_only=False).reshape(-1, dim) if len(column) else np.empty((0, dim))
    return table.drop(["embedding"]).to_pandas(), values
