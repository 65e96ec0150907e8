"""Block-wise reading and resampling (clef_sdk.resampling) and the bounded-memory embedding path built on it."""

from __future__ import annotations

import tracemalloc
import warnings

import numpy as np
import pytest
import torch
from scipy import signal as sps

import clef_sdk as clef
from clef_sdk import resampling
from clef_sdk.embedding import _prefetched, _window_chunks
from clef_sdk.inputs import is_array_like_signal
from clef_sdk.io import WfdbSignal
from clef_sdk.preprocessing import _interpolate_nan, preprocess_windows
from clef_sdk.resampling import Recording, resampling_ratio
from clef_sdk.windows import PreprocessingWarning, plan_windows


@pytest.fixture(scope="module")
def five_minutes() -> np.ndarray:
    """Five minutes of real ECG (the bundled MIT-BIH 100 minute, 360 Hz, played five times)."""
    signal, fs, _ = clef.datasets.load_example("mitdb-100")
    assert fs == 360
    return np.tile(signal, 5)


def whole_resampling(x: np.ndarray, fs: float) -> np.ndarray:
    """The oracle: bridge NaN over the whole recording, ``resample_poly`` it at once, put NaN back."""
    ratio = resampling_ratio(fs)
    out = sps.resample_poly(_interpolate_nan(x), ratio.numerator, ratio.denominator, padtype="mean")
    source = (np.arange(out.size) * ratio.denominator * 2 + ratio.numerator) // (2 * ratio.numerator)
    out[np.isnan(x)[np.minimum(source, x.size - 1)]] = np.nan
    return out


def with_gaps(x: np.ndarray) -> np.ndarray:
    gapped = x.copy()
    gapped[:50] = np.nan  # at the start: held at the first valid sample
    gapped[1000:3000] = np.nan  # a gap across several small blocks
    gapped[40_000] = np.nan
    gapped[-7:] = np.nan  # at the end
    return gapped


@pytest.mark.parametrize("fs", [360, 250, 128.5, 1000])
@pytest.mark.parametrize("gaps", [False, True], ids=["clean", "nan-gaps"])
def test_any_stretch_equals_resampling_the_whole_recording(five_minutes, monkeypatch, fs, gaps):
    monkeypatch.setattr(resampling, "BLOCK_SAMPLES", 777)  # many blocks: the mean and the NaN bridging cross them
    x = with_gaps(five_minutes) if gaps else five_minutes
    expected = whole_resampling(x, fs)
    recording = Recording(x, resampling_ratio(fs))
    cuts = np.r_[0, np.sort(np.random.default_rng(0).integers(0, expected.size, 25)), expected.size]
    got = np.concatenate([recording.resampled(a, b) for a, b in zip(cuts[:-1], cuts[1:])])
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    # measured: bit-identical (0.0) at every rate; 1e-12 allows another summation order of the mean
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12, equal_nan=True)


def test_windows_do_not_depend_on_the_chunk_size(five_minutes):
    x = with_gaps(five_minutes)
    plan = plan_windows(x.size, 360, stride_seconds=7, tail="pad")
    whole = whole_resampling(x, 360)
    raw = np.full((len(plan), 5000), np.nan)
    for row, (start, valid) in enumerate(zip(plan.starts, plan.valid_samples)):
        raw[row, :valid] = whole[start : start + valid]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreprocessingWarning)
        expected = preprocess_windows(raw, valid_samples=plan.valid_samples)
        for chunk_size in (1, 7, 256):
            got = np.concatenate(list(clef.iter_windows(x, 360, stride_seconds=7, tail="pad", chunk_size=chunk_size)))
            # measured 0.0; the issue asks for 1e-6
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)


def test_memory_mapped_input_is_read_in_place(tmp_path, five_minutes):
    path = tmp_path / "ecg.npy"
    np.save(path, (five_minutes * 200).astype(np.int16))  # ADC counts, as a Holter writes them
    mapped = np.load(path, mmap_mode="r")
    checked = clef.inputs.check_signal(mapped)
    assert checked is mapped  # validated without a float64 copy of the recording
    np.testing.assert_allclose(clef.preprocess(mapped, 360), clef.preprocess(np.asarray(mapped, float), 360), atol=1e-6)


def test_memory_stays_flat_as_the_recording_grows(tmp_path, five_minutes):
    """Peak memory allocated while preprocessing a memory-mapped recording does not grow with its length."""

    def peak_mib(hours: int) -> float:
        path = tmp_path / f"{hours}h.npy"
        np.save(path, np.resize(five_minutes.astype(np.float32), hours * 3600 * 360))
        mapped = np.load(path, mmap_mode="r")
        tracemalloc.start()
        n = sum(len(chunk) for chunk in clef.iter_windows(mapped, 360, chunk_size=32))
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        assert n == hours * 360
        return peak

    one, four = peak_mib(1), peak_mib(4)
    # measured: 13.4 MiB for 1 h, 10.0 MiB for 4 h (the first run also builds the cached filter tables); resampling
    # 4 h whole would allocate 58 MiB for the 500 Hz copy alone
    assert four < one * 1.2 + 1
    assert four < 20


def test_wfdb_signal_reads_slices_and_embeds_like_the_array(data_dir):
    wfdb = pytest.importorskip("wfdb")
    record = data_dir / "wfdb-sample" / "100"
    lazy = WfdbSignal(record, "MLII")
    assert is_array_like_signal(lazy) and lazy.fs == 360 and len(lazy) == 650_000
    whole = wfdb.rdrecord(str(record), channels=[0]).p_signal[:, 0]
    np.testing.assert_array_equal(lazy[123_456:130_000], whole[123_456:130_000])
    encoder = clef.build("small", seed=0)
    np.testing.assert_allclose(
        clef.embed(lazy, lazy.fs, model=encoder), clef.embed(whole, 360, model=encoder), rtol=0, atol=1e-6
    )
    with pytest.raises(ValueError, match="no lead 'V9'; it has MLII, V5"):
        WfdbSignal(record, "V9")


def test_truncated_wfdb_record_fails_with_the_record_named(tmp_path, data_dir):
    pytest.importorskip("wfdb")
    for suffix in (".hea", ".dat"):
        content = (data_dir / "wfdb-sample" / f"100{suffix}").read_bytes()
        (tmp_path / f"100{suffix}").write_bytes(content if suffix == ".hea" else content[: len(content) // 2])
    lazy = WfdbSignal(tmp_path / "100", 0)
    with pytest.raises(OSError, match="cannot read samples .* of WFDB record"):
        clef.preprocess(lazy, 360)


@pytest.mark.parametrize(
    ("fs", "dtype", "tolerance"),
    [
        # measured max |difference| to the numpy path: float64 4.6e-7 (360 Hz), 4.1e-7 (500), 4.4e-7 (250) -- the
        # float32 rounding of the numpy path's output; float32 1.6e-5
        (360, torch.float64, 1e-6),
        (500, torch.float64, 1e-6),
        (250, torch.float64, 1e-6),
        (360, torch.float32, 5e-5),
    ],
)
def test_device_preprocessing_matches_the_numpy_path(five_minutes, fs, dtype, tolerance):
    x = five_minutes if fs == 360 else sps.resample_poly(five_minutes, fs, 360)
    plan = plan_windows(x.size, fs, stride_seconds=4)
    numpy_path = torch.cat([w for w, _ in _window_chunks([x], [fs], [plan], 7, None)]).numpy()
    device_path = torch.cat([w for w, _ in _window_chunks([x], [fs], [plan], 7, torch.device("cpu"), dtype)])
    assert device_path.dtype == dtype
    np.testing.assert_allclose(device_path.numpy(), numpy_path, rtol=0, atol=tolerance)


@pytest.mark.parametrize("fs", [360, 500])
def test_device_preprocessing_falls_back_for_gaps_and_both_paths_flag_flat_windows(five_minutes, fs):
    x = five_minutes if fs == 360 else sps.resample_poly(five_minutes, 25, 18)
    x[fs * 10 : fs * 11] = np.nan  # the second chunk has a gap: the numpy path fills it
    x[fs * 60 : fs * 70] = 0.25  # window 6 (in the third chunk) is a lead-off: flat in the recorded values
    plan = plan_windows(x.size, fs)
    with pytest.warns(PreprocessingWarning, match=r"1 window\(s\) are constant \(flat\).*window index 6\."):
        device_path = torch.cat([w for w, _ in _window_chunks([x], [fs], [plan], 4, torch.device("cpu"))])
    with pytest.warns(PreprocessingWarning, match=r"1 window\(s\) are constant \(flat\).*window index 6\."):
        numpy_path = clef.preprocess(x, fs)
    np.testing.assert_allclose(device_path.numpy(), numpy_path, rtol=0, atol=1e-6)  # measured 4.6e-7


def test_prefetching_keeps_order_and_reraises():
    assert list(_prefetched(iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(_prefetched(failing()))
    items = _prefetched(iter(range(1000)), depth=2)
    assert next(items) == 0
    items.close()  # stops the producer thread instead of leaving it blocked on a full queue
