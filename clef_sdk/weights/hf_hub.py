"""Any CLEF model on the Hugging Face Hub, by repository id: ``clef.load("hf-hub:ORG/NAME@REVISION")`` for an
encoder, ``clef.load_task_model("hf-hub:ORG/NAME@REVISION")`` for a task model.

``hf-hub:ORG/NAME`` takes the default branch; ``@REVISION`` a branch, a tag or a 40-hex commit. The repository's
weights file (``model.safetensors`` for an encoder, written by ``clef convert``, ``clef train export`` or ``clef
publish``; ``task_model.safetensors`` for a task model, written by ``TaskModel.save`` and ``clef publish``) and
``config.json`` are downloaded with ``huggingface_hub`` into the Hugging Face cache (``HF_HUB_CACHE``,
``HF_ENDPOINT``, ``HF_HUB_OFFLINE`` and ``local_files_only`` honoured). Then:

- the branch or tag is resolved to its commit once, by the download; the commit is recorded on the encoder
  (``encoder.source``) and shown by ``clef info``, so a result can be traced to exact weights;
- the file is checked against the sha256 the Hub reported for it (the LFS etag, which the cache keeps as the
  blob's name), at every load: a cached file modified since is refused;
- the size and the preprocessing contract come from the safetensors metadata; a file that is not a clef-sdk file,
  or declares another preprocessing than this version implements, is refused with a message naming both (by the
  reader of its kind: [`clef_sdk.weights.format`][clef_sdk.weights.format], [`clef_sdk.tasks.format`][clef_sdk.tasks.format]).

Network access goes through [`clef_sdk.weights.network`][clef_sdk.weights.network]; errors are typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ChecksumMismatchError, WeightsNotAvailableError
from ..readable import sha256_readable
from .cache import is_offline

__all__ = [
    "HF_HUB_PREFIX",
    "TASK_MODEL_FILENAME",
    "WEIGHTS_FILENAME",
    "HubModelSource",
    "check_repo_id",
    "fetch_hub_model",
    "is_hub_spec",
    "parse_hub_spec",
]

HF_HUB_PREFIX = "hf-hub:"
WEIGHTS_FILENAME = "model.safetensors"
TASK_MODEL_FILENAME = "task_model.safetensors"
# What a repository holding the other kind of model is loaded with, said when the file asked for is missing.
_OTHER_KIND = {
    WEIGHTS_FILENAME: f"a task model ({TASK_MODEL_FILENAME}) is loaded with clef.load_task_model",
    TASK_MODEL_FILENAME: f"a CLEF encoder ({WEIGHTS_FILENAME}) is loaded with clef.load",
}
_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAX_REPO_ID = 200  # the Hub allows 96 characters per part


@dataclass(frozen=True)
class HubModelSource:
    """Where a model loaded by repository id came from: ``revision`` as asked, ``commit`` as resolved, the
    ``filename`` in the repository, its ``sha256`` (verified) and its ``path`` in the Hugging Face cache."""

    repo_id: str
    revision: str | None
    commit: str
    sha256: str
    path: Path
    filename: str = WEIGHTS_FILENAME

    @property
    def spec(self) -> str:
        """The pinned spec that reloads exactly these weights: ``hf-hub:ORG/NAME@COMMIT``."""
        return f"{HF_HUB_PREFIX}{self.repo_id}@{self.commit}"


def is_hub_spec(value: object) -> bool:
    """Whether ``value`` is a string starting ``hf-hub:`` (a Hub model spec, checked by `parse_hub_spec`)."""
    return isinstance(value, str) and value.startswith(HF_HUB_PREFIX)


def check_repo_id(repo_id: str) -> str:
    """``repo_id`` if it is a Hub repository id, ``namespace/name`` of letters, digits, ``-``, ``_`` and ``.``; else
    ``ValueError`` (it is written into model cards and code snippets, which another character could break)."""
    if not isinstance(repo_id, str) or not _REPO.match(repo_id) or len(repo_id) > _MAX_REPO_ID:
        raise ValueError(
            f"{repo_id!r} is not a Hub repository id: use namespace/name, each of letters, digits, '-', '_' and '.' "
            "(e.g. my-org/clef-small)"
        )
    return repo_id


def parse_hub_spec(spec: str) -> tuple[str, str | None]:
    """``"hf-hub:ORG/NAME@REV"`` -> ``("ORG/NAME", "REV")`` (``None`` for the default branch)."""
    body = spec[len(HF_HUB_PREFIX) :]
    repo_id, at, revision = body.partition("@")
    if not _REPO.match(repo_id) or (at and not revision):
        raise ValueError(
            f"{spec!r} is not a Hub model spec; use hf-hub:ORG/NAME, or hf-hub:ORG/NAME@REVISION with a branch, "
            "tag or 40-hex commit"
        )
    return repo_id, revision or None


def _download(repo_id: str, filename: str, revision: str | None, local_files_only: bool) -> Path:
    from .network import SourceUnavailable, download_hub_file  # the network modules load when first needed

    offline = is_offline(local_files_only)
    try:
        return download_hub_file(repo_id, filename, revision, local_files_only=offline)
    except SourceUnavailable as exc:
        where = f"{repo_id}@{revision}" if revision else repo_id
        hint = (
            "it is not in the cache and the network is off (HF_HUB_OFFLINE or local_files_only): connect once"
            if offline
            else "check the repository id and revision, your network, and HF_TOKEN for private repositories"
        )
        if filename in _OTHER_KIND and not offline:
            hint += f"; {_OTHER_KIND[filename]}"
        raise WeightsNotAvailableError(f"cannot get {filename} of hf-hub:{where} ({exc}); {hint}") from None


def fetch_hub_model(spec: str, *, local_files_only: bool = False, filename: str = WEIGHTS_FILENAME) -> HubModelSource:
    """Download (or find in the cache) and verify the weights file ``filename`` of ``spec`` (an encoder's
    `WEIGHTS_FILENAME`, or a task model's `TASK_MODEL_FILENAME`) and the repository's ``config.json``;
    see the module docstring. Raises [`WeightsNotAvailableError`][clef_sdk.errors.WeightsNotAvailableError] when the file cannot be
    had, [`ChecksumMismatchError`][clef_sdk.errors.ChecksumMismatchError] when the cached file is not what the Hub reported."""
    repo_id, revision = parse_hub_spec(spec)
    path = _download(repo_id, filename, revision, local_files_only)
    _download(repo_id, "config.json", revision, local_files_only)  # the model card's companion, kept with it
    # The cache stores snapshots/<commit>/<file> -> blobs/<etag>; for an LFS file the etag is its sha256.
    commit = path.parent.name
    expected = path.resolve().name
    if not _SHA256.match(expected):
        raise ChecksumMismatchError(
            f"hf-hub:{repo_id}: {filename} is not stored as an LFS file, so the Hub reports no sha256 for "
            "it; upload it with huggingface_hub (or git lfs) so that it can be verified"
        )
    actual = sha256_readable(path, "cached weights file")
    if actual != expected:
        raise ChecksumMismatchError(
            f"hf-hub:{repo_id}@{commit}: the cached {filename} has sha256 {actual}, but the Hub reported "
            f"{expected}; the file was modified or corrupted. Delete {path.resolve()} and load again to re-download"
        )
    return HubModelSource(repo_id, revision, commit, expected, path, filename)
