"""Models by repository id (hf-hub:ORG/NAME@REVISION) through the local Hub server, and publishing trained models."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import clef_sdk as clef
from clef_sdk.cli import main
from clef_sdk.constants import PREPROCESSING
from clef_sdk.errors import CheckpointError, ChecksumMismatchError, WeightsNotAvailableError
from clef_sdk.weights.format import EncoderWeights, write_weights

TRAINING = {
    "training_method": "clef",
    "training_size": "small",
    "training_steps": "1500",
    "training_epochs": "3",
    "training_data": "125 LUDB subjects, lead I",
    "training_seed": "7",
    "training_hparams": json.dumps({"method": "clef", "size": "small", "lr": 0.001}),
}


def trained_weights(path, seed: int = 1, **metadata: str):
    """A safetensors file as `clef train export` writes it: our writer, with training_* metadata."""
    state = {k: v.contiguous() for k, v in clef.build("small", seed=seed).state_dict().items()}
    write_weights(EncoderWeights("small", state), path, extra_metadata={**TRAINING, **metadata})
    return path


class RecordingApi:
    """Stands in for huggingface_hub.HfApi's upload side (the local server emulates downloads, not the commit
    API): records the upload, and the test then serves the uploaded files at the returned commit."""

    def __init__(self, commit: str) -> None:
        self.commit, self.uploads = commit, []

    def create_repo(self, repo_id: str, **kwargs: object) -> None:
        pass

    def upload_folder(self, **kwargs: object) -> SimpleNamespace:
        self.uploads.append(kwargs)
        return SimpleNamespace(oid=self.commit, commit_url=None)


@pytest.fixture
def published(env, hub, tmp_path):
    """Two versions of me/ecg-model on the local Hub: v1 (tagged, branch `stable`), then v2 on main."""
    first = trained_weights(tmp_path / "v1.safetensors", seed=1).read_bytes()
    second = trained_weights(tmp_path / "v2.safetensors", seed=2).read_bytes()
    v1 = hub.add_hub_file("me/ecg-model", "model.safetensors", first)
    hub.add_hub_file("me/ecg-model", "config.json", b"{}", commit=v1)
    hub.add_ref("me/ecg-model", "v1.0", v1)
    hub.add_ref("me/ecg-model", "stable", v1)
    v2 = hub.add_hub_file("me/ecg-model", "model.safetensors", second)
    hub.add_hub_file("me/ecg-model", "config.json", b"{}", commit=v2)
    return SimpleNamespace(v1=v1, v2=v2, paths={v1: tmp_path / "v1.safetensors", v2: tmp_path / "v2.safetensors"})


def same_tensors(encoder, path) -> bool:
    reference = clef.load(path).state_dict()
    return all(torch.equal(value, reference[key]) for key, value in encoder.state_dict().items())


@pytest.mark.parametrize(("revision", "expected"), [(None, "v2"), ("stable", "v1"), ("v1.0", "v1"), ("COMMIT", "v1")])
def test_load_by_repository_id_branch_tag_and_commit(published, revision, expected):
    commit = getattr(published, expected)
    asked = published.v1 if revision == "COMMIT" else revision
    spec = "hf-hub:me/ecg-model" + (f"@{asked}" if asked else "")
    encoder = clef.load(spec)
    assert same_tensors(encoder, published.paths[commit])
    assert encoder.source.commit == commit and encoder.source.revision == asked  # the branch or tag, resolved
    assert (
        encoder.source.spec == f"hf-hub:me/ecg-model@{commit}" and encoder.name == f"hf-hub:me/ecg-model@{commit[:12]}"
    )


def test_the_same_string_works_everywhere(published, capsys, tmp_path):
    spec = f"hf-hub:me/ecg-model@{published.v1}"
    signal, fs, _ = clef.datasets.load_example("mitdb-100")
    expected = clef.load(published.paths[published.v1]).embed(signal, fs)
    np.testing.assert_array_equal(clef.embed(signal, fs, model=spec), expected)
    np.testing.assert_array_equal(clef.ClefEmbedder(model=spec, fs=fs).fit_transform([signal])[0], expected)
    loss = clef.FeatureLoss(model=spec, fs=fs)
    x = torch.from_numpy(signal[None, : 3600 * 2])
    assert loss(x, x).item() == 0.0
    source, output = tmp_path / "x.npy", tmp_path / "e.npy"
    np.save(source, signal)
    assert main(["embed", str(source), "--fs", str(fs), "--model", spec, "-o", str(output), "--no-progress"]) == 0
    np.testing.assert_allclose(np.load(output), expected, rtol=0, atol=1e-6)
    assert main(["info", "hf-hub:me/ecg-model@stable"]) == 0
    out = capsys.readouterr().out
    assert f"commit:         {published.v1}" in out and "revision:       stable" in out
    assert "  method:         clef" in out and "(verified)" in out


def test_offline_from_the_cache_and_tampering_refused(published, hub, monkeypatch):
    clef.load("hf-hub:me/ecg-model@stable")
    hub.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clef.clear_cache()
    encoder = clef.load("hf-hub:me/ecg-model@stable")  # the branch resolves from the cache's refs
    assert encoder.source.commit == published.v1 and hub.requests == []
    with pytest.raises(WeightsNotAvailableError, match="not in the cache and the network is off"):
        clef.load("hf-hub:me/ecg-model@v1.0")  # never downloaded under this name
    blob = encoder.source.path.resolve()
    data = bytearray(blob.read_bytes())
    data[-10] ^= 0xFF
    blob.write_bytes(bytes(data))
    clef.clear_cache()
    with pytest.raises(ChecksumMismatchError, match="modified or corrupted. Delete .* to re-download"):
        clef.load("hf-hub:me/ecg-model@stable")


def test_repositories_without_clef_weights_are_refused(env, hub, tmp_path):
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(3)}, str(tmp_path / "other.safetensors"))
    hub.add_hub_file("someone/bert", "model.safetensors", (tmp_path / "other.safetensors").read_bytes())
    hub.add_hub_file("someone/bert", "config.json", b"{}")
    with pytest.raises(CheckpointError, match="was not written by clef-sdk"):
        clef.load("hf-hub:someone/bert")
    with pytest.raises(WeightsNotAvailableError, match="cannot get model.safetensors of hf-hub:someone/missing"):
        clef.load("hf-hub:someone/missing")
    with pytest.raises(ValueError, match="not a Hub model spec"):
        clef.load("hf-hub:no-namespace")
    contract = dict(PREPROCESSING, target_fs_hz=250)
    trained_weights(tmp_path / "future.safetensors", preprocessing=json.dumps(contract, sort_keys=True))
    hub.add_hub_file("me/future", "model.safetensors", (tmp_path / "future.safetensors").read_bytes())
    hub.add_hub_file("me/future", "config.json", b"{}")
    with pytest.raises(
        CheckpointError, match='does not implement: the file says .*"target_fs_hz": 250.*clef-sdk implements'
    ):
        clef.load("hf-hub:me/future")


def test_publish_trained_then_load_by_id_gives_the_same_embeddings(env, hub, tmp_path, capsys):
    from clef_sdk.weights.publish import publish_trained

    weights = trained_weights(tmp_path / "mine.safetensors", seed=3)
    with pytest.raises(ValueError, match="license must be a Hub license identifier"):
        publish_trained(weights, "me/clef-mine", license="")
    api = RecordingApi("d" * 40)
    start = time.perf_counter()
    result = publish_trained(weights, "me/clef-mine", license="cc-by-4.0", out_dir=tmp_path / "folder", api=api)
    assert sorted(p.name for p in result.folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert api.uploads[0]["repo_id"] == "me/clef-mine" and result.revision == "d" * 40
    card = (result.folder / "README.md").read_text()
    for needle in (
        "license: cc-by-4.0",
        "library_name: clef-sdk",
        "| method | clef |",
        "| steps | 1500 |",
        "125 LUDB subjects",
        'clef.load("hf-hub:me/clef-mine@COMMIT")',
        '"lr": 0.001',
    ):
        assert needle in card, needle
    config = json.loads((result.folder / "config.json").read_text())
    assert config["training"]["method"] == "clef" and config["weights"]["sha256"] == result.manifest_source["sha256"]
    for name in ("README.md", "config.json", "model.safetensors"):  # what the Hub now serves at that commit
        hub.add_hub_file("me/clef-mine", name, (result.folder / name).read_bytes(), commit=result.revision)
    signal, fs, _ = clef.datasets.load_example("ludb-1")
    np.testing.assert_array_equal(
        clef.embed(signal, fs, model=f"hf-hub:me/clef-mine@{result.revision}"),
        clef.embed(signal, fs, model=str(weights)),
    )
    print(f"round trip {time.perf_counter() - start:.2f} s")

    code = main(
        [
            "publish",
            "--weights",
            str(weights),
            "--repo-id",
            "me/x",
            "--license",
            "mit",
            "--dry-run",
            "--out",
            str(tmp_path / "dry"),
        ]
    )
    assert code == 0 and "dry run: nothing uploaded" in capsys.readouterr().out
    assert main(["publish", "--weights", str(weights), "--repo-id", "me/x", "--dry-run"]) == 1
    assert "--license is required" in capsys.readouterr().err
    released = tmp_path / "released.safetensors"
    state = {k: v.contiguous() for k, v in clef.build("small", seed=4).state_dict().items()}
    write_weights(EncoderWeights("small", state), released)
    assert main(["publish", "--weights", str(released), "--repo-id", "me/x", "--license", "mit", "--dry-run"]) == 1
    assert "no training metadata" in capsys.readouterr().err


def test_no_network_fails_at_once_through_the_shared_probe(env, monkeypatch):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    # the probe's own message: huggingface_hub's retries (about 25 s) are never reached
    with pytest.raises(WeightsNotAvailableError, match=rf"cannot connect to 127.0.0.1:{port} \(ConnectionRefusedError"):
        clef.load("hf-hub:me/ecg-model")
