"""An independent, exact implementation of the reference pretraining preprocessing of one 500 Hz window.

It follows the reference code's own algorithm step by step (NaN interpolation; ``filtfilt``: odd extension by 33
samples, ``lfilter_zi`` initial conditions scaled by the first sample, direct-form-II-transposed ``lfilter``
forwards and backwards; z-score), but runs the filter in 256-bit fixed-point integer arithmetic from the float64
coefficients taken as exact rationals. Its round-off (~1e-77 per step, amplified by at most ~1e13 by the b/a
recursion) is invisible in float64, so the result is the filter the coefficients define, identical on every
machine. It shares no code with ``clef_sdk.filters`` (which uses precomputed responses and FFTs): agreement
between the two is evidence for both. About 50 ms per window.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

FRACTION_BITS = 256
PAD = 33
# scipy.signal.butter(5, [0.67 / 250, 40 / 250], btype="band"): the float64 values stored beside
# expected_500hz_exact in ../shared/conformance/preprocess_exact.npz (tests check they are equal).
B_HEX = (
    "0x1.dca75bdaadf1bp-12",
    "0x0.0p+0",
    "-0x1.29e89968acb71p-9",
    "0x0.0p+0",
    "0x1.29e89968acb71p-8",
    "0x0.0p+0",
    "-0x1.29e89968acb71p-8",
    "0x0.0p+0",
    "0x1.29e89968acb71p-9",
    "0x0.0p+0",
    "-0x1.dca75bdaadf1bp-12",
)
A_HEX = (
    "0x1.0000000000000p+0",
    "-0x1.0c61646c04855p+3",
    "0x1.fb8fa3ad51b74p+4",
    "-0x1.1d2e91b584ee2p+6",
    "0x1.a5ec40d4a9e94p+6",
    "-0x1.ad81985dab3d9p+6",
    "0x1.30bace519593cp+6",
    "-0x1.299d7bc547721p+5",
    "0x1.7ef24809d79c5p+3",
    "-0x1.251ae65f77b45p+1",
    "0x1.95554702af6e6p-3",
)
B = tuple(float.fromhex(v) for v in B_HEX)
A = tuple(float.fromhex(v) for v in A_HEX)


def _to_fixed(values: np.ndarray) -> list[int]:
    """float64 values as exact integers scaled by 2**FRACTION_BITS."""
    out = []
    for value in values.tolist():
        numerator, denominator = float(value).as_integer_ratio()
        out.append(numerator * ((1 << FRACTION_BITS) // denominator))
    return out


def _coefficients(values: tuple[float, ...]) -> tuple[list[int], int]:
    """Coefficients as integers over a common power of two: (numerators, shift)."""
    ratios = [Fraction(v) for v in values]
    shift = max(r.denominator for r in ratios).bit_length() - 1
    return [int(r * (1 << shift)) for r in ratios], shift


def _steady_state(b: tuple[float, ...], a: tuple[float, ...]) -> list[Fraction]:
    """``lfilter_zi`` exactly: the direct-form-II-transposed state under a constant unit input."""
    fb, fa = [Fraction(v) for v in b], [Fraction(v) for v in a]
    dc_gain = sum(fb) / sum(fa)
    return [sum(fb[k] - fa[k] * dc_gain for k in range(i + 1, len(fa))) for i in range(len(fa) - 1)]


def _lfilter(x: list[int], zi_scale: int) -> list[int]:
    """Direct form II transposed, as scipy.signal.lfilter, with initial state ``lfilter_zi * zi_scale``."""
    b, b_shift = _coefficients(B)
    a, a_shift = _coefficients(A)
    assert a[0] == 1 << a_shift
    state = [round(z * zi_scale) for z in _steady_state(B, A)]
    order = len(state)
    out = []
    half_b, half_a = 1 << (b_shift - 1), 1 << (a_shift - 1)
    for sample in x:
        y = ((b[0] * sample + half_b) >> b_shift) + state[0]
        for i in range(order):
            nxt = state[i + 1] if i + 1 < order else 0
            state[i] = ((b[i + 1] * sample + half_b) >> b_shift) + nxt - ((a[i + 1] * y + half_a) >> a_shift)
        out.append(y)
    return out


def exact_filtfilt(x: np.ndarray) -> np.ndarray:
    """``scipy.signal.filtfilt(B, A, x)`` for one 1-D window (more than 33 samples), exactly, as float64."""
    values = _to_fixed(np.asarray(x, dtype=np.float64))
    head = [2 * values[0] - v for v in values[PAD:0:-1]]
    tail = [2 * values[-1] - v for v in values[-2 : -PAD - 2 : -1]]
    extended = head + values + tail
    forward = _lfilter(extended, extended[0])[::-1]
    backward = _lfilter(forward, forward[0])[::-1]
    return np.array([v / (1 << FRACTION_BITS) for v in backward[PAD:-PAD]])


def reference_window(x: np.ndarray) -> np.ndarray:
    """One 500 Hz window as the reference pretraining code treats it (NaN fill, filtfilt, z-score), float64."""
    x = np.array(x, dtype=np.float64)
    nan = np.isnan(x)
    if nan.all():
        x = np.zeros_like(x)
    elif nan.any():
        index = np.arange(x.size)
        x[nan] = np.interp(index[nan], index[~nan], x[~nan])
    y = exact_filtfilt(x)
    return (y - y.mean()) / (y.std() + 1e-8)
