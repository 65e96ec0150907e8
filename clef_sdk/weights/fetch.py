"""Named weights, fetched on first use: ``fetch_weights(entry)`` -> the path of verified safetensors weights.

A model name resolves through the manifest ([`clef_sdk.weights.registry`][clef_sdk.weights.registry]) to sources tried in order:

- **Hugging Face Hub** (``type: hub``): downloaded with `huggingface_hub.hf_hub_download` at the pinned
  commit into the Hugging Face cache. A hub source without a pinned commit and sha256 is skipped.
- **Zenodo** (``type: zenodo``): the authors' released Lightning checkpoint, downloaded with a progress bar
  and resume (HTTP ``Range``), checked against the checksum Zenodo publishes, converted locally to safetensors
  (``torch.load(weights_only=True)``), and cached under ``$CLEF_SDK_HOME`` ([`clef_sdk.weights.cache`][clef_sdk.weights.cache]),
  keyed by the source checksum. The ``.ckpt`` is then deleted unless kept.

The cache is looked at first and the network ([`clef_sdk.weights.network`][clef_sdk.weights.network]) used only for what is missing.
Downloads of one model are serialised across processes by a file lock, so concurrent first loads produce one file.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._version import __version__
from ..constants import LIBRARY_NAME
from ..errors import CheckpointError, ChecksumMismatchError, WeightsNotAvailableError
from ..readable import md5_and_sha256_readable
from .cache import (
    ALLOW_UNVERIFIED_ENV,
    HOME_ENV,
    cached_path,
    check_weights_size,
    clef_home,
    hub_cache_dir,
    hub_expected_path,
    is_offline,
    mismatch,
    now,
    sidecar,
    unverified_allowed,
    usable_sources,
    verify_hub_file,
    write_json,
    zenodo_folder,
    zenodo_target,
)
from .format import extract_backbone, read_checkpoint, write_weights
from .network import SourceUnavailable, download_hub_file, http_download
from .registry import HubSource, ModelEntry, Source, ZenodoSource

__all__ = ["fetch_weights", "install_checkpoint"]

logger = logging.getLogger("clef_sdk")


def _fetch_hub(entry: ModelEntry, source: HubSource) -> Path:
    path = download_hub_file(source.repo_id, source.filename, source.revision)
    verify_hub_file(entry, source, path)
    check_weights_size(entry, path, source)
    return path


def _fetch_zenodo(entry: ModelEntry, source: ZenodoSource, *, keep_checkpoint: bool, progress: bool | None) -> Path:
    folder = zenodo_folder(source)
    checkpoint = folder / source.filename
    if not checkpoint.is_file():
        logger.info("downloading %s", source.describe())
        http_download(source.url, checkpoint, expected_size=source.size, progress=progress)
    return _install(entry, source, checkpoint, delete_checkpoint=not keep_checkpoint, received="downloaded")


def _install(
    entry: ModelEntry, source: ZenodoSource, checkpoint: Path, *, delete_checkpoint: bool, received: str
) -> Path:
    """Check ``checkpoint`` against ``source`` (size, checksum), convert it and cache the result as
    `fetch_weights` finds it; ``delete_checkpoint``: remove it afterwards (and when it does not match)."""
    target = zenodo_target(entry, source)
    md5, sha256 = md5_and_sha256_readable(checkpoint, f"{received} checkpoint")
    size = checkpoint.stat().st_size
    actual = {"md5": md5, "sha256": sha256}

    def rejected(expected: str, got: str, extra: str = "") -> ChecksumMismatchError:
        if delete_checkpoint:
            checkpoint.unlink()
        return mismatch(f"CLEF-{entry.name}", checkpoint, expected, got, source, extra, kept=not delete_checkpoint)

    if source.size is not None and size != source.size:
        raise rejected(f"{source.size} bytes", f"{size} bytes")
    if source.checksum is not None:
        algorithm = source.checksum_algorithm
        assert algorithm is not None
        if actual[algorithm] != source.checksum_hex:
            raise rejected(
                source.checksum, f"{algorithm}:{actual[algorithm]}", f" (sha256 of the received file: {sha256})"
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
    write_json(
        sidecar(target),
        {
            "sha256": digest,
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "model": entry.name,
            "source": {k: v for k, v in source.raw.items() if k not in ("provenance", "notes", "status")},
            "checkpoint": {"filename": source.filename, "size": size, "md5": md5, "sha256": sha256},
            "checksum_verified": source.checksum is not None,
            "converted_by": f"{LIBRARY_NAME} {__version__}",
            "created": now(),
        },
    )
    if delete_checkpoint:
        checkpoint.unlink(missing_ok=True)
    else:
        logger.info("kept the checkpoint at %s", checkpoint)
    return target


def install_checkpoint(
    entry: ModelEntry | str, path: str | os.PathLike[str], *, allow_unverified: bool | None = None
) -> Path:
    """Cache a released checkpoint fetched by hand (behind a firewall: ``clef_small.ckpt`` from Zenodo) exactly
    as a download would be: checked against the manifest's size and checksum, converted to safetensors, so that
    ``model="small"`` works offline from then on. ``path`` itself is only read. Returns the cached weights.

    Raises:
        ChecksumMismatchError: ``path`` is not the released file (another size or checksum).
        WeightsNotAvailableError: the manifest lists no Zenodo checkpoint for ``entry`` (or none with a checksum,
            unless ``allow_unverified``).
    """
    if isinstance(entry, str):
        from .registry import model_entry

        entry = model_entry(entry)
    checkpoint = Path(path)
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint} does not exist or is not a file; pass the downloaded .ckpt")
    usable, skipped = usable_sources(entry, unverified_allowed(allow_unverified))
    zenodo = [source for source in usable if isinstance(source, ZenodoSource)]
    if not zenodo:
        reasons = "; ".join(f"{source.describe()}: {reason}" for source, reason in skipped) or "none listed"
        raise WeightsNotAvailableError(
            f"the manifest has no verified Zenodo checkpoint for CLEF-{entry.name} to check {checkpoint} against "
            f"({reasons}); load the file by its path instead"
        )
    with _model_lock(entry):
        return _install(entry, zenodo[0], checkpoint, delete_checkpoint=False, received="given")


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


def _local_file_hint(entry: ModelEntry) -> str:
    """How to use a local copy instead, in Python (the ``clef`` command rewrites it as ``--model PATH``)."""
    return f"clef.load('path/to/clef_{entry.name}.ckpt')"


def _offline_error(entry: ModelEntry, usable: list[Source], skipped: list[tuple[Source, str]], why: str) -> str:
    lines = [f"CLEF-{entry.name} is not in the local cache and downloads are off ({why})."]
    if usable:
        lines.append("Looked for:")
        for source in usable:
            if isinstance(source, HubSource):
                lines.append(f"  - {source.describe()}: {hub_expected_path(source)} (missing)")
            else:
                lines.append(f"  - converted from {source.describe()}: {zenodo_target(entry, source)} (missing)")
    for source, reason in skipped:
        lines.append(f"  - skipped {source.describe()}: {reason}")
    lines.append(
        f"To fetch it, run `clef download {entry.name}` on a machine with internet access (same clef-sdk version "
        f"and manifest), then copy its cache folders to this machine: the Hugging Face cache ({hub_cache_dir()}, "
        f"env HF_HUB_CACHE) and the clef-sdk cache ({clef_home()}, env {HOME_ENV}); by default both lie in "
        "HF_HOME (~/.cache/huggingface), so copying that one folder is enough. Copied elsewhere, point HF_HUB_CACHE "
        f"and {HOME_ENV} at the copies. Or load a local file: {_local_file_hint(entry)}"
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
        entry: the manifest entry (`clef_sdk.weights.registry.model_entry`).
        local_files_only: never use the network (``HF_HUB_OFFLINE=1`` does the same); fail if not cached.
        keep_checkpoint: keep the downloaded Zenodo ``.ckpt`` beside the converted file instead of deleting it.
        allow_unverified: use a Zenodo source whose checksum the manifest does not know (default: the
            ``CLEF_SDK_ALLOW_UNVERIFIED`` environment variable). A warning gives the received file's hashes.
        progress: show download progress bars (``None``: when stderr is a terminal).

    Raises:
        WeightsNotAvailableError: offline and not cached, or no source could deliver the file.
        ChecksumMismatchError: a downloaded or cached file does not match its checksum (it is deleted).
    """
    opted_in = unverified_allowed(allow_unverified)
    usable, skipped = usable_sources(entry, opted_in)
    for source in usable:  # the cache first: no network at all when a verified copy is there
        path = cached_path(entry, source)
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
            f"no usable source for CLEF-{entry.name} ({reasons}).{hint} Or pass a local file: {_local_file_hint(entry)}"
        )
    failures: list[str] = []
    with _model_lock(entry):
        for source in usable:
            path = cached_path(entry, source)  # another process may have fetched it while we waited
            if path is not None:
                return path
            try:
                if isinstance(source, HubSource):
                    path = _fetch_hub(entry, source)
                else:
                    path = _fetch_zenodo(entry, source, keep_checkpoint=keep_checkpoint, progress=progress)
            except SourceUnavailable as exc:
                failures.append(f"{source.describe()}: {exc}")
                continue
            for failure in failures:  # said once, and only when another source served: else the error says it
                logger.warning("CLEF-%s: %s; used %s instead", entry.name, failure, source.describe())
            return path
    skipped_text = "".join(f"; skipped {source.describe()}: {reason}" for source, reason in skipped)
    raise WeightsNotAvailableError(
        f"could not download CLEF-{entry.name}: " + "; ".join(failures) + skipped_text + ". Check the connection "
        f"(and HF_ENDPOINT / proxy settings) and try again, or pass a local file: "
        f"{_local_file_hint(entry)}"
    )
