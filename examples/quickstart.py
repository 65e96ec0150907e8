"""clef-sdk quickstart: CLEF embeddings of real single-lead ECG at their native sampling rates.

Embeds three real recordings from the shared data folder (see each folder's README.md for source, license and
attribution):

- MIT-BIH Arrhythmia record 100, lead MLII, 360 Hz, 30 min (``mitdb-tpcp/100.npz``);
- LUDB record 1, lead I, 500 Hz, 10 s, read from its WFDB files (format 16: int16 ADC counts + gain);
- CPSC 2019 record 00014, single lead, 500 Hz, 10 s (``cpsc2019-sample/data/data_00014.mat``).

Run from the repository root::

    python examples/quickstart.py                                   # small conformance checkpoint if present
    python examples/quickstart.py --weights medium                  # a named model (downloaded once)
    python examples/quickstart.py --weights clef_small.ckpt --data /path/to/shared/data

With the small checkpoint the whole script takes a few seconds on a laptop CPU.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from pathlib import Path

import numpy as np
import scipy.io

import clef_sdk as clef

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    return Path(os.environ.get("CLEF_SDK_SHARED") or REPO.parent / "shared")


def default_weights() -> str:
    """The small conformance checkpoint when the shared fixtures are around, else the named small model."""
    checkpoint = shared_dir() / "conformance" / "clef_small_lightning.ckpt"
    return str(checkpoint) if checkpoint.is_file() else "small"


def read_ludb_lead(record: Path, lead: str = "i") -> tuple[np.ndarray, float]:
    """One lead of a LUDB record in mV and its sampling rate, with wfdb if installed, else from the raw files."""
    try:
        import wfdb
    except ImportError:
        wfdb = None
    if wfdb is not None:
        data = wfdb.rdrecord(str(record), channel_names=[lead])
        return data.p_signal[:, 0], float(data.fs)
    # WFDB format 16 by hand: little-endian int16, channels interleaved; "gain(baseline)/mV" in the header
    header = record.with_suffix(".hea").read_text().splitlines()
    _, n_leads, fs, _ = header[0].split()[:4]
    for index, line in enumerate(header[1 : 1 + int(n_leads)]):
        fields = line.split()
        if fields[-1] == lead:
            gain, baseline = re.fullmatch(r"([\d.]+)\((-?\d+)\)/mV", fields[2]).groups()
            counts = np.fromfile(record.with_suffix(".dat"), dtype="<i2").reshape(-1, int(n_leads))[:, index]
            return (counts - int(baseline)) / float(gain), float(fs)
    raise ValueError(f"lead {lead!r} not in {record}.hea")


def timed(label: str, function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    elapsed = time.perf_counter() - start
    shape = result.shape if isinstance(result, np.ndarray) else f"list of {len(result)}"
    print(f"  {label:<52} -> {str(shape):<12} {elapsed * 1000:8.1f} ms")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=default_weights(), help="model name (small/medium/large) or weights path (.ckpt, .safetensors)")
    parser.add_argument("--data", type=Path, default=shared_dir() / "data", help="shared data folder (default: $CLEF_SDK_SHARED/data or ../shared/data)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (default: cpu)")
    args = parser.parse_args(argv)

    # 1. The recordings: any unit, any rate; one lead each.
    mitdb = np.load(args.data / "mitdb-tpcp" / "100.npz")["ecg"]
    ludb, ludb_fs = read_ludb_lead(args.data / "ludb" / "data" / "1")
    cpsc = scipy.io.loadmat(args.data / "cpsc2019-sample" / "data" / "data_00014.mat")["ecg"].ravel()
    print("recordings:")
    print(f"  MIT-BIH 100  {mitdb.shape[0]:>7} samples at 360 Hz ({mitdb.shape[0] / 360 / 60:.0f} min)")
    print(f"  LUDB 1, I    {ludb.shape[0]:>7} samples at {ludb_fs:g} Hz ({ludb.shape[0] / ludb_fs:.0f} s)")
    print(f"  CPSC 00014   {cpsc.shape[0]:>7} samples at 500 Hz ({cpsc.shape[0] / 500:.0f} s)")

    # 2. The encoder: a plain torch.nn.Module in eval mode. clef.embed(..., model=...) would also accept the
    #    name or path directly and cache the loaded encoder.
    start = time.perf_counter()
    encoder = clef.load(args.weights, device=args.device)
    print(f"\nencoder: {encoder.name} (CLEF-{encoder.architecture.name}, embed_dim {encoder.embed_dim}) "
          f"loaded in {(time.perf_counter() - start) * 1000:.0f} ms")

    # 3. Preprocessing alone (what the model sees): 10 s windows at 500 Hz, band-passed and z-scored.
    print("\npreprocessing:")
    timed("clef.preprocess(mitdb, fs=360)", clef.preprocess, mitdb, 360)

    # 4. Embeddings.
    print("\nembeddings:")
    mitdb_embedding = timed("clef.embed(mitdb, fs=360)   [mean of windows]", clef.embed, mitdb, 360, model=encoder)
    per_window = timed("clef.embed(mitdb, fs=360, pooling=None)", clef.embed, mitdb, 360, model=encoder, pooling=None)
    timed("clef.embed(ludb, fs=500)", clef.embed, ludb, ludb_fs, model=encoder)
    timed("clef.embed(cpsc, fs=500)", clef.embed, cpsc, 500, model=encoder)
    together = timed(
        "clef.embed([mitdb, ludb, cpsc], fs=[360, 500, 500])", clef.embed, [mitdb, ludb, cpsc], [360, ludb_fs, 500], model=encoder
    )
    timed("clef.embed(mitdb[:5 min], fs=360, stride_seconds=5)", clef.embed, mitdb[: 360 * 300], 360, model=encoder, stride_seconds=5, pooling=None)

    # 5. What came out: float32 numpy arrays; a recording's embedding does not depend on its batch.
    assert mitdb_embedding.dtype == np.float32 and per_window.shape == (180, encoder.embed_dim)
    drift = np.abs(together[0] - mitdb_embedding).max() / np.abs(mitdb_embedding).max()
    print(f"\nbatched vs alone (MIT-BIH): max relative difference {drift:.1e}")
    unit = together / np.linalg.norm(together, axis=1, keepdims=True)
    print("cosine similarity of the three recordings' embeddings:")
    for name, row in zip(("MIT-BIH", "LUDB", "CPSC"), unit @ unit.T):
        print(f"  {name:<8}" + "".join(f"{value:8.3f}" for value in row))
    distances = np.linalg.norm(per_window - per_window.mean(0), axis=1)
    print(f"MIT-BIH per-window embeddings: distance to the record's mean, min {distances.min():.3f} / max {distances.max():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
