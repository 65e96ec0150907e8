"""Figures of the documentation site, made from real ECG: ``python docs/make_figures.py``.

- ``images/preprocessing.png``: the preprocessing steps on the first 10 s window of the bundled MIT-BIH record.
  (The probe ROC figure comes from ``examples/probe_mitdb_pvc.py --figure docs/images/probe_mitdb_pvc.png``.)
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import clef_sdk as clef
from clef_sdk.preprocessing import WINDOW_SAMPLES, filter_windows, resample_to_target, zscore

HERE = Path(__file__).resolve().parent


def preprocessing_figure(path: Path) -> None:
    signal, fs, info = clef.datasets.load_example("mitdb-100")
    raw = signal[: int(10 * fs)]
    resampled = resample_to_target(signal, fs)[:WINDOW_SAMPLES]
    filtered = filter_windows(resampled)
    normalised = zscore(filtered)
    assert np.allclose(normalised, clef.preprocess(signal, fs)[0], atol=2e-6)  # the figure shows what clef does
    steps = [
        (np.arange(len(raw)) / fs, raw, f"1. raw: {fs:g} Hz, mV ({info['lead']})"),
        (np.arange(WINDOW_SAMPLES) / 500, resampled, "2. resampled to 500 Hz (polyphase, whole recording)"),
        (np.arange(WINDOW_SAMPLES) / 500, filtered, "3. band-pass 0.67-40 Hz (exact b/a filtfilt), mV"),
        (np.arange(WINDOW_SAMPLES) / 500, normalised, "4. z-score: what CLEF sees"),
    ]
    figure, axes = plt.subplots(len(steps), 1, figsize=(9, 7), sharex=True)
    for axis, (t, y, title) in zip(axes, steps):
        axis.plot(t, y, lw=0.7)
        axis.set_title(title, fontsize=9, loc="left")
    axes[-1].set_xlabel("seconds")
    figure.suptitle("MIT-BIH record 100, first 10 s window", fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"wrote {path}")


if __name__ == "__main__":
    preprocessing_figure(HERE / "images" / "preprocessing.png")
