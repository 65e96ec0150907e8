"""``clef.embed`` on real recordings: output shapes and types, pooling, accepted input forms, batch invariance,
determinism, inference mode, progress bars, and one test per kind of bad input (exception type and message)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

import clef_sdk as clef
from clef_sdk import ClefEncoder, ManifestError, preprocess

DIM = 256  # CLEF-small
# Batch invariance, measured on CPU: max |diff| 1.2e-7 = 5e-8 * max|embedding| between batch sizes 1..32.
BATCH_RTOL = 1e-5
BATCH_ATOL_REL = 1e-5


@pytest.fixture(scope="module")
def encoder(small_encoder: ClefEncoder) -> ClefEncoder:
    return small_encoder


@pytest.fixture(scope="module")
def recordings(mitdb_record: np.ndarray, data_dir: Path) -> dict[str, tuple[np.ndarray, float]]:
    """Real recordings of different lengths and rates: ``name -> (signal, fs)``."""
    cpsc = scipy.io.loadmat(data_dir / "cpsc2019-sample" / "data" / "data_00014.mat")["ecg"].ravel()
    return {
        "mitdb_25s": (mitdb_record[: 360 * 25].astype(np.float64), 360.0),
        "mitdb_95s": (mitdb_record[360 * 40 : 360 * 135].astype(np.float64), 360.0),
        "mitdb_31s": (mitdb_record[360 * 200 : 360 * 231].astype(np.float64), 360.0),
        "cpsc_10s": (cpsc, 500.0),
    }


def _windows(signal: np.ndarray, fs: float) -> int:
    return len(preprocess(signal, fs))


def _close(a: np.ndarray, b: np.ndarray) -> None:
    np.testing.assert_allclose(a, b, rtol=BATCH_RTOL, atol=BATCH_ATOL_REL * np.abs(b).max())


# --- shapes and pooling -------------------------------------------------------------------------------------


def test_one_recording(encoder: ClefEncoder, recordings) -> None:
    signal, fs = recordings["mitdb_95s"]
    out = clef.embed(signal, fs, model=encoder)
    assert isinstance(out, np.ndarray) and out.shape == (DIM,) and out.dtype == np.float32
    # the mean over the recording's windows of the network's output on the preprocessed windows
    with torch.inference_mode():
        per_window = encoder(torch.from_numpy(preprocess(signal, fs)).unsqueeze(1)).numpy()
    assert per_window.shape == (9, DIM)
    _close(out, per_window.mean(0))


def test_two_d_array_is_one_recording_per_row(encoder: ClefEncoder, mitdb_record: np.ndarray) -> None:
    rows = mitdb_record[: 360 * 90].reshape(3, 360 * 30)
    out = clef.embed(rows, 360, model=encoder)
    assert out.shape == (3, DIM) and out.dtype == np.float32
    for row, embedding in zip(rows, out):
        _close(embedding, clef.embed(row, 360, model=encoder))


def test_list_of_different_lengths(encoder: ClefEncoder, recordings) -> None:
    names = ["mitdb_25s", "mitdb_95s", "mitdb_31s"]
    out = clef.embed([recordings[n][0] for n in names], 360, model=encoder)
    assert out.shape == (3, DIM) and out.dtype == np.float32
    for name, embedding in zip(names, out):
        _close(embedding, clef.embed(recordings[name][0], 360, model=encoder))


def test_pooling_none(encoder: ClefEncoder, recordings) -> None:
    signal, fs = recordings["mitdb_95s"]
    one = clef.embed(signal, fs, model=encoder, pooling=None)
    assert isinstance(one, np.ndarray) and one.shape == (9, DIM) and one.dtype == np.float32
    _close(one.mean(0), clef.embed(signal, fs, model=encoder))

    names = ["mitdb_25s", "mitdb_95s", "cpsc_10s"]
    several = clef.embed(
        [recordings[n][0] for n in names], [recordings[n][1] for n in names], model=encoder, pooling=None
    )
    assert isinstance(several, list) and len(several) == 3
    for name, windows in zip(names, several):
        assert windows.dtype == np.float32
        assert windows.shape == (_windows(*recordings[name]), DIM)
        _close(windows, clef.embed(*recordings[name], model=encoder, pooling=None))


def test_pooling_max(encoder: ClefEncoder, recordings) -> None:
    signal, fs = recordings["mitdb_95s"]
    out = clef.embed(signal, fs, model=encoder, pooling="max")
    assert out.shape == (DIM,) and out.dtype == np.float32
    per_window = clef.embed(signal, fs, model=encoder, pooling=None)
    _close(out, per_window.max(0))
    assert not np.allclose(out, per_window.mean(0))
    several = clef.embed([signal, recordings["mitdb_25s"][0]], fs, model=encoder, pooling="max")
    _close(several[0], out)


def test_stride_and_tail_are_passed_through(encoder: ClefEncoder, recordings) -> None:
    signal, fs = recordings["mitdb_25s"]
    for kwargs, n in [
        ({}, 2),
        ({"stride_seconds": 5}, 4),
        ({"tail": "pad"}, 3),
        ({"tail": "last", "stride_seconds": 7.5}, 3),
    ]:
        assert clef.embed(signal, fs, model=encoder, pooling=None, **kwargs).shape == (n, DIM)
        assert len(preprocess(signal, fs, **kwargs)) == n


# --- accepted input forms -----------------------------------------------------------------------------------


def test_torch_tensors_and_python_lists(encoder: ClefEncoder, recordings) -> None:
    signal, fs = recordings["mitdb_25s"]
    reference = clef.embed(signal, fs, model=encoder)
    _close(clef.embed(torch.from_numpy(signal), fs, model=encoder), reference)
    _close(clef.embed(torch.from_numpy(signal).float(), fs, model=encoder), reference)
    with pytest.raises(TypeError, match="requires grad"):  # no silent graph cut: see test_torch_preprocessing
        clef.embed(torch.from_numpy(signal).requires_grad_(), fs, model=encoder)
    _close(clef.embed(signal.tolist(), fs, model=encoder), reference)
    _close(clef.embed(tuple(signal.tolist()), fs, model=encoder), reference)

    other, _ = recordings["mitdb_31s"]
    mixed = clef.embed([torch.from_numpy(signal), other.tolist()], fs, model=encoder)
    assert mixed.shape == (2, DIM)
    _close(mixed[0], reference)
    batch = torch.from_numpy(np.stack([signal, signal[::-1].copy()]))
    assert clef.embed(batch, fs, model=encoder).shape == (2, DIM)


def test_integer_adc_counts_work(encoder: ClefEncoder, data_dir: Path, conformance_dir: Path) -> None:
    counts = np.fromfile(data_dir / "ludb" / "data" / "1.dat", dtype="<i2").reshape(-1, 12)[:, 0]
    millivolts = np.load(conformance_dir / "preprocess.npz")["raw_500hz"][0]
    from_counts = clef.embed(counts, 500, model=encoder).astype(np.float64)
    from_mv = clef.embed(millivolts, 500, model=encoder).astype(np.float64)
    # The windows agree to a float32 step (exact band-pass); what is left is the network's float32 round-off
    # (measured: 1 - cosine 0, max|diff| 2.4e-7 of the largest value; with the old float64 filtfilt, 1e-7 and 1e-4).
    cosine = from_counts @ from_mv / (np.linalg.norm(from_counts) * np.linalg.norm(from_mv))
    assert cosine >= 1 - 1e-8
    assert np.abs(from_counts - from_mv).max() <= 1e-5 * np.abs(from_mv).max()


def test_per_record_sampling_rates(encoder: ClefEncoder, recordings) -> None:
    names = ["mitdb_31s", "cpsc_10s", "mitdb_25s"]
    signals = [recordings[n][0] for n in names]
    rates = [recordings[n][1] for n in names]
    out = clef.embed(signals, rates, model=encoder)
    assert out.shape == (3, DIM)
    for embedding, signal, fs in zip(out, signals, rates):
        _close(embedding, clef.embed(signal, fs, model=encoder))
    _close(clef.embed(signals, np.array(rates), model=encoder), out)
    _close(clef.embed(signals, tuple(rates), model=encoder), out)
    # the rate matters: the same samples read as 500 Hz give other windows
    assert not np.allclose(clef.embed(signals[0], 500, model=encoder), out[0], atol=1e-3)


def test_per_record_rates_must_match_recordings(encoder: ClefEncoder, recordings) -> None:
    signals = [recordings["mitdb_25s"][0], recordings["mitdb_31s"][0]]
    with pytest.raises(ValueError, match="got 3 sampling rates for 2 recordings"):
        clef.embed(signals, [360, 360, 360], model=encoder)
    with pytest.raises(ValueError, match=r"fs\[1\]"):
        clef.embed(signals, [360, -1], model=encoder)


def test_model_by_path_and_encoder_method(
    encoder: ClefEncoder, small_safetensors: Path, small_ckpt: Path, recordings
) -> None:
    signal, fs = recordings["mitdb_31s"]
    reference = clef.embed(signal, fs, model=encoder)
    np.testing.assert_array_equal(encoder.embed(signal, fs), reference)
    np.testing.assert_array_equal(clef.embed(signal, fs, model=small_safetensors, device="cpu"), reference)
    np.testing.assert_array_equal(clef.embed(signal, fs, model=str(small_ckpt), device="cpu"), reference)


# --- batching, determinism, inference -----------------------------------------------------------------------


def test_batch_invariance(encoder: ClefEncoder, recordings) -> None:
    names = list(recordings)
    signals = [recordings[n][0] for n in names]
    rates = [recordings[n][1] for n in names]
    alone = [clef.embed(s, fs, model=encoder, batch_size=1) for s, fs in zip(signals, rates)]
    alone_windows = [clef.embed(s, fs, model=encoder, pooling=None, batch_size=1) for s, fs in zip(signals, rates)]
    for batch_size in (1, 2, 3, 7, 64):
        together = clef.embed(signals, rates, model=encoder, batch_size=batch_size)
        for embedding, reference in zip(together, alone):
            _close(embedding, reference)
        windows = clef.embed(signals, rates, model=encoder, batch_size=batch_size, pooling=None)
        for got, reference in zip(windows, alone_windows):
            _close(got, reference)
    # in other company and order
    shuffled = clef.embed([signals[2], signals[0]], [rates[2], rates[0]], model=encoder, batch_size=5)
    _close(shuffled[0], alone[2])
    _close(shuffled[1], alone[0])


def test_deterministic(encoder: ClefEncoder, recordings) -> None:
    signals = [recordings[n][0] for n in ("mitdb_95s", "mitdb_25s")]
    first = clef.embed(signals, 360, model=encoder, batch_size=4)
    second = clef.embed(signals, 360, model=encoder, batch_size=4)
    np.testing.assert_array_equal(first, second)


def test_inference_mode_and_eval(small_encoder: ClefEncoder, recordings) -> None:
    model = copy.deepcopy(small_encoder)
    model.train()  # a user left it in training mode
    seen: list[tuple[bool, bool, bool]] = []
    handle = model.register_forward_hook(
        lambda module, inputs, output: seen.append(
            (module.training, torch.is_inference_mode_enabled(), torch.is_grad_enabled())
        )
    )
    signal, fs = recordings["mitdb_95s"]
    out = clef.embed(signal, fs, model=model, batch_size=4)
    handle.remove()
    assert len(seen) == 3  # 9 windows in batches of 4
    assert all(state == (False, True, False) for state in seen)
    assert all(p.grad is None for p in model.parameters())
    assert model.training  # the caller's mode is restored
    _close(out, clef.embed(signal, fs, model=small_encoder))
    assert not small_encoder.training


def test_loaded_encoders_are_in_eval_mode(small_safetensors: Path) -> None:
    encoder = clef.load(small_safetensors, device="cpu")
    assert not encoder.training
    assert all(not m.training for m in encoder.modules())


def test_progress_bar(encoder: ClefEncoder, recordings, capsys: pytest.CaptureFixture[str]) -> None:
    signal, fs = recordings["mitdb_95s"]
    clef.embed(signal, fs, model=encoder, progress=True)
    err = capsys.readouterr().err
    assert "embedding" in err and "9/9" in err and "window" in err
    clef.embed(signal, fs, model=encoder, progress=False)
    assert capsys.readouterr().err == ""
    clef.embed(signal, fs, model=encoder)  # default: no bar for a short job
    assert capsys.readouterr().err == ""


# --- bad input: one test per case, type and message ---------------------------------------------------------


def _bad(encoder: ClefEncoder, signal: object, fs: object = 500, **kwargs: object) -> None:
    clef.embed(signal, fs, model=encoder, **kwargs)


@pytest.fixture(scope="module")
def good(recordings) -> np.ndarray:
    return recordings["mitdb_25s"][0]


def test_nan_only(encoder: ClefEncoder) -> None:
    with pytest.raises(ValueError, match="entirely NaN"):
        _bad(encoder, np.full(10_000, np.nan))


def test_infinite_values(encoder: ClefEncoder, good: np.ndarray) -> None:
    x = good.copy()
    x[[10, 500]] = [np.inf, -np.inf]
    with pytest.raises(ValueError, match=r"contains 2 infinite value\(s\)"):
        _bad(encoder, x, 360)


def test_empty(encoder: ClefEncoder) -> None:
    with pytest.raises(ValueError, match="is empty"):
        _bad(encoder, np.array([]))
    with pytest.raises(ValueError, match="no recordings given"):
        _bad(encoder, [])
    with pytest.raises(ValueError, match="no recordings given"):
        _bad(encoder, np.zeros((0, 5000)))


def test_zero_dimensional(encoder: ClefEncoder) -> None:
    with pytest.raises(ValueError, match=r"must be 1-D .*got shape \(\) \(a scalar\)"):
        _bad(encoder, np.float64(3.0))
    with pytest.raises(ValueError, match=r"\(a scalar\)"):
        _bad(encoder, 3.0)


def test_three_dimensional(encoder: ClefEncoder) -> None:
    with pytest.raises(ValueError, match=r"must be 1-D .*got shape \(2, 3, 5000\)"):
        _bad(encoder, np.zeros((2, 3, 5000)))


def test_complex(encoder: ClefEncoder, good: np.ndarray) -> None:
    with pytest.raises(TypeError, match="is complex"):
        _bad(encoder, good + 1j, 360)


def test_object_array(encoder: ClefEncoder) -> None:
    with pytest.raises(TypeError, match="object array"):
        _bad(encoder, np.array([np.zeros(6000), np.zeros(7000)], dtype=object))


def test_bool_array(encoder: ClefEncoder) -> None:
    with pytest.raises(TypeError, match="must hold real numbers, got dtype bool"):
        _bad(encoder, np.random.default_rng(0).random(6000) > 0.5)


@pytest.mark.parametrize(
    ("fs", "error", "message"),
    [
        (0, ValueError, "positive, finite sampling rate"),
        (-500, ValueError, "positive, finite sampling rate"),
        (float("nan"), ValueError, "positive, finite sampling rate"),
        (float("inf"), ValueError, "positive, finite sampling rate"),
        (None, TypeError, r"fs \(the sampling rate in Hz\) is required"),
        ("500", TypeError, "must be a real number in Hz, got str"),
        (20_000, ValueError, r"20000 Hz is outside the supported 50-10000 Hz"),
        (0.5, ValueError, r"outside the supported .*kHz"),
    ],
    ids=["zero", "negative", "nan", "inf", "missing", "string", "too-high", "too-low"],
)
def test_bad_sampling_rate(
    encoder: ClefEncoder, good: np.ndarray, fs: object, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        _bad(encoder, good, fs)


def test_missing_sampling_rate_default(encoder: ClefEncoder, good: np.ndarray) -> None:
    with pytest.raises(TypeError, match="sampling rate in Hz.* is required"):
        clef.embed(good, model=encoder)


def test_shorter_than_a_window(encoder: ClefEncoder, good: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"lasts 5\.00 s, shorter than one 10 s window"):
        _bad(encoder, good[: 360 * 5], 360)
    assert clef.embed(good[: 360 * 5], 360, model=encoder, tail="pad").shape == (DIM,)


def test_constant_signal(encoder: ClefEncoder) -> None:
    with pytest.raises(ValueError, match=r"is constant \(flat, value 7\)"):
        _bad(encoder, np.full(10_000, 7.0))
    with pytest.raises(ValueError, match=r"recording 1 is constant"):
        _bad(encoder, [np.random.default_rng(0).standard_normal(6000), np.zeros(6000)])


def test_transposed_two_d_array(encoder: ClefEncoder, mitdb_record: np.ndarray) -> None:
    leads = np.stack([mitdb_record[:10_000]] * 12, axis=1)  # (n_samples, n_leads)
    with pytest.raises(ValueError, match=r"shape \(10000, 12\).*\(n_samples, n_leads\).*x\[:, 0\]"):
        _bad(encoder, leads, 360)
    with pytest.raises(ValueError, match=r"\(n_samples, n_leads\)"):
        _bad(encoder, mitdb_record[:10_000, None], 360)


@pytest.mark.parametrize(
    "path", ["recording.npy", Path("recording.npy"), b"recording.npy"], ids=["str", "path", "bytes"]
)
def test_path_given_as_signal(encoder: ClefEncoder, path: object) -> None:
    with pytest.raises(TypeError, match="not a signal; load the file first"):
        _bad(encoder, path)


def test_paths_in_a_list(encoder: ClefEncoder) -> None:
    with pytest.raises(TypeError, match=r"recording 0 must hold real numbers"):
        _bad(encoder, ["a.npy", "b.npy"])


def test_unknown_model_name(good: np.ndarray) -> None:
    with pytest.raises(ManifestError, match=r"unknown model 'tiny'.*small"):
        clef.embed(good, 360, model="tiny")


def test_missing_weights_file(good: np.ndarray, tmp_path: Path) -> None:
    missing = tmp_path / "clef-small.safetensors"
    with pytest.raises(FileNotFoundError, match=r"weights file not found: .*clef-small\.safetensors"):
        clef.embed(good, 360, model=missing, device="cpu")
    with pytest.raises(FileNotFoundError, match="weights file not found"):
        clef.embed(good, 360, model=str(missing), device="cpu")


@pytest.mark.parametrize("device", ["gpu0", "cuda:x", 3.5])
def test_invalid_device(encoder: ClefEncoder, good: np.ndarray, device: object) -> None:
    with pytest.raises(ValueError, match="invalid device"):
        clef.embed(good, 360, model=copy.deepcopy(encoder), device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_requested_without_cuda(small_safetensors: Path, good: np.ndarray) -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        clef.embed(good, 360, model=small_safetensors, device="cuda")


@pytest.mark.parametrize("pooling", ["avg", "MEAN", "sum", 0])
def test_bad_pooling(encoder: ClefEncoder, good: np.ndarray, pooling: object) -> None:
    with pytest.raises(ValueError, match=r"pooling must be one of \('mean', 'max', None\)"):
        _bad(encoder, good, 360, pooling=pooling)


@pytest.mark.parametrize("batch_size", [0, -4, 2.5, "32", True])
def test_bad_batch_size(encoder: ClefEncoder, good: np.ndarray, batch_size: object) -> None:
    with pytest.raises(ValueError, match="batch_size must be a positive integer or None"):
        _bad(encoder, good, 360, batch_size=batch_size)


def test_automatic_batch_size_follows_the_measurements(encoder: ClefEncoder, good: np.ndarray) -> None:
    from clef_sdk.embedding import auto_batch_size

    cpu = torch.device("cpu")
    medium = clef.build("medium")
    assert auto_batch_size(encoder, "fp32", cpu) == auto_batch_size(encoder, "bf16", cpu) == 32
    assert auto_batch_size(medium, "fp32", cpu) == 16 and auto_batch_size(medium, "bf16", cpu) == 32
    assert auto_batch_size(encoder, "fp32", torch.device("cuda")) == 256
    # the batch size never changes the result beyond float32 round-off (measured 2.4e-7)
    np.testing.assert_allclose(
        clef.embed(good, 360, model=encoder, pooling=None),
        clef.embed(good, 360, model=encoder, pooling=None, batch_size=1),
        rtol=0,
        atol=2e-6,
    )


def test_bad_model_type(good: np.ndarray) -> None:
    with pytest.raises(TypeError, match="model must be a name, a path or a ClefEncoder, got int"):
        clef.embed(good, 360, model=3)


def test_ragged_nested_lists(encoder: ClefEncoder, good: np.ndarray) -> None:
    """A list of python lists of different lengths is several recordings, not an error."""
    out = clef.embed([good.tolist(), good[: 360 * 12].tolist()], 360, model=encoder)
    assert out.shape == (2, DIM)
