"""The numbers of the CLEF pretraining contract, and the library's name as sent to the Hub.

Every module reads them from here; `PREPROCESSING` is the contract written into every weights file and
ONNX graph and checked when one is loaded.
"""

from __future__ import annotations

__all__ = [
    "BANDPASS_HZ",
    "BLOCK_SAMPLES",
    "FILTER_ORDER",
    "LIBRARY_NAME",
    "MAX_FS",
    "MIN_FS",
    "MIN_PAD_SECONDS",
    "PREPROCESSING",
    "RESAMPLE_RATIO_TOLERANCE",
    "TARGET_FS",
    "WINDOW_SAMPLES",
    "WINDOW_SECONDS",
    "ZSCORE_EPS",
]

LIBRARY_NAME = "clef-sdk"

TARGET_FS = 500  # Hz: every recording is resampled to this rate
WINDOW_SECONDS = 10
WINDOW_SAMPLES = TARGET_FS * WINDOW_SECONDS
BANDPASS_HZ = (0.67, 40.0)
FILTER_ORDER = 5
ZSCORE_EPS = 1e-8
MIN_FS = 50.0  # Hz: the supported input rates
MAX_FS = 10_000.0
# A padded tail must hold at least this much signal: filtfilt needs more than 33 samples and a z-score over
# a shorter stretch says nothing about the heart.
MIN_PAD_SECONDS = 1.0
# Rational approximation of 500 / fs: the effective rate may differ from the nominal one by this much.
RESAMPLE_RATIO_TOLERANCE = 1e-9
# Samples read per step of a streaming pass: 8 MiB of float64, small next to any model's working set.
BLOCK_SAMPLES = 1 << 20

PREPROCESSING: dict[str, object] = {
    "target_fs_hz": TARGET_FS,
    "window_samples": WINDOW_SAMPLES,
    "nan": "linear interpolation per window; all-NaN window -> zeros",
    "bandpass": {
        "type": "butterworth",
        "order": FILTER_ORDER,
        "low_hz": BANDPASS_HZ[0],
        "high_hz": BANDPASS_HZ[1],
        "form": "ba",
        "application": "scipy.signal.filtfilt per window, default padding",
    },
    "normalization": {"type": "zscore", "std": "population", "eps": ZSCORE_EPS},
    "resampling": "scipy.signal.resample_poly over the whole recording, padtype='mean'",
}
