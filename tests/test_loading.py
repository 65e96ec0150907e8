"""``clef.load`` and the encoder cache behind ``clef.embed``: files, names, devices, sharing and thread safety."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import clef_sdk as clef
import clef_sdk.loading as loading
from clef_sdk import ClefEncoder, ManifestError, WeightsNotAvailableError
from clef_sdk.loading import get_encoder


@pytest.fixture(autouse=True)
def empty_cache():
    clef.clear_cache()
    yield
    clef.clear_cache()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty clef-sdk cache folder (``CLEF_SDK_HOME``)."""
    monkeypatch.setenv("CLEF_SDK_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def ten_seconds(mitdb_record: np.ndarray) -> np.ndarray:
    return mitdb_record[360 * 60 : 360 * 80].astype(np.float64)


def _same_weights(a: ClefEncoder, b: ClefEncoder) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --- clef.load ----------------------------------------------------------------------------------------------


def test_load_safetensors(small_safetensors: Path) -> None:
    encoder = clef.load(small_safetensors, device="cpu")
    assert isinstance(encoder, ClefEncoder) and isinstance(encoder, torch.nn.Module)
    assert not encoder.training
    assert encoder.device == torch.device("cpu")
    assert encoder.embed_dim == 256 and encoder.architecture.name == "small"
    assert encoder.name == "clef-small.safetensors"
    assert all(p.dtype == torch.float32 for p in encoder.parameters())


def test_load_checkpoint_equals_safetensors(small_safetensors: Path, small_ckpt: Path) -> None:
    from_ckpt = clef.load(small_ckpt, device="cpu")
    assert from_ckpt.name == small_ckpt.name
    assert _same_weights(from_ckpt, clef.load(str(small_safetensors), device="cpu"))


def test_load_returns_a_new_module_each_call(small_safetensors: Path) -> None:
    a = clef.load(small_safetensors, device="cpu")
    b = clef.load(small_safetensors, device="cpu")
    assert a is not b and _same_weights(a, b)


@pytest.mark.parametrize("name", ["small", "clef-small", "CLEF_small", "S"])
def test_load_by_name_or_alias(installed_small, small_safetensors: Path, name: str) -> None:
    encoder = clef.load(name, device="cpu", local_files_only=True)
    assert installed_small.requests == []  # resolved from the cache, nothing asked of the server
    assert encoder.name == "clef-small"
    assert not encoder.training
    assert _same_weights(encoder, clef.load(small_safetensors, device="cpu"))


def test_named_weights_not_available(home: Path) -> None:
    """Real hub, empty cache, no network: a WeightsNotAvailableError (a FileNotFoundError) naming the model."""
    with pytest.raises(WeightsNotAvailableError, match="CLEF-medium") as info:
        clef.load("medium", device="cpu", local_files_only=True)
    assert isinstance(info.value, FileNotFoundError)


def test_unknown_model_name() -> None:
    with pytest.raises(ManifestError, match=r"unknown model 'clef-huge'; known models: .*small.*pass its path"):
        clef.load("clef-huge", device="cpu")


@pytest.mark.parametrize("name", ["missing.safetensors", "missing.ckpt", "weights/missing"])
def test_missing_weights_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"weights file not found: .*missing"):
        clef.load(name, device="cpu")


@pytest.mark.parametrize("device", ["tpu:0:0", "gpu", "cuda:-3x"])
def test_invalid_device(small_safetensors: Path, device: str) -> None:
    with pytest.raises(ValueError, match="invalid device"):
        clef.load(small_safetensors, device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda(small_safetensors: Path) -> None:
    with pytest.raises(ValueError, match="CUDA is not available here; use device='cpu'"):
        clef.load(small_safetensors, device="cuda")


# --- the cache ----------------------------------------------------------------------------------------------


def test_cache_shares_one_encoder_per_model_and_device(small_safetensors: Path, installed_small) -> None:
    first = get_encoder(small_safetensors, "cpu")
    assert get_encoder(small_safetensors, "cpu") is first
    assert get_encoder(str(small_safetensors), torch.device("cpu")) is first
    relative_spelling = small_safetensors.parent / ".." / small_safetensors.parent.name / small_safetensors.name
    assert get_encoder(relative_spelling, "cpu") is first
    by_name = get_encoder("small", "cpu")
    assert by_name is not first and by_name.name == "clef-small"  # a name is its own cache entry
    assert get_encoder("clef-small", "cpu") is by_name  # aliases share it
    assert get_encoder("S", torch.device("cpu")) is by_name
    clef.clear_cache()
    assert get_encoder(small_safetensors, "cpu") is not first


def test_cache_sees_a_replaced_file(small_safetensors: Path, small_ckpt: Path, tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    shutil.copyfile(small_safetensors, path)
    first = get_encoder(path, "cpu")
    before = path.stat().st_mtime_ns
    clef.convert_checkpoint(small_ckpt, path)  # rewritten in place of the old file
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))  # a later mtime even on coarse clocks
    assert get_encoder(path, "cpu") is not first


def test_embed_uses_the_cache(
    small_safetensors: Path, ten_seconds: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    real_load = loading.load

    def counting_load(*args, **kwargs):
        calls.append(args[0])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(loading, "load", counting_load)
    a = clef.embed(ten_seconds, 360, model=small_safetensors, device="cpu")
    b = clef.embed(ten_seconds, 360, model=str(small_safetensors), device="cpu")
    assert len(calls) == 1
    np.testing.assert_array_equal(a, b)


def test_cache_is_thread_safe(
    small_safetensors: Path, ten_seconds: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[object] = []
    real_load = loading.load

    def slow_load(*args, **kwargs):
        calls.append(args[0])
        time.sleep(0.2)  # widen the window in which an unlocked cache would load twice
        return real_load(*args, **kwargs)

    monkeypatch.setattr(loading, "load", slow_load)
    n_threads = 8
    barrier = threading.Barrier(n_threads)
    results: list[np.ndarray | None] = [None] * n_threads
    encoders: list[ClefEncoder | None] = [None] * n_threads
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            results[i] = clef.embed(ten_seconds, 360, model=small_safetensors, device="cpu")
            encoders[i] = get_encoder(small_safetensors, "cpu")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(calls) == 1  # loaded once
    assert all(e is encoders[0] for e in encoders)  # one shared object
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])  # identical results
    reference = clef.load(small_safetensors, device="cpu").embed(ten_seconds, 360)
    np.testing.assert_array_equal(results[0], reference)


def test_encoder_instance_passes_through(small_safetensors: Path) -> None:
    encoder = clef.load(small_safetensors, device="cpu")
    assert get_encoder(encoder) is encoder
    assert get_encoder(encoder, "cpu") is encoder
