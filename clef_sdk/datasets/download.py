"""Download a dataset's PhysioNet project into a folder, in its published layout, every file checked by SHA-256.

>>> from clef_sdk.datasets.download import download
>>> root = download("ludb", "/data/ludb")      # then clef.datasets.open("ludb", root)

The file list is the project's published ``SHA256SUMS.txt`` (``<index>/<project>/<version>/SHA256SUMS.txt``); the
files travel through wfdb's PhysioNet client (`wfdb.io.download.dl_pn_file`, two connections at a time as
wfdb uses), which keeps a file of the right size, appends the rest of a shorter one through an HTTP Range request
and fetches a longer one again. Every file is then hashed against the list: a mismatch deletes the file and fetches
it once more, then is an error naming it. A small record of verified files (``.clef-download/verified.tsv``) lets a
rerun skip them without hashing again, and ``.clef-download/complete.json`` is written only once every listed file
is verified, so a partial download never looks complete; a rerun of a complete download reads nothing from the
network. An interrupted download (no network, an HTTP error, a full disk, Ctrl-C) resumes when run again.

The index is ``https://physionet.org/files/`` unless ``index_url=`` or ``$CLEF_SDK_PHYSIONET_URL`` name a mirror
(``http(s)://`` or ``file://``) with the same layout. wfdb keeps its index URL in process-wide state: it is set for
the call (one download at a time in a process) and restored afterwards.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

from .._optional import require
from .._version import __version__
from ..errors import ChecksumMismatchError, DatasetError
from ..files import atomic_write_text, sha256_file
from .base import Dataset, reader_class

__all__ = [
    "CHECKSUMS_FILE",
    "COMPLETE_MARKER",
    "DEFAULT_INDEX_URL",
    "INDEX_URL_ENV",
    "STATE_DIR",
    "VERIFIED_RECORD",
    "download",
    "index_url_setting",
    "is_complete",
    "parse_checksums",
]

DEFAULT_INDEX_URL = "https://physionet.org/files/"
INDEX_URL_ENV = "CLEF_SDK_PHYSIONET_URL"
CHECKSUMS_FILE = "SHA256SUMS.txt"
#: the folder, inside the download folder, that holds the download's own state
STATE_DIR = ".clef-download"
VERIFIED_RECORD = f"{STATE_DIR}/verified.tsv"
COMPLETE_MARKER = f"{STATE_DIR}/complete.json"

_WORKERS = 2  # wfdb's own limit for PhysioNet ("to avoid overloading the server")
_ATTEMPTS = 3  # per file, for a dropped connection or a server error
_BACKOFF_SECONDS = 0.5
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_SIZES_ASKED_UP_TO = 100  # files still to fetch for which the size is asked up front (one HEAD each)
_LOCAL_ERRNOS = frozenset(
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT", "EFBIG", "EACCES", "EROFS", "EPERM") if hasattr(errno, name)
)
_CHECKSUM_LINE = re.compile(r"^(?P<sha>[0-9a-fA-F]{64}) [ *]?(?P<path>\S.*)$")
_SERIAL = threading.Lock()  # wfdb's index URL is one per process: one download at a time


def index_url_setting(index_url: str | None = None) -> str:
    """The PhysioNet files index to download from: ``index_url``, else ``$CLEF_SDK_PHYSIONET_URL``, else
    ``https://physionet.org/files/``; always with a trailing ``/``.

    Args:
        index_url: a mirror of ``https://physionet.org/files/`` (``http://``, ``https://`` or ``file://``), or None.
    """
    chosen = index_url or os.environ.get(INDEX_URL_ENV, "").strip() or DEFAULT_INDEX_URL
    if not re.match(r"^(https?|file)://", chosen):
        where = "--index-url" if index_url else INDEX_URL_ENV
        raise DatasetError(
            f"{where} {chosen!r} is not a URL: give the http(s):// (or file://) address of a PhysioNet files index, "
            f"like {DEFAULT_INDEX_URL}"
        )
    return chosen.rstrip("/") + "/"


def parse_checksums(text: str, source: str = CHECKSUMS_FILE) -> dict[str, str]:
    """The ``path -> sha256`` entries of a ``SHA256SUMS.txt`` (``<64 hex> <path>`` per line, as PhysioNet writes it).

    Args:
        text: the file's content.
        source: where it came from, for error messages.

    Raises:
        DatasetError: a line that is not such an entry, or a path that would leave the download folder.
    """
    entries: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _CHECKSUM_LINE.match(line.rstrip("\r"))
        if match is None:
            shown = line[:80].encode("unicode_escape").decode("ascii")
            raise DatasetError(
                f"{source} is not a checksum list: line {number} reads {shown!r} (expected '<sha256> <path>'); "
                "is the index URL a PhysioNet files index?"
            )
        path = match["path"]
        parts = path.split("/")
        if (
            path.startswith("/")
            or "\\" in path
            or any(part in ("", ".", "..") for part in parts)
            or any(not c.isprintable() for c in path)
            or parts[0] == STATE_DIR
        ):
            raise DatasetError(f"{source} line {number} lists {path!r}, a path outside the download folder: refused")
        if path != CHECKSUMS_FILE:
            entries[path] = match["sha"].lower()
    if not entries:
        raise DatasetError(f"{source} lists no files")
    return entries


def is_complete(directory: str | os.PathLike[str]) -> bool:
    """Whether ``directory`` holds a finished download (its completion marker), as `download` leaves it."""
    return (Path(directory).expanduser() / COMPLETE_MARKER).is_file()


def _size_text(size: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


class _Verified:
    """The record of files already verified: ``sha256, size, mtime_ns, path`` per line, appended as files pass.

    A file counts as verified while its size and modification time are those recorded, so a rerun neither hashes
    nor fetches it; a file changed since is checked again.
    """

    def __init__(self, path: Path, project: str) -> None:
        self.path = path
        self.project = project
        self.entries: dict[str, tuple[str, int, int]] = {}
        self._lock = threading.Lock()
        header = f"# clef-sdk: files of {project} verified against {CHECKSUMS_FILE} (sha256, size, mtime_ns, path)"
        if path.is_file():
            lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
            if lines and lines[0] != header:
                found = lines[0].removeprefix("# clef-sdk: files of ").split(" verified", 1)[0]
                raise DatasetError(
                    f"{path.parent.parent} holds a download of {found}, not {project}: download {project} into "
                    "another folder"
                )
            for line in lines[1:]:
                fields = line.split("\t", 3)
                if len(fields) == 4 and fields[1].isdigit() and fields[2].isdigit():
                    self.entries[fields[3]] = (fields[0], int(fields[1]), int(fields[2]))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(header + "\n", encoding="utf-8")

    def holds(self, relative: str, sha256: str, file: Path) -> bool:
        """Whether ``file`` was verified as ``sha256`` and has not changed since."""
        entry = self.entries.get(relative)
        if entry is None or entry[0] != sha256:
            return False
        try:
            stat = file.stat()
        except OSError:
            return False
        return (stat.st_size, stat.st_mtime_ns) == entry[1:]

    def add(self, relative: str, sha256: str, file: Path) -> None:
        stat = file.stat()
        with self._lock:
            self.entries[relative] = (sha256, stat.st_size, stat.st_mtime_ns)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(f"{sha256}\t{stat.st_size}\t{stat.st_mtime_ns}\t{relative}\n")


def _cannot_connect(exc: BaseException) -> bool:
    """Whether ``exc`` says the server could not be reached at all (refused, no such host): retrying cannot help.

    requests wraps urllib3's ``NewConnectionError`` / ``NameResolutionError`` in a ``ConnectionError``; they are
    recognised by name, so that this module imports no HTTP library of its own.
    """
    if isinstance(exc, ConnectionRefusedError):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return type(reason).__name__ in ("NewConnectionError", "NameResolutionError")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


class _Download:
    """One call of `download`: the project, the folder, wfdb's module and the running counts."""

    def __init__(self, reader: type[Dataset], project: str, root: Path, index_url: str, progress: bool) -> None:
        self.reader = reader
        self.project = project
        self.root = root
        self.index_url = index_url
        self.progress = progress
        self.wfdb: ModuleType = require("wfdb.io.download", f"downloading {reader.title} from PhysioNet")
        self.verified_count = 0
        self.total = 0
        self._count_lock = threading.Lock()

    # ------------------------------------------------------------------ messages
    def say(self, text: str) -> None:
        if self.progress:
            print(f"clef: {text}", file=sys.stderr, flush=True)

    def url(self, relative: str) -> str:
        return f"{self.index_url}{self.project}/{relative}"

    def resume_hint(self) -> str:
        if not self.total:
            return "run the same command again to retry"
        return (
            f"{self.verified_count} of {self.total} files are verified and kept in {self.root}; run the same "
            "command again to resume"
        )

    # ------------------------------------------------------------------ one file through wfdb
    def fetch(self, relative: str) -> None:
        """``relative`` through wfdb's ``dl_pn_file``: kept at the right size, resumed when shorter (HTTP Range),
        fetched again when longer; a dropped connection or a server error is retried, then an error."""
        subdir, base = posixpath.split(relative)
        local = self.root / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                self.wfdb.dl_pn_file((base, subdir, self.project, str(self.root), True, False))
                return
            except OSError as exc:
                if exc.errno in _LOCAL_ERRNOS:
                    raise  # the local disk, not the network: retrying cannot help (see _run)
                status = getattr(exc, "status_code", None)
                if status in (401, 403):
                    raise DatasetError(
                        f"{self.url(relative)}: access refused (HTTP {status}). {self.reader.title} may need an "
                        f"account with access on PhysioNet; {self.reader.where_to_get()}"
                    ) from None
                if status == 404 and relative == CHECKSUMS_FILE:
                    raise DatasetError(
                        f"{self.url(relative)}: not found (HTTP 404): {self.index_url} does not hold {self.project}. "
                        "Check the index URL (PhysioNet's ends in /files/) and that the mirror holds this version"
                    ) from None
                if status == 404:
                    raise DatasetError(
                        f"{self.url(relative)}: not found (HTTP 404), though {CHECKSUMS_FILE} lists it: is "
                        f"{self.index_url} a complete mirror of PhysioNet? {self.resume_hint()}"
                    ) from None
                if _cannot_connect(exc) or (status is not None and status not in _RETRY_STATUS):
                    raise self.network_error(relative, exc) from None
                if attempt == _ATTEMPTS:
                    raise self.network_error(relative, exc, attempts=attempt) from None
                time.sleep(_BACKOFF_SECONDS * 2 ** (attempt - 1))

    def network_error(self, relative: str, exc: BaseException, attempts: int = 1) -> DatasetError:
        status = getattr(exc, "status_code", None)
        what = f"HTTP {status}" if status is not None else f"{type(exc).__name__}: {_first_line(exc)}"
        tried = f" ({attempts} attempts)" if attempts > 1 else ""
        where = "physionet.org" if self.index_url == DEFAULT_INDEX_URL else f"the mirror {self.index_url}"
        return DatasetError(
            f"cannot download {self.url(relative)}{tried}: {what}. Check the network connection and that {where} "
            f"answers; {self.resume_hint()}"
        )

    def disk_error(self, exc: OSError) -> OSError:
        """A local failure (full disk, file-size limit, no permission) as one line saying what to do."""
        where = exc.filename or f"under {self.root}"
        return OSError(
            exc.errno,
            f"cannot write {where}: {exc.strerror or _first_line(exc)}. Free space (or download into another "
            f"folder, or allow writing there); {self.resume_hint()}",
        )

    # ------------------------------------------------------------------ the list
    def checksums(self) -> dict[str, str]:
        """The project's ``SHA256SUMS.txt``: fetched (or resumed) into the folder, then read."""
        local = self.root / CHECKSUMS_FILE
        self.fetch(CHECKSUMS_FILE)
        try:
            return parse_checksums(local.read_text(encoding="utf-8", errors="replace"), self.url(CHECKSUMS_FILE))
        except DatasetError:
            local.unlink(missing_ok=True)  # not a list (an HTML page from a proxy?): asked for again next time
            raise

    # ------------------------------------------------------------------ one listed file
    def ensure(self, relative: str, sha256: str, record: _Verified) -> int:
        """Make ``relative`` a verified copy of the listed file; returns the bytes fetched (0 when already there)."""
        local = self.root / relative
        if record.holds(relative, sha256, local):
            return 0
        if local.is_file() and sha256_file(local) == sha256:  # already here (an earlier copy, a record lost)
            record.add(relative, sha256, local)
            return 0
        before = local.stat().st_size if local.is_file() else 0
        self.fetch(relative)  # keeps, resumes or replaces what is here
        found = sha256_file(local)
        if found != sha256:
            local.unlink(missing_ok=True)
            before = 0
            self.fetch(relative)  # once more, in full
            found = sha256_file(local)
        if found != sha256:
            local.unlink(missing_ok=True)
            raise ChecksumMismatchError(
                f"{relative}: the file from {self.url(relative)} has SHA-256 {found}, but {CHECKSUMS_FILE} lists "
                f"{sha256}, also when fetched again in full; it was deleted. The server or a proxy on the way "
                f"serves other bytes: try again later or from another --index-url; {self.resume_hint()}"
            )
        record.add(relative, sha256, local)
        return max(local.stat().st_size - before, 0)

    def count_verified(self) -> None:
        with self._count_lock:
            self.verified_count += 1

    def remote_size(self, relative: str) -> int | None:
        subdir, base = posixpath.split(relative)
        try:
            return int(self.wfdb._remote_file_size(file_name=base, pn_dir=posixpath.join(self.project, subdir)))
        except (OSError, TypeError, ValueError):
            return None


def _in_parallel(items: Iterable[Any], work: Callable[[Any], None], workers: int) -> None:
    """``work(item)`` for every item on ``workers`` threads; the first failure stops the others and is raised."""
    source = iter(items)
    lock = threading.Lock()
    failures: list[BaseException] = []

    def loop() -> None:
        while True:
            with lock:
                if failures:
                    return
                item = next(source, None)
            if item is None:
                return
            try:
                work(item)
            except BaseException as exc:  # handed to the calling thread, raised there
                with lock:
                    failures.append(exc)
                return

    threads = [threading.Thread(target=loop, daemon=True, name=f"clef-download-{i}") for i in range(workers)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)  # a timed join keeps Ctrl-C deliverable to this thread
    except BaseException:
        with lock:
            failures.append(KeyboardInterrupt())  # the workers stop after the file each one is on
        raise
    if failures:
        raise failures[0]


def _intact(job: _Download, record: _Verified) -> bool:
    """Whether a completed download is still whole: every listed file there, as verified (no hashing, no network)."""
    listed = job.root / CHECKSUMS_FILE
    if not listed.is_file():
        return False
    try:
        entries = parse_checksums(listed.read_text(encoding="utf-8", errors="replace"), str(listed))
    except DatasetError:
        return False
    job.total = len(entries)
    return all(record.holds(relative, sha, job.root / relative) for relative, sha in entries.items())


def download(
    name: str, directory: str | os.PathLike[str], *, index_url: str | None = None, progress: bool = True
) -> Path:
    """Download dataset ``name``'s PhysioNet project into ``directory`` (its published layout) and verify every
    file against the project's ``SHA256SUMS.txt``; returns the folder, ready for [`clef_sdk.datasets.open`][clef_sdk.datasets.open].

    A rerun skips the files already verified and resumes the others; once every file is verified the folder gets
    a completion marker, and a rerun of a complete download does nothing (not even a request).

    Args:
        name: a dataset name (`clef_sdk.datasets.available_datasets`) whose reader names a PhysioNet project.
        directory: the folder to download into (created if missing); it may already hold a partial download, or a
            copy made another way (its files are hashed, and only what is missing or wrong is fetched).
        index_url: a mirror of ``https://physionet.org/files/`` (default ``$CLEF_SDK_PHYSIONET_URL``, else
            PhysioNet itself).
        progress: print what is done (sizes, counts) and a progress bar on stderr.

    Raises:
        DatasetError: the dataset is not on PhysioNet (the message says where to get it), the server cannot be
            reached or answers with an error, or the folder holds another project's download.
        ChecksumMismatchError: a file still differs from its listed SHA-256 after being fetched again.
        OSError: the folder cannot be written (a full disk): free space and run again, it resumes.
    """
    reader = reader_class(name)
    project = reader.physionet
    if not project:
        raise DatasetError(f"{reader.title} is not openly downloadable from PhysioNet. {reader.where_to_get()}")
    base = index_url_setting(index_url)
    root = Path(directory).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    job = _Download(reader, project, root, base, progress)
    record = _Verified(root / VERIFIED_RECORD, project)
    marker = root / COMPLETE_MARKER
    if marker.is_file():
        if _intact(job, record):
            job.say(f"{project}: already complete in {root} ({job.total} files verified); nothing to do")
            return root
        marker.unlink()  # a file went missing or changed since: check again, fetch what is needed
    with _SERIAL:
        config = job.wfdb.config
        previous = config.db_index_url
        config.db_index_url = base
        try:
            _run(job, record)
        finally:
            config.db_index_url = previous
    return root


def _run(job: _Download, record: _Verified) -> None:
    try:
        _fetch_all(job, record)
    except OSError as exc:
        if exc.errno in _LOCAL_ERRNOS:
            raise job.disk_error(exc) from None
        raise


def _fetch_all(job: _Download, record: _Verified) -> None:
    entries = job.checksums()
    job.total = len(entries)
    todo = [
        (relative, sha) for relative, sha in entries.items() if not record.holds(relative, sha, job.root / relative)
    ]
    job.verified_count = job.total - len(todo)
    size = ""
    if todo and len(todo) <= _SIZES_ASKED_UP_TO and job.progress:
        sizes = [job.remote_size(relative) for relative, _ in todo]
        if all(s is not None for s in sizes):
            size = f", {_size_text(sum(s for s in sizes if s is not None))}"
    job.say(
        f"{job.project} from {job.index_url}: {job.total} files listed in {CHECKSUMS_FILE}; "
        f"{job.verified_count} already verified, {len(todo)} to check or fetch{size}"
        + ("" if size or not todo else f" (the list gives no sizes: see {job.reader.source})")
    )
    lock = threading.Lock()
    fetched = [0]
    bar = _progress_bar(len(todo), job.project, job.progress)

    def work(item: tuple[str, str]) -> None:
        got = job.ensure(item[0], item[1], record)
        job.count_verified()
        with lock:
            fetched[0] += got
        bar.update(1)

    try:
        _in_parallel(todo, work, _WORKERS)
    finally:
        bar.close()
    total_bytes = sum(record.entries[relative][1] for relative in entries)
    atomic_write_text(
        job.root / COMPLETE_MARKER,
        json.dumps(
            {
                "project": job.project,
                "index_url": job.index_url,
                "files": job.total,
                "bytes": total_bytes,
                "sha256sums": sha256_file(job.root / CHECKSUMS_FILE),
                "completed": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "clef_sdk": __version__,
            },
            indent=2,
        )
        + "\n",
    )
    job.say(
        f"{job.project}: {job.total} files ({_size_text(total_bytes)}) verified in {job.root}; "
        f"{_size_text(fetched[0])} fetched this time"
    )


def _progress_bar(total: int, desc: str, progress: bool) -> Any:
    from tqdm.auto import tqdm

    from ..progress import progress_disabled

    disable = progress_disabled(None) if progress else True
    return tqdm(total=total, unit="file", desc=desc, disable=disable, file=sys.stderr, leave=False)
