"""The ``clef`` command line: ``clef embed``, ``clef convert``, ``clef list``, for weights ``clef download``,
``clef info``, ``clef verify`` and ``clef publish``, and for pretraining ``clef train prepare | fit | export``.

Errors are one readable line on stderr and a non-zero exit status, never a traceback
(set ``CLEF_SDK_DEBUG=1`` to see the traceback).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal as os_signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._version import __version__
from .constants import TARGET_FS
from .files import atomic_path
from .io import wfdb_record_name
from .settings import env_flag

if TYPE_CHECKING:
    from .io import WfdbSignal
    from .quality import SignalQuality
    from .weights.hf_hub import HubModelSource
    from .weights.registry import ModelEntry

__all__ = ["build_parser", "main"]

EXIT_ERROR = 1


class CliError(Exception):
    """A user-facing problem with the command's arguments."""


def read_input(path: str, column: str | None) -> tuple[np.ndarray | WfdbSignal, float | None]:
    """The recording ``clef embed`` reads ([`clef_sdk.io.read_recording`][clef_sdk.io.read_recording]), saying which lead it took."""
    from .io import WfdbSignal, read_recording

    signal, fs = read_recording(path, column=column)
    if isinstance(signal, WfdbSignal) and column is None and len(signal.leads) > 1:
        print(
            f"clef: using lead {signal.lead!r} of {', '.join(signal.leads)}; choose another with --column",
            file=sys.stderr,
        )
    return signal, fs


def _resolve_fs(cli_fs: float | None, header_fs: float | None, path: str) -> float:
    if header_fs is not None:
        if cli_fs is not None and not np.isclose(cli_fs, header_fs):
            raise CliError(f"--fs {cli_fs:g} contradicts the {header_fs:g} Hz in {path}'s header; drop --fs")
        return header_fs
    if cli_fs is None:
        raise CliError(f"{path} carries no sampling rate: pass --fs HZ (e.g. --fs 500)")
    return cli_fs


def _write_output(result: np.ndarray | list[np.ndarray], output: str | None, inputs: list[Path]) -> None:
    array = np.stack(result) if isinstance(result, list) else result
    if output is None:
        rows = array.reshape(-1, array.shape[-1])
        np.savetxt(sys.stdout, rows, delimiter=",", fmt="%.7g")
        return
    destination = Path(output)
    if destination.suffix != ".npy":
        raise CliError(f"-o must name a .npy file, got {destination.name}")
    encoded = io.BytesIO()  # numpy's own file writes report a full disk without its errno ("N requested and M written")
    np.save(encoded, array)
    with atomic_path(destination, inputs=inputs) as tmp:
        tmp.write_bytes(encoded.getbuffer())
    print(f"wrote {destination} {tuple(array.shape)} float32")


def _input_files(path: str) -> list[Path]:
    """Every file ``clef embed`` reads for ``path``: the file itself, or all files of a WFDB record."""
    given = Path(path)
    record = Path(wfdb_record_name(given))
    return [given, *sorted(record.parent.glob(f"{record.name}.*"))]


def _cmd_embed(args: argparse.Namespace) -> int:
    from .embedding import embed

    signal, header_fs = read_input(args.input, args.column)
    fs = _resolve_fs(args.fs, header_fs, args.input)
    result = embed(
        signal,
        fs,
        model=args.model,
        pooling=None if args.per_window else args.pooling,
        batch_size=args.batch_size,
        device=args.device,
        progress=False if args.no_progress else None,
        stride_seconds=args.stride,
        tail=args.tail,
        precision=args.precision,
        quality=args.quality,
        backend=args.backend,
        num_threads=args.threads,
    )
    inputs = _input_files(args.input)
    if args.quality == "return":
        result, quality = result
        _write_quality(quality if isinstance(quality, list) else [quality], args.output, inputs)
    _write_output(result, args.output, inputs)
    return 0


QUALITY_HEADER = ["recording", "window", "start_seconds", "score", "usable", "reasons"]


def _quality_rows(qualities: list[SignalQuality]) -> list[list[object]]:
    return [
        [
            index,
            window,
            f"{quality.start_seconds[window]:g}",
            f"{quality.score[window]:.3f}",
            int(quality.usable[window]),
            ";".join(quality.reasons[window]),
        ]
        for index, quality in enumerate(qualities)
        for window in range(len(quality))
    ]


def _write_quality(qualities: list[SignalQuality], output: str | None, inputs: list[Path]) -> None:
    """Per-window quality as CSV: beside ``-o out.npy`` as ``out.quality.csv`` (replacing only an earlier quality
    file, never another file of that name), else on stderr."""
    if not output:
        writer = csv.writer(sys.stderr)
        writer.writerows([QUALITY_HEADER, *_quality_rows(qualities)])
        return
    destination = Path(output).with_suffix(".quality.csv")
    if destination.exists():
        with open(destination, newline="", errors="replace") as existing:
            first = next(csv.reader(existing), None)
        if first != QUALITY_HEADER:
            raise CliError(
                f"{destination} exists and is not a clef quality file; move it away or choose another -o "
                "(the quality of each window is written beside the embeddings)"
            )
    with atomic_path(destination, inputs=inputs) as tmp, open(tmp, "w", newline="") as handle:
        csv.writer(handle).writerows([QUALITY_HEADER, *_quality_rows(qualities)])
    print(f"wrote {destination}")


def _cmd_export_onnx(args: argparse.Namespace) -> int:
    from .loading import get_encoder
    from .onnx_export import DEFAULT_OPSET, export_onnx, raw_window_samples
    from .tasks.format import is_task_model_file

    if is_task_model_file(args.model):
        return _export_task_onnx(args)
    path = export_onnx(args.model, args.output, fs=args.fs, opset=args.opset or DEFAULT_OPSET)
    # the encoder export_onnx loaded, from the cache: no second read of the (possibly large) file just written
    embed_dim = get_encoder(args.model, "cpu").embed_dim
    name, shape = (
        ("windows", ("batch", 1, 5000)) if args.fs is None else ("raw", ("batch", raw_window_samples(args.fs)))
    )
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): input {name!r} {shape}, output 'embedding' (batch, {embed_dim})"
    )
    return 0


def _export_task_onnx(args: argparse.Namespace) -> int:
    """``clef export-onnx TASK_MODEL.safetensors``: the task model's graph, probabilities (or values) out."""
    from .onnx_export import DEFAULT_OPSET, read_onnx_metadata
    from .tasks.onnx import export_task_onnx

    path = export_task_onnx(args.model, args.output, fs=args.fs, opset=args.opset or DEFAULT_OPSET)
    metadata = read_onnx_metadata(path)  # what an app reads, rather than a second load of the model
    contract = json.loads(metadata["preprocessing"])
    output, shape = metadata["output_name"], tuple(json.loads(metadata["output_shape"]))
    columns = ", ".join(_printable(label, 60) for label in json.loads(metadata["classes"]))
    print(
        f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): {metadata['task']} task model, input "
        f"{metadata['input_name']!r} {tuple(contract['shape'])} (windows pooled by {metadata['pooling']} inside; "
        f"n_windows=1 for per-window outputs), output {output!r} {shape}"
        + (f", columns {columns}" if output == "probabilities" else "")
    )
    return 0


def _printable(value: object, limit: int = 200) -> str:
    """``value`` as text safe for a terminal: at most ``limit`` characters, control characters escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(value)[:limit])


def _cmd_convert(args: argparse.Namespace) -> int:
    from .weights.format import convert_checkpoint, read_weights

    digest = convert_checkpoint(args.src, args.output)
    weights = read_weights(args.output)
    print(f"wrote {args.output}: CLEF-{weights.size}, embed_dim {weights.embed_dim}, sha256 {digest}")
    return 0


def _size_text(size: int | None) -> str:
    if size is None:
        return "size unknown"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


def _cache_summary(entry: ModelEntry) -> str:
    from .weights.cache import cache_status

    statuses = cache_status(entry)
    for status in statuses:
        if status.cached and status.usable:
            return f"cached ({_size_text(status.size)})"
    expected = next((s.source.size for s in statuses if s.usable and s.source.size), None)
    return "not cached" + (f" (download {_size_text(expected)})" if expected else "")


def _cmd_list(args: argparse.Namespace) -> int:
    from .weights.registry import load_manifest

    for entry in load_manifest().values():
        aliases = ", ".join(entry.aliases)
        print(
            f"{entry.name:<8} embed_dim {entry.embed_dim:<5} {entry.num_parameters:>12,} parameters  "
            f"{_cache_summary(entry):<22} aliases: {aliases}"
        )
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from .weights.fetch import fetch_weights, install_checkpoint
    from .weights.registry import load_manifest, model_entry

    if args.from_file:
        if args.name == "all":
            raise CliError("--from takes one file: name its model (clef download small --from clef_small.ckpt)")
        entry = model_entry(args.name)
        path = install_checkpoint(entry, args.from_file, allow_unverified=True if args.allow_unverified else None)
        print(f"CLEF-{entry.name}: {path} ({_size_text(path.stat().st_size)}); model={entry.name!r} now works offline")
        return 0
    names = list(load_manifest()) if args.name == "all" else [args.name]
    failed = 0
    for name in names:
        entry = model_entry(name)
        try:
            path = fetch_weights(
                entry,
                keep_checkpoint=args.keep_checkpoint,
                allow_unverified=True if args.allow_unverified else None,
                progress=False if args.no_progress else None,
            )
        except Exception as exc:
            if len(names) == 1:
                raise
            failed += 1
            print(f"clef: error: CLEF-{entry.name}: {exc}", file=sys.stderr)
            continue
        print(f"CLEF-{entry.name}: {path} ({_size_text(path.stat().st_size)})")
    return EXIT_ERROR if failed else 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .constants import PREPROCESSING
    from .weights.cache import cache_status, clef_home, hub_cache_dir
    from .weights.hf_hub import is_hub_spec
    from .weights.registry import manifest_path, model_entry

    if is_hub_spec(args.name):
        return _hub_model_info(args.name)
    if _is_file_argument(args.name):
        return _file_info(Path(args.name).expanduser())
    entry = model_entry(args.name)
    print(f"CLEF-{entry.name}  (manifest: {manifest_path()})")
    print(f"  aliases:        {', '.join(entry.aliases) or '-'}")
    print(f"  embed_dim:      {entry.embed_dim}")
    print(f"  parameters:     {entry.num_parameters:,}")
    print(f"  license:        {entry.license or 'not stated'}")
    if entry.citation and entry.citation.get("arxiv"):
        print(f"  paper:          arXiv:{entry.citation['arxiv']}")
    print(f"  caches:         Hugging Face {hub_cache_dir()} (HF_HUB_CACHE); clef-sdk {clef_home()} (CLEF_SDK_HOME)")
    print("  sources (in order of preference):")
    for number, status in enumerate(cache_status(entry), start=1):
        source = status.source
        state = "usable" if status.usable else f"skipped: {status.reason}"
        print(f"    {number}. {source.describe()}  [{state}]")
        raw = {k: v for k, v in source.raw.items() if k not in ("provenance", "notes", "status")}
        print(f"       {json.dumps(raw, sort_keys=True)}")
        if status.path is not None:
            where = f"cached, {_size_text(status.size)}" if status.cached else "not cached"
            print(f"       {where}: {status.path}")
    note = "" if entry.preprocessing else "  (the manifest states none: clef-sdk's contract)"
    print(f"  preprocessing:  {json.dumps(entry.preprocessing or PREPROCESSING, sort_keys=True)}{note}")
    return 0


def _is_file_argument(name: str) -> bool:
    """Whether ``clef info NAME`` names a file (a weights suffix or a path separator), not a model name."""
    from .loading import WEIGHT_SUFFIXES

    return name.endswith(WEIGHT_SUFFIXES) or os.sep in name


def _file_info(path: Path) -> int:
    """``clef info PATH``: a task-model file's facts, or an encoder weights file's, each file checked in full."""
    from .files import sha256_file
    from .tasks.format import is_task_model_file
    from .weights.format import read_weights

    if is_task_model_file(path):
        print(f"task model {path}")
        _task_model_lines(path, sha256_file(path))
        return 0
    weights = read_weights(path)  # any failure (no such file, not a CLEF file) is one line saying what to do
    print(f"CLEF encoder weights {path}")
    print(f"  model:          CLEF-{weights.size}, embed_dim {weights.embed_dim}")
    print(f"  file:           {_size_text(path.stat().st_size)}, sha256 {sha256_file(path)}")
    print(f"  contract:       10 s windows at {TARGET_FS:g} Hz, band-passed and z-scored by clef (any fs, any unit)")
    for key in ("training_method", "training_steps", "training_data"):
        if weights.metadata.get(key):
            print(f"  {key[len('training_') :] + ':':<15} {_printable(weights.metadata[key])}")
    print(f"  use it:         clef embed REC --model {path}  (Python: clef.load({str(path)!r}))")
    return 0


def _task_model_lines(path: Path, sha256: str, spec: str | None = None) -> None:
    """The facts of the task-model file at ``path`` (loaded and checked in full), as ``clef info`` prints them."""
    from .tasks.format import load_task_model, read_task_metadata

    model = load_task_model(path)  # every check: format, contract, tensors' digest, head, task facts
    metadata = read_task_metadata(path)
    classes = model.classes_.tolist()
    print(f"  task:           {model.task}")
    label = "target" if model.task == "regression" else "classes"
    shown = ", ".join(f"{index}: {_printable(name)}" for index, name in enumerate(classes))
    where = "" if model.task == "regression" else "  (column i of predict_proba)"
    print(f"  {label + ':':<15} {shown}{where}")
    if model.thresholds is not None:
        print(f"  thresholds:     {', '.join(f'{value:g}' for value in model.thresholds)}")
    if model.target_scaling is not None:
        mean, std = model.target_scaling
        print(f"  target scaling: mean {mean:g}, std {std:g} (the head predicts (y - mean) / std)")
    print(f"  pooling:        {model.pooling} over the 10 s windows")
    print(f"  encoder:        CLEF-{model.encoder.architecture.name}, embed_dim {model.encoder.embed_dim}")
    print(f"  encoder name:   {_printable(model.encoder.name)}")
    print(f"  sha256:         {sha256}" + (" (verified)" if spec else ""))
    print(f"  tensors:        verified (tensors sha256 {metadata['tensors_sha256']})")
    version = _printable(metadata.get("clef_sdk_version", "?"))
    print(f"  format:         {metadata['format']} v{metadata['format_version']}, written by clef-sdk {version}")
    training = model.training_info
    print("  training:" + ("" if training else "       not recorded"))
    for key, value in training.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        print(f"    {_printable(key, 40) + ':':<13} {_printable(text)}")
    print(f"  load it with:   clef.load_task_model({spec or str(path)!r})")


def _hub_model_info(spec: str) -> int:
    from .errors import WeightsNotAvailableError
    from .weights.format import read_weights
    from .weights.hf_hub import TASK_MODEL_FILENAME, fetch_hub_model

    try:
        source = fetch_hub_model(spec)
    except WeightsNotAvailableError as missing:  # no encoder there: a task model's repository?
        try:
            task_source = fetch_hub_model(spec, filename=TASK_MODEL_FILENAME)
        except WeightsNotAvailableError:
            raise missing from None
        _hub_source_lines(task_source)
        _task_model_lines(task_source.path, task_source.sha256, spec=task_source.spec)
        print(f"  cached:         {task_source.path}")
        return 0
    weights = read_weights(source.path)
    _hub_source_lines(source)
    print(f"  sha256:         {source.sha256} (verified)")
    print(f"  size:           {weights.size}, embed_dim {weights.embed_dim}")
    for key in ("training_method", "training_steps", "training_data"):
        if weights.metadata.get(key):  # text from a downloaded file: no control characters reach the terminal
            print(f"  {key[len('training_') :] + ':':<15} {_printable(weights.metadata[key])}")
    print(f"  cached:         {source.path}")
    return 0


def _hub_source_lines(source: HubModelSource) -> None:
    from .weights.hf_hub import TASK_MODEL_FILENAME

    print(f"hf-hub:{source.repo_id}" + ("  (task model)" if source.filename == TASK_MODEL_FILENAME else ""))
    print(f"  revision:       {source.revision or '(default branch)'}")
    print(f"  commit:         {source.commit}")
    print(f"  pinned spec:    {source.spec}")


def _cmd_verify(args: argparse.Namespace) -> int:
    from .weights.cache import verify_cache
    from .weights.registry import load_manifest, model_entry

    entries = [model_entry(args.name)] if args.name else list(load_manifest().values())
    bad = checked = 0
    for entry in entries:
        for report in verify_cache(entry):
            checked += 1
            bad += not report.ok
            print(f"{'OK    ' if report.ok else 'FAILED'} CLEF-{report.model} {report.path}: {report.message}")
    if not checked:
        print("nothing cached to verify" + (f" for {args.name}" if args.name else ""))
    if bad:  # each FAILED line says what happened to its file (deleted, or incomplete and left to be redone)
        print(f"clef: error: {bad} of {checked} cached files failed verification; run `clef download` again",
              file=sys.stderr)  # fmt: skip
        return EXIT_ERROR
    return 0


def _cmd_publish(args: argparse.Namespace) -> int:
    from .tasks.format import is_task_model_file
    from .weights.publish import publish, publish_trained

    task_file = next((f for f in (args.name, args.weights) if f and is_task_model_file(f)), None)
    if task_file is not None:
        return _publish_task_model(args, task_file)
    if args.weights:
        if args.name or args.ckpt:
            raise CliError("--weights publishes a model you trained: pass it without NAME and --ckpt")
        if not args.license:
            raise CliError("--license is required with --weights: choose the license of your weights (e.g. cc-by-4.0)")
        result = publish_trained(
            args.weights,
            args.repo_id,
            license=args.license,
            dry_run=args.dry_run,
            out_dir=args.out,
            private=args.private,
        )
        print(f"wrote {result.folder}: " + ", ".join(sorted(p.name for p in result.folder.iterdir())))
        if result.revision:
            print(f"uploaded to {result.repo_id} at commit {result.revision}")
            print(f'load it with: clef.load("hf-hub:{result.repo_id}@{result.revision}")')
        else:
            print("dry run: nothing uploaded")
        return 0
    if not (args.name and args.ckpt):
        raise CliError("pass NAME --ckpt RELEASED.ckpt (the authors' checkpoints) or --weights TRAINED.safetensors")
    result = publish(
        args.name,
        args.ckpt,
        args.repo_id,
        dry_run=args.dry_run,
        out_dir=args.out,
        private=args.private,
        force=args.force,
    )
    print(f"wrote {result.folder}: " + ", ".join(sorted(p.name for p in result.folder.iterdir())))
    if result.revision:
        print(
            f"uploaded to {result.repo_id} at commit {result.revision}"
            + (f" ({result.commit_url})" if result.commit_url else "")
        )
    else:
        print('dry run: nothing uploaded; fill in "revision" with the commit after uploading')
    print("manifest source to paste as the first source of this model in clef_sdk/weights/manifest.json:")
    print(json.dumps(result.manifest_source, indent=2))
    return 0


def _publish_task_model(args: argparse.Namespace, path: str) -> int:
    """``clef publish TASK_MODEL.safetensors --repo-id ORG/NAME --license ID``."""
    from .weights.publish import publish_task_model

    if args.ckpt or args.force or (args.name and args.weights):
        raise CliError("a task model is published alone: clef publish TASK_MODEL.safetensors --repo-id ORG/NAME "
                       "--license ID (no --ckpt, --force or second file)")  # fmt: skip
    if not args.license:
        raise CliError(
            "--license is required for a task model: choose the license of your model (e.g. cc-by-4.0), within "
            "the terms of its encoder and of your training data"
        )
    result = publish_task_model(
        path, args.repo_id, license=args.license, dry_run=args.dry_run, out_dir=args.out, private=args.private
    )
    config = json.loads((result.folder / "config.json").read_text(encoding="utf-8"))
    labels = ", ".join(_printable(label, 60) for label in config["classes"])
    print(f"wrote {result.folder}: " + ", ".join(sorted(p.name for p in result.folder.iterdir())))
    print(f"{config['task']} task model on CLEF-{config['size']}: {labels}")
    if result.revision:
        print(
            f"uploaded to {result.repo_id} at commit {result.revision}"
            + (f" ({result.commit_url})" if result.commit_url else "")
        )
        print(f'load it with: clef.load_task_model("hf-hub:{result.repo_id}@{result.revision}")')
    else:
        print("dry run: nothing uploaded")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clef", description="CLEF single-lead ECG foundation models")
    parser.add_argument("--version", action="version", version=f"clef-sdk {__version__}")
    talk = parser.add_mutually_exclusive_group()
    talk.add_argument(
        "--quiet", dest="global_quiet", action="store_true", help="no progress bars, only warnings and errors"
    )
    talk.add_argument(
        "--verbose",
        dest="global_verbose",
        action="store_true",
        help="progress bars everywhere, the SDK's INFO logs and Lightning's own messages",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    embed = commands.add_parser("embed", help="embed an ECG recording", description="Embed single-lead ECG.")
    embed.add_argument("input", help=".npy, .csv/.txt/.tsv (one column or --column) or a WFDB record (.hea)")
    embed.add_argument("--fs", type=float, help="sampling rate in Hz (read from the header for WFDB records)")
    embed.add_argument("--model", default="medium", help="model name or weights path (default: medium)")
    embed.add_argument("-o", "--output", help="output .npy (default: CSV rows on stdout)")
    embed.add_argument("--per-window", action="store_true", help="one embedding per 10 s window instead of pooling")
    embed.add_argument("--pooling", choices=["mean", "max"], default="mean", help="pooling over windows")
    embed.add_argument("--column", help="column or lead to use: name or 0-based index")
    embed.add_argument(
        "--batch-size", type=int, help="windows per forward pass (default: chosen for the model and device)"
    )
    embed.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    embed.add_argument("--stride", type=float, help="seconds between window starts (default 10: no overlap)")
    embed.add_argument("--tail", choices=["drop", "pad", "last"], default="drop", help="the end shorter than 10 s")
    embed.add_argument(
        "--precision",
        choices=["fp32", "bf16"],
        default="fp32",
        help="fp32 (default, faithful) or bf16 autocast (faster on CPUs with native bf16 and on GPUs)",
    )
    embed.add_argument(
        "--backend",
        choices=["auto", "torch", "onnxruntime", "openvino"],
        default="auto",
        help="what runs the network: torch, onnxruntime (CPU, fp32; needs clef-sdk[onnx]), openvino (CPU; needs "
        "clef-sdk[openvino]) or auto (default: an installed engine where measured faster, else torch)",
    )
    embed.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="CPU threads of the network (default: the cores this process may use that others leave idle; "
        "CLEF_SDK_NUM_THREADS or OMP_NUM_THREADS when set)",
    )
    embed.add_argument(
        "--quality",
        choices=["drop", "return"],
        help="drop: pool only windows of usable signal quality; return: also write per-window quality "
        "(OUTPUT.quality.csv beside -o, else CSV on stderr)",
    )
    embed.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    embed.set_defaults(handler=_cmd_embed)

    convert = commands.add_parser("convert", help="convert a released .ckpt to .safetensors")
    convert.add_argument("src", help="Lightning .ckpt, a {'state_dict': ...} file, or a bare state dict")
    convert.add_argument("-o", "--output", required=True, help="destination .safetensors")
    convert.set_defaults(handler=_cmd_convert)

    export_onnx = commands.add_parser(
        "export-onnx",
        help="write a model as one self-contained ONNX file",
        description="Export a CLEF encoder to ONNX. With --fs the graph takes raw 10 s windows at that rate and "
        "contains the resampling, band-pass and z-score; without it, preprocessed windows (batch, 1, 5000). A "
        "task-model file (TaskModel.save) is recognised by its metadata and exported with its pooling and head: "
        "windows (batch, n_windows, n) in, probabilities (batch, n_classes) or values (batch,) out.",
    )
    export_onnx.add_argument("model", help="model name, weights path, or task-model .safetensors")
    export_onnx.add_argument("-o", "--output", required=True, help="destination .onnx")
    export_onnx.add_argument("--fs", type=float, help="sampling rate of the raw windows the graph will take, Hz")
    export_onnx.add_argument("--opset", type=int, help="ONNX opset (default 18; at least 17)")
    export_onnx.set_defaults(handler=_cmd_export_onnx)

    list_ = commands.add_parser("list", help="list the known models, cached or not, with sizes")
    list_.set_defaults(handler=_cmd_list)

    download = commands.add_parser(
        "download", help="download, verify and cache a model's weights", description="Fetch weights ahead of time."
    )
    download.add_argument("name", help="model name or alias, or 'all'")
    download.add_argument("--keep-checkpoint", action="store_true", help="keep the downloaded Zenodo .ckpt")
    download.add_argument(
        "--allow-unverified", action="store_true", help="accept a Zenodo file whose checksum the manifest lacks"
    )
    download.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    download.add_argument(
        "--from",
        dest="from_file",
        metavar="PATH",
        help="a released .ckpt fetched by hand (no network): checked against the manifest, converted and cached",
    )
    download.set_defaults(handler=_cmd_download)

    info = commands.add_parser(
        "info",
        help="a model's manifest entry and where it is cached, or what a weights or task-model file holds",
    )
    info.add_argument(
        "name", help="model name or alias, hf-hub:ORG/NAME[@REVISION], or the path of a weights or task-model file"
    )
    info.set_defaults(handler=_cmd_info)

    verify = commands.add_parser("verify", help="re-hash the cached weights (all models, or NAME)")
    verify.add_argument("name", nargs="?", help="model name or alias (default: every model)")
    verify.set_defaults(handler=_cmd_verify)

    publish = commands.add_parser(
        "publish",
        help="upload a released checkpoint, a model you trained or a task model to the Hugging Face Hub",
        description="Write the weights file (model.safetensors; task_model.safetensors for a task model), "
        "config.json and a model card, upload them (unless --dry-run) and print how to load them (for released "
        "checkpoints, the manifest source to paste).",
    )
    publish.add_argument(
        "name", nargs="?", help="model name or alias (with --ckpt), or a task-model .safetensors (TaskModel.save)"
    )
    publish.add_argument("--ckpt", help="the released .ckpt")
    publish.add_argument("--weights", help="a model you trained: the .safetensors from `clef train export`")
    publish.add_argument(
        "--license", help="with --weights or a task model: the Hub license id you choose for your model"
    )
    publish.add_argument("--repo-id", required=True, help="Hub repository, namespace/name")
    publish.add_argument("--dry-run", action="store_true", help="write the folder only, upload nothing")
    publish.add_argument("--out", help="folder to write (default: a new temporary folder)")
    publish.add_argument("--private", action="store_true", help="create the repository private")
    publish.add_argument("--force", action="store_true", help="publish a checkpoint that is not the released file")
    publish.set_defaults(handler=_cmd_publish)

    from .train.cli import add_train_commands  # argparse only: Lightning is imported when a step runs

    add_train_commands(commands)
    from .datasets.cli import add_datasets_commands

    add_datasets_commands(commands)
    from .benchmark.cli import add_benchmark_command

    add_benchmark_command(commands)
    from .archive.cli import add_archive_command

    add_archive_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``clef`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    _apply_verbosity(args.global_quiet, args.global_verbose)
    if hasattr(os_signal, "SIGXFSZ"):  # a file-size limit (ulimit -f) then fails a write with an error, not a kill
        os_signal.signal(os_signal.SIGXFSZ, os_signal.SIG_IGN)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("clef: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `clef embed ... | head`: the reader left, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if env_flag("CLEF_SDK_DEBUG"):
            raise
        message = _in_cli_terms(str(exc) or type(exc).__name__)
        if isinstance(exc, CliError) or _is_user_error(exc):
            print(f"clef: error: {message}", file=sys.stderr)
        else:
            print(
                f"clef: unexpected {type(exc).__name__}: {message} (set CLEF_SDK_DEBUG=1 for details)", file=sys.stderr
            )
        return EXIT_ERROR


def _in_cli_terms(message: str) -> str:
    """The library's hints in the command line's words: ``--model PATH`` for ``clef.load('PATH')``, ``clef list``
    for ``clef.list_models()``."""
    import re

    message = re.sub(r"clef\.load\('([^']+)'\)", r"--model \1", message)
    return message.replace("clef.list_models()", "`clef list`").replace("pass its path instead", "pass --model PATH")


def _apply_verbosity(quiet: bool, verbose: bool) -> None:
    """``clef --quiet`` / ``--verbose``: the process-wide switches of [`clef_sdk.progress`][clef_sdk.progress] and the SDK's log
    level (INFO logs on stderr with ``--verbose``)."""
    import logging

    from .progress import set_progress, set_verbose

    if quiet:
        set_progress(False)
        set_verbose(False)
        logging.getLogger("clef_sdk").setLevel(logging.WARNING)
    elif verbose:
        set_progress(True)
        set_verbose(True)
        logger = logging.getLogger("clef_sdk")
        logger.setLevel(logging.INFO)
        if not logger.handlers:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("clef: %(message)s"))
            logger.addHandler(handler)


def _is_user_error(exc: Exception) -> bool:
    from .errors import ClefError

    return isinstance(exc, (ClefError, ValueError, TypeError, OSError, ImportError))


if __name__ == "__main__":
    raise SystemExit(main())
