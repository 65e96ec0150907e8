"""``clef datasets list | info | download | split``: registered into the ``clef`` command (argparse only here; a
reader, pandas and wfdb are imported when a subcommand runs). Errors reach ``clef``'s own handling: one line, a
non-zero status."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_datasets_commands"]


def _tasks_text(reader: Any) -> str:
    return ", ".join(f"{task.name} ({task.kind})" for task in reader.tasks.values()) or "none (no labels)"


def _list(args: argparse.Namespace) -> int:
    from .base import available_datasets, reader_class

    for name in available_datasets():
        try:
            reader = reader_class(name)
        except ImportError as exc:  # a reader whose module (or one of its dependencies) cannot be imported
            print(f"{name:<14} reader not available: {exc}")
            continue
        download = f"PhysioNet {reader.physionet}" if reader.physionet else f"not from PhysioNet: {reader.source}"
        print(f"{name:<14} {reader.title}")
        print(f"{'':<14} tasks: {_tasks_text(reader)}")
        print(f"{'':<14} split: {reader.split_kind}; download: {download}")
    return 0


def _counts_text(counts: Any) -> str:
    return ", ".join(f"{name} {int(count)}" for name, count in counts.items()) or "-"


def _task_lines(dataset: Any, name: str) -> list[str]:
    """The examples of task ``name`` by class (or, for a regression, their range), overall and per split."""
    import pandas as pd

    from ..errors import DatasetError
    from .splits import SPLITS

    info = dataset.tasks[name]
    try:
        _, y, _, split = dataset.task(name)
    except DatasetError as exc:
        return [f"    {name} ({info.kind}): {exc}"]
    lines = [f"    {name} ({info.kind}, {info.description}): {len(y)} examples"]
    if info.kind == "regression":
        values = pd.to_numeric(y, errors="coerce")
        lines.append(f"      range {values.min():g} to {values.max():g}, mean {values.mean():.4g}")
        lines.append(f"      per split: {_counts_text(split.value_counts().reindex(SPLITS, fill_value=0))}")
        return lines
    if isinstance(y, pd.DataFrame):  # multi-label: examples carrying each label
        columns = {str(label): y[label].astype(bool) for label in y.columns}
    else:
        columns = {str(label): y == label for label in sorted(y.unique(), key=str)}
    for label, member in columns.items():
        per_split = split[member.to_numpy()].value_counts().reindex(SPLITS, fill_value=0)
        lines.append(f"      {label}: {int(member.sum())} ({_counts_text(per_split)})")
    return lines


def _info(args: argparse.Namespace) -> int:
    from .base import open as open_dataset
    from .splits import SPLITS

    dataset = open_dataset(args.name, args.root, fs=args.fs)
    table = dataset.table
    rates = ", ".join(f"{rate:g}" for rate in sorted(set(table["fs"].astype(float)))) or "-"
    splits = table["split"].value_counts()
    left_out = int(len(table) - splits.reindex(SPLITS, fill_value=0).sum())
    print(f"{dataset.title}: {dataset.root}")
    print(f"  records:  {len(table)} from {table['patient'].nunique()} patients; fs {rates} Hz")
    print(
        f"  split ({dataset.split_kind}): {_counts_text(splits.reindex(SPLITS, fill_value=0))}"
        + (f"; {left_out} records in no split" if left_out else "")
    )
    print("  tasks:" if dataset.tasks else "  tasks:    none")
    for name in dataset.tasks:
        for line in _task_lines(dataset, name):
            print(line)
    return 0


def _download(args: argparse.Namespace) -> int:
    from .base import reader_class
    from .download import download

    path = download(args.name, args.directory, index_url=args.index_url, progress=not args.no_progress)
    reader = reader_class(args.name)
    print(f"{reader.title}: {path} (PhysioNet {reader.physionet}, every file verified)")
    print(f"open it with: clef.datasets.open({reader.name!r}, {str(path)!r})")
    return 0


def _split(args: argparse.Namespace) -> int:
    from .base import open as open_dataset
    from .splits import SPLITS

    dataset = open_dataset(args.name, args.root, fs=args.fs)
    path = dataset.write_split(args.output)
    counts = dataset.table["split"].value_counts().reindex(SPLITS, fill_value=0)
    print(f"wrote {path}: {len(dataset.table)} records ({_counts_text(counts)}), {dataset.split_kind} split")
    return 0


def add_datasets_commands(commands: Any) -> None:
    """Add ``clef datasets ...`` to the ``clef`` parser's subcommands (``argparse`` ``_SubParsersAction``)."""
    datasets = commands.add_parser(
        "datasets",
        help="public ECG datasets: list them, download one from PhysioNet, describe or split a local copy",
        description="Readers for public ECG datasets in their published layouts (clef.datasets.open).",
    )
    steps = datasets.add_subparsers(dest="datasets_command", required=True, metavar="COMMAND")

    list_ = steps.add_parser("list", help="the datasets clef reads: title, tasks, split, where to download")
    list_.set_defaults(handler=_list)

    info = steps.add_parser("info", help="records, patients, split sizes and class counts of a local copy")
    info.add_argument("name", help="dataset name (see clef datasets list)")
    info.add_argument("root", help="the folder holding the dataset in its published layout")
    info.add_argument("--fs", type=float, help="for datasets published at several rates, the one to read (Hz)")
    info.set_defaults(handler=_info)

    download = steps.add_parser(
        "download",
        help="download a dataset's PhysioNet project, verified file by file (a rerun resumes)",
        description="Fetch the project's files listed in its SHA256SUMS.txt into DIR, in the published layout, "
        "and check each one's SHA-256. A rerun skips verified files and resumes the rest; DIR/.clef-download/"
        "complete.json is written once every file is verified.",
    )
    download.add_argument("name", help="dataset name (see clef datasets list)")
    download.add_argument("directory", metavar="DIR", help="folder to download into (created if missing)")
    download.add_argument(
        "--index-url",
        help="a mirror of https://physionet.org/files/ (default: $CLEF_SDK_PHYSIONET_URL, else PhysioNet)",
    )
    download.add_argument("--no-progress", action="store_true", help="print nothing while downloading")
    download.set_defaults(handler=_download)

    split = steps.add_parser("split", help="write the record,patient,split CSV of a local copy (to cite or compare)")
    split.add_argument("name", help="dataset name (see clef datasets list)")
    split.add_argument("root", help="the folder holding the dataset in its published layout")
    split.add_argument("-o", "--output", required=True, help="the CSV to write")
    split.add_argument("--fs", type=float, help="for datasets published at several rates, the one to read (Hz)")
    split.set_defaults(handler=_split)
