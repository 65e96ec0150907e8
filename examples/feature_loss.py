"""CLEF as a training signal: denoising real ECG with and without ``clef.FeatureLoss``, on the CPU.

MIT-BIH 10 s windows (lead MLII, 360 Hz) get noise added (the neurokit2-made muscle / electrode-motion / baseline
mixture of ``clef_sdk.train.views.NoiseBank.synthetic``, resampled to 360 Hz, 0.3 mV RMS). A small residual 1-D
CNN learns to remove it on 8 records and is tested on the other 4, trained twice with the same seed: with the MSE
alone, and with MSE + ``weight`` x FeatureLoss (cosine distance of CLEF embeddings, frozen encoder). The table
gives the test SNR improvement, the MSE, and how close the denoised windows' CLEF embeddings are to the clean
ones'.

    python examples/feature_loss.py                              # 300 steps per run, a few minutes
    python examples/feature_loss.py --model small --steps 1000   # released weights (downloaded once)
    python examples/feature_loss.py --quick                      # 2 steps, 10 windows of 3 records: a smoke test

Data: ``mitdb-tpcp/`` (MIT-BIH Arrhythmia Database, ODC-By 1.0). ``--model`` defaults to the shared conformance
checkpoint when present (CLEF-small after 2 training steps: the machinery is real, its features are not CLEF's).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import signal as sps
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _datasets import MITDB_RECORDS, add_quick_argument, default_data_dir, load_mitdb_windows, local_checkpoint

import clef_sdk as clef

FS = 360
STEPS, BATCH_SIZE = 300, 16
# --quick: 2 steps of 4 windows per run, on the first 10 windows of 2 training records and 1 test record
QUICK_STEPS, QUICK_BATCH_SIZE, QUICK_WINDOWS = 2, 4, 10


class Denoiser(nn.Module):
    """A small residual 1-D CNN: clean estimate = noisy - predicted noise."""

    def __init__(self, width: int = 24):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(1, width, 15, padding=7),
            nn.ReLU(),
            nn.Conv1d(width, width, 15, padding=7),
            nn.ReLU(),
            nn.Conv1d(width, width, 15, padding=7),
            nn.ReLU(),
            nn.Conv1d(width, 1, 15, padding=7),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.net(x[:, None])[:, 0]


def noise_like(shape: tuple[int, int], rms: float, seed: int) -> torch.Tensor:
    from clef_sdk.train.views import NoiseBank

    bank = NoiseBank.synthetic(seconds=120, channels=2, seed=seed).noise[3]  # the mixture, 500 Hz
    at_fs = sps.resample_poly(bank.numpy().astype(np.float64), 18, 25, axis=-1)  # 500 -> 360 Hz
    rng = np.random.default_rng(seed)
    segments = []
    for _ in range(shape[0]):
        channel = rng.integers(at_fs.shape[0])
        start = rng.integers(at_fs.shape[1] - shape[1])
        segment = at_fs[channel, start : start + shape[1]]
        segments.append(rms * segment / segment.std())
    return torch.from_numpy(np.stack(segments).astype(np.float32))


def snr_db(clean: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10((clean**2).mean(dim=1) / ((clean - estimate) ** 2).mean(dim=1))


def train(train_clean, train_noisy, feature_loss, weight, steps, batch_size, seed) -> tuple[Denoiser, float]:
    torch.manual_seed(seed)
    model = Denoiser()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    for _ in range(steps):
        rows = torch.randint(len(train_clean), (batch_size,), generator=generator)
        estimate = model(train_noisy[rows])
        loss = nn.functional.mse_loss(estimate, train_clean[rows])
        if weight > 0:
            loss = loss + weight * feature_loss(estimate, train_clean[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=local_checkpoint("small"), help="CLEF weights for the feature loss")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--steps", type=int, default=None, help=f"per run (default: {STEPS}; {QUICK_STEPS} with --quick)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help=f"default: {BATCH_SIZE}; {QUICK_BATCH_SIZE} with --quick"
    )
    parser.add_argument("--weight", type=float, default=1.0, help="weight of the feature loss next to the MSE")
    parser.add_argument("--noise-rms", type=float, default=0.3, help="mV")
    parser.add_argument("--seed", type=int, default=0)
    add_quick_argument(
        parser, f"{QUICK_STEPS} steps of {QUICK_BATCH_SIZE} per run, {QUICK_WINDOWS} windows of each of 3 records"
    )
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = QUICK_STEPS if args.quick else STEPS
    if args.batch_size is None:
        args.batch_size = QUICK_BATCH_SIZE if args.quick else BATCH_SIZE
    train_records, test_records = MITDB_RECORDS[:8], MITDB_RECORDS[8:]
    if args.quick:
        print("quick mode: a small slice of the data, to check that the example runs; its numbers mean nothing")
        train_records, test_records = train_records[:2], test_records[:1]

    data = load_mitdb_windows(
        args.data_dir or default_data_dir(),
        records=train_records + test_records,
        windows_per_record=QUICK_WINDOWS if args.quick else None,
    )
    train_rows = np.isin(data["records"], train_records)
    clean = torch.from_numpy(data["signals"])
    noisy = clean + noise_like(tuple(clean.shape), args.noise_rms, args.seed)
    print(
        f"MIT-BIH: {int(train_rows.sum())} training windows (records {', '.join(train_records)}), "
        f"{int((~train_rows).sum())} test windows (records {', '.join(test_records)})"
    )
    feature_loss = clef.FeatureLoss(args.model, fs=FS, distance="cosine")
    encoder = feature_loss.encoder

    results = {}
    test_clean, test_noisy = clean[~train_rows], noisy[~train_rows]
    with torch.inference_mode():
        clean_embeddings = encoder(clef.Preprocessor(FS)(test_clean).reshape(-1, 1, 5000))
    for name, weight in (("MSE", 0.0), (f"MSE + {args.weight:g} x FeatureLoss", args.weight)):
        model, seconds = train(
            clean[train_rows], noisy[train_rows], feature_loss, weight, args.steps, args.batch_size, args.seed
        )
        with torch.inference_mode():
            estimate = torch.cat([model(test_noisy[i : i + 64]) for i in range(0, len(test_noisy), 64)])
            embeddings = encoder(clef.Preprocessor(FS)(estimate).reshape(-1, 1, 5000))
        results[name] = {
            "snr_gain_db": float((snr_db(test_clean, estimate) - snr_db(test_clean, test_noisy)).mean()),
            "mse": float(nn.functional.mse_loss(estimate, test_clean)),
            "clef_cosine": float(nn.functional.cosine_similarity(embeddings, clean_embeddings, dim=1).mean()),
            "train_seconds": seconds,
        }
    with torch.inference_mode():
        noisy_embeddings = encoder(clef.Preprocessor(FS)(test_noisy).reshape(-1, 1, 5000))
    baseline = float(nn.functional.cosine_similarity(noisy_embeddings, clean_embeddings, dim=1).mean())
    print(f"\ntest windows, {args.steps} steps of {args.batch_size}; noisy input: CLEF cosine to clean {baseline:.4f}")
    print(f"{'training loss':<32} {'SNR gain dB':>12} {'MSE':>10} {'CLEF cosine':>12} {'train s':>8}")
    for name, r in results.items():
        print(
            f"{name:<32} {r['snr_gain_db']:>12.2f} {r['mse']:>10.5f} {r['clef_cosine']:>12.4f} {r['train_seconds']:>8.1f}"
        )
    return results


if __name__ == "__main__":
    main()
