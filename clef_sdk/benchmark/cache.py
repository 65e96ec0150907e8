"""Embeddings cached per model and dataset, so a rerun or a new model computes only what is missing.

A cache folder holds ``manifest.json`` (the model's identity, the dataset, lead and rate, the SDK version) and
parts ``part-NNNNN.npz`` (``ids`` and ``embeddings``), each written atomically once its chunk is embedded: an
interrupted run loses at most one chunk and never leaves a part that looks complete but is not.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..files import atomic_path, atomic_write_text

__all__ = ["CHUNK", "EmbeddingCache"]

#: examples embedded (and saved) per part
CHUNK = 256


class EmbeddingCache:
    """Embeddings of one model on one dataset view, under ``folder``.

    Args:
        folder: the cache folder (created).
        manifest: what the embeddings are of; a folder written for another manifest is refused, never mixed.
    """

    def __init__(self, folder: str | os.PathLike[str], manifest: dict[str, object]):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / "manifest.json"
        if path.is_file():
            found = json.loads(path.read_text())
            if found != manifest:
                raise ValueError(
                    f"the embedding cache {self.folder} was written for {found}, not {manifest}; "
                    "delete the folder or choose another output folder"
                )
        else:
            atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True))

    def load(self) -> dict[str, np.ndarray]:
        """Every cached embedding, by example id."""
        found: dict[str, np.ndarray] = {}
        for part in sorted(self.folder.glob("part-*.npz")):
            try:
                with np.load(part, allow_pickle=False) as archive:
                    ids, values = archive["ids"], archive["embeddings"]
            except Exception as exc:  # a part is written atomically, so this is damage from outside
                raise ValueError(f"the cached embeddings {part} are unreadable ({exc}); delete that file") from None
            found.update(zip(ids.tolist(), values))
        return found

    def embeddings(
        self,
        ids: Sequence[str],
        signals: Sequence[object],
        embed: Callable[[list[object]], np.ndarray],
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """``(len(ids), dim)`` embeddings of ``signals``: cached ones read, the missing ones computed by ``embed``
        a chunk at a time and saved as they come. ``progress`` is called with the number embedded per chunk."""
        cached = self.load()
        missing = [i for i, key in enumerate(ids) if key not in cached]
        n_parts = len(list(self.folder.glob("part-*.npz")))
        for start in range(0, len(missing), CHUNK):
            chosen = missing[start : start + CHUNK]
            values = np.asarray(embed([signals[i] for i in chosen]), dtype=np.float32)
            if values.shape[0] != len(chosen) or not np.isfinite(values).all():
                raise ValueError("the encoder returned non-finite embeddings; check the recordings (NaN, flat)")
            chunk_ids = np.asarray([ids[i] for i in chosen])
            with atomic_path(self.folder / f"part-{n_parts:05d}.npz") as tmp:
                with open(tmp, "wb") as handle:
                    np.savez(handle, ids=chunk_ids, embeddings=values)
            n_parts += 1
            cached.update(zip(chunk_ids.tolist(), values))
            if progress is not None:
                progress(len(chosen))
        return np.stack([cached[key] for key in ids]) if ids else np.empty((0, 0), dtype=np.float32)
