"""clef.Preprocessor: parity with clef.preprocess on real ECG at 500, 360, 300, 250 and 128 Hz (float64 and
float32, windows and embeddings), window options, gradients, shapes, dtypes and input checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import signal as sps

import clef_sdk as clef
from clef_sdk.torch_preprocessing import bandpass_torch

# clef.preprocess returns float32: comparing float64 windows with it costs one float32 step (measured <= 4.7e-7)
FLOAT64_ATOL = 2e-6
# float32 resampling, FFT and z-score (measured <= 1.6e-5 on windows of magnitude ~10)
FLOAT32_ATOL = 1e-4


@pytest.fixture(scope="module")
def recordings(mitdb_record: np.ndarray) -> dict[float, np.ndarray]:
    """Real ECG at each rate: LUDB 1 lead I (500 Hz, twice), one minute of MIT-BIH 100 (360 Hz), and that minute
    resampled by SciPy to 300, 250 and 128 Hz."""
    ludb, _, _ = clef.datasets.load_example("ludb-1")
    minute = mitdb_record[: 360 * 60].astype(np.float64)
    cases = {500.0: np.concatenate([ludb, 0.5 * ludb]), 360.0: minute}
    for fs in (300, 250, 128):
        cases[float(fs)] = sps.resample_poly(minute, fs, 360)
    return cases


@pytest.mark.parametrize("fs", [500.0, 360.0, 300.0, 250.0, 128.0])
def test_parity_with_numpy_preprocess(recordings: dict, fs: float) -> None:
    x = recordings[fs]
    expected = clef.preprocess(x, fs)
    preprocessor = clef.Preprocessor(fs)
    out64 = preprocessor(torch.from_numpy(x))
    out32 = preprocessor(torch.from_numpy(x).float())
    assert out64.dtype == torch.float64 and out32.dtype == torch.float32
    assert out64.shape == out32.shape == expected.shape
    assert np.abs(out64.numpy() - expected).max() <= FLOAT64_ATOL
    assert np.abs(out32.numpy() - expected).max() <= FLOAT32_ATOL
    for tail in ("pad", "last"):
        part = x[: int(len(x) * 0.73)]
        reference = clef.preprocess(part, fs, stride_seconds=5, tail=tail)
        windows = clef.Preprocessor(fs, stride_seconds=5, tail=tail)(torch.from_numpy(part))
        assert windows.shape == reference.shape and np.abs(windows.numpy() - reference).max() <= FLOAT64_ATOL


def test_embeddings_of_torch_windows(recordings: dict, small_encoder) -> None:
    for fs in (360.0, 128.0):
        x = recordings[fs]
        with torch.inference_mode():
            a = small_encoder(torch.from_numpy(clef.preprocess(x, fs)).unsqueeze(1)).double()
            b = small_encoder(clef.Preprocessor(fs)(torch.from_numpy(x).float()).unsqueeze(1)).double()
        cosine = torch.nn.functional.cosine_similarity(a, b, dim=1)
        assert cosine.min() >= 0.99999  # measured 1 - 6e-15


def test_batches_and_single_recordings(recordings: dict) -> None:
    x = torch.from_numpy(recordings[360.0])
    preprocessor = clef.Preprocessor(360)
    batch = preprocessor(torch.stack([x, 2 * x + 1]))
    assert batch.shape == (2, 6, 5000)
    torch.testing.assert_close(batch[0], preprocessor(x), rtol=0, atol=1e-12)
    # units and offsets do not matter, up to the z-score's +1e-8, which is relative to the scale (measured 2.4e-7)
    torch.testing.assert_close(batch[1], batch[0], rtol=0, atol=2e-6)


def test_gradients_flow_end_to_end() -> None:
    """gradcheck through resampling, the band-pass and the z-score on 10 s at 50 Hz (float64)."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 500, generator=generator, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(1, 1, 5000, generator=generator, dtype=torch.float64)
    preprocessor = clef.Preprocessor(50)
    assert torch.autograd.gradcheck(lambda v: (preprocessor(v) * weights).sum(), (x,), eps=1e-6, atol=1e-6)
    w = torch.randn(2, 300, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: bandpass_torch(v).sum(dim=0)[::37], (w,), eps=1e-6, atol=1e-8)


def test_first_use_under_inference_mode_then_with_gradients() -> None:
    """The cached operators made under torch.inference_mode() still serve autograd afterwards."""
    from clef_sdk.torch_preprocessing import _tables_cached

    _tables_cached.cache_clear()
    preprocessor = clef.Preprocessor(62.5, tail="pad")  # 5.6 s: one padded window of 2800 samples
    x = torch.randn(2, 350)
    with torch.inference_mode():
        preprocessor(x)
    y = x.clone().requires_grad_(True)
    preprocessor(y).sum().backward()
    assert y.grad is not None


def test_half_precision_inputs(recordings: dict) -> None:
    x = torch.from_numpy(recordings[500.0])
    preprocessor = clef.Preprocessor(500)
    bf16 = preprocessor(x.to(torch.bfloat16))
    assert bf16.dtype == torch.bfloat16
    # bfloat16 keeps 8 bits: its own rounding of the input and output (measured 0.026 on values up to ~10)
    torch.testing.assert_close(bf16.float(), preprocessor(x.float()), rtol=0, atol=0.2)
    half = bandpass_torch(torch.from_numpy(recordings[500.0][:5000]).to(torch.float16))
    assert half.dtype == torch.float16 and torch.isfinite(half.float()).all()


@pytest.mark.gpu
def test_cuda_matches_cpu(recordings: dict) -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    x = torch.from_numpy(recordings[360.0])
    preprocessor = clef.Preprocessor(360)
    torch.testing.assert_close(preprocessor(x.cuda()).cpu(), preprocessor(x), rtol=0, atol=1e-9)


def test_bad_input() -> None:
    preprocessor = clef.Preprocessor(500)
    with pytest.raises(TypeError, match="floating-point tensor"):
        preprocessor(torch.ones(6000, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\(n_samples,\) or \(batch, n_samples\)"):
        preprocessor(torch.ones(1, 1, 6000))
    with pytest.raises(ValueError, match="shorter than one 10 s window"):
        preprocessor(torch.ones(3000))
    with pytest.raises(ValueError, match="tail must be one of"):
        clef.Preprocessor(500, tail="keep")
    with pytest.raises(ValueError, match="stride_seconds"):
        clef.Preprocessor(500, stride_seconds=0)
    with pytest.raises(ValueError, match="outside the supported"):
        clef.Preprocessor(20_000)


def test_numpy_paths_refuse_tensors_that_require_grad(small_encoder) -> None:
    """No silent graph cuts: embed and preprocess would return numpy; they point to the Preprocessor instead."""
    x = torch.randn(6000, requires_grad=True)
    for call in (
        lambda: clef.embed(x, 500, model=small_encoder),
        lambda: clef.preprocess(x, 500),
        lambda: clef.embed([x.detach(), x], 500, model=small_encoder),
        lambda: clef.embed(torch.stack([x, x]), 500, model=small_encoder),
    ):
        with pytest.raises(TypeError, match=r"requires grad.*clef.Preprocessor\(fs\)"):
            call()
    assert clef.embed(x.detach(), 500, model=small_encoder).shape == (256,)
