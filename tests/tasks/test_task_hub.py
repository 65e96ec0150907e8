"""Task models by repository id (``clef.load_task_model("hf-hub:ORG/NAME@REVISION")``) through the local Hub server:
branches, tags and commits, the cache and offline use, tampering, and each kind of model refused by the other's
loader with a message naming the right one; ``clef info`` on task-model files and repositories."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import clef_sdk as clef
from clef_sdk.cli import main
from clef_sdk.errors import CheckpointError, ChecksumMismatchError, WeightsNotAvailableError
from clef_sdk.files import sha256_file
from clef_sdk.tasks import TaskModel, load_task_model
from clef_sdk.weights.format import EncoderWeights, write_weights

TRAINING = {"data": "LUDB lead I, 200 recordings", "metrics": {"auroc": 0.91}, "seed": 7}


def task_file(path, seed: int, task: str = "binary", **kwargs):
    """A task model on CLEF-small (encoder seed ``seed``) saved at ``path``."""
    classes = {"binary": ["normal", "af"], "multiclass": ["sinus", "af", "other"], "regression": ["age"]}[task]
    torch.manual_seed(seed)
    TaskModel(clef.build("small", seed=seed), task, classes, training=TRAINING, **kwargs).save(path)
    return path


def encoder_file(path, seed: int = 1):
    state = {k: v.contiguous() for k, v in clef.build("small", seed=seed).state_dict().items()}
    write_weights(EncoderWeights("small", state), path)
    return path


def same_model(model: TaskModel, path) -> bool:
    reference = load_task_model(path).state_dict()
    return all(torch.equal(value, reference[key]) for key, value in model.state_dict().items())


@pytest.fixture
def published(env, hub, tmp_path):
    """Two versions of me/af-detector on the local Hub: v1 (tagged v1.0, branch `stable`), then v2 on main."""
    paths = {}
    for version, seed in (("v1", 1), ("v2", 2)):
        path = task_file(tmp_path / f"{version}.safetensors", seed=seed, thresholds=0.3 if version == "v2" else None)
        commit = hub.add_hub_file("me/af-detector", "task_model.safetensors", path.read_bytes())
        hub.add_hub_file("me/af-detector", "config.json", b'{"task": "binary"}', commit=commit)
        paths[version] = (commit, path)
    v1, v2 = paths["v1"][0], paths["v2"][0]
    hub.add_ref("me/af-detector", "v1.0", v1)
    hub.add_ref("me/af-detector", "stable", v1)
    return SimpleNamespace(v1=v1, v2=v2, paths=dict(paths.values()))


@pytest.mark.parametrize(("revision", "expected"), [(None, "v2"), ("stable", "v1"), ("v1.0", "v1"), ("COMMIT", "v1")])
def test_load_by_repository_id_branch_tag_and_commit(published, revision, expected):
    commit = getattr(published, expected)
    asked = published.v1 if revision == "COMMIT" else revision
    model = load_task_model("hf-hub:me/af-detector" + (f"@{asked}" if asked else ""))
    assert isinstance(model, TaskModel) and not model.training and model.task == "binary"
    assert same_model(model, published.paths[commit])
    assert model.thresholds == ((0.3,) if expected == "v2" else (0.5,))
    source = model.encoder.source
    assert source.commit == commit and source.revision == asked and source.filename == "task_model.safetensors"
    assert source.spec == f"hf-hub:me/af-detector@{commit}" and source.sha256 == sha256_file(published.paths[commit])


def test_predictions_equal_the_local_files(published):
    signal, fs, _ = clef.datasets.load_example("mitdb-100")
    hub_model = clef.load_task_model(f"hf-hub:me/af-detector@{published.v1}")  # the package's own name
    local = load_task_model(published.paths[published.v1])
    np.testing.assert_array_equal(hub_model.predict_proba(signal, fs), local.predict_proba(signal, fs))


def test_offline_from_the_cache_and_tampering_refused(published, hub, monkeypatch):
    load_task_model("hf-hub:me/af-detector@stable")
    hub.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_task_model("hf-hub:me/af-detector@stable")  # the branch resolves from the cache's refs
    assert model.encoder.source.commit == published.v1 and hub.requests == []
    with pytest.raises(WeightsNotAvailableError, match="not in the cache and the network is off"):
        load_task_model("hf-hub:me/af-detector@v1.0")  # never downloaded under this name
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert load_task_model("hf-hub:me/af-detector@stable", local_files_only=True).encoder.source.commit == published.v1
    with pytest.raises(WeightsNotAvailableError, match="not in the cache and the network is off"):
        load_task_model("hf-hub:me/af-detector", local_files_only=True)  # main was never fetched
    assert hub.requests == []
    blob = model.encoder.source.path.resolve()
    data = bytearray(blob.read_bytes())
    data[-10] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="task_model.safetensors has sha256 .* modified or corrupted"):
        load_task_model("hf-hub:me/af-detector@stable")


def test_each_loader_names_the_other_for_the_other_kind(env, hub, tmp_path):
    task_path = task_file(tmp_path / "task.safetensors", seed=1)
    encoder_path = encoder_file(tmp_path / "encoder.safetensors")
    with pytest.raises(CheckpointError, match=r"holds a task model .* load it with clef.load_task_model\("):
        clef.load(task_path)
    with pytest.raises(CheckpointError, match="holds a task model"):
        clef.embed(np.zeros(5000), 500, model=str(task_path))  # through the encoder cache too
    with pytest.raises(CheckpointError, match=r"it holds an encoder: load it with clef.load"):
        load_task_model(encoder_path)
    hub.add_hub_file("me/task", "task_model.safetensors", task_path.read_bytes())
    hub.add_hub_file("me/task", "config.json", b"{}")
    hub.add_hub_file("me/encoder", "model.safetensors", encoder_path.read_bytes())
    hub.add_hub_file("me/encoder", "config.json", b"{}")
    with pytest.raises(WeightsNotAvailableError, match=r"cannot get model.safetensors .* clef.load_task_model"):
        clef.load("hf-hub:me/task")
    with pytest.raises(WeightsNotAvailableError, match=r"cannot get task_model.safetensors .* loaded with clef.load$"):
        load_task_model("hf-hub:me/encoder")
    hub.add_hub_file("me/mislabelled", "task_model.safetensors", encoder_path.read_bytes())
    hub.add_hub_file("me/mislabelled", "config.json", b"{}")
    with pytest.raises(CheckpointError, match="it holds an encoder: load it with clef.load"):
        load_task_model("hf-hub:me/mislabelled")
    with pytest.raises(ValueError, match="not a Hub model spec"):
        load_task_model("hf-hub:no-namespace")
    with pytest.raises(CheckpointError, match="no such task-model file"):
        load_task_model(tmp_path / "missing.safetensors")


def test_clef_info_on_a_task_model_file_and_repository(published, tmp_path, capsys):
    path = task_file(tmp_path / "age.safetensors", seed=3, task="regression", target_scaling=(55.0, 12.5))
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    for needle in (
        f"task model {path}",
        "  task:           regression",
        "  target:         0: age",
        "  target scaling: mean 55, std 12.5",
        "  encoder:        CLEF-small, embed_dim 256",
        f"  sha256:         {sha256_file(path)}",
        "  tensors:        verified",
        "  training:\n    data:         LUDB lead I, 200 recordings\n",
        '    metrics:      {"auroc": 0.91}\n',
        f"clef.load_task_model({str(path)!r})",
    ):
        assert needle in out, (needle, out)
    assert main(["info", "hf-hub:me/af-detector@stable"]) == 0
    out = capsys.readouterr().out
    for needle in (
        "hf-hub:me/af-detector  (task model)",
        "  revision:       stable",
        f"  commit:         {published.v1}",
        "  classes:        0: normal, 1: af  (column i of predict_proba)",
        "  thresholds:     0.5",
        f"  sha256:         {sha256_file(published.paths[published.v1])} (verified)",
        f"clef.load_task_model('hf-hub:me/af-detector@{published.v1}')",
    ):
        assert needle in out, (needle, out)
    encoder_path = encoder_file(tmp_path / "encoder.safetensors")
    assert main(["info", str(encoder_path)]) == 0
    assert "CLEF encoder weights" in capsys.readouterr().out
    assert main(["info", str(tmp_path / "missing.safetensors")]) == 1
    assert "missing.safetensors" in capsys.readouterr().err
    assert main(["info", "hf-hub:me/nothing-here"]) == 1
    assert "cannot get model.safetensors of hf-hub:me/nothing-here" in capsys.readouterr().err
