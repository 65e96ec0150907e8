"""``clef train export``: a pretraining checkpoint -> a clef-sdk ``.safetensors`` file for ``clef.load``/``clef.embed``.

Only the encoder (``backbone.*``) is kept, through the same converter as the released checkpoints, with the
training run's facts in the file's metadata (``training_*`` keys: method, size, steps, epochs, data, seed and
every hyper-parameter as JSON).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..errors import CheckpointError
from ..files import sha256_file
from ..weights.format import SAFETENSORS_SUFFIX, extract_backbone, read_checkpoint_payload, write_weights

__all__ = ["export_checkpoint", "training_metadata"]


def training_metadata(payload: dict, source: Path) -> dict[str, str]:
    """The ``training_*`` metadata of a [`ClefPretraining`][clef_sdk.train.module.ClefPretraining] checkpoint."""
    hparams = payload.get("hyper_parameters") or {}
    if not isinstance(hparams, dict) or "method" not in hparams or "size" not in hparams:
        raise CheckpointError(
            f"{source} is not a clef_sdk.train checkpoint (no method/size hyper-parameters); for the authors' "
            "released checkpoints use `clef convert`"
        )
    return {
        "training_method": str(hparams["method"]),
        "training_size": str(hparams["size"]),
        "training_steps": str(payload.get("global_step", "")),
        "training_epochs": str(payload.get("epoch", "")),
        "training_data": str(hparams.get("data_description", "")),
        "training_seed": str(hparams.get("seed", "")),
        "training_hparams": json.dumps(dict(hparams), sort_keys=True),
        "training_lightning_version": str(payload.get("pytorch-lightning_version", "")),
    }


def export_checkpoint(checkpoint: str | os.PathLike[str], destination: str | os.PathLike[str]) -> str:
    """Write the encoder of a pretraining ``checkpoint`` to ``destination`` (``.safetensors``); returns its sha256."""
    source, destination = Path(checkpoint), Path(destination)
    if destination.suffix != SAFETENSORS_SUFFIX:
        raise ValueError(f"the destination should end in {SAFETENSORS_SUFFIX}, got {destination.name}")
    payload = read_checkpoint_payload(source)
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise CheckpointError(f"{source} is not a Lightning checkpoint (no state_dict entry)")
    metadata = training_metadata(payload, source)
    weights = extract_backbone(payload["state_dict"], source=str(source))
    if weights.size != metadata["training_size"]:
        raise CheckpointError(
            f"{source}: the weights are CLEF-{weights.size}, the hyper-parameters say {metadata['training_size']}"
        )
    metadata.update(source_file=source.name, source_sha256=sha256_file(source))
    return write_weights(weights, destination, extra_metadata=metadata)
