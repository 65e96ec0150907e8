"""Publishing CLEF weights on the Hugging Face Hub: ``clef publish``. One core for both kinds of model:
write a folder (``model.safetensors``, ``config.json``, ``README.md``), then, unless it is a dry run, upload it
as one commit (:func:`clef_sdk.weights.network.upload_folder`) and return the manifest source to paste.

- The authors' released checkpoint (``clef publish NAME --ckpt PATH --repo-id ID``, :func:`publish`): converted
  with the converter (``weights_only`` load, backbone only, float32 safetensors); ``config.json`` holds the size,
  architecture, embedding dimension, preprocessing contract, file checksums and provenance; the model card the
  paper, sizes, preprocessing, intended use and limitations.
- A model you trained (``clef publish --weights TRAINED.safetensors --repo-id ORG/NAME --license ID``,
  :func:`publish_trained`): the file ``clef train export`` wrote, copied byte for byte (its sha256 is what the Hub
  will report); the config and card carry its training facts and how to load it:
  ``clef.load("hf-hub:ORG/NAME@COMMIT")``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._version import __version__
from ..constants import LIBRARY_NAME, PREPROCESSING
from ..errors import CheckpointError, ChecksumMismatchError
from ..files import md5_and_sha256_file, sha256_file
from ..models import ARCHITECTURES, KERNEL_SIZE
from .cards import PAPER_URL, released_model_card, trained_model_card, training_facts
from .format import FORMAT_NAME, FORMAT_VERSION, extract_backbone, read_checkpoint, read_weights, write_weights
from .hf_hub import WEIGHTS_FILENAME
from .network import upload_folder
from .registry import ModelEntry, ZenodoSource, model_entry

__all__ = [
    "HubFolder",
    "PublishResult",
    "build_hub_folder",
    "build_trained_folder",
    "publish",
    "publish_trained",
]

_LICENSE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")


@dataclass(frozen=True)
class HubFolder:
    """A folder ready to upload: its ``model.safetensors`` (sha256, size in bytes) and the ``config.json`` written."""

    folder: Path
    sha256: str
    size: int
    config: dict[str, Any]


@dataclass(frozen=True)
class PublishResult:
    """What publishing did: the folder, the commit (``None`` for a dry run) and the manifest source."""

    folder: Path
    repo_id: str
    revision: str | None
    manifest_source: dict[str, Any]
    commit_url: str | None = None
    notes: list[str] = field(default_factory=list)


def _write_folder(
    folder: Path,
    write_weights_file: Callable[[Path], object],
    config: Callable[[str, int], dict[str, Any]],
    card: Callable[[str, int], str],
) -> HubFolder:
    """The core: write ``model.safetensors`` with ``write_weights_file``, then ``config.json`` and ``README.md``
    from the file's sha256 and size."""
    folder.mkdir(parents=True, exist_ok=True)
    weights_path = folder / WEIGHTS_FILENAME
    write_weights_file(weights_path)
    sha256, size = sha256_file(weights_path), weights_path.stat().st_size
    written = config(sha256, size)
    (folder / "config.json").write_text(json.dumps(written, indent=2) + "\n", encoding="utf-8")
    (folder / "README.md").write_text(card(sha256, size), encoding="utf-8")
    return HubFolder(folder, sha256, size, written)


def _publish(
    built: HubFolder,
    repo_id: str,
    message: str,
    *,
    dry_run: bool,
    private: bool,
    token: str | None,
    api: Any,
    dry_run_note: str,
) -> PublishResult:
    """Upload a written folder (unless ``dry_run``) and say which manifest source now points at it."""
    source: dict[str, Any] = {
        "type": "hub",
        "repo_id": repo_id,
        "filename": WEIGHTS_FILENAME,
        "revision": None,
        "sha256": built.sha256,
        "size": built.size,
    }
    if dry_run:
        return PublishResult(built.folder, repo_id, None, source, notes=[dry_run_note])
    info = upload_folder(built.folder, repo_id, message, private=private, token=token, api=api)
    revision = getattr(info, "oid", None)
    source["revision"] = revision
    return PublishResult(built.folder, repo_id, revision, source, commit_url=getattr(info, "commit_url", None))


def _folder(out_dir: str | os.PathLike[str] | None, prefix: str) -> Path:
    return Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix=prefix))


# --------------------------------------------------------------------------------------------------------------
# The authors' released checkpoints


def _zenodo_source(entry: ModelEntry) -> ZenodoSource | None:
    return next((s for s in entry.sources if isinstance(s, ZenodoSource)), None)


def _released_config(
    entry: ModelEntry, repo_id: str, sha256: str, size: int, checkpoint: dict[str, Any]
) -> dict[str, Any]:
    arch = ARCHITECTURES[entry.name]
    return {
        "library_name": LIBRARY_NAME,
        "model_type": "clef",
        "size": entry.name,
        "aliases": list(entry.aliases),
        "embed_dim": entry.embed_dim,
        "num_parameters": entry.num_parameters,
        "num_parameters_forward": arch.num_parameters(include_batchnorm=False),
        "architecture": {
            "name": "Net1D (ResNeXt-1D with squeeze-and-excitation)",
            "in_channels": 1,
            "base_filters": arch.base_filters,
            "ratio": arch.ratio,
            "filter_list": list(arch.filter_list),
            "blocks_per_stage": list(arch.blocks_per_stage),
            "groups_width": arch.groups_width,
            "kernel_size": KERNEL_SIZE,
            "activation": "silu",
            "batchnorm": False,
            "pooling": "time mean of the last stage",
        },
        "preprocessing": PREPROCESSING,
        "weights": {
            "filename": WEIGHTS_FILENAME,
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "sha256": sha256,
            "size": size,
        },
        "source_checkpoint": checkpoint,
        "license": entry.license,
        "paper": PAPER_URL,
        "citation": entry.citation,
        "repo_id": repo_id,
        "converted_with": f"{LIBRARY_NAME} {__version__}",
    }


def build_hub_folder(
    name: str,
    checkpoint: str | os.PathLike[str],
    folder: str | os.PathLike[str],
    *,
    repo_id: str,
    force: bool = False,
) -> HubFolder:
    """Convert a released ``checkpoint`` and write ``model.safetensors``, ``config.json`` and ``README.md`` into
    ``folder``.

    The checkpoint must hold CLEF weights of the size ``name`` names, and, when the manifest knows the released
    file's checksum, be that file (``force=True`` publishes another checkpoint anyway).
    """
    entry = model_entry(name)
    checkpoint = Path(checkpoint)
    md5, sha256 = md5_and_sha256_file(checkpoint)
    release = _zenodo_source(entry)
    matches_release: bool | None = None
    if release is not None and release.checksum is not None:
        actual = md5 if release.checksum_algorithm == "md5" else sha256
        matches_release = actual == release.checksum_hex
        if not matches_release and not force:
            raise ChecksumMismatchError(
                f"{checkpoint} is not the released {release.filename}: expected {release.checksum}, got "
                f"{release.checksum_algorithm}:{actual} (source: {release.describe()}). Download the release "
                f"(`clef download {entry.name} --keep-checkpoint`), or pass --force to publish another checkpoint"
            )
    weights = extract_backbone(read_checkpoint(checkpoint), source=str(checkpoint))
    if weights.size != entry.name:
        raise CheckpointError(f"{checkpoint} holds CLEF-{weights.size} weights, not CLEF-{entry.name}")
    is_release = release is not None and bool(matches_release)
    checkpoint_info: dict[str, Any] = {
        "filename": release.filename if release is not None and is_release else checkpoint.name,
        "record": release.record if release is not None and is_release else None,
        "md5": md5,
        "sha256": sha256,
        "size": checkpoint.stat().st_size,
        "matches_release_checksum": matches_release,
    }
    metadata = {"source_file": checkpoint.name, "source_sha256": sha256, "source_md5": md5}
    return _write_folder(
        Path(folder),
        lambda path: write_weights(weights, path, extra_metadata=metadata),
        lambda digest, size: _released_config(entry, repo_id, digest, size, checkpoint_info),
        lambda digest, size: released_model_card(
            entry, repo_id=repo_id, sha256=digest, size=size, checkpoint=checkpoint_info
        ),
    )


def publish(
    name: str,
    checkpoint: str | os.PathLike[str],
    repo_id: str,
    *,
    dry_run: bool = False,
    out_dir: str | os.PathLike[str] | None = None,
    private: bool = False,
    token: str | None = None,
    force: bool = False,
    api: Any = None,
) -> PublishResult:
    """Convert a released checkpoint, write the Hub folder and (unless ``dry_run``) upload it.

    Args:
        name: model name or alias (``small``, ``medium``, ``large``).
        checkpoint: the released ``.ckpt``.
        repo_id: the Hub repository, ``namespace/name`` (created if missing).
        dry_run: write the folder only; the manifest source then has ``revision: null``.
        out_dir: where to write the folder (default: a new temporary folder).
        private: create the repository private.
        token: a Hub token (default: huggingface_hub's, e.g. ``HF_TOKEN`` or ``hf auth login``).
        force: publish a checkpoint whose checksum differs from the released file's.
        api: an object with huggingface_hub's ``HfApi.create_repo``/``upload_folder`` (default: a new ``HfApi``
            for ``HF_ENDPOINT``).
    """
    entry = model_entry(name)
    folder = _folder(out_dir, f"clef-{entry.name}-hub-")
    built = build_hub_folder(entry.name, checkpoint, folder, repo_id=repo_id, force=force)
    message = f"CLEF-{entry.name} weights converted with clef-sdk {__version__}"
    return _publish(
        built,
        repo_id,
        message,
        dry_run=dry_run,
        private=private,
        token=token,
        api=api,
        dry_run_note="dry run: nothing uploaded; revision stays null",
    )


# --------------------------------------------------------------------------------------------------------------
# Models trained with clef train


def build_trained_folder(
    weights: str | os.PathLike[str], folder: str | os.PathLike[str], *, repo_id: str, license: str
) -> HubFolder:
    """Write ``model.safetensors`` (a byte copy of ``weights``), ``config.json`` and ``README.md`` for a trained
    model into ``folder``."""
    if not _LICENSE.match(license or ""):
        raise ValueError(
            f"license must be a Hub license identifier you chose for these weights (e.g. cc-by-4.0, mit, apache-2.0, "
            f"other), got {license!r}: the training data's terms decide what you may choose"
        )
    source = Path(weights)
    loaded = read_weights(source)  # validates the file (format, tensors' digest, preprocessing contract)
    if not any(key.startswith("training_") for key in loaded.metadata):
        raise CheckpointError(
            f"{source} has no training metadata: export the trained checkpoint with `clef train export`; "
            "the authors' released checkpoints are published with `clef publish NAME --ckpt ...`"
        )

    def config(sha256: str, size: int) -> dict[str, Any]:
        return {
            "library_name": LIBRARY_NAME,
            "model_type": "clef",
            "size": loaded.size,
            "embed_dim": loaded.embed_dim,
            "preprocessing": PREPROCESSING,
            "weights": {"filename": WEIGHTS_FILENAME, "sha256": sha256, "size": size},
            "training": training_facts(loaded.metadata),
            "license": license,
            "repo_id": repo_id,
            "published_with": f"{LIBRARY_NAME} {__version__}",
        }

    return _write_folder(
        Path(folder),
        lambda path: shutil.copyfile(source, path),
        config,
        lambda sha256, size: trained_model_card(repo_id, license, loaded.metadata, sha256, size, loaded.embed_dim),
    )


def publish_trained(
    weights: str | os.PathLike[str],
    repo_id: str,
    *,
    license: str,
    dry_run: bool = False,
    out_dir: str | os.PathLike[str] | None = None,
    private: bool = False,
    token: str | None = None,
    api: Any = None,
) -> PublishResult:
    """Write the Hub folder of a trained model and (unless ``dry_run``) upload it; see the module docstring.

    The result's ``manifest_source["revision"]`` is the commit created; load it with
    ``clef.load(f"hf-hub:{repo_id}@{result.revision}")``.
    """
    built = build_trained_folder(weights, _folder(out_dir, "clef-trained-hub-"), repo_id=repo_id, license=license)
    method = built.config["training"].get("method", "?")
    message = f"CLEF-{built.config['size']} ({method}) trained with clef-sdk {__version__}"
    return _publish(
        built,
        repo_id,
        message,
        dry_run=dry_run,
        private=private,
        token=token,
        api=api,
        dry_run_note="dry run: nothing uploaded",
    )
