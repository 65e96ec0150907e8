"""ONNX export: file sizes, parity with clef.embed per sampling rate, and ONNX Runtime vs torch speed.

    python benchmarks/bench_onnx.py                  # small and medium, CPU (about 3 min on 2 cores)

Parity: raw 10 s windows of real ECG (LUDB lead I at 500 Hz; MIT-BIH 100 at 360 Hz, resampled to 300 and 250 Hz)
through the raw-window graph, against ``clef.embed`` of the same windows; min cosine over 16 windows. Speed: 32
windows, the median of 5 timed repeats after a warm-up, alternating ONNX Runtime and torch: "windows" graphs
against the torch encoder on preprocessed windows, "raw 250 Hz" graphs against ``clef.embed`` of the same raw
windows. Weights: small from the conformance checkpoint, medium from the conformance weight rule.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from scipy import signal as sps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import encoder_for, machine, median_seconds, print_table, require_shared, row_cosines, write_json


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="small,medium")
    parser.add_argument("--output", help="JSON path")
    args = parser.parse_args(argv)
    import onnxruntime as ort

    import clef_sdk as clef

    data = require_shared() / "data"
    ludb = np.concatenate(
        [np.fromfile(data / "ludb" / "data" / f"{r}.dat", dtype="<i2").reshape(-1, 12)[:, 0] for r in range(1, 33)]
    ).astype(np.float64)
    mitdb = np.load(data / "mitdb-tpcp" / "100.npz")["ecg"].astype(np.float64)[: 360 * 330]
    recordings = {500: ludb, 360: mitdb, 300: sps.resample_poly(mitdb, 5, 6), 250: sps.resample_poly(mitdb, 25, 36)}
    raw = {fs: x[: 32 * round(10 * fs)].reshape(32, -1) for fs, x in recordings.items()}

    rows, results = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes.split(","):
            encoder, weights = encoder_for(size)
            for fs in (None, 500, 360, 300, 250):
                if fs in (300, 360, 500) and size != "small":
                    continue
                path = clef.export_onnx(encoder, Path(tmp) / f"{size}-{fs}.onnx", fs=fs)
                session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                row: dict[str, object] = {
                    "size": size,
                    "weights": weights,
                    "graph": "windows" if fs is None else f"raw {fs} Hz",
                    "file_mb": path.stat().st_size / 1e6,
                }
                if fs is None:
                    windows = clef.preprocess(recordings[360], 360)[:32]
                    feed = {"windows": windows[:, None, :]}
                    with torch.inference_mode():
                        expected = encoder(torch.from_numpy(windows)[:, None]).numpy()
                    torch_run = lambda: encoder(torch.from_numpy(windows)[:, None])  # noqa: E731  (a timing thunk, rebound for each graph)
                else:
                    feed = {"raw": raw[fs].astype(np.float32)}
                    expected = np.stack([clef.embed(w, fs, model=encoder) for w in raw[fs]])
                    torch_run = lambda fs=fs: clef.embed(raw[fs], fs, model=encoder)  # noqa: E731  (a timing thunk, rebound for each graph)
                got = session.run(["embedding"], feed)[0]
                row["min_cosine"] = float(row_cosines(got, expected).min())
                if fs in (None, 250):
                    with torch.inference_mode():
                        row["onnxruntime_s"] = median_seconds(lambda: session.run(["embedding"], feed))
                        row["torch_s"] = median_seconds(torch_run)
                    row["speedup"] = row["torch_s"] / row["onnxruntime_s"]
                results.append(row)
                rows.append(
                    (
                        size,
                        row["graph"],
                        f"{row['file_mb']:.1f}",
                        f"{row['min_cosine']:.6f}",
                        f"{32 / row['onnxruntime_s']:.0f}" if "onnxruntime_s" in row else "-",
                        f"{32 / row['torch_s']:.0f}" if "torch_s" in row else "-",
                        f"{row['speedup']:.2f}x" if "speedup" in row else "-",
                    )
                )
                print(f"{size} {row['graph']} done", file=sys.stderr, flush=True)
    print(
        f"\n{machine().get('cpu')}, torch {torch.__version__}, onnxruntime {ort.__version__}, {torch.get_num_threads()} threads\n"
    )
    print_table(
        ("size", "graph", "file MB", "min cosine vs clef", "ORT windows/s", "torch windows/s", "ORT / torch"), rows
    )
    write_json("bench_onnx", {"results": results}, args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
