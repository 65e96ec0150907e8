"""``clef.load``: names and paths -> ready [`ClefEncoder`][clef_sdk.models.ClefEncoder] modules, with a thread-safe cache.

A task model's file (or Hub repository) is not an encoder: ``clef.load`` refuses it and names
``clef.load_task_model``, which reads it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import torch

from .errors import CheckpointError
from .models import ClefEncoder
from .precision import resolve_device
from .weights.format import encoder_from_weights, read_weights
from .weights.hf_hub import fetch_hub_model, is_hub_spec, parse_hub_spec
from .weights.registry import model_entry

__all__ = ["WEIGHT_SUFFIXES", "ModelSpec", "clear_cache", "get_encoder", "load"]

ModelSpec = str | os.PathLike[str] | ClefEncoder

WEIGHT_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")  # a name ending so is a path, not a model name
_cache: dict[tuple[object, ...], ClefEncoder] = {}
_cache_lock = threading.Lock()


def _looks_like_path(name_or_path: str | os.PathLike[str]) -> bool:
    text = os.fspath(name_or_path)
    return isinstance(name_or_path, os.PathLike) or text.endswith(WEIGHT_SUFFIXES) or os.sep in text


def _weights_file(name_or_path: str | os.PathLike[str], local_files_only: bool) -> tuple[Path, str, object]:
    """The weights file to load, the encoder's display name and, for ``hf-hub:`` specs, where it came from."""
    if is_hub_spec(name_or_path):
        source = fetch_hub_model(os.fspath(name_or_path), local_files_only=local_files_only)
        return source.path, f"hf-hub:{source.repo_id}@{source.commit[:12]}", source
    if _looks_like_path(name_or_path):
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"weights file not found: {path}. Pass an existing .safetensors or .ckpt path, "
                "or a model name such as 'small' (see clef.list_models())"
            )
        return path, path.name, None
    from .weights.fetch import fetch_weights

    entry = model_entry(os.fspath(name_or_path))
    return fetch_weights(entry, local_files_only=local_files_only), f"clef-{entry.name}", None


def load(
    name_or_path: str | os.PathLike[str] = "medium",
    *,
    device: str | torch.device | None = None,
    local_files_only: bool = False,
    freeze: bool = False,
) -> ClefEncoder:
    """Load a CLEF encoder in eval mode.

    Args:
        name_or_path: a model name from [`clef_sdk.list_models`][clef_sdk.list_models] (``"small"``, ``"medium"``, ``"large"``
            or an alias); a Hub repository, ``"hf-hub:ORG/NAME"`` or ``"hf-hub:ORG/NAME@REVISION"`` (branch, tag or
            commit; pin a commit for reproducible results, see `clef_sdk.weights.hf_hub`); or the path of a
            ``.safetensors`` file written by [`clef_sdk.convert_checkpoint`][clef_sdk.convert_checkpoint] or of a released ``.ckpt``
            (converted in memory, loaded with ``weights_only=True``). A task model's file is refused with a
            [`CheckpointError`][clef_sdk.errors.CheckpointError] naming [`clef_sdk.load_task_model`][clef_sdk.load_task_model].
        device: ``"cpu"``, ``"cuda"``, ... ; ``None`` picks CUDA when available.
        local_files_only: never touch the network; fail if the weights are not cached.
        freeze: switch off gradients for every parameter (a fixed feature extractor inside your model; it stays in
            eval mode, which for CLEF changes nothing: it has no BatchNorm or dropout).

    Returns a new module each call; [`clef_sdk.embed`][clef_sdk.embed] keeps its own cache of loaded encoders.
    """
    target = resolve_device(device)
    path, display_name, source = _weights_file(name_or_path, local_files_only)
    try:
        weights = read_weights(path)
    except CheckpointError:
        _refuse_task_model(name_or_path, path)
        raise
    encoder = encoder_from_weights(weights, name=display_name)
    encoder.source = source
    if freeze:
        encoder.requires_grad_(False)
    return encoder.to(target)


def _refuse_task_model(name_or_path: str | os.PathLike[str], path: Path) -> None:
    """Raise a `CheckpointError` naming ``clef.load_task_model`` if ``path`` holds a task model."""
    from .tasks.format import is_task_model_file  # tasks imports embedding, which imports this module

    if is_task_model_file(path):
        shown = os.fspath(name_or_path)
        raise CheckpointError(
            f"{shown} holds a task model (an encoder with a trained head, task and labels), not a CLEF encoder: "
            f"load it with clef.load_task_model({shown!r}) and predict with model.predict(signal, fs); its encoder "
            "is model.encoder"
        ) from None


def get_encoder(
    model: ModelSpec, device: str | torch.device | None = None, *, local_files_only: bool = False
) -> ClefEncoder:
    """The encoder for ``model`` on ``device``, loaded once per (model, device) and shared afterwards."""
    if isinstance(model, ClefEncoder):
        return model if device is None else model.to(resolve_device(device))
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a name, a path or a ClefEncoder, got {type(model).__name__}")
    target = resolve_device(device)
    key: tuple[object, ...]
    if is_hub_spec(model):
        key = ("hf-hub", *parse_hub_spec(os.fspath(model)), str(target))
    elif _looks_like_path(model):
        path = Path(model).expanduser().resolve()
        stat = path.stat() if path.is_file() else None
        key = ("path", str(path), stat and stat.st_mtime_ns, stat and stat.st_size, str(target))
    else:
        key = ("name", model_entry(os.fspath(model)).name, str(target))
    with _cache_lock:
        encoder = _cache.get(key)
        if encoder is None:
            encoder = load(model, device=target, local_files_only=local_files_only)
            _cache[key] = encoder
    return encoder


def clear_cache() -> None:
    """Forget the encoders [`clef_sdk.embed`][clef_sdk.embed] has loaded (frees their memory once unreferenced)."""
    with _cache_lock:
        _cache.clear()
