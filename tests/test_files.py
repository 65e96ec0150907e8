"""Files the SDK writes are readable as the umask says: the atomic write's private temporary file (mkstemp's 0600)
never passes its mode on to the result (ONNX exports, exported safetensors, a store's files, any atomic write)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import clef_sdk as clef
from clef_sdk.files import atomic_write_bytes, atomic_write_text, current_umask
from clef_sdk.weights.format import read_weights, write_weights


@pytest.fixture(params=[0o022, 0o027, 0o077], ids=["umask-022", "umask-027", "umask-077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    previous = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_atomic_writes_take_the_mode_a_new_file_would(umask: int, tmp_path: Path) -> None:
    assert current_umask() == umask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what open() gives a new file
    atomic_write_bytes(tmp_path / "a.bin", b"x")
    atomic_write_text(tmp_path / "b.txt", "x")
    assert mode(tmp_path / "a.bin") == mode(tmp_path / "b.txt") == mode(plain) == 0o666 & ~umask
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left


def test_exported_weights_and_onnx_are_readable_by_others(umask: int, small_safetensors: Path, tmp_path: Path) -> None:
    """What ``clef train export`` writes (``write_weights``) and ``clef.export_onnx``: 0644 under umask 022 (an app
    server's user can read them), 0600 only where the umask asks for it."""
    weights = write_weights(read_weights(small_safetensors), tmp_path / "exported.safetensors")
    assert weights and mode(tmp_path / "exported.safetensors") == 0o666 & ~umask
    if umask == 0o022:  # the export takes ~10 s: once
        onnx = clef.export_onnx(clef.load(small_safetensors), tmp_path / "small.onnx", fs=250)
        assert mode(onnx) == 0o644
