"""Preprocessing: conformance with the reference pipeline on real ECG, resampling and window counts at many rates,
overlap and tail modes, chunked windows, NaN gaps, units (ADC counts), flat signals, and the numpy/scipy-only
implementation."""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from exact_reference import reference_window
from scipy import signal as sps

import clef_sdk
from clef_sdk import PreprocessingWarning, iter_windows, preprocess
from clef_sdk.preprocessing import preprocess_windows

# Windows are float32 z-scores of magnitude up to ~16, where float32 spacing is 9.5e-7: every comparison with the
# exact (float64) reference below allows 2e-6, two float32 steps (measured 4.8e-7 over 24 LUDB windows).
EXACT_TOLERANCE = 2e-6


def assert_same_windows(actual: np.ndarray, expected: np.ndarray) -> None:
    """The same windows computed in batches of other sizes: the batched matrix products' float64 round-off
    (~1e-16) could move a float32 step on some CPU (measured: no difference on this one)."""
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=0, atol=EXACT_TOLERANCE)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def synthetic(fs: float, n: int) -> np.ndarray:
    """A smooth ECG-band test signal sampled at ``fs`` (components below 25 Hz, so every rate represents it)."""
    t = np.arange(n) / fs
    return np.sin(2 * np.pi * 1.1 * t) + 0.6 * np.sin(2 * np.pi * 7.3 * t + 1) + 0.3 * np.sin(2 * np.pi * 19.0 * t + 2)


# --- real data ----------------------------------------------------------------------------------------------


def _ludb_lead(data_dir: Path, record: int, lead: int = 0) -> tuple[np.ndarray, float, int]:
    """ADC counts (int16) of one LUDB lead read as WFDB format 16, with its gain (counts/mV) and baseline."""
    header = (data_dir / "ludb" / "data" / f"{record}.hea").read_text().splitlines()
    n_leads = int(header[0].split()[1])
    fields = header[1 + lead].split()
    assert fields[1] == "16"
    gain, baseline = re.fullmatch(r"([\d.]+)\((-?\d+)\)/mV", fields[2]).groups()
    counts = np.fromfile(data_dir / "ludb" / "data" / f"{record}.dat", dtype="<i2").reshape(-1, n_leads)[:, lead]
    return counts, float(gain), int(baseline)


@pytest.fixture(scope="module")
def conformance(conformance_dir: Path) -> dict[str, np.ndarray]:
    with np.load(conformance_dir / "preprocess.npz") as archive:
        return {key: archive[key] for key in archive.files}


@pytest.fixture(scope="module")
def exact_500hz(conformance_dir: Path) -> np.ndarray:
    """``raw_500hz`` through the reference pipeline in 50-digit arithmetic: (4, 5000) float64."""
    with np.load(conformance_dir / "preprocess_exact.npz") as archive:
        return archive["expected_500hz_exact"]


@pytest.fixture(scope="module")
def ludb_mv(data_dir: Path) -> np.ndarray:
    """Lead I of LUDB records 1-4 in mV, concatenated: 40 s at 500 Hz (each record fills one window)."""
    parts = []
    for record in range(1, 5):
        counts, gain, baseline = _ludb_lead(data_dir, record)
        parts.append((counts - baseline) / gain)
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def mitdb_minute(mitdb_record: np.ndarray) -> np.ndarray:
    return mitdb_record[: 60 * 360].astype(np.float64)


# --- conformance --------------------------------------------------------------------------------------------


def test_conformance_500hz(conformance: dict[str, np.ndarray], exact_500hz: np.ndarray) -> None:
    for raw, want in zip(conformance["raw_500hz"], exact_500hz):
        out = preprocess(raw, 500)
        assert out.shape == (1, 5000) and out.dtype == np.float32
        assert np.abs(out[0] - want).max() <= EXACT_TOLERANCE  # measured 4.1e-7 (the float32 cast)
    # the four 10 s records back to back are four windows, each processed on its own
    together = preprocess(conformance["raw_500hz"].ravel(), 500)
    assert together.shape == (4, 5000)
    assert np.abs(together - exact_500hz).max() <= EXACT_TOLERANCE
    # the reference's own float64 output carries its machine's round-off: 1.8e-3 here, ~5e-3 at most (README)
    assert np.abs(together - conformance["expected_500hz"]).max() <= 1e-2


@pytest.mark.parametrize(
    "change",
    [lambda x: 1000 * x, lambda x: x * (1 + 1e-15), lambda x: x + 0.5, lambda x: (x * 1e3).astype(np.float32)],
    ids=["x1000", "x(1+1e-15)", "+0.5", "uV-float32"],
)
def test_windows_do_not_depend_on_units_offset_or_round_off(conformance: dict[str, np.ndarray], change) -> None:
    """The filtfilt round-off that moved windows by ~3e-3 is gone: what remains is the float32 cast and the
    z-score's 1e-8 in the denominator, which is relative to the signal's scale (measured 9.5e-7 for x1000)."""
    raw = conformance["raw_500hz"].ravel()
    np.testing.assert_allclose(preprocess(change(raw), 500), preprocess(raw, 500), rtol=0, atol=EXACT_TOLERANCE)


def test_conformance_embeddings_500hz(
    conformance: dict[str, np.ndarray], small_encoder, medium_rule_state_dict: dict
) -> None:
    """Our windows and the reference's float64 windows give the same embeddings (cosine >= 0.99999)."""
    from clef_sdk.weights.format import encoder_from_weights, extract_backbone

    ours = preprocess(conformance["raw_500hz"].ravel(), 500)
    medium = encoder_from_weights(extract_backbone(medium_rule_state_dict))
    for encoder in (small_encoder, medium):
        with torch.inference_mode():
            a = encoder(torch.from_numpy(ours).unsqueeze(1)).double().numpy()
            b = encoder(torch.from_numpy(conformance["expected_500hz"]).float().unsqueeze(1)).double().numpy()
        cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        assert cosine.min() >= 0.99999  # measured 1 - 1.5e-10 (small), 1 - 8.3e-10 (medium)


def test_conformance_360hz(conformance: dict[str, np.ndarray]) -> None:
    expected = conformance["expected_360hz_fft"]
    out = preprocess(conformance["raw_360hz"], 360)
    assert out.shape == expected.shape == (6, 5000)
    assert out.dtype == np.float32
    for window, want in zip(out, expected):
        assert pearson(window, want) >= 0.999  # measured >= 0.99968
        assert np.median(np.abs(window - want)) <= 0.005  # measured <= 0.0012


def test_exact_reference_reproduces_the_50_digit_fixture(
    conformance_dir: Path, conformance: dict[str, np.ndarray]
) -> None:
    """The tests' own exact reference (integer arithmetic) agrees with the fixture computed in 50-digit arithmetic,
    so tests built on it are sound; and the fixture's coefficients are the ones both implementations use."""
    import exact_reference

    from clef_sdk.filters import BUTTER_A, BUTTER_B

    with np.load(conformance_dir / "preprocess_exact.npz") as archive:
        b, a, exact = archive["b"], archive["a"], archive["expected_500hz_exact"]
    np.testing.assert_array_equal(b, exact_reference.B)
    np.testing.assert_array_equal(a, exact_reference.A)
    np.testing.assert_array_equal(b, BUTTER_B)
    np.testing.assert_array_equal(a, BUTTER_A)
    for raw, want in zip(conformance["raw_500hz"], exact):
        assert np.abs(reference_window(raw) - want).max() <= 1e-12  # measured 1.8e-15


def test_vectorised_filtering_equals_per_row(data_dir: Path) -> None:
    raw = np.stack([_ludb_lead(data_dir, record, lead)[0] for record in (1, 2) for lead in range(12)]).astype(
        np.float64
    )
    together = preprocess_windows(raw)
    per_row = np.stack([preprocess_windows(row[None])[0] for row in raw])
    # float64 round-off of the batched matrix products (~1e-16) can move a float32 step: measured 0 differences
    np.testing.assert_allclose(together, per_row, rtol=0, atol=EXACT_TOLERANCE)
    exact = np.stack([reference_window(row) for row in raw])
    assert np.abs(together - exact).max() <= EXACT_TOLERANCE  # measured 4.8e-7


def test_input_not_modified(mitdb_minute: np.ndarray) -> None:
    x = mitdb_minute.copy()
    x[100:200] = np.nan
    before = x.copy()
    preprocess(x, 360)
    preprocess(x[: 50 * 500].copy(), 500)
    np.testing.assert_array_equal(x, before)


# --- rates and window counts --------------------------------------------------------------------------------

RATES = [
    50,
    60,
    62.5,
    97.3,
    100,
    128,
    128.5,
    200,
    250,
    256,
    300,
    360,
    400,
    500,
    512,
    999.5,
    1000,
    1024,
    2000,
    4096,
    8000,
    10000,
]


@pytest.mark.parametrize("fs", RATES)
def test_window_count_and_content_at_many_rates(fs: float) -> None:
    n = round(fs * 30)  # exactly 30 s at every listed rate
    out = preprocess(synthetic(fs, n), fs)
    assert out.shape == (3, 5000) and out.dtype == np.float32
    assert len(preprocess(synthetic(fs, n - 1), fs)) == 2  # a hair short of 30 s: two complete windows
    assert len(preprocess(synthetic(fs, n), fs, stride_seconds=5)) == 5
    assert len(preprocess(synthetic(fs, n + round(fs * 9.9)), fs)) == 3
    # the middle window (away from the recording's edges) is the same signal as sampled at 500 Hz
    native = preprocess(synthetic(500, 15000), 500)
    assert pearson(out[1], native[1]) >= 0.9999  # measured >= 0.999998
    assert np.abs(out[1] - native[1]).max() <= 0.02  # measured <= 0.006


def test_non_integer_rate_on_real_ecg(mitdb_record: np.ndarray) -> None:
    """128.5 Hz: MIT-BIH resampled by an independent FFT resampler to 128.5 Hz, then back through clef."""
    x = mitdb_record[: 360 * 60].astype(np.float64)
    at_128_5 = sps.resample(x, round(x.size * 128.5 / 360))  # 7710 samples = 60 s
    out = preprocess(at_128_5, 128.5)
    native = preprocess(x, 360)
    assert out.shape == (6, 5000)
    # band-limited to 64 Hz, so compare the windows after the 40 Hz low-pass: same ECG, high correlation
    for a, b in zip(out[1:-1], native[1:-1]):
        assert pearson(a, b) >= 0.99


@pytest.mark.parametrize("fs", [49.9, 10_001, 0.36, 360_000])
def test_rate_out_of_range(fs: float) -> None:
    with pytest.raises(ValueError, match=r"outside the supported 50-10000 Hz"):
        preprocess(np.random.default_rng(0).standard_normal(100_000), fs)


# --- stride and tail ----------------------------------------------------------------------------------------


def test_stride_overlap_500hz(ludb_mv: np.ndarray) -> None:
    out = preprocess(ludb_mv, 500, stride_seconds=5)
    assert out.shape == (7, 5000)
    for k, window in enumerate(out):
        assert_same_windows(window, preprocess(ludb_mv[k * 2500 : k * 2500 + 5000], 500)[0])


def test_stride_overlap_360hz(mitdb_minute: np.ndarray) -> None:
    consecutive = preprocess(mitdb_minute, 360)
    half = preprocess(mitdb_minute, 360, stride_seconds=5)
    assert half.shape == (11, 5000)
    assert_same_windows(half[::2], consecutive)
    assert preprocess(mitdb_minute, 360, stride_seconds=2.5).shape == (21, 5000)
    assert preprocess(mitdb_minute, 360, stride_seconds=10).shape == (6, 5000)


@pytest.mark.parametrize(
    ("stride", "error"),
    [
        (0, ValueError),
        (-5, ValueError),
        (0.001, ValueError),
        (10.5, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("5", TypeError),
        (True, TypeError),
    ],
)
def test_invalid_stride(ludb_mv: np.ndarray, stride: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="stride_seconds"):
        preprocess(ludb_mv, 500, stride_seconds=stride)


def test_tail_modes(ludb_mv: np.ndarray) -> None:
    x = ludb_mv[:12_500]  # 25 s at 500 Hz
    dropped = preprocess(x, 500)
    assert dropped.shape == (2, 5000)
    np.testing.assert_array_equal(preprocess(x, 500, tail="drop"), dropped)

    last = preprocess(x, 500, tail="last")
    assert last.shape == (3, 5000)
    assert_same_windows(last[:2], dropped)
    np.testing.assert_allclose(last[2], reference_window(x[-5000:]), rtol=0, atol=EXACT_TOLERANCE)

    padded = preprocess(x, 500, tail="pad")
    assert padded.shape == (3, 5000)
    assert_same_windows(padded[:2], dropped)
    np.testing.assert_allclose(padded[2, :2500], reference_window(x[10_000:]), rtol=0, atol=EXACT_TOLERANCE)
    assert not padded[2, 2500:].any()


def test_tail_last_and_pad_at_360hz(mitdb_minute: np.ndarray) -> None:
    x = mitdb_minute[: 360 * 25]
    assert preprocess(x, 360).shape == (2, 5000)
    assert preprocess(x, 360, tail="last").shape == (3, 5000)
    padded = preprocess(x, 360, tail="pad")
    assert padded.shape == (3, 5000)
    assert np.abs(padded[2, :2500]).max() > 0.1 and not padded[2, 2500:].any()
    # a recording of whole windows has no tail: all modes agree
    full = mitdb_minute[: 360 * 30]
    for tail in ("last", "pad"):
        np.testing.assert_array_equal(preprocess(full, 360, tail=tail), preprocess(full, 360))


def test_padded_tail_needs_one_second(ludb_mv: np.ndarray) -> None:
    assert len(preprocess(ludb_mv[: 500 * 20 + 499], 500, tail="pad")) == 2  # 0.998 s tail: dropped
    assert len(preprocess(ludb_mv[: 500 * 20 + 500], 500, tail="pad")) == 3  # 1 s tail: padded


def test_recording_shorter_than_a_window(ludb_mv: np.ndarray, mitdb_minute: np.ndarray) -> None:
    for tail in ("drop", "last"):
        with pytest.raises(ValueError, match=r"lasts 5\.00 s, shorter than one 10 s window.*tail='pad'"):
            preprocess(ludb_mv[:2500], 500, tail=tail)
    padded = preprocess(ludb_mv[:2500], 500, tail="pad")
    assert padded.shape == (1, 5000)
    np.testing.assert_allclose(padded[0, :2500], reference_window(ludb_mv[:2500]), rtol=0, atol=EXACT_TOLERANCE)
    assert not padded[0, 2500:].any()
    assert preprocess(mitdb_minute[: 360 * 7], 360, tail="pad").shape == (1, 5000)
    with pytest.raises(ValueError, match=r"at least 1 s"):
        preprocess(ludb_mv[:400], 500, tail="pad")


def test_invalid_tail(ludb_mv: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"tail must be one of \('drop', 'pad', 'last'\), got 'keep'"):
        preprocess(ludb_mv, 500, tail="keep")


# --- chunked windows ----------------------------------------------------------------------------------------


def test_iter_windows_chunks_concatenate_to_preprocess(mitdb_record: np.ndarray) -> None:
    whole = preprocess(mitdb_record, 360)
    assert whole.shape == (180, 5000)
    chunks = list(iter_windows(mitdb_record, 360, chunk_size=7))
    assert [len(c) for c in chunks] == [7] * 25 + [5]
    assert all(c.dtype == np.float32 for c in chunks)
    assert_same_windows(np.concatenate(chunks), whole)
    overlapping = list(iter_windows(mitdb_record[: 360 * 100], 360, chunk_size=4, stride_seconds=5, tail="last"))
    assert_same_windows(
        np.concatenate(overlapping), preprocess(mitdb_record[: 360 * 100], 360, stride_seconds=5, tail="last")
    )


def test_iter_windows_validates_before_the_first_chunk() -> None:
    with pytest.raises(ValueError, match="shorter than one 10 s window"):
        iter_windows(np.random.default_rng(0).standard_normal(1000), 500)  # no next(): raised at the call
    with pytest.raises(TypeError, match="sampling rate"):
        iter_windows(np.random.default_rng(0).standard_normal(6000), None)
    with pytest.raises(ValueError, match="chunk_size"):
        next(iter_windows(np.random.default_rng(0).standard_normal(6000), 500, chunk_size=0))


# --- NaN ----------------------------------------------------------------------------------------------------


def test_partial_nan_windows_match_per_window_interpolation(ludb_mv: np.ndarray) -> None:
    x = ludb_mv.copy()
    x[100:400] = np.nan  # inside window 0
    x[5000:5150] = np.nan  # the start of window 1: filled from window 1's own samples, not window 0's
    x[14_800:15_000] = np.nan  # the end of window 2
    x[15_000 + np.arange(3, 5000, 17)] = np.nan  # scattered through window 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", PreprocessingWarning)
        out = preprocess(x, 500)
    assert np.isfinite(out).all()
    expected = np.stack([reference_window(x[k * 5000 : (k + 1) * 5000]) for k in range(4)])
    assert np.abs(out - expected).max() <= EXACT_TOLERANCE
    # interpolating over the whole recording instead would differ in window 1
    whole = x.copy()
    index = np.arange(x.size)
    whole[np.isnan(x)] = np.interp(index[np.isnan(x)], index[~np.isnan(x)], x[~np.isnan(x)])
    assert np.abs(reference_window(whole[5000:10_000]) - out[1]).max() > 1e-3


def test_all_nan_window_gives_zeros_and_warns(ludb_mv: np.ndarray) -> None:
    x = ludb_mv.copy()
    x[5000:10_000] = np.nan
    with pytest.warns(PreprocessingWarning, match=r"1 window\(s\) are entirely NaN.*window index 1\b"):
        out = preprocess(x, 500)
    assert out.shape == (4, 5000)
    assert not out[1].any()
    clean = preprocess(ludb_mv, 500)
    assert_same_windows(out[[0, 2, 3]], clean[[0, 2, 3]])


def test_nan_gaps_at_360hz(mitdb_minute: np.ndarray) -> None:
    x = mitdb_minute.copy()
    x[round(15.0 * 360) : round(15.5 * 360)] = np.nan  # a 0.5 s dropout in window 1
    x[round(42 * 360) + np.arange(0, 720, 97)] = np.nan  # single missing samples in window 4
    x[:3] = np.nan  # and at the very start
    with warnings.catch_warnings():
        warnings.simplefilter("error", PreprocessingWarning)
        out = preprocess(x, 360)
    clean = preprocess(mitdb_minute, 360)
    assert out.shape == clean.shape == (6, 5000)
    assert np.isfinite(out).all()
    # windows without gaps are barely touched by the others' gaps: bridging them changes the recording's mean,
    # which resample_poly(padtype="mean") subtracts and adds back through its per-phase gains (measured 3.1e-4)
    assert np.abs(out[[2, 3, 5]] - clean[[2, 3, 5]]).max() <= 1e-3
    assert min(pearson(out[k], clean[k]) for k in (2, 3, 5)) >= 0.99999
    # windows with gaps stay the same ECG
    for k in (0, 1, 4):
        assert pearson(out[k], clean[k]) >= 0.95


def test_long_nan_gap_at_360hz_gives_a_zero_window(mitdb_minute: np.ndarray) -> None:
    x = mitdb_minute.copy()
    x[round(19 * 360) : round(31.5 * 360)] = np.nan  # covers window 2 (20-30 s) entirely
    with pytest.warns(PreprocessingWarning, match=r"entirely NaN.*window index 2\b"):
        out = preprocess(x, 360)
    assert np.isfinite(out).all()
    assert not out[2].any()
    assert out[[0, 4, 5]].any(axis=1).all()


# --- units and flat signals ---------------------------------------------------------------------------------


def test_adc_counts_equal_millivolts_500hz(data_dir: Path, conformance: dict[str, np.ndarray]) -> None:
    counts, gain, baseline = _ludb_lead(data_dir, 1)
    assert counts.dtype == np.int16
    millivolts = (counts - baseline) / gain
    np.testing.assert_allclose(millivolts, conformance["raw_500hz"][0], atol=1e-12)  # the same recording
    from_counts = preprocess(counts, 500)
    from_mv = preprocess(millivolts, 500)
    # equal up to the float32 cast and the z-score's 1e-8, relative to each scale (measured 9.5e-7)
    assert np.abs(from_counts - from_mv).max() <= EXACT_TOLERANCE
    assert np.abs(from_counts[0] - reference_window(millivolts)).max() <= EXACT_TOLERANCE


def test_adc_counts_equal_millivolts_360hz(data_dir: Path) -> None:
    """MIT-BIH 100 in format 212: ADC counts carry an offset of ~1000 counts (5 mV); every window, the first
    and last included, must still match the mV signal."""
    wfdb = pytest.importorskip("wfdb")
    record = str(data_dir / "wfdb-sample" / "100")
    counts = wfdb.rdrecord(record, physical=False, sampto=360 * 60, channels=[0]).d_signal[:, 0]
    millivolts = wfdb.rdrecord(record, sampto=360 * 60, channels=[0]).p_signal[:, 0]
    assert np.issubdtype(counts.dtype, np.integer)
    from_counts = preprocess(counts, 360)
    from_mv = preprocess(millivolts, 360)
    assert from_counts.shape == (6, 5000)
    assert np.abs(from_counts - from_mv).max() <= EXACT_TOLERANCE  # measured 9.5e-7


@pytest.mark.parametrize("fs", [360, 500])
def test_dc_offset_and_scale_do_not_matter(mitdb_minute: np.ndarray, ludb_mv: np.ndarray, fs: int) -> None:
    x = mitdb_minute if fs == 360 else ludb_mv
    reference = preprocess(x, fs)
    for scale, offset in [(1000.0, 0.0), (1.0, 5.0), (200.0, -300.0)]:
        out = preprocess(x * scale + offset, fs)
        assert np.abs(out - reference).max() <= EXACT_TOLERANCE, (scale, offset)  # measured <= 9.5e-7


def test_constant_window_warns(ludb_mv: np.ndarray) -> None:
    x = ludb_mv.copy()
    x[10_000:15_000] = 0.25
    with pytest.warns(PreprocessingWarning, match=r"1 window\(s\) are constant \(flat\).*window index 2\b"):
        out = preprocess(x, 500)
    assert out.shape == (4, 5000) and np.isfinite(out).all()


@pytest.mark.parametrize("value", [0.0, 3.3, 1024])
def test_constant_recording_raises(value: float) -> None:
    with pytest.raises(ValueError, match=r"constant \(flat"):
        preprocess(np.full(30_000, value), 500)
    with pytest.raises(ValueError, match=r"constant \(flat"):
        preprocess(np.where(np.arange(30_000) % 5, value, np.nan), 500)  # constant apart from NaNs


# --- implementation constraints -----------------------------------------------------------------------------


def test_preprocessing_needs_only_numpy_and_scipy(conformance_dir: Path) -> None:
    """The preprocessing modules run with torch made unimportable, loaded without the package's __init__."""
    package = Path(clef_sdk.__file__).parent
    script = f"""
import importlib, importlib.abc, sys, types
import numpy as np

class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is blocked in this test")
        return None

sys.meta_path.insert(0, NoTorch())  # any 'import torch' now fails
standalone = types.ModuleType("standalone")  # clef_sdk's modules, without running clef_sdk/__init__.py
standalone.__path__ = [{str(package)!r}]
sys.modules["standalone"] = standalone
mod = importlib.import_module("standalone.preprocessing")
raw = np.load({str(conformance_dir / "preprocess.npz")!r})["raw_500hz"]
exact = np.load({str(conformance_dir / "preprocess_exact.npz")!r})["expected_500hz_exact"]
assert np.abs(mod.preprocess(raw.ravel(), 500) - exact).max() <= {EXACT_TOLERANCE!r}
assert not any(name == "torch" or name.startswith("torch.") for name in sys.modules)
print("ok")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("fs", "error", "message"),
    [
        (None, TypeError, "sampling rate in Hz"),
        ("500", TypeError, "must be a real number in Hz"),
        (True, TypeError, "must be a real number in Hz"),
        (0, ValueError, "positive, finite"),
        (-360, ValueError, "positive, finite"),
        (float("nan"), ValueError, "positive, finite"),
        (float("inf"), ValueError, "positive, finite"),
        (0.5, ValueError, "outside the supported"),
    ],
)
def test_preprocess_rejects_bad_fs(ludb_mv: np.ndarray, fs: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        preprocess(ludb_mv, fs)


def test_numpy_scalar_and_integer_rates(ludb_mv: np.ndarray) -> None:
    reference = preprocess(ludb_mv, 500)
    for fs in (np.float32(500), np.int64(500), 500.0):
        np.testing.assert_array_equal(preprocess(ludb_mv, fs), reference)


def test_preprocess_several_recordings(mitdb_minute: np.ndarray, ludb_mv: np.ndarray) -> None:
    """A 2-D array gives one stacked array; a list gives a list; rates may differ per recording."""
    first, second = mitdb_minute[: 360 * 30], mitdb_minute[360 * 30 :]
    stacked = preprocess(np.stack([first, second]), 360)
    assert isinstance(stacked, np.ndarray) and stacked.shape == (2, 3, 5000)
    assert_same_windows(stacked[1], preprocess(second, 360))
    mixed = preprocess([first, ludb_mv], [360, 500])
    assert isinstance(mixed, list) and [w.shape for w in mixed] == [(3, 5000), (4, 5000)]
    assert_same_windows(mixed[1], preprocess(ludb_mv, 500))
    uneven = preprocess(np.stack([first, first]), [360, 180])  # one length, two rates: 3 and 6 windows
    assert isinstance(uneven, list) and [len(w) for w in uneven] == [3, 6]
    with pytest.raises(ValueError, match="recording 1"):
        preprocess([first, np.full(20_000, 2.0)], 360)
    with pytest.raises(ValueError, match="got 3 sampling rates for 2 recordings"):
        preprocess([first, second], [360, 360, 360])
