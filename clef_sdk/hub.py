"""Where named weights come from. All network access of clef_sdk lives in this module.

A model name resolves through the manifest (:mod:`clef_sdk.registry`) to sources tried in order:

- **Hugging Face Hub** (``type: hub``): downloaded with :func:`huggingface_hub.hf_hub_download` at the pinned
  commit into the Hugging Face cache (``HF_HUB_CACHE``; ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` are honoured,
  read when the call is made). A hub source without a pinned commit and sha256 is skipped.
- **Zenodo** (``type: zenodo``): the authors' released Lightning checkpoint, downloaded with a progress bar
  and resume (HTTP ``Range``), checked against the checksum Zenodo publishes, converted locally to safetensors
  (``torch.load(weights_only=True)``), and cached under ``$CLEF_SDK_HOME`` (default: ``clef-sdk`` next to
  the Hugging Face cache), keyed by the source checksum. The ``.ckpt`` is then deleted unless kept.

Every file is sha256-verified before its first use; the verification is recorded (a small JSON file) so that
later loads only compare size and modification time, and ``clef verify`` re-hashes everything. A mismatch
deletes the file and raises :class:`~clef_sdk.errors.ChecksumMismatchError`. Downloads of one model are
serialised across processes by a file lock, so concurrent first loads produce one file.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import json
import logging
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._io import atomic_path, md5_and_sha256_file, sha256_file
from ._version import __version__
from .errors import CheckpointError, ChecksumMismatchError, WeightsNotAvailableError
from .registry import HubSource, ModelEntry, Source, ZenodoSource

__all__ = [
    "ALLOW_UNVERIFIED_ENV",
    "HOME_ENV",
    "LIBRARY_NAME",
    "CacheStatus",
    "VerifyReport",
    "cache_status",
    "cached_weights",
    "clef_home",
    "fetch_weights",
    "hub_cache_dir",
    "is_offline",
    "verify_cache",
]

HOME_ENV = "CLEF_SDK_HOME"
ALLOW_UNVERIFIED_ENV = "CLEF_SDK_ALLOW_UNVERIFIED"
TIMEOUT_ENV = "CLEF_SDK_DOWNLOAD_TIMEOUT"
LIBRARY_NAME = "clef-sdk"
ZENODO_RECORD = "17572734"

_DEFAULT_TIMEOUT = 30.0
_CHUNK = 1 << 20
_MAX_ATTEMPTS = 5
_RETRY_STATUS = (408, 425, 429, 500, 502, 503, 504)
_TRUE = {"1", "on", "yes", "true"}
_UNREACHABLE_ERRNOS = {getattr(errno, name) for name in ("ENETUNREACH", "EHOSTUNREACH") if hasattr(errno, name)}
_LOCAL_ERRNOS = {getattr(errno, name) for name in ("ENOSPC", "EACCES", "EROFS", "EDQUOT", "EPERM") if hasattr(errno, name)}

logger = logging.getLogger("clef_sdk")


class _SourceUnavailable(Exception):
    """A source could not deliver the file (not found, unreachable, refused): the next source is tried."""


# --------------------------------------------------------------------------------------------------------------
# Locations and settings (read from the environment at every call, so that changes take effect at once)


def _env_true(name: str) -> bool:
    return (os.environ.get(name) or "").strip().lower() in _TRUE


def hub_cache_dir() -> Path:
    """The Hugging Face cache folder, resolved like huggingface_hub does: ``HF_HUB_CACHE``, else
    ``HUGGINGFACE_HUB_CACHE``, else ``$HF_HOME/hub``, else ``$XDG_CACHE_HOME/huggingface/hub``
    (``~/.cache/huggingface/hub``)."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.path.expandvars(os.environ[name])).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser() / "hub"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.path.expandvars(cache)).expanduser() / "huggingface" / "hub"


def clef_home() -> Path:
    """clef-sdk's own cache folder: ``$CLEF_SDK_HOME``, default ``clef-sdk`` next to the Hugging Face cache
    (``~/.cache/huggingface/clef-sdk``), so that copying ``HF_HOME`` copies every cached model."""
    override = os.environ.get(HOME_ENV)
    if override:
        return Path(os.path.expandvars(override)).expanduser()
    return hub_cache_dir().parent / "clef-sdk"


def is_offline(local_files_only: bool = False) -> bool:
    """Whether downloads are off: ``local_files_only=True`` or ``HF_HUB_OFFLINE`` set to 1/true/yes/on."""
    if local_files_only or _env_true("HF_HUB_OFFLINE"):
        return True
    # huggingface_hub reads HF_HUB_OFFLINE once, at import; honour it too if it was imported (or set) earlier.
    constants = sys.modules.get("huggingface_hub.constants")
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _allow_unverified(allow_unverified: bool | None) -> bool:
    return _env_true(ALLOW_UNVERIFIED_ENV) if allow_unverified is None else allow_unverified


def _timeout() -> float:
    try:
        return float(os.environ.get(TIMEOUT_ENV) or _DEFAULT_TIMEOUT)
    except ValueError:
        return _DEFAULT_TIMEOUT


def _hf_endpoint() -> str | None:
    endpoint = os.environ.get("HF_ENDPOINT")
    return endpoint.rstrip("/") if endpoint else None


# --------------------------------------------------------------------------------------------------------------
# Cache layout


def _hub_repo_folder(source: HubSource) -> Path:
    return hub_cache_dir() / ("models--" + source.repo_id.replace("/", "--"))


def _hub_cached_file(source: HubSource) -> Path | None:
    """The cached file of a pinned hub source, looked up without any network access."""
    if not source.pinned:
        return None
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(
        source.repo_id, source.filename, cache_dir=str(hub_cache_dir()), revision=source.revision
    )
    return Path(found) if isinstance(found, str) else None


def _hub_expected_path(source: HubSource) -> Path | None:
    if not source.pinned:
        return None
    assert source.revision is not None
    return _hub_repo_folder(source) / "snapshots" / source.revision / source.filename


def _hub_record(source: HubSource) -> Path:
    return clef_home() / "verified" / f"{source.sha256}.json"


def _zenodo_folder(source: ZenodoSource) -> Path:
    if source.checksum_hex:
        key = f"{source.checksum_algorithm}-{source.checksum_hex}"
    else:  # opted-in unverified download: keyed by URL so that a changed manifest never reuses it
        key = "unverified-" + hashlib.sha256(source.url.encode()).hexdigest()[:16]
    return clef_home() / "zenodo" / source.record / key


def _zenodo_target(entry: ModelEntry, source: ZenodoSource) -> Path:
    return _zenodo_folder(source) / f"clef-{entry.name}.safetensors"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _delete_cached(path: Path) -> None:
    """Delete a cached file; for a Hugging Face snapshot symlink, its blob too."""
    try:
        real = path.resolve()
    except OSError:
        real = path
    path.unlink(missing_ok=True)
    if real != path:
        real.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------------------------
# Verification


def _stat_matches(record: dict[str, Any] | None, sha256: str, path: Path) -> bool:
    if record is None or record.get("sha256") != sha256:
        return False
    stat = path.stat()
    return record.get("size") == stat.st_size and record.get("mtime_ns") == stat.st_mtime_ns


def _mismatch(
    what: str, path: Path, expected: str, actual: str, source: Source, extra: str = ""
) -> ChecksumMismatchError:
    return ChecksumMismatchError(
        f"{what}: checksum mismatch for {path}: expected {expected}, got {actual}{extra} (source: "
        f"{source.describe()}). The file has been deleted. Run the command again to download it anew; if the "
        "mismatch persists, the file served by that source is not the one the manifest pins: do not use it, and "
        "report it (or point CLEF_SDK_MANIFEST at a corrected manifest)"
    )


def _verify_hub_file(entry: ModelEntry, source: HubSource, path: Path, *, force: bool = False) -> str:
    """Check a cached hub file against the manifest's size and sha256 (cheaply if already recorded)."""
    assert source.sha256 is not None
    record_path = _hub_record(source)
    what = f"CLEF-{entry.name}"
    size = path.stat().st_size
    if source.size is not None and size != source.size:
        _delete_cached(path)
        record_path.unlink(missing_ok=True)
        raise _mismatch(what, path, f"{source.size} bytes", f"{size} bytes", source)
    if not force and _stat_matches(_read_json(record_path), source.sha256, path):
        return source.sha256
    actual = sha256_file(path)
    if actual != source.sha256:
        _delete_cached(path)
        record_path.unlink(missing_ok=True)
        raise _mismatch(what, path, f"sha256:{source.sha256}", f"sha256:{actual}", source)
    stat = path.stat()
    _write_json(
        record_path,
        {
            "sha256": actual,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "path": str(path),
            "source": source.describe(),
            "verified_at": _now(),
        },
    )
    return actual


def _verify_zenodo_target(
    entry: ModelEntry, source: ZenodoSource, path: Path, *, force: bool = False
) -> str | None:
    """sha256 of a converted file if it is complete (has its record); raises if it no longer matches the record."""
    record = _read_json(_sidecar(path))
    if record is None or not isinstance(record.get("sha256"), str):
        return None  # an interrupted conversion: not cached
    expected = record["sha256"]
    if not force and _stat_matches(record, expected, path):
        return expected
    actual = sha256_file(path)
    if actual != expected:
        _delete_cached(path)
        _sidecar(path).unlink(missing_ok=True)
        raise _mismatch(f"CLEF-{entry.name}", path, f"sha256:{expected}", f"sha256:{actual}", source)
    stat = path.stat()
    _write_json(_sidecar(path), {**record, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return actual


def _check_weights_size(entry: ModelEntry, path: Path, source: Source) -> None:
    """Refuse a file whose clef-sdk metadata names another size than the entry (reads only the header)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            size = (handle.metadata() or {}).get("size")
    except Exception as exc:  # safetensors raises several error types for corrupt headers
        raise CheckpointError(f"{path} (from {source.describe()}) is not a readable safetensors file: {exc}") from None
    if size != entry.name:
        raise CheckpointError(
            f"{path} (from {source.describe()}) holds CLEF-{size} weights, not CLEF-{entry.name}: the manifest "
            "entry points at the wrong file"
        )


# --------------------------------------------------------------------------------------------------------------
# Cache queries


def _usable(entry: ModelEntry, allow_unverified: bool) -> tuple[list[Source], list[tuple[Source, str]]]:
    usable: list[Source] = []
    skipped: list[tuple[Source, str]] = []
    for source in entry.sources:
        reason = source.skip_reason()
        if isinstance(source, ZenodoSource) and reason is not None and allow_unverified:
            reason = None
        if reason is None:
            usable.append(source)
        else:
            skipped.append((source, reason))
    return usable, skipped


def _cached_path(entry: ModelEntry, source: Source) -> Path | None:
    """The verified cached file of one source, or ``None``; raises ChecksumMismatchError for a corrupted one."""
    if isinstance(source, HubSource):
        path = _hub_cached_file(source)
        if path is None or not path.is_file():
            return None
        _verify_hub_file(entry, source, path)
        return path
    target = _zenodo_target(entry, source)
    if target.is_file() and _verify_zenodo_target(entry, source, target) is not None:
        return target
    return None


def cached_weights(entry: ModelEntry, *, allow_unverified: bool | None = None) -> Path | None:
    """The verified cached weights of ``entry`` from its most preferred usable source; never uses the network."""
    usable, _ = _usable(entry, _allow_unverified(allow_unverified))
    for source in usable:
        path = _cached_path(entry, source)
        if path is not None:
            return path
    return None


@dataclass(frozen=True)
class CacheStatus:
    """Where one source of a model is (or would be) cached."""

    source: Source
    usable: bool
    reason: str | None
    path: Path | None
    cached: bool
    size: int | None


def cache_status(entry: ModelEntry, *, allow_unverified: bool | None = None) -> list[CacheStatus]:
    """One :class:`CacheStatus` per source of ``entry``, in manifest order. Nothing is hashed or downloaded."""
    usable, skipped = _usable(entry, _allow_unverified(allow_unverified))
    reasons = {id(source): reason for source, reason in skipped}
    result = []
    for source in entry.sources:
        if isinstance(source, HubSource):
            path = _hub_cached_file(source) or _hub_expected_path(source)
            cached = path is not None and path.is_file()
        else:
            path = _zenodo_target(entry, source)
            cached = path.is_file() and _sidecar(path).is_file()
        size = path.stat().st_size if cached and path is not None else None
        result.append(
            CacheStatus(source, any(s is source for s in usable), reasons.get(id(source)), path, cached, size)
        )
    return result


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of re-hashing one cached file."""

    model: str
    path: Path
    ok: bool
    sha256: str | None
    message: str


def verify_cache(entry: ModelEntry) -> list[VerifyReport]:
    """Re-hash every cached file of ``entry``; a file that no longer matches is deleted and reported."""
    reports = []
    for status in cache_status(entry, allow_unverified=True):
        if not status.cached or status.path is None:
            continue
        source = status.source
        try:
            if isinstance(source, HubSource):
                digest: str | None = _verify_hub_file(entry, source, status.path, force=True)
            else:
                digest = _verify_zenodo_target(entry, source, status.path, force=True)
        except ChecksumMismatchError as exc:
            reports.append(VerifyReport(entry.name, status.path, False, None, str(exc)))
            continue
        if digest is None:
            reports.append(VerifyReport(entry.name, status.path, False, None, "no verification record: incomplete"))
        else:
            reports.append(VerifyReport(entry.name, status.path, True, digest, f"sha256 {digest} OK"))
    return reports


# --------------------------------------------------------------------------------------------------------------
# Downloads


def _hub_errors() -> tuple[type[BaseException], ...]:
    """Exceptions by which huggingface_hub reports that a file cannot be had (missing, unreachable, refused)."""
    from huggingface_hub.utils import EntryNotFoundError, HfHubHTTPError

    errors: list[type[BaseException]] = [EntryNotFoundError, HfHubHTTPError, OSError]
    for module_name, attribute in (("httpx2", "HTTPError"), ("httpx", "HTTPError"), ("requests", "RequestException")):
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, attribute):
            errors.append(getattr(module, attribute))
    return tuple(errors)


def _unreachable(url: str) -> str | None:
    """Why ``url``'s host cannot be reached at all (name not resolved, connection refused, no route), or None.

    huggingface_hub retries such failures with back-off for ~25 s; they cannot heal by retrying, so the Hub is
    probed first. Skipped behind a proxy, where the host itself is not ours to reach.
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    if not host or (urllib.request.getproxies().get(parts.scheme) and not urllib.request.proxy_bypass(host)):
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=_timeout()).close()
    except OSError as exc:
        if isinstance(exc, (socket.gaierror, ConnectionRefusedError)) or exc.errno in _UNREACHABLE_ERRNOS:
            return f"cannot connect to {parts.netloc} ({type(exc).__name__}: {exc})"
    return None


def download_hub_file(repo_id: str, filename: str, revision: str | None, *, local_files_only: bool = False) -> Path:
    """``filename`` of Hub ``repo_id`` at ``revision`` through huggingface_hub, into the Hugging Face cache.

    Raises ``_SourceUnavailable`` with one line saying why; an unreachable host fails at once, not after retries.
    """
    from huggingface_hub import constants, hf_hub_download

    if not local_files_only:
        reason = _unreachable(_hf_endpoint() or constants.ENDPOINT)
        if reason is not None:
            raise _SourceUnavailable(reason)
    try:
        found = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=str(hub_cache_dir()),
            endpoint=_hf_endpoint(),
            local_files_only=local_files_only,
            library_name=LIBRARY_NAME,
            library_version=__version__,
        )
    except _hub_errors() as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise _SourceUnavailable(f"{type(exc).__name__}: {first_line}") from None
    return Path(str(found))


def _fetch_hub(entry: ModelEntry, source: HubSource) -> Path:
    path = download_hub_file(source.repo_id, source.filename, source.revision)
    _verify_hub_file(entry, source, path)
    _check_weights_size(entry, path, source)
    return path


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """``(first byte, total)`` of a ``Content-Range: bytes a-b/total`` (or ``bytes */total``) header."""
    if not header or not header.startswith("bytes "):
        return None, None
    spec, _, total = header[len("bytes ") :].partition("/")
    first = int(spec.split("-", 1)[0]) if spec and spec != "*" and spec.split("-", 1)[0].isdigit() else None
    return first, int(total) if total.isdigit() else None


def _progress_bar(total: int | None, initial: int, desc: str, progress: bool | None) -> Any:
    from tqdm.auto import tqdm

    disable = None if progress is None else not progress
    if progress is None and _env_true("HF_HUB_DISABLE_PROGRESS_BARS"):
        disable = True
    return tqdm(
        total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=desc, disable=disable,
        file=sys.stderr, leave=True,
    )


def _http_download(url: str, destination: Path, *, expected_size: int | None, progress: bool | None) -> None:
    """Download ``url`` to ``destination`` through ``destination.part``, resuming with HTTP Range requests after
    a dropped connection (and across runs). Raises :class:`_SourceUnavailable` when the file cannot be had."""
    part = destination.with_name(destination.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    while True:
        offset = part.stat().st_size if part.exists() else 0
        if expected_size is not None and offset > expected_size:
            part.unlink()
            offset = 0
        if expected_size is not None and offset == expected_size and offset > 0:
            break
        request = urllib.request.Request(
            url, headers={"User-Agent": f"{LIBRARY_NAME}/{__version__}", "Accept-Encoding": "identity"}
        )
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        connected = False
        try:
            with urllib.request.urlopen(request, timeout=_timeout()) as response:
                connected = True
                first, total = _content_range(response.headers.get("Content-Range"))
                if response.status == 206 and first != offset:  # not the part we asked for: start over
                    part.unlink(missing_ok=True)
                    raise http.client.HTTPException(f"asked for bytes {offset}-, got a range from byte {first}")
                if response.status == 206:
                    mode = "ab"
                else:  # the server ignored the range (or none was asked): start over
                    mode, offset = "wb", 0
                    length = response.headers.get("Content-Length")
                    total = int(length) if length and length.isdigit() else None
                if expected_size is not None and total is not None and total != expected_size:
                    part.unlink(missing_ok=True)
                    raise ChecksumMismatchError(
                        f"{url} has {total} bytes but the manifest expects {expected_size}: it is not the released "
                        "file; nothing was kept"
                    )
                received = offset
                with open(part, mode) as handle, _progress_bar(total, offset, destination.name, progress) as bar:
                    while chunk := response.read(_CHUNK):
                        handle.write(chunk)
                        received += len(chunk)
                        bar.update(len(chunk))
                if total is not None and received < total:
                    raise http.client.IncompleteRead(b"", total - received)
            break
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:
                _, total = _content_range(exc.headers.get("Content-Range"))
                if total == offset:
                    break  # the partial file is already complete
                part.unlink(missing_ok=True)
                continue
            if exc.code in _RETRY_STATUS and failures + 1 < _MAX_ATTEMPTS:
                failures += 1
                time.sleep(min(0.25 * 2 ** (failures - 1), 4.0))
                continue
            raise _SourceUnavailable(f"HTTP {exc.code} {exc.reason} for {url}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(exc, OSError) and exc.errno in _LOCAL_ERRNOS:
                raise  # the local disk, not the network: retrying cannot help
            if not connected:
                # no name resolution, refused, unreachable: nothing was interrupted, so retrying cannot help
                raise _SourceUnavailable(
                    f"cannot connect to {urllib.parse.urlsplit(url).netloc} ({type(reason).__name__}: {reason})"
                ) from None
            failures += 1
            if failures >= _MAX_ATTEMPTS:
                raise _SourceUnavailable(
                    f"download of {url} failed {failures} times ({type(reason).__name__}: {reason}); run the "
                    "command again to resume from the bytes already received"
                ) from None
            received = part.stat().st_size if part.exists() else 0
            logger.warning("connection to %s lost at byte %d (%s); resuming", url, received, type(reason).__name__)
            time.sleep(min(0.25 * 2 ** (failures - 1), 4.0))
    os.replace(part, destination)


def _fetch_zenodo(entry: ModelEntry, source: ZenodoSource, *, keep_checkpoint: bool, progress: bool | None) -> Path:
    from .convert import extract_backbone, read_checkpoint, write_weights

    folder = _zenodo_folder(source)
    checkpoint = folder / source.filename
    target = _zenodo_target(entry, source)
    if not checkpoint.is_file():
        logger.info("downloading %s", source.describe())
        _http_download(source.url, checkpoint, expected_size=source.size, progress=progress)
    md5, sha256 = md5_and_sha256_file(checkpoint)
    size = checkpoint.stat().st_size
    actual = {"md5": md5, "sha256": sha256}
    if source.size is not None and size != source.size:
        checkpoint.unlink()
        raise _mismatch(f"CLEF-{entry.name}", checkpoint, f"{source.size} bytes", f"{size} bytes", source)
    if source.checksum is not None:
        algorithm = source.checksum_algorithm
        assert algorithm is not None
        if actual[algorithm] != source.checksum_hex:
            checkpoint.unlink()
            raise _mismatch(
                f"CLEF-{entry.name}",
                checkpoint,
                source.checksum,
                f"{algorithm}:{actual[algorithm]}",
                source,
                extra=f" (sha256 of the received file: {sha256})",
            )
    else:
        warnings.warn(
            f"CLEF-{entry.name}: using {source.describe()} WITHOUT a checksum to check it against "
            f"({ALLOW_UNVERIFIED_ENV} / allow_unverified=True). The received file has md5:{md5} and "
            f"sha256:{sha256}; compare them with the checksum Zenodo shows for {source.filename} and pin it in "
            "the manifest.",
            UserWarning,
            stacklevel=4,
        )
    weights = extract_backbone(read_checkpoint(checkpoint), source=str(checkpoint))
    if weights.size != entry.name:
        raise CheckpointError(
            f"{source.describe()} holds CLEF-{weights.size} weights, not CLEF-{entry.name}: the manifest entry "
            f"points at the wrong file ({checkpoint} kept for inspection)"
        )
    digest = write_weights(
        weights,
        target,
        extra_metadata={
            "source_file": source.filename,
            "source_sha256": sha256,
            "source_md5": md5,
            "source_url": source.url,
        },
    )
    stat = target.stat()
    _write_json(
        _sidecar(target),
        {
            "sha256": digest,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "model": entry.name,
            "source": {k: v for k, v in source.raw.items() if k not in ("provenance", "notes", "status")},
            "checkpoint": {"filename": source.filename, "size": size, "md5": md5, "sha256": sha256},
            "checksum_verified": source.checksum is not None,
            "converted_by": f"{LIBRARY_NAME} {__version__}",
            "created": _now(),
        },
    )
    if keep_checkpoint:
        logger.info("kept the checkpoint at %s", checkpoint)
    else:
        checkpoint.unlink(missing_ok=True)
    return target


@contextmanager
def _model_lock(entry: ModelEntry) -> Iterator[None]:
    """Serialise downloads of one model across processes (and threads)."""
    from filelock import FileLock, Timeout

    path = clef_home() / ".locks" / f"clef-{entry.name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0.5)
    except Timeout:
        logger.warning("waiting for another process that is downloading CLEF-%s (lock %s)", entry.name, path)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _offline_error(
    entry: ModelEntry, usable: list[Source], skipped: list[tuple[Source, str]], why: str
) -> str:
    lines = [f"CLEF-{entry.name} is not in the local cache and downloads are off ({why})."]
    if usable:
        lines.append("Looked for:")
        for source in usable:
            if isinstance(source, HubSource):
                lines.append(f"  - {source.describe()}: {_hub_expected_path(source)} (missing)")
            else:
                lines.append(f"  - converted from {source.describe()}: {_zenodo_target(entry, source)} (missing)")
    for source, reason in skipped:
        lines.append(f"  - skipped {source.describe()}: {reason}")
    lines.append(
        f"To fetch it, run `clef download {entry.name}` on a machine with internet access (same clef-sdk version "
        f"and manifest), then copy its cache folders to this machine: the Hugging Face cache ({hub_cache_dir()}, "
        f"env HF_HUB_CACHE) and the clef-sdk cache ({clef_home()}, env {HOME_ENV}); by default both lie in "
        "HF_HOME (~/.cache/huggingface), so copying that one folder is enough. Copied elsewhere, point HF_HUB_CACHE "
        f"and {HOME_ENV} at the copies. Or load a local file: clef.load('path/to/clef_{entry.name}.ckpt')"
    )
    return "\n".join(lines)


def fetch_weights(
    entry: ModelEntry,
    *,
    local_files_only: bool = False,
    keep_checkpoint: bool = False,
    allow_unverified: bool | None = None,
    progress: bool | None = None,
) -> Path:
    """Path of verified safetensors weights for ``entry``, downloading them on first use.

    Args:
        entry: the manifest entry (:func:`clef_sdk.registry.model_entry`).
        local_files_only: never use the network (``HF_HUB_OFFLINE=1`` does the same); fail if not cached.
        keep_checkpoint: keep the downloaded Zenodo ``.ckpt`` beside the converted file instead of deleting it.
        allow_unverified: use a Zenodo source whose checksum the manifest does not know (default: the
            ``CLEF_SDK_ALLOW_UNVERIFIED`` environment variable). A warning gives the received file's hashes.
        progress: show download progress bars (``None``: when stderr is a terminal).

    Raises:
        WeightsNotAvailableError: offline and not cached, or no source could deliver the file.
        ChecksumMismatchError: a downloaded or cached file does not match its checksum (it is deleted).
    """
    opted_in = _allow_unverified(allow_unverified)
    usable, skipped = _usable(entry, opted_in)
    for source in usable:  # the cache first: no network at all when a verified copy is there
        path = _cached_path(entry, source)
        if path is not None:
            return path
    if is_offline(local_files_only):
        why = "local_files_only=True" if local_files_only else "HF_HUB_OFFLINE is set"
        raise WeightsNotAvailableError(_offline_error(entry, usable, skipped, why))
    if not usable:
        reasons = "; ".join(f"{source.describe()}: {reason}" for source, reason in skipped) or "the manifest lists none"
        hint = (
            f" To accept a download whose checksum is unknown, set {ALLOW_UNVERIFIED_ENV}=1 (a warning gives the "
            "received file's hashes)."
            if any(isinstance(source, ZenodoSource) for source, _ in skipped)
            else ""
        )
        raise WeightsNotAvailableError(
            f"no usable source for CLEF-{entry.name} ({reasons}).{hint} Or pass a local file: "
            f"clef.load('path/to/clef_{entry.name}.ckpt')"
        )
    failures: list[str] = []
    with _model_lock(entry):
        for source in usable:
            path = _cached_path(entry, source)  # another process may have fetched it while we waited
            if path is not None:
                return path
            try:
                if isinstance(source, HubSource):
                    path = _fetch_hub(entry, source)
                else:
                    path = _fetch_zenodo(entry, source, keep_checkpoint=keep_checkpoint, progress=progress)
            except _SourceUnavailable as exc:
                failures.append(f"{source.describe()}: {exc}")
                continue
            for failure in failures:  # said once, and only when another source served: else the error says it
                logger.warning("CLEF-%s: %s; used %s instead", entry.name, failure, source.describe())
            return path
    skipped_text = "".join(f"; skipped {source.describe()}: {reason}" for source, reason in skipped)
    raise WeightsNotAvailableError(
        f"could not download CLEF-{entry.name}: " + "; ".join(failures) + skipped_text + ". Check the connection "
        f"(and HF_ENDPOINT / proxy settings) and try again, or pass a local file: "
        f"clef.load('path/to/clef_{entry.name}.ckpt')"
    )
