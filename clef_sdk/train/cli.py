"""``clef train prepare | fit | export``: registered into the ``clef`` command; Lightning is imported only when a
subcommand runs (a missing ``train`` extra gives a one-line error naming the install command)."""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_train_commands"]


def _prepare(args: argparse.Namespace) -> int:
    from .data import prepare

    store = prepare(
        args.source,
        args.output,
        metadata=args.metadata,
        leads=args.leads,
        workers=args.workers,
        dtype=args.dtype,
        windows=args.windows,
        region=args.region,
        age_policy=args.age_policy,
        progress=not args.no_progress,
    )
    print(f"{store.path}: {store.describe()}; {store.info['n_skipped']} record(s) skipped (see skipped.csv)")
    return 0


def _fit(args: argparse.Namespace) -> int:
    from .trainer import fit

    devices: Any = int(args.devices) if str(args.devices).isdigit() else args.devices
    run = fit(
        args.data,
        size=args.size,
        method=args.method,
        batch_size=args.batch_size,
        max_epochs=args.max_epochs,
        max_steps=args.max_steps,
        lr=args.lr,
        weight_decay=args.weight_decay,
        temperature=args.temperature,
        use_missing_rate=args.use_missing_rate,
        devices=devices,
        num_nodes=args.num_nodes,
        accelerator=args.accelerator,
        precision=args.precision,
        output=args.output,
        resume=args.resume,
        checkpoint_every=args.checkpoint_every,
        keep_checkpoints=args.keep_checkpoints,
        num_workers=args.workers,
        seed=args.seed,
        noise_dir=args.noise_dir,
        progress=not args.no_progress,
        log_every=args.log_every,
    )
    if run.module.global_rank == 0:
        print(f"final checkpoint: {run.checkpoint}\nexport it: clef train export {run.checkpoint} -o model.safetensors")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_checkpoint

    digest = export_checkpoint(args.checkpoint, args.output)
    print(json.dumps({"output": args.output, "sha256": digest}))
    return 0


def add_train_commands(commands: Any) -> None:
    """Add ``train`` with its subcommands to the ``clef`` parser's subparsers."""
    from .objectives import METHODS

    train = commands.add_parser(
        "train",
        help="pretrain CLEF on your own ECG (needs clef-sdk[train])",
        description="Pretrain CLEF: prepare a store, fit, export.",
    )
    steps = train.add_subparsers(dest="train_command", required=True, metavar="STEP")

    prepare = steps.add_parser("prepare", help="WFDB records -> a store of band-passed 10 s windows")
    prepare.add_argument("source", help="folder searched recursively for WFDB records (.hea with .dat or .mat)")
    prepare.add_argument("-o", "--output", required=True, help="store folder (an unfinished job there is resumed)")
    prepare.add_argument("--metadata", help="CSV: path, score2_risk[, rate_meta, ...] (default: age/sex from headers)")
    prepare.add_argument("--leads", help="comma-separated lead names (default: the 12 standard leads)")
    prepare.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    prepare.add_argument("--dtype", choices=["float16", "float32"], default="float16")
    prepare.add_argument("--windows", choices=["first", "all"], default="first", help="10 s windows per record")
    prepare.add_argument("--region", default="moderate", help="ESC risk region for SCORE2 from headers")
    prepare.add_argument(
        "--age-policy",
        choices=["clip", "nan", "extrapolate"],
        default="clip",
        help="ages outside 40-89 for SCORE2 from headers (default: clip)",
    )
    prepare.add_argument("--no-progress", action="store_true")
    prepare.set_defaults(handler=_prepare)

    fit = steps.add_parser("fit", help="pretrain an encoder on a store (Lightning; DDP over devices and nodes)")
    fit.add_argument("--data", required=True, help="store folder from `clef train prepare`")
    fit.add_argument("--size", choices=["small", "medium", "large"], default="small")
    fit.add_argument("--method", choices=METHODS, default="clef")
    fit.add_argument("--batch-size", type=int, default=64, help="subjects per process and step (default: 64)")
    length = fit.add_mutually_exclusive_group()
    length.add_argument("--max-epochs", type=int, help="default 100 unless --max-steps is given")
    length.add_argument("--max-steps", type=int)
    fit.add_argument("--lr", type=float, default=1e-4)
    fit.add_argument("--weight-decay", type=float, default=5e-4)
    fit.add_argument("--temperature", type=float, default=0.07)
    fit.add_argument("--use-missing-rate", action="store_true", help="CLEF's missing-metadata mask")
    fit.add_argument("--devices", default="auto", help="devices per node (a number, or auto)")
    fit.add_argument("--num-nodes", type=int, default=1)
    fit.add_argument("--accelerator", default="auto", help="auto, cpu or gpu")
    fit.add_argument("--precision", help="default bf16-mixed on GPU, 32-true on CPU")
    fit.add_argument("--output", default="clef-run", help="run folder: checkpoints, logs, hparams.json")
    fit.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output")
    fit.add_argument("--checkpoint-every", type=int, default=500, help="steps between checkpoints")
    fit.add_argument("--keep-checkpoints", type=int, default=3)
    fit.add_argument("--workers", type=int, default=2, help="data loader worker processes")
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--noise-dir", help="folder with the noise stress test records ma, em, bw (default: synthetic)")
    fit.add_argument("--log-every", type=int, default=10, help="steps between logged metrics")
    fit.add_argument("--no-progress", action="store_true")
    fit.set_defaults(handler=_fit)

    export = steps.add_parser("export", help="a checkpoint's encoder -> .safetensors for clef.load / clef.embed")
    export.add_argument("checkpoint", help="a .ckpt from `clef train fit`")
    export.add_argument("-o", "--output", required=True, help="destination .safetensors")
    export.set_defaults(handler=_export)
