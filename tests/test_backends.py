"""``backend="onnxruntime"`` / ``"openvino"``: the same weights exported once, cached, agreeing with torch."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import clef_sdk as clef
from clef_sdk import backends
from clef_sdk import precision as precision_module
from clef_sdk.backends import cached_onnx_files, resolve_backend
from clef_sdk.errors import SettingsError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache for the tests that use the same encoder: its network is exported once."""
    return tmp_path_factory.mktemp("clef-home")


@pytest.fixture
def home(shared_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLEF_SDK_HOME", str(shared_home))
    return shared_home


@pytest.fixture
def fresh_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLEF_SDK_HOME", str(tmp_path / "clef-home"))
    return tmp_path / "clef-home"


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


ENGINES = [
    pytest.param(engine, marks=pytest.mark.skipif(importlib.util.find_spec(engine) is None, reason=f"{engine} absent"))
    for engine in ("onnxruntime", "openvino")
]


@pytest.mark.parametrize("engine", ENGINES)
def test_an_engine_agrees_with_torch_per_window(
    engine: str, home: Path, small_encoder, mitdb_record: np.ndarray
) -> None:
    signal = mitdb_record[: 360 * 120].astype(np.float64)  # 2 min of MIT-BIH 100 at 360 Hz: 12 windows
    torch_windows = clef.embed(signal, fs=360, model=small_encoder, pooling=None, backend="torch")
    onnx_windows = clef.embed(signal, fs=360, model=small_encoder, pooling=None, backend=engine)
    assert onnx_windows.shape == torch_windows.shape == (12, 256)
    # measured: cosine 1 - 6e-8 at worst, max abs difference 3.6e-7 (onnxruntime) and 4.8e-7 (openvino)
    assert cosines(onnx_windows, torch_windows).min() >= 0.99999
    np.testing.assert_allclose(onnx_windows, torch_windows, rtol=0, atol=1e-5)
    assert len(cached_onnx_files()) == 1 and cached_onnx_files()[0].parent == home / "onnx"  # one weights, one file


@pytest.mark.parametrize("engine", ENGINES)
def test_a_recording_does_not_depend_on_its_batch(
    engine: str, home: Path, small_encoder, mitdb_record: np.ndarray
) -> None:
    first = mitdb_record[: 360 * 60].astype(np.float64)
    others = [mitdb_record[360 * 60 * k : 360 * 60 * (k + 1)].astype(np.float64) for k in (1, 2, 3)]
    alone = clef.embed(first, fs=360, model=small_encoder, backend=engine, batch_size=4)
    together = clef.embed([first, *others], fs=360, model=small_encoder, backend=engine, batch_size=4)[0]
    # its windows fall in other batches beside other recordings' windows: equal to float32 round-off (measured 0)
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-6)


def test_the_session_file_is_reused_and_rebuilt_when_the_weights_change(fresh_home: Path) -> None:
    encoder = clef.build("small", seed=3).eval()
    x = np.sin(np.arange(5000) / 40.0)
    before = clef.embed(x, fs=500, model=encoder, backend="onnxruntime")
    (path,) = cached_onnx_files()
    stamp = path.stat().st_mtime_ns
    clef.embed(x, fs=500, model=clef.build("small", seed=3).eval(), backend="onnxruntime")  # same weights
    assert cached_onnx_files() == [path] and path.stat().st_mtime_ns == stamp
    with torch.no_grad():
        encoder.first_conv.conv.weight.mul_(2.0)  # in place, as an optimiser step would
    after = clef.embed(x, fs=500, model=encoder, backend="onnxruntime")
    assert len(cached_onnx_files()) == 2 and not np.allclose(before, after)
    np.testing.assert_allclose(after, clef.embed(x, fs=500, model=encoder, backend="torch"), rtol=0, atol=1e-4)


def test_two_processes_export_the_file_once(fresh_home: Path, tmp_path: Path) -> None:
    code = (
        "import numpy as np, clef_sdk as clef\n"
        "e = clef.build('small', seed=5).eval()\n"
        "print(clef.embed(np.sin(np.arange(5000) / 40.0), fs=500, model=e, backend='onnxruntime')[:3])\n"
    )
    env = {**os.environ, "CLEF_SDK_HOME": str(fresh_home)}
    processes = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    outputs = [p.communicate(timeout=300) for p in processes]
    assert all(p.returncode == 0 for p in processes), [err for _, err in outputs]
    assert outputs[0][0] == outputs[1][0]
    assert len(cached_onnx_files()) == 1 and not list((fresh_home / "onnx").glob("*.tmp"))


def test_backend_choices_and_refusals(small_encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    # bf16 on a CPU without native bf16 is refused before the backend is looked at; the backend's refusal is tested
    # as on a CPU that has it, whichever CPU runs the test
    monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: True)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_backend("torch", small_encoder, cpu, "fp32", False) == "torch"
    assert resolve_backend("auto", small_encoder, cuda, "fp32", False) == "torch"
    assert resolve_backend("auto", small_encoder, cpu, "bf16", False) == "torch"
    with pytest.raises(ValueError, match="runs on the CPU"):
        resolve_backend("onnxruntime", small_encoder, cuda, "fp32", False)
    with pytest.raises(ValueError, match="fp32 only"):
        clef.embed(
            np.zeros(5000) + np.sin(np.arange(5000)),
            fs=500,
            model=small_encoder,
            backend="onnxruntime",
            precision="bf16",
        )
    with pytest.raises(ValueError, match="compile=True"):
        resolve_backend("onnxruntime", small_encoder, cpu, "fp32", True)
    with pytest.raises(ValueError, match="backend"):
        clef.embed(np.sin(np.arange(5000)), fs=500, model=small_encoder, backend="tensorrt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="backend='openvino' runs on the CPU"):
        resolve_backend("openvino", small_encoder, cuda, "fp32", False)
    with pytest.raises(ValueError, match="compile=True"):
        resolve_backend("openvino", small_encoder, cpu, "fp32", True)


def test_auto_takes_the_first_installed_engine_listed_for_the_size(
    small_encoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    cpu = torch.device("cpu")
    monkeypatch.delenv(backends.BACKEND_ENV)
    monkeypatch.setattr(backends, "AUTO_CPU_ENGINES", {})
    assert resolve_backend("auto", small_encoder, cpu, "fp32", False) == "torch"
    monkeypatch.setattr(backends, "AUTO_CPU_ENGINES", {"small": ("not-an-engine", "onnxruntime")})
    monkeypatch.setitem(backends._ENGINE_MODULES, "not-an-engine", ("no_such_module_here",))
    assert resolve_backend("auto", small_encoder, cpu, "fp32", False) == "onnxruntime"  # the first installed one
    assert resolve_backend("auto", small_encoder, cpu, "bf16", False) == "torch"  # listed for fp32 only
    assert resolve_backend("auto", small_encoder, cpu, "fp32", True) == "torch"  # compile is torch's
    assert resolve_backend("auto", small_encoder, torch.device("cuda"), "fp32", False) == "torch"
    monkeypatch.setattr(backends, "AUTO_CPU_ENGINES", {"medium": ("onnxruntime",)})
    assert resolve_backend("auto", small_encoder, cpu, "fp32", False) == "torch"  # listed for another size
    monkeypatch.setattr(backends, "AUTO_CPU_ENGINES", {"small": ("onnxruntime",)})
    hooked = clef.build("small")
    handle = hooked.stage_list[0].register_forward_hook(lambda module, args, output: None)
    assert resolve_backend("auto", hooked, cpu, "fp32", False) == "torch"  # an engine would skip the hook
    handle.remove()
    assert resolve_backend("auto", hooked, cpu, "fp32", False) == "onnxruntime"

    class Wrapped(clef.ClefEncoder):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) * 2

    assert resolve_backend("auto", Wrapped(hooked.architecture), cpu, "fp32", False) == "torch"


def test_the_shipped_auto_rule_names_real_sizes_and_engines() -> None:
    for size, engines in backends.AUTO_CPU_ENGINES.items():
        assert size in clef.list_models() and set(engines) <= set(backends.ENGINES)


def test_the_environment_sets_what_auto_stands_for(small_encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    cpu = torch.device("cpu")
    monkeypatch.setattr(backends, "AUTO_CPU_ENGINES", {"small": ("onnxruntime",)})
    monkeypatch.setenv(backends.BACKEND_ENV, "torch")
    assert resolve_backend("auto", small_encoder, cpu, "fp32", False) == "torch"
    assert resolve_backend("onnxruntime", small_encoder, cpu, "fp32", False) == "onnxruntime"  # given wins
    monkeypatch.setenv(backends.BACKEND_ENV, " AUTO ")
    assert resolve_backend("auto", small_encoder, cpu, "fp32", False) == "onnxruntime"
    monkeypatch.setenv(backends.BACKEND_ENV, "tensorrt")
    with pytest.raises(SettingsError, match="CLEF_SDK_BACKEND='tensorrt' must be one of auto, torch"):
        resolve_backend("auto", small_encoder, cpu, "fp32", False)


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino absent")
def test_a_default_call_runs_the_listed_engine(fresh_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(backends.BACKEND_ENV)
    monkeypatch.setattr(backends, "AUTO_CPU_ENGINES", {"small": ("openvino",)})
    encoder = clef.build("small", seed=4).eval()
    x = np.sin(np.arange(3 * 5000) / 40.0)
    default = clef.embed(x, fs=500, model=encoder)
    assert len(cached_onnx_files()) == 1  # the default call exported the network for OpenVINO
    assert backends.exported_network(encoder, "openvino").thread_counts  # and compiled it
    np.testing.assert_array_equal(default, clef.embed(x, fs=500, model=encoder, backend="openvino"))


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino absent")
def test_openvino_runs_bf16_where_the_cpu_has_it(home: Path, small_encoder, mitdb_record: np.ndarray) -> None:
    from clef_sdk.precision import bf16_min_cosine, cpu_has_native_bf16

    if not cpu_has_native_bf16():
        pytest.skip("this CPU has no native bf16")
    signal = mitdb_record[: 360 * 60].astype(np.float64)
    fp32 = clef.embed(signal, fs=360, model=small_encoder, pooling=None, backend="torch")
    bf16 = clef.embed(signal, fs=360, model=small_encoder, pooling=None, backend="openvino", precision="bf16")
    # measured: cosine 1 - 8.3e-7 at worst (medium: 1 - 1.5e-6) with AVX-512 BF16, 0.99834 on a Xeon with AMX
    floor = bf16_min_cosine(torch.device("cpu"))
    assert floor <= cosines(bf16, fp32).min() < 1 - 1e-9  # and it is bf16, not fp32 again


@pytest.mark.skipif(importlib.util.find_spec("openvino") is None, reason="openvino absent")
def test_threads_share_an_openvino_network(home: Path, small_encoder, mitdb_record: np.ndarray) -> None:
    from concurrent.futures import ThreadPoolExecutor

    parts = [mitdb_record[360 * 60 * k : 360 * 60 * (k + 1)].astype(np.float64) for k in range(6)]
    alone = [clef.embed(p, fs=360, model=small_encoder, backend="openvino", num_threads=1) for p in parts]
    with ThreadPoolExecutor(3) as pool:
        together = list(
            pool.map(lambda p: clef.embed(p, fs=360, model=small_encoder, backend="openvino", num_threads=1), parts)
        )
    for a, b in zip(alone, together):
        np.testing.assert_array_equal(a, b)  # each thread its own infer request: no thread reads another's output


def test_the_embedder_and_the_command_line_take_a_backend(home: Path, small_safetensors: Path, tmp_path: Path) -> None:
    x = np.sin(np.arange(2 * 5000) / 40.0).reshape(2, 5000)
    embedder = clef.ClefEmbedder(model=str(small_safetensors), fs=500, backend="onnxruntime")
    np.testing.assert_allclose(
        embedder.fit_transform(x), clef.ClefEmbedder(model=str(small_safetensors), fs=500, backend="torch").fit_transform(x),
        rtol=0, atol=1e-4,
    )  # fmt: skip
    np.save(tmp_path / "x.npy", x[0])
    done = subprocess.run(
        [sys.executable, "-m", "clef_sdk", "embed", str(tmp_path / "x.npy"), "--fs", "500", "--model", str(small_safetensors),
         "--backend", "onnxruntime", "-o", str(tmp_path / "e.npy")], capture_output=True, text=True, timeout=300,
        env={**os.environ, "CLEF_SDK_HOME": str(home)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), embedder.transform(x[:1])[0], rtol=0, atol=1e-6)


def test_a_task_model_predicts_through_onnxruntime(home: Path, mitdb_record: np.ndarray) -> None:
    model = clef.TaskModel(clef.build("small", seed=0), "multiclass", ["a", "b", "c"]).eval()
    signal = mitdb_record[: 360 * 40].astype(np.float64)
    on_torch = model.predict_proba(signal, fs=360, backend="torch")
    on_onnx = model.predict_proba(signal, fs=360, backend="onnxruntime")
    # measured: max abs difference 7e-9 in the probabilities (the embeddings agree to 3.6e-7)
    np.testing.assert_allclose(on_onnx, on_torch, rtol=0, atol=1e-5)
    assert [f.parent for f in cached_onnx_files()] == [home / "onnx"] * len(cached_onnx_files())
    windows = model.predict_windows(signal, fs=360, backend="onnxruntime")
    np.testing.assert_array_equal(
        windows.argmax(axis=1), model.predict_windows(signal, fs=360, backend="torch").argmax(axis=1)
    )
