"""TaskModel: construction checks, forward on windows against predict on raw real ECG for every task, thresholds,
regression unscaling, per-window outputs, lists with per-record rates, quality="drop", and the task-model file
(round trip, reproducible bytes, and every kind of damaged or foreign file refused with CheckpointError)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import clef_sdk as clef
from clef_sdk.errors import CheckpointError, QualityWarning
from clef_sdk.tasks import TASK_FORMAT_NAME, TaskModel, load_task_model, read_task_metadata

# predict_proba (embed pools in float64, the head runs on the pooled float32 embedding, probabilities in float64)
# against forward() on clef.preprocess windows (float32 throughout): largest difference measured 3.8e-8 on
# mitdb-100 over the three classification tasks and both poolings (regression: 0.0), CLEF-small seed 0; per-window
# outputs against forward() on one-window batches 5.0e-8. 1e-5 leaves room for other CPUs' float32 reductions.
FORWARD_ATOL = 1e-5
# mean-pooled regression: the value of the pooled embedding equals the mean of the per-window values (the head is
# linear); measured 2.7e-7 in target units (std 10).
WINDOW_MEAN_ATOL = 1e-5
# The same recording embedded alone or batched with others' windows: float32 convolutions round differently with
# the batch's composition; largest difference measured 7.3e-9 (probabilities) on mitdb-100 beside ludb-1.
BATCH_ATOL = 1e-6

CLASSES = {
    "binary": ["normal", "af"],
    "multiclass": ["sinus", "af", "other"],
    "multilabel": ["af", "lbbb", "rbbb", "pvc"],
    "regression": ["age"],
}


@pytest.fixture(scope="module")
def mitdb():
    signal, fs, _ = clef.datasets.load_example("mitdb-100")
    return signal, fs


@pytest.fixture(scope="module")
def ludb():
    signal, fs, _ = clef.datasets.load_example("ludb-1")
    return signal, fs


def make(task: str, **kwargs) -> TaskModel:
    torch.manual_seed(1)
    if task == "regression":
        kwargs.setdefault("target_scaling", (50.0, 10.0))
    return TaskModel(clef.build("small", seed=0), task, CLASSES[task], **kwargs).eval()


@pytest.fixture(scope="module", params=list(CLASSES))
def model(request) -> TaskModel:
    return make(request.param)


# ---- construction -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("task", "classes", "kwargs", "error", "match"),
    [
        ("ordinal", ["a", "b"], {}, ValueError, "task must be one of"),
        ("binary", ["a", "b", "c"], {}, ValueError, "needs exactly 2 classes, got 3"),
        ("multiclass", ["a", "b"], {}, ValueError, "for two classes use task='binary'"),
        ("multilabel", [], {}, ValueError, "needs 1 or more classes"),
        ("regression", ["age", "sex"], {}, ValueError, "needs exactly 1 classes"),
        ("multiclass", ["a", "b", "a"], {}, ValueError, r"duplicate class names \['a'\]"),
        ("binary", ["a", 1], {}, TypeError, "mix strings and ints"),
        ("binary", [True, False], {}, TypeError, "is a bool"),
        ("binary", ["", "b"], {}, ValueError, "empty string"),
        ("binary", [0.5, 1.5], {}, TypeError, "label names are strings or ints"),
        ("binary", "ab", {}, TypeError, "sequence of label names"),
        ("binary", [0, 1], {"pooling": None}, ValueError, "pooling must be one of"),
        ("binary", [0, 1], {"pooling": "median"}, ValueError, "pooling must be one of"),
        ("regression", ["age"], {"target_scaling": (50.0, 0.0)}, ValueError, "std must be > 0"),
        ("regression", ["age"], {"target_scaling": (50.0, -1.0)}, ValueError, "std must be > 0"),
        ("regression", ["age"], {"target_scaling": (float("nan"), 1.0)}, ValueError, "must be finite"),
        ("regression", ["age"], {"target_scaling": (0.0, float("inf"))}, ValueError, "must be finite"),
        ("regression", ["age"], {"target_scaling": (1.0,)}, TypeError, r"must be \(mean, std\)"),
        ("binary", [0, 1], {"target_scaling": (0.0, 1.0)}, ValueError, "for task='regression' only"),
        ("binary", [0, 1], {"thresholds": 1.0}, ValueError, "strictly between 0 and 1"),
        ("binary", [0, 1], {"thresholds": 0.0}, ValueError, "strictly between 0 and 1"),
        ("binary", [0, 1], {"thresholds": [0.3, 0.4]}, ValueError, "takes one threshold, got 2"),
        ("multilabel", ["a", "b"], {"thresholds": [0.3]}, ValueError, r"one per label \(2\) threshold"),
        ("multilabel", ["a", "b"], {"thresholds": [0.3, float("nan")]}, ValueError, "must be finite"),
        ("multiclass", ["a", "b", "c"], {"thresholds": 0.5}, ValueError, "takes no thresholds"),
        ("regression", ["age"], {"thresholds": 0.5}, ValueError, "takes no thresholds"),
        ("binary", [0, 1], {"training": {"loss": float("nan")}}, ValueError, "JSON-able"),
        ("binary", [0, 1], {"training": {"data": object()}}, ValueError, "JSON-able"),
        ("binary", [0, 1], {"training": {1: "x"}}, TypeError, "keys must be strings"),
        ("binary", [0, 1], {"training": ["x"]}, TypeError, "dict of JSON-able facts"),
    ],
)
def test_construction_refuses(task, classes, kwargs, error, match):
    with pytest.raises(error, match=match):
        TaskModel(clef.build("small", device="meta"), task, classes, **kwargs)


def test_construction_defaults_and_facts():
    binary = TaskModel(clef.build("small", device="meta"), "binary", np.array([0, 1]))
    assert binary.thresholds == (0.5,) and binary.n_outputs == 1 and binary.pooling == "mean"
    assert binary.classes_.tolist() == [0, 1] and binary.target_scaling is None and binary.training_info == {}
    multilabel = TaskModel(clef.build("small", device="meta"), "multilabel", ["a", "b", "c"], thresholds=0.3)
    assert multilabel.thresholds == (0.3, 0.3, 0.3) and multilabel.n_outputs == 3
    regression = TaskModel(clef.build("small", device="meta"), "regression", ["age"])
    assert regression.target_scaling == (0.0, 1.0) and regression.thresholds is None
    facts = {"epochs": 3, "data": ["ptb-xl"]}
    model = TaskModel(clef.build("small", device="meta"), "multiclass", ["a", "b", "c"], training=facts)
    facts["epochs"] = 4  # a copy is kept
    assert model.training_info == {"epochs": 3, "data": ["ptb-xl"]} and model.n_outputs == 3
    assert model.head.in_features == 256
    with pytest.raises(TypeError, match="must be a ClefEncoder"):
        TaskModel(torch.nn.Linear(2, 2), "binary", [0, 1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="strictly between"):
        binary.thresholds = 1.5
    assert binary.thresholds == (0.5,)


# ---- forward against predict on raw ECG ------------------------------------------------------------------------


def test_forward_matches_predict_on_raw_ecg(model, mitdb):
    signal, fs = mitdb
    windows = torch.from_numpy(clef.preprocess(signal, fs))[None]  # (1, 6, 5000)
    with torch.no_grad():
        logits = model(windows)
    assert logits.shape == (1, model.n_outputs)
    if model.task == "regression":
        expected = model.values_from_logits(logits.double()).numpy()[0]
        value = model.predict(signal, fs)
        assert np.ndim(value) == 0
        np.testing.assert_allclose(value, expected, rtol=0, atol=FORWARD_ATOL * 10)  # std 10: target units
        with pytest.raises(TypeError, match="use predict"):
            model.predict_proba(signal, fs)
        with pytest.raises(TypeError, match="no probabilities"):
            model.proba_from_logits(logits)
        return
    expected = model.proba_from_logits(logits).numpy()[0]
    proba = model.predict_proba(signal, fs)
    assert proba.shape == (len(model.classes_),) and proba.dtype == np.float64
    np.testing.assert_allclose(proba, expected, rtol=0, atol=FORWARD_ATOL)
    if model.task != "multilabel":
        assert proba.sum() == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(TypeError, match="predicts classes"):
        model.values_from_logits(logits)


def test_forward_is_differentiable_and_checks_its_input(mitdb):
    signal, fs = mitdb
    model = make("multiclass").train()
    windows = torch.from_numpy(clef.preprocess(signal, fs)).view(2, 3, 5000)
    logits = model(windows)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2])).backward()
    assert model.head.weight.grad is not None and model.encoder.first_conv.conv.weight.grad is not None
    assert model.encoder.first_conv.conv.weight.grad.abs().sum() > 0
    for shape in [(6, 5000), (1, 6, 4000), (1, 0, 5000)]:
        with pytest.raises(ValueError, match="preprocessed windows of shape"):
            model(torch.zeros(shape))


def test_max_pooling_forward_matches_predict(mitdb):
    signal, fs = mitdb
    model = make("binary", pooling="max")
    with torch.no_grad():
        expected = model.proba_from_logits(model(torch.from_numpy(clef.preprocess(signal, fs))[None])).numpy()[0]
    np.testing.assert_allclose(model.predict_proba(signal, fs), expected, rtol=0, atol=FORWARD_ATOL)


# ---- shapes and decisions ----------------------------------------------------------------------------------------


def two_recordings(signal: np.ndarray) -> np.ndarray:
    return np.stack([signal[:10800], signal[10800:21600]])  # two 30 s recordings at 360 Hz


def test_shapes_for_several_recordings(model, mitdb):
    signal, fs = mitdb
    batch = two_recordings(signal)
    k = len(model.classes_)
    predictions = model.predict(batch, fs)
    if model.task == "regression":
        assert predictions.shape == (2,) and predictions.dtype == np.float64
        return
    proba = model.predict_proba(batch, fs, batch_size=4)
    assert proba.shape == (2, k)
    assert predictions.shape == ((2, k) if model.task == "multilabel" else (2,))
    # each row as the recording alone gives it
    for row, recording in zip(proba, batch):
        np.testing.assert_allclose(row, model.predict_proba(recording, fs), rtol=0, atol=BATCH_ATOL)


def test_binary_threshold_decides(mitdb):
    signal, fs = mitdb
    model = make("binary")
    p = model.predict_proba(signal, fs)[1]
    assert model.predict(signal, fs) == ("af" if p >= 0.5 else "normal")
    model.thresholds = min(p + 0.01, 0.99)
    assert model.predict(signal, fs) == "normal"
    model.thresholds = [max(p - 0.01, 0.01)]
    assert model.predict(signal, fs) == "af"


def test_multiclass_argmax_and_multilabel_thresholds(mitdb):
    signal, fs = mitdb
    batch = two_recordings(signal)
    multiclass = make("multiclass")
    proba = multiclass.predict_proba(batch, fs)
    assert multiclass.predict(batch, fs).tolist() == [CLASSES["multiclass"][i] for i in proba.argmax(axis=1)]
    multilabel = make("multilabel")
    proba = multilabel.predict_proba(batch, fs)
    thresholds = np.clip(proba[0] + np.array([-0.01, 0.01, -0.01, 0.01]), 0.01, 0.99)
    multilabel.thresholds = thresholds.tolist()
    decided = multilabel.predict(batch, fs)
    assert decided.dtype == np.int64 and decided[0].tolist() == [1, 0, 1, 0]
    np.testing.assert_array_equal(decided, (proba >= thresholds).astype(int))
    assert multilabel.predict(signal, fs).shape == (4,)


def test_regression_unscales(mitdb):
    signal, fs = mitdb
    standard = make("regression", target_scaling=None)
    scaled = make("regression", target_scaling=(50.0, 10.0))
    z = standard.predict(signal, fs)
    assert scaled.predict(signal, fs) == pytest.approx(50.0 + 10.0 * z, abs=1e-9)


# ---- per-window outputs ----------------------------------------------------------------------------------------


def test_predict_windows(model, mitdb, ludb):
    signal, fs = mitdb
    windows = model.predict_windows(signal, fs)
    if model.task == "regression":
        assert windows.shape == (6,)
        # mean pooling and a linear head: the recording's value is the mean of its windows' values
        assert model.predict(signal, fs) == pytest.approx(windows.mean(), abs=WINDOW_MEAN_ATOL)
    else:
        assert windows.shape == (6, len(model.classes_))
        with torch.no_grad():
            batch = torch.from_numpy(clef.preprocess(signal, fs))[:, None]  # each window a recording of one
            expected = model.proba_from_logits(model(batch)).numpy()
        np.testing.assert_allclose(windows, expected, rtol=0, atol=FORWARD_ATOL)
    strided = model.predict_windows(signal, fs, stride_seconds=5)
    assert len(strided) == 11
    several = model.predict_windows([signal, ludb[0]], [fs, ludb[1]])
    assert isinstance(several, list) and [len(part) for part in several] == [6, 1]
    np.testing.assert_allclose(several[0], windows, rtol=0, atol=BATCH_ATOL)
    with pytest.raises(ValueError, match="quality='return'"):
        model.predict_windows(signal, fs, quality="drop")
    outputs, quality = model.predict_windows(signal, fs, quality="return")
    assert quality.usable.shape == (6,) and len(outputs) == 6


# ---- inputs as clef.embed takes them -----------------------------------------------------------------------------


def test_lists_with_per_record_rates(model, mitdb, ludb):
    (signal, fs), (other, other_fs) = mitdb, ludb
    together = model.predict([signal, other], [fs, other_fs])
    alone = [model.predict(signal, fs), model.predict(other, other_fs)]
    if model.task == "regression":
        np.testing.assert_allclose(together, alone, rtol=0, atol=BATCH_ATOL)
    else:
        proba = model.predict_proba([signal, other], [fs, other_fs])
        np.testing.assert_allclose(proba[1], model.predict_proba(other, other_fs), rtol=0, atol=BATCH_ATOL)
        np.testing.assert_array_equal(together, np.array(alone))


def test_quality_drop_marks_unusable_recordings(model, mitdb):
    signal, fs = mitdb
    noise = np.random.default_rng(0).normal(size=int(30 * fs))  # no usable window (quality score 0)
    with pytest.warns(QualityWarning, match="recording 1 has no usable window"):
        predictions = model.predict([signal, noise], fs, quality="drop")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every window of mitdb-100 is usable: the same as without the check
        first = model.predict(signal, fs, quality="drop")
    if model.task == "regression":
        assert predictions[0] == pytest.approx(first, abs=BATCH_ATOL) and np.isnan(predictions[1])
    elif model.task == "multilabel":
        assert predictions.dtype == np.float64 and np.isnan(predictions[1]).all()
        np.testing.assert_array_equal(predictions[0], first)
    else:
        assert predictions.dtype == object and predictions[0] == first and predictions[1] is None
        with pytest.warns(QualityWarning):
            proba = model.predict_proba([signal, noise], fs, quality="drop")
        assert np.isnan(proba[1]).all() and np.isfinite(proba[0]).all()


def test_embed_validation_and_fixed_arguments(mitdb):
    signal, fs = mitdb
    model = make("binary")
    with pytest.raises(TypeError, match="fs .* is required"):
        model.predict(signal)
    with pytest.raises(ValueError, match="outside the supported"):
        model.predict(signal, 360_000)
    with pytest.raises(TypeError, match="not a signal"):
        model.predict_proba("recording.csv", 360)
    with pytest.raises(TypeError, match="its own encoder and pooling"):
        model.predict(signal, fs, pooling="max")
    with pytest.raises(TypeError, match="model"):
        model.predict_proba(signal, fs, model="small")
    proba = model.predict_proba(torch.from_numpy(signal), fs, device="cpu", batch_size=2, tail="pad")
    assert proba.shape == (2,)


# ---- the file ----------------------------------------------------------------------------------------------------


def test_save_load_round_trip(model, mitdb, ludb, tmp_path):
    signal, fs = mitdb
    model.training_info = {"dataset": "test", "epochs": 2, "auroc": 0.91}
    path = tmp_path / "model.safetensors"
    digest = model.save(path)
    assert model.save(tmp_path / "again.safetensors") == digest  # equal models, equal bytes
    loaded = load_task_model(path)
    assert not loaded.training and loaded.task == model.task and loaded.classes_.tolist() == model.classes_.tolist()
    assert (loaded.pooling, loaded.target_scaling, loaded.thresholds) == (
        model.pooling,
        model.target_scaling,
        model.thresholds,
    )
    assert loaded.training_info == model.training_info and loaded.encoder.name == model.encoder.name
    inputs = ([signal, ludb[0]], [fs, ludb[1]])
    np.testing.assert_array_equal(loaded.predict(*inputs), model.predict(*inputs))
    method = "predict" if model.task == "regression" else "predict_proba"
    np.testing.assert_array_equal(getattr(loaded, method)(*inputs), getattr(model, method)(*inputs))
    assert TaskModel.load(path).task == model.task
    metadata = read_task_metadata(path)
    assert metadata["format"] == TASK_FORMAT_NAME and metadata["format_version"] == "1"
    assert metadata["size"] == "small" and metadata["embed_dim"] == "256"
    assert metadata["preprocessing"] == json.loads(json.dumps(clef.constants.PREPROCESSING))
    assert metadata["clef_sdk_version"] == clef.__version__ and metadata["training"]["epochs"] == 2


def test_save_refuses_other_suffix(tmp_path):
    with pytest.raises(ValueError, match=".safetensors"):
        make("binary").save(tmp_path / "model.pt")


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "model.safetensors"
    make("multilabel", thresholds=[0.2, 0.3, 0.4, 0.5]).save(path)
    return path


def rewrite(path, *, tensors=None, **changes):
    """Write the file again with metadata entries changed (``None`` removes one) and optionally other tensors."""
    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
        original = {key: handle.get_tensor(key) for key in handle.keys()}
    for key, value in changes.items():
        if value is None:
            metadata.pop(key)
        else:
            metadata[key] = value
    save_file(original if tensors is None else tensors(original), str(path), metadata=metadata)


def refused(path, match):
    with pytest.raises(CheckpointError, match=match) as info:
        load_task_model(path)
    assert str(path) in str(info.value)


def test_tampered_tensors_refused(saved):
    rewrite(saved, tensors=lambda t: {**t, "head.bias": t["head.bias"] + 1e-3})
    refused(saved, "modified or corrupted after saving")


def test_tampered_bytes_refused(saved):
    data = bytearray(saved.read_bytes())
    data[-5] ^= 0xFF  # inside the last tensor's data
    saved.write_bytes(bytes(data))
    refused(saved, "modified or corrupted")


def test_newer_format_version_asks_to_upgrade(saved):
    rewrite(saved, format_version="2")
    refused(saved, "newer than this clef-sdk .* upgrade clef-sdk")


def test_unknown_format_version_refused(saved):
    rewrite(saved, format_version="one")
    refused(saved, "format version 'one'")


def test_other_preprocessing_contract_names_both(saved):
    other = {**clef.constants.PREPROCESSING, "target_fs_hz": 250}
    rewrite(saved, preprocessing=json.dumps(other))
    refused(saved, r"preprocessing contract .*\"target_fs_hz\": 250.*clef-sdk implements .*\"target_fs_hz\": 500")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"format": "clef-sdk/encoder"}, "not a clef-sdk task model .*load it with clef.load"),
        ({"format": None}, "not a clef-sdk task model"),
        ({"tensors_sha256": None}, "has no tensors_sha256 in its metadata"),
        ({"classes": "[not json"}, "classes metadata is not valid JSON"),
        ({"preprocessing": "{"}, "preprocessing metadata is not valid JSON"),
        ({"classes": '["a", "a", "b", "c"]'}, "does not describe a valid task model: duplicate"),
        ({"thresholds": "[0.2, 0.3, 0.4, 1.5]"}, "does not describe a valid task model: .*between 0 and 1"),
        ({"classes": '["a", "b"]', "thresholds": "[0.2, 0.3]"}, "2 classes has 2 outputs, but the head has 4"),
        ({"task": "regression", "classes": '["y"]'}, "does not describe a valid task model"),
        ({"size": "medium"}, "metadata says size 'medium'"),
        ({"embed_dim": "512"}, "metadata says embed_dim '512'"),
    ],
)
def test_edited_metadata_refused(saved, changes, match):
    rewrite(saved, **changes)
    refused(saved, match)


def test_wrong_tensors_refused(saved):
    def drop_head(tensors):
        return {key: value for key, value in tensors.items() if key != "head.bias"}

    rewrite(saved, tensors=drop_head)
    refused(saved, "modified or corrupted")  # the digest sees it first


def test_encoder_file_refused(tmp_path):
    path = tmp_path / "encoder.safetensors"
    encoder = clef.build("small", seed=0)
    from clef_sdk.weights.format import extract_backbone, write_weights

    write_weights(extract_backbone(encoder.state_dict()), path)
    refused(path, "not a clef-sdk task model")


def test_truncated_garbage_and_missing_files_refused(saved, tmp_path):
    data = saved.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    refused(truncated, "not a valid safetensors file")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    refused(garbage, "not a valid safetensors file")
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    refused(empty, "not a valid safetensors file")
    refused(tmp_path / "absent.safetensors", "no such task-model file")
    refused(tmp_path, "it is a folder")


def test_explain_is_the_model_method() -> None:
    """``TaskModel.explain`` is :func:`clef_sdk.tasks.explain` with the model filled in."""
    pytest.importorskip("captum")
    import clef_sdk as clef
    from clef_sdk.tasks import explain

    signal, fs, _ = clef.datasets.load_example("mitdb-100")
    model = clef.TaskModel(clef.build("small", seed=0), "binary", ["normal", "pvc"])
    by_method = model.explain(signal[: int(fs) * 10], fs, n_steps=4)
    by_function = explain(model, signal[: int(fs) * 10], fs, n_steps=4)
    assert by_method.values.shape == (int(fs) * 10,)
    assert np.array_equal(by_method.values, by_function.values)


def test_feature_standardisation_is_applied_saved_and_checked(tmp_path) -> None:
    """The head sees ``(pooled - mean) / scale``; the buffers travel in the file; a scale <= 0 is refused."""
    signal, fs, _ = clef.datasets.load_example("mitdb-100")
    model = TaskModel(clef.build("small", seed=0), "binary", ["normal", "pvc"])
    recordings = signal[: int(fs) * 20].reshape(2, -1)
    before = model.predict_proba(recordings, fs)
    pooled = torch.from_numpy(clef.embed(recordings, fs, model=model.encoder))
    model.feature_norm.fit(torch.cat([pooled, pooled * 1.5]))
    after = model.predict_proba(recordings, fs)
    with torch.no_grad():
        expected = model.proba_from_logits(model.head((pooled - model.feature_norm.mean) / model.feature_norm.scale))
    assert not np.allclose(before, after)
    assert np.allclose(after, expected.double().numpy(), atol=1e-6)  # float32 head: measured 6e-8
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = load_task_model(path)
    assert torch.equal(loaded.feature_norm.scale, model.feature_norm.scale)
    assert np.array_equal(loaded.predict_proba(recordings, fs), after)
    model.feature_norm.scale[0] = 0.0
    model.save(path)
    with pytest.raises(CheckpointError, match="scale <= 0"):
        load_task_model(path)
