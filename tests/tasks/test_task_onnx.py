"""Task models as ONNX (``clef.export_onnx(task_model, path, fs=...)``, ``clef export-onnx TASK_MODEL.safetensors``):
raw windows in, probabilities (or values) out, against ``TaskModel.predict_proba`` / ``predict`` under ONNX
Runtime on real ECG, for every task, both poolings, three rates and preprocessed windows; the metadata an app reads."""

from __future__ import annotations

import contextlib
import io
import json
import sys

import numpy as np
import pytest
import torch
from scipy import signal as sps

import clef_sdk as clef
from clef_sdk.cli import main
from clef_sdk.files import sha256_file
from clef_sdk.onnx_export import read_onnx_metadata
from clef_sdk.tasks import TaskModel, read_task_metadata
from clef_sdk.tasks.onnx import export_task_onnx

ort = pytest.importorskip("onnxruntime", reason='needs the onnx extra: pip install "clef-sdk[onnx]"')
pytest.importorskip("onnxscript", reason='needs the onnx extra: pip install "clef-sdk[onnx]"')

# The noise floor: ONNX Runtime's float32 kernels against torch's, both on the same windows and weights. Measured
# on 16 real windows per case, heads scaled so that the logits spread (std 2: probabilities from 0.003 to 0.997),
# largest difference: probabilities 4.9e-6 (binary, 360 Hz), 2.7e-6 (multiclass, 250 Hz), 1.4e-6 (multilabel, max
# pooling, 500 Hz); regression 7.8e-5 in target units (values 8 to 86, std 10, preprocessed windows). The
# tolerances leave 10x for other CPUs' float32 reductions.
PROBA_ATOL = 5e-5
VALUE_ATOL = 1e-3
N_WINDOWS = 16
CLASSES = {
    "binary": ["normal", "af"],
    "multiclass": ["sinus", "af", "other"],
    "multilabel": ["af", "lbbb", "rbbb", "pvc"],
    "regression": ["age"],
}
# (task, pooling, fs of the graph; None: preprocessed windows at 500 Hz)
CASES = {
    "binary-360": ("binary", "mean", 360),
    "multiclass-250": ("multiclass", "mean", 250),
    "multilabel-max-500": ("multilabel", "max", 500),
    "regression-windows": ("regression", "mean", None),
}


@pytest.fixture(scope="module")
def recordings(data_dir) -> dict[int, np.ndarray]:
    """Real recordings of 16 windows: LUDB lead I records 1-16 back to back (500 Hz); MIT-BIH 100 (360 Hz) and
    the same resampled to 250 Hz."""
    ludb = np.concatenate(
        [np.fromfile(data_dir / "ludb" / "data" / f"{r}.dat", dtype="<i2").reshape(-1, 12)[:, 0] for r in range(1, 17)]
    ).astype(np.float64)
    mitdb = np.load(data_dir / "mitdb-tpcp" / "100.npz")["ecg"].astype(np.float64)[: 360 * 170]
    return {500: ludb, 360: mitdb, 250: sps.resample_poly(mitdb, 25, 36)}


def windows_of(recordings: dict[int, np.ndarray], fs: int) -> np.ndarray:
    width = round(10 * fs)
    return recordings[fs][: N_WINDOWS * width].reshape(N_WINDOWS, width)


def make(task: str, pooling: str, windows: np.ndarray, fs: int) -> TaskModel:
    """A task model whose head is scaled so that its logits on ``windows`` have mean 0 and std 2: probabilities
    over the whole range, where a difference in the encoder shows (a random head gives about 0.5 everywhere)."""
    torch.manual_seed(1)
    kwargs = {"target_scaling": (50.0, 10.0)} if task == "regression" else {}
    if task == "binary":
        kwargs["thresholds"] = 0.4
    model = TaskModel(clef.build("small", seed=0), task, CLASSES[task], pooling=pooling, **kwargs).eval()
    embeddings = torch.from_numpy(clef.embed(list(windows), fs, model=model.encoder)).float()
    with torch.no_grad():
        logits = model.head(embeddings)
        model.head.weight.mul_(2.0 / logits.std(dim=0, keepdim=True).T)
        model.head.bias.sub_(model.head(embeddings).mean(dim=0))
    return model


@pytest.fixture(scope="module")
def exported(recordings, tmp_path_factory):
    """One model and export per case, made when first needed; the binary one through the command line, from its
    file, and the multiclass one through clef.export_onnx."""
    folder = tmp_path_factory.mktemp("task-onnx")
    cache = {}

    def get(case: str):
        if case not in cache:
            task, pooling, fs = CASES[case]
            model = make(task, pooling, windows_of(recordings, fs or 500), fs or 500)
            path = folder / f"{case}.onnx"
            message = ""
            if case == "binary-360":
                model.save(folder / "af.safetensors")
                with contextlib.redirect_stdout(io.StringIO()) as out:  # the report goes to stdout
                    assert main(["export-onnx", str(folder / "af.safetensors"), "--fs", str(fs), "-o", str(path)]) == 0
                message = out.getvalue()
            elif case == "multiclass-250":
                model.train()  # exported in eval mode, left as it was
                assert clef.export_onnx(model, path, fs=fs) == path
                assert model.training
                model.eval()
            else:
                export_task_onnx(model, path, fs=fs)
            session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            cache[case] = (model, path, session, message)
        return cache[case]

    return get


def run(session, fs: int | None, windows: np.ndarray) -> np.ndarray:
    """The graph on ``windows`` ``(batch, n_windows, n)``, raw (or preprocessed when ``fs`` is None)."""
    if fs is None:
        batch, n_windows, _ = windows.shape
        prepared = np.stack([clef.preprocess(window, 500) for window in windows.reshape(batch * n_windows, -1)])
        feed = {"windows": prepared.reshape(batch, n_windows, 5000).astype(np.float32)}
    else:
        feed = {"raw": windows.astype(np.float32)}
    return session.run(None, feed)[0]


def expected(model: TaskModel, signal, fs: int) -> np.ndarray:
    return model.predict(signal, fs) if model.task == "regression" else model.predict_proba(signal, fs)


def tolerance(model: TaskModel) -> float:
    return VALUE_ATOL if model.task == "regression" else PROBA_ATOL


@pytest.mark.parametrize("case", list(CASES))
def test_one_window_per_row_matches_predict_proba_on_each_window(exported, recordings, case):
    model, _, session, _ = exported(case)
    fs = CASES[case][2]
    windows = windows_of(recordings, fs or 500)
    for batch in (1, N_WINDOWS):  # the batch size is dynamic
        got = run(session, fs, windows[:batch, None, :])
        want = expected(model, list(windows[:batch]), fs or 500)  # each window a recording of its own
        assert got.dtype == np.float32
        if model.task == "regression":
            assert got.shape == (batch,)
        else:
            assert got.shape == (batch, len(model.classes_)) and ((got > 0) & (got < 1)).all()
        np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(model))
    if model.task in ("binary", "multiclass"):
        np.testing.assert_allclose(got.sum(axis=1), 1, atol=1e-6)
    spread = want.max() - want.min()
    assert spread > (20 if model.task == "regression" else 0.5)  # the outputs cover a range, not one value


@pytest.mark.parametrize("case", ["multilabel-max-500", "regression-windows"])
def test_a_recording_as_one_row_is_pooled_inside_as_predict_proba_pools(exported, recordings, case):
    model, _, session, _ = exported(case)
    fs = CASES[case][2]
    windows = windows_of(recordings, 500)
    got = run(session, fs, windows.reshape(2, N_WINDOWS // 2, -1))  # two recordings of 8 windows each
    want = expected(model, list(windows.reshape(2, -1)), 500)  # at 500 Hz the windows are the recording's own
    np.testing.assert_allclose(got, want, rtol=0, atol=tolerance(model))
    assert model.pooling == CASES[case][1]


def test_the_file_and_the_command_line_say_what_the_outputs_mean(exported):
    model, path, session, message = exported("binary-360")
    assert "binary task model, input 'raw' ('batch', 'n_windows', 3600)" in message
    assert "output 'probabilities' ('batch', 2), columns normal, af" in message
    metadata = read_onnx_metadata(path)
    assert metadata["kind"] == "task-model" and metadata["task"] == "binary" and metadata["pooling"] == "mean"
    assert json.loads(metadata["classes"]) == ["normal", "af"] and json.loads(metadata["thresholds"]) == [0.4]
    assert json.loads(metadata["target_scaling"]) is None and metadata["fs_hz"] == "360"
    assert metadata["input_name"] == "raw" and metadata["output_name"] == "probabilities"
    assert json.loads(metadata["output_shape"]) == ["batch", 2]
    contract = json.loads(metadata["preprocessing"])
    assert contract["shape"] == ["batch", "n_windows", 3600] and contract["fs_hz"] == 360
    file = path.parent / "af.safetensors"
    assert metadata["task_tensors_sha256"] == read_task_metadata(file)["tensors_sha256"]
    assert metadata["weights_file_sha256"] == sha256_file(file) and metadata["model_size"] == "small"
    assert [i.name for i in session.get_inputs()] == ["raw"] and [o.name for o in session.get_outputs()] == [
        "probabilities"
    ]
    assert session.get_modelmeta().custom_metadata_map["task"] == "binary"
    regression = read_onnx_metadata(exported("regression-windows")[1])
    assert regression["output_name"] == "values" and json.loads(regression["target_scaling"]) == [50.0, 10.0]
    assert regression["fs_hz"] == "" and json.loads(regression["preprocessing"])["shape"] == [
        "batch",
        "n_windows",
        5000,
    ]
    assert json.loads(regression["thresholds"]) is None and json.loads(regression["classes"]) == ["age"]


def test_bad_arguments(tmp_path, monkeypatch):
    model = TaskModel(clef.build("small", seed=0), "binary", ["normal", "af"])
    with pytest.raises(ValueError, match="opset must be an integer >= 17"):
        clef.export_onnx(model, tmp_path / "m.onnx", opset=13)
    with pytest.raises(ValueError, match="must end in .onnx"):
        export_task_onnx(model, tmp_path / "m.bin")
    with pytest.raises(ValueError, match="resample to fewer than 5000"):
        export_task_onnx(model, tmp_path / "m.onnx", fs=333.333)
    with pytest.raises(ValueError, match="outside the supported"):
        export_task_onnx(model, tmp_path / "m.onnx", fs=20)
    with pytest.raises(clef.CheckpointError, match="no such task-model file"):
        export_task_onnx(tmp_path / "missing.safetensors", tmp_path / "m.onnx")
    monkeypatch.setitem(sys.modules, "onnx", None)  # the extra is not installed
    with pytest.raises(ImportError, match=r'pip install "clef-sdk\[onnx\]"'):
        clef.export_onnx(model, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
