"""``clef benchmark`` on the real data in ``../shared/data``: MIT-BIH PVC windows, LUDB AF, sex and age, with each
model beside a random-init network of its size.

The dataset readers read the folders as they are (``mitdb-tpcp/``: tpcp's NumPy copy of 12 MIT-BIH records;
``ludb/``: PhysioNet's LUDB), with their splits: MIT-BIH's inter-patient DS1/DS2 split (de Chazal 2004), LUDB's
pinned 60/20/20 split by subject, stratified by rhythm. The probe protocol chooses its regularisation on the
validation split and is scored once on the test split; intervals are 95% bootstrap by patient. Results, cached
embeddings and per-cell files go to ``--output``: run it again (or with one more ``--model``) and only what is
missing is computed.

    python examples/benchmark_shared.py                                   # the conformance checkpoint (small)
    python examples/benchmark_shared.py --model medium --model large      # released weights (downloaded once)
    python examples/benchmark_shared.py --random-medium --finetune        # + random-init medium, + fine-tuning
    python examples/benchmark_shared.py --quick                           # LUDB AF only: a smoke test

The same run on the command line:

    clef benchmark --model ../shared/conformance/clef_small_lightning.ckpt --task mitdb:pvc --task ludb:af \\
        --task ludb:sex --task ludb:age --root mitdb=../shared/data/mitdb-tpcp --root ludb=../shared/data/ludb \\
        -o benchmark-shared
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _datasets import QUICK_BOOTSTRAP, add_quick_argument, default_data_dir, local_checkpoint, quick_dir

from clef_sdk.benchmark import run_benchmark

TASKS = ("mitdb:pvc", "ludb:af", "ludb:sex", "ludb:age")
QUICK_TASKS = ("ludb:af",)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        action="append",
        help="name, weights path or hf-hub: id (repeat; default: the shared conformance checkpoint, else small)",
    )
    parser.add_argument("--random-medium", action="store_true", help="add a random-init medium network")
    parser.add_argument("--finetune", action="store_true", help="add the fine-tuning protocol (needs [train])")
    parser.add_argument("--epochs", type=int, default=20, help="the most fine-tuning epochs")
    parser.add_argument("--data-dir", type=Path, default=None, help="folder holding mitdb-tpcp/ and ludb/")
    parser.add_argument("--output", type=Path, default=None, help="results folder (default: ./benchmark-shared)")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when available)")
    add_quick_argument(parser, "LUDB AF only, 100 bootstrap resamples")
    args = parser.parse_args(argv)

    data = Path(args.data_dir or default_data_dir())
    models = args.model or [local_checkpoint("small")]
    if args.random_medium:
        models.append("random-init:medium")
    protocols: list[object] = ["probe"]
    if args.finetune:
        from clef_sdk.train import FineTuneProtocol

        protocols.append(FineTuneProtocol(max_epochs=args.epochs))
    output = args.output or (quick_dir() / "benchmark-shared" if args.quick else Path("benchmark-shared"))
    if args.quick:
        print("quick mode: LUDB AF only, to check that the example runs; its numbers mean little")
    started = time.perf_counter()
    results = run_benchmark(
        models,
        QUICK_TASKS if args.quick else TASKS,
        {"mitdb": data / "mitdb-tpcp", "ludb": data / "ludb"},
        output=output,
        protocols=protocols,  # type: ignore[arg-type]
        n_bootstrap=QUICK_BOOTSTRAP if args.quick else 1000,
        device=args.device,
    )
    print(results.markdown())
    print(f"\nwall time: {time.perf_counter() - started:.0f} s; results in {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
