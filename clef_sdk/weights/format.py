"""The weights formats: released Lightning ``.ckpt`` -> validated backbone tensors -> clef-sdk safetensors.

The pieces are separate so that other tools (the downloader, pretraining export) can reuse them:

- `read_checkpoint_payload` loads everything in a ``.ckpt``/``.pt`` with ``torch.load(weights_only=True)``
  only (training export reads its hyper-parameters); `read_checkpoint` returns just its state dict;
- `extract_backbone` strips the ``backbone.`` prefix, drops the BatchNorm tensors the released models
  never apply, infers the size from the shapes and refuses anything missing, unexpected or mis-shaped;
- `write_weights` / `read_clef_safetensors` write and read our safetensors format;
  `read_weights` reads either kind of file;
- `convert_checkpoint` chains them.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .._version import __version__
from ..constants import PREPROCESSING
from ..errors import CheckpointError
from ..files import atomic_path, sha256_file
from ..models import ARCHITECTURES, KERNEL_SIZE, ClefEncoder, build
from ..readable import check_readable, require_file, unreadable

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "SAFETENSORS_SUFFIX",
    "EncoderWeights",
    "convert_checkpoint",
    "encoder_from_weights",
    "extract_backbone",
    "read_checkpoint",
    "read_checkpoint_payload",
    "read_clef_safetensors",
    "read_weights",
    "sort_safetensors_header",
    "tensors_digest",
    "write_weights",
]

FORMAT_NAME = "clef-sdk/encoder"
FORMAT_VERSION = "1"
BACKBONE_PREFIX = "backbone."
SAFETENSORS_SUFFIX = ".safetensors"
_MAX_LISTED = 12
# The metadata read_clef_safetensors needs, with what each lets it check.
_REQUIRED_METADATA = {
    "format_version": "its format version",
    "size": "its model size",
    "embed_dim": "its embedding dimension",
    "preprocessing": "the preprocessing it was trained with",
    "tensors_sha256": "its integrity",
}


@dataclass
class EncoderWeights:
    """Validated backbone tensors of one CLEF size (float32, contiguous, no BatchNorm)."""

    size: str
    state_dict: dict[str, torch.Tensor]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def embed_dim(self) -> int:
        return ARCHITECTURES[self.size].embed_dim


def read_checkpoint_payload(path: str | os.PathLike[str]) -> Any:
    """Everything in a ``.ckpt``/``.pt``/``.pth`` file, loaded with ``torch.load(weights_only=True)`` only (no
    pickled code runs). A file that cannot be read (permissions) says so; an unsafe pickle, or any failure of the
    loader on a file that is not a valid checkpoint (truncated, corrupt, not a checkpoint at all), is a
    `CheckpointError` saying what to do."""
    path = Path(path)
    require_file(path, "checkpoint")
    check_readable(path, "checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        if unsafe is None:
            raise CheckpointError(
                f"{path} is not a PyTorch checkpoint (its pickle stream is not one torch.load reads); "
                "pass the released .ckpt file or a state dict saved with torch.save"
            ) from None
        raise CheckpointError(
            f"refused to load {path}: it needs the pickled object {unsafe.group(1)}, and unpickling arbitrary "
            "objects can run code (clef-sdk loads with torch.load(weights_only=True) only). If you trust the "
            "file, re-save just its tensors with torch.save(model.state_dict(), 'clean.pt') and convert that."
        ) from None
    except OSError as exc:
        if _system_failure(exc):  # the system failed to read it (permissions changed, a disk), not its contents
            raise unreadable(path, exc, "checkpoint") from None
        raise _corrupt_checkpoint(path, exc) from None  # torch reports some damaged zips as OSError(EINVAL)
    except Exception as exc:
        # On a damaged file the unpickler raises anything (IndexError, KeyError, struct.error, AssertionError,
        # UnicodeDecodeError, MemoryError, ...): each means the same here.
        raise _corrupt_checkpoint(path, exc) from None
    return payload


def _system_failure(exc: OSError) -> bool:
    """Whether an error of a loader that had opened the file is the system's (denied, I/O), not the contents'."""
    return isinstance(exc, PermissionError) or exc.errno == errno.EIO


def _corrupt_checkpoint(path: Path, exc: BaseException) -> CheckpointError:
    first_line = str(exc).partition("\n")[0][:200]  # may be empty (an empty file raises a bare EOFError)
    return CheckpointError(
        f"{path} is not a valid PyTorch checkpoint ({type(exc).__name__}: {first_line}); "
        "the file may be truncated or corrupt: download it again"
    )


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load the tensors of a ``.ckpt``/``.pt``/``.pth`` file without running pickled code.

    Accepts a Lightning checkpoint, any dict with a ``state_dict`` entry, or a bare state dict.
    """
    path = Path(path)
    payload = read_checkpoint_payload(path)
    state_dict = payload.get("state_dict", payload) if isinstance(payload, dict) else payload
    if not isinstance(state_dict, dict) or not state_dict:
        raise CheckpointError(f"{path} holds no state dict (found {type(payload).__name__})")
    non_tensors = [key for key, value in state_dict.items() if not isinstance(value, torch.Tensor)]
    if non_tensors:
        raise CheckpointError(f"{path}: state dict entries that are not tensors: {_listing(non_tensors)}")
    return state_dict


def _listing(keys: list[str] | set[str]) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f" ... ({len(keys)} in all)" if len(keys) > _MAX_LISTED else "")


def _expected_shapes(size: str) -> dict[str, tuple[int, ...]]:
    network = build(size, device="meta")
    return {key: tuple(tensor.shape) for key, tensor in network.state_dict().items()}


def _infer_size(state_dict: dict[str, torch.Tensor]) -> str:
    stem = state_dict.get("first_conv.conv.weight")
    if stem is None:
        raise CheckpointError(
            "cannot tell the CLEF size: 'first_conv.conv.weight' is missing "
            f"(keys start {_listing(list(state_dict)[:_MAX_LISTED])}); is this a CLEF checkpoint?"
        )
    if stem.ndim != 3:
        raise CheckpointError(
            f"'first_conv.conv.weight' has shape {tuple(stem.shape)}; a CLEF stem is (filters, 1, {KERNEL_SIZE})"
        )
    by_width = {arch.base_filters: name for name, arch in ARCHITECTURES.items()}
    size = by_width.get(int(stem.shape[0]))
    if size is None:
        raise CheckpointError(
            f"'first_conv.conv.weight' has shape {tuple(stem.shape)}; no CLEF size has "
            f"{stem.shape[0]} stem filters ({', '.join(f'{n}: {w}' for w, n in by_width.items())})"
        )
    return size


def extract_backbone(state_dict: dict[str, torch.Tensor], *, source: str = "checkpoint") -> EncoderWeights:
    """Validate and normalise a CLEF backbone state dict.

    Keys may carry the ``backbone.`` prefix (Lightning modules; other sub-modules such as projection heads
    are then ignored) or none. BatchNorm tensors are dropped; every remaining key must match the inferred
    size's architecture exactly in name and shape, or `CheckpointError` lists the differences.
    """
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{source} is not a state dict (a dict of tensors): found {type(state_dict).__name__}")
    not_strings = [repr(key) for key in state_dict if not isinstance(key, str)]
    if not_strings:
        raise CheckpointError(f"{source}: state dict keys that are not strings: {_listing(not_strings)}")
    non_tensors = [key for key, value in state_dict.items() if not isinstance(value, torch.Tensor)]
    if non_tensors:
        raise CheckpointError(f"{source}: state dict entries that are not tensors: {_listing(non_tensors)}")
    if any(key.startswith(BACKBONE_PREFIX) for key in state_dict):
        state_dict = {
            key[len(BACKBONE_PREFIX) :]: value for key, value in state_dict.items() if key.startswith(BACKBONE_PREFIX)
        }
    size = _infer_size(state_dict)
    expected = _expected_shapes(size)
    batchnorm = ARCHITECTURES[size].batchnorm_shapes()
    present = set(state_dict)
    missing = set(expected) - present
    unexpected = present - set(expected) - set(batchnorm)
    mismatched = [
        f"{key}: {tuple(state_dict[key].shape)} != {shape}"
        for key, shape in {**expected, **batchnorm}.items()
        if key in state_dict and tuple(state_dict[key].shape) != shape
    ]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(f"missing keys: {_listing(missing)}")
        if unexpected:
            problems.append(f"unexpected keys: {_listing(unexpected)}")
        if mismatched:
            problems.append(f"wrong shapes: {_listing(mismatched)}")
        raise CheckpointError(f"{source} does not match CLEF-{size}: " + "; ".join(problems))

    tensors: dict[str, torch.Tensor] = {}
    for key in expected:  # the network's own order
        tensor = state_dict[key]
        if not tensor.is_floating_point():
            raise CheckpointError(f"{source}: {key} has dtype {tensor.dtype}; weights must be floating point")
        tensor = tensor.detach().to(device="cpu", dtype=torch.float32).contiguous()
        if not torch.isfinite(tensor).all():
            raise CheckpointError(f"{source}: {key} contains NaN or inf; the checkpoint is corrupt")
        tensors[key] = tensor
    return EncoderWeights(size, tensors)


def tensors_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """sha256 over the tensors' names, shapes and float32 bytes in key order: detects corruption of the data
    of a weights file whose own hash nobody recorded (explicit local paths)."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().to(device="cpu", dtype=torch.float32).contiguous()
        digest.update(f"{key}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def write_weights(
    weights: EncoderWeights, destination: str | os.PathLike[str], *, extra_metadata: dict[str, str] | None = None
) -> str:
    """Write ``weights`` as a safetensors file with clef-sdk metadata; returns the file's sha256."""
    from safetensors.torch import save_file

    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "size": weights.size,
        "embed_dim": str(weights.embed_dim),
        "preprocessing": json.dumps(PREPROCESSING, sort_keys=True),
        "clef_sdk_version": __version__,
        "tensors_sha256": tensors_digest(weights.state_dict),
        **(extra_metadata or {}),
    }
    destination = Path(destination)
    with atomic_path(destination) as tmp:
        save_file(weights.state_dict, str(tmp), metadata=metadata)
        sort_safetensors_header(tmp)
    return sha256_file(destination)


def sort_safetensors_header(path: str | os.PathLike[str]) -> None:
    """Rewrite a safetensors header with sorted keys, in place, so that equal weights give equal bytes.

    ``save_file`` orders the JSON header by hash (a different order each run), which would make the sha256 of
    a conversion unreproducible. The sorted header has the same length, so only its bytes are rewritten.
    """
    with open(path, "r+b") as handle:
        length = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(length))
        text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        if len(text) > length:  # never expected: safetensors writes compact JSON padded with spaces
            raise CheckpointError(f"cannot normalise the safetensors header of {path}")
        handle.seek(8)
        handle.write(text.ljust(length, b" "))


def convert_checkpoint(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> str:
    """Convert a CLEF checkpoint (Lightning ``.ckpt``, ``{"state_dict": ...}`` or bare state dict) to safetensors.

    Only the backbone tensors are written, as contiguous float32, with metadata naming the format version,
    size, embedding dimension, expected preprocessing and the source file's sha256. Returns the sha256 of
    ``dst``.
    """
    src = Path(src)
    dst = Path(dst)
    if dst.suffix != SAFETENSORS_SUFFIX:
        raise ValueError(f"the destination should end in {SAFETENSORS_SUFFIX}, got {dst.name}")
    weights = extract_backbone(read_checkpoint(src), source=str(src))
    return write_weights(weights, dst, extra_metadata={"source_sha256": sha256_file(src), "source_file": src.name})


def read_clef_safetensors(path: str | os.PathLike[str]) -> EncoderWeights:
    """Read and validate a clef-sdk safetensors file written by `write_weights` (and nothing else).

    Every metadata entry a check needs must be there: a file without one is refused rather than passing the check
    (``format``, ``format_version``, ``size``, ``embed_dim``, ``preprocessing`` and ``tensors_sha256``; every file
    `write_weights` writes has them).
    """
    from safetensors import safe_open

    path = Path(path)
    require_file(path, "weights file")
    check_readable(path, "weights file")  # safetensors reports a permission error as "No such file or directory"
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata: dict[str, Any] = handle.metadata() or {}
            state_dict = {key: handle.get_tensor(key) for key in handle.keys()}
    except OSError as exc:
        if _system_failure(exc):
            raise unreadable(path, exc, "weights file") from None
        raise _corrupt_safetensors(path, exc) from None
    except Exception as exc:  # SafetensorError, ValueError, TypeError ... for a damaged header
        raise _corrupt_safetensors(path, exc) from None
    if metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{path} was not written by clef-sdk (metadata format={metadata.get('format')!r}); convert the "
            "original checkpoint with `clef convert CKPT -o OUT.safetensors`"
        )
    version = metadata.get("format_version")
    if version is not None and version != FORMAT_VERSION:  # another version may record other keys: said first
        raise CheckpointError(
            f"{path} has weights format version {version!r}; this clef-sdk reads version {FORMAT_VERSION}: "
            "upgrade clef-sdk or convert the checkpoint again"
        )
    missing = [key for key in _REQUIRED_METADATA if key not in metadata]
    if missing:
        raise CheckpointError(
            f"{path} has no {missing[0] if len(missing) == 1 else ', '.join(missing[:-1]) + ' or ' + missing[-1]} "
            f"in its metadata (every clef-sdk weights file records "
            f"{', '.join(_REQUIRED_METADATA)}), so {_REQUIRED_METADATA[missing[0]]} cannot be checked: the file was "
            "edited or not written by clef-sdk. Convert the original checkpoint again with "
            "`clef convert CKPT -o OUT.safetensors`"
        )
    weights = extract_backbone(state_dict, source=str(path))
    recorded = metadata["tensors_sha256"]
    actual = tensors_digest(weights.state_dict)
    if actual != recorded:
        raise CheckpointError(
            f"{path}: the weights were modified or corrupted after conversion (tensor data sha256 {actual}, "
            f"recorded {recorded}); delete the file and download or convert it again"
        )
    declared = metadata["preprocessing"]
    try:
        contract = json.loads(declared)
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(
            f"{path}: its preprocessing metadata is not valid JSON ({type(exc).__name__}: {str(exc)[:200]}), so "
            "the preprocessing the model was trained with cannot be checked: the file was edited. Convert the "
            "original checkpoint again"
        ) from None
    if contract != json.loads(json.dumps(PREPROCESSING)):
        raise CheckpointError(
            f"{path} declares a preprocessing contract this clef-sdk {__version__} does not implement: the file "
            f"says {declared[:2000]}; clef-sdk implements {json.dumps(PREPROCESSING, sort_keys=True)}. Embeddings "
            "would not mean what the model learned: use the clef-sdk version the model was made for"
        )
    if metadata["size"] != weights.size:
        raise CheckpointError(
            f"{path}: metadata says size {metadata['size']!r} but the tensors are CLEF-{weights.size}"
        )
    if metadata["embed_dim"] != str(weights.embed_dim):
        raise CheckpointError(
            f"{path}: metadata says embed_dim {metadata['embed_dim']!r} but CLEF-{weights.size} embeds in "
            f"{weights.embed_dim}"
        )
    weights.metadata = dict(metadata)
    return weights


def _corrupt_safetensors(path: Path, exc: BaseException) -> CheckpointError:
    detail = str(exc).partition("\n")[0][:200] or type(exc).__name__
    return CheckpointError(
        f"{path} is not a valid safetensors file ({detail}); it is corrupt or truncated: delete it and "
        "download or convert it again"
    )


def read_weights(path: str | os.PathLike[str]) -> EncoderWeights:
    """Validated weights from any file clef-sdk loads: a ``.safetensors`` file of ours
    (`read_clef_safetensors`) or any checkpoint `read_checkpoint` takes."""
    path = Path(path)
    if path.suffix == SAFETENSORS_SUFFIX:
        return read_clef_safetensors(path)
    weights = extract_backbone(read_checkpoint(path), source=str(path))
    weights.metadata = {"source_file": path.name}
    return weights


def encoder_from_weights(weights: EncoderWeights, name: str | None = None) -> ClefEncoder:
    """A CLEF encoder in eval mode holding ``weights`` (loaded with ``strict=True``)."""
    encoder = build(weights.size)
    encoder.load_state_dict(weights.state_dict, strict=True)
    if name:
        encoder.name = name
    return encoder.eval()
