"""clef.Preprocessor: parity with clef.preprocess on real ECG at 500, 360, 300, 250, 128, 128.5, 257.3 and
97.0001 Hz (float64 and float32, windows and embeddings), window options, gradients, shapes, dtypes and input
checks; its polyphase resampler against scipy.signal.upfirdn / resample_poly, its gradients and its memory."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import signal as sps

import clef_sdk as clef
from clef_sdk.resampling import resampling_filter, resampling_ratio, resampling_skip
from clef_sdk.torch_preprocessing import _polyphase, _resample_centred, bandpass_torch, upfirdn_torch

# clef.preprocess returns float32: comparing float64 windows with it costs one float32 step (measured <= 4.7e-7)
FLOAT64_ATOL = 2e-6
# float32 resampling, FFT and z-score (measured <= 1.6e-5 on windows of magnitude ~10)
FLOAT32_ATOL = 1e-4


@pytest.fixture(scope="module")
def recordings(mitdb_record: np.ndarray) -> dict[float, np.ndarray]:
    """Real ECG at each rate: LUDB 1 lead I (500 Hz, twice), one minute of MIT-BIH 100 (360 Hz), and that minute
    resampled by SciPy to 300, 250, 128, 128.5 and 257.3 Hz, and to 97 Hz taken as 97.0001 Hz (500/97.0001 is
    69969/13574)."""
    ludb, _, _ = clef.datasets.load_example("ludb-1")
    minute = mitdb_record[: 360 * 60].astype(np.float64)
    cases = {500.0: np.concatenate([ludb, 0.5 * ludb]), 360.0: minute}
    for fs, up, down in [(300, 5, 6), (250, 25, 36), (128, 16, 45), (128.5, 257, 720), (257.3, 2573, 3600)]:
        cases[float(fs)] = sps.resample_poly(minute, up, down)
    cases[97.0001] = sps.resample_poly(minute, 97, 360)
    return cases


@pytest.mark.parametrize("fs", [500.0, 360.0, 300.0, 250.0, 128.0, 128.5, 257.3, 97.0001])
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


# -- polyphase resampling ------------------------------------------------------------------------------

# 500/fs gives up/down of 5000/2573, 1000/257, 69969/13574, 1/20, 1000/2469, 25/18, 2/1, 125/32 and 10/1
AWKWARD_RATES = [257.3, 128.5, 97.0001, 10_000.0, 1234.5, 360.0, 250.0, 128.0, 50.0]
# float64 against scipy.signal.upfirdn / resample_poly on unit-variance noise: measured max |difference| 1.3e-15
# (the sums' own round-off on O(1) outputs, at every rate here), asserted with a wide margin below any real error
RESAMPLE_ATOL = 1e-12


def _ratio(fs: float) -> tuple[int, int]:
    ratio = resampling_ratio(fs)
    return ratio.numerator, ratio.denominator


def _scipy_upfirdn(x: np.ndarray, up: int, down: int, first: int, n_out: int) -> np.ndarray:
    """Outputs ``first .. first + n_out - 1`` of scipy's upfirdn with resample_poly's zero-led FIR, zeros past the end."""
    h, _, pre_pad = resampling_filter(up, down)
    full = sps.upfirdn(np.r_[np.zeros(pre_pad), h], x, up, down)
    out = np.zeros(x.shape[:-1] + (n_out,))
    part = full[..., first : first + n_out]
    out[..., : part.shape[-1]] = part
    return out


@pytest.mark.parametrize("fs", AWKWARD_RATES)
def test_polyphase_resampler_matches_scipy(fs: float) -> None:
    """Stretches of upfirdn (from the start, at resample_poly's skip, far in, past the end) and the whole of
    resample_poly(padtype="mean"), on inputs shorter and longer than one period of ``up`` outputs."""
    up, down = _ratio(fs)
    skip = resampling_skip(up, down)
    rng = np.random.default_rng(int(fs * 10))
    for n_in in (37, max(round(3 * fs), down + 50)):
        x = rng.standard_normal((2, n_in))
        total = -(-n_in * up // down)
        cases = [(0, total), (skip, total), (skip + total // 3, total // 2 + 1), (max(total - 3, 0), 40), (3, 1)]
        for first, n_out in cases:
            got = upfirdn_torch(torch.from_numpy(x), up, down, first, n_out).numpy()
            assert got.shape == (2, n_out)
            np.testing.assert_allclose(got, _scipy_upfirdn(x, up, down, first, n_out), rtol=0, atol=RESAMPLE_ATOL)
        got = (_resample_centred(torch.from_numpy(x), up, down) + x.mean(axis=-1, keepdims=True)).numpy()
        np.testing.assert_allclose(got, sps.resample_poly(x, up, down, axis=-1, padtype="mean"), atol=RESAMPLE_ATOL)


@pytest.mark.parametrize(
    ("fs", "n_in", "conv", "whole_period"),
    [
        (360.0, 29, True, True),
        (97.0001, 29, True, False),
        (128.5, 90, False, False),
        (1234.5, 200, False, False),
        (128.5, 300, False, True),
    ],
)
def test_polyphase_resampler_gradients(fs: float, n_in: int, conv: bool, whole_period: bool) -> None:
    """gradcheck of the resampler alone (float64) in each of its layouts: the dense kernel ("conv") or groups of
    residues, over fewer outputs than one period of ``up`` or whole periods."""
    up, down = _ratio(fs)
    n_out = -(-n_in * up // down)
    h, _, pre_pad = resampling_filter(up, down)
    plan = _polyphase(up, down, h.size + pre_pad, 5 % up, min(up, n_out))
    assert (plan.conv, plan.residues == up) == (conv, whole_period)
    x = torch.randn(2, n_in, generator=torch.Generator().manual_seed(1), dtype=torch.float64, requires_grad=True)
    # the full Jacobian where it is small; a random projection of it (fast_mode) for 300 x 1168
    fast = n_in * n_out > 20_000
    assert torch.autograd.gradcheck(
        lambda v: upfirdn_torch(v, up, down, 5, n_out), (x,), eps=1e-6, atol=1e-8, fast_mode=fast
    )


# Peak resident memory of one Preprocessor forward (and backward) on float64 noise, in a fresh interpreter:
# ru_maxrss after the pass minus ru_maxrss once torch, clef_sdk and the input are loaded.
_PEAK_SCRIPT = """
import resource, sys, time
import torch
import clef_sdk as clef

def peak_mb():
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10  # bytes on macOS, KiB elsewhere

fs, seconds = float(sys.argv[1]), float(sys.argv[2])
x = torch.randn(1, round(fs * seconds), dtype=torch.float64)
preprocessor = clef.Preprocessor(fs)
baseline = peak_mb()
start = time.perf_counter()
preprocessor(x)
forward_s, forward_mb = time.perf_counter() - start, peak_mb() - baseline
y = x.clone().requires_grad_(True)
preprocessor(y).sum().backward()
print(forward_mb, peak_mb() - baseline, forward_s)
"""
# Zero-stuffing by ``up`` before a strided conv1d took 4.1 GB and 24 s (257.3 Hz, 10 s), 7.8 GB and 40 s (128.5 Hz,
# 100 s) and asked for 168 GB (97.0001 Hz, 30 s). Polyphase, measured peak forward / forward + backward on a 2-core
# CPU: 27 / 30 MB, 27 / 37 MB and 68 / 68 MB (most of the last is the 1.4-million-tap FIR's design in SciPy), each
# in under 0.3 s including that design.
PEAK_MB = 200


@pytest.mark.parametrize(("fs", "seconds"), [(257.3, 10), (128.5, 100), (97.0001, 30)])
def test_resampling_memory_does_not_grow_with_the_up_factor(fs: float, seconds: float) -> None:
    pytest.importorskip("resource")
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_SCRIPT, str(fs), str(seconds)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    forward_mb, backward_mb, _ = map(float, result.stdout.split())
    assert forward_mb < PEAK_MB and backward_mb < PEAK_MB, (forward_mb, backward_mb)


@pytest.mark.parametrize("fs", [360.0, 128.5, 500.0])
def test_float32_keeps_its_digits_under_a_large_offset(fs: float) -> None:
    """Found by the fuzz suite: ECG riding on an offset 1e4 times its size lost its low digits in float32 (the
    offset added back before the band-pass, and a float32 mean whose rounding leaked through the resampler):
    9.5e-4 from clef.preprocess of the same samples at 360 Hz, 3.7e-3 on other stretches."""
    ecg = clef.datasets.load_example("mitdb-100")[0][: 30 * 360]
    for offset in (1e4, 1e6):
        samples = (ecg + offset).astype(np.float32)
        expected = clef.preprocess(samples.astype(np.float64), fs)
        got = clef.Preprocessor(fs)(torch.from_numpy(samples)).numpy()
        assert np.abs(got - expected).max() <= FLOAT32_ATOL  # measured <= 3.0e-6 with the fix
