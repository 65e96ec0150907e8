"""``clef train prepare | fit | finetune | export``: registered into the ``clef`` command; Lightning is imported only when a
subcommand runs (a missing ``train`` extra gives a one-line error naming the install command)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..progress import progress_wanted

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
        progress=progress_wanted(False if args.no_progress else None),
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
        progress=progress_wanted(False if args.no_progress else None),
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


def _split_value(split: Any, value: str | None) -> Any:
    import numpy as np

    if value is None:
        return np.zeros(len(split), dtype=bool)
    chosen = np.asarray(split).astype(str) == str(value)
    if not chosen.any():
        raise SystemExit(f"error: no row has split value {value!r}; the values are {sorted(set(map(str, split)))}")
    return chosen


def _global_rank() -> int:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))


def _finetune(args: argparse.Namespace) -> int:
    import numpy as np

    from ..probes.metrics import bootstrap_metrics
    from .finetune_data import StoreRecordings
    from .finetuning import MODEL_FILE, finetune, outputs_of
    from .labelled_records import LabelledRecords, read_labelled_records, read_labelled_store

    if (args.records is None) == (args.store is None):
        raise SystemExit("error: give a folder of WFDB records or --store STORE (one of them)")
    columns = {
        "label_columns": args.label_columns,
        "record_column": args.record_column,
        "group_column": args.group_column,
        "split_column": args.split_column,
    }
    if args.store is not None:
        from .data import PretrainingStore

        store = PretrainingStore(args.store)
        lead = args.lead or store.leads[0]
        data = read_labelled_store(store.table["path"].astype(str).tolist(), args.labels, where=args.store, **columns)

        def recordings(part: LabelledRecords) -> Any:
            return StoreRecordings(args.store, part.names, lead)
    else:
        data = read_labelled_records(args.records, args.labels, lead=args.lead, **columns)

        def recordings(part: LabelledRecords) -> Any:
            return part.signals

    if (args.validation_split or args.test_split) and data.split is None:
        raise SystemExit("error: --validation-split and --test-split need --split-column")
    test = _split_value(data.split, args.test_split) if data.split is not None else np.zeros(len(data.names), bool)
    held = _split_value(data.split, args.validation_split) if data.split is not None else np.zeros_like(test)
    train = data.rows(~test & ~held)
    validation: Any = args.validation
    if held.any():
        part = data.rows(held)
        validation = (recordings(part), part.labels)
    options = {
        key: getattr(args, key)
        for key in ("lr", "layer_decay", "class_weighting", "sampler", "monitor", "weight_decay")
        if getattr(args, key) is not None
    }
    if args.patience is not None:
        options["patience"] = None if args.patience == 0 else args.patience
    devices: Any = int(args.devices) if str(args.devices).isdigit() else args.devices
    model = finetune(
        recordings(train),
        train.labels,
        model=args.model,
        task=args.task,
        groups=train.groups,
        protocol=args.protocol,
        validation=validation,
        max_epochs=args.max_epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        output=args.output,
        resume=args.resume,
        checkpoint_every=args.checkpoint_every,
        devices=devices,
        num_nodes=args.num_nodes,
        accelerator=args.accelerator,
        precision=args.precision,
        num_workers=args.workers,
        tail=args.tail,
        progress=progress_wanted(False if args.no_progress else None),
        **options,
    )
    if _global_rank() != 0:
        return 0
    info = model.training_info
    summary: dict[str, Any] = {
        "model": str(Path(args.output) / MODEL_FILE),
        "task": model.task,
        "classes": model.classes_.tolist(),
        "best_epoch": info.get("best_epoch"),
        "monitor": info.get("monitor"),
        "best_score": info.get("best_score"),
        "epochs": info.get("epochs"),
    }
    if test.any():
        part = data.rows(test)
        truth = part.labels
        test_recordings = recordings(part)
        if isinstance(test_recordings, StoreRecordings):
            outputs = outputs_of(model, test_recordings)
        elif model.task == "regression":
            outputs = model.predict(test_recordings, tail=args.tail)
        else:
            outputs = model.predict_proba(test_recordings, tail=args.tail)
        scores = outputs[:, 1] if model.task == "binary" else outputs
        report = bootstrap_metrics(
            np.asarray(truth), scores, task=model.task, groups=part.groups, classes=model.classes_.tolist()
        )
        metrics = {name: dict(entry) for name, entry in report.items()}
        (Path(args.output) / "test_metrics.json").write_text(json.dumps(metrics, indent=1) + "\n")
        print(report.table(f"test ({int(test.sum())} records)"), file=sys.stderr)
        summary["test"] = {name: entry["estimate"] for name, entry in metrics.items()}
    print(json.dumps(summary))
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

    tune = steps.add_parser(
        "finetune",
        help="fine-tune an encoder and a head on labelled WFDB records -> a task model (model.safetensors)",
        description="Fine-tune CLEF on a folder of WFDB records and a labels CSV keyed by record; writes "
        "OUTPUT/model.safetensors (clef.load_task_model), checkpoints and CSV logs.",
    )
    tune.add_argument("records", nargs="?", help="folder searched recursively for WFDB records (or use --store)")
    tune.add_argument("--store", help="a prepared store (clef train prepare) instead of a folder of records")
    tune.add_argument("--labels", required=True, help="CSV with one row per record")
    tune.add_argument(
        "--label",
        dest="label_columns",
        action="append",
        required=True,
        metavar="COLUMN",
        help="label column (repeat for several: a multi-label task)",
    )
    tune.add_argument("--record-column", default="record", help="the CSV column naming each record (default: record)")
    tune.add_argument("--group-column", help="patient column: no patient on both sides of the validation split")
    tune.add_argument("--split-column", help="a split column, such as PTB-XL's strat_fold")
    tune.add_argument("--validation-split", metavar="VALUE", help="rows with this split value validate")
    tune.add_argument("--test-split", metavar="VALUE", help="rows with this split value are held out and scored")
    tune.add_argument(
        "--validation",
        type=float,
        default=0.2,
        help="fraction of training patients for validation without --validation-split (0: none)",
    )
    tune.add_argument("--lead", help="lead name or 0-based index (default: the first signal; a store's first lead)")
    tune.add_argument("--model", default="medium", help="encoder: a name, path or hf-hub: id (default: medium)")
    tune.add_argument("--task", default="auto", choices=["auto", "binary", "multiclass", "multilabel", "regression"])
    tune.add_argument("--protocol", default="full", choices=["full", "upstream", "linear", "linear-then-full"])
    tune.add_argument("--max-epochs", type=int)
    tune.add_argument("--batch-size", type=int, help="recordings per process and step (default: 64)")
    tune.add_argument("--lr", type=float, help="the head's learning rate (default: the protocol's)")
    tune.add_argument("--weight-decay", type=float)
    tune.add_argument("--layer-decay", type=float, help="layer-wise learning-rate decay in (0, 1]")
    tune.add_argument("--class-weighting", choices=["none", "balanced"])
    tune.add_argument("--sampler", choices=["shuffle", "balanced"])
    tune.add_argument("--monitor", help="val_loss, auto, auroc, auprc, balanced_accuracy, mae, rmse, r2, pearson_r")
    tune.add_argument("--patience", type=int, help="epochs without improvement before stopping (0: never stop)")
    tune.add_argument("--seed", type=int)
    tune.add_argument("--tail", choices=["drop", "pad", "last"], default="drop")
    tune.add_argument("-o", "--output", required=True, help="run folder: checkpoints, logs, model.safetensors")
    tune.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in --output")
    tune.add_argument("--checkpoint-every", type=int, help="also checkpoint every this many steps")
    tune.add_argument("--devices", default="auto", help="devices per node (a number, or auto)")
    tune.add_argument("--num-nodes", type=int, default=1)
    tune.add_argument("--accelerator", default="auto", help="auto, cpu or gpu")
    tune.add_argument("--precision", help="default bf16-mixed on GPU (16-mixed for upstream), 32-true on CPU")
    tune.add_argument("--workers", type=int, default=0, help="data loader worker processes")
    tune.add_argument("--no-progress", action="store_true")
    tune.set_defaults(handler=_finetune)

    export = steps.add_parser("export", help="a checkpoint's encoder -> .safetensors for clef.load / clef.embed")
    export.add_argument("checkpoint", help="a .ckpt from `clef train fit`")
    export.add_argument("-o", "--output", required=True, help="destination .safetensors")
    export.set_defaults(handler=_export)
