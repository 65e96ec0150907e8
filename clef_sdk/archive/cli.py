"""``clef embed-archive``: the command line of [`clef_sdk.embed_archive`][clef_sdk.embed_archive] and its ``--status`` view."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_archive_command"]


def _cmd(args: argparse.Namespace) -> int:
    from .status import archive_status, format_status

    if args.status:
        print(format_status(archive_status(args.output)))
        return 0
    if args.source is None:
        raise ValueError("pass SRC (a folder of WFDB records or a manifest .csv), or --status to view a job")
    from pathlib import Path

    from .runner import embed_archive

    source: object = args.source
    if (Path(args.source) / "store.json").is_file():  # a prepared pretraining store (needs clef-sdk[train])
        from ..train.archive_source import StoreSource

        source = StoreSource(args.source)
    run = embed_archive(
        source,
        args.output,
        model=args.model,
        leads=args.lead,
        pooling=args.pooling,
        per_window=args.per_window,
        quality=args.quality,
        dtype="float16" if args.float16 else "float32",
        format=args.format,
        shard_size=args.shard_size,
        workers=args.workers,
        devices=args.devices.split(",") if args.devices else None,
        rank=args.rank,
        world_size=args.world_size,
        batch_size=args.batch_size,
        precision=args.precision,
        backend=args.backend,
        progress=False if args.quiet else None,
    )
    print(
        f"rank {run.rank}/{run.world_size}: {len(run.computed)} parts computed, {len(run.already_done)} already there; "
        f"{run.n_rows} rows, {run.n_skipped} record-leads skipped; {run.seconds:.1f} s"
    )
    print(f"job complete: {run.output}" if run.complete else "job not complete yet: other ranks' parts are missing")
    return 0


def add_archive_command(commands: Any) -> None:
    """Add ``embed-archive`` to the ``clef`` parser's subparsers."""
    cmd = commands.add_parser(
        "embed-archive",
        help="embed a whole archive into a partitioned Parquet table (resumable; many cores, GPUs, nodes)",
        description="Embed every record and lead of SRC into OUT/part-NNNNNN.parquet. Rerun the same command to "
        "resume; ranks come from torchrun or SLURM variables (or --rank/--world-size).",
    )
    cmd.add_argument(
        "source",
        nargs="?",
        metavar="SRC",
        help="a folder of WFDB records (any layout), a manifest CSV or a prepared pretraining store",
    )
    cmd.add_argument("-o", "--output", required=True, help="output folder (new, or this job's to resume)")
    cmd.add_argument("--model", default="medium", help="name, weights path or hf-hub: id (default: medium)")
    cmd.add_argument("--lead", action="append", help="lead name (repeat; default: the 12 standard leads)")
    cmd.add_argument("--pooling", choices=["mean", "max"], default="mean")
    cmd.add_argument("--per-window", action="store_true", help="one row per 10 s window")
    cmd.add_argument("--quality", choices=["drop"], help="pool only windows of usable signal quality")
    cmd.add_argument("--float16", action="store_true", help="store embeddings as float16")
    cmd.add_argument("--format", choices=["parquet", "npy"], default="parquet", help="npy: no pyarrow needed")
    cmd.add_argument("--shard-size", type=int, default=1000, help="records per output part (default 1000)")
    cmd.add_argument("--workers", type=int, default=0, help="reader processes (default 0: read in this process)")
    cmd.add_argument("--devices", help="comma-separated devices, one process each (e.g. cuda:0,cuda:1)")
    cmd.add_argument("--rank", type=int, help="this run's rank (default: from torchrun/SLURM, else 0)")
    cmd.add_argument("--world-size", type=int, help="number of ranks (default: from torchrun/SLURM, else 1)")
    cmd.add_argument("--batch-size", type=int, help="windows per forward pass")
    cmd.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    cmd.add_argument(
        "--backend", choices=["auto", "torch", "onnxruntime", "openvino"], default="auto", help="as clef embed's"
    )
    cmd.add_argument("--status", action="store_true", help="show the state of the job in OUT and exit")
    cmd.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    cmd.set_defaults(handler=_cmd)
