"""The one module of clef_sdk that opens network connections: Hub downloads and uploads through huggingface_hub,
and resumable HTTP downloads (Zenodo).

Failures that another source may make good raise `SourceUnavailable` with one line saying why; a host that
cannot be reached at all fails at once rather than after retries. ``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and
``CLEF_SDK_DOWNLOAD_TIMEOUT`` (seconds, 0.1 to 3600) are read when a call is made; a value that is not valid is a
``ValueError`` naming the variable before anything is asked of the network.
"""

from __future__ import annotations

import errno
import http.client
import logging
import os
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._version import __version__
from ..constants import LIBRARY_NAME
from ..errors import ChecksumMismatchError, ClefError, OutputError
from ..settings import env_float
from .cache import env_true, hub_cache_dir, is_offline

__all__ = [
    "TIMEOUT_ENV",
    "SourceUnavailable",
    "download_hub_file",
    "download_timeout",
    "http_download",
    "upload_folder",
]

TIMEOUT_ENV = "CLEF_SDK_DOWNLOAD_TIMEOUT"

_DEFAULT_TIMEOUT = 30.0
_MIN_TIMEOUT, _MAX_TIMEOUT = 0.1, 3600.0
_CHUNK = 1 << 20
_MAX_ATTEMPTS = 5
_RETRY_STATUS = (408, 425, 429, 500, 502, 503, 504)
_UNREACHABLE_ERRNOS = {getattr(errno, name) for name in ("ENETUNREACH", "EHOSTUNREACH") if hasattr(errno, name)}
_LOCAL_ERRNOS = {
    getattr(errno, name) for name in ("ENOSPC", "EACCES", "EROFS", "EDQUOT", "EPERM") if hasattr(errno, name)
}

_GLOB_CHARACTERS = set("*?[]\\")

logger = logging.getLogger("clef_sdk")


class SourceUnavailable(Exception):
    """A source could not deliver the file (not found, unreachable, refused): the next source is tried."""


def download_timeout() -> float:
    """Seconds a connection may stall (``$CLEF_SDK_DOWNLOAD_TIMEOUT``, default 30): a finite number from 0.1 to
    3600, else ``ValueError`` naming the variable (``inf``, ``nan``, 0 or a negative number are not used)."""
    return env_float(TIMEOUT_ENV, _DEFAULT_TIMEOUT, low=_MIN_TIMEOUT, high=_MAX_TIMEOUT)


def _hf_endpoint() -> str | None:
    endpoint = os.environ.get("HF_ENDPOINT")
    return endpoint.rstrip("/") if endpoint else None


def _hub_errors() -> tuple[type[BaseException], ...]:
    """Exceptions by which huggingface_hub reports that a file cannot be had (missing, unreachable, refused)."""
    from huggingface_hub.utils import EntryNotFoundError, HfHubHTTPError

    errors: list[type[BaseException]] = [EntryNotFoundError, HfHubHTTPError, OSError]
    for module_name, attribute in (("httpx2", "HTTPError"), ("httpx", "HTTPError"), ("requests", "RequestException")):
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, attribute):
            errors.append(getattr(module, attribute))
    return tuple(errors)


def _unreachable(url: str, timeout: float) -> str | None:
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
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        if isinstance(exc, (socket.gaierror, ConnectionRefusedError)) or exc.errno in _UNREACHABLE_ERRNOS:
            return f"cannot connect to {parts.netloc} ({type(exc).__name__}: {exc})"
    return None


def download_hub_file(repo_id: str, filename: str, revision: str | None, *, local_files_only: bool = False) -> Path:
    """``filename`` of Hub ``repo_id`` at ``revision`` through huggingface_hub, into the Hugging Face cache.

    Raises ``SourceUnavailable`` with one line saying why; an unreachable host fails at once, not after retries.
    """
    from huggingface_hub import constants, hf_hub_download

    timeout = download_timeout()  # an invalid setting is an error before anything is asked of the network
    if not local_files_only:
        reason = _unreachable(_hf_endpoint() or constants.ENDPOINT, timeout)
        if reason is not None:
            raise SourceUnavailable(reason)
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
        raise SourceUnavailable(f"{type(exc).__name__}: {first_line}") from None
    return Path(str(found))


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """``(first byte, total)`` of a ``Content-Range: bytes a-b/total`` (or ``bytes */total``) header."""
    if not header or not header.startswith("bytes "):
        return None, None
    spec, _, total = header[len("bytes ") :].partition("/")
    first = int(spec.split("-", 1)[0]) if spec and spec != "*" and spec.split("-", 1)[0].isdigit() else None
    return first, int(total) if total.isdigit() else None


def _progress_disabled(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: as [`clef_sdk.progress.progress_disabled`][clef_sdk.progress.progress_disabled], and off where the Hub's flag says so."""
    from ..progress import progress_disabled

    disable = progress_disabled(progress)
    if disable is None and env_true("HF_HUB_DISABLE_PROGRESS_BARS"):
        return True
    return disable


def _progress_bar(total: int | None, initial: int, desc: str, disable: bool | None) -> Any:
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=desc,
        disable=disable,
        file=sys.stderr,
        leave=True,
    )


def http_download(url: str, destination: Path, *, expected_size: int | None, progress: bool | None) -> None:
    """Download ``url`` to ``destination`` through ``destination.part``, resuming with HTTP Range requests after
    a dropped connection (and across runs). Raises `SourceUnavailable` when the file cannot be had."""
    timeout, disable = download_timeout(), _progress_disabled(progress)  # settings checked before any request
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
            with urllib.request.urlopen(request, timeout=timeout) as response:
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
                with open(part, mode) as handle, _progress_bar(total, offset, destination.name, disable) as bar:
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
            raise SourceUnavailable(f"HTTP {exc.code} {exc.reason} for {url}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(exc, OSError) and exc.errno in _LOCAL_ERRNOS:
                if exc.filename is not None:
                    raise  # the local disk, not the network: retrying cannot help
                raise OSError(exc.errno, f"{exc.strerror} (writing {part})", str(part)) from exc
            if not connected:
                # no name resolution, refused, unreachable: nothing was interrupted, so retrying cannot help
                raise SourceUnavailable(
                    f"cannot connect to {urllib.parse.urlsplit(url).netloc} ({type(reason).__name__}: {reason})"
                ) from None
            failures += 1
            if failures >= _MAX_ATTEMPTS:
                raise SourceUnavailable(
                    f"download of {url} failed {failures} times ({type(reason).__name__}: {reason}); run the "
                    "command again to resume from the bytes already received"
                ) from None
            received = part.stat().st_size if part.exists() else 0
            logger.warning("connection to %s lost at byte %d (%s); resuming", url, received, type(reason).__name__)
            time.sleep(min(0.25 * 2 ** (failures - 1), 4.0))
    os.replace(part, destination)


def upload_folder(
    folder: Path,
    repo_id: str,
    message: str,
    *,
    files: Sequence[str],
    private: bool = False,
    token: str | None = None,
    api: Any = None,
) -> Any:
    """Create ``repo_id`` if needed and upload the ``files`` of ``folder`` (names directly in it) as one commit;
    returns huggingface_hub's commit info. Nothing else in the folder is uploaded, whatever it holds.

    ``api``: an object with ``HfApi.create_repo``/``upload_folder`` (default: a new ``HfApi`` for ``HF_ENDPOINT``).
    """
    names = list(files)
    odd = [name for name in names if not name or _GLOB_CHARACTERS & set(name) or "/" in name or name in (".", "..")]
    if odd or not names:
        raise ValueError(f"files must be plain file names directly in {folder}, got {odd or names!r}")
    missing = [name for name in names if not (Path(folder) / name).is_file()]
    if missing:
        raise OutputError(f"cannot upload {folder}: {', '.join(missing)} missing; write the folder again")
    if is_offline():
        raise ClefError("HF_HUB_OFFLINE is set: cannot upload; unset it or use --dry-run")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=_hf_endpoint(), token=token, library_name=LIBRARY_NAME, library_version=__version__)
    api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
    # allow_patterns are fnmatch patterns matched against paths relative to the folder: a plain name matches
    # exactly that file at the top of the folder, nothing else.
    return api.upload_folder(
        repo_id=repo_id, folder_path=str(folder), repo_type="model", commit_message=message, allow_patterns=names
    )
