"""``clef publish`` for task models: the folder (byte copy of the file, config.json with numbers as numbers, a card
listing the labels in output order), the upload of exactly those files, and the round trip through the local Hub
server: publish -> ``load_task_model("hf-hub:...@COMMIT")`` -> the same predictions on real ECG, offline from the
cache, a tampered cache refused. Hostile label names and training facts stay inside their table cells."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

import clef_sdk as clef
from clef_sdk.cli import main
from clef_sdk.errors import CheckpointError, ChecksumMismatchError, OutputError
from clef_sdk.files import sha256_file
from clef_sdk.tasks import TaskModel, load_task_model
from clef_sdk.weights.format import EncoderWeights, write_weights
from clef_sdk.weights.publish import build_task_folder, publish_task_model, publish_trained

WRITTEN = ["README.md", "config.json", "task_model.safetensors"]
TRAINING = {
    "data": "PhysioNet 2017 single-lead AF challenge, 8528 recordings",
    "epochs": 12,
    "metrics": {"auroc": 0.9312, "val": {"f1": 0.8123, "n": 853}},
}


class RecordingApi:
    """Stands in for huggingface_hub.HfApi's upload side (the local server emulates downloads, not the commit
    API): records each upload; the test then serves the uploaded files at the returned commit."""

    def __init__(self, commit: str = "c" * 40) -> None:
        self.commit, self.uploads = commit, []

    def create_repo(self, repo_id: str, **kwargs: object) -> None:
        pass

    def upload_folder(self, **kwargs: object) -> SimpleNamespace:
        self.uploads.append(kwargs)
        return SimpleNamespace(oid=self.commit, commit_url=None)


def make(task: str = "binary", classes=("normal", "af"), **kwargs) -> TaskModel:
    torch.manual_seed(2)
    kwargs.setdefault("training", TRAINING)
    return TaskModel(clef.build("small", seed=0), task, list(classes), **kwargs).eval()


@pytest.fixture
def saved(tmp_path: Path) -> SimpleNamespace:
    model = make(thresholds=0.35)
    path = tmp_path / "af.safetensors"
    model.save(path)
    return SimpleNamespace(model=model, path=path)


def _split_card(card: str) -> tuple[dict, str]:
    assert card.startswith("---\n")
    end = card.index("\n---\n", 4)
    return yaml.safe_load(card[4:end]), card[end + 5 :]


def _table(body: str, header: str, section: str | None = None) -> list[list[str]]:
    """The cells of the rows of the first table whose header line is ``header`` (in ``## section``, if given)."""
    lines = body.splitlines()
    start = lines.index(header, lines.index(f"## {section}") if section else 0)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


def test_publish_then_load_by_id_predicts_the_same_offline_and_tampering_is_refused(
    env, hub, saved, tmp_path, monkeypatch
):
    api = RecordingApi()
    result = publish_task_model(saved.path, "me/af-detector", license="cc-by-4.0", out_dir=tmp_path / "out", api=api)
    assert sorted(p.name for p in result.folder.iterdir()) == WRITTEN
    assert result.revision == api.commit and api.uploads[0]["repo_id"] == "me/af-detector"
    assert api.uploads[0]["allow_patterns"] == ["task_model.safetensors", "config.json", "README.md"]
    assert (result.folder / "task_model.safetensors").read_bytes() == saved.path.read_bytes()  # a byte copy
    assert result.manifest_source["filename"] == "task_model.safetensors"
    assert result.manifest_source["sha256"] == sha256_file(saved.path)
    for name in WRITTEN:  # what the Hub now serves at that commit
        hub.add_hub_file("me/af-detector", name, (result.folder / name).read_bytes(), commit=result.revision)

    loaded = load_task_model(f"hf-hub:me/af-detector@{result.revision}")
    assert loaded.classes_.tolist() == ["normal", "af"] and loaded.thresholds == (0.35,)
    assert loaded.training_info == TRAINING and loaded.encoder.source.commit == result.revision
    for example in ("mitdb-100", "ludb-1"):  # real ECG at 360 and 500 Hz
        signal, fs, _ = clef.datasets.load_example(example)
        np.testing.assert_array_equal(loaded.predict_proba(signal, fs), saved.model.predict_proba(signal, fs))
        assert loaded.predict(signal, fs) == saved.model.predict(signal, fs)

    hub.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = load_task_model(f"hf-hub:me/af-detector@{result.revision}")
    assert hub.requests == [] and again.encoder.source.sha256 == result.manifest_source["sha256"]
    blob = again.encoder.source.path.resolve()
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatchError, match="modified or corrupted. Delete .* to re-download"):
        load_task_model(f"hf-hub:me/af-detector@{result.revision}")


def test_config_holds_the_task_facts_as_numbers(env, saved, tmp_path):
    built = build_task_folder(saved.path, tmp_path / "out", repo_id="me/af-detector", license="mit")
    config = json.loads((built.folder / "config.json").read_text())
    assert config == built.config
    assert config["task"] == "binary" and config["classes"] == ["normal", "af"] and config["pooling"] == "mean"
    assert config["thresholds"] == [0.35] and config["target_scaling"] is None and config["outputs"] == "probabilities"
    assert config["size"] == "small" and config["embed_dim"] == 256 and config["format_version"] == 1
    assert config["format"] == "clef-sdk/task-model" and config["preprocessing"]["target_fs_hz"] == 500
    assert config["weights"] == {
        "filename": "task_model.safetensors",
        "sha256": sha256_file(saved.path),
        "size": saved.path.stat().st_size,
        "tensors_sha256": clef.tasks.read_task_metadata(saved.path)["tensors_sha256"],
    }
    assert config["training"] == TRAINING and config["license"] == "mit" and config["repo_id"] == "me/af-detector"

    age = tmp_path / "age.safetensors"
    make("regression", ["age"], target_scaling=(55, 12.5), training=None).save(age)
    config = build_task_folder(age, tmp_path / "age", repo_id="me/age", license="mit").config
    assert config["target_scaling"] == {"mean": 55.0, "std": 12.5} and config["thresholds"] is None
    assert config["outputs"] == "values" and config["training"] == {}
    labels = tmp_path / "labels.safetensors"
    make("multilabel", ["af", "lbbb", "rbbb"], thresholds=[0.2, 0.4, 0.6]).save(labels)
    config = build_task_folder(labels, tmp_path / "labels", repo_id="me/labels", license="mit").config
    assert config["thresholds"] == [0.2, 0.4, 0.6] and all(isinstance(v, float) for v in config["thresholds"])


def test_card_lists_the_labels_in_output_order_and_how_to_use_them(env, saved, tmp_path):
    built = build_task_folder(saved.path, tmp_path / "out", repo_id="me/af-detector", license="cc-by-4.0")
    meta, body = _split_card((built.folder / "README.md").read_text())
    assert meta["license"] == "cc-by-4.0" and meta["library_name"] == "clef-sdk" and "pipeline_tag" not in meta
    assert {"clef-task-model", "binary-classification", "ecg"} <= set(meta["tags"])
    assert _table(body, "| column | label | decision |") == [
        ["0", "normal", "negative"],
        ["1", "af", "positive: predicted when p >= 0.35"],
    ]
    metrics = dict(_table(body, "| metric | value |"))
    assert metrics == {"auroc": "0.9312", "val.f1": "0.8123", "val.n": "853"}
    model_facts = dict(_table(body, "| | |", "Model"))
    assert model_facts["task"] == "binary classification" and model_facts["thresholds"] == "0.35"
    assert model_facts["encoder"] == "CLEF-small, 256-dimensional embeddings (clef-small)"
    facts = dict(_table(body, "| | |", "Training"))
    assert facts["data"] == TRAINING["data"] and facts["epochs"] == "12"
    for needle in (
        'model = clef.load_task_model("hf-hub:me/af-detector")',
        "labels = model.predict(signal, fs)",
        "column i is the probability of model.classes_[i]",
        '["normal", "af"]',
        "`p >= 0.35`",
        "## Intended use",
        "## Limitations",
        "not a medical device",
        sha256_file(saved.path),
    ):
        assert needle in body, needle

    age = tmp_path / "age.safetensors"
    make("regression", ["age"], target_scaling=(55, 12.5), training=None).save(age)
    card = (build_task_folder(age, tmp_path / "age", repo_id="me/age", license="mit").folder / "README.md").read_text()
    _, body = _split_card(card)
    assert _table(body, "| output | target | target scaling |") == [["value", "age", "mean 55, std 12.5"]]
    assert "values = model.predict(signal, fs)" in body and "No training facts were recorded" in body


def test_hostile_labels_and_training_facts_stay_in_their_cells(env, tmp_path):
    classes = ["a|b\n---\nlicense: evil", "`x`\n# Heading", "c\u2028d", "ok"]
    training = {"data": "x | y\n---\n# Injected", "metrics": {"auc|x": "1\n| a | b |"}, "note": "```\n# out"}
    path = tmp_path / "hostile.safetensors"
    make("multilabel", classes, training=training).save(path)
    built = build_task_folder(path, tmp_path / "out", repo_id="me/hostile", license="mit")
    meta, body = _split_card((built.folder / "README.md").read_text())
    assert set(meta) == {"library_name", "license", "tags"} and meta["license"] == "mit"
    rows = _table(body, "| column | label | decision |")
    assert [row[0] for row in rows] == ["0", "1", "2", "3"] and all(len(row) == 3 for row in rows)
    assert rows[0][1] == r"a\|b --- license: evil" and rows[1][1] == r"\`x\` # Heading"
    tables = _table(body, "| metric | value |") + _table(body, "| | |", "Model") + _table(body, "| | |", "Training")
    assert all(len(row) == 2 for row in tables)
    lines = body.splitlines()
    assert "# Heading" not in lines and "# Injected" not in lines and "# out" not in lines and "---" not in lines
    fence = re.search(r"^(`{3,})json\n(.*?)\n^\1$", body, re.S | re.M)
    assert fence is not None and json.loads(fence.group(2)) == training
    assert json.loads((built.folder / "config.json").read_text())["classes"] == classes


def test_the_command_line_recognises_a_task_model_by_its_metadata(env, saved, tmp_path, capsys):
    out = tmp_path / "dry"
    args = ["publish", str(saved.path), "--repo", "me/af-detector", "--license", "mit", "--dry-run", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "binary task model on CLEF-small: normal, af" in printed and "dry run: nothing uploaded" in printed
    assert sorted(p.name for p in out.iterdir()) == WRITTEN
    assert main(["publish", "--weights", str(saved.path), "--repo-id", "me/x", "--license", "mit", "--dry-run"]) == 0
    capsys.readouterr()
    assert main(["publish", str(saved.path), "--repo-id", "me/x", "--dry-run"]) == 1
    assert "--license is required for a task model" in capsys.readouterr().err
    assert main(["publish", str(saved.path), "--ckpt", "x.ckpt", "--repo-id", "me/x", "--license", "mit"]) == 1
    assert "a task model is published alone" in capsys.readouterr().err


def test_wrong_kinds_and_folders_are_refused(env, saved, tmp_path):
    encoder = tmp_path / "encoder.safetensors"
    state = {k: v.contiguous() for k, v in clef.build("small", seed=4).state_dict().items()}
    write_weights(EncoderWeights("small", state), encoder, extra_metadata={"training_method": "clef"})
    with pytest.raises(CheckpointError, match="is not a task-model file"):
        publish_task_model(encoder, "me/x", license="mit", dry_run=True)
    with pytest.raises(CheckpointError, match="holds a task model, not encoder weights"):
        publish_trained(saved.path, "me/x", license="mit", dry_run=True)
    with pytest.raises(ValueError, match="license must be a Hub license identifier"):
        publish_task_model(saved.path, "me/x", license="", dry_run=True)
    with pytest.raises(ValueError, match="repository id"):
        publish_task_model(saved.path, "me/x y", license="mit", dry_run=True)
    trained = tmp_path / "trained"
    publish_trained(encoder, "me/x", license="mit", out_dir=trained, dry_run=True)
    with pytest.raises(OutputError, match="wrote for a trained model"):
        publish_task_model(saved.path, "me/x", license="mit", out_dir=trained, dry_run=True)
    task = tmp_path / "task"
    publish_task_model(saved.path, "me/x", license="mit", out_dir=task, dry_run=True)
    other = tmp_path / "other.safetensors"
    make("multiclass", ["sinus", "af", "other"]).save(other)
    publish_task_model(other, "me/x", license="mit", out_dir=task, dry_run=True)  # replaces the earlier task folder
    assert json.loads((task / "config.json").read_text())["task"] == "multiclass"
    with pytest.raises(OutputError, match="wrote for a task model"):
        publish_trained(encoder, "me/x", license="mit", out_dir=task, dry_run=True)
    (task / "model.safetensors").write_bytes(encoder.read_bytes())  # an encoder's file beside a task model's
    with pytest.raises(OutputError, match="did not write: model.safetensors"):
        publish_task_model(saved.path, "me/x", license="mit", out_dir=task, dry_run=True)
