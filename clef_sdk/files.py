"""File helpers: checksums of files, and the one way clef_sdk writes a file (atomically, with the umask's
permissions, never over its own input)."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from .errors import OutputError

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "current_umask",
    "md5_and_sha256_file",
    "refuse_to_overwrite",
    "sha256_file",
]

_CHUNK = 1 << 20
_UMASK_LOCK = threading.Lock()


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


def current_umask() -> int:
    """The process umask (read from ``/proc/self/status`` where there is one, else by setting it back at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def refuse_to_overwrite(destination: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]]) -> None:
    """Raise [`OutputError`][clef_sdk.errors.OutputError] if ``destination`` is one of ``inputs`` (the same file by any
    name: a link, a relative path): writing it would destroy what is being read."""
    destination = Path(destination)
    for source in inputs:
        source = Path(source)
        if _same_file(destination, source) or destination.resolve() == source.resolve():
            raise OutputError(
                f"{destination} is also an input ({source}); writing it would replace the data being read. "
                "Choose another output path"
            )


@contextmanager
def atomic_path(
    destination: str | os.PathLike[str], *, inputs: Iterable[str | os.PathLike[str]] = ()
) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; it replaces ``destination`` only if the block succeeds.

    Readers never see a half-written file, and a crash, a full disk or an exception leaves the previous file
    untouched and no partial file behind. The result gets the permissions a newly created file would (``0o666``
    less the umask, as ``open`` gives), not ``mkstemp``'s private ``0o600``, so shared caches stay readable.
    ``inputs``: files the caller reads; a ``destination`` that is one of them is refused before anything is
    written (`refuse_to_overwrite`).
    """
    destination = Path(destination)
    refuse_to_overwrite(destination, inputs)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~current_umask())
        with open(tmp, "rb") as handle:  # on disk before it takes the name: a crash cannot leave an empty file
            os.fsync(handle.fileno())
        os.replace(tmp, destination)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(
    destination: str | os.PathLike[str], data: bytes, *, inputs: Iterable[str | os.PathLike[str]] = ()
) -> Path:
    """Write ``data`` to ``destination`` atomically (see `atomic_path`); returns the path."""
    with atomic_path(destination, inputs=inputs) as tmp:
        tmp.write_bytes(data)
    return Path(destination)


def atomic_write_text(
    destination: str | os.PathLike[str], text: str, *, inputs: Iterable[str | os.PathLike[str]] = ()
) -> Path:
    """Write UTF-8 ``text`` to ``destination`` atomically (see `atomic_path`); returns the path."""
    return atomic_write_bytes(destination, text.encode("utf-8"), inputs=inputs)
