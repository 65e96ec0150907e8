"""clef-sdk quickstart: CLEF embeddings of real single-lead ECG at their native sampling rates.

Uses the two real recordings bundled with the package (``clef.datasets``: 60 s of MIT-BIH record 100 at 360 Hz,
LUDB record 1 lead I at 500 Hz; ODC-By 1.0, attribution in ``clef.datasets``) and the named small model, which
is downloaded once and cached. Where the weights cannot be downloaded (no network), it says so in one line and
uses a local checkpoint instead: ``--model PATH`` (as in ``clef embed``), else the conformance checkpoint of the shared fixtures.

    python examples/quickstart.py                                   # bundled ECG, CLEF-small
    python examples/quickstart.py --model medium                    # another named model
    python examples/quickstart.py --model clef_small.ckpt --data ../shared/data   # + 30 min MIT-BIH from shared/

With the small model the whole script takes a few seconds on a laptop CPU.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

import clef_sdk as clef

REPO = Path(__file__).resolve().parents[1]


def local_checkpoint() -> Path | None:
    """The shared fixtures' small checkpoint, when they are around (a clone next to ../shared, or $CLEF_SDK_SHARED)."""
    shared = Path(os.environ.get("CLEF_SDK_SHARED") or REPO.parent / "shared")
    checkpoint = shared / "conformance" / "clef_small_lightning.ckpt"
    return checkpoint if checkpoint.is_file() else None


def load_encoder(weights: str, device: str) -> clef.ClefEncoder | None:
    """The requested weights, or a local checkpoint with a one-line explanation, or None (with the reason)."""
    try:
        return clef.load(weights, device=device)
    except clef.WeightsNotAvailableError as exc:
        reason = str(exc).strip().splitlines()[0].split(";")[0].rstrip(".")
        fallback = local_checkpoint()
        if fallback is None:
            print(
                f"The {weights!r} weights could not be downloaded ({reason}). Nothing to embed with: connect to the "
                f"network once (`clef download {weights}`), or pass --model PATH to a .ckpt or .safetensors file."
            )
            return None
        print(
            f"The {weights!r} weights could not be downloaded ({reason}); using the local checkpoint {fallback} "
            "instead (CLEF-small trained for 2 steps: the pipeline is real, its embeddings carry no meaning)."
        )
        return clef.load(fallback, device=device)


def timed(label: str, function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    elapsed = time.perf_counter() - start
    shape = result.shape if isinstance(result, np.ndarray) else f"list of {len(result)}"
    print(f"  {label:<52} -> {str(shape):<12} {elapsed * 1000:8.1f} ms")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        "--weights",  # the earlier name
        dest="model",
        default="small",
        help="model name (small/medium/large) or weights path (.ckpt, .safetensors)",
    )
    parser.add_argument(
        "--data", type=Path, help="optional: a shared data folder, to add 30 min of MIT-BIH 100 (mitdb-tpcp/100.npz)"
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (default: cpu)")
    args = parser.parse_args(argv)

    # 1. The recordings: real ECG at its own sampling rate, in mV (any unit works: each window is z-scored).
    mitdb, mitdb_fs, mitdb_info = clef.datasets.load_example("mitdb-100")
    ludb, ludb_fs, ludb_info = clef.datasets.load_example("ludb-1")
    print("recordings (bundled with clef-sdk; cite them as clef.datasets says):")
    print(
        f"  {mitdb_info['description']}: {len(mitdb)} samples at {mitdb_fs:g} Hz, {len(mitdb_info['beats']['sample'])} annotated beats"
    )
    print(f"  {ludb_info['description']}: {len(ludb)} samples at {ludb_fs:g} Hz, {ludb_info['rhythm'].lower()}")
    recordings = [("MIT-BIH 100", mitdb, mitdb_fs), ("LUDB 1", ludb, ludb_fs)]
    if args.data is not None:
        long_record = np.load(args.data / "mitdb-tpcp" / "100.npz")["ecg"]
        recordings.append(("MIT-BIH 100, 30 min", long_record, 360.0))
        print(f"  MIT-BIH 100 from {args.data}: {len(long_record)} samples at 360 Hz")

    # 2. The encoder: a plain torch.nn.Module in eval mode (clef.embed also takes a name or path directly).
    start = time.perf_counter()
    encoder = load_encoder(args.model, args.device)
    if encoder is None:
        return 0
    print(
        f"\nencoder: {encoder.name} (CLEF-{encoder.architecture.name}, embed_dim {encoder.embed_dim}) "
        f"loaded in {(time.perf_counter() - start) * 1000:.0f} ms"
    )

    # 3. Preprocessing alone (what the model sees): 10 s windows at 500 Hz, band-passed and z-scored.
    print("\npreprocessing:")
    timed("clef.preprocess(mitdb, fs=360)", clef.preprocess, mitdb, mitdb_fs)

    # 4. Embeddings.
    print("\nembeddings:")
    pooled = timed("clef.embed(mitdb, fs=360)   [mean of windows]", clef.embed, mitdb, mitdb_fs, model=encoder)
    per_window = timed(
        "clef.embed(mitdb, fs=360, pooling=None)", clef.embed, mitdb, mitdb_fs, model=encoder, pooling=None
    )
    timed("clef.embed(ludb, fs=500)", clef.embed, ludb, ludb_fs, model=encoder)
    together = timed(
        "clef.embed([...], fs=[...])   [every recording]",
        clef.embed,
        [signal for _, signal, _ in recordings],
        [fs for _, _, fs in recordings],
        model=encoder,
    )
    timed(
        "clef.embed(mitdb, fs=360, stride_seconds=5)",
        clef.embed,
        mitdb,
        mitdb_fs,
        model=encoder,
        stride_seconds=5,
        pooling=None,
    )

    # 5. What came out: float32 numpy arrays; a recording's embedding does not depend on its batch.
    assert pooled.dtype == np.float32 and per_window.shape == (6, encoder.embed_dim)
    drift = np.abs(together[0] - pooled).max() / np.abs(pooled).max()
    print(f"\nbatched vs alone (MIT-BIH): max relative difference {drift:.1e}")
    unit = together / np.linalg.norm(together, axis=1, keepdims=True)
    print("cosine similarity of the recordings' embeddings:")
    for (name, _, _), row in zip(recordings, unit @ unit.T):
        print(f"  {name:<20}" + "".join(f"{value:8.3f}" for value in row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
