"""The pretraining band-pass, computed exactly: the same windows on every machine.

CLEF was pretrained on ``scipy.signal.filtfilt(b, a, x)`` with ``b, a = butter(5, [0.67/250, 40/250], "band")``
per 10 s window at 500 Hz. In float64 that b/a recursion is chaotic (its ten poles cluster near z = 1): a change
of 1e-15 in the input, or another CPU, moves the z-scored output by ~3e-3. This module computes the filter those
coefficients define, without the recursion's round-off, as a linear operator in float64:

- filtfilt is linear in the window: odd extension by 33 samples; forward pass from the steady state of the first
  sample (``lfilter_zi``); the same backwards. With zero gain at DC the steady-state start is the same as
  subtracting the first extended sample, so ``v = ext - ext[0]`` and the forward pass is the causal convolution
  of ``v`` with the impulse response h, truncated to the extended length L, then the same backwards.
- Without the two truncations that is a convolution of ``v`` with the autocorrelation rho of h, done here with an
  FFT of 5120 points on the periodised rho. The truncations and the wrap-around of the short FFT are each of
  rank <= 10 (beyond its first samples h is a sum of the ten poles' modes), plus one rank-1 term from the second
  pass's steady-state start: 31 columns in all, applied as two small matrix products.
- The tables come from ``_bandpass_constants``: a 10-dimensional state in an orthonormal basis, computed in
  160-digit arithmetic by ``scripts/make_bandpass_constants.py`` from the float64 ``BUTTER_B``/``BUTTER_A`` below.
  Its shift matrix has norm <= 1, so the tables built from its powers here carry no amplified round-off.

Measured against the same pipeline in 50-digit arithmetic (``../shared/conformance/preprocess_exact.npz``): 1e-14
after the z-score, where any float64 ``filtfilt`` (SciPy's and the authors') lies 2-3e-3 away. Pure numpy/scipy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import fft as spfft

__all__ = ["BUTTER_A", "BUTTER_B", "FFT_SIZE", "MAX_SAMPLES", "PAD", "BandpassTables", "bandpass", "bandpass_tables"]

# scipy.signal.butter(5, [0.67 / 250, 40 / 250], btype="band") as the reference computed it (SciPy 1.x; equal
# to the b, a stored in ../shared/conformance/preprocess_exact.npz). Hard-coded: another SciPy or CPU could
# round a runtime butter() call differently. repr() of a float64 round-trips exactly.
BUTTER_B = (
    0.0004545724347439926,
    0.0,
    -0.002272862173719963,
    0.0,
    0.004545724347439926,
    0.0,
    -0.004545724347439926,
    0.0,
    0.002272862173719963,
    0.0,
    -0.0004545724347439926,
)
BUTTER_A = (
    1.0,
    -8.38688870522689,
    31.722568203952918,
    -71.29547771095125,
    105.4807160595613,
    -107.37655779225987,
    76.18242766833731,
    -37.20189622997555,
    11.96707536623297,
    -2.28988341962341,
    0.19791655995316332,
)

PAD = 33  # filtfilt's default odd padding: 3 * max(len(a), len(b))
MAX_SAMPLES = 5000  # one 10 s window at 500 Hz: the longest input the tables cover
# >= MAX_SAMPLES + PAD + 10, so that every lag the short FFT wraps around lies where rho is a sum of modes.
FFT_SIZE = 5120
_MAX_EXTENDED = MAX_SAMPLES + 2 * PAD


@dataclass(frozen=True)
class BandpassTables:
    """The operator for windows of ``n`` samples: ``y = irfft(rfft(v, FFT_SIZE) * kernel_spectrum)[PAD:PAD + n]
    - (v @ right) @ left.T`` with ``v`` the odd-extended window minus its first sample, ``(..., n + 2 * PAD)``.

    ``kernel_spectrum`` ``(FFT_SIZE // 2 + 1,)`` is real (rho is symmetric); ``left`` ``(n, 31)``,
    ``right`` ``(n + 66, 31)``. Every array is float64 and read-only.
    """

    n: int
    kernel_spectrum: np.ndarray
    left: np.ndarray
    right: np.ndarray


def _orbit(matrix: np.ndarray, start: np.ndarray, count: int) -> np.ndarray:
    """Rows ``start, matrix @ start, matrix^2 @ start, ...`` (``count`` of them), by doubling."""
    rows = start[None, :]
    power = matrix
    while len(rows) < count:
        rows = np.concatenate([rows, rows @ power.T])
        power = power @ power
    return rows[:count]


@dataclass(frozen=True)
class _Sequences:
    states: np.ndarray  # (2 * FFT_SIZE + 1, 10): row s = coordinates of h[s:], s >= 1 (row 0 unused)
    periodic_states: np.ndarray  # row s = sum_{j >= 0} states[s + j * FFT_SIZE]
    weights: np.ndarray  # (_MAX_EXTENDED, 10): row k = SHIFT^T^k AUTOCORRELATION_READOUT
    impulse: np.ndarray  # h[0 .. _MAX_EXTENDED)
    step: np.ndarray  # cumulative sum of h
    kernel_spectrum: np.ndarray


@lru_cache(maxsize=2)
def _sequences(fft_size: int = FFT_SIZE) -> _Sequences:
    from . import _bandpass_constants as c

    shift = np.array(c.SHIFT)
    rho_readout = np.array(c.AUTOCORRELATION_READOUT)
    states = np.concatenate([np.zeros((1, len(shift))), _orbit(shift, np.array(c.FIRST_STATE), 2 * fft_size)])
    # sum over the aliases j >= 0 of a state's orbit: (I - SHIFT^fft_size)^-1, applied on the right to rows
    periodic = states @ np.linalg.inv(np.eye(len(shift)) - np.linalg.matrix_power(shift, fft_size)).T
    impulse = np.concatenate([[BUTTER_B[0]], states[1:_MAX_EXTENDED] @ np.array(c.IMPULSE_READOUT)])
    rho = np.concatenate([[c.AUTOCORRELATION_AT_ZERO], states[1:fft_size] @ rho_readout])
    lags = np.arange(fft_size)
    periodised = rho + (periodic[fft_size + lags] + periodic[fft_size - lags]) @ rho_readout
    sequences = _Sequences(
        states=states,
        periodic_states=periodic,
        weights=_orbit(shift.T, rho_readout, _MAX_EXTENDED),
        impulse=impulse,
        step=np.cumsum(impulse),
        kernel_spectrum=spfft.rfft(periodised).real,  # rho_periodised is symmetric: its spectrum is real
    )
    for array in vars(sequences).values():
        array.flags.writeable = False
    return sequences


@lru_cache(maxsize=8)
def bandpass_tables(n: int, fft_size: int = FFT_SIZE) -> BandpassTables:
    """The exact band-pass operator for windows of ``n`` samples (``PAD < n <= MAX_SAMPLES``); cached.

    ``fft_size``: the FFT length the operator is built for, at least ``FFT_SIZE``; a power of two (8192) suits FFT
    libraries that are slow on other lengths (ONNX Runtime's DFT).
    """
    if not PAD < n <= MAX_SAMPLES:
        raise ValueError(f"the band-pass needs windows of {PAD + 1} to {MAX_SAMPLES} samples, got {n}")
    if fft_size < FFT_SIZE:
        raise ValueError(f"fft_size must be at least {FFT_SIZE}, got {fft_size}")
    seq = _sequences(fft_size)
    extended = n + 2 * PAD
    k = np.arange(n)  # output sample PAD + k of the extended window
    m = np.arange(extended)  # input sample of the extended window
    out_lag = n + PAD - k  # extended - (PAD + k): distance to the end, where the backward pass starts
    in_lag = extended - m
    left = np.concatenate(
        [
            seq.states[out_lag],  # the forward pass stops at the window's end (rank 10) ...
            seq.step[out_lag - 1, None],  # ... and the backward pass starts from its steady state (rank 1)
            seq.weights[k],  # wrap-around of the FFT, one direction (rank 10) ...
            seq.periodic_states[fft_size - PAD - k],  # ... and the other (rank 10)
        ],
        axis=1,
    )
    right = np.concatenate(
        [
            seq.states[in_lag],
            seq.impulse[in_lag - 1, None],
            seq.periodic_states[fft_size + PAD - m],
            seq.weights[m],
        ],
        axis=1,
    )
    for array in (left, right):
        array.flags.writeable = False
    return BandpassTables(n, seq.kernel_spectrum, left, np.ascontiguousarray(right))


def bandpass(windows: np.ndarray) -> np.ndarray:
    """``filtfilt(BUTTER_B, BUTTER_A, windows, axis=-1)`` in exact arithmetic, rounded to float64.

    ``windows``: ``(..., n)`` real, finite (fill NaNs first), ``34 <= n <= 5000`` samples at 500 Hz.
    Returns float64 ``(..., n)``. Each row is filtered on its own; the result does not depend on the others
    beyond float64 round-off (~1e-16 relative), and a constant offset is removed exactly.
    """
    x = np.asarray(windows, dtype=np.float64)
    if x.ndim == 0:
        raise ValueError("bandpass expects windows (..., n_samples), got a scalar")
    n = x.shape[-1]
    tables = bandpass_tables(n)
    rows = x.reshape(-1, n)
    extended = np.empty((len(rows), n + 2 * PAD))
    extended[:, PAD : PAD + n] = rows
    extended[:, :PAD] = 2 * rows[:, :1] - rows[:, PAD:0:-1]
    extended[:, PAD + n :] = 2 * rows[:, -1:] - rows[:, -2 : -PAD - 2 : -1]
    extended -= extended[:, :1].copy()
    low_rank = extended @ tables.right
    spectrum = spfft.rfft(extended, FFT_SIZE, axis=-1)
    spectrum *= tables.kernel_spectrum
    out = spfft.irfft(spectrum, FFT_SIZE, axis=-1)[:, PAD : PAD + n]
    out -= low_rank @ tables.left.T
    return out.reshape(x.shape)
