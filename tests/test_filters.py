"""The exact band-pass operator: equal to filtfilt in exact arithmetic at every supported length, on real ECG;
its generated constants up to date; its inputs checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from exact_reference import exact_filtfilt
from scipy import signal as sps

from clef_sdk import _bandpass_constants as constants
from clef_sdk.filters import BUTTER_A, BUTTER_B, MAX_SAMPLES, PAD, bandpass, bandpass_tables

REPO = Path(__file__).resolve().parents[1]
# Relative to the window's peak: the operator is a few float64 roundings from the exact filter (measured
# at every length below: 1.2e-15); the float64 b/a recursion sits at ~4e-4 on the same windows.
EXACT_RTOL = 1e-12


@pytest.fixture(scope="module")
def ludb_leads(data_dir: Path) -> np.ndarray:
    """The 12 leads of LUDB record 1 in mV, (12, 5000) float64."""
    lines = (data_dir / "ludb" / "data" / "1.hea").read_text().splitlines()
    gains = np.array([float(line.split()[2].split("(")[0]) for line in lines[1:13]])
    return np.fromfile(data_dir / "ludb" / "data" / "1.dat", dtype="<i2").reshape(-1, 12).T / gains[:, None]


@pytest.mark.parametrize("n", [PAD + 1, PAD + 2, 100, 500, 2500, MAX_SAMPLES - 1, MAX_SAMPLES])
def test_equals_exact_filtfilt_at_every_length(ludb_leads: np.ndarray, n: int) -> None:
    x = ludb_leads[[0, 6], :n]  # leads I and V1
    out = bandpass(x)
    assert out.shape == x.shape and out.dtype == np.float64
    for row, got in zip(x, out):
        exact = exact_filtfilt(row)
        assert np.abs(got - exact).max() <= EXACT_RTOL * np.abs(exact).max()


def test_close_to_scipy_filtfilt_within_its_round_off(ludb_leads: np.ndarray) -> None:
    """SciPy's float64 filtfilt is the same filter plus its chaotic round-off (measured 3.9e-4 of the peak)."""
    ours = bandpass(ludb_leads)
    scipy_out = sps.filtfilt(np.array(BUTTER_B), np.array(BUTTER_A), ludb_leads, axis=-1)
    assert np.abs(ours - scipy_out).max() <= 1e-2 * np.abs(ours).max()


def test_offset_is_removed_and_scale_is_linear(ludb_leads: np.ndarray) -> None:
    x = ludb_leads[:3]
    reference = bandpass(x)
    peak = np.abs(reference).max()
    # x + 1000 rounds the input by up to 1.1e-13 (half a float64 step at 1000): measured 7.7e-14 at the output
    assert np.abs(bandpass(x + 1000.0) - reference).max() <= 1e-11 * peak
    np.testing.assert_allclose(bandpass(x * 1000.0), reference * 1000.0, rtol=0, atol=1e-12 * peak * 1000)


def test_rows_are_independent_and_leading_dimensions_kept(ludb_leads: np.ndarray) -> None:
    stacked = ludb_leads.reshape(3, 4, -1)
    out = bandpass(stacked)
    assert out.shape == stacked.shape
    single = bandpass(ludb_leads[5])
    assert single.shape == (MAX_SAMPLES,)
    # one row alone vs in a batch: float64 round-off of the matrix products only (measured 3.5e-16 of the peak)
    assert np.abs(out.reshape(12, -1)[5] - single).max() <= 1e-13 * np.abs(single).max()


@pytest.mark.parametrize("n", [0, 1, PAD, MAX_SAMPLES + 1])
def test_unsupported_lengths_raise(n: int) -> None:
    with pytest.raises(ValueError, match=rf"windows of {PAD + 1} to {MAX_SAMPLES} samples, got {n}"):
        bandpass(np.ones((2, n)))


def test_scalar_input_raises() -> None:
    with pytest.raises(ValueError, match="scalar"):
        bandpass(np.float64(1.0))


def test_tables_are_cached_and_read_only() -> None:
    tables = bandpass_tables(MAX_SAMPLES)
    assert bandpass_tables(MAX_SAMPLES) is tables
    assert tables.left.shape == (MAX_SAMPLES, 31) and tables.right.shape == (MAX_SAMPLES + 2 * PAD, 31)
    assert np.isrealobj(tables.kernel_spectrum)
    for array in (tables.kernel_spectrum, tables.left, tables.right):
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1.0


def test_shift_is_a_contraction() -> None:
    """The property the float64 tables rely on: powers of the shift never amplify round-off."""
    assert np.linalg.norm(np.array(constants.SHIFT), 2) <= 1 + 1e-12  # measured 1 + 7e-16


def test_generated_constants_are_up_to_date() -> None:
    """Regenerating the constants from BUTTER_B / BUTTER_A in 160-digit arithmetic gives the shipped module."""
    script = REPO / "scripts" / "make_bandpass_constants.py"
    result = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
