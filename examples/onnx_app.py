"""Embed a recording with an exported CLEF ONNX file, using only numpy and onnxruntime (no torch, no clef-sdk).

What an app on a phone or a small server does:

    clef export-onnx small --fs 360 -o clef-small-360hz.onnx        # once, where clef-sdk is installed
    python examples/onnx_app.py clef-small-360hz.onnx                # the bundled MIT-BIH minute at 360 Hz
    python examples/onnx_app.py clef-small-250hz.onnx --npy ecg.npy  # your own (n_samples,) recording

The file's metadata says the sampling rate and window length it takes; the app cuts the recording into
consecutive 10 s windows, fills NaN gaps (linear interpolation, as clef-sdk does), embeds them in batches and
mean-pools. Prints the per-window and pooled embedding shapes, and asserts that torch was never imported.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort

BUNDLED = Path(__file__).resolve().parents[1] / "clef_sdk" / "datasets" / "data" / "mitdb-100.npz"


def fill_gaps(window: np.ndarray) -> np.ndarray:
    """Linear interpolation of NaNs over the sample index (the graph needs finite input)."""
    missing = np.isnan(window)
    if not missing.any():
        return window
    if missing.all():
        return np.zeros_like(window)
    index = np.arange(window.size)
    filled = window.copy()
    filled[missing] = np.interp(index[missing], index[~missing], window[~missing])
    return filled


def embed(session: ort.InferenceSession, signal: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Per-window embeddings ``(n_windows, embed_dim)`` of a raw recording ``(n_samples,)`` at the file's rate."""
    metadata = session.get_modelmeta().custom_metadata_map
    contract = json.loads(metadata["preprocessing"])
    if contract["input"] != "raw":
        raise SystemExit("this file takes preprocessed windows; export it with --fs to embed raw ECG")
    width = int(contract["shape"][1])
    n_windows = len(signal) // width
    if n_windows == 0:
        raise SystemExit(f"the recording has {len(signal)} samples, fewer than one 10 s window ({width})")
    windows = np.stack([fill_gaps(w) for w in signal[: n_windows * width].reshape(n_windows, width)]).astype(np.float32)
    rows = [
        session.run(["embedding"], {"raw": windows[i : i + batch_size]})[0] for i in range(0, n_windows, batch_size)
    ]
    return np.concatenate(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="an .onnx file from `clef export-onnx MODEL --fs HZ`")
    parser.add_argument("--npy", help="a (n_samples,) .npy recording at the file's rate (default: bundled MIT-BIH 100)")
    args = parser.parse_args(argv)
    session = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    if args.npy:
        signal = np.load(args.npy).astype(np.float64)
    else:
        bundle = np.load(BUNDLED)
        signal = (bundle["counts"].astype(np.float64) - float(bundle["baseline"])) / float(bundle["gain"])  # mV
        if float(metadata["fs_hz"] or 0) != float(bundle["fs"]):
            raise SystemExit(
                f"the bundled recording is {float(bundle['fs']):g} Hz; export with --fs {float(bundle['fs']):g}"
            )
    per_window = embed(session, signal)
    pooled = per_window.mean(axis=0)
    print(
        f"{metadata['model_name']} ({metadata['model_size']}) at {metadata['fs_hz']} Hz: "
        f"{per_window.shape[0]} windows -> per-window {per_window.shape}, pooled {pooled.shape}"
    )
    assert "torch" not in sys.modules, "the app must run without torch"
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
