"""clef.export_onnx / clef export-onnx: self-contained ONNX files, parity with clef.embed under ONNX Runtime."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conformance_helpers import row_cosines
from scipy import signal as sps

import clef_sdk as clef
from clef_sdk.cli import main

ort = pytest.importorskip("onnxruntime", reason='needs the onnx extra: pip install "clef-sdk[onnx]"')
pytest.importorskip("onnxscript", reason='needs the onnx extra: pip install "clef-sdk[onnx]"')

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def exported(small_encoder, tmp_path_factory):
    """One export per rate (None: preprocessed windows), made once for the module."""
    folder = tmp_path_factory.mktemp("onnx")
    cache: dict[object, Path] = {}

    def get(fs: float | None) -> Path:
        if fs not in cache:
            cache[fs] = clef.export_onnx(small_encoder, folder / f"small-{fs}.onnx", fs=fs)
        return cache[fs]

    return get


@pytest.fixture(scope="module")
def recordings(data_dir) -> dict[int, np.ndarray]:
    """Real recordings of 16+ windows: LUDB lead I records 1-16 back to back (500 Hz); MIT-BIH 100 (360 Hz) and
    the same resampled to 300 and 250 Hz."""
    ludb = np.concatenate(
        [np.fromfile(data_dir / "ludb" / "data" / f"{r}.dat", dtype="<i2").reshape(-1, 12)[:, 0] for r in range(1, 17)]
    ).astype(np.float64)
    mitdb = np.load(data_dir / "mitdb-tpcp" / "100.npz")["ecg"].astype(np.float64)[: 360 * 170]
    return {500: ludb, 360: mitdb, 300: sps.resample_poly(mitdb, 5, 6), 250: sps.resample_poly(mitdb, 25, 36)}


@pytest.mark.parametrize("fs", [500, 360, 300, 250])
@pytest.mark.parametrize("batch_size", [1, 16])
def test_raw_window_graph_matches_clef_embed(exported, small_encoder, recordings, fs, batch_size):
    session = ort.InferenceSession(str(exported(fs)), providers=["CPUExecutionProvider"])
    width = round(10 * fs)
    windows = recordings[fs][: 16 * width].reshape(16, width)[:batch_size]
    got = session.run(["embedding"], {"raw": windows.astype(np.float32)})[0]
    expected = np.stack([clef.embed(window, fs, model=small_encoder) for window in windows])
    assert got.shape == (batch_size, 256)
    # measured min cosine 0.999991 at every rate and batch size (ONNX Runtime's float32 kernels)
    assert row_cosines(got, expected).min() >= 0.9999
    if fs == 500:  # no resampling: the same windows as embedding the whole recording
        whole = clef.embed(recordings[fs][: 16 * width], fs, model=small_encoder, pooling=None)[:batch_size]
        assert row_cosines(got, whole).min() >= 0.9999


def test_windows_graph_takes_preprocessed_windows(exported, small_encoder, recordings):
    session = ort.InferenceSession(str(exported(None)), providers=["CPUExecutionProvider"])
    windows = clef.preprocess(recordings[360], 360)
    got = session.run(["embedding"], {"windows": windows[:, None, :]})[0]
    expected = clef.embed(recordings[360], 360, model=small_encoder, pooling=None)
    assert row_cosines(got, expected).min() >= 0.9999  # measured 0.999992


def test_file_is_self_contained_with_metadata(exported, small_encoder):
    from clef_sdk.onnx_export import read_onnx_metadata
    from clef_sdk.weights.format import tensors_digest

    path = exported(360)
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(path.name)] == [path.name]  # no .data file
    metadata = read_onnx_metadata(path)
    assert metadata["model_size"] == "small" and metadata["embed_dim"] == "256" and metadata["fs_hz"] == "360"
    assert metadata["weights_tensors_sha256"] == tensors_digest(small_encoder.state_dict())
    contract = json.loads(metadata["preprocessing"])
    assert contract["input"] == "raw" and contract["shape"] == ["batch", 3600] and "no NaN" in contract["expects"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_modelmeta().custom_metadata_map["model_size"] == "small"
    # the rate is recorded exactly: "%g" made 3500/3 Hz "1166.67", which an app would then feed wrongly
    odd = read_onnx_metadata(exported(3500 / 3))
    assert float(odd["fs_hz"]) == 3500 / 3 and json.loads(odd["preprocessing"])["fs_hz"] == 3500 / 3


def test_bad_arguments(small_encoder, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="opset must be an integer >= 17"):
        clef.export_onnx(small_encoder, tmp_path / "m.onnx", opset=13)
    with pytest.raises(ValueError, match="must end in .onnx"):
        clef.export_onnx(small_encoder, tmp_path / "m.bin")
    with pytest.raises(ValueError, match="resample to fewer than 5000"):
        clef.export_onnx(small_encoder, tmp_path / "m.onnx", fs=333.333)
    with pytest.raises(ValueError, match="outside the supported"):
        clef.export_onnx(small_encoder, tmp_path / "m.onnx", fs=20)
    monkeypatch.setitem(sys.modules, "onnx", None)  # the extra is not installed
    with pytest.raises(ImportError, match=r'pip install "clef-sdk\[onnx\]"'):
        clef.export_onnx(small_encoder, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_command_line_export_and_the_torch_free_app(small_safetensors, tmp_path, capsys):
    destination = tmp_path / "clef-small-360hz.onnx"
    assert main(["export-onnx", str(small_safetensors), "--fs", "360", "-o", str(destination)]) == 0
    assert "input 'raw' ('batch', 3600)" in capsys.readouterr().out  # the report: stdout
    from clef_sdk.files import sha256_file
    from clef_sdk.onnx_export import read_onnx_metadata

    assert read_onnx_metadata(destination)["weights_file_sha256"] == sha256_file(small_safetensors)
    # the example imports only numpy and onnxruntime, and asserts torch never got imported
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "onnx_app.py"), str(destination)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "6 windows -> per-window (6, 256), pooled (256,)" in result.stdout


def test_metadata_of_a_file_that_is_not_onnx_is_a_clear_error(tmp_path):
    from clef_sdk.onnx_export import read_onnx_metadata

    garbage = tmp_path / "x.onnx"
    garbage.write_bytes(b"\x08\x96\x01 not a model \xff\xfe" * 50)  # protobuf raised a raw DecodeError
    with pytest.raises(clef.CheckpointError, match="not a readable ONNX file"):
        read_onnx_metadata(garbage)
