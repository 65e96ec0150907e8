"""The task-model file: one safetensors file with the encoder and head tensors and JSON metadata saying what the
model is (task, classes, pooling, target scaling, thresholds, encoder size), the preprocessing contract it was
trained under, the clef-sdk version that wrote it, its training facts, and a sha256 of its tensors.

Reading checks all of it and turns every failure into a [`CheckpointError`][clef_sdk.errors.CheckpointError] naming the file.
`load_task_model` also takes ``hf-hub:ORG/NAME[@REVISION]``: the repository's ``task_model.safetensors``,
downloaded, cached and sha256-verified as ``clef.load`` does for encoders (`clef_sdk.weights.hf_hub`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from .._version import __version__
from ..constants import PREPROCESSING
from ..errors import CheckpointError
from ..files import atomic_path, sha256_file
from ..models import ARCHITECTURES, build
from ..precision import resolve_device
from ..readable import check_readable
from ..weights.format import SAFETENSORS_SUFFIX, extract_backbone, sort_safetensors_header, tensors_digest
from ..weights.hf_hub import TASK_MODEL_FILENAME, fetch_hub_model, is_hub_spec
from .model import TaskModel

__all__ = [
    "TASK_FORMAT_NAME",
    "TASK_FORMAT_VERSION",
    "is_task_model_file",
    "load_task_model",
    "read_task_metadata",
    "save_task_model",
]

TASK_FORMAT_NAME = "clef-sdk/task-model"
TASK_FORMAT_VERSION = 1
ENCODER_PREFIX = "encoder."
HEAD_KEYS = ("head.weight", "head.bias", "feature_norm.mean", "feature_norm.scale")
# Every metadata entry a file must have, with what it says; JSON-encoded strings (safetensors metadata is str -> str).
_REQUIRED = {
    "format_version": "its format version",
    "task": "its task",
    "classes": "its label names",
    "pooling": "its pooling",
    "target_scaling": "its target scaling",
    "thresholds": "its thresholds",
    "size": "its encoder size",
    "embed_dim": "its embedding dimension",
    "preprocessing": "the preprocessing it was trained with",
    "training": "its training facts",
    "tensors_sha256": "its integrity",
}


def _tensors(model: TaskModel) -> dict[str, torch.Tensor]:
    return {
        key: tensor.detach().to(device="cpu", dtype=torch.float32).contiguous()
        for key, tensor in model.state_dict().items()
    }


def save_task_model(model: TaskModel, path: str | os.PathLike[str]) -> str:
    """Write ``model`` to ``path`` (a ``.safetensors`` file) atomically; returns the file's sha256.

    Equal models give equal bytes (the header is written with sorted keys), so the sha256 identifies the model.
    """
    from safetensors.torch import save_file

    if not isinstance(model, TaskModel):
        raise TypeError(f"expected a TaskModel, got {type(model).__name__}")
    path = Path(path)
    if path.suffix != SAFETENSORS_SUFFIX:
        raise ValueError(f"a task model is saved as {SAFETENSORS_SUFFIX}, got {path.name}")
    tensors = _tensors(model)
    metadata = {
        "format": TASK_FORMAT_NAME,
        "format_version": str(TASK_FORMAT_VERSION),
        "task": model.task,
        "classes": json.dumps(model.classes_.tolist()),
        "pooling": model.pooling,
        "target_scaling": json.dumps(model.target_scaling),
        "thresholds": json.dumps(model.thresholds),
        "size": model.encoder.architecture.name,
        "embed_dim": str(model.encoder.embed_dim),
        "encoder_name": model.encoder.name,
        "preprocessing": json.dumps(PREPROCESSING, sort_keys=True),
        "clef_sdk_version": __version__,
        "training": json.dumps(model.training_info, sort_keys=True),
        "tensors_sha256": tensors_digest(tensors),
    }
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        sort_safetensors_header(tmp)
    return sha256_file(path)


def _read(path: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    from safetensors import safe_open

    if not path.is_file():
        raise CheckpointError(f"{path}: no such task-model file" + (" (it is a folder)" if path.is_dir() else ""))
    check_readable(path, "task-model file")  # safetensors reports a permission error as "No such file"
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata: dict[str, str] = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as exc:  # SafetensorError, OSError, ValueError, ... for a damaged or foreign file
        detail = str(exc).partition("\n")[0][:200] or type(exc).__name__
        raise CheckpointError(
            f"{path} is not a valid safetensors file ({detail}); it is corrupt or truncated: save the model again"
        ) from None
    return metadata, tensors


def _check_header(path: Path, metadata: dict[str, str]) -> None:
    if metadata.get("format") != TASK_FORMAT_NAME:
        hint = " (it holds an encoder: load it with clef.load)" if metadata.get("format") == "clef-sdk/encoder" else ""
        raise CheckpointError(
            f"{path} is not a clef-sdk task model (metadata format={metadata.get('format')!r}, expected "
            f"{TASK_FORMAT_NAME!r}){hint}"
        )
    version = metadata.get("format_version")
    if version is not None:
        try:
            number = int(version)
        except ValueError:
            number = None
        if number is not None and number > TASK_FORMAT_VERSION:
            raise CheckpointError(
                f"{path} has task-model format version {number}, newer than this clef-sdk {__version__} reads "
                f"(version {TASK_FORMAT_VERSION}): upgrade clef-sdk (pip install -U clef-sdk)"
            )
        if number != TASK_FORMAT_VERSION:
            raise CheckpointError(
                f"{path} has task-model format version {version!r}; this clef-sdk reads version {TASK_FORMAT_VERSION}"
            )
    missing = [key for key in _REQUIRED if key not in metadata]
    if missing:
        raise CheckpointError(
            f"{path} has no {', '.join(missing)} in its metadata, so {_REQUIRED[missing[0]]} cannot be checked: the "
            "file was edited or not written by clef-sdk"
        )


def _json(path: Path, metadata: dict[str, str], key: str) -> Any:
    try:
        return json.loads(metadata[key])
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(
            f"{path}: its {key} metadata is not valid JSON ({type(exc).__name__}: {str(exc)[:200]}); the file was "
            "edited or damaged"
        ) from None


def is_task_model_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a safetensors file whose metadata says it is a task model (reads the header only; no
    check of the rest: `load_task_model` does those). ``False`` for anything else, never an error."""
    from safetensors import safe_open

    path = Path(path)
    try:
        if path.suffix != SAFETENSORS_SUFFIX or not path.is_file():
            return False
        with safe_open(str(path), framework="pt") as handle:
            return (handle.metadata() or {}).get("format") == TASK_FORMAT_NAME
    except Exception:  # unreadable, damaged, not safetensors: not a task-model file
        return False


def read_task_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata of a task-model file, JSON values decoded, after the format and version checks (no tensors
    are checked: use `load_task_model` for a model)."""
    path = Path(path)
    metadata, _ = _read(path)
    _check_header(path, metadata)
    decoded: dict[str, Any] = dict(metadata)
    for key in ("classes", "target_scaling", "thresholds", "preprocessing", "training"):
        decoded[key] = _json(path, metadata, key)
    return decoded


def _check_contract(path: Path, metadata: dict[str, str]) -> None:
    declared = metadata["preprocessing"]
    contract = _json(path, metadata, "preprocessing")
    if contract != json.loads(json.dumps(PREPROCESSING)):
        raise CheckpointError(
            f"{path} declares a preprocessing contract this clef-sdk {__version__} does not implement: the file "
            f"says {declared[:2000]}; clef-sdk implements {json.dumps(PREPROCESSING, sort_keys=True)}. Its "
            "predictions would not mean what the model learned: use the clef-sdk version the model was made for"
        )


def _check_tensors(path: Path, metadata: dict[str, str], tensors: dict[str, torch.Tensor]) -> str:
    """Check the digest, the encoder tensors and the head's shapes; returns the encoder size."""
    recorded = metadata["tensors_sha256"]
    if any(not tensor.is_floating_point() for tensor in tensors.values()):
        raise CheckpointError(f"{path}: tensors that are not floating point; the file is not a task model")
    actual = tensors_digest(tensors)
    if actual != recorded:
        raise CheckpointError(
            f"{path}: the tensors were modified or corrupted after saving (tensor data sha256 {actual}, recorded "
            f"{recorded}); save or download the model again"
        )
    unexpected = sorted(key for key in tensors if not key.startswith(ENCODER_PREFIX) and key not in HEAD_KEYS)
    missing = [key for key in HEAD_KEYS if key not in tensors]
    if unexpected or missing:
        raise CheckpointError(
            f"{path}: tensors do not form a task model (missing {missing}, unexpected {unexpected[:12]})"
        )
    encoder = {key[len(ENCODER_PREFIX) :]: value for key, value in tensors.items() if key.startswith(ENCODER_PREFIX)}
    if not encoder:
        raise CheckpointError(f"{path}: no encoder tensors (keys starting {ENCODER_PREFIX!r})")
    try:
        size = extract_backbone(encoder, source=f"{path} (encoder)").size
    except CheckpointError as exc:
        raise CheckpointError(str(exc)) from None
    if metadata["size"] != size:
        raise CheckpointError(f"{path}: metadata says size {metadata['size']!r} but the tensors are CLEF-{size}")
    embed_dim = ARCHITECTURES[size].embed_dim
    if metadata["embed_dim"] != str(embed_dim):
        raise CheckpointError(
            f"{path}: metadata says embed_dim {metadata['embed_dim']!r} but CLEF-{size} embeds in {embed_dim}"
        )
    weight, bias = tensors["head.weight"], tensors["head.bias"]
    if weight.ndim != 2 or weight.shape[1] != embed_dim or bias.shape != (weight.shape[0],):
        raise CheckpointError(
            f"{path}: head tensors of shapes {tuple(weight.shape)} and {tuple(bias.shape)}; a head on CLEF-{size} "
            f"is (n_outputs, {embed_dim}) and (n_outputs,)"
        )
    mean, scale = tensors["feature_norm.mean"], tensors["feature_norm.scale"]
    if mean.shape != (embed_dim,) or scale.shape != (embed_dim,):
        raise CheckpointError(
            f"{path}: feature standardisation tensors of shapes {tuple(mean.shape)} and {tuple(scale.shape)}; "
            f"CLEF-{size} needs ({embed_dim},)"
        )
    if not all(torch.isfinite(tensor).all() for tensor in (weight, bias, mean, scale)):
        raise CheckpointError(f"{path}: the head contains NaN or inf")
    if not bool((scale > 0).all()):
        raise CheckpointError(f"{path}: the feature standardisation has a scale <= 0")
    return size


def load_task_model(
    path_or_id: str | os.PathLike[str],
    *,
    device: str | torch.device | None = None,
    local_files_only: bool = False,
) -> TaskModel:
    """Read a task model written by `save_task_model` (or `TaskModel.save`), in eval mode, on
    ``device`` (default CPU).

    Args:
        path_or_id: the ``.safetensors`` file, or a Hub repository ``"hf-hub:ORG/NAME"`` /
            ``"hf-hub:ORG/NAME@REVISION"`` (branch, tag or 40-hex commit; pin a commit for reproducible results)
            whose ``task_model.safetensors`` is downloaded into the Hugging Face cache and checked against the
            sha256 the Hub reported, at every load, exactly as ``clef.load`` does for encoders.
        device: ``"cpu"``, ``"cuda"``, ... (default CPU).
        local_files_only: never touch the network; fail ([`WeightsNotAvailableError`][clef_sdk.errors.WeightsNotAvailableError]) if
            the Hub file is not cached. ``HF_HUB_OFFLINE=1`` does the same.

    Checks the format name and version (a newer one asks to upgrade clef-sdk), every required metadata entry, the
    preprocessing contract, the tensors' sha256, the encoder's keys and shapes and the head's, and the task facts
    (classes, thresholds, scaling) as the constructor does; any failure is a `CheckpointError` naming the
    file (an encoder's file says to load it with ``clef.load``). A cached Hub file modified since its download is a
    [`ChecksumMismatchError`][clef_sdk.errors.ChecksumMismatchError]. ``model.encoder.source`` is the
    `HubModelSource` (repository, revision, resolved commit, sha256, file) of a
    model loaded by repository id, else ``None``.
    """
    source = None
    if is_hub_spec(path_or_id):
        source = fetch_hub_model(os.fspath(path_or_id), local_files_only=local_files_only, filename=TASK_MODEL_FILENAME)
        path = source.path
    else:
        path = Path(path_or_id).expanduser()
    metadata, tensors = _read(path)
    _check_header(path, metadata)
    _check_contract(path, metadata)
    size = _check_tensors(path, metadata, tensors)
    scaling = _json(path, metadata, "target_scaling")
    try:
        model = TaskModel(
            build(size),
            metadata["task"],  # type: ignore[arg-type]  # checked by the constructor
            _json(path, metadata, "classes"),
            pooling=metadata["pooling"],  # type: ignore[arg-type]
            target_scaling=tuple(scaling) if isinstance(scaling, list) else scaling,
            thresholds=_json(path, metadata, "thresholds"),
            training=_json(path, metadata, "training"),
        )
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: its metadata does not describe a valid task model: {exc}") from None
    if model.n_outputs != tensors["head.weight"].shape[0]:
        raise CheckpointError(
            f"{path}: a {model.task} model with {len(model.classes_)} classes has {model.n_outputs} outputs, but the "
            f"head has {tensors['head.weight'].shape[0]}"
        )
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:  # a key the checks above let through (BatchNorm tensors added to the file)
        raise CheckpointError(f"{path}: tensors do not fit the model: {str(exc)[:500]}") from None
    if metadata.get("encoder_name"):
        model.encoder.name = metadata["encoder_name"]
    model.encoder.source = source  # where the whole task model came from (the encoder has the attribute)
    return model.to(resolve_device(device) if device is not None else torch.device("cpu")).eval()
