"""The ``clef`` command line: ``clef embed``, ``clef convert``, ``clef list``.

Errors are one readable line on stderr and a non-zero exit status, never a traceback
(set ``CLEF_SDK_DEBUG=1`` to see the traceback).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ._version import __version__

__all__ = ["main", "read_recording"]

EXIT_ERROR = 1
_TEXT_SUFFIXES = (".csv", ".txt", ".tsv")


class CliError(Exception):
    """A user-facing problem with the command's arguments or input file."""


def _select_column(names: list[str], column: str | None, source: str) -> int:
    if column is None:
        if len(names) == 1:
            return 0
        raise CliError(f"{source} has {len(names)} columns ({', '.join(names)}); choose one with --column NAME|INDEX")
    if column in names:
        return names.index(column)
    lowered = [name.lower() for name in names]
    if column.lower() in lowered:
        return lowered.index(column.lower())
    if column.lstrip("-").isdigit():
        index = int(column)
        if -len(names) <= index < len(names):
            return index % len(names)
    raise CliError(f"--column {column!r} not found in {source}; available: {', '.join(names)} (or a 0-based index)")


def _read_text(path: Path, column: str | None) -> np.ndarray:
    text = path.read_text(encoding="utf-8-sig")
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise CliError(f"{path} has no data rows")
    sample = "\n".join(lines[:20])
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t ")
    except csv.Error:
        dialect = csv.excel
    rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO("\n".join(lines)), dialect)]
    rows = [[cell for cell in row if cell != ""] if dialect.delimiter == " " else row for row in rows]

    def numeric(cell: str) -> bool:
        try:
            float(cell)
        except ValueError:
            return False
        return True

    header = None if all(numeric(cell) or cell == "" for cell in rows[0]) else rows[0]
    body = rows[1:] if header is not None else rows
    width = max(len(row) for row in body) if body else 0
    names = header if header is not None else [str(i) for i in range(width)]
    index = _select_column(names, column, str(path))
    first_row = 2 if header is not None else 1
    values = np.empty(len(body))
    for offset, row in enumerate(body):
        cell = row[index] if index < len(row) else ""
        if cell.lower() in ("", "nan", "na", "null"):
            values[offset] = np.nan
            continue
        try:
            values[offset] = float(cell)
        except ValueError:
            raise CliError(f"{path}, row {first_row + offset}: {cell!r} is not a number") from None
    return values


def _read_wfdb(path: Path, column: str | None) -> tuple[np.ndarray, float]:
    try:
        import wfdb
    except ImportError:
        raise CliError(
            "reading WFDB records needs the wfdb package: pip install 'clef-sdk[io]' (or pip install wfdb)"
        ) from None
    record_name = str(path.with_suffix("")) if path.suffix in (".hea", ".dat") else str(path)
    try:
        record = wfdb.rdrecord(record_name)
    except Exception as exc:  # wfdb raises many kinds of errors for malformed records
        raise CliError(f"cannot read WFDB record {record_name}: {exc}") from None
    names = list(record.sig_name or [str(i) for i in range(record.n_sig)])
    if column is None and len(names) > 1:
        print(f"clef: using lead {names[0]!r} of {', '.join(names)}; choose another with --column", file=sys.stderr)
        column = names[0]
    index = _select_column(names, column, record_name)
    return np.asarray(record.p_signal[:, index], dtype=np.float64), float(record.fs)


def read_recording(path: str | os.PathLike[str], *, column: str | None = None) -> tuple[np.ndarray, float | None]:
    """Read ``.npy``, ``.csv``/``.txt``/``.tsv`` (one column or ``column``) or a WFDB record.

    Returns ``(signal, fs)``: ``fs`` comes from the header for WFDB records, otherwise it is ``None``.
    A ``.npy`` file may hold one recording ``(n_samples,)`` or several ``(n_records, n_samples)``.
    """
    path = Path(path)
    if path.suffix == ".npy":
        if not path.is_file():
            raise CliError(f"input file not found: {path}")
        try:
            array = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise CliError(f"{path} is not a plain numeric .npy array ({exc})") from None
        return array, None
    if path.suffix in _TEXT_SUFFIXES:
        if not path.is_file():
            raise CliError(f"input file not found: {path}")
        return _read_text(path, column), None
    if path.suffix in (".hea", ".dat") or path.with_suffix(".hea").is_file() or Path(f"{path}.hea").is_file():
        return _read_wfdb(path, column)
    if not path.exists():
        raise CliError(f"input file not found: {path}")
    raise CliError(f"unsupported input {path.name}: use .npy, .csv/.txt/.tsv or a WFDB record (.hea)")


def _resolve_fs(cli_fs: float | None, header_fs: float | None, path: str) -> float:
    if header_fs is not None:
        if cli_fs is not None and not np.isclose(cli_fs, header_fs):
            raise CliError(f"--fs {cli_fs:g} contradicts the {header_fs:g} Hz in {path}'s header; drop --fs")
        return header_fs
    if cli_fs is None:
        raise CliError(f"{path} carries no sampling rate: pass --fs HZ (e.g. --fs 500)")
    return cli_fs


def _write_output(result: np.ndarray | list[np.ndarray], output: str | None) -> None:
    array = np.stack(result) if isinstance(result, list) else result
    if output is None:
        rows = array.reshape(-1, array.shape[-1])
        np.savetxt(sys.stdout, rows, delimiter=",", fmt="%.7g")
        return
    destination = Path(output)
    if destination.suffix != ".npy":
        raise CliError(f"-o must name a .npy file, got {destination.name}")
    destination.parent.mkdir(parents=True, exist_ok=True)
    np.save(destination, array)
    print(f"clef: wrote {destination} {tuple(array.shape)} float32", file=sys.stderr)


def _cmd_embed(args: argparse.Namespace) -> int:
    import clef_sdk

    signal, header_fs = read_recording(args.input, column=args.column)
    fs = _resolve_fs(args.fs, header_fs, args.input)
    result = clef_sdk.embed(
        signal,
        fs,
        model=args.model,
        pooling=None if args.per_window else args.pooling,
        batch_size=args.batch_size,
        device=args.device,
        progress=False if args.no_progress else None,
        stride_seconds=args.stride,
        tail=args.tail,
    )
    _write_output(result, args.output)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from .convert import convert_checkpoint, read_weights

    digest = convert_checkpoint(args.src, args.output)
    weights = read_weights(args.output)
    print(f"wrote {args.output}: CLEF-{weights.size}, embed_dim {weights.embed_dim}, sha256 {digest}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from .registry import load_manifest

    for entry in load_manifest().values():
        aliases = ", ".join(entry.aliases)
        print(f"{entry.name:<8} embed_dim {entry.embed_dim:<5} {entry.num_parameters:>12,} parameters  aliases: {aliases}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="clef", description="CLEF single-lead ECG foundation models")
    parser.add_argument("--version", action="version", version=f"clef-sdk {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    embed = commands.add_parser("embed", help="embed an ECG recording", description="Embed single-lead ECG.")
    embed.add_argument("input", help=".npy, .csv/.txt/.tsv (one column or --column) or a WFDB record (.hea)")
    embed.add_argument("--fs", type=float, help="sampling rate in Hz (read from the header for WFDB records)")
    embed.add_argument("--model", default="medium", help="model name or weights path (default: medium)")
    embed.add_argument("-o", "--output", help="output .npy (default: CSV rows on stdout)")
    embed.add_argument("--per-window", action="store_true", help="one embedding per 10 s window instead of pooling")
    embed.add_argument("--pooling", choices=["mean", "max"], default="mean", help="pooling over windows")
    embed.add_argument("--column", help="column or lead to use: name or 0-based index")
    embed.add_argument("--batch-size", type=int, default=32, help="windows per forward pass (default: 32)")
    embed.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    embed.add_argument("--stride", type=float, help="seconds between window starts (default 10: no overlap)")
    embed.add_argument("--tail", choices=["drop", "pad", "last"], default="drop", help="the end shorter than 10 s")
    embed.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    embed.set_defaults(handler=_cmd_embed)

    convert = commands.add_parser("convert", help="convert a released .ckpt to .safetensors")
    convert.add_argument("src", help="Lightning .ckpt, a {'state_dict': ...} file, or a bare state dict")
    convert.add_argument("-o", "--output", required=True, help="destination .safetensors")
    convert.set_defaults(handler=_cmd_convert)

    list_ = commands.add_parser("list", help="list the known models")
    list_.set_defaults(handler=_cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``clef`` command; returns the exit status."""
    args = build_parser().parse_args(argv)
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
        if os.environ.get("CLEF_SDK_DEBUG"):
            raise
        message = str(exc) or type(exc).__name__
        if isinstance(exc, CliError) or _is_user_error(exc):
            print(f"clef: error: {message}", file=sys.stderr)
        else:
            print(f"clef: unexpected {type(exc).__name__}: {message} (set CLEF_SDK_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_ERROR


def _is_user_error(exc: Exception) -> bool:
    from .errors import ClefError

    return isinstance(exc, (ClefError, ValueError, TypeError, OSError))


if __name__ == "__main__":
    raise SystemExit(main())
