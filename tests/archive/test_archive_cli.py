"""``clef embed-archive`` as users launch it: kill -9 and resume, torchrun and SLURM ranks, a full disk, reader
processes, ``--status``; every run's parts compared byte for byte with one uninterrupted run."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clef_sdk.archive.parts import read_part

pytest.importorskip("pyarrow")

LEADS = ("--lead", "I", "--lead", "II")


def parts_digest(output: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(output.glob("*part-*"))}


def command(archive: Path, output: Path, model: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "clef_sdk", "embed-archive", str(archive), "-o", str(output), "--model", str(model),
            *LEADS, "--shard-size", "2", "-q", *extra]  # fmt: skip


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def uninterrupted(archive: Path, small_safetensors: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("cli") / "whole"
    done = run(command(archive, output, small_safetensors))
    assert done.returncode == 0, done.stderr
    assert "job complete" in done.stdout and "6 parts computed" in done.stdout  # 11 records, 2 per part
    return output


def test_kill_9_then_resume_gives_the_bytes_of_an_uninterrupted_run(
    uninterrupted: Path, archive: Path, small_safetensors: Path, tmp_path: Path
) -> None:
    output = tmp_path / "killed"
    process = subprocess.Popen(
        command(archive, output, small_safetensors), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while not list(output.glob("part-*.parquet")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    written = list(output.glob("part-*.parquet"))
    assert written and len(written) < 6, "the kill came after the first part and before the last"
    assert not (output / "_SUCCESS").exists()
    for part in written:  # what looks like a part is a whole part (temporaries are hidden, then replaced)
        read_part(part)
    resumed = run(command(archive, output, small_safetensors))
    assert resumed.returncode == 0, resumed.stderr
    assert f"{6 - len(written)} parts computed, {len(written)} already there" in resumed.stdout
    assert parts_digest(output) == parts_digest(uninterrupted)


@pytest.mark.xdist_group("distributed")  # with --dist loadgroup: one process group at a time
def test_two_torchrun_ranks_give_the_same_union(
    uninterrupted: Path, archive: Path, small_safetensors: Path, tmp_path: Path
) -> None:
    import torch

    output = tmp_path / "torchrun"
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "0",
        "-m",
        "clef_sdk",
    ]
    args = launcher + command(archive, output, small_safetensors)[3:]
    # torchrun sets OMP_NUM_THREADS=1 unless it is set; CPU kernels round differently with another thread count
    done = run(args, env={"OMP_NUM_THREADS": str(torch.get_num_threads())})
    assert done.returncode == 0, done.stderr
    assert "rank 0/2" in done.stdout and "rank 1/2" in done.stdout
    assert parts_digest(output) == parts_digest(uninterrupted)
    assert (output / "_SUCCESS").is_file()


def test_a_slurm_job_array_gives_the_same_union(
    uninterrupted: Path, archive: Path, small_safetensors: Path, tmp_path: Path
) -> None:
    output = tmp_path / "array"
    for task in ("4", "5", "6"):  # sbatch --array=4-6
        env = {
            "SLURM_ARRAY_TASK_ID": task,
            "SLURM_ARRAY_TASK_MIN": "4",
            "SLURM_ARRAY_TASK_COUNT": "3",
            "SLURM_JOB_ID": "77",
        }
        done = run(command(archive, output, small_safetensors), env=env)
        assert done.returncode == 0, done.stderr
        assert f"rank {int(task) - 4}/3: 2 parts computed" in done.stdout
    assert parts_digest(output) == parts_digest(uninterrupted)
    status = run([sys.executable, "-m", "clef_sdk", "embed-archive", "--status", "-o", str(output)])
    assert status.returncode == 0 and "complete" in status.stdout and "parts 6/6" in status.stdout


def test_srun_ranks_and_reader_processes(
    uninterrupted: Path, archive: Path, small_safetensors: Path, tmp_path: Path
) -> None:
    output = tmp_path / "srun"
    for rank in ("0", "1"):
        done = run(
            command(archive, output, small_safetensors, "--workers", "2"),
            env={"SLURM_PROCID": rank, "SLURM_NTASKS": "2"},
        )
        assert done.returncode == 0, done.stderr
    assert parts_digest(output) == parts_digest(uninterrupted)


def test_a_full_disk_leaves_no_part_that_looks_complete(
    uninterrupted: Path, archive: Path, small_safetensors: Path, tmp_path: Path
) -> None:
    output = tmp_path / "full"
    limited = ["bash", "-c", 'ulimit -f 4 && exec "$@"', "bash", *command(archive, output, small_safetensors)]
    failed = run(limited)  # 4 KiB per file: the plan (0.9 kB) and the first part (2.7 kB) fit, the next (8.6 kB) not
    assert failed.returncode != 0 and "clef: error" in failed.stderr and "Traceback" not in failed.stderr
    assert not (output / "_SUCCESS").exists()
    for part in output.glob("part-*.parquet"):  # any part there is whole and readable
        read_part(part)
    resumed = run(command(archive, output, small_safetensors))
    assert resumed.returncode == 0, resumed.stderr
    assert parts_digest(output) == parts_digest(uninterrupted)


def test_command_line_errors(archive: Path, small_safetensors: Path, tmp_path: Path, uninterrupted: Path) -> None:
    other = run(command(archive, uninterrupted, small_safetensors)[:-3] + ["--shard-size", "3", "-q"])
    assert other.returncode == 1 and "holds another job" in other.stderr
    missing = run([sys.executable, "-m", "clef_sdk", "embed-archive", "-o", str(tmp_path / "x")])
    assert missing.returncode == 1 and "pass SRC" in missing.stderr
    not_a_job = run([sys.executable, "-m", "clef_sdk", "embed-archive", "--status", "-o", str(tmp_path)])
    assert not_a_job.returncode == 1 and "not an embed-archive output" in not_a_job.stderr
    shutil.rmtree(tmp_path / "x", ignore_errors=True)
