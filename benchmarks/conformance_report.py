"""Print clef-sdk's measured errors against the reference outputs in ../shared/conformance (with tolerances).

.venv/bin/python benchmarks/conformance_report.py [--shared DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

import clef_sdk as clef
from clef_sdk.weights.format import encoder_from_weights, extract_backbone, read_checkpoint

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from conformance_helpers import rule_state_dict  # the conformance README's weight rule


def embedding_errors(expected: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """(worst 1 - cosine, worst max|diff| / max|expected|) over rows."""
    cosine = np.sum(expected * actual, axis=1) / (np.linalg.norm(expected, axis=1) * np.linalg.norm(actual, axis=1))
    relative = np.abs(expected - actual).max(axis=1) / np.abs(expected).max(axis=1)
    return float(1 - cosine.min()), float(relative.max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(os.environ.get("CLEF_SDK_SHARED") or REPO.parent / "shared")
    )
    folder = parser.parse_args().shared / "conformance"
    windows = torch.from_numpy(np.load(folder / "windows.npy")).unsqueeze(1)
    cases = {
        "small (released-structure ckpt)": (
            read_checkpoint(folder / "clef_small_lightning.ckpt"),
            8,
            np.load(folder / "expected_small_lightning.npy"),
        ),
        "medium (rule weights)": (rule_state_dict(folder, "medium"), 4, np.load(folder / "expected_medium_rule.npy")),
    }
    print("embeddings: tolerance per row cosine >= 0.99999 and max|diff| <= 1e-3 * max|expected|")
    print(f"{'model':<34} {'dtype':<8} {'1 - cosine':>12} {'rel. max diff':>14}")
    for label, (state_dict, rows, expected) in cases.items():
        encoder = encoder_from_weights(extract_backbone(state_dict))
        for dtype in (torch.float32, torch.float64):
            with torch.inference_mode():
                actual = encoder.to(dtype)(windows[:rows].to(dtype)).double().numpy()
            cos_err, rel_err = embedding_errors(expected, actual)
            print(f"{label:<34} {str(dtype).removeprefix('torch.'):<8} {cos_err:>12.1e} {rel_err:>14.1e}")

    reference = np.load(folder / "preprocess.npz")
    exact = np.load(folder / "preprocess_exact.npz")["expected_500hz_exact"]
    ours_500 = np.stack([clef.preprocess(row, 500)[0] for row in reference["raw_500hz"]])
    print("\npreprocessing")
    print(
        f"  500 Hz, 4 LUDB records: max|diff| {np.abs(ours_500 - exact).max():.1e} against the 50-digit windows "
        f"(<= 2e-6), {np.abs(ours_500 - reference['expected_500hz']).max():.1e} against the reference's float64 "
        "windows (<= 1e-2)"
    )
    for label, (state_dict, _, _) in cases.items():
        encoder = encoder_from_weights(extract_backbone(state_dict))
        with torch.inference_mode():
            a, b = (
                encoder(torch.from_numpy(w).float().unsqueeze(1)).double().numpy()
                for w in (ours_500, reference["expected_500hz"])
            )
        cos_err, _ = embedding_errors(b, a)
        print(f"  embeddings of our vs the reference's float64 windows, {label}: 1 - cosine {cos_err:.1e} (<= 1e-5)")
    ours_360 = clef.preprocess(reference["raw_360hz"], 360)
    expected_360 = reference["expected_360hz_fft"]
    pearson = min(np.corrcoef(a, b)[0, 1] for a, b in zip(ours_360, expected_360))
    median = max(np.median(np.abs(a - b)) for a, b in zip(ours_360, expected_360))
    print(
        f"  360 Hz, MIT-BIH 100 (6 windows): min Pearson {pearson:.5f} (>= 0.999), max median|diff| {median:.4f} (<= 0.005)"
    )

    print_loss_errors(folder)


def print_loss_errors(folder: Path) -> None:
    """Pretraining losses against loss_cases.json (tolerance 1e-4 relative), worst case over the four batches."""
    import json
    import math

    from clef_sdk.train import losses

    cases = json.loads((folder / "loss_cases.json").read_text())["cases"]
    terms = {
        "weighted_nce": lambda z1, z2, r, m, t: losses.weighted_info_nce(z1, z2, r, temperature=t),
        "alignment": lambda z1, z2, r, m, t: losses.similarity_alignment(z1, z2, r),
        "clef_loss": lambda z1, z2, r, m, t: losses.clef_loss(z1, z2, r, temperature=t),
        "info_nce": lambda z1, z2, r, m, t: losses.info_nce(z1, z2, temperature=t),
        "weighted_nce_masked": lambda z1, z2, r, m, t: losses.weighted_info_nce(z1, z2, r, m, temperature=t),
        "alignment_masked": lambda z1, z2, r, m, t: losses.similarity_alignment(z1, z2, r, m),
    }
    print("\npretraining losses (loss_cases.json, n = 4, 8, 32, 64): worst relative error, tolerance 1e-4")
    print(f"{'term':<22} {'float32':>10} {'float64':>10}")
    for name, term in terms.items():
        worst = []
        for dtype in (torch.float32, torch.float64):
            errors = []
            for case in cases:
                z = torch.tensor(case["z"], dtype=dtype)
                n = case["n"]
                risk = torch.tensor([math.nan if v is None else v for v in case["risk"]], dtype=dtype)
                missing = torch.tensor(case["missing_rate"], dtype=dtype)
                value = float(term(z[:n], z[n:], risk, missing, case["temperature"]))
                errors.append(abs(value - case[name]) / abs(case[name]))
            worst.append(max(errors))
        print(f"{name:<22} {worst[0]:>10.1e} {worst[1]:>10.1e}")


if __name__ == "__main__":
    main()
