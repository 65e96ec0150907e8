"""Small file helpers shared by the converter and the downloader."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

__all__ = ["atomic_path", "md5_and_sha256_file", "sha256_file"]

_CHUNK = 1 << 20


class _Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...


def _read_into(path: str | os.PathLike[str], *digests: _Digest) -> None:
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            for digest in digests:
                digest.update(chunk)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    _read_into(path, digest)
    return digest.hexdigest()


def md5_and_sha256_file(path: str | os.PathLike[str]) -> tuple[str, str]:
    """Hex ``(md5, sha256)`` of a file in one pass (Zenodo publishes md5; our manifest pins sha256)."""
    md5, sha256 = hashlib.md5(usedforsecurity=False), hashlib.sha256()
    _read_into(path, md5, sha256)
    return md5.hexdigest(), sha256.hexdigest()


@contextmanager
def atomic_path(destination: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; it replaces ``destination`` only if the block succeeds.

    Readers never see a half-written file, and a crash leaves no partial file behind.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)
