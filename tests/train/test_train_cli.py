"""``clef train prepare | fit | export`` end to end, then ``clef embed`` with the result; the missing-extra message;
and the core package never importing Lightning."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("lightning")

from clef_sdk.cli import main


def test_prepare_fit_export_embed(ludb_source: Path, tmp_path: Path, capsys, data_dir: Path) -> None:
    store, run = tmp_path / "store", tmp_path / "run"
    assert (
        main(
            [
                "train",
                "prepare",
                str(ludb_source),
                "-o",
                str(store),
                "--leads",
                "I,II,V1",
                "--workers",
                "1",
                "--no-progress",
            ]
        )
        == 0
    )
    assert "24 windows of 24 records" in capsys.readouterr().out
    assert (
        main(
            [
                "train",
                "fit",
                "--data",
                str(store),
                "--batch-size",
                "8",
                "--max-steps",
                "2",
                "--accelerator",
                "cpu",
                "--workers",
                "0",
                "--checkpoint-every",
                "1",
                "--output",
                str(run),
                "--no-progress",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    checkpoint = run / "checkpoints" / "step=000000002.ckpt"
    assert f"final checkpoint: {checkpoint}" in out
    weights = tmp_path / "mine.safetensors"
    assert main(["train", "export", str(checkpoint), "-o", str(weights)]) == 0
    assert json.loads(capsys.readouterr().out)["output"] == str(weights)
    embedding = tmp_path / "e.npy"
    record = data_dir / "wfdb-sample" / "100.hea"
    assert main(["embed", str(record), "--model", str(weights), "-o", str(embedding), "--no-progress"]) == 0
    assert np.load(embedding).shape == (256,)


def test_errors_are_one_line(tmp_path: Path, capsys) -> None:
    assert main(["train", "fit", "--data", str(tmp_path), "--max-steps", "1", "--output", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("clef: error: ") and "not a pretraining store" in err and err.count("\n") == 1
    assert main(["train", "prepare", str(tmp_path / "missing"), "-o", str(tmp_path / "s")]) == 1
    assert "source folder not found" in capsys.readouterr().err


BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"No module named {{name!r}}", name=name)
sys.meta_path.insert(0, Block())
"""


def _python(code: str, blocked: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK.format(blocked=set(blocked)) + code], capture_output=True, text=True, timeout=300
    )


def test_missing_extra_is_named() -> None:
    """Without Lightning, the plain-torch parts still import; the rest says which extra to install."""
    result = _python(
        "import clef_sdk.train as t\n"
        "print(float(t.clef_loss(__import__('torch').ones(2, 3), __import__('torch').ones(2, 3), __import__('torch').ones(2))) > 0)\n"
        "try:\n    t.fit\nexcept ImportError as e:\n    print('ERR', e)\n"
        "from clef_sdk.cli import main\nraise SystemExit(main(['train', 'fit', '--data', 'x']))\n",
        blocked=("lightning",),
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "True"
    assert lines[1].startswith(
        'ERR clef_sdk.train needs lightning: pip install "clef-sdk[train]" (or pip install lightning)'
    )
    assert result.stderr.strip() == "clef: error: " + lines[1][4:]


def test_core_never_imports_lightning() -> None:
    result = _python(
        "import sys, numpy as np, clef_sdk as clef\n"
        "from clef_sdk.cli import build_parser\n"
        "build_parser().parse_args(['train', 'fit', '--data', 'x'])\n"
        "clef.preprocess(np.sin(np.arange(6000) / 30), 500)\n"
        "import clef_sdk.train\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning', 'pandas')))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_lightning_keeps_quiet_unless_verbose(ludb_source: Path, tmp_path: Path) -> None:
    """In a fresh process (pytest's own log handlers would hide Lightning's lines in this one): `clef train fit`
    prints its result only; with `clef --verbose` Lightning's device lines, tips and model table come back."""
    store = tmp_path / "store"
    assert main(["train", "prepare", str(ludb_source), "-o", str(store), "--workers", "1", "--no-progress"]) == 0
    chatter = ("GPU available", "Tip", "Total params")
    outputs = {}
    for flags in ([], ["--verbose"]):
        run = tmp_path / f"run{len(flags)}"
        command = [sys.executable, "-m", "clef_sdk", *flags, "train", "fit", "--data", str(store), "--batch-size"]
        command += ["8", "--max-steps", "1", "--accelerator", "cpu", "--workers", "0", "--output", str(run)]
        done = subprocess.run([*command, "--no-progress"], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        outputs[bool(flags)] = done.stdout + done.stderr
    assert not [line for line in outputs[False].splitlines() if any(word in line for word in chatter)], outputs[False]
    assert "final checkpoint" in outputs[False]
    assert all(word in outputs[True] for word in chatter), outputs[True]
