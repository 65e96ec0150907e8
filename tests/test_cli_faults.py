"""Faults around every command that writes files: its own input as output, a full disk, a kill at any moment, a
read-only destination, another umask. No partial file may look complete, and the previous good file survives.

The full disk is a real 64 kB tmpfs where this process may mount one (root, as in CI), else a file-size limit
(``ulimit -f``, the same ENOSPC-like failure of ``write``); the commands run as real subprocesses.
"""

from __future__ import annotations

import contextlib
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from clef_sdk.cli import QUALITY_HEADER

REPO = Path(__file__).resolve().parents[1]


def clef_command(*argv: str, umask: int | None = None, file_size_limit: int | None = None, **kwargs):
    """``python -m clef_sdk ARGV`` in a subprocess (optionally with a umask and a file-size limit in bytes)."""

    def limits() -> None:
        if umask is not None:
            os.umask(umask)
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "clef_sdk", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=limits, env=environment, **kwargs,
    )  # fmt: skip


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    process = clef_command(*argv, **kwargs)
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@contextlib.contextmanager
def small_disk(folder: Path, size_kb: int) -> Iterator[Path]:
    """A real tmpfs of ``size_kb`` at ``folder`` where mounting is allowed; skips otherwise."""
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture()
def recording(tmp_path: Path, mitdb_record: np.ndarray) -> Path:
    """Two minutes of MIT-BIH record 100 as .npy."""
    path = tmp_path / "rec.npy"
    np.save(path, mitdb_record[: 120 * 360].astype(np.float32))
    return path


def embed_args(source: Path, model: Path, output: Path, *extra: str) -> tuple[str, ...]:
    return ("embed", str(source), "--fs", "360", "--model", str(model), "-o", str(output), "--no-progress", *extra)


def test_embed_refuses_its_own_input_as_output(recording: Path, small_safetensors: Path) -> None:
    before = recording.read_bytes()
    done = run(*embed_args(recording, small_safetensors, recording))
    assert done.returncode == 1 and "is also an input" in done.stderr
    assert recording.read_bytes() == before
    link = recording.with_name("link.npy")
    link.symlink_to(recording)
    done = run(*embed_args(recording, small_safetensors, link))  # the same file by another name
    assert done.returncode == 1 and "is also an input" in done.stderr
    assert recording.read_bytes() == before


def test_quality_file_never_replaces_an_input_or_a_foreign_file(tmp_path, recording, small_safetensors) -> None:
    # the input is a CSV whose name is the quality file of the output
    source = tmp_path / "out.quality.csv"
    source.write_text("ecg\n" + "\n".join(f"{v:.4f}" for v in np.load(recording)) + "\n")
    before = source.read_bytes()
    done = run("embed", str(source), "--fs", "360", "--model", str(small_safetensors), "-o", str(tmp_path / "out.npy"),
               "--quality", "return", "--no-progress")  # fmt: skip
    assert done.returncode == 1 and "not a clef quality file" in done.stderr
    assert source.read_bytes() == before and not (tmp_path / "out.npy").exists()
    # a foreign file of that name survives; an earlier quality file is replaced
    foreign = tmp_path / "mine.quality.csv"
    foreign.write_text("my notes\n")
    done = run(*embed_args(recording, small_safetensors, tmp_path / "mine.npy", "--quality", "return"))
    assert done.returncode == 1 and foreign.read_text() == "my notes\n"
    out = tmp_path / "ours.npy"
    for _ in range(2):
        done = run(*embed_args(recording, small_safetensors, out, "--quality", "return"))
        assert done.returncode == 0, done.stderr
    lines = out.with_suffix(".quality.csv").read_text().splitlines()
    assert lines[0].split(",") == QUALITY_HEADER and len(lines) == 1 + 12  # 12 windows of 10 s


def _previous_good(path: Path) -> np.ndarray:
    good = np.arange(256, dtype=np.float32)
    np.save(path, good)
    return good


@pytest.mark.parametrize("per_window", [False, True], ids=["pooled", "per-window"])
def test_full_disk_keeps_the_previous_result(tmp_path, recording, small_safetensors, per_window) -> None:
    extra = ("--per-window",) if per_window else ()
    with small_disk(tmp_path / "disk", size_kb=8) as disk:
        out = disk / "emb.npy"
        good = _previous_good(out)  # 1.1 kB: fits; the per-window result (12 x 256 float32, 12 kB) does not
        filler = disk / "filler"
        with contextlib.suppress(OSError):  # fill what is left of the disk
            with open(filler, "wb") as handle:
                while True:
                    handle.write(b"\0" * 512)
                    handle.flush()
        done = run(*embed_args(recording, small_safetensors, out, *extra))
        assert done.returncode == 1, done.stderr
        assert "No space left on device" in done.stderr and "Traceback" not in done.stderr
        np.testing.assert_array_equal(np.load(out), good)
        assert sorted(p.name for p in disk.iterdir()) == ["emb.npy", "filler"]  # no partial file left


def test_file_size_limit_is_an_error_not_a_kill(tmp_path, recording, small_safetensors) -> None:
    """Where no tmpfs can be mounted, ``ulimit -f`` fails writes the same way; it must not kill the process."""
    out = tmp_path / "emb.npy"
    good = _previous_good(out)
    done = run(*embed_args(recording, small_safetensors, out, "--per-window"), file_size_limit=4096)
    assert done.returncode == 1, (done.returncode, done.stderr)  # not -SIGXFSZ
    assert "File too large" in done.stderr and "Traceback" not in done.stderr
    np.testing.assert_array_equal(np.load(out), good)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.npy", "rec.npy"]


def test_kill_at_random_points_leaves_the_old_or_the_new_file(tmp_path, recording, small_safetensors) -> None:
    out = tmp_path / "emb.npy"
    good = _previous_good(out)
    complete = run(*embed_args(recording, small_safetensors, tmp_path / "ref.npy", "--per-window"))
    assert complete.returncode == 0, complete.stderr
    new = np.load(tmp_path / "ref.npy")
    started = time.perf_counter()
    run(*embed_args(recording, small_safetensors, tmp_path / "timing.npy", "--per-window"))
    duration = time.perf_counter() - started
    rng = random.Random(20261201)
    outcomes = set()
    for _ in range(4):
        process = clef_command(*embed_args(recording, small_safetensors, out, "--per-window"))
        time.sleep(rng.uniform(0.0, duration * 1.1))
        process.kill()
        process.communicate()
        loaded = np.load(out)  # always a complete .npy: the old result or the new one, never a mix
        if loaded.shape == good.shape and np.array_equal(loaded, good):
            outcomes.add("old")
        else:
            np.testing.assert_array_equal(loaded, new)
            outcomes.add("new")
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".emb.npy.")]
        assert all(name.endswith(".tmp") for name in leftovers)  # a killed write leaves only a hidden .tmp
    assert outcomes  # on a 2-core machine both outcomes occurred over four kills


def test_read_only_destination_is_a_clear_error(tmp_path, recording, small_safetensors) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    out = folder / "emb.npy"
    good = _previous_good(out)
    if os.geteuid() == 0:  # root writes anywhere a mode allows nothing: a read-only mount really refuses
        mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(folder)], capture_output=True)
        if mounted.returncode != 0:
            pytest.skip("cannot make a read-only mount here")
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=False)
    else:
        folder.chmod(0o555)
    try:
        done = run(*embed_args(recording, small_safetensors, out))
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        folder.chmod(0o755)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "Read-only file system" in done.stderr or "Permission denied" in done.stderr
    np.testing.assert_array_equal(np.load(out), good)


@pytest.mark.parametrize("umask", [0o002, 0o077])
def test_outputs_follow_the_umask(tmp_path, recording, small_safetensors, small_ckpt, umask) -> None:
    embedded = tmp_path / f"emb-{umask:o}.npy"
    converted = tmp_path / f"small-{umask:o}.safetensors"
    assert run(*embed_args(recording, small_safetensors, embedded), umask=umask).returncode == 0
    assert run("convert", str(small_ckpt), "-o", str(converted), umask=umask).returncode == 0
    for path in (embedded, converted):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


# The other commands that write files, each as (arguments for an output path, the output's name). `clef train
# prepare` and `clef train export` write through the same helper; their resumption after kills is tested in
# tests/train/, their umask in tests/train/test_data.py.
def _writers(small_ckpt: Path, small_safetensors: Path) -> dict[str, tuple[object, str]]:
    return {
        "convert": (lambda out: ("convert", str(small_ckpt), "-o", str(out)), "small.safetensors"),
        "export-onnx": (lambda out: ("export-onnx", str(small_safetensors), "-o", str(out)), "small.onnx"),
        "publish": (
            lambda out: (
                "publish",
                "small",
                "--ckpt",
                str(small_ckpt),
                "--repo-id",
                "me/clef-small",
                "--dry-run",
                "--force",
                "--out",
                str(out),
            ),
            "hub",
        ),  # fmt: skip
    }


def _snapshot(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (or ``path`` itself) and its bytes."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("command", ["convert", "export-onnx", "publish"])
def test_every_writer_survives_a_full_disk_and_follows_the_umask(
    tmp_path, small_ckpt, small_safetensors, command
) -> None:
    arguments, name = _writers(small_ckpt, small_safetensors)[command]
    good = tmp_path / "good" / name
    made = run(*arguments(good), umask=0o027)  # type: ignore[operator]
    assert made.returncode == 0, made.stderr
    files = [good] if good.is_file() else sorted(p for p in good.rglob("*") if p.is_file())
    assert all(p.stat().st_mode & 0o777 == 0o640 for p in files)  # 0o666 less the umask, not mkstemp's 0o600
    room = sum(p.stat().st_size for p in files) // 1024 + 256  # the previous output and a little more
    with small_disk(tmp_path / "disk", size_kb=room) as disk:
        out = disk / name
        if good.is_dir():
            shutil.copytree(good, out)
        else:
            shutil.copy2(good, out)
        before = _snapshot(out)
        with contextlib.suppress(OSError):  # fill what is left of the disk
            with open(disk / "filler", "wb") as handle:
                while True:
                    handle.write(b"\0" * 4096)
                    handle.flush()
        done = run(*arguments(out))  # type: ignore[operator]
        assert done.returncode == 1, done.stderr
        assert "No space left on device" in done.stderr and "Traceback" not in done.stderr
        assert _snapshot(out) == before  # the previous good output, untouched
        assert sorted(p.name for p in disk.iterdir()) == sorted([name, "filler"])  # no partial file beside it
