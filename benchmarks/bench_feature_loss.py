"""Forward + backward time of clef.FeatureLoss on a batch of 32 ten-second windows of real ECG (MIT-BIH 100, 360 Hz).

    python benchmarks/bench_feature_loss.py [--sizes small,medium] [--repeats 5]

CLEF-small uses the conformance checkpoint, medium the conformance README's weight rule (speed does not depend on
the weight values). Prints the median over the repeats of: the preprocessing alone (forward + backward) and the
whole loss (both branches forward, prediction branch backward).
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
from conformance_helpers import rule_state_dict

sys.path.insert(0, str(REPO / "benchmarks"))
from _common import median_seconds


def median_ms(function, repeats: int) -> float:
    return 1000 * median_seconds(function, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--shared", type=Path, default=Path(os.environ.get("CLEF_SDK_SHARED") or REPO.parent / "shared")
    )
    parser.add_argument("--sizes", default="small,medium")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    ecg = np.load(args.shared / "data" / "mitdb-tpcp" / "100.npz")["ecg"][: 32 * 3600].reshape(32, 3600)
    target = torch.from_numpy(ecg.astype(np.float32))
    prediction = (target + 0.05 * torch.randn(target.shape, generator=torch.Generator().manual_seed(0))).requires_grad_(
        True
    )
    print(f"batch: 32 windows of 10 s at 360 Hz, float32, {torch.get_num_threads()} threads\n")
    print(f"{'what':<44} {'median ms':>10}")
    preprocessor = clef.Preprocessor(360)
    print(
        f"{'Preprocessor forward + backward':<44} {median_ms(lambda: preprocessor(prediction).sum().backward(), args.repeats):>10.1f}"
    )
    for size in args.sizes.split(","):
        state = (
            read_checkpoint(args.shared / "conformance" / "clef_small_lightning.ckpt")
            if size == "small"
            else rule_state_dict(args.shared / "conformance", size)
        )
        loss = clef.FeatureLoss(encoder_from_weights(extract_backbone(state)), fs=360)
        print(
            f"{f'FeatureLoss({size}) forward + backward':<44} {median_ms(lambda: loss(prediction, target).backward(), args.repeats):>10.1f}"
        )


if __name__ == "__main__":
    main()
