"""Export: a training checkpoint -> safetensors -> clef.load / clef.embed with the in-memory model's embeddings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("lightning")

import clef_sdk as clef
from clef_sdk.errors import CheckpointError
from clef_sdk.train.export import export_checkpoint
from clef_sdk.weights.format import read_weights


def test_exported_model_embeds_like_the_trained_one(trained_run, tmp_path: Path, mitdb_record: np.ndarray) -> None:
    path = tmp_path / "trained.safetensors"
    digest = export_checkpoint(trained_run.checkpoint, path)
    assert len(digest) == 64
    loaded = clef.load(path, device="cpu")
    in_memory = trained_run.module.backbone.eval().cpu()
    ecg = mitdb_record[: 360 * 60]
    with torch.inference_mode():
        windows = torch.from_numpy(clef.preprocess(ecg, 360)).unsqueeze(1)
        expected = in_memory(windows).numpy()
    np.testing.assert_array_equal(loaded.embed(ecg, 360, pooling=None), expected)  # the same float32 weights
    # clef.embed pools with its own float32 running mean: measured 2.4e-7 from numpy's mean
    np.testing.assert_allclose(clef.embed(ecg, 360, model=str(path), device="cpu"), expected.mean(0), rtol=0, atol=2e-6)
    # the run's facts travel with the weights
    metadata = read_weights(path).metadata
    assert metadata["training_method"] == "clef" and metadata["training_size"] == "small"
    assert metadata["training_steps"] == "4" and metadata["training_seed"] == "0"
    assert "24 windows of 24 records" in metadata["training_data"]
    assert json.loads(metadata["training_hparams"])["lr"] == 1e-4
    assert metadata["source_file"] == "step=000000004.ckpt"


def test_export_refuses_what_it_cannot_export(small_ckpt: Path, trained_run, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a clef_sdk.train checkpoint .* use `clef convert`"):
        export_checkpoint(small_ckpt, tmp_path / "released.safetensors")
    with pytest.raises(ValueError, match="should end in .safetensors"):
        export_checkpoint(trained_run.checkpoint, tmp_path / "model.pt")
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(trained_run.checkpoint.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        export_checkpoint(damaged, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_export_and_resume_refuse_checkpoints_of_the_wrong_shape(trained_run, tmp_path: Path) -> None:
    """Hyper-parameters that are not a mapping raised a raw TypeError; now a CheckpointError names the file."""
    import torch

    from clef_sdk.train.trainer import latest_checkpoint

    payload = torch.load(trained_run.checkpoint, map_location="cpu", weights_only=True)
    odd = tmp_path / "odd.ckpt"
    torch.save({**payload, "hyper_parameters": ["method", "clef"]}, odd)
    with pytest.raises(CheckpointError, match="not a clef_sdk.train checkpoint"):
        export_checkpoint(odd, tmp_path / "odd.safetensors")
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step=000000009.ckpt").write_bytes(os.urandom(4096))  # damaged: passed over
    (run / "checkpoints" / "step=000000002.ckpt").write_bytes(trained_run.checkpoint.read_bytes())
    assert latest_checkpoint(run) == run / "checkpoints" / "step=000000002.ckpt"
