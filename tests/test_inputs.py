"""What the API accepts (clef_sdk.inputs): missing values however they are marked, amplitudes, own rates."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import clef_sdk as clef

ECG, FS, _ = clef.datasets.load_example("mitdb-100")
ENCODER = clef.build("small", seed=0)


@pytest.fixture()
def with_gap() -> tuple[np.ndarray, np.ndarray]:
    """20 s of MIT-BIH with samples 100-199 missing, and its embedding with NaN marking them."""
    x = ECG[: 20 * int(FS)].copy()
    nan = x.copy()
    nan[100:200] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return x, clef.embed(nan, FS, model=ENCODER)


def test_missing_values_marked_otherwise_than_by_nan_are_gaps(with_gap) -> None:
    """A masked array's hidden values (here a 1e6 spike) were embedded; pandas NA and None were refused."""
    pd = pytest.importorskip("pandas")
    x, expected = with_gap
    masked = np.ma.masked_array(x.copy(), mask=np.zeros(len(x), bool))
    masked.mask[100:200] = True
    masked.data[100:200] = 1e6
    series = pd.Series(x, dtype="Float64")
    series[100:200] = pd.NA
    listed: list[object] = list(x)
    listed[100:200] = [None] * 100
    for signal in (masked, series, listed):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            np.testing.assert_array_equal(clef.embed(signal, FS, model=ENCODER), expected)
    frame = pd.DataFrame(np.stack([x, x]))
    assert clef.embed(frame, FS, model=ENCODER).shape == (2, 256)


@pytest.mark.parametrize(
    ("transform", "message"),
    [
        (lambda x: np.r_[x[:-1], 1e300], "outside the amplitudes"),  # every window was exactly 0
        (lambda x: x * 1e200, "outside the amplitudes"),
        (lambda x: x * 1e-12, "outside the amplitudes"),  # the z-score's eps took over: windows near 0
        (lambda x: x[:1], "only 1 sample"),  # was called "constant"
        (lambda x: np.ones(30), "only 30 sample"),
        (lambda x: np.ones(5000), "constant"),
    ],
)
def test_amplitudes_and_lengths_the_pipeline_cannot_handle_are_refused(transform, message) -> None:
    with pytest.raises(ValueError, match=message):
        clef.embed(transform(ECG), FS, model=ENCODER)
    with pytest.raises(ValueError, match=message):
        clef.preprocess(transform(ECG), FS)


def test_units_far_apart_still_embed_alike() -> None:
    """V, mV, nV and 32-bit ADC counts are all inside the accepted range and give the same windows."""
    x = ECG[: 10 * int(FS)]
    reference = clef.preprocess(x, FS)
    for scale in (1e6, 1e9 / 2):  # nV, ADC counts: measured 4.8e-7 from mV, one float32 step
        np.testing.assert_allclose(clef.preprocess(x * scale, FS), reference, rtol=0, atol=2e-6)
    # in V the z-score's +1e-8 is 5e-5 of the window's std (as in the reference): measured 4.5e-4
    np.testing.assert_allclose(clef.preprocess(x * 1e-3, FS), reference, rtol=0, atol=2e-3)


def test_a_signal_that_knows_its_rate(data_dir) -> None:
    pytest.importorskip("wfdb")
    signal = clef.WfdbSignal(data_dir / "wfdb-sample" / "100")
    with pytest.raises(ValueError, match="720 Hz contradicts the 360 Hz"):
        clef.embed(signal, 720, model=ENCODER)  # was embedded at the wrong rate without a word
    with pytest.raises(ValueError, match="contradicts"):
        clef.preprocess(signal, 720)
    short = clef.WfdbSignal(data_dir / "wfdb-sample" / "100")
    assert clef.embed(short, None, model=ENCODER).shape == (256,)  # fs from the header


def test_mostly_missing_windows_are_warned_about() -> None:
    x = ECG[: 20 * int(FS)].copy()
    x[: int(0.8 * 10 * FS)] = np.nan  # 80% of the first window
    with pytest.warns(clef.PreprocessingWarning, match=r"more than 50% NaN .* window index 0\."):
        clef.preprocess(x, FS)
