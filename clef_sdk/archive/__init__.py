"""Embed a whole archive into a partitioned table: ``clef.embed_archive`` / ``clef embed-archive``.

>>> run = clef.embed_archive("mimic-iv-ecg/files", "embeddings/", model="small", leads=["I", "II"])
>>> table, embeddings = clef.read_embeddings("embeddings/")

Modules: `.sources` (what is read), `.plan` (the job plan, ranks and parts), `.parts` (Parquet or
npy parts, written atomically and deterministically), `.runner` (the job), `.reading`
(`read_embeddings`), `.status`, `.dask` (the Dask adapter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
    from .plan import JobPlan, rank_from_environment
    from .reading import read_embeddings
    from .runner import ArchiveRun, embed_archive, run_part
    from .sources import DatasetSource, FolderSource, ManifestSource, open_source

__all__ = [
    "ArchiveRun",
    "DatasetSource",
    "FolderSource",
    "JobPlan",
    "ManifestSource",
    "embed_archive",
    "open_source",
    "rank_from_environment",
    "read_embeddings",
    "run_part",
]

_LAZY = {
    "JobPlan": "plan",
    "rank_from_environment": "plan",
    "read_embeddings": "reading",
    "ArchiveRun": "runner",
    "embed_archive": "runner",
    "run_part": "runner",
    "DatasetSource": "sources",
    "FolderSource": "sources",
    "ManifestSource": "sources",
    "open_source": "sources",
}
__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(__all__)
