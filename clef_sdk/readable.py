"""Reading local files (weights, checkpoints, task models, manifests): a file that cannot be read (permissions, a directory, a failing disk)
is reported as such, naming the file, and never as corrupt: the advice to delete and download again is for files
whose contents are proven wrong, not for files nobody could look at.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import CheckpointError, ClefError
from .files import md5_and_sha256_file, sha256_file

__all__ = [
    "check_readable",
    "md5_and_sha256_readable",
    "reading",
    "require_file",
    "sha256_readable",
    "unreadable",
]


def unreadable(
    path: str | os.PathLike[str], exc: OSError, what: str = "file", error: type[ClefError] = CheckpointError
) -> ClefError:
    """The error for ``path`` that could not be read because of ``exc`` (an ``OSError`` of the system)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    name = errno.errorcode.get(exc.errno) if exc.errno is not None else None
    code = f" [{name}]" if name else ""
    if isinstance(exc, PermissionError):
        advice = (
            "the user running clef-sdk may not read it: check its permissions and owner (`ls -l`), e.g. "
            "`chmod a+r` it, or run as a user who may read it"
        )
    elif isinstance(exc, FileNotFoundError):
        advice = "it does not exist (any more): check the path"
    elif isinstance(exc, IsADirectoryError):
        advice = "it is a directory: pass the file inside it"
    else:
        advice = "the system could not read it (a disk, network filesystem or mount problem?): check it and try again"
    return error(
        f"cannot read the {what} {path}: {reason}{code}; {advice}. This says nothing about its contents: the file "
        "was left as it is (do not delete it for this)"
    )


def require_file(path: Path, what: str) -> None:
    """Raise ``FileNotFoundError`` naming ``what`` if ``path`` does not exist, `CheckpointError` if it is not
    a regular file (a directory, a device)."""
    if path.is_file():
        return
    if path.exists():
        kind = "a directory" if path.is_dir() else "not a regular file"
        raise CheckpointError(f"the {what} {path} is {kind}: pass the file itself")
    raise FileNotFoundError(f"{what} not found: {path}")


@contextmanager
def reading(path: Path, what: str = "file", error: type[ClefError] = CheckpointError) -> Iterator[None]:
    """Around code that reads ``path``: a missing file is a ``FileNotFoundError`` naming ``what``, any other refusal
    of the system `unreadable`'s error."""
    try:
        yield
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise unreadable(path, exc, what, error) from None


def check_readable(path: Path, what: str, error: type[ClefError] = CheckpointError) -> None:
    """Open ``path`` and read its first byte: raise `unreadable`'s error if the system refuses."""
    with reading(path, what, error), open(path, "rb") as handle:
        handle.read(1)


def sha256_readable(path: Path, what: str = "file") -> str:
    """[`clef_sdk.files.sha256_file`][clef_sdk.files.sha256_file], with an error naming the file and the cause if it cannot be read."""
    with reading(path, what):
        return sha256_file(path)


def md5_and_sha256_readable(path: Path, what: str = "file") -> tuple[str, str]:
    """[`clef_sdk.files.md5_and_sha256_file`][clef_sdk.files.md5_and_sha256_file], with an error naming the file and the cause if it cannot be
    read."""
    with reading(path, what):
        return md5_and_sha256_file(path)
