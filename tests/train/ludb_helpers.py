"""Real LUDB records linked into folders of their own, for the pretraining tests."""

from __future__ import annotations

import os
from pathlib import Path

# 24 subjects (ages 11-90, both sexes), 12 leads, 500 Hz, 10 s each.
LUDB_RECORDS = tuple(range(1, 25))


def link_ludb(data_dir: Path, destination: Path, records: tuple[int, ...] = LUDB_RECORDS) -> Path:
    """``destination/data/<n>.hea|.dat`` symlinked to the shared LUDB files (the data set's own layout)."""
    folder = destination / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for record in records:
        for suffix in (".hea", ".dat"):
            target = folder / f"{record}{suffix}"
            if not target.exists():
                os.symlink(data_dir / "ludb" / "data" / f"{record}{suffix}", target)
    return destination
