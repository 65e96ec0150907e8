"""The local weights cache: where files live, how they are verified, what is cached. No network access here.

Hub files live in the Hugging Face cache (``HF_HUB_CACHE``, resolved as huggingface_hub does); files converted
from Zenodo checkpoints in clef-sdk's own folder (``$CLEF_SDK_HOME``, default ``clef-sdk`` next to the Hugging Face
cache), keyed by the source checksum. Every file is sha256-verified before its first use and the verification is
recorded (a small JSON file), so that later loads only compare size and modification time; `verify_cache`
re-hashes everything. A file that no longer matches is deleted and
[`ChecksumMismatchError`][clef_sdk.errors.ChecksumMismatchError] raised. A file or record that cannot be read (permissions) is a
[`CheckpointError`][clef_sdk.errors.CheckpointError] saying so, and is never deleted; a record that is not valid JSON vouches
for nothing: a Hub file is hashed again, a converted file converted again (with a warning naming the record).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import CheckpointError, ChecksumMismatchError
from ..files import atomic_path
from ..readable import check_readable, sha256_readable, unreadable
from ..settings import env_flag
from .registry import HubSource, ModelEntry, Source, ZenodoSource

__all__ = [
    "ALLOW_UNVERIFIED_ENV",
    "HOME_ENV",
    "CacheStatus",
    "VerifyReport",
    "unverified_allowed",
    "cache_status",
    "cached_path",
    "cached_weights",
    "check_weights_size",
    "clef_home",
    "env_true",
    "hub_cache_dir",
    "hub_expected_path",
    "is_offline",
    "mismatch",
    "now",
    "sidecar",
    "usable_sources",
    "verify_cache",
    "verify_hub_file",
    "write_json",
    "zenodo_folder",
    "zenodo_target",
]

HOME_ENV = "CLEF_SDK_HOME"
ALLOW_UNVERIFIED_ENV = "CLEF_SDK_ALLOW_UNVERIFIED"

logger = logging.getLogger("clef_sdk")


# --------------------------------------------------------------------------------------------------------------
# Locations and settings (read from the environment at every call, so that changes take effect at once)


def env_true(name: str) -> bool:
    """The flag ``name``: 1/true/yes/on are on; unset, empty and 0/false/no/off off (any case); anything else is a
    ``ValueError`` naming the variable, never silently read as on or off ([`clef_sdk.settings.env_flag`][clef_sdk.settings.env_flag])."""
    return env_flag(name)


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
    if local_files_only or env_true("HF_HUB_OFFLINE"):
        return True
    # huggingface_hub reads HF_HUB_OFFLINE once, at import; honour it too if it was imported (or set) earlier.
    constants = sys.modules.get("huggingface_hub.constants")
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def unverified_allowed(allow_unverified: bool | None) -> bool:
    """Whether downloads without a known checksum may be used: the argument, else ``$CLEF_SDK_ALLOW_UNVERIFIED``."""
    return env_true(ALLOW_UNVERIFIED_ENV) if allow_unverified is None else allow_unverified


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


def hub_expected_path(source: HubSource) -> Path | None:
    if not source.pinned:
        return None
    assert source.revision is not None
    return _hub_repo_folder(source) / "snapshots" / source.revision / source.filename


def _hub_record(source: HubSource) -> Path:
    return clef_home() / "verified" / f"{source.sha256}.json"


def zenodo_folder(source: ZenodoSource) -> Path:
    if source.checksum_hex:
        key = f"{source.checksum_algorithm}-{source.checksum_hex}"
    else:  # opted-in unverified download: keyed by URL so that a changed manifest never reuses it
        key = "unverified-" + hashlib.sha256(source.url.encode()).hexdigest()[:16]
    return clef_home() / "zenodo" / source.record / key


def zenodo_target(entry: ModelEntry, source: ZenodoSource) -> Path:
    return zenodo_folder(source) / f"clef-{entry.name}.safetensors"


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _read_record(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """A cache record (JSON object) and, when it cannot be used, why: ``(None, None)`` if there is none,
    ``(None, reason)`` if it is not a JSON object. A record that exists but cannot be read (permissions) raises
    `CheckpointError` naming it: what it vouches for is then unknown, and nothing is deleted or replaced."""
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise unreadable(path, exc, "cache record") from None
    try:
        data = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None, f"the cache record {path} is not a valid JSON object ({type(exc).__name__}: {str(exc)[:120]})"
    if not isinstance(data, dict):
        return None, f"the cache record {path} is not a valid JSON object (found {type(data).__name__})"
    return data, None


def write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def now() -> str:
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


def mismatch(
    what: str, path: Path, expected: str, actual: str, source: Source, extra: str = "", *, kept: bool = False
) -> ChecksumMismatchError:
    """The error for a file that is not the one the manifest pins; ``kept``: the caller's own file, left alone."""
    if kept:
        return ChecksumMismatchError(
            f"{what}: {path} is not the released file: expected {expected}, got {actual}{extra} (source: "
            f"{source.describe()}). Nothing was cached and the file is left as it is; download it again (an "
            "interrupted or altered download differs) and compare its checksum with the one the source shows"
        )
    return ChecksumMismatchError(
        f"{what}: checksum mismatch for {path}: expected {expected}, got {actual}{extra} (source: "
        f"{source.describe()}). The file has been deleted. Run the command again to download it anew; if the "
        "mismatch persists, the file served by that source is not the one the manifest pins: do not use it, and "
        "report it (or point CLEF_SDK_MANIFEST at a corrected manifest)"
    )


def verify_hub_file(entry: ModelEntry, source: HubSource, path: Path, *, force: bool = False) -> str:
    """Check a cached hub file against the manifest's size and sha256 (cheaply if already recorded)."""
    assert source.sha256 is not None
    record_path = _hub_record(source)
    what = f"CLEF-{entry.name}"
    size = path.stat().st_size
    if source.size is not None and size != source.size:
        _delete_cached(path)
        record_path.unlink(missing_ok=True)
        raise mismatch(what, path, f"{source.size} bytes", f"{size} bytes", source)
    record, problem = _read_record(record_path)
    if problem is not None:
        logger.info("%s; hashing %s again", problem, path)
    if not force and _stat_matches(record, source.sha256, path):
        return source.sha256
    actual = sha256_readable(path, "cached weights file")
    if actual != source.sha256:
        _delete_cached(path)
        record_path.unlink(missing_ok=True)
        raise mismatch(what, path, f"sha256:{source.sha256}", f"sha256:{actual}", source)
    stat = path.stat()
    write_json(
        record_path,
        {
            "sha256": actual,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "path": str(path),
            "source": source.describe(),
            "verified_at": now(),
        },
    )
    return actual


def _verify_zenodo_target(
    entry: ModelEntry, source: ZenodoSource, path: Path, *, force: bool = False
) -> tuple[str | None, str | None]:
    """``(sha256, None)`` of a converted file that is complete (has its record), else ``(None, why)``, ``why`` being
    ``None`` for an interrupted conversion (no record); raises if the file no longer matches its record."""
    record, problem = _read_record(sidecar(path))
    if record is not None and not isinstance(record.get("sha256"), str):
        record, problem = None, f"the cache record {sidecar(path)} has no sha256"
    if record is None:
        return None, problem  # not cached: an interrupted conversion, or a record that vouches for nothing
    expected = record["sha256"]
    if not force and _stat_matches(record, expected, path):
        return expected, None
    actual = sha256_readable(path, "cached weights file")
    if actual != expected:
        _delete_cached(path)
        sidecar(path).unlink(missing_ok=True)
        raise mismatch(f"CLEF-{entry.name}", path, f"sha256:{expected}", f"sha256:{actual}", source)
    stat = path.stat()
    write_json(sidecar(path), {**record, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
    return actual, None


def check_weights_size(entry: ModelEntry, path: Path, source: Source) -> None:
    """Refuse a file whose clef-sdk metadata names another size than the entry (reads only the header)."""
    from safetensors import safe_open

    check_readable(path, "weights file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            size = (handle.metadata() or {}).get("size")
    except Exception as exc:  # safetensors raises several error types for corrupt headers
        raise CheckpointError(
            f"{path} (from {source.describe()}) is not a valid safetensors file ({exc}): the manifest entry points "
            "at a file that is not clef-sdk weights"
        ) from None
    if size is None:
        raise CheckpointError(
            f"{path} (from {source.describe()}) has no size in its metadata, so it is not a clef-sdk weights file: "
            "the manifest entry points at the wrong file"
        )
    if size != entry.name:
        raise CheckpointError(
            f"{path} (from {source.describe()}) holds CLEF-{size} weights, not CLEF-{entry.name}: the manifest "
            "entry points at the wrong file"
        )


# --------------------------------------------------------------------------------------------------------------
# Cache queries


def usable_sources(entry: ModelEntry, allow_unverified: bool) -> tuple[list[Source], list[tuple[Source, str]]]:
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


def cached_path(entry: ModelEntry, source: Source) -> Path | None:
    """The verified cached file of one source, or ``None``; raises ChecksumMismatchError for a corrupted one."""
    if isinstance(source, HubSource):
        path = _hub_cached_file(source)
        if path is None or not path.is_file():
            return None
        verify_hub_file(entry, source, path)
        return path
    target = zenodo_target(entry, source)
    if not target.is_file():
        return None
    digest, problem = _verify_zenodo_target(entry, source, target)
    if digest is None and problem is not None:
        logger.warning("%s: %s is not used and will be converted again", problem, target)
    return target if digest is not None else None


def cached_weights(entry: ModelEntry, *, allow_unverified: bool | None = None) -> Path | None:
    """The verified cached weights of ``entry`` from its most preferred usable source; never uses the network."""
    usable, _ = usable_sources(entry, unverified_allowed(allow_unverified))
    for source in usable:
        path = cached_path(entry, source)
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
    """One `CacheStatus` per source of ``entry``, in manifest order. Nothing is hashed or downloaded."""
    usable, skipped = usable_sources(entry, unverified_allowed(allow_unverified))
    reasons = {id(source): reason for source, reason in skipped}
    result = []
    for source in entry.sources:
        if isinstance(source, HubSource):
            path = _hub_cached_file(source) or hub_expected_path(source)
            cached = path is not None and path.is_file()
        else:
            path = zenodo_target(entry, source)
            cached = path.is_file() and sidecar(path).is_file()
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
            problem: str | None = None
            if isinstance(source, HubSource):
                digest: str | None = verify_hub_file(entry, source, status.path, force=True)
            else:
                digest, problem = _verify_zenodo_target(entry, source, status.path, force=True)
        except ChecksumMismatchError as exc:
            reports.append(VerifyReport(entry.name, status.path, False, None, str(exc)))
            continue
        if digest is None:
            if problem is not None:  # nothing vouches for the converted file: like a mismatch, it goes
                _delete_cached(status.path)
                sidecar(status.path).unlink(missing_ok=True)
                why = f"{problem}, so {status.path} cannot be verified and has been deleted; `clef download {entry.name}` converts it again"
            else:
                why = f"no verification record ({sidecar(status.path)}): an interrupted conversion"
            reports.append(VerifyReport(entry.name, status.path, False, None, why))
        else:
            reports.append(VerifyReport(entry.name, status.path, True, digest, f"sha256 {digest} OK"))
    return reports
