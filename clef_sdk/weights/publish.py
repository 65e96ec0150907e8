"""Publishing CLEF weights on the Hugging Face Hub: ``clef publish``. One core for every kind of model:
write a folder (the weights file, ``config.json``, ``README.md``, each atomically), then, unless it is a dry
run, upload exactly those three files as one commit ([`clef_sdk.weights.network.upload_folder`][clef_sdk.weights.network.upload_folder]) and return
the manifest source to paste. The folder (``--out``) must be new, empty, or hold only what an earlier
``clef publish`` of the same kind wrote (`check_out_folder`): anything else in it (a README of the user's, a
``.env``, private data) is refused with [`OutputError`][clef_sdk.errors.OutputError], never overwritten or uploaded.

- The authors' released checkpoint (``clef publish NAME --ckpt PATH --repo-id ID``, `publish`): converted
  with the converter (``weights_only`` load, backbone only, float32 safetensors); ``config.json`` holds the size,
  architecture, embedding dimension, preprocessing contract, file checksums and provenance; the model card the
  paper, sizes, preprocessing, intended use and limitations.
- A model you trained (``clef publish --weights TRAINED.safetensors --repo-id ORG/NAME --license ID``,
  `publish_trained`): the file ``clef train export`` wrote, copied byte for byte (its sha256 is what the Hub
  will report); the config and card carry its training facts and how to load it:
  ``clef.load("hf-hub:ORG/NAME@COMMIT")``.
- A task model (``clef publish TASK_MODEL.safetensors --repo-id ORG/NAME --license ID``,
  `publish_task_model`): the file ``TaskModel.save`` wrote, recognised by its metadata and checked in full,
  copied byte for byte as ``task_model.safetensors``; ``config.json`` holds its task, classes, pooling,
  thresholds, target scaling, encoder, preprocessing contract and training facts (numbers as numbers), the card its
  labels in output order and how to use it: ``clef.load_task_model("hf-hub:ORG/NAME@COMMIT")``.
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
from ..errors import CheckpointError, ChecksumMismatchError, ManifestError, OutputError
from ..files import atomic_path, atomic_write_text, sha256_file
from ..models import ARCHITECTURES, KERNEL_SIZE
from ..readable import md5_and_sha256_readable, require_file
from .cards import PAPER_URL, released_model_card, task_model_card, trained_model_card, training_facts
from .format import FORMAT_NAME, FORMAT_VERSION, extract_backbone, read_checkpoint, read_weights, write_weights
from .hf_hub import TASK_MODEL_FILENAME, WEIGHTS_FILENAME, check_repo_id
from .network import upload_folder
from .registry import ModelEntry, ZenodoSource, manifest_path, model_entry

__all__ = [
    "TASK_WRITTEN_FILES",
    "WRITTEN_FILES",
    "HubFolder",
    "PublishResult",
    "build_hub_folder",
    "build_task_folder",
    "build_trained_folder",
    "check_out_folder",
    "publish",
    "publish_task_model",
    "publish_trained",
]

_LICENSE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
_MAX_LISTED = 12
_MAX_CONFIG_BYTES = 1 << 20
WRITTEN_FILES = (WEIGHTS_FILENAME, "config.json", "README.md")
TASK_WRITTEN_FILES = (TASK_MODEL_FILENAME, "config.json", "README.md")
# What tells the config.json of one kind of publish from the others' (the first marker found decides: a task
# model's config also has "training"), the kinds' names in messages, and the files each writes.
_KIND_MARKERS = {"task": "task", "released": "source_checkpoint", "trained": "training"}
_KIND_NAMES = {"released": "released CLEF model", "trained": "trained model", "task": "task model"}
_KIND_FILES = {"released": WRITTEN_FILES, "trained": WRITTEN_FILES, "task": TASK_WRITTEN_FILES}
_ANY_WRITTEN = frozenset(WRITTEN_FILES + TASK_WRITTEN_FILES)


@dataclass(frozen=True)
class HubFolder:
    """A folder ready to upload: its weights file (``filename``, sha256, size in bytes) and the ``config.json``
    written."""

    folder: Path
    sha256: str
    size: int
    config: dict[str, Any]
    filename: str = WEIGHTS_FILENAME

    @property
    def files(self) -> tuple[str, ...]:
        """The three files written, in upload order."""
        return (self.filename, "config.json", "README.md")


@dataclass(frozen=True)
class PublishResult:
    """What publishing did: the folder, the commit (``None`` for a dry run) and the manifest source."""

    folder: Path
    repo_id: str
    revision: str | None
    manifest_source: dict[str, Any]
    commit_url: str | None = None
    notes: list[str] = field(default_factory=list)


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f" ... ({len(names)} in all)" if len(names) > _MAX_LISTED else "")


def _previous_kind(config_path: Path) -> str | None:
    """The kind of model a previous ``clef publish`` wrote ``config.json`` for, or ``None`` if it is not one."""
    try:
        if config_path.stat().st_size > _MAX_CONFIG_BYTES:  # ours are a few kB
            return None
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(config, dict) or config.get("library_name") != LIBRARY_NAME or config.get("model_type") != "clef":
        return None
    return next((kind for kind, marker in _KIND_MARKERS.items() if marker in config), None)


def check_out_folder(folder: Path, kind: str) -> None:
    """Refuse to write into ``folder`` unless it is new, empty or holds only what a previous ``clef publish`` of the
    same ``kind`` (``"released"``, ``"trained"`` or ``"task"``) wrote: the files there would be overwritten, and
    anything else in it would sit next to files about to be made public."""
    if not folder.exists():
        return
    if not folder.is_dir():
        raise OutputError(f"--out {folder} is a file, not a folder: pass a new or empty folder (or leave --out out)")
    entries = sorted(folder.iterdir())
    if not entries:
        return
    names = [entry.name + ("/" if entry.is_dir() else "") for entry in entries]
    foreign = [name for name, entry in zip(names, entries) if entry.name not in _ANY_WRITTEN or not entry.is_file()]
    previous = _previous_kind(folder / "config.json") if (folder / "config.json").is_file() else None
    if previous is not None and not foreign:  # only what that kind writes (not a task file beside an encoder's)
        foreign = [name for name in names if name not in _KIND_FILES[previous]]
    if foreign or previous is None:
        theirs = _listing(foreign or names)
        raise OutputError(
            f"{folder} already holds files `clef publish` did not write: {theirs}. It writes "
            f"{', '.join(_KIND_FILES[kind])} into the --out folder, replacing any there, and uploads exactly those: "
            "it refuses to overwrite your files or to publish next to them (a .env, private data). Pass a new or "
            "empty folder to --out, or leave --out out to use a new temporary folder"
        )
    if previous != kind:
        raise OutputError(
            f"{folder} holds what `clef publish` wrote for a {_KIND_NAMES[previous]} ({_listing(names)}); "
            f"publishing a {_KIND_NAMES[kind]} there would replace it: pass a new or empty folder to --out"
        )


def _write_folder(
    folder: Path,
    kind: str,
    write_weights_file: Callable[[Path], object],
    config: Callable[[str, int], dict[str, Any]],
    card: Callable[[str, int], str],
    inputs: tuple[Path, ...] = (),
) -> HubFolder:
    """The core: write the weights file of ``kind`` (``model.safetensors``, or ``task_model.safetensors`` for a task
    model) with ``write_weights_file``, ``config.json`` and ``README.md`` (from the file's sha256 and size), each
    atomically; nothing is replaced unless all three could be made."""
    check_out_folder(folder, kind)
    folder.mkdir(parents=True, exist_ok=True)
    filename = _KIND_FILES[kind][0]
    weights_path = folder / filename
    with atomic_path(weights_path, inputs=inputs) as tmp:
        write_weights_file(tmp)
        sha256, size = sha256_file(tmp), tmp.stat().st_size
        written = config(sha256, size)
        config_text = json.dumps(written, indent=2) + "\n"
        card_text = card(sha256, size)
    atomic_write_text(folder / "config.json", config_text, inputs=inputs)
    atomic_write_text(folder / "README.md", card_text, inputs=inputs)
    return HubFolder(folder, sha256, size, written, filename)


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
        "filename": built.filename,
        "revision": None,
        "sha256": built.sha256,
        "size": built.size,
    }
    if dry_run:
        return PublishResult(built.folder, repo_id, None, source, notes=[dry_run_note])
    info = upload_folder(built.folder, repo_id, message, files=built.files, private=private, token=token, api=api)
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

    The checkpoint must hold CLEF weights of the size ``name`` names and be the released file, as the checksum the
    manifest pins for it says (``force=True`` publishes another checkpoint, or one the manifest has no checksum
    for). ``folder`` must be new, empty or an earlier folder of this kind (`check_out_folder`).
    """
    check_repo_id(repo_id)
    folder = Path(folder)
    check_out_folder(folder, "released")  # before the conversion: a folder that will be refused costs nothing
    entry = model_entry(name)
    checkpoint = Path(checkpoint)
    require_file(checkpoint, "checkpoint")
    md5, sha256 = md5_and_sha256_readable(checkpoint, "checkpoint")
    release = _zenodo_source(entry)
    matches_release: bool | None = None
    if (release is None or release.checksum is None) and not force:
        what = f"no checksum for the released {release.filename}" if release else "no Zenodo release"
        raise ManifestError(
            f"the manifest ({manifest_path()}) has {what} of CLEF-{entry.name}, so {checkpoint} cannot be checked "
            "to be the authors' release; pass --force to publish it anyway (config.json then records "
            '"matches_release_checksum": null), or pin the checksum in the manifest'
        )
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
        folder,
        "released",
        lambda path: write_weights(weights, path, extra_metadata=metadata),
        lambda digest, size: _released_config(entry, repo_id, digest, size, checkpoint_info),
        lambda digest, size: released_model_card(
            entry, repo_id=repo_id, sha256=digest, size=size, checkpoint=checkpoint_info
        ),
        inputs=(checkpoint,),
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
    check_repo_id(repo_id)
    entry = model_entry(name)
    if out_dir is not None:
        check_out_folder(Path(out_dir), "released")
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
    _check_license(license)
    check_repo_id(repo_id)
    folder = Path(folder)
    check_out_folder(folder, "trained")
    source = Path(weights)
    from ..tasks.format import is_task_model_file  # tasks builds on weights

    if is_task_model_file(source):
        raise CheckpointError(
            f"{source} holds a task model, not encoder weights: publish it with `clef publish {source} --repo-id "
            f"{repo_id} --license {license}` (publish_task_model)"
        )
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
        folder,
        "trained",
        lambda path: shutil.copyfile(source, path),
        config,
        lambda sha256, size: trained_model_card(repo_id, license, loaded.metadata, sha256, size, loaded.embed_dim),
        inputs=(source,),
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
    check_repo_id(repo_id)
    if out_dir is not None:
        check_out_folder(Path(out_dir), "trained")
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


# --------------------------------------------------------------------------------------------------------------
# Task models (TaskModel.save)


def _task_config(metadata: dict[str, Any], repo_id: str, license: str, sha256: str, size: int) -> dict[str, Any]:
    """``config.json`` of a task model from its file's decoded metadata (`read_task_metadata`)."""
    scaling = metadata["target_scaling"]
    return {
        "library_name": LIBRARY_NAME,
        "model_type": "clef",
        "kind": "task-model",
        "task": metadata["task"],
        "classes": list(metadata["classes"]),
        "outputs": "values" if metadata["task"] == "regression" else "probabilities",
        "pooling": metadata["pooling"],
        "thresholds": None if metadata["thresholds"] is None else [float(v) for v in metadata["thresholds"]],
        "target_scaling": None if scaling is None else {"mean": float(scaling[0]), "std": float(scaling[1])},
        "size": metadata["size"],
        "embed_dim": int(metadata["embed_dim"]),
        "encoder_name": metadata.get("encoder_name"),
        "preprocessing": PREPROCESSING,
        "format": metadata["format"],
        "format_version": int(metadata["format_version"]),
        "weights": {
            "filename": TASK_MODEL_FILENAME,
            "sha256": sha256,
            "size": size,
            "tensors_sha256": metadata["tensors_sha256"],
        },
        "training": metadata["training"],
        "license": license,
        "repo_id": repo_id,
        "written_with": f"{LIBRARY_NAME} {metadata.get('clef_sdk_version', '?')}",
        "published_with": f"{LIBRARY_NAME} {__version__}",
    }


def _check_license(license: str) -> None:
    if not _LICENSE.match(license or ""):
        raise ValueError(
            f"license must be a Hub license identifier you chose for these weights (e.g. cc-by-4.0, mit, apache-2.0, "
            f"other), got {license!r}: the training data's terms decide what you may choose"
        )


def build_task_folder(
    task_model: str | os.PathLike[str], folder: str | os.PathLike[str], *, repo_id: str, license: str
) -> HubFolder:
    """Write ``task_model.safetensors`` (a byte copy of the ``task_model`` file, so its sha256 is what the Hub will
    report), ``config.json`` and ``README.md`` ([`clef_sdk.weights.cards.task_model_card`][clef_sdk.weights.cards.task_model_card]) into ``folder``.

    The file is checked in full first ([`clef_sdk.tasks.format.load_task_model`][clef_sdk.tasks.format.load_task_model]: format, preprocessing
    contract, tensors' digest, head, task facts); an encoder's file is refused with a `CheckpointError`
    saying how encoders are published. ``folder`` must be new, empty or an earlier task-model folder.
    """
    from ..tasks.format import is_task_model_file, load_task_model, read_task_metadata  # tasks builds on weights

    _check_license(license)
    check_repo_id(repo_id)
    folder = Path(folder)
    check_out_folder(folder, "task")
    source = Path(task_model)
    require_file(source, "task-model file")
    if not is_task_model_file(source):
        raise CheckpointError(
            f"{source} is not a task-model file (its metadata does not say format 'clef-sdk/task-model'): save a "
            "TaskModel with model.save(path); an encoder you trained is published with --weights"
        )
    load_task_model(source)  # every check of the file, before anything is written
    metadata = read_task_metadata(source)
    return _write_folder(
        folder,
        "task",
        lambda path: shutil.copyfile(source, path),
        lambda sha256, size: _task_config(metadata, repo_id, license, sha256, size),
        lambda sha256, size: task_model_card(_task_config(metadata, repo_id, license, sha256, size)),
        inputs=(source,),
    )


def publish_task_model(
    task_model: str | os.PathLike[str],
    repo_id: str,
    *,
    license: str,
    dry_run: bool = False,
    out_dir: str | os.PathLike[str] | None = None,
    private: bool = False,
    token: str | None = None,
    api: Any = None,
) -> PublishResult:
    """Write the Hub folder of a task model (`build_task_folder`) and (unless ``dry_run``) upload it.

    Args:
        task_model: the ``.safetensors`` file [`clef_sdk.TaskModel.save`][clef_sdk.TaskModel.save] wrote.
        repo_id: the Hub repository, ``namespace/name`` (created if missing).
        license: the Hub license id you choose for the model (mind the encoder's license and your data's terms).
        dry_run: write the folder only.
        out_dir: where to write the folder (default: a new temporary folder).
        private: create the repository private.
        token: a Hub token (default: huggingface_hub's, e.g. ``HF_TOKEN`` or ``hf auth login``).
        api: an object with huggingface_hub's ``HfApi.create_repo``/``upload_folder`` (default: a new ``HfApi``).

    The result's ``revision`` is the commit created; load it with
    ``clef.load_task_model(f"hf-hub:{repo_id}@{result.revision}")``.
    """
    _check_license(license)
    check_repo_id(repo_id)
    if out_dir is not None:
        check_out_folder(Path(out_dir), "task")
    built = build_task_folder(task_model, _folder(out_dir, "clef-task-hub-"), repo_id=repo_id, license=license)
    config = built.config
    message = (
        f"{config['task']} task model on CLEF-{config['size']} ({len(config['classes'])} "
        f"{'target' if config['task'] == 'regression' else 'labels'}) published with clef-sdk {__version__}"
    )
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
