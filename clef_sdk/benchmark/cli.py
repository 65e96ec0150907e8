"""``clef benchmark``: the command line of [`clef_sdk.benchmark.run_benchmark`][clef_sdk.benchmark.run_benchmark]."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_benchmark_command"]


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    pairs = {}
    for value in values or []:
        name, sep, setting = value.partition("=")
        if not sep or not name.strip() or not setting.strip():
            raise ValueError(f"--{what} takes NAME=VALUE (e.g. --{what} ptbxl=/data/ptb-xl), got {value!r}")
        pairs[name.strip().lower()] = setting.strip()
    return pairs


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from .runner import run_benchmark

    protocols: list[Any] = []
    for name in dict.fromkeys(args.protocol or ["probe"]):
        if name == "finetune":
            from ..train.benchmark import FineTuneProtocol  # needs clef-sdk[train]; the core never imports it

            protocols.append(FineTuneProtocol(args.finetune_protocol, max_epochs=args.epochs, seed=args.seed))
        else:
            protocols.append(name)
    lead: str | int | None = int(args.lead) if args.lead is not None and args.lead.isdigit() else args.lead
    results = run_benchmark(
        args.model,
        args.task,
        _pairs(args.root, "root"),
        output=args.output,
        lead=lead,
        fs={name: float(rate) for name, rate in _pairs(args.fs, "fs").items()},
        protocols=protocols,
        random_baseline=not args.no_random_baseline,
        seed=args.seed,
        n_bootstrap=args.bootstrap,
        batch_size=args.batch_size,
        device=args.device,
        progress=False if args.quiet else None,
    )
    print(results.markdown())
    for kind, path in results.files.items():
        print(f"{kind}: {path}")
    return 0


def add_benchmark_command(commands: Any) -> None:
    """Add ``benchmark`` to the ``clef`` parser's subparsers."""
    bench = commands.add_parser(
        "benchmark",
        help="CLEF models on standard tasks with official splits, beside a random-init baseline",
        description="Benchmark models on dataset tasks: probe (and fine-tuning) on the training split, model "
        "selection on validation, metrics with patient-bootstrap intervals on the test split.",
    )
    bench.add_argument("--model", action="append", required=True, help="name, weights path or hf-hub: id (repeat)")
    bench.add_argument("--task", action="append", required=True, help="DATASET:TASK, e.g. ptbxl:superdiagnostic")
    bench.add_argument("--root", action="append", help="DATASET=DIR: the local copy of each dataset (repeat)")
    bench.add_argument("--fs", action="append", help="DATASET=HZ for datasets published at several rates")
    bench.add_argument("--lead", help="lead name or 0-based index for every task (default: each dataset's)")
    bench.add_argument("--protocol", action="append", choices=["probe", "finetune"], help="repeat for both")
    bench.add_argument("--finetune-protocol", default="full", help="the finetune preset (full, upstream, ...)")
    bench.add_argument("--epochs", type=int, help="the most fine-tuning epochs (default: the preset's)")
    bench.add_argument("--no-random-baseline", action="store_true", help="leave out the random-init rows")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples per interval")
    bench.add_argument("--batch-size", type=int, help="windows per forward pass when embedding")
    bench.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available)")
    bench.add_argument("-o", "--output", required=True, help="results folder (an interrupted run there resumes)")
    bench.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    bench.set_defaults(handler=_cmd_benchmark)
