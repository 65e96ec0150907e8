"""``read_embeddings``: an archive job's output as a table of ids and one ``(n, dim)`` array."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import OutputError
from .parts import read_part
from .plan import PLAN_FILE

__all__ = ["SUCCESS_FILE", "read_embeddings"]

SUCCESS_FILE = "_SUCCESS"


def read_embeddings(
    output: str | os.PathLike[str], *, allow_incomplete: bool = False
) -> tuple[pd.DataFrame, np.ndarray]:
    """The rows of every part, in part order: ``(table, embeddings)``.

    Args:
        output: the folder ``clef.embed_archive`` / ``clef embed-archive`` wrote.
        allow_incomplete: read the parts written so far of a job that is not finished (default: refuse, as its
            table would silently lack records).

    Returns:
        ``table``: a pandas DataFrame of the id columns (``record``, ``lead``, ``n_windows``, ``n_used``, ``fs``,
        and per window ``window``, ``start_s``, ``usable``); ``embeddings``: ``(n_rows, dim)`` float32 (or float16),
        row ``i`` belonging to ``table.iloc[i]`` (one copy of the parts' buffers, never one per row).
    """
    folder = Path(output)
    plan_path = folder / PLAN_FILE
    if not plan_path.is_file():
        raise OutputError(f"{folder} is not an embed-archive output (no _plan.json)")
    if not (folder / SUCCESS_FILE).is_file() and not allow_incomplete:
        raise OutputError(
            f"{folder} is an unfinished job (no {SUCCESS_FILE}): rerun it to finish, or pass allow_incomplete=True"
        )
    plan = json.loads(plan_path.read_text())
    suffix = ".npy" if plan["options"].get("format") == "npy" else ".parquet"
    parts = sorted(folder.glob(f"part-*{suffix}"))
    tables, arrays = [], []
    for part in parts:
        ids, values = read_part(part)
        tables.append(ids)
        arrays.append(values)
    if not parts:
        return pd.DataFrame(), np.empty((0, 0), dtype=np.float32)
    return pd.concat(tables, ignore_index=True), np.concatenate(arrays)
